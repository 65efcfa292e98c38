#!/bin/bash
# Holders (issue 3): processes holding the GPU's nodes are found and named,
# the switch is refused with nothing moved, and --force ends them first.
# The edu function's driver is the nvidia stand-in, whose remove() would
# wait for them forever.
. "$(dirname "$0")/../guest-lib.sh"

. "$(dirname "$0")/../gpu-lib.sh"

# A holder, orphaned so that PID 1 reaps it: NODE [USER] -> its pid in $HOLDER.
# Without udev the DRM and ALSA nodes are root's alone.
hold() {
        local u=${2:-alice}
        ( as_user "$u" bash -c "exec sleep 1000 < $1" & )
        for i in $(seq 50); do HOLDER=$(pgrep -u "$u" -n -x sleep) && break; sleep 0.1; done
        sleep 0.2
}

configure "" "AllowBootVga=yes"
install -m644 /usr/share/doc/gpuswitch/examples/50-gpuswitch-group.rules /etc/polkit-1/rules.d/
usermod -aG gpuswitch alice
sleep 1

run $CTL status
echo "$OUT" | grep -q "$EDU.*gpuswitch_test" && result four-functions-stand-in PASS || result four-functions-stand-in FAIL

run $CTL holders
expect_rc holders-none-rc 0
echo "$OUT" | grep -q "No process holds $SLOT" && result holders-none PASS || result holders-none FAIL "$OUT"

# ---- the nvidia stand-in's node held -----------------------------------------
hold /dev/gpuswitch-test0
echo "holder: $HOLDER"
run $CTL holders
echo "$OUT" | grep -E "^$HOLDER +alice +sleep +gpuswitch-test0$" >/dev/null \
        && result holders-named PASS || result holders-named FAIL "$OUT"
run $CTL --json holders
echo "$OUT" | python3 -c "import json,sys; h=json.load(sys.stdin)['holders']; sys.exit(0 if any(x['pid']==$HOLDER and x['user']=='alice' and x['node']=='gpuswitch-test0' for x in h) else 1)" \
        && result holders-json PASS || result holders-json FAIL "$OUT"
run busctl --system call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager ListHolders s ""
echo "$OUT" | grep -q "$HOLDER 1001 \"sleep\" \"gpuswitch-test0\"" && result holders-busctl PASS || result holders-busctl FAIL "$OUT"

run as_user alice $CTL --no-ask-password vfio
expect_rc in-use-refused 3
echo "$OUT" | grep -q "^  $HOLDER sleep (uid 1001) holds gpuswitch-test0 (blocks the unbind)$" && result in-use-names-holder PASS \
        || result in-use-names-holder FAIL "$OUT"
all_original && kill -0 $HOLDER && result in-use-nothing-moved PASS || result in-use-nothing-moved FAIL "$(state)"

# ending other processes is an action of its own: the group rule does not grant it
run as_user alice $CTL --no-ask-password --force vfio
expect_rc force-needs-its-own-authorization 4
all_original && kill -0 $HOLDER && result force-denied-nothing-ended PASS || result force-denied-nothing-ended FAIL "$(state)"

run $CTL --force vfio
expect_rc force-switches 0
echo "$OUT" | grep -qE "^  $HOLDER sleep \(alice\) holds gpuswitch-test0  \[another user\]$" \
        && result force-names-before-ending PASS || result force-names-before-ending FAIL "$OUT"
! kill -0 $HOLDER 2>/dev/null && result force-ended-holder PASS || result force-ended-holder FAIL "pid $HOLDER alive"
all_on vfio-pci && result force-all-on-vfio PASS || result force-all-on-vfio FAIL "$(state)"
run $CTL host
expect_rc force-back-host 0
all_original && result force-back-original PASS || result force-back-original FAIL "$(state)"

# ---- the bochs function's DRM node held ----------------------------------------
card=$(basename /sys/bus/pci/devices/$VGA/drm/card*)
hold /dev/dri/$card root
run $CTL holders
echo "$OUT" | grep -E "^$HOLDER +root +sleep +$card$" >/dev/null && result drm-holder-found PASS \
        || result drm-holder-found FAIL "$OUT"
run $CTL vfio
expect_rc drm-holder-refused 3
all_original && result drm-holder-nothing-moved PASS || result drm-holder-nothing-moved FAIL "$(state)"
kill $HOLDER
$CTL host >/dev/null 2>&1

# ---- the HD audio function's ALSA control node --------------------------------
ctl=$(basename /sys/bus/pci/devices/$HDA/sound/card*/controlC*)
hold /dev/snd/$ctl root
run $CTL holders
echo "$OUT" | grep -E "^$HOLDER +root +sleep +$ctl$" >/dev/null && result alsa-holder-found PASS \
        || result alsa-holder-found FAIL "$OUT"
kill $HOLDER
sleep 0.2
run $CTL vfio
expect_rc free-again-switches 0
run $CTL host
all_original && result holders-end-original PASS || result holders-end-original FAIL "$(state)"
finish
