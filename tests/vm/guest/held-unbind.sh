#!/bin/bash
# The bus loop never waits on sysfs (issue 12): an unbind of a managed
# function held in someone else's shell (the test module's pin, as nvidia's
# remove() waits for its users) keeps that function's device lock, and any
# read of its driver_override waits for it.  Meanwhile uevents of the other
# functions make the daemon read the GPU again: that read waits on a
# worker, while a Plan (from the state last read) and the calls of
# gpuswitchctl status
# (GetGpu, the properties) and ListGpus are answered within 100 ms each
# (busctl's timeout: the answer's time, not a process start's under
# emulation).
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"
PIN=/sys/module/gpuswitch_test/parameters/pin
BUS=(busctl --system --timeout=100ms)
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

configure "" "AllowBootVga=yes"
run $CTL status
expect_rc status-before 0

echo 1 > $PIN
( echo "$EDU" > /sys/bus/pci/devices/$EDU/driver/unbind ) & holder=$!
sleep 1
kill -0 $holder 2>/dev/null && result unbind-held PASS || result unbind-held FAIL "the unbind returned"
# another function's rebind: uevents, so the daemon reads the GPU again
echo "$HDA" > /sys/bus/pci/drivers/snd_hda_intel/unbind
echo "$HDA" > /sys/bus/pci/drivers/snd_hda_intel/bind
"${BUS[@]/--timeout=100ms/--timeout=120}" call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager Plan ss "" vfio \
        >/tmp/plan.out 2>&1 & plan=$!
sleep 0.5

for i in 1 2 3; do
        run "${BUS[@]}" call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager ListGpus
        expect_rc "held-listgpus-$i" 0
        run "${BUS[@]}" call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager GetGpu s ""
        expect_rc "held-getgpu-$i" 0
        run "${BUS[@]}" call org.gpuswitch1 "$OBJ" org.freedesktop.DBus.Properties GetAll s org.gpuswitch1.Gpu
        expect_rc "held-properties-$i" 0
        t0=$(date +%s%N); run timeout 10 $CTL status; t=$(ms_since $t0)
        [ "$RC" = 0 ] && result "held-status-$i" PASS "$t ms" || result "held-status-$i" FAIL "rc=$RC in $t ms"
        sleep 0.2
done
kill -0 $plan 2>/dev/null && result plan-answers-while-held FAIL "no answer yet" \
        || { wait $plan && result plan-answers-while-held PASS "$(cat /tmp/plan.out)" \
                || result plan-answers-while-held FAIL "$(cat /tmp/plan.out)"; }

echo 0 > $PIN
wait $holder
# the held unbind is done: the function is unbound, the daemon says mixed
for i in $(seq 50); do [ "$(prop Mode)" = 's "mixed"' ] && break; sleep 0.1; done
[ "$(prop Mode)" = 's "mixed"' ] && result follows-the-unbind PASS || result follows-the-unbind FAIL "$(prop Mode)"
echo "$EDU" > /sys/bus/pci/drivers_probe
for i in $(seq 50); do [ "$(prop Mode)" = 's "host"' ] && break; sleep 0.1; done
all_original && [ "$(prop Mode)" = 's "host"' ] && result back-as-before PASS || result back-as-before FAIL "$(state) $(prop Mode)"
run $CTL vfio
expect_rc switches-after 0
run $CTL host
expect_rc switches-back-after 0
finish
