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

journalctl -u gpuswitchd.service --no-pager -o short-monotonic | tail -15
journalctl -u gpuswitchd.service -p info --no-pager | grep -q "now vfio" && result logs-in-journal PASS \
        || result logs-in-journal FAIL
finish
