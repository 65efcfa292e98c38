#!/bin/bash
# vmtest-seconds: 45
# The daemon, installed as on a user's machine, with dbus-daemon and polkitd:
# the acceptance tests of switching a GPU (issue 2).  Runs as PID 1's child
# inside the QEMU guest, never on the host: it rebinds PCI devices.
. "$(dirname "$0")/../guest-lib.sh"

. "$(dirname "$0")/../gpu-lib.sh"

nic_untouched() { [ "$(drv $NIC)" = "${ORIG[$NIC]}" ] && [ "$(override $NIC)" = "(null)" ]; }
restart_daemon() { # stop the daemon; the next call activates it again
        pkill -x gpuswitchd; for i in $(seq 50); do pgrep -x gpuswitchd >/dev/null || break; sleep 0.1; done
}

# ---- install-time setup, as a user would do it ----------------------------
configure

# ---- status, through bus activation ---------------------------------------
run $CTL status
expect_rc status-runs 0
echo "$OUT" | grep -q "$SLOT" && echo "$OUT" | grep -qw host && echo "$OUT" | grep -q "$VGA" \
        && result status-shows-gpu PASS || result status-shows-gpu FAIL "$OUT"
pgrep -x gpuswitchd >/dev/null && result bus-activation PASS || result bus-activation FAIL "no gpuswitchd process"
run $CTL --json status
echo "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d)' >/dev/null 2>&1 \
        && result status-json PASS || result status-json FAIL "$OUT"
run prop Mode
[ "$OUT" = 's "host"' ] && result mode-property-host PASS || result mode-property-host FAIL "$OUT"

# ---- the boot VGA is refused unless the config allows it -----------------
if [ "$(cat /sys/bus/pci/devices/$VGA/boot_vga 2>/dev/null)" = 1 ]; then
        run $CTL vfio
        expect_rc boot-vga-refused 1
        echo "$OUT" | grep -qi "boot VGA" && all_original && result boot-vga-refused-message PASS \
                || result boot-vga-refused-message FAIL "$OUT $(state)"
        configure "" "AllowBootVga=yes"
        restart_daemon
fi

# ---- dry run --------------------------------------------------------------
run $CTL plan vfio
expect_rc plan-runs 0
echo "$OUT" | grep -q vfio-pci && all_original && result plan-changes-nothing PASS \
        || result plan-changes-nothing FAIL "$(state)"

# ---- unprivileged, no polkit rule: denied, nothing moved --------------------
run as_user alice $CTL --no-ask-password vfio
expect_rc unprivileged-denied 4
all_original && result unprivileged-denied-nothing-moved PASS || result unprivileged-denied-nothing-moved FAIL "$(state)"
run as_user alice busctl --system call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager Switch sst "" vfio 0
[ $RC != 0 ] && echo "$OUT" | grep -qiE "AccessDenied|not authorized|Access denied|Interactive" && all_original \
        && result busctl-unprivileged-denied PASS || result busctl-unprivileged-denied FAIL "$OUT"

# ---- the group rule: alice may switch ----------------------------------------
install -m644 /usr/share/doc/gpuswitch/examples/50-gpuswitch-group.rules /etc/polkit-1/rules.d/
usermod -aG gpuswitch alice
sleep 1   # polkitd reloads rules.d on its own (inotify)
run as_user alice $CTL --no-ask-password vfio
expect_rc group-user-vfio 0
all_on vfio-pci && for f in $FNS; do [ "$(override $f)" = vfio-pci ] || false; done \
        && result every-function-on-vfio-pci PASS "$(state)" || result every-function-on-vfio-pci FAIL "$(state)"
G=$(grp $VGA)
run $VFIOCHECK $G $VGA --dma
expect_rc vfio-group-viable-and-opens 0
run prop Mode
[ "$OUT" = 's "vfio"' ] && result mode-property-vfio PASS || result mode-property-vfio FAIL "$OUT"
nic_untouched && result nic-untouched-1 PASS || result nic-untouched-1 FAIL "$(drv $NIC)"

