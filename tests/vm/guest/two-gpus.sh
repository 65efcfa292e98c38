#!/bin/bash
# Two managed GPUs (issue 12): the guest's second slot (run-vm-test.sh: a
# display function and HD audio behind a PCIe-to-PCI bridge) beside the
# first, and a USB controller on a bus of its own below the same bridge, in
# the second GPU's IOMMU group.  Without a GPU named the error lists both;
# each one moves alone while the other stays; without Companions= the
# second one is refused (GroupNotViable, naming the device and the key) with
# nothing moved; with it the USB controller moves with the GPU and comes
# back with it; a bridge as a companion is a config error in the parser's
# words.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"

# bochs-display has the VGA's IDs, with class "other display controller"
VGA2=$(find_class 0x1234 0x1111 0x038000)
HDA2=$(find_bdf 0x8086 0x2668)
USB2=$(find_bdf 0x1033 0x0194)
SLOT2=${VGA2%.*}
FNS2="$VGA2 $HDA2"
OBJ2=/org/gpuswitch1/gpu/${SLOT2//:/_}
for f in $FNS2 $USB2; do ORIG[$f]=$(drv $f); done
G1=$(grp "$VGA") G2=$(grp "$VGA2")
echo "second GPU $SLOT2: $VGA2=${ORIG[$VGA2]} $HDA2=${ORIG[$HDA2]}, group $G2; companion $USB2=${ORIG[$USB2]} group $(grp "$USB2")"

# ---- the guest's second slot ------------------------------------------------------------
[ -n "$VGA2" ] && [ "${HDA2%.*}" = "$SLOT2" ] && [ "${ORIG[$VGA2]}" = bochs-drm ] \
        && [ "${ORIG[$HDA2]}" = snd_hda_intel ] && result second-gpu-present PASS \
        || result second-gpu-present FAIL "$VGA2=${ORIG[$VGA2]:-} $HDA2=${ORIG[$HDA2]:-}"
[ -n "$USB2" ] && [ "${USB2%%:??.?}" != "${SLOT2%:*}" ] && [ "$(grp "$USB2")" = "$G2" ] && [ "$G2" != "$G1" ] \
        && [ "${ORIG[$USB2]}" = xhci_hcd ] && result companion-other-bus-same-group PASS \
        || result companion-other-bus-same-group FAIL "$USB2 group $(grp "$USB2"), GPU $SLOT2 group $G2, first GPU group $G1"

second_original() { # the second GPU and its companion on their drivers, no driver_override left
        local f; for f in $FNS2 $USB2; do
                [ "$(drv $f)" = "${ORIG[$f]}" ] && [ "$(override $f)" = "(null)" ] || return 1
        done; }
second_on_vfio() { local f; for f in $FNS2 $USB2; do [ "$(drv $f)" = vfio-pci ] || return 1; done; }
state2() { local f; for f in $FNS2 $USB2; do printf '%s=%s[%s] ' "$f" "$(drv $f)" "$(override $f)"; done; }
both_gpus() { # GPU2_LINES
        mkdir -p /etc/gpuswitch
        printf '[Daemon]\nGpus=%s;%s\n[Gpu %s]\nAllowBootVga=yes\n[Gpu %s]\n%b\n' "$SLOT" "$SLOT2" "$SLOT" "$SLOT2" \
                "${1:-}" > /etc/gpuswitch/gpuswitch.conf
}
restart_daemon() { # the next call activates it again, with the config as it is now
        pkill -x gpuswitchd; for i in $(seq 50); do pgrep -x gpuswitchd >/dev/null || break; sleep 0.1; done
}
has() { # NAME REGEX: a line of the last output matches
        if echo "$OUT" | grep -qE -- "$2"; then result "$1" PASS; else result "$1" FAIL "no line matching '$2'"; fi
}
mode_of() { # OBJECT -> its Mode
        busctl --system --timeout=5 get-property org.gpuswitch1 "$1" org.gpuswitch1.Gpu Mode 2>&1 | tr -d '"' | cut -d' ' -f2
}

both_gpus ""

# ---- status shows both, as text and JSON ------------------------------------------------
run $CTL status
expect_rc status-runs 0
echo "$OUT" | grep -q "^ *$SLOT " && echo "$OUT" | grep -q "^ *$SLOT2 " && echo "$OUT" | grep -q "^ *$VGA2 " \
        && result status-shows-both PASS || result status-shows-both FAIL "want $SLOT, $SLOT2 and $VGA2"
echo "$OUT" | grep -q "$USB2" && result status-no-companion-unasked FAIL "$USB2 listed without Companions=" \
        || result status-no-companion-unasked PASS
run $CTL --json status
python3 -c 'import json, sys
d = json.loads(sys.argv[1]); a = sorted(g["address"] for g in d["gpus"])
sys.exit(0 if a == sorted(sys.argv[2:]) else 1)' "$OUT" "$SLOT" "$SLOT2" \
        && result status-json-both PASS || result status-json-both FAIL "$OUT"

# ---- none named: the error lists both (address, mode, name) -----------------------------
run $CTL vfio
expect_rc none-named-exit-5 5
has none-named-says-why "2 GPUs are managed: name one by its address"
has none-named-lists-first "^ +$SLOT +host +[^ ]"
has none-named-lists-second "^ +$SLOT2 +host +[^ ]"
[ "$(echo "$OUT" | grep -c '^gpuswitchctl:')" = 1 ] && result none-named-one-message PASS \
        || result none-named-one-message FAIL "$OUT"
has none-named-example "^For example: gpuswitchctl vfio $SLOT\$"
run $CTL plan host
expect_rc none-named-plan-exit-5 5
has none-named-plan-example "^For example: gpuswitchctl plan host $SLOT\$"
all_original && second_original && result none-named-nothing-moved PASS \
        || result none-named-nothing-moved FAIL "$(state) $(state2)"
OUT=$($CTL --json holders 2>/dev/null); RC=$?; echo "\$ $CTL --json holders -> rc=$RC"; echo "$OUT" | sed 's/^/    /'
expect_rc none-named-json-exit-5 5
python3 -c 'import json, sys
d = json.loads(sys.argv[1])
sys.exit(0 if d["error"] == "org.gpuswitch1.Error.NoSuchGpu" and sys.argv[2] in d["message"] and sys.argv[3] in d["message"] else 1)' \
        "$OUT" "$SLOT" "$SLOT2" && result none-named-json PASS || result none-named-json FAIL "$OUT"

# ---- without Companions=: the second GPU refused, naming the device and the key ---------
run $CTL vfio "$SLOT2"
expect_rc no-key-refused-exit-1 1
has no-key-names-device "also holds $USB2, bound to xhci_hcd"
has no-key-names-key "add Companions=$USB2 to \\[Gpu $SLOT2\\]"
all_original && second_original && result no-key-nothing-moved PASS \
        || result no-key-nothing-moved FAIL "$(state) $(state2)"
run $CTL --json vfio "$SLOT2"
echo "$OUT" | grep -q '"org.gpuswitch1.Error.GroupNotViable"' && result no-key-group-not-viable PASS \
        || result no-key-group-not-viable FAIL "$OUT"
# doctor makes the daemon's check, in the same words
run $CTL doctor
has no-key-doctor "^FAIL +IOMMU group \\($SLOT2\\) +not viable: .*add Companions=$USB2 to \\[Gpu $SLOT2\\]"
has no-key-doctor-first-viable "^ok +IOMMU group \\($SLOT\\) +viable"

# ---- the first one moves alone -----------------------------------------------------------
run $CTL vfio "$SLOT"
expect_rc first-to-vfio 0
all_on vfio-pci && second_original && result first-moves-alone PASS \
        || result first-moves-alone FAIL "$(state) $(state2)"
[ "$(mode_of "$OBJ")" = vfio ] && [ "$(mode_of "$OBJ2")" = host ] && result first-modes PASS \
        || result first-modes FAIL "$(mode_of "$OBJ") $(mode_of "$OBJ2")"
# the list of candidates says which one is where
run $CTL host
expect_rc none-named-again-exit-5 5
has none-named-lists-vfio "^ +$SLOT +vfio +"
has none-named-lists-host "^ +$SLOT2 +host +"
run $CTL host "$SLOT"
expect_rc first-to-host 0
all_original && second_original && result first-back PASS || result first-back FAIL "$(state) $(state2)"

# ---- with Companions=: the USB controller moves with the second GPU and comes back ------
both_gpus "Companions=$USB2"
restart_daemon
run $CTL status "$SLOT2"
expect_rc companion-status 0
has companion-in-status "^ *$USB2 +USB \\(companion\\) +xhci_hcd +xhci_hcd"
run $CTL --json status "$SLOT2"
python3 -c 'import json, sys
f = {x["address"]: x for x in json.loads(sys.argv[1])["gpus"][0]["functions"]}
sys.exit(0 if f[sys.argv[2]]["companion"] and not f[sys.argv[3]]["companion"] else 1)' "$OUT" "$USB2" "$VGA2" \
        && result companion-in-status-json PASS || result companion-in-status-json FAIL "$OUT"
run $CTL doctor
has companion-doctor-viable "^ok +IOMMU group \\($SLOT2\\) +viable: group $G2"
run busctl --system get-property org.gpuswitch1 "$OBJ2" org.gpuswitch1.Gpu Functions
has companion-functions-property "\"$USB2\" \"0x0c0330\" \"xhci_hcd\" \"xhci_hcd\""
run $CTL plan vfio "$SLOT2"
expect_rc companion-plan 0
# away from the host the companion goes first
[ "$(echo "$OUT" | grep -oE "($VGA2|$HDA2|$USB2)" | head -1)" = "$USB2" ] && result companion-planned-first PASS \
        || result companion-planned-first FAIL "$OUT"
run $CTL vfio "$SLOT2"
expect_rc companion-to-vfio 0
second_on_vfio && all_original && result companion-moves-with-gpu PASS \
        || result companion-moves-with-gpu FAIL "$(state2) | $(state)"
[ "$(mode_of "$OBJ2")" = vfio ] && [ "$(mode_of "$OBJ")" = host ] && result companion-modes PASS \
        || result companion-modes FAIL "$(mode_of "$OBJ2") $(mode_of "$OBJ")"
# the group is viable for a VM: every endpoint on vfio-pci
run $VFIOCHECK "$G2" "$VGA2"
expect_rc companion-group-viable 0
run $CTL host "$SLOT2"
expect_rc companion-to-host 0
second_original && all_original && result companion-comes-back PASS \
        || result companion-comes-back FAIL "$(state2) | $(state)"
# someone else unbinds the companion: the uevent of a function outside the
# slot refreshes the GPU too (Mode mixed), and again when it is bound back
echo "$USB2" > "/sys/bus/pci/devices/$USB2/driver/unbind"
for i in $(seq 30); do [ "$(mode_of "$OBJ2")" = mixed ] && break; sleep 0.1; done
[ "$(mode_of "$OBJ2")" = mixed ] && result companion-uevent-unbind PASS || result companion-uevent-unbind FAIL "$(mode_of "$OBJ2")"
echo "$USB2" > /sys/bus/pci/drivers_probe
for i in $(seq 30); do [ "$(mode_of "$OBJ2")" = host ] && break; sleep 0.1; done
[ "$(mode_of "$OBJ2")" = host ] && [ "$(drv "$USB2")" = xhci_hcd ] && result companion-uevent-bind PASS \
        || result companion-uevent-bind FAIL "$(mode_of "$OBJ2") $(drv "$USB2")"
# the first one still moves alone
run $CTL vfio "$SLOT"
expect_rc first-with-companions-config 0
all_on vfio-pci && second_original && result first-alone-with-companions PASS \
        || result first-alone-with-companions FAIL "$(state) $(state2)"
run $CTL host "$SLOT"
all_original && result first-back-again PASS || result first-back-again FAIL "$(state)"

# ---- a bridge is no companion: the parser's message, fast -------------------------------
BRIDGE=$(for d in /sys/kernel/iommu_groups/$G2/devices/*; do
        read -r c < "$d/class"; [ "${c:0:6}" = 0x0604 ] && echo "${d##*/}"; done | tail -1)
both_gpus "Companions=$BRIDGE"
restart_daemon
t0=$(date +%s%N)
run $CTL status
t1=$(date +%s%N)
expect_rc bridge-companion-fails 1
has bridge-companion-message "gpuswitch.conf: \\[Gpu $SLOT2\\]: Companions: $BRIDGE is a bridge"
run $CTL doctor
has bridge-companion-doctor "^FAIL +Configuration +/etc/gpuswitch/gpuswitch.conf: \\[Gpu $SLOT2\\]: Companions: $BRIDGE is a bridge"
(( (t1 - t0) / 1000000 < 5000 )) && result bridge-companion-fast PASS "$(( (t1 - t0) / 1000000 )) ms" \
        || result bridge-companion-fast FAIL "$(( (t1 - t0) / 1000000 )) ms"
run /usr/libexec/gpuswitchd --check-config
[ "$RC" != 0 ] && echo "$OUT" | grep -q "Companions: $BRIDGE is a bridge" && result bridge-check-config PASS \
        || result bridge-check-config FAIL "$OUT"
both_gpus ""
restart_daemon
run $CTL status
expect_rc fixed-config-works 0
all_original && second_original && result end-original PASS || result end-original FAIL "$(state) $(state2)"
finish
