#!/bin/bash
# Holders that name themselves with terminal escapes and bytes that are not
# UTF-8 (issue 13).  A process in a user's delegated cgroup subtree, whose
# path has ESC sequences and a 0xff byte and ends in ".../system.slice/
# x.service", is no system service; one in "/system.slice/NAME.service"
# whose NAME breaks systemd's unit-name rules neither; comms set with
# prctl(PR_SET_NAME) or taken from a binary's file name, and a QEMU guest's
# -name, carry such bytes too.  The switch is refused (exit 3) with a
# GpuInUse that arrives at once, to gpuswitchctl and to busctl alike, whose
# text has none of those bytes; `holders` and its JSON are clean UTF-8.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"
CG=/sys/fs/cgroup
NODE=/dev/gpuswitch-test0

configure "" "AllowBootVga=yes"
# A plain guest has no cgroup2 mounted: the unified hierarchy is there all
# the same, mounted here to make folders in it.
MOUNTED=0
if ! grep -q " $CG cgroup2 " /proc/mounts; then mount -t cgroup2 cgroup2 $CG && MOUNTED=1; fi
grep -q " $CG cgroup2 " /proc/mounts && result cgroup2-mounted PASS || result cgroup2-mounted FAIL

# no '\n' in a cgroup's name: /proc/PID/cgroup stays one line per hierarchy,
# which is what reading only the exact "0::/system.slice/NAME.service" line relies on
mkdir "$CG/"$'nl\n0::' 2>/dev/null && { rmdir "$CG/"$'nl\n0::'; result kernel-refuses-newline FAIL; } \
        || result kernel-refuses-newline PASS

EVIL=$'a\e[31m\e]0;pwned\a\xffz'
DELEGATED="$CG/user.slice/user-1001.slice/user@1001.service/app.slice/$EVIL/system.slice/x.service"
BADNAME="$CG/system.slice/"$'bad\e[2J\xff.service'
mkdir -p "$DELEGATED" "$BADNAME"
CGDIRS=("$DELEGATED" "${DELEGATED%/*}" "${DELEGATED%/system.slice/*}" "$CG/user.slice/user-1001.slice/user@1001.service/app.slice"
        "$CG/user.slice/user-1001.slice/user@1001.service" "$CG/user.slice/user-1001.slice" "$CG/user.slice"
        "$BADNAME" "$CG/system.slice")

has_raw() { od -An -tx1 -v | grep -qwE '1b|07|ff'; }    # stdin has ESC, BEL or 0xff
waitpid_of() { # COMM-PATTERN USER -> the newest process of USER whose comm matches (pgrep -x takes a regex)
        local i p
        for i in $(seq 100); do p=$(pgrep -u "$2" -n -f "$1") && { echo "$p"; return 0; }; sleep 0.1; done
        return 1
}
HOLDERS=()

# 1. in a user's delegated subtree, /proc/PID/cgroup ".../app.slice/EVIL/system.slice/x.service"
( as_user alice bash -c "exec sleep 1001 < $NODE" & )
H1=$(waitpid_of "^sleep 1001$" alice); HOLDERS+=($H1)
echo $H1 > "$DELEGATED/cgroup.procs"
# 2. the exact line "0::/system.slice/bad<ESC>[2J<0xff>.service": not a unit name
( as_user alice bash -c "exec sleep 1002 < $NODE" & )
H2=$(waitpid_of "^sleep 1002$" alice); HOLDERS+=($H2)
echo $H2 > "$BADNAME/cgroup.procs"
grep -qF "0::/user.slice/user-1001.slice/user@1001.service/app.slice/$EVIL/system.slice/x.service" /proc/$H1/cgroup \
        && grep -qxF "0::/system.slice/"$'bad\e[2J\xff.service' /proc/$H2/cgroup \
        && result cgroups-as-planned PASS || result cgroups-as-planned FAIL "$(cat -v /proc/$H1/cgroup /proc/$H2/cgroup)"
