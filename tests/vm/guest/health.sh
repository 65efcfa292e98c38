#!/bin/bash
# Power and the health check after a switch to host (issue 12): each
# function is held awake (power/control "on") for a switch and given its
# setting back; a function whose host probe fails is reset and probed once
# more (a real reset on the one-function slot, which the kernel can reset);
# when that fails too the error names it, the steps and what the kernel
# logged, and the GPU is back on vfio-pci.  The faults come from the
# nvidia stand-in (module/gpuswitch_test.c, fail_probe), not the daemon.
. "$(dirname "$0")/../guest-lib.sh"

. "$(dirname "$0")/../gpu-lib.sh"
PARAMS=/sys/module/gpuswitch_test/parameters
DLOG=/tmp/gpuswitchd-health.log
control() { local c; read -r c < "/sys/bus/pci/devices/$1/power/control"; echo "$c"; }
controls() { local f; for f in $FNS; do printf '%s=%s ' "$f" "$(control "$f")"; done; }
kernel_log_from() { kmsg_since "$1"; }  # MARK: the kernel log from that mark on
start_daemon() { # by hand, its log kept (in the plain guest, bus activation would lose it)
        /usr/libexec/gpuswitchd >>"$DLOG" 2>&1 &
        for i in $(seq 100); do bus_has_owner org.gpuswitch1 && return 0; sleep 0.1; done; return 1
}

configure "" "AllowBootVga=yes"
start_daemon && result daemon-started PASS || result daemon-started FAIL

