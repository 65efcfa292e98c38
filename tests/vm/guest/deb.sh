#!/bin/bash
# vmtest: systemd
# vmtest: deb
# vmtest-seconds: 45
# The Debian package (tools/build-deb.sh) as a Debian machine gets it: no
# staging tree, dpkg installs the .deb ($VMTEST_DEB); its postinst creates the
# gpuswitch group and enables and starts gpuswitchd.service; the packaged
# client switches the GPU as root and as a member of the group; dpkg -r stops
# the service and removes the files, dpkg -P purges what is left.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"
CTL=/usr/bin/gpuswitchctl
UNIT=/lib/systemd/system/gpuswitchd.service
FILES="$UNIT /usr/libexec/gpuswitchd $CTL /usr/share/dbus-1/system.d/org.gpuswitch1.conf
       /usr/share/dbus-1/system-services/org.gpuswitch1.service /usr/share/polkit-1/actions/org.gpuswitch1.policy
       /usr/share/dbus-1/interfaces/org.gpuswitch1.xml /usr/share/doc/gpuswitch/examples/50-gpuswitch-group.rules
       /usr/libexec/gpuswitch/libvirt-qemu-hook /etc/libvirt/hooks/qemu.d/gpuswitch"
WANTS=/etc/systemd/system/multi-user.target.wants/gpuswitchd.service
ALIAS=/etc/systemd/system/dbus-org.gpuswitch1.service

pkg_status() { dpkg-query -W -f='${Status}' gpuswitch 2>/dev/null || echo "not known"; }
none_exist() { local f; for f in "$@"; do [ ! -e "$f" ] || { echo "still there: $f"; return 1; }; done; }
wait_active() { # the unit active with a new main process (not PID $1)
        local _ m
        for _ in $(seq 100); do
                m=$(systemctl show -P MainPID gpuswitchd.service)
                [ "$(systemctl is-active gpuswitchd.service)" = active ] && [ "$m" != 0 ] && [ "$m" != "$1" ] && return 0
                sleep 0.1
        done
        return 1
}

check systemd-is-pid1 test "$(cat /proc/1/comm)" = systemd
check deb-given test -f "${VMTEST_DEB:-}"
echo "package: ${VMTEST_DEB:-none}"
# nothing of gpuswitch in the guest but the package: no staging tree
# shellcheck disable=SC2086
check nothing-installed-before none_exist $FILES
# guest-init.sh made the group; the package's postinst must make it itself
groupdel gpuswitch
# A build machine in a Docker container has Docker's policy-rc.d, which keeps
# maintainer scripts from starting or stopping any service; a Debian machine
# has none (this is the guest's overlay, the build machine keeps its own).
rm -f /usr/sbin/policy-rc.d
# man-db's trigger would index every man page of the build machine, over
# 9p under TCG (two minutes, for each of dpkg -i, -r and -P): not the
# package's doing, and off as its debconf question man-db/auto-update can set.
rm -f /var/lib/man-db/auto-update
check group-gone-before sh -c '! getent group gpuswitch'

# ---- install ------------------------------------------------------------------
t0=$(cut -d' ' -f1 /proc/uptime)
run dpkg -i "$VMTEST_DEB"
expect_rc dpkg-install 0
echo "dpkg -i took $(awk -v t0="$t0" '{print $1 - t0}' /proc/uptime) s"
[ "$(pkg_status)" = "install ok installed" ] && result dpkg-status-installed PASS \
        || result dpkg-status-installed FAIL "$(pkg_status)"
gid=$(getent group gpuswitch | cut -d: -f3)
[ -n "$gid" ] && [ "$gid" -lt 1000 ] && result postinst-made-system-group PASS "gid $gid" \
        || result postinst-made-system-group FAIL "gid '${gid}'"

listed=$(dpkg -L gpuswitch)
missing=""
for f in $FILES; do
        { echo "$listed" | grep -qx "$f" && [ -e "$f" ]; } || missing+=" $f"
done
[ -z "$missing" ] && result package-files PASS || result package-files FAIL "missing:$missing"
[ -x /usr/libexec/gpuswitchd ] && [ -x "$CTL" ] && result programs-executable PASS || result programs-executable FAIL
# libvirt's qemu.d, whether libvirt is installed or not
[ "$(readlink /etc/libvirt/hooks/qemu.d/gpuswitch)" = /usr/libexec/gpuswitch/libvirt-qemu-hook ] \
        && [ -x /etc/libvirt/hooks/qemu.d/gpuswitch ] && result libvirt-hook-linked PASS \
        || result libvirt-hook-linked FAIL "$(ls -l /etc/libvirt/hooks/qemu.d/ 2>&1)"

