#!/bin/bash
# vmtest-seconds: 70
# ListHolders bounded (issue 13): root holds the GPU's DRM node; alice, whom
# polkit does not let switch, fires 200 ListHolders calls at once, each on
# a connection of its own.  The daemon's threads stay under its cap
# meanwhile, root's --force switch to vfio-pci succeeds, and alice's replies
# never show root's process: it is a hidden row (and a count in
# gpuswitchctl).  Then the switch back.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"

CALLS=200
# daemon/worker.h: 4 switch + 2 read + 2 scan threads, each scan with up to
# 3 helpers (HOLDERS_SCAN_MAX_THREADS 4), and the loop; TasksMax=32 in the unit
CAP=$((4 + 2 + 2 * 4 + 1))

configure "" "AllowBootVga=yes"
# alice is no one polkit knows: a switch needs an administrator's password
rm -f /etc/polkit-1/rules.d/50-gpuswitch-group.rules
gpasswd -d alice gpuswitch >/dev/null 2>&1
run $CTL status
expect_rc daemon-activated 0
pid=$(pgrep -x gpuswitchd)
echo "gpuswitchd pid $pid"

# root's holder, and one of alice's own
card=$(basename /sys/bus/pci/devices/$VGA/drm/card*)
sleep 1000 < /dev/dri/$card &
ROOT_HOLDER=$!
( as_user alice bash -c "exec sleep 1000 < /dev/gpuswitch-test0" & )
for i in $(seq 50); do ALICE_HOLDER=$(pgrep -u alice -n -x sleep) && break; sleep 0.1; done
echo "root holder $ROOT_HOLDER on $card, alice's $ALICE_HOLDER"

run $CTL holders
echo "$OUT" | grep -qE "^$ROOT_HOLDER +root +sleep +$card$" && result root-sees-root-holder PASS \
        || result root-sees-root-holder FAIL "$OUT"
run as_user alice $CTL holders
expect_rc alice-holders-rc 0
if echo "$OUT" | grep -qE "^$ALICE_HOLDER +alice +sleep +gpuswitch-test0$" && ! echo "$OUT" | grep -qw "$ROOT_HOLDER" &&
   echo "$OUT" | grep -qx "1 more process of other users, hidden (root or those allowed to switch see them)"; then
        result alice-sees-own-and-hidden-count PASS
else
        result alice-sees-own-and-hidden-count FAIL "$OUT"
fi
run as_user alice $CTL --json holders
echo "$OUT" | python3 -c "
import json, sys
d = json.load(sys.stdin)
pids = [h['pid'] for h in d['holders']]
sys.exit(0 if d['hidden'] == 1 and $ALICE_HOLDER in pids and $ROOT_HOLDER not in pids and 0 not in pids else 1)" \
        && result alice-json-hidden-count PASS || result alice-json-hidden-count FAIL "$OUT"

# the daemon's threads, sampled until told to stop: builtins only (but the
# pause), the guest's one vCPU being busy with 200 callers
rm -f /tmp/stop-sampling /tmp/threads
mkfifo /tmp/pause
(
        exec 9<>/tmp/pause
        while [ ! -e /tmp/stop-sampling ]; do
                while read -r k v; do [ "$k" = Threads: ] && echo "$v"; done </proc/$pid/status >>/tmp/threads
                read -rt 0.05 -u 9 _
        done
) &
sampler=$!
cpu() { local s; read -r -a s </proc/$pid/stat; echo $(( s[13] + s[14] )); }   # utime + stime, ticks
cpu0=$(cpu) t0=$SECONDS

# alice's 200 calls, each a busctl of its own (a connection each); under
# TCG their start alone keeps the guest's vCPU busy for a minute, hence the
# long timeout: the point is that each gets its answer
rm -rf /tmp/lh && mkdir -m 0777 /tmp/lh
as_user alice bash -c "
        for i in \$(seq $CALLS); do
                busctl --system --timeout=600 call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager \
                        ListHolders s '' >/tmp/lh/\$i.out 2>&1 &
        done
        wait" &
flood=$!

# root switches meanwhile, once the first of alice's replies are in
for i in $(seq 100); do [ -n "$(find /tmp/lh -name '*.out' -size +0 | head -1)" ] && break; sleep 0.1; done
start=$SECONDS
run $CTL --force vfio
expect_rc root-force-switch-during-flood 0
echo "root's switch took $((SECONDS - start)) s"
all_on vfio-pci && result root-switch-all-on-vfio PASS || result root-switch-all-on-vfio FAIL "$(state)"
! kill -0 $ROOT_HOLDER 2>/dev/null && result root-holder-ended PASS || result root-holder-ended FAIL

wait $flood
touch /tmp/stop-sampling
wait $sampler
max=$(sort -n /tmp/threads | tail -1)
echo "daemon threads: max $max over $(wc -l </tmp/threads) samples (cap $CAP)"
[ -n "$max" ] && [ "$max" -le $CAP ] && result threads-under-cap PASS || result threads-under-cap FAIL "max $max > $CAP"
kill -0 $pid 2>/dev/null && [ "$(pgrep -x gpuswitchd)" = "$pid" ] && result daemon-same-pid PASS \
        || result daemon-same-pid FAIL

echo "daemon CPU time during the flood: $(( ($(cpu) - cpu0) * 1000 / $(getconf CLK_TCK) )) ms in $((SECONDS - t0)) s"
# the replies, each read once: answered (with a hidden row, with root's
# process), Busy, not connected to the bus, other
read -r ok busy other hidden leaked unconnected < <(python3 - "$ROOT_HOLDER" /tmp/lh/*.out <<'PY'
import re, sys
root = sys.argv[1]
ok = busy = other = hidden = leaked = unconnected = 0
for name in sys.argv[2:]:
    text = open(name).read()
    if text.startswith("a(uuss) "):
        ok += 1
        hidden += ' 0 4294967295 "" ""' in text
        # root's process as a row: PID 0 "comm" "node"
        leaked += re.search(r'(^a\(uuss\) \d+| "[^"]*") %s 0 "' % root, text) is not None
    elif "as gpuswitchd takes" in text:
        busy += 1
    elif "Transport endpoint is not connected" in text or "Failed to connect to bus" in text:
        # dbus-daemon's max_incomplete_connections (64 on the system bus):
        # the call never reached gpuswitchd
        unconnected += 1
    else:
        other += 1
        if other <= 3:
            print("unexpected reply in %s: %s" % (name, text.strip()), file=sys.stderr)
print(ok, busy, other, hidden, leaked, unconnected)
PY
)
echo "alice's $CALLS calls: $ok answered ($hidden with a hidden row), $busy Busy, $unconnected refused by the bus, $other other"
[ $((ok + busy + unconnected)) = $CALLS ] && [ $other = 0 ] && [ $unconnected -lt $((CALLS / 4)) ] && result flood-every-call-answered PASS \
        || result flood-every-call-answered FAIL "$ok ok, $busy busy, $other other"
[ $ok -gt 0 ] && result flood-some-answered PASS || result flood-some-answered FAIL
[ "$leaked" = 0 ] && ! grep -lw "$ROOT_HOLDER" /tmp/lh/*.out >/dev/null && result flood-root-holder-never-shown PASS \
        || result flood-root-holder-never-shown FAIL "$leaked replies"
[ $hidden -gt 0 ] && result flood-hidden-row-shown PASS || result flood-hidden-row-shown FAIL

# still answering, and back
run as_user alice $CTL holders
expect_rc after-flood-answers 0
run $CTL host
expect_rc switch-back-host 0
all_original && result back-original PASS || result back-original FAIL "$(state)"
finish