run as_user alice $CTL --no-ask-password host
expect_rc group-user-host 0
all_original && result back-to-host-drivers-override-cleared PASS "$(state)" \
        || result back-to-host-drivers-override-cleared FAIL "$(state)"

# ---- the same through busctl ----------------------------------------------------
run as_user alice busctl --system call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager Switch sst "$SLOT" vfio 0
expect_rc busctl-switch-vfio 0
all_on vfio-pci && result busctl-vfio-state PASS || result busctl-vfio-state FAIL "$(state)"
run as_user alice busctl --system call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager Switch sst "$VGA" host 0
expect_rc busctl-switch-host 0
all_original && result busctl-host-state PASS || result busctl-host-state FAIL "$(state)"

# ---- bad input: clear errors, nothing moved, the daemon lives -------------------
run $CTL vfio ../../../etc
expect_rc client-rejects-path 2
run $CTL frobnicate
expect_rc client-rejects-unknown-verb 2
run $CTL plan warp
expect_rc client-rejects-unknown-mode 2
run $CTL vfio 0000:3f:00
expect_rc no-such-gpu 5
echo "$OUT" | grep -q "0000:3f:00" && result no-such-gpu-named PASS || result no-such-gpu-named FAIL "$OUT"
run busctl --system call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager Switch sst "0000:01:00/../../../devices" vfio 0
echo "$OUT" | grep -q "not a PCI address" && result bus-rejects-path PASS || result bus-rejects-path FAIL "$OUT"
run busctl --system call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager Switch sst "" warp 0
echo "$OUT" | grep -q "unknown mode" && result bus-rejects-mode PASS || result bus-rejects-mode FAIL "$OUT"
run busctl --system call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager Switch sst "" vfio 0x80
echo "$OUT" | grep -q "unknown flags" && result bus-rejects-flags PASS || result bus-rejects-flags FAIL "$OUT"
run busctl --system call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager Plan ss "$(head -c 3000 /dev/zero | tr '\0' a)" vfio
echo "$OUT" | grep -q "not a PCI address" && result bus-rejects-long PASS || result bus-rejects-long FAIL "$OUT"
all_original && pgrep -x gpuswitchd >/dev/null && result bad-input-changed-nothing PASS \
        || result bad-input-changed-nothing FAIL "$(state)"

# ---- two clients at once ------------------------------------------------------------
as_user alice $CTL --no-ask-password vfio >/tmp/c1.out 2>&1 & p1=$!
as_user alice $CTL --no-ask-password vfio >/tmp/c2.out 2>&1 & p2=$!
wait $p1; r1=$?; wait $p2; r2=$?
echo "concurrent vfio: rc $r1 $r2: $(cat /tmp/c1.out /tmp/c2.out | tr '\n' ' ')"
{ [ $r1 = 0 ] || [ $r2 = 0 ]; } && { [ $r1 = 0 ] || [ $r1 = 6 ]; } && { [ $r2 = 0 ] || [ $r2 = 6 ]; } && all_on vfio-pci \
        && result concurrent-same-mode PASS "rc $r1 $r2" || result concurrent-same-mode FAIL "rc $r1 $r2 $(state)"
