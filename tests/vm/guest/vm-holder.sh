#!/bin/bash
# A VM's hold on the GPU (issue 13): a process with the GPU's VFIO group open
# (as QEMU has it) makes the switch back to the host refuse with exit 3,
# naming the process and the node, nothing moved; --force needs the
# terminate-holders authorization, then ends it and switches.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"

configure "" "AllowBootVga=yes"
install -m644 /usr/share/doc/gpuswitch/examples/50-gpuswitch-group.rules /etc/polkit-1/rules.d/
usermod -aG gpuswitch alice
sleep 1
run $CTL vfio
expect_rc to-vfio 0
GROUP=$(grp $VGA)
[ -c /dev/vfio/$GROUP ] && result group-node PASS "/dev/vfio/$GROUP" || result group-node FAIL

# the "VM": a process holding the group, orphaned so that PID 1 reaps it
( exec -a qemu-system-x86_64 sleep 1000 < /dev/vfio/$GROUP & )
for i in $(seq 50); do VMPID=$(pgrep -n -x -f "qemu-system-x86_64 1000") && break; sleep 0.1; done
[ -n "$VMPID" ] && result vm-holds-group PASS "pid $VMPID" || result vm-holds-group FAIL

run $CTL holders
echo "$OUT" | grep -E "^$VMPID +root .*vfio/$GROUP" >/dev/null && result holders-names-vm PASS \
        || result holders-names-vm FAIL "$OUT"
run $CTL host
expect_rc host-refused-in-use 3
echo "$OUT" | grep -q "$VMPID" && echo "$OUT" | grep -q "vfio/$GROUP" && result refusal-names-vm PASS \
        || result refusal-names-vm FAIL "$OUT"
all_on vfio-pci && kill -0 $VMPID && result nothing-moved PASS || result nothing-moved FAIL "$(state)"

run as_user alice $CTL --no-ask-password --force host
expect_rc force-needs-terminate-holders 4
all_on vfio-pci && kill -0 $VMPID && result force-denied-nothing-ended PASS || result force-denied-nothing-ended FAIL

run $CTL --force host
expect_rc force-host 0
! pgrep -x -f "qemu-system-x86_64 1000" >/dev/null && result vm-ended PASS || result vm-ended FAIL
all_original && result back-on-host PASS || result back-on-host FAIL "$(state)"
finish
