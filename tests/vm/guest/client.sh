#!/bin/bash
# vmtest-seconds: 100
# gpuswitchctl for people and scripts (issue 4): every verb's human and
# --json output against the daemon, the error paths (no such GPU, not
# authorized, the daemon unreachable) for each, colour only on a terminal,
# progress lines on a slow switch, monitor and set-default.  In the QEMU
# guest only: it switches the emulated GPU.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"
PIN=/sys/module/gpuswitch_test/parameters/pin
CONF=/etc/gpuswitch/gpuswitch.conf

# the last run's stdout alone (human tables and JSON go there; errors to stderr)
runo() { OUT=$("$@" 2>/tmp/err); RC=$?; ERR=$(cat /tmp/err); echo "\$ $* -> rc=$RC"; \
        [ -n "$OUT" ] && echo "$OUT" | sed 's/^/    /'; [ -n "$ERR" ] && echo "$ERR" | sed 's/^/  ! /'; return 0; }
# PY: a python expression over the JSON on stdout, bound to d
json_ok() { # NAME PY
        if echo "$OUT" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if ($2) else 1)" 2>/tmp/pyerr
        then result "$1" PASS; else result "$1" FAIL "$(cat /tmp/pyerr) $OUT"; fi
}
has() { echo "$OUT" | grep -qE -- "$1"; }
gpu_schema='set(d) >= {"address","object","name","mode","default_mode","step","boot_vga","iommu_groups","functions"}
 and all(set(f) == {"address","class","class_name","driver","host_driver","companion"} for f in d["functions"])'

configure "" "AllowBootVga=yes"
name=$(busctl --system get-property org.gpuswitch1 "$OBJ" org.gpuswitch1.Gpu Name | sed 's/^s "\(.*\)"$/\1/')

# ---- status -------------------------------------------------------------------
runo $CTL status
expect_rc status 0
has "^$SLOT  $name" && has "Mode: host" && has "FUNCTION +CLASS +DRIVER +HOST DRIVER" \
        && has "$VGA +VGA +bochs-drm +bochs-drm" && has "$HDA +Audio +snd_hda_intel" \
        && result status-human-table PASS || result status-human-table FAIL
! echo "$OUT" | grep -q $'\033' && result status-no-colour-in-a-pipe PASS || result status-no-colour-in-a-pipe FAIL
col=$(script -qec "$CTL status" /dev/null)
echo "$col" | grep -q $'\033\[1m' && result status-colour-on-a-terminal PASS || result status-colour-on-a-terminal FAIL "$col"
col=$(NO_COLOR=1 script -qec "$CTL status" /dev/null)
! echo "$col" | grep -q $'\033' && result status-no-colour-with-NO_COLOR PASS || result status-no-colour-with-NO_COLOR FAIL
runo $CTL --json status
expect_rc status-json 0
json_ok status-json-schema "len(d['gpus']) == 1 and (lambda d: $gpu_schema)(d['gpus'][0])"
json_ok status-json-values "d['gpus'][0]['address'] == '$SLOT' and d['gpus'][0]['mode'] == 'host'
 and [f['driver'] for f in d['gpus'][0]['functions']] == ['${ORIG[$VGA]}','${ORIG[$HDA]}','${ORIG[$XHCI]}','${ORIG[$EDU]}']"
runo $CTL status $HDA
expect_rc status-by-function 0
has "^$SLOT" && result status-by-function-shows-slot PASS || result status-by-function-shows-slot FAIL

# ---- plan ---------------------------------------------------------------------
runo $CTL plan vfio
expect_rc plan 0
has "would move 4 functions" && has "FUNCTION +CLASS +NOW +TARGET +ACTION" && has "$EDU .*gpuswitch_test +vfio-pci +move" \
        && result plan-human PASS || result plan-human FAIL
runo $CTL --json plan vfio
json_ok plan-json "d['gpu'] == '$SLOT' and d['mode'] == 'vfio' and len(d['steps']) == 4
 and all(set(s) == {'function','class','from','to','action'} and s['action'] == 'move' and s['to'] == 'vfio-pci' for s in d['steps'])"
runo $CTL plan host
has "in host mode already" && result plan-nothing-to-do PASS || result plan-nothing-to-do FAIL

