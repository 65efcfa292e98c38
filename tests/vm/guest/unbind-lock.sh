#!/bin/bash
# NVIDIA's unbindLock (issue 13): the stand-in speaks nvidia's procfs
# (nvidia_procfs=1: /proc/driver/nvidia/gpus/ADDR with "information" and
# "unbindLock").  With an in-kernel user (the pin, which no process shows)
# the lock is not given and the switch is refused before any unbind: exit 3,
# nothing moved, no remove() waiting, no Timeout.  With the pin released it
# is taken and the switch completes.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"
PARAMS=/sys/module/gpuswitch_test/parameters
LOCK=/proc/driver/nvidia/gpus/$EDU/unbindLock

configure "" "AllowBootVga=yes"
echo 1 > $PARAMS/nvidia_procfs
[ -e $LOCK ] && grep -q "^Device Minor:" /proc/driver/nvidia/gpus/$EDU/information \
        && result procfs-present PASS "$(grep Minor /proc/driver/nvidia/gpus/$EDU/information)" \
        || result procfs-present FAIL
[ "$(cat $LOCK)" = 0 ] && result lock-free-at-start PASS || result lock-free-at-start FAIL "$(cat $LOCK)"

# an in-kernel user: refused before any unbind
from=$(kmsg_mark)
echo 1 > $PARAMS/pin
t0=$(date +%s)
run timeout 60 $CTL vfio
expect_rc pinned-refused-in-use 3
echo "$OUT" | grep -q "unbindLock for $EDU could not be taken" && echo "$OUT" | grep -q "nothing was changed" \
        && result pinned-error-names-lock PASS || result pinned-error-names-lock FAIL "$OUT"
[ $(( $(date +%s) - t0 )) -lt 20 ] && result pinned-refused-at-once PASS || result pinned-refused-at-once FAIL
all_original && result pinned-nothing-moved PASS "$(state)" || result pinned-nothing-moved FAIL "$(state)"
kmsg_since $from | grep -q "remove waits" && result pinned-no-unbind-started FAIL \
        || result pinned-no-unbind-started PASS
kmsg_since $from | grep -q "$EDU: gpuswitch_test: Could not acquire UnbindLock" \
        && result pinned-lock-asked PASS || result pinned-lock-asked FAIL
[ "$(cat $LOCK)" = 0 ] && result pinned-lock-not-held PASS || result pinned-lock-not-held FAIL "$(cat $LOCK)"
[ "$(prop Mode)" = 's "host"' ] && result pinned-mode-host PASS || result pinned-mode-host FAIL "$(prop Mode)"

# the pin released: taken, then the switch
from=$(kmsg_mark)
echo 0 > $PARAMS/pin
run timeout 60 $CTL vfio
expect_rc released-switches 0
all_on vfio-pci && result released-all-on-vfio PASS || result released-all-on-vfio FAIL "$(state)"
kmsg_since $from | grep -q "$EDU: gpuswitch_test: UnbindLock acquired" \
        && result released-lock-taken PASS || result released-lock-taken FAIL
[ ! -e $LOCK ] && result lock-gone-with-device PASS || result lock-gone-with-device FAIL
run $CTL host
expect_rc back-to-host 0
all_original && [ -e $LOCK ] && [ "$(cat $LOCK)" = 0 ] && result host-lock-back-free PASS \
        || result host-lock-back-free FAIL "$(state)"
echo 0 > $PARAMS/nvidia_procfs
[ ! -e /proc/driver/nvidia ] && result procfs-dropped PASS || result procfs-dropped FAIL
finish