# ---- the postinst enabled and started the service ----------------------------
[ "$(systemctl is-enabled gpuswitchd.service)" = enabled ] && result unit-enabled PASS \
        || result unit-enabled FAIL "$(systemctl is-enabled gpuswitchd.service 2>&1)"
[ -L "$WANTS" ] && [ -L "$ALIAS" ] && result unit-links PASS "$(readlink "$ALIAS")" \
        || result unit-links FAIL "$(ls -l "$WANTS" "$ALIAS" 2>&1)"
[ "$(systemctl is-active gpuswitchd.service)" = active ] && result unit-started PASS \
        || result unit-started FAIL "$(systemctl status gpuswitchd.service 2>&1 | head -20)"
main=$(systemctl show -P MainPID gpuswitchd.service)
exe=$(readlink "/proc/$main/exe" 2>/dev/null)
[ "$exe" = /usr/libexec/gpuswitchd ] && result mainpid-is-packaged-daemon PASS "pid $main" \
        || result mainpid-is-packaged-daemon FAIL "MainPID $main exe '$exe'"
check answers-on-bus bus_has_owner org.gpuswitch1
check state-dir-made test -d /var/lib/gpuswitch

# ---- configured, restarted, switched by root -----------------------------------
configure "" "AllowBootVga=yes"
systemctl restart gpuswitchd.service
wait_active "$main" && result restarted-with-config PASS || result restarted-with-config FAIL "$(systemctl is-active gpuswitchd.service)"
run $CTL status
expect_rc status 0
echo "$OUT" | grep -q "$SLOT" && result status-shows-gpu PASS || result status-shows-gpu FAIL "$OUT"

run $CTL vfio
expect_rc root-vfio 0
all_on vfio-pci && result root-all-on-vfio PASS "$(state)" || result root-all-on-vfio FAIL "$(state)"
run $CTL host
expect_rc root-host 0
all_original && result root-back PASS "$(state)" || result root-back FAIL "$(state)"

# ---- alice: denied, then allowed by the packaged example rule ----------------
run as_user alice $CTL --no-ask-password vfio
expect_rc alice-denied-without-rule 4
all_original && result alice-denied-nothing-moved PASS || result alice-denied-nothing-moved FAIL "$(state)"
install -m644 /usr/share/doc/gpuswitch/examples/50-gpuswitch-group.rules /etc/polkit-1/rules.d/
usermod -aG gpuswitch alice
sleep 1   # polkitd reloads rules.d on its own (inotify)
run as_user alice $CTL --no-ask-password vfio
expect_rc alice-vfio 0
all_on vfio-pci && result alice-all-on-vfio PASS "$(state)" || result alice-all-on-vfio FAIL "$(state)"
run as_user alice $CTL --no-ask-password host
expect_rc alice-host 0
all_original && result alice-back PASS "$(state)" || result alice-back FAIL "$(state)"
[ "$(drv $NIC)" = "${ORIG[$NIC]}" ] && result nic-untouched PASS || result nic-untouched FAIL "$(drv $NIC)"
journalctl -u gpuswitchd.service --no-pager -o short-monotonic | tail -8

# ---- remove: the service stopped, the files gone -------------------------------
main=$(systemctl show -P MainPID gpuswitchd.service)
run dpkg -r gpuswitch
expect_rc dpkg-remove 0
[ "$(pkg_status)" = "deinstall ok config-files" ] && result dpkg-status-removed PASS \
        || result dpkg-status-removed FAIL "$(pkg_status)"
[ "$(systemctl is-active gpuswitchd.service)" != active ] && [ ! -d "/proc/$main" ] && ! pgrep -x gpuswitchd >/dev/null \
        && result remove-stopped-service PASS || result remove-stopped-service FAIL "$(systemctl is-active gpuswitchd.service) $(pgrep -a gpuswitchd)"
! bus_has_owner org.gpuswitch1 && result remove-left-bus PASS || result remove-left-bus FAIL
# shellcheck disable=SC2086
check remove-removed-files none_exist $FILES

# ---- purge: the enablement links, the state, the empty config folder ----------
rm /etc/gpuswitch/gpuswitch.conf
run dpkg -P gpuswitch
expect_rc dpkg-purge 0
case "$(pkg_status)" in
"not known" | *" not-installed") result dpkg-status-purged PASS "$(pkg_status)" ;;
*) result dpkg-status-purged FAIL "$(pkg_status)" ;;
esac
check purge-removed-links none_exist "$WANTS" "$ALIAS"
check purge-removed-state none_exist /var/lib/gpuswitch /etc/gpuswitch
check group-kept getent group gpuswitch
all_original && result gpu-left-on-host PASS || result gpu-left-on-host FAIL "$(state)"
finish