as_user alice $CTL --no-ask-password host >/tmp/c1.out 2>&1 & p1=$!
as_user alice $CTL --no-ask-password vfio >/tmp/c2.out 2>&1 & p2=$!
wait $p1; r1=$?; wait $p2; r2=$?
mode=$(busctl --system get-property org.gpuswitch1 /org/gpuswitch1/gpu/${SLOT//:/_} org.gpuswitch1.Gpu Mode)
echo "concurrent host+vfio: rc $r1 $r2, mode $mode: $(state)"
{ { [ "$mode" = 's "vfio"' ] && all_on vfio-pci; } || { [ "$mode" = 's "host"' ] && all_original; }; } \
        && result concurrent-opposite-consistent PASS "$mode" || result concurrent-opposite-consistent FAIL "$mode $(state)"
$CTL host >/dev/null 2>&1
all_original && result back-home PASS || result back-home FAIL "$(state)"

# ---- the bus is answered while a switch is under way ------------------------
# Mode is "switching" only while the worker thread does the kernel writes.
# The stand-in's remove() waits while pinned, so the switch holds at its
# first unbind for as long as the test asks (a quick switch under a loaded
# TCG guest could end before a polling busctl even started).
echo 1 > /sys/module/gpuswitch_test/parameters/pin
$CTL vfio >/tmp/sw.out 2>&1 & sw=$!
seen=""
for i in $(seq 20); do
        m=$(busctl --system --timeout=2 get-property org.gpuswitch1 /org/gpuswitch1/gpu/${SLOT//:/_} org.gpuswitch1.Gpu Mode 2>&1)
        seen="$seen ${m#s }"
        [ "$m" = 's "switching"' ] && break
        sleep 0.2
done
kill -0 $sw 2>/dev/null && still=1 || still=0
echo 0 > /sys/module/gpuswitch_test/parameters/pin
wait $sw; rsw=$?
echo "Mode replies during the switch:$seen"
[ $rsw = 0 ] && [ $still = 1 ] && echo "$seen" | grep -q '"switching"' && result answered-while-switching PASS \
        || result answered-while-switching FAIL "rc=$rsw still=$still seen:$seen"
$CTL host >/dev/null 2>&1

# ---- PropertiesChanged when Mode changes ---------------------------------------
busctl --system monitor org.gpuswitch1 >/tmp/monitor.log 2>&1 & mon=$!
sleep 0.5
$CTL vfio >/dev/null 2>&1; $CTL host >/dev/null 2>&1
sleep 0.5; kill $mon 2>/dev/null
grep -q PropertiesChanged /tmp/monitor.log && grep -q '"switching"' /tmp/monitor.log \
        && result properties-changed-emitted PASS || result properties-changed-emitted FAIL "$(grep -c . /tmp/monitor.log) lines"

# ---- someone else rebinds a function: the daemon follows (uevents) ------------
echo vfio-pci > /sys/bus/pci/devices/$XHCI/driver_override
echo $XHCI > /sys/bus/pci/devices/$XHCI/driver/unbind
echo $XHCI > /sys/bus/pci/drivers_probe
sleep 0.5
run prop Mode
[ "$OUT" = 's "mixed"' ] && result external-rebind-seen-mixed PASS || result external-rebind-seen-mixed FAIL "$OUT"
run $CTL host
expect_rc mixed-back-to-host 0
all_original && result mixed-repaired PASS || result mixed-repaired FAIL "$(state)"

# ---- a failure mid-switch is rolled back ----------------------------------------
# The nvidia stand-in fails every probe (its fail_probe parameter): back to
# the host the functions move .0, .1, .2, then .3 fails even after a second
# probe, which leaves three functions to roll back to vfio-pci.
$CTL vfio >/dev/null 2>&1
echo 1000 > /sys/module/gpuswitch_test/parameters/fail_probe
run $CTL host
expect_rc injected-failure-fails 1
echo "$OUT" | grep -q "failed at $EDU" && echo "$OUT" | grep -q "rolled back" \
        && result injected-failure-says-rolled-back PASS || result injected-failure-says-rolled-back FAIL "$OUT"
all_on vfio-pci && for f in $FNS; do [ "$(override $f)" = vfio-pci ] || false; done \
        && result injected-failure-rolled-back PASS "$(state)" || result injected-failure-rolled-back FAIL "$(state)"
echo 0 > /sys/module/gpuswitch_test/parameters/fail_probe
run $CTL host
expect_rc host-after-injected-failure 0
all_original && result host-after-injected-failure-original PASS "$(state)" \
        || result host-after-injected-failure-original FAIL "$(state)"

nic_untouched && result nic-never-moved PASS "$(drv $NIC)" || result nic-never-moved FAIL "$(drv $NIC)"
finish