# ---- holders ------------------------------------------------------------------
card=$(ls -d /sys/bus/pci/devices/$VGA/drm/card* | head -1); card=${card##*/}
runo $CTL holders
has "No process holds $SLOT" && result holders-none-human PASS || result holders-none-human FAIL
# one process (no shell in between): bob's sleep with the DRM card open
setpriv --reuid=bob --regid=bob --init-groups sleep 60 <>/dev/dri/$card & holder=$!
sleep 0.5
runo $CTL holders
has "PID +USER +COMMAND +NODE" && has "^$holder +bob +sleep +$card" && result holders-human-table PASS || result holders-human-table FAIL
runo $CTL --json holders
json_ok holders-json "d['gpu'] == '$SLOT' and {'pid': $holder, 'uid': 1002, 'user': 'bob', 'command': 'sleep', 'node': '$card'} in d['holders']"
runo $CTL --json vfio
expect_rc vfio-held-in-use 3
json_ok vfio-held-json-error "d['error'] == 'org.gpuswitch1.Error.GpuInUse' and 'sleep' in d['message']"
kill $holder; wait $holder 2>/dev/null
all_original && result in-use-nothing-moved PASS || result in-use-nothing-moved FAIL "$(state)"

# ---- vfio, host, nvidia: human and JSON ---------------------------------------------
runo $CTL vfio
expect_rc vfio 0
[ "$OUT" = "$SLOT: vfio (4 of 4 functions on vfio-pci)" ] && all_on vfio-pci && result vfio-human PASS || result vfio-human FAIL
runo $CTL --json host
expect_rc host-json 0
json_ok host-json-schema "$gpu_schema and d['mode'] == 'host' and d['step'] is None"
all_original && result host-json-moved-back PASS || result host-json-moved-back FAIL "$(state)"
runo $CTL -q vfio
[ $RC = 0 ] && [ -z "$OUT$ERR" ] && all_on vfio-pci && result quiet-vfio PASS || result quiet-vfio FAIL
runo $CTL --json vfio
json_ok vfio-json-already "d['mode'] == 'vfio'"
$CTL -q host
runo $CTL nvidia
expect_rc nvidia-not-nvidia 1
echo "$ERR" | grep -q "host driver of $VGA is bochs-drm, not nvidia" && result nvidia-refusal-says-why PASS \
        || result nvidia-refusal-says-why FAIL
runo $CTL --json nvidia
json_ok nvidia-json-error "'not nvidia' in d['message'] and d['error']"
all_original && result nvidia-refusal-moved-nothing PASS || result nvidia-refusal-moved-nothing FAIL "$(state)"

# ---- progress on a switch that takes more than a moment ------------------------------
# The stand-in's remove() waits while pinned: the switch stays at its first step.
echo 1 > $PIN
$CTL vfio >/tmp/slow.out 2>/tmp/slow.err & sw=$!
sleep 3; echo 0 > $PIN
wait $sw; rc=$?
echo "slow switch: rc=$rc"; sed 's/^/    /' /tmp/slow.out /tmp/slow.err
[ $rc = 0 ] && grep -q "^gpuswitchctl: switching the GPU to vfio\.\.\.$" /tmp/slow.err \
        && grep -q "^  $EDU: unbind" /tmp/slow.err && grep -q "^  $VGA: " /tmp/slow.err \
        && result progress-lines PASS || result progress-lines FAIL
$CTL -q host
echo 1 > $PIN
$CTL --json vfio >/tmp/slow.out 2>/tmp/slow.err & sw=$!
sleep 2; echo 0 > $PIN; wait $sw
[ ! -s /tmp/slow.err ] && python3 -c 'import json; json.load(open("/tmp/slow.out"))' \
        && result no-progress-with-json PASS || result no-progress-with-json FAIL "$(cat /tmp/slow.err)"
$CTL -q host

# ---- monitor ------------------------------------------------------------------
$CTL monitor >/tmp/mon.out 2>&1 & mon=$!
$CTL --json monitor >/tmp/monj.out 2>&1 & monj=$!
sleep 1.5
$CTL -q vfio; $CTL -q host
sleep 1
pkill -x gpuswitchd; sleep 1
$CTL -q status       # activates it again
sleep 1
kill -INT $mon $monj; wait $mon; rm1=$?; wait $monj; rm2=$?
echo "monitor:"; sed 's/^/    /' /tmp/mon.out
[ $rm1 = 0 ] && [ $rm2 = 0 ] && result monitor-ends-on-interrupt PASS || result monitor-ends-on-interrupt FAIL "rc $rm1 $rm2"
ts='^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}  '
grep -qE "${ts}$SLOT +state +.*host" /tmp/mon.out && grep -qE "${ts}$SLOT +mode +host -> switching" /tmp/mon.out \
        && grep -qE "${ts}$SLOT +mode +switching -> vfio" /tmp/mon.out && grep -qE "${ts}$SLOT +mode +switching -> host" /tmp/mon.out \
        && grep -qE "${ts}$SLOT +step +$HDA: unbind" /tmp/mon.out \
        && grep -qE "${ts}$SLOT +driver +$HDA: snd_hda_intel -> (none|vfio-pci)" /tmp/mon.out \
        && result monitor-human-follows-switches PASS || result monitor-human-follows-switches FAIL
grep -qE "${ts}gpuswitchd +daemon +stopped" /tmp/mon.out && grep -qE "${ts}gpuswitchd +daemon +started" /tmp/mon.out \
        && [ "$(grep -cE " state " /tmp/mon.out)" = 2 ] \
        && result monitor-follows-daemon-restart PASS || result monitor-follows-daemon-restart FAIL
python3 - /tmp/monj.out "$SLOT" <<'PY' && result monitor-json-lines PASS || result monitor-json-lines FAIL "$(head -5 /tmp/monj.out)"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
slot = sys.argv[2]
assert all({"time", "gpu", "event"} <= set(e) for e in ev), "fields"
kinds = [e["event"] for e in ev]
assert kinds[0] == "state" and ev[0]["mode"] == "host" and ev[0]["gpu"] == slot, ev[0]
modes = [(e["previous"], e["mode"]) for e in ev if e["event"] == "mode"]
assert ("host", "switching") in modes and ("switching", "vfio") in modes and ("switching", "host") in modes, modes
assert any(e["event"] == "driver" and e["driver"] == "vfio-pci" for e in ev), "driver"
assert any(e["event"] == "step" and ": unbind" in (e["step"] or "") for e in ev), "step"
assert {"running": False} .items() <= next(e for e in ev if e["event"] == "daemon").items(), "daemon"
PY
runo timeout 5 $CTL monitor 0000:3f:00
expect_rc monitor-no-such-gpu 5

# ---- set-default ----------------------------------------------------------------
cp $CONF /tmp/conf.before
echo "# kept: a comment of the admin's" >> $CONF
$CTL --json monitor >/tmp/monj.out 2>&1 & monj=$!
sleep 1
runo $CTL set-default vfio
expect_rc set-default 0
[ "$OUT" = "$SLOT: default mode vfio (applied when gpuswitchd starts at boot)" ] && result set-default-human PASS \
        || result set-default-human FAIL
grep -q "^DefaultMode=vfio$" $CONF && grep -q "kept: a comment" $CONF && grep -q "^AllowBootVga=yes" $CONF \
        && result set-default-written-keeping-the-rest PASS || result set-default-written-keeping-the-rest FAIL "$(cat $CONF)"
/usr/libexec/gpuswitchd --check-config -c $CONF >/dev/null && result set-default-config-valid PASS || result set-default-config-valid FAIL
[ "$(prop DefaultMode)" = 's "vfio"' ] && all_original && result set-default-changes-nothing-now PASS \
        || result set-default-changes-nothing-now FAIL "$(prop DefaultMode) $(state)"
sleep 0.5; kill -INT $monj; wait $monj
grep -q '"event":"default","default_mode":"vfio","previous":"keep"' /tmp/monj.out && result set-default-signalled PASS \
        || result set-default-signalled FAIL "$(cat /tmp/monj.out)"
runo $CTL --json set-default keep
json_ok set-default-json "d['default_mode'] == 'keep' and $gpu_schema"
runo $CTL set-default warp
expect_rc set-default-bad-mode 2
echo "$ERR" | grep -q "unknown mode 'warp': expected one of: host vfio keep" && result set-default-bad-mode-says PASS \
        || result set-default-bad-mode-says FAIL
runo $CTL set-default vfio 0000:3f:00
expect_rc set-default-no-such-gpu 5
runo as_user alice $CTL --no-ask-password set-default vfio
expect_rc set-default-unauthorized 4
grep -q "^DefaultMode=keep$" $CONF && result set-default-unauthorized-unchanged PASS || result set-default-unauthorized-unchanged FAIL
runo busctl --system call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager SetDefaultMode ss "" mixed
echo "$ERR" | grep -q "unknown default mode" && result set-default-bus-rejects-mode PASS || result set-default-bus-rejects-mode FAIL
# A broken config is not overwritten: the daemon says what is wrong.
cp $CONF /tmp/conf.good; echo "Bogus=1" >> $CONF
runo $CTL set-default vfio
expect_rc set-default-broken-config 1
echo "$ERR" | grep -q "unknown key 'Bogus'" && grep -q "^Bogus=1" $CONF && result set-default-broken-config-left-alone PASS \
        || result set-default-broken-config-left-alone FAIL
cp /tmp/conf.good $CONF
# What set-default writes is what the next boot applies.
$CTL -q set-default vfio
pkill -x gpuswitchd; sleep 1; rm -f /run/gpuswitch/default-mode-applied   # as after a reboot
$CTL -q status
all_on vfio-pci && result set-default-applied-at-next-start PASS "$(state)" || result set-default-applied-at-next-start FAIL "$(state)"
$CTL -q set-default keep; $CTL -q host

# ---- not authorized: every verb that changes something -------------------------
for v in vfio host nvidia; do
        runo as_user alice $CTL --no-ask-password $v
        [ $v = nvidia ] && want=1 || want=4     # nvidia: refused before it asks (bochs-drm)
        expect_rc unauthorized-$v $want
done
runo as_user alice $CTL --json --no-ask-password vfio
json_ok unauthorized-json "d['error'] in ('org.freedesktop.DBus.Error.AccessDenied', 'org.freedesktop.DBus.Error.InteractiveAuthorizationRequired')"
echo "$ERR" | grep -q "not authorized" && result unauthorized-one-line PASS || result unauthorized-one-line FAIL
for v in status holders "plan vfio"; do
        runo as_user alice $CTL $v
        expect_rc unprivileged-reads-${v// /-} 0
done
all_original && result unauthorized-nothing-moved PASS || result unauthorized-nothing-moved FAIL "$(state)"

# ---- no such GPU: every verb that takes one -------------------------------------
for v in status vfio host nvidia "plan vfio" holders "set-default host"; do
        runo $CTL $v 0000:3f:00
        expect_rc no-such-gpu-${v// /-} 5
        echo "$ERR" | grep -q "no managed GPU at 0000:3f:00" || result no-such-gpu-${v// /-}-message FAIL "$ERR"
        runo $CTL --json $v 3f:00
        json_ok no-such-gpu-json-${v// /-} "d['error'] == 'org.gpuswitch1.Error.NoSuchGpu'"
done

# ---- the daemon unreachable ------------------------------------------------------
svc=/usr/share/dbus-1/system-services/org.gpuswitch1.service
mv $svc /tmp/activation.service
dbus-send --system --type=method_call --dest=org.freedesktop.DBus / org.freedesktop.DBus.ReloadConfig
pkill -x gpuswitchd; sleep 1
for v in status vfio host nvidia "plan vfio" holders monitor "set-default host"; do
        runo timeout 20 $CTL $v
        expect_rc unreachable-${v// /-} 1
        echo "$ERR" | grep -q "cannot reach gpuswitchd" || result unreachable-${v// /-}-message FAIL "$ERR"
        runo timeout 20 $CTL --json $v
        json_ok unreachable-json-${v// /-} "d['error'].startswith('org.freedesktop.DBus.Error.') and d['message']"
done
mv /tmp/activation.service $svc
dbus-send --system --type=method_call --dest=org.freedesktop.DBus / org.freedesktop.DBus.ReloadConfig
runo $CTL status
expect_rc reachable-again 0

# ---- usage errors ------------------------------------------------------------------
for a in "frobnicate" "plan" "plan warp" "set-default" "status 1 2" "vfio ../../x" "--timeout=0 vfio" "--bogus"; do
        runo $CTL $a
        expect_rc usage-${a// /_} 2
done
all_original && result end-state-original PASS || result end-state-original FAIL "$(state)"
finish
