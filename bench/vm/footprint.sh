#!/bin/bash
# vmtest: systemd
# The daemon's footprint (issue 5), as a Debian machine runs it: systemd
# activates gpuswitchd.service through the bus.  Its resident memory idle
# after start, after 10,000 calls and after each of BATCHES - 1 more
# batches of 10,000 (bench/bus-load --mixed as an unprivileged user: reads,
# refused calls, polkit's refusals), and the growth over each batch after
# the first, which must not go on; its start-to-first-reply when
# bus-activated (the daemon not running, a call that activates it, until the
# reply) against the same call to the running daemon.
. "$(dirname "$0")/../../tests/vm/guest-lib.sh"
. "$(dirname "$0")/../../tests/vm/gpu-lib.sh"

# The bench programs are built next to the staged tree: BUILD/stage -> BUILD/bench.
stage=$(sed -n 's/.*vmtest\.stage=\([^ ]*\).*/\1/p' /proc/cmdline)
BUS_LOAD=${stage%/stage}/bench/bus-load
ROUNDS=5 CALLS=10000 BATCHES=4

configure "" "AllowBootVga=yes"
stop_daemon() {
        systemctl stop gpuswitchd.service
        for _ in $(seq 50); do pgrep -x gpuswitchd >/dev/null || break; sleep 0.1; done
        # six starts in a minute would hit the unit's start limit
        systemctl reset-failed gpuswitchd.service 2>/dev/null
}
first_reply() { "$BUS_LOAD" --first-reply | sed -n 's/^first reply \([0-9.]*\) ms$/\1/p'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }  # PID FIELD
memory() { echo "VmRSS $(status_kib "$1" VmRSS) KiB (RssAnon $(status_kib "$1" RssAnon), VmHWM $(status_kib "$1" VmHWM))"; }

# ---- start to first reply ----------------------------------------------------
# round 0 is the warm-up: the binary and its libraries come over 9p once.
activated="" running=""
for round in $(seq 0 $ROUNDS); do
        stop_daemon
        a=$(first_reply)
        sleep 1   # the unit's start settled
        r=$(first_reply)
        echo "round $round: activated $a ms, running $r ms"
        [ "$round" = 0 ] && { cold=$a; continue; }
        activated+="$a "; running+="$r "
done
n_act=$(wc -w <<<"$activated")
[ "$n_act" = $ROUNDS ] && [ "$(systemctl is-active gpuswitchd.service)" = active ] \
        && result activation-replied PASS "$n_act of $ROUNDS" || result activation-replied FAIL "$n_act of $ROUNDS"
act=$(tr ' ' '\n' <<<"$activated" | grep . | median)
run_ms=$(tr ' ' '\n' <<<"$running" | grep . | median)

# ---- resident memory -------------------------------------------------------------
stop_daemon
first_reply >/dev/null
pid=$(systemctl show -P MainPID gpuswitchd.service)
sleep 2
idle=$(memory "$pid") idle_rss=$(status_kib "$pid" VmRSS) idle_anon=$(status_kib "$pid" RssAnon)
echo "idle: $idle"
load_ok=1 rss0=$idle_rss anon0=$idle_anon growth=""
for batch in $(seq $BATCHES); do
        as_user alice "$BUS_LOAD" --mixed --calls $CALLS --seed $batch --timeout 60 >/tmp/load$batch.out 2>&1 || load_ok=0
        grep -E '^(bus-load|answered|all)' /tmp/load$batch.out
        sleep 1
        rss=$(status_kib "$pid" VmRSS) anon=$(status_kib "$pid" RssAnon) now=$(memory "$pid")
        echo "after $((batch * CALLS)) calls: $now"
        if [ "$batch" = 1 ]; then
                echo "BENCH footprint: gpuswitchd idle after start: $idle"
                echo "BENCH footprint: after $CALLS calls (bus-load --mixed, 50 clients): $now" \
                        "(+$((rss - idle_rss)) KiB RSS, +$((anon - idle_anon)) KiB anonymous since idle)"
        else
                growth+="$((rss - rss0))/$((anon - anon0)) "
        fi
        rss0=$rss anon0=$anon
done
echo "BENCH footprint: after $((BATCHES * CALLS)) calls: $now; growth over each further $CALLS," \
        "KiB RSS/anonymous: ${growth% }"
echo "BENCH footprint: start to first reply, bus-activated by systemd: median $act ms of $ROUNDS (cold first start $cold ms);" \
        "the running daemon: $run_ms ms; activation $(awk -v a="$act" -v b="$run_ms" 'BEGIN { printf "%.0f", (b > 0 ? a / b : 0) }')x a running reply"

[ $load_ok = 1 ] && result every-call-answered PASS || result every-call-answered FAIL "$(cat /tmp/load*.out)"
[ "$(systemctl show -P MainPID gpuswitchd.service)" = "$pid" ] && result same-daemon-throughout PASS \
        || result same-daemon-throughout FAIL
all_original && result gpu-untouched PASS || result gpu-untouched FAIL "$(state)"
finish
