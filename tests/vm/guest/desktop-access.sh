#!/bin/bash
# vmtest: systemd
# DesktopAccess=no (issue 13): gpuswitch's tmpfiles.d file makes
# /run/udev/rules.d; the hardened unit's daemon, which may write there and
# in no other folder of /run but its own, writes its udev rule there at
# start, one line for the GPU, and has udevd tag the GPU's DRM card
# mutter-device-ignore at once; after a switch to vfio and back the card,
# made anew, has the tag again; the other GPU's card (the bochs-display)
# never has it.  A restart with the same config leaves the file alone;
# without the setting the file is gone.  doctor, with a stand-in
# compositor (a copy of sleep under the compositor's name, holding the
# GPU's card), names it and gives its fix: DesktopAccess=no for
# gnome-shell, KWIN_DRM_DEVICES= for kwin_wayland, WLR_DRM_DEVICES= for
# sway, AQ_DRM_DEVICES= for Hyprland, each with the cards of this boot
# but the managed GPU's.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"

UNIT=gpuswitchd.service
RULE=/run/udev/rules.d/70-gpuswitch-desktop.rules
TAG=mutter-device-ignore

VGA2=$(find_class 0x1234 0x1111 0x038000)
card_of() { # FUNCTION -> /dev/dri/cardN of its DRM card
        local c
        for c in /sys/bus/pci/devices/"$1"/drm/card*; do
                [ -e "$c" ] && { echo "/dev/dri/${c##*/}"; return 0; }
        done
        return 1
}
tags() { udevadm info --query=property --name="$1" 2>&1 | grep -E '^(CURRENT_)?TAGS='; }
tagged() { # NODE: udev's current tags of the node have it
        udevadm info --query=property --name="$1" 2>/dev/null | grep -q "^CURRENT_TAGS=.*:$TAG:"
}
untagged() { # NODE: neither its current tags nor those it ever had
        ! udevadm info --query=property --name="$1" 2>/dev/null | grep -E '^(CURRENT_)?TAGS=' | grep -q ":$TAG:"
}
journal_mark() { journalctl -n 0 --show-cursor --no-pager | sed -n 's/^-- cursor: //p'; }
logged_since() { journalctl --after-cursor="$1" -u $UNIT --no-pager -q -o cat | grep -qF "$2"; }  # CURSOR TEXT
rule_lines() { grep -v '^#' "$RULE"; }

CARD=$(card_of "$VGA") CARD2=$(card_of "$VGA2")
echo "GPU $SLOT card $CARD; other GPU $VGA2 card $CARD2"
[ -n "$CARD" ] && [ -n "$CARD2" ] && result cards-present PASS || result cards-present FAIL "'$CARD' '$CARD2'"

# ---- the folder, the rule, the tag at start -----------------------------------------------
systemd-tmpfiles --create gpuswitch.conf
check tmpfiles-made-folder test -d /run/udev/rules.d
configure "" "AllowBootVga=yes\nDesktopAccess=no"
mark=$(journal_mark)
systemctl restart $UNIT
[ "$(systemctl is-active $UNIT)" = active ] && result daemon-started PASS \
        || { result daemon-started FAIL; journalctl -u $UNIT --no-pager -o cat -n 40; }
# the unit may write the rules folder and nothing else of /run but its
# own folder: tried in the daemon's own mount namespace.  (A bare
# ProtectSystem=strict unit with ProtectProc= has /run writable on systemd
# 252: the unit says ReadOnlyPaths=/run.)
pid=$(systemctl show -P MainPID $UNIT)
in_unit() { nsenter -t "$pid" -m -- "$@"; }
writable() { in_unit sh -c "touch '$1/probe' 2>/dev/null && rm '$1/probe'"; }   # FOLDER, in the unit
writable /run/udev/rules.d && result unit-writes-rules-folder PASS || result unit-writes-rules-folder FAIL
writable /run/gpuswitch && result unit-writes-own-run-folder PASS || result unit-writes-own-run-folder FAIL
! writable /run/udev && ! writable /run && result unit-not-rest-of-run PASS \
        || result unit-not-rest-of-run FAIL "$(awk '$5 ~ "^/run"' /proc/"$pid"/mountinfo)"
want="SUBSYSTEM==\"drm\", KERNELS==\"$SLOT.[0-7]\", TAG+=\"$TAG\""
echo "rule file:"; cat "$RULE" 2>&1 | sed 's/^/    /'
[ "$(rule_lines)" = "$want" ] && result rule-one-line PASS || result rule-one-line FAIL "$(rule_lines 2>&1)"
[ "$(stat -c %a "$RULE" 2>/dev/null)" = 644 ] && result rule-world-readable PASS || result rule-world-readable FAIL
logged_since "$mark" "udev rule $RULE written" && result rule-logged PASS || result rule-logged FAIL
# the node was there before the rule: the daemon had udevd run it again
echo "$CARD: $(tags "$CARD")"
tagged "$CARD" && result tagged-at-start PASS || result tagged-at-start FAIL "$(tags "$CARD")"
untagged "$CARD2" && result other-untagged-at-start PASS || result other-untagged-at-start FAIL "$(tags "$CARD2")"

