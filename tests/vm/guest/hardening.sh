#!/bin/bash
# vmtest: systemd
# vmtest-seconds: 90
# The hardened gpuswitchd.service (issues 5 and 12): its exposure as
# systemd-analyze rates the installed unit (at most 2.0), the sandbox in
# force on the running daemon (no CAP_SYS_MODULE, read-only
# /sys/devices/system and /sys/devices/virtual, TasksMax=), a full round
# trip under it with vfio-pci loaded through modprobe@vfio_pci.service and a
# holder of another user found and ended, host drivers loaded the same way
# on the way back, a module that does not come named with its unit,
# uevents followed without a network, and each capability's need: the same
# call under the unit without it fails.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"

UNIT=gpuswitchd.service
DROPIN=/run/systemd/system/$UNIT.d/50-test-drop.conf
# the three capabilities' bits: DAC_READ_SEARCH 2, KILL 5, SYS_PTRACE 19
CAPS=0000000000080024
CAP_SYS_MODULE_BIT=16
TASKS_MAX=32

main_pid() { systemctl show -P MainPID $UNIT; }
cap_line() { awk -v k="$1:" '$1 == k {print $2}' /proc/"$(main_pid)"/status; }
has_cap() { (( (16#$(cap_line CapBnd) >> $1) & 1 )); }
restart_under() { # DROP-IN LINE, or nothing for the unit as installed
        if [ $# -gt 0 ]; then
                mkdir -p "${DROPIN%/*}"; printf '[Service]\n%s\n' "$1" > "$DROPIN"
        else
                rm -f "$DROPIN"
        fi
        systemctl daemon-reload
        systemctl restart $UNIT
}
# A holder: NODE USER [root] -> its pid in $HOLDER.  With "root" the node is
# opened by root and handed to USER's process (the DRM node is not alice's
# to open).  Orphaned, so that PID 1 reaps it.
hold() {
        if [ "${3:-}" = root ]; then ( as_user "$2" sleep 1000 < "$1" & )
        else ( as_user "$2" bash -c "exec sleep 1000 < $1" & ); fi
        for _ in $(seq 50); do HOLDER=$(pgrep -u "$2" -n -x sleep) && break; sleep 0.1; done
        sleep 0.2
}
# ListHolders, as root: HOLDER UID -> the daemon names that process
holder_listed() {
        busctl --system call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager ListHolders s "" \
                | grep -q " $1 $2 \"sleep\""
}
holds() { [ "$(readlink /proc/"$1"/fd/0)" = "$2" ]; }   # PID NODE: that process has NODE open
mode_is() { [ "$(prop Mode)" = "s \"$1\"" ]; }
vfio_loaded() { [ -d /sys/module/vfio_pci ]; }
# The journal's position now, and whether systemd ran UNIT after it: its
# own "Starting"/"Finished" lines, as the unit may be unloaded once done.
journal_mark() { journalctl -n 0 --show-cursor --no-pager | sed -n 's/^-- cursor: //p'; }
ran_since() { # CURSOR UNIT
        local i
        for i in $(seq 20); do
                journalctl --after-cursor="$1" -u "$2" --no-pager -q -o cat | grep -q . && return 0
                sleep 0.1
        done
        return 1
}
cgroup_of() { sed -n 's/^0:://p' /proc/"$1"/cgroup; }
unload_vfio() { vfio_loaded && modprobe -r vfio_pci; ! vfio_loaded; }
mount_of() { awk -v m="$2" '$5 == m' /proc/"$1"/mountinfo | tail -1; }   # PID MOUNTPOINT: the mount in force there
dropped() { # NAME BIT: the restarted daemon lacks that capability
        ! has_cap "$2" && result "without-$1-dropped" PASS || result "without-$1-dropped" FAIL "$(cap_line CapBnd)"; }

check systemd-is-pid1 test "$(cat /proc/1/comm)" = systemd
configure "" "AllowBootVga=yes"
check vfio-pci-not-loaded-at-start unload_vfio

# ---- the installed unit, as systemd rates it ---------------------------------
run $CTL status
expect_rc status-activates-unit 0
[ "$(systemctl is-active $UNIT)" = active ] && [ "$(main_pid)" = "$(pgrep -x gpuswitchd)" ] \
        && result daemon-runs-under-unit PASS "pid $(main_pid)" || result daemon-runs-under-unit FAIL
run systemd-analyze security --no-pager $UNIT
score=$(echo "$OUT" | sed -n 's/^.*Overall exposure level for [^:]*: \([0-9.]*\) .*$/\1/p')
# --threshold in tenths: systemd's own judgement of "at most 2.0"
if [ -n "$score" ] && systemd-analyze security --no-pager --threshold=20 $UNIT >/dev/null 2>&1; then
        result exposure-at-most-2.0 PASS "exposure $score"
else
        result exposure-at-most-2.0 FAIL "exposure '$score'"
fi
echo "$OUT" | grep -q '^✓ CapabilityBoundingSet=~CAP_SYS_MODULE ' && echo "$OUT" | grep -q '^✓ SystemCallFilter=~@module ' \
        && result analyze-no-module-loading PASS || result analyze-no-module-loading FAIL "$(echo "$OUT" | grep -E 'SYS_MODULE|@module')"

# ---- the sandbox in force on the running daemon -------------------------------
pid=$(main_pid)
[ "$(cap_line CapBnd)" = $CAPS ] && [ "$(cap_line CapEff)" = $CAPS ] \
        && result capabilities-three-only PASS "$CAPS" \
        || result capabilities-three-only FAIL "bounding $(cap_line CapBnd) effective $(cap_line CapEff)"
! has_cap $CAP_SYS_MODULE_BIT && result no-cap-sys-module PASS || result no-cap-sys-module FAIL "$(cap_line CapBnd)"
[ "$(cap_line NoNewPrivs)" = 1 ] && [ "$(cap_line Seccomp)" = 2 ] && result no-new-privs-seccomp PASS \
        || result no-new-privs-seccomp FAIL "$(grep -E 'NoNewPrivs|Seccomp:' /proc/$pid/status | tr '\n' ' ')"
[ "$(readlink /proc/$pid/ns/net)" != "$(readlink /proc/1/ns/net)" ] && result private-network PASS \
        || result private-network FAIL "$(readlink /proc/$pid/ns/net)"
mount_of $pid /proc | grep -q hidepid=invisible && result proc-hidepid-invisible PASS \
        || result proc-hidepid-invisible FAIL "$(mount_of $pid /proc)"
mount_of $pid /sys/bus/pci | grep -q ' rw,' && mount_of $pid /sys | grep -q ' ro,' && mount_of $pid / | grep -q ' ro,' \
        && result writable-sysfs-pci-only PASS \
        || result writable-sysfs-pci-only FAIL "$(mount_of $pid /; mount_of $pid /sys; mount_of $pid /sys/bus/pci)"
mount_of $pid /sys/devices | grep -q ' rw,' && mount_of $pid /sys/devices/system | grep -q ' ro,' \
        && mount_of $pid /sys/devices/virtual | grep -q ' ro,' && result sys-devices-system-virtual-read-only PASS \
        || result sys-devices-system-virtual-read-only FAIL "$(mount_of $pid /sys/devices/system; mount_of $pid /sys/devices/virtual)"
cg=$(cgroup_of $pid)
[ "$(systemctl show -P TasksMax $UNIT)" = $TASKS_MAX ] && [ "$(cat /sys/fs/cgroup"$cg"/pids.max)" = $TASKS_MAX ] \
        && result tasks-max PASS "$cg: pids.max $TASKS_MAX" \
        || result tasks-max FAIL "TasksMax=$(systemctl show -P TasksMax $UNIT), $cg pids.max $(cat /sys/fs/cgroup"$cg"/pids.max)"

# ---- a full round trip under it ------------------------------------------------
# A holder of another user on the nvidia stand-in's node: found through its
# /proc/PID/fd, ended on --force, and vfio-pci loaded by systemd for the
# daemon, which may not load it itself.
hold /dev/gpuswitch-test0 alice
mark=$(journal_mark)
holder_listed "$HOLDER" 1001 && result other-users-holder-found PASS "pid $HOLDER" \
        || result other-users-holder-found FAIL "pid $HOLDER"
run $CTL --force vfio
expect_rc force-vfio 0
! kill -0 "$HOLDER" 2>/dev/null && result other-users-holder-ended PASS || result other-users-holder-ended FAIL
vfio_loaded && ran_since "$mark" modprobe@vfio_pci.service \
        && result vfio-pci-loaded-by-modprobe-unit PASS || result vfio-pci-loaded-by-modprobe-unit FAIL \
        "loaded: $(vfio_loaded && echo yes || echo no); $(journalctl --after-cursor="$mark" --no-pager -o cat | grep -i modprobe)"
all_on vfio-pci && for f in $FNS; do [ "$(override $f)" = vfio-pci ] || false; done \
        && result all-on-vfio-pci PASS "$(state)" || result all-on-vfio-pci FAIL "$(state)"
run "$VFIOCHECK" "$(grp $VGA)" "$VGA"
expect_rc group-viable 0
mode_is vfio && result mode-vfio PASS || result mode-vfio FAIL "$(prop Mode)"
# The host drivers, gone while the GPU was on vfio-pci, are loaded the same
# way on the way back: snd_hda_intel by its name, bochs by the VGA
# function's modalias (its driver is bochs-drm: no module by that name).
check host-drivers-unloaded modprobe -r bochs snd_hda_intel
mark=$(journal_mark)
run $CTL host
expect_rc host 0
all_original && mode_is host && result back-to-host-drivers PASS "$(state)" || result back-to-host-drivers FAIL "$(state)"
ran_since "$mark" modprobe@snd_hda_intel.service \
        && ran_since "$mark" "modprobe@$(cat /sys/bus/pci/devices/$VGA/modalias).service" \
        && result host-drivers-loaded-by-modprobe-units PASS || result host-drivers-loaded-by-modprobe-units FAIL \
        "$(journalctl --after-cursor="$mark" --no-pager -o cat | grep -i modprobe)"

# Without a network of its own, the kernel's uevents still reach the daemon:
# an outside rebind turns Mode to mixed (Mode is only re-read on a uevent).
echo vfio-pci > /sys/bus/pci/devices/$XHCI/driver_override
echo $XHCI > /sys/bus/pci/devices/$XHCI/driver/unbind
echo $XHCI > /sys/bus/pci/drivers_probe
for _ in $(seq 30); do mode_is mixed && break; sleep 0.2; done
mode_is mixed && result uevents-without-network PASS || result uevents-without-network FAIL "$(prop Mode)"
run $CTL host
all_original && result mixed-repaired PASS || result mixed-repaired FAIL "$(state)"

# ---- each capability's need: the same call without it fails ---------------------
# CAP_SYS_PTRACE: no holder is found, not even root's (a root process has
# capabilities the daemon lacks, and reading its fds is a ptrace check).
# CAP_DAC_READ_SEARCH: another user's holder is not found; root's still is,
# so the scan itself works.
for cap in SYS_PTRACE:19:missed DAC_READ_SEARCH:2:found; do
        IFS=: read -r name bit root_holder <<< "$cap"
        restart_under "CapabilityBoundingSet=~CAP_$name"
        dropped "$name" "$bit"
        hold /dev/gpuswitch-test0 alice; a=$HOLDER
        hold /dev/gpuswitch-test0 root; r=$HOLDER
        listed=$(busctl --system call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager ListHolders s "")
        holds "$a" /dev/gpuswitch-test0 && ! holder_listed "$a" 1001 && result "without-$name-other-users-holder-missed" PASS \
                || result "without-$name-other-users-holder-missed" FAIL "alice's $a in: $listed"
        holds "$r" /dev/gpuswitch-test0 && if [ "$root_holder" = found ]; then holder_listed "$r" 0; else ! holder_listed "$r" 0; fi \
                && result "without-$name-root-holder-$root_holder" PASS "$listed" \
                || result "without-$name-root-holder-$root_holder" FAIL "root's $r in: $listed"
        kill "$a" "$r"
done

# CAP_KILL: --force cannot end another user's holder.  On the DRM card node:
# bochs-drm's remove() does not wait for its users, so the switch goes on
# whatever becomes of the holder.
restart_under "CapabilityBoundingSet=~CAP_KILL"
dropped KILL 5
card=$(basename /sys/bus/pci/devices/$VGA/drm/card*)
hold /dev/dri/$card alice root
holder_listed "$HOLDER" 1001 && result without-KILL-holder-found PASS || result without-KILL-holder-found FAIL
run timeout 120 $CTL --force vfio
kill -0 "$HOLDER" 2>/dev/null && result without-KILL-holder-survives PASS "rc=$RC" \
        || result without-KILL-holder-survives FAIL "rc=$RC"
kill "$HOLDER"
run $CTL host
all_original && result without-KILL-back-to-host PASS || result without-KILL-back-to-host FAIL "$(state)"

# A module that does not come (here modprobe told to run /bin/true
# instead): modprobe@ ends "done" all the same, the daemon finds no
# vfio-pci driver and says so, naming the unit; nothing moved.
check vfio-pci-unloaded-again unload_vfio
echo 'install vfio_pci /bin/true' > /etc/modprobe.d/gpuswitch-test-no-vfio.conf
run $CTL vfio
expect_rc missing-module-switch-fails 1
echo "$OUT" | grep -q "cannot load vfio-pci" && all_original && ! vfio_loaded \
        && result missing-module-nothing-moved PASS || result missing-module-nothing-moved FAIL "$(state)"
journalctl -u $UNIT --no-pager -o cat | grep -q 'modprobe@vfio_pci.service finished (result "done"), but no PCI driver vfio-pci' \
        && result missing-module-error-names-unit PASS \
        || result missing-module-error-names-unit FAIL "$(journalctl -u $UNIT --no-pager -o cat | tail -5)"
rm /etc/modprobe.d/gpuswitch-test-no-vfio.conf

# ---- the unit as installed again ------------------------------------------------
restart_under
[ "$(cap_line CapBnd)" = $CAPS ] && result unit-restored PASS || result unit-restored FAIL "$(cap_line CapBnd)"
run $CTL vfio
expect_rc restored-vfio 0
vfio_loaded && all_on vfio-pci && result restored-loads-vfio-pci PASS || result restored-loads-vfio-pci FAIL "$(state)"
run $CTL host
all_original && result restored-back PASS || result restored-back FAIL "$(state)"

journalctl -u $UNIT --no-pager -o cat | tail -25
finish
