#!/bin/bash
# Never block the daemon (issue 3): an unbind that blocks in the kernel
# (the nvidia stand-in's remove() waits for a user no process scan can see)
# gives the caller Timeout, the daemon answers everything else meanwhile,
# Step says where the GPU is stuck, and the switch completes when the user
# goes.
. "$(dirname "$0")/../guest-lib.sh"

. "$(dirname "$0")/../gpu-lib.sh"
PIN=/sys/module/gpuswitch_test/parameters/pin
prop_fast() { busctl --system --timeout=1 get-property org.gpuswitch1 "$OBJ" org.gpuswitch1.Gpu "$1" 2>&1; }

configure "StepTimeoutSec=3" "AllowBootVga=yes"
$CTL status >/dev/null

echo 1 > $PIN
$CTL vfio >/tmp/sw.out 2>&1 & sw=$!
# To vfio-pci the edu function (.3) goes first: its unbind blocks at once.
for i in $(seq 100); do kill -0 $sw 2>/dev/null || break; sleep 0.1; done
wait $sw; rc=$?
cat /tmp/sw.out
[ $rc = 1 ] && grep -q "has not finished after 3 s" /tmp/sw.out && grep -q "$EDU: unbind" /tmp/sw.out \
        && result blocked-step-times-out PASS || result blocked-step-times-out FAIL "rc=$rc $(cat /tmp/sw.out)"

# the daemon answers while its worker is stuck in the kernel (a 1 s bus timeout)
m=$(prop_fast Mode); s=$(prop_fast Step)
echo "Mode: $m; Step: $s"
[ "$m" = 's "switching"' ] && result answers-while-stuck PASS || result answers-while-stuck FAIL "$m"
echo "$s" | grep -q "$EDU: unbind" && result step-says-where PASS || result step-says-where FAIL "$s"
out=$($CTL status 2>&1); echo "$out" | grep -q switching && result status-while-stuck PASS || result status-while-stuck FAIL "$out"
out=$($CTL plan host 2>&1) && result plan-while-stuck PASS || result plan-while-stuck FAIL "$out"
$CTL host >/tmp/busy.out 2>&1; rc=$?
[ $rc = 6 ] && result second-switch-busy PASS "$(cat /tmp/busy.out)" || result second-switch-busy FAIL "rc=$rc $(cat /tmp/busy.out)"
# (the kernel drops the driver link before it calls remove(): edu shows none)
[ "$(drv $EDU)" = none ] && [ "$(drv $VGA)" = bochs-drm ] && [ "$(drv $HDA)" = snd_hda_intel ] \
        && [ "$(drv $XHCI)" = xhci_hcd ] && result nothing-else-moved-meanwhile PASS \
        || result nothing-else-moved-meanwhile FAIL "$(state)"

# the user goes: the unbind returns and the switch completes
echo 0 > $PIN
for i in $(seq 100); do [ "$(prop Mode)" = 's "vfio"' ] && break; sleep 0.1; done
[ "$(prop Mode)" = 's "vfio"' ] && all_on vfio-pci && result recovers-when-user-goes PASS \
        || result recovers-when-user-goes FAIL "$(prop Mode) $(state)"
[ "$(prop Step)" = 's ""' ] && result step-cleared PASS || result step-cleared FAIL "$(prop Step)"
$CTL host >/dev/null 2>&1
all_original && result back-to-host PASS || result back-to-host FAIL "$(state)"

# ---- a process that opens the node after the holder check ---------------------
# The switch record is written after the check and before the first write;
# the pin holds the unbind until the late holder has the node open.
echo 1 > $PIN
$CTL vfio >/tmp/sw2.out 2>&1 & sw=$!
for i in $(seq 100); do [ -e /var/lib/gpuswitch/switch-$SLOT.conf ] && break; sleep 0.05; done
( exec sleep 1000 < /dev/gpuswitch-test0 & )
sleep 0.3
late=$(pgrep -n -x sleep)
echo 0 > $PIN
wait $sw; rc=$?
cat /tmp/sw2.out
[ $rc = 1 ] && grep -q "$EDU: unbind" /tmp/sw2.out && result late-holder-blocks-timeout PASS \
        || result late-holder-blocks-timeout FAIL "rc=$rc"
run $CTL holders
echo "$OUT" | grep -qE "^$late +root +sleep +gpuswitch-test0$" && result late-holder-named PASS \
        || result late-holder-named FAIL "$OUT"
m=$(prop_fast Mode)
[ "$m" = 's "switching"' ] && result late-holder-answers PASS || result late-holder-answers FAIL "$m"
kill $late
for i in $(seq 100); do [ "$(prop Mode)" = 's "vfio"' ] && break; sleep 0.1; done
all_on vfio-pci && result late-holder-gone-recovers PASS || result late-holder-gone-recovers FAIL "$(state)"
$CTL host >/dev/null 2>&1
all_original && result late-back-to-host PASS || result late-back-to-host FAIL "$(state)"
finish
