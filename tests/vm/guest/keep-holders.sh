#!/bin/bash
# Holders that do not block (issue 13): the unbind of a driver that unplugs
# its DRM device (bochs-drm) or of the xHCI goes through while a process
# holds one of their nodes, so with --keep-holders the switch leaves those
# processes running (they lose the device).  A holder whose driver waits
# for it still refuses: snd_hda_intel's remove() (snd_card_free()) waits
# until every ALSA file is closed, and the stand-in's, as nvidia's, for its
# users.  A group member whose rule grants switching alone may use it.
. "$(dirname "$0")/../guest-lib.sh"

. "$(dirname "$0")/../gpu-lib.sh"

# A holder, orphaned so that PID 1 reaps it: NODE [USER] -> its pid in $HOLDER.
hold() {
        local u=${2:-root} before
        before=$(pgrep -u "$u" -x sleep | tr '\n' ' ')
        ( as_user "$u" bash -c "exec sleep 1000 < $1" & )
        HOLDER=
        for i in $(seq 50); do
                for p in $(pgrep -u "$u" -x sleep); do [[ " $before " == *" $p "* ]] || HOLDER=$p; done
                [ -n "$HOLDER" ] && break; sleep 0.1
        done
        sleep 0.2
}
alive() { local p; for p; do kill -0 "$p" 2>/dev/null || return 1; done; }
line() { echo "$OUT" | grep -q -- "$1"; }   # REGEX: a line of the last run's output matches

configure "" "AllowBootVga=yes"
install -m644 /usr/share/doc/gpuswitch/examples/50-gpuswitch-group.rules /etc/polkit-1/rules.d/
usermod -aG gpuswitch alice
sleep 1

card=$(basename /sys/bus/pci/devices/$VGA/drm/card*)
ctl=$(basename /sys/bus/pci/devices/$HDA/sound/card*/controlC*)
read -r bus < "$(ls -d /sys/bus/pci/devices/$XHCI/usb* | head -1)/busnum"
hub=bus/usb/$(printf %03d "$bus")/001
echo "nodes: $card $ctl $hub"

# ---- DRM and USB holders alone ----------------------------------------------
hold /dev/dri/$card; DRM=$HOLDER
hold /dev/$hub; USB=$HOLDER
echo "holders: drm $DRM usb $USB"
run $CTL holders
echo "$OUT" | grep -E "^$USB +root +sleep +$hub$" >/dev/null && result usb-holder-listed PASS \
        || result usb-holder-listed FAIL "$OUT"

# without the option: refused as before, each named as losing the device
run as_user alice $CTL --no-ask-password vfio
expect_rc without-option-refused 3
line "^  $DRM sleep (uid 0) holds $card (would lose the device)$" && line "^  $USB sleep (uid 0) holds $hub (would lose the device)$" \
        && line "keep-holders" && result without-option-says-they-lose-it PASS || result without-option-says-they-lose-it FAIL "$OUT"
all_original && alive $DRM $USB && result without-option-nothing-moved PASS || result without-option-nothing-moved FAIL "$(state)"

# with it: the whole GPU to vfio-pci, as a group member (switch alone), the holders running
run as_user alice $CTL --no-ask-password --keep-holders vfio
expect_rc keep-holders-switches 0
all_on vfio-pci && result keep-holders-all-on-vfio PASS || result keep-holders-all-on-vfio FAIL "$(state)"
alive $DRM $USB && result keep-holders-holders-running PASS || result keep-holders-holders-running FAIL
[[ $(readlink /proc/$DRM/fd/0) == *"(deleted)" ]] && [[ $(readlink /proc/$USB/fd/0) == *"(deleted)" ]] \
        && result keep-holders-holders-lost-the-device PASS \
        || result keep-holders-holders-lost-the-device FAIL "$(readlink /proc/$DRM/fd/0) $(readlink /proc/$USB/fd/0)"
run as_user alice $CTL --no-ask-password host
expect_rc keep-holders-back 0
all_original && result keep-holders-back-original PASS || result keep-holders-back-original FAIL "$(state)"
kill $DRM $USB; sleep 0.2

# ---- a blocking holder beside them -------------------------------------------
card=$(basename /sys/bus/pci/devices/$VGA/drm/card*)
ctl=$(basename /sys/bus/pci/devices/$HDA/sound/card*/controlC*)
hold /dev/dri/$card; DRM=$HOLDER
hold /dev/snd/$ctl; ALSA=$HOLDER
run as_user alice $CTL --no-ask-password --keep-holders vfio
expect_rc alsa-holder-refuses 3
line "^  $ALSA sleep (uid 0) holds $ctl (blocks the unbind)$" && ! line "^  $DRM " \
        && result alsa-holder-named-as-blocking PASS || result alsa-holder-named-as-blocking FAIL "$OUT"
all_original && alive $DRM $ALSA && result alsa-holder-nothing-moved PASS || result alsa-holder-nothing-moved FAIL "$(state)"

# the ALSA holder alone, without the option: refused as before
kill $DRM; sleep 0.2
run as_user alice $CTL --no-ask-password vfio
expect_rc alsa-holder-without-option-refused 3
line "^  $ALSA sleep (uid 0) holds $ctl (blocks the unbind)$" && result alsa-holder-without-option-named PASS \
        || result alsa-holder-without-option-named FAIL "$OUT"
all_original && alive $ALSA && result alsa-holder-without-option-nothing-moved PASS \
        || result alsa-holder-without-option-nothing-moved FAIL "$(state)"
kill $ALSA; sleep 0.2

# the stand-in's node (nvidia's part) beside a DRM holder
hold /dev/dri/$card; DRM=$HOLDER
hold /dev/gpuswitch-test0 alice; STANDIN=$HOLDER
run as_user alice $CTL --no-ask-password --keep-holders vfio
expect_rc standin-holder-refuses 3
line "^  $STANDIN sleep (uid 1001) holds gpuswitch-test0 (blocks the unbind)$" && ! line "^  $DRM " \
        && result standin-holder-named-as-blocking PASS || result standin-holder-named-as-blocking FAIL "$OUT"
all_original && alive $DRM $STANDIN && result standin-holder-nothing-moved PASS \
        || result standin-holder-nothing-moved FAIL "$(state)"

# ---- both options: only the blocking holder is ended -------------------------
hold /dev/snd/$ctl; ALSA=$HOLDER
run as_user alice $CTL --no-ask-password --force --keep-holders vfio
expect_rc both-need-terminate-holders 4
all_original && alive $DRM $STANDIN $ALSA && result both-denied-nothing-ended PASS || result both-denied-nothing-ended FAIL "$(state)"
run $CTL --force --keep-holders vfio
expect_rc both-switch 0
! alive $STANDIN && ! alive $ALSA && alive $DRM && result both-ended-only-blocking PASS \
        || result both-ended-only-blocking FAIL "standin $(alive $STANDIN && echo alive) alsa $(alive $ALSA && echo alive) drm $(alive $DRM && echo alive)"
all_on vfio-pci && result both-all-on-vfio PASS || result both-all-on-vfio FAIL "$(state)"
kill $DRM; sleep 0.2
run $CTL host
expect_rc end-back-host 0
all_original && result end-original PASS || result end-original FAIL "$(state)"
finish