# 3. a comm set with prctl(PR_SET_NAME), and a QEMU guest's -name (the hint quotes it)
( as_user alice python3 -c '
import ctypes, sys, time
f = open(sys.argv[1], "rb")
ctypes.CDLL(None).prctl(15, b"ev\x1b[31m\xffx", 0, 0, 0)
time.sleep(1000)' $NODE prctl-holder & )
H3=$(waitpid_of "prctl-holder" alice); HOLDERS+=($H3)
( as_user alice python3 -c '
import ctypes, sys, time
f = open(sys.argv[1], "rb")
ctypes.CDLL(None).prctl(15, b"qemu-system-x86", 0, 0, 0)
time.sleep(1000)' $NODE -name $'guest=vm\e[31m\xff\e[0m,debug-threads=on' & )
H5=$(waitpid_of "guest=vm" alice); HOLDERS+=($H5)
# 4. a binary whose file name has them: its comm
BIN="/tmp/"$'s\e[1m\xffz'
cp /bin/sleep "$BIN"
( as_user alice bash -c "exec \"\$0\" 1004 < $NODE" "$BIN" & )
H4=$(waitpid_of "1004" alice); HOLDERS+=($H4)
sleep 0.5
echo "holders: delegated $H1, bad name $H2, prctl $H3, file name $H4, qemu $H5"
for p in $H3 $H4; do
        has_raw < /proc/$p/comm || { result comms-have-raw-bytes FAIL "$(cat -v /proc/$p/comm)"; break; }
done && result comms-have-raw-bytes PASS

# ---- holders: listed, clean ------------------------------------------------------
run timeout 60 $CTL holders
expect_rc holders-rc 0
listed=0; for p in "${HOLDERS[@]}"; do echo "$OUT" | grep -qE "^$p +alice " && listed=$((listed + 1)); done
[ $listed = 5 ] && result holders-lists-all PASS || result holders-lists-all FAIL "$listed of 5 listed"
printf '%s' "$OUT" | has_raw && result holders-no-raw-bytes FAIL || result holders-no-raw-bytes PASS
printf '%s' "$OUT" | iconv -f UTF-8 -t UTF-8 >/dev/null && result holders-utf8 PASS || result holders-utf8 FAIL
echo "$OUT" | grep -qE "^$H3 +alice +ev\?\[31m\?x +gpuswitch-test0$" && echo "$OUT" | grep -qE "^$H4 +alice +s\?\[1m\?z +gpuswitch-test0$" \
        && result holders-comms-escaped PASS || result holders-comms-escaped FAIL
run timeout 60 $CTL --json holders
printf '%s' "$OUT" | python3 -c '
import json, sys
d = json.loads(sys.stdin.buffer.read().decode("utf-8"))
want = {int(p) for p in sys.argv[1:]}
got = {h["pid"] for h in d["holders"]}
clean = all(ord(c) >= 0x20 and ord(c) != 0x7f for h in d["holders"] for v in h.values() if isinstance(v, str) for c in v)
sys.exit(0 if want <= got and clean else 1)' "${HOLDERS[@]}" && result holders-json-valid PASS || result holders-json-valid FAIL

# ---- the switch refused: GpuInUse, at once, clean ---------------------------------------
t0=$(date +%s)
run timeout 60 $CTL --timeout 30 vfio
t=$(( $(date +%s) - t0 ))
expect_rc in-use-exit-3 3
[ $t -lt 20 ] && result in-use-reply-arrives PASS "${t} s" || result in-use-reply-arrives FAIL "${t} s"
named=0; for p in "${HOLDERS[@]}"; do echo "$OUT" | grep -q "^  $p .* (uid 1001) holds gpuswitch-test0 (blocks the unbind)$" && named=$((named + 1)); done
[ $named = 5 ] && result in-use-names-all PASS || result in-use-names-all FAIL "$named of 5 named"
printf '%s' "$OUT" | has_raw && result in-use-no-raw-bytes FAIL || result in-use-no-raw-bytes PASS
# neither is a system service: no "systemctl stop" for them
echo "$OUT" | grep -qE "x\.service|system service|systemctl stop" && result in-use-no-service-hint FAIL \
        || result in-use-no-service-hint PASS
echo "$OUT" | grep -qF "the virtual machine vm?[31m??[0m uses the GPU" && result in-use-vm-name-escaped PASS \
        || result in-use-vm-name-escaped FAIL
all_original && result in-use-nothing-moved PASS || result in-use-nothing-moved FAIL "$(state)"

t0=$(date +%s)
run timeout 60 busctl --system --timeout=30 call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager Switch sst "" vfio 0
t=$(( $(date +%s) - t0 ))
[ $RC != 0 ] && [ $t -lt 20 ] && echo "$OUT" | grep -q "^  $H1 sleep (uid 1001) holds gpuswitch-test0 (blocks the unbind)$" \
        && result busctl-gets-error PASS "${t} s" || result busctl-gets-error FAIL "rc=$RC ${t} s"
printf '%s' "$OUT" | has_raw && result busctl-no-raw-bytes FAIL || result busctl-no-raw-bytes PASS
all_original && result busctl-nothing-moved PASS || result busctl-nothing-moved FAIL "$(state)"

# ---- put back what this script made -----------------------------------------------------
kill "${HOLDERS[@]}"
for i in $(seq 50); do
        gone=1; for p in "${HOLDERS[@]}"; do kill -0 $p 2>/dev/null && gone=0; done
        [ $gone = 1 ] && break; sleep 0.1
done
for d in "${CGDIRS[@]}"; do
        for i in $(seq 50); do rmdir "$d" 2>/dev/null && break; sleep 0.1; done
done
rm -f "$BIN"
[ ! -e "$CG/user.slice" ] && [ ! -e "$CG/system.slice" ] && result cgroups-removed PASS || result cgroups-removed FAIL
[ $MOUNTED = 1 ] && umount $CG
finish