# ---- a switch to vfio and back: the card made anew, tagged ------------------------------
run $CTL vfio
expect_rc to-vfio 0
! card_of "$VGA" >/dev/null && result card-gone-on-vfio PASS || result card-gone-on-vfio FAIL "$(card_of "$VGA")"
run $CTL host
expect_rc to-host 0
udevadm settle --timeout=10
CARD=$(card_of "$VGA")
echo "after the switch back: $CARD: $(tags "$CARD")"
[ -n "$CARD" ] && tagged "$CARD" && result tagged-after-host PASS || result tagged-after-host FAIL "'$CARD' $(tags "$CARD")"
udevadm info --query=property --name="$CARD" 2>/dev/null | grep -q "^TAGS=.*:$TAG:" \
        && result tags-has-it-after-host PASS || result tags-has-it-after-host FAIL "$(tags "$CARD")"
untagged "$CARD2" && result other-untagged-after-host PASS || result other-untagged-after-host FAIL "$(tags "$CARD2")"

# ---- a restart with the same config: left alone; without the setting: removed -----------
inode=$(stat -c %i "$RULE")
mark=$(journal_mark)
systemctl restart $UNIT
[ "$(stat -c %i "$RULE" 2>/dev/null)" = "$inode" ] && ! logged_since "$mark" "written" \
        && result restart-leaves-rule PASS || result restart-leaves-rule FAIL
configure "" "AllowBootVga=yes"
mark=$(journal_mark)
systemctl restart $UNIT
[ ! -e "$RULE" ] && result rule-removed PASS || result rule-removed FAIL "$(cat "$RULE" 2>&1)"
logged_since "$mark" "udev rule $RULE removed" && result removal-logged PASS || result removal-logged FAIL

# ---- doctor with a stand-in compositor holding the GPU's card ---------------------------
# the cards a desktop should use: all but the managed GPU's, in number order
others=$(for c in /sys/class/drm/card*; do
                 n=${c##*/card}; [[ $n =~ ^[0-9]+$ ]] || continue
                 [ "$(link_name "$c/device")" = "$VGA" ] || echo "$n"
         done | sort -n | sed 's|^|/dev/dri/card|' | paste -sd:)
echo "cards for a desktop: $others"
[[ ":$others:" == *":$CARD2:"* ]] && [[ ":$others:" != *":$CARD:"* ]] && result other-cards PASS \
        || result other-cards FAIL "$others"
doctor_with() { # COMM: doctor's output while a process of that name holds the card
        cp /bin/sleep "/tmp/$1"
        ( exec "/tmp/$1" 1000 < "$CARD" & )
        local pid i
        for i in $(seq 50); do pid=$(pgrep -n -x "$1") && break; sleep 0.1; done
        run $CTL doctor
        kill "$pid"; rm -f "/tmp/$1"
        for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        sleep 1.2   # ListHolders hands out a scan for a second: the next doctor gets a new one
        STANDIN=$pid
}
# doctor's line names the stand-in: "WHO (COMM, PID N) holds NODE of SLOT",
# NODE as ListHolders gives it
names() { echo "$OUT" | grep -qE "$1, PID $STANDIN\) holds (/dev/dri/)?${CARD##*/} of $SLOT"; }  # "WHO \(COMM"
doctor_with gnome-shell
names "GNOME Shell \(gnome-shell" \
        && result doctor-names-gnome-shell PASS || result doctor-names-gnome-shell FAIL
echo "$OUT" | grep -qF "fix: DesktopAccess=no in [Gpu $SLOT] of /etc/gpuswitch/gpuswitch.conf: the udev tag $TAG" \
        && result doctor-gnome-fix PASS || result doctor-gnome-fix FAIL
doctor_with kwin_wayland
names "KWin \(kwin_wayland" \
        && result doctor-names-kwin PASS || result doctor-names-kwin FAIL
echo "$OUT" | grep -qF "fix: start KWin with KWIN_DRM_DEVICES=$others " \
        && result doctor-kwin-fix PASS || result doctor-kwin-fix FAIL
doctor_with sway
names "sway \(sway" \
        && result doctor-names-sway PASS || result doctor-names-sway FAIL
echo "$OUT" | grep -qF "fix: start sway with WLR_DRM_DEVICES=$others " \
        && result doctor-sway-fix PASS || result doctor-sway-fix FAIL
doctor_with Hyprland
names "Hyprland \(Hyprland" && result doctor-names-hyprland PASS || result doctor-names-hyprland FAIL
echo "$OUT" | grep -qF "fix: start Hyprland with AQ_DRM_DEVICES=$others " \
        && result doctor-hyprland-fix PASS || result doctor-hyprland-fix FAIL
# nothing holding it: ok
run $CTL doctor
echo "$OUT" | grep -qE "^ok +Desktop compositor +no desktop compositor or X server holds $SLOT" \
        && result doctor-no-compositor-ok PASS || result doctor-no-compositor-ok FAIL
finish