# ---- power/control: held on during a switch, given back after ----------------
# In this guest every function starts "on"; two are set to "auto" (as udev's
# power-saving rules do) so that giving back is seen.
for f in $FNS; do ORIG_CONTROL[${f##*.}]=$(control "$f"); done
echo auto > /sys/bus/pci/devices/$EDU/power/control
echo auto > /sys/bus/pci/devices/$HDA/power/control
before=$(controls)
echo "power/control before: $before"
# The stand-in's function moves first; pinned, its unbind waits in remove()
# while the others are held too.
echo 1 > $PARAMS/pin
$CTL vfio >/tmp/sw.out 2>&1 & sw=$!
during=""
held_on() { echo "$during" | grep -q "$EDU=on" && echo "$during" | grep -q "$HDA=on"; }
for i in $(seq 50); do
        during=$(controls)
        held_on && break
        sleep 0.1
done
kill -0 $sw 2>/dev/null && held=1 || held=0
echo 0 > $PARAMS/pin
wait $sw; rc=$?
echo "power/control during the switch: $during"
[ $held = 1 ] && held_on \
        && result power-held-on-during-switch PASS "$during" || result power-held-on-during-switch FAIL "held=$held $during"
[ $rc = 0 ] && all_on vfio-pci && result switched-to-vfio PASS || result switched-to-vfio FAIL "rc=$rc $(cat /tmp/sw.out) $(state)"
[ "$(controls)" = "$before" ] && result power-given-back-after-vfio PASS "$(controls)" \
        || result power-given-back-after-vfio FAIL "$(controls), was $before"

# ---- the stand-in's probe fails once: reset (when there is one), probed again ----
from=$(kmsg_mark)
echo 1 > $PARAMS/fail_probe
run $CTL host
expect_rc probe-fails-once-host-succeeds 0
all_original && result probe-fails-once-all-original PASS "$(state)" || result probe-fails-once-all-original FAIL "$(state)"
[ "$(cat $PARAMS/fail_probe)" = 0 ] && result probe-failed-once PASS || result probe-failed-once FAIL "$(cat $PARAMS/fail_probe) left"
klog=$(kernel_log_from $from)
echo "$klog" | grep "$EDU" | sed 's/^/    kernel: /'
# the kernel saw the failed probe, then the stand-in bound at the second one
echo "$klog" | grep -q "$EDU: gpuswitch_test: probe fails as asked" \
        && echo "$klog" | sed -n "/probe fails as asked/,\$p" | grep -q "$EDU: gpuswitch_test: /dev/gpuswitch-test" \
        && result kernel-log-failed-probe-then-bound PASS || result kernel-log-failed-probe-then-bound FAIL
grep "$EDU" "$DLOG" | tail -5 | sed 's/^/    daemon: /'
# the reset: through the function's reset attribute when it has one; the
# edu function has no reset method (no FLR, no PM, not alone on its bus),
# which the daemon says before it probes again
if [ -e /sys/bus/pci/devices/$EDU/reset ]; then
        echo "$klog" | grep -qi "$EDU.*reset" && grep -q "$EDU: reset (" "$DLOG" \
                && result reset-logged PASS || result reset-logged FAIL
else
        grep -q "$EDU: after the probe: gpuswitch_test did not bind; resetting it and probing once more" "$DLOG" \
                && grep -q "$EDU: no reset method, probing again without a reset" "$DLOG" \
                && grep -q "$EDU: on gpuswitch_test at the second probe" "$DLOG" \
                && result reset-tried-then-probed PASS || result reset-tried-then-probed FAIL
fi
[ "$(cat /sys/bus/pci/devices/$EDU/power_state)" = D0 ] && result stand-in-in-d0 PASS \
        || result stand-in-in-d0 FAIL "$(cat /sys/bus/pci/devices/$EDU/power_state)"
[ "$(controls)" = "$before" ] && result power-given-back-after-host PASS "$(controls)" \
        || result power-given-back-after-host FAIL "$(controls), was $before"

# ---- it fails every time: the error names the function and the steps, the GPU
# ---- goes back to vfio-pci ------------------------------------------------------
$CTL vfio >/dev/null 2>&1
all_on vfio-pci && result back-on-vfio PASS || result back-on-vfio FAIL "$(state)"
echo 1000 > $PARAMS/fail_probe
run $CTL host
expect_rc probe-fails-always-host-fails 1
echo "$OUT" | grep -q "failed at $EDU (health check)" && echo "$OUT" | grep -q "$EDU would not come up on gpuswitch_test" \
        && result error-names-function PASS || result error-names-function FAIL "$OUT"
echo "$OUT" | grep -q "probed: gpuswitch_test did not bind; no reset (the function has no reset method); probed again: gpuswitch_test did not bind" \
        && result error-names-steps PASS || result error-names-steps FAIL "$OUT"
echo "$OUT" | grep -q "the kernel logged: .*$EDU: gpuswitch_test: probe fails as asked" \
        && result error-has-kernel-log PASS || result error-has-kernel-log FAIL "$OUT"
echo "$OUT" | grep -q "rolled back, every function is on the driver it had" && all_on vfio-pci \
        && for f in $FNS; do [ "$(override $f)" = vfio-pci ] || false; done \
        && result failed-switch-rolled-back-to-vfio PASS "$(state)" || result failed-switch-rolled-back-to-vfio FAIL "$(state)"
[ "$(prop Mode)" = 's "vfio"' ] && result mode-vfio-after-rollback PASS || result mode-vfio-after-rollback FAIL "$(prop Mode)"
[ "$(controls)" = "$before" ] && result power-given-back-after-rollback PASS "$(controls)" \
        || result power-given-back-after-rollback FAIL "$(controls), was $before"
pgrep -x gpuswitchd >/dev/null && result daemon-alive PASS || result daemon-alive FAIL

echo 0 > $PARAMS/fail_probe
run $CTL host
expect_rc host-after-fault-cleared 0
all_original && result all-original-at-end PASS "$(state)" || result all-original-at-end FAIL "$(state)"

# ---- a function the kernel can reset: reset, probed again, switched --------------
# The edu alone behind its root port (run-vm-test.sh's one-function "GPU").
SOLO=$(for d in /sys/bus/pci/devices/*; do
        [ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = 0x11e8 ] && [ "${d##*/}" != "$EDU" ] && echo "${d##*/}"
done | head -1)
SOLO_SLOT=${SOLO%.*}
[ -n "$SOLO" ] && [ -e /sys/bus/pci/devices/$SOLO/reset ] \
        && result solo-can-be-reset PASS "$SOLO: $(cat /sys/bus/pci/devices/$SOLO/reset_method 2>/dev/null)" \
        || result solo-can-be-reset FAIL "$SOLO"
printf '[Daemon]\nGpus=%s;%s\n[Gpu %s]\nAllowBootVga=yes\n' "$SLOT" "$SOLO_SLOT" "$SLOT" > /etc/gpuswitch/gpuswitch.conf
pkill -x gpuswitchd; for i in $(seq 50); do pgrep -x gpuswitchd >/dev/null || break; sleep 0.1; done
start_daemon
run $CTL vfio "$SOLO_SLOT"
expect_rc solo-to-vfio 0
from=$(kmsg_mark)
echo 1 > $PARAMS/fail_probe
run $CTL host "$SOLO_SLOT"
expect_rc solo-probe-fails-once-host-succeeds 0
[ "$(drv $SOLO)" = gpuswitch_test ] && [ "$(cat $PARAMS/fail_probe)" = 0 ] && result solo-back-on-host PASS \
        || result solo-back-on-host FAIL "$(drv $SOLO) fail_probe=$(cat $PARAMS/fail_probe)"
grep "$SOLO" "$DLOG" | tail -4 | sed 's/^/    daemon: /'
kernel_log_from $from | grep "$SOLO" | sed 's/^/    kernel: /'
grep -q "$SOLO: reset (" "$DLOG" && result solo-reset-then-probed PASS || result solo-reset-then-probed FAIL
kernel_log_from $from | grep -q "$SOLO: gpuswitch_test: probe fails as asked" \
        && kernel_log_from $from | sed -n "/$SOLO: gpuswitch_test: probe fails as asked/,\$p" | grep -q "$SOLO: gpuswitch_test: /dev/gpuswitch-test" \
        && result solo-kernel-failed-then-bound PASS || result solo-kernel-failed-then-bound FAIL
all_original && result solo-other-gpu-untouched PASS || result solo-other-gpu-untouched FAIL "$(state)"

for f in $FNS; do echo "${ORIG_CONTROL[${f##*.}]}" > /sys/bus/pci/devices/$f/power/control; done
echo "---- daemon log ----"; tail -40 "$DLOG"
finish
