# Sourced by the guest test scripts (tests/vm/guest/*.sh), inside the QEMU
# guest only: these helpers read the guest's sysfs; the scripts write it.
. "$(dirname "${BASH_SOURCE[0]}")/testvm-guard.sh"
testvm_guard "${0##*/}"

# The emulated GPU (see run-vm-test.sh): VGA 1234:1111, HDA 8086:293e,
# xHCI 1b36:000d and edu 1234:11e8 (on gpuswitch_test, the nvidia stand-in)
# on one slot; the NIC e1000e 8086:10d3 on another.  A second GPU
# (guest/two-gpus.sh): bochs-display 1234:1111 class 0x038000 and HDA
# 8086:2668 on one slot behind a PCIe-to-PCI bridge, with an xHCI
# 1033:0194 on the bus of a PCI bridge beside them, all in one IOMMU
# group; find_bdf 0x1234 0x1111 still finds the first GPU's VGA, on the
# lower bus.

# Builtins only where they are called often: every exec comes over 9p and
# costs 50-100 ms under TCG (cat on each device made gpu_fns take 4 s).
find_bdf() { # VENDOR DEVICE -> the first function with those IDs
        local d v i
        for d in /sys/bus/pci/devices/*; do
                read -r v < "$d/vendor"; read -r i < "$d/device"
                [ "$v" = "$1" ] && [ "$i" = "$2" ] && { echo "${d##*/}"; return 0; }
        done
        return 1
}
find_class() { # VENDOR DEVICE CLASS -> the first function with those IDs and that class
        local d v i c
        for d in /sys/bus/pci/devices/*; do
                read -r v < "$d/vendor"; read -r i < "$d/device"; read -r c < "$d/class"
                [ "$v" = "$1" ] && [ "$i" = "$2" ] && [ "$c" = "$3" ] && { echo "${d##*/}"; return 0; }
        done
        return 1
}
gpu_fns() {
        echo "$(find_bdf 0x1234 0x1111) $(find_bdf 0x8086 0x293e) $(find_bdf 0x1b36 0x000d) $(find_bdf 0x1234 0x11e8)"
}
nic_bdf() { find_bdf 0x8086 0x10d3; }

link_name() { # PATH -> the last part of where the symlink PATH leads
        local p
        p=$(cd -P "$1" 2>/dev/null && echo "$PWD") || return 1
        echo "${p##*/}"
}
drv() { link_name "/sys/bus/pci/devices/$1/driver" || echo none; }  # BDF -> its driver, or "none"
override() { local o; read -r o < "/sys/bus/pci/devices/$1/driver_override"; echo "$o"; }  # BDF -> "(null)" when unset
grp() { link_name "/sys/bus/pci/devices/$1/iommu_group"; }  # BDF -> its IOMMU group number

VMTEST_PASS=0
VMTEST_FAIL=0
result() { # NAME PASS|FAIL [DETAIL]
        echo "RESULT $1 $2 ${3:-}"
        if [ "$2" = PASS ]; then VMTEST_PASS=$((VMTEST_PASS + 1)); else VMTEST_FAIL=$((VMTEST_FAIL + 1)); fi
}
check() { # NAME CMD...: PASS when the command succeeds
        local name=$1; shift
        if "$@"; then result "$name" PASS; else result "$name" FAIL "$*"; fi
}
bus_has_owner() { # NAME: someone owns it on the system bus
        dbus-send --system --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.NameHasOwner \
                "string:$1" 2>/dev/null | grep -q 'boolean true'
}
as_user() { # USER CMD...: with the user's uid, gid and groups, as a login would
        local u=$1; shift
        setpriv --reuid="$u" --regid="$u" --init-groups -- env HOME=/tmp USER="$u" "$@"
}
sanitizer_check() { # a sanitized build (guest-init.sh): the daemon stopped, so that LeakSanitizer runs; no report left
        local i f
        pkill -TERM -x gpuswitchd
        for i in $(seq 300); do pgrep -x gpuswitchd >/dev/null || break; sleep 0.1; done
        pgrep -x gpuswitchd >/dev/null && result sanitizer-daemon-stopped FAIL "gpuswitchd still running 30 s after SIGTERM"
        local reports=0
        for f in "$VMTEST_SANDIR"/*; do
                [ -e "$f" ] || continue
                result "sanitizer-report-${f##*/}" FAIL
                cat "$f"; rm -f "$f"   # reported: the next script in this boot starts with none
                reports=$((reports + 1))
        done
        [ $reports != 0 ] || result sanitizer-no-reports PASS
}
# The kernel's log from a point on: a marker written to it, then the lines
# after the marker (counting lines breaks once the ring buffer wraps).
kmsg_mark() { local m="gpuswitch-test-mark-$RANDOM$RANDOM"; echo "$m" > /dev/kmsg; echo "$m"; }
kmsg_since() { dmesg | sed -n "/$1/,\$p"; }   # MARK

# The guest's stage 2 (guest-init.sh) runs the scripts of a boot one after
# another, resetting the guest between them: finish ends the script, and
# stage 2 powers the guest off after the last one.
finish() {
        [ "${VMTEST_SANITIZE:-0}" = 1 ] && sanitizer_check
        echo "==== kernel warnings"
        dmesg | tail -n +"${VMTEST_DMESG_FROM:-1}" | grep -E 'WARNING|BUG|Oops|Call Trace' | head -20
        echo "VMTEST: $VMTEST_PASS passed, $VMTEST_FAIL failed in $(basename "$0")"
        [ -n "${VMTEST_FINISHED:-}" ] && : > "$VMTEST_FINISHED"
        exit 0
}
