#!/bin/bash
# vmtest-seconds: 15
# A GPU that goes and comes back while the daemon runs, as a card reset by
# `echo 1 > .../remove` and `echo 1 > /sys/bus/pci/rescan`: the monitor
# sees it go (InterfacesRemoved) and come back (InterfacesAdded), Gpus
# follows, the GPU is NoSuchGpu while gone, back on the same object path,
# and switches.  Runs inside the QEMU guest only: it removes PCI devices.
. "$(dirname "$0")/../guest-lib.sh"

. "$(dirname "$0")/../gpu-lib.sh"

wait_for() { # TRIES CMD...: up to TRIES tenths of a second
        local n=$1 i; shift
        for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.1; done; return 1
}
gpus() { busctl --system --timeout=2 get-property org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager Gpus 2>&1; }
in_log() { grep -q -- "$2" "$1"; }   # FILE PATTERN

configure "" "AllowBootVga=yes"   # the guest's only VGA device is the boot VGA
run $CTL status
expect_rc status-before 0

$CTL monitor >/tmp/hotplug-monitor.log 2>&1 & mon=$!
$CTL monitor --json >/tmp/hotplug-monitor.json 2>&1 & monj=$!
# subscribed once each printed the GPU's state
wait_for 100 in_log /tmp/hotplug-monitor.log " state " && wait_for 100 in_log /tmp/hotplug-monitor.json '"state"' \
        || result monitors-started FAIL "$(cat /tmp/hotplug-monitor.log /tmp/hotplug-monitor.json)"

# ---- gone: every function of the slot removed ----------------------------------
for f in $EDU $XHCI $HDA $VGA; do echo 1 > /sys/bus/pci/devices/$f/remove; done
[ -e /sys/bus/pci/devices/$VGA ] && result functions-removed FAIL || result functions-removed PASS
wait_for 100 in_log /tmp/hotplug-monitor.log "$SLOT  .*removed" && result monitor-removed PASS \
        || result monitor-removed FAIL "$(cat /tmp/hotplug-monitor.log)"
run gpus
[ "$OUT" = "ao 0" ] && result gpus-empty PASS || result gpus-empty FAIL "$OUT"
run $CTL status $SLOT
expect_rc status-gone-no-such-gpu 5
run prop Mode
echo "$OUT" | grep -q "Unknown" && result object-gone PASS || result object-gone FAIL "$OUT"

# ---- back: a rescan finds the functions again ----------------------------------
echo 1 > /sys/bus/pci/rescan
wait_for 100 in_log /tmp/hotplug-monitor.log "$SLOT  .*added" && result monitor-added PASS \
        || result monitor-added FAIL "$(cat /tmp/hotplug-monitor.log)"
run gpus
[ "$OUT" = "ao 1 \"$OBJ\"" ] && result gpus-back-same-path PASS || result gpus-back-same-path FAIL "$OUT"
# the functions read once the burst of add events is over
wait_for 50 eval '[ "$(prop Functions | grep -o "$SLOT\.[0-9]" | sort -u | wc -l)" = 4 ]' \
        && result four-functions-back PASS || result four-functions-back FAIL "$(prop Functions)"
run $CTL status $SLOT
expect_rc status-back 0
all_original && result host-drivers-after-rescan PASS "$(state)" || result host-drivers-after-rescan FAIL "$(state)"

kill $mon $monj 2>/dev/null; wait $mon $monj 2>/dev/null
cat /tmp/hotplug-monitor.log
grep -q '"event":"removed"' /tmp/hotplug-monitor.json && grep -q '"event":"added"' /tmp/hotplug-monitor.json \
        && result monitor-json PASS || result monitor-json FAIL "$(cat /tmp/hotplug-monitor.json)"

# ---- and it switches -------------------------------------------------------------
run $CTL vfio
expect_rc vfio-after-rescan 0
all_on vfio-pci && result all-on-vfio PASS || result all-on-vfio FAIL "$(state)"
run $CTL host
expect_rc host-after-rescan 0
all_original && result all-back-original PASS || result all-back-original FAIL "$(state)"

nic_untouched() { [ "$(drv $NIC)" = "${ORIG[$NIC]}" ]; }
nic_untouched && result nic-never-moved PASS || result nic-never-moved FAIL "$(drv $NIC)"
finish
