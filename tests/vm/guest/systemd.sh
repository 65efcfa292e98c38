#!/bin/bash
# vmtest: systemd
# The daemon as a Debian machine runs it: systemd as PID 1 activates
# gpuswitchd.service (Type=dbus, hardened, exposure 2.7) through the bus,
# and the daemon switches the GPU under that unit's sandbox.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"

check systemd-is-pid1 test "$(cat /proc/1/comm)" = systemd
configure "" "AllowBootVga=yes"

run $CTL status
expect_rc status-activates-unit 0
[ "$(systemctl is-active gpuswitchd.service)" = active ] && result unit-active PASS || result unit-active FAIL
main=$(systemctl show -P MainPID gpuswitchd.service)
[ "$main" = "$(pgrep -x gpuswitchd)" ] && result daemon-is-the-unit PASS "pid $main" \
        || result daemon-is-the-unit FAIL "MainPID $main"
caps=$(grep CapBnd /proc/$main/status | awk '{print $2}')
echo "bounding set $caps: $(capsh --decode=$caps 2>/dev/null)"

run $CTL vfio
expect_rc sandboxed-vfio 0
all_on vfio-pci && result sandboxed-all-on-vfio PASS "$(state)" || result sandboxed-all-on-vfio FAIL "$(state)"
run $VFIOCHECK "$(grp $VGA)" "$VGA"
expect_rc sandboxed-group-viable 0
run $CTL host
expect_rc sandboxed-host 0
all_original && result sandboxed-back PASS "$(state)" || result sandboxed-back FAIL "$(state)"

# In the sandbox /dev/kmsg is not there (ProtectKernelLogs=, PrivateDevices=):
# the error of a function that will not come up quotes the kernel's lines
# from the journal.  power/control is written under /sys/devices.
PARAMS=/sys/module/gpuswitch_test/parameters
read -r control_before < /sys/bus/pci/devices/$EDU/power/control
echo auto > /sys/bus/pci/devices/$EDU/power/control
$CTL vfio >/dev/null 2>&1
echo 1000 > $PARAMS/fail_probe
run $CTL host
expect_rc sandboxed-probe-fails-host-fails 1
echo "$OUT" | grep -q "$EDU would not come up on gpuswitch_test: probed: gpuswitch_test did not bind" \
        && result sandboxed-error-names-function-and-steps PASS || result sandboxed-error-names-function-and-steps FAIL "$OUT"
echo "$OUT" | grep -q "the kernel logged: .*$EDU: gpuswitch_test: probe fails as asked" \
        && result sandboxed-error-has-kernel-log PASS || result sandboxed-error-has-kernel-log FAIL "$OUT"
all_on vfio-pci && result sandboxed-rolled-back-to-vfio PASS "$(state)" || result sandboxed-rolled-back-to-vfio FAIL "$(state)"
echo 0 > $PARAMS/fail_probe
run $CTL host
expect_rc sandboxed-host-after-fault 0
all_original && [ "$(cat /sys/bus/pci/devices/$EDU/power/control)" = auto ] \
        && result sandboxed-power-given-back PASS "$(state)" \
        || result sandboxed-power-given-back FAIL "$(cat /sys/bus/pci/devices/$EDU/power/control) $(state)"
echo "$control_before" > /sys/bus/pci/devices/$EDU/power/control

journalctl -u gpuswitchd.service --no-pager -o short-monotonic | tail -15
journalctl -u gpuswitchd.service -p info --no-pager | grep -q "now vfio" && result logs-in-journal PASS \
        || result logs-in-journal FAIL
finish
