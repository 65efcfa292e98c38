#!/bin/bash
# Bus reply times on this machine (issue 5's "p99 under 5 ms on this
# machine"): 50 clients reading the GPU's properties (bus-load --read) from
# gpuswitchd's own Manager, with no switch and while root switches the GPU
# back and forth, against bus-floor answering the same reads, in one run.
# The guest's emulated CPU is ten to fifty times slower than this one, so
# here the daemon is bench/simulated-gpuswitchd: the real vtables, polkit
# check, jobs, worker threads and signals over the simulated kernel of the
# unit tests (each unbind, bind and drivers_probe sleeping WRITE_DELAY_MS on
# the switch's thread, as the kernel's remove() and probe() take), nothing
# written to /sys.  Both serve on a private dbus-daemon with the system
# bus's rules and gpuswitch's own bus policy, on a socket in a temporary
# folder: this machine's system bus is not used.
#
#   bench/bus-host.sh BENCH_BUILD_DIR      (bench/run.sh calls it so)
#
# Figures on BENCH lines: the medians of p50 and p99 over BUS_ROUNDS runs
# (default 5) of BUS_CALLS calls (default 10000).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:?usage: bench/bus-host.sh BUILD_DIR}/bench
BUS_LOAD=$bin/bus-load
FLOOR=org.gpuswitch1.BenchFloor
CLIENTS=50 CALLS=${BUS_CALLS:-10000} ROUNDS=${BUS_ROUNDS:-5}
PACE=500 PACED_CALLS=5000   # paced: calls a second from all clients together
WRITE_DELAY_MS=${WRITE_DELAY_MS:-20}
TARGET_P99=5

dir=$(mktemp -d /tmp/gpuswitch-bus-host.XXXXXX)
pids=()
cleanup() {
        touch "$dir/stop-switching"
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
        rm -rf "$dir"
}
trap cleanup EXIT

# The system bus's rules, gpuswitch's policy, and the floor's name for root.
. "$top/tests/lib/private-system-bus.sh"
private_system_bus_conf "$dir/bus" "        <policy user=\"root\"><allow own=\"$FLOOR\"/></policy>
        <policy context=\"default\"><allow send_destination=\"$FLOOR\"/></policy>
        <limit name=\"max_replies_per_connection\">50000</limit>" >"$dir/bus.conf"
dbus-daemon --config-file="$dir/bus.conf" --nofork --nopidfile --nosyslog 2>"$dir/bus.log" & pids+=($!)
for _ in $(seq 100); do [ -S "$dir/bus" ] && break; sleep 0.05; done
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$dir/bus

mkdir -p "$dir/state"
GPUSWITCH_STATE_DIR=$dir/state GPUSWITCH_RUNTIME_DIR=$dir/state TMPDIR=$dir \
        "$bin/simulated-gpuswitchd" "$WRITE_DELAY_MS" 2>"$dir/daemon.log" & DAEMON_PID=$!; pids+=($!)
"$bin/bus-floor" $FLOOR & FLOOR_PID=$!; pids+=($!)
has_owner() { busctl --system status "$1" >/dev/null 2>&1; }
for _ in $(seq 100); do has_owner org.gpuswitch1 && has_owner $FLOOR && break; sleep 0.05; done
has_owner org.gpuswitch1 || { echo "bus-host: simulated-gpuswitchd did not start:" >&2; cat "$dir/daemon.log" >&2; exit 1; }
has_owner $FLOOR || { echo "bus-host: bus-floor did not start" >&2; exit 1; }

LOAD_FAILED=$dir/load.failed
. "$(dirname "$0")/bus-load-lib.sh"

# Root's switching loop through the bus, in the background until told to stop.
switch() { busctl --system --timeout=60 call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager Switch sst "" "$1" 0; }
switching_start() {
        rm -f "$dir/stop-switching"
        (
                n=0 bad=0
                while [ ! -e "$dir/stop-switching" ]; do
                        for m in vfio host; do
                                if switch $m >/dev/null 2>>"$dir/switch.err"; then n=$((n + 1)); else bad=$((bad + 1)); fi
                        done
                done
                echo "$n $bad" >"$dir/switches.count"
        ) &
        switcher=$!
        sleep 0.5
}
switching_stop() { touch "$dir/stop-switching"; wait $switcher; read -r SWITCHES SWITCH_FAILS <"$dir/switches.count"; }

# warm-up: first connections, page cache, the daemon's first allocations
load org.gpuswitch1 >/dev/null 2>&1
load $FLOOR >/dev/null 2>&1

compare idle "daemon floor" 2>>"$dir/runs.log"
compare idle-paced "daemon floor" --rate $PACE --calls $PACED_CALLS 2>>"$dir/runs.log"
switching_start
compare switching "daemon floor" 2>>"$dir/runs.log"
compare switching-paced "daemon floor" --rate $PACE --calls $PACED_CALLS 2>>"$dir/runs.log"
switching_stop

echo "BENCH bus latency on this machine: $CLIENTS clients reading GPU properties (bus-load --read), $CALLS calls a run" \
        "($PACED_CALLS paced), medians of $ROUNDS runs; simulated-gpuswitchd ($WRITE_DELAY_MS ms a kernel write)" \
        "and bus-floor on a private dbus-daemon; load average $(cut -d' ' -f1-3 /proc/loadavg)"
show idle "no switch, back to back"
show switching "switching, back to back"
show idle-paced "no switch, $PACE calls/s"
show switching-paced "switching, $PACE calls/s"
echo "BENCH bus while switching: $SWITCHES switches ran ($SWITCH_FAILS failed), Mode replied \"switching\" to" \
        "${SW[switching.daemon]}% (back to back) and ${SW[switching-paced.daemon]}% (paced) of the reads"
for l in switching switching-paced; do target $l $TARGET_P99 "on this machine"; done

# What the daemon and gpuswitchctl add to a switch at this machine's speed:
# gpuswitchctl vfio and host, as root, against simulated-gpuswitchd started
# again with kernel writes that take no time (a real nvidia unbind or probe
# takes hundreds of milliseconds to seconds).  Each is a whole command:
# its start, the bus, polkit's check, the daemon's reading, planning,
# holder scan of this machine's /proc, switch record and reply.
kill $DAEMON_PID; wait $DAEMON_PID 2>/dev/null || true
GPUSWITCH_STATE_DIR=$dir/state GPUSWITCH_RUNTIME_DIR=$dir/state TMPDIR=$dir \
        "$bin/simulated-gpuswitchd" 0 2>"$dir/daemon.log" & DAEMON_PID=$!; pids+=($!)
for _ in $(seq 100); do has_owner org.gpuswitch1 && break; sleep 0.05; done
CTL=$bin/../client/gpuswitchctl SWITCH_RUNS=${SWITCH_RUNS:-50}
ctl_ms=() ctl_bad=0
cpu_ticks() { local s; read -r -a s < "/proc/$DAEMON_PID/stat"; echo "${s[13]} ${s[14]}"; }   # utime stime
"$CTL" -q status >/dev/null 2>&1 || true   # warm-up
read -r du0 ds0 < <(cpu_ticks)
for ((i = 0; i < SWITCH_RUNS; i++)); do
        for m in vfio host; do
                t0=$EPOCHREALTIME
                "$CTL" -q "$m" 2>>"$dir/switch.err" || ctl_bad=$((ctl_bad + 1))
                t1=$EPOCHREALTIME
                ctl_ms+=($(( ${t1/./} - ${t0/./} )))
        done
done
read -r du1 ds1 < <(cpu_ticks)
median_ms() { sort -n | awk '{v[NR] = $1} END { printf "%.1f %.1f %.1f\n", v[int((NR + 1) / 2)] / 1000, v[1] / 1000, v[NR] / 1000 }'; }
read -r ctl_p50 ctl_min ctl_max < <(printf '%s\n' "${ctl_ms[@]}" | median_ms)
# The parts of it: the client's own start and exit (its --version), and
# the daemon's CPU time (all its threads) a switch.
start_ms=()
for ((i = 0; i < 30; i++)); do
        t0=$EPOCHREALTIME; "$CTL" --version >/dev/null; t1=$EPOCHREALTIME
        start_ms+=($(( ${t1/./} - ${t0/./} )))
done
read -r start_p50 _ < <(printf '%s\n' "${start_ms[@]}" | median_ms)
hz=$(getconf CLK_TCK)
daemon_cpu=$(awk -v u=$((du1 - du0)) -v s=$((ds1 - ds0)) -v n=$((SWITCH_RUNS * 2)) -v hz="$hz" 'BEGIN {
        printf "%.2f ms (user %.2f, system %.2f)", (u + s) * 1000 / hz / n, u * 1000 / hz / n, s * 1000 / hz / n }')
sanitized=""
grep -q '^GPUSWITCH_SANITIZE:BOOL=ON' "$bin/../CMakeCache.txt" 2>/dev/null &&
        sanitized=" [SANITIZED BUILD: ASan and UBSan add ~13 ms to each command's start; bench/run.sh builds without them]"
echo "BENCH switch overhead on this machine: gpuswitchctl vfio/host, each a whole command, with kernel writes that" \
        "take no time: median $ctl_p50 ms ($ctl_min-$ctl_max) over $((SWITCH_RUNS * 2)) switches, $ctl_bad failed;" \
        "gpuswitchctl's own start and exit: median $start_p50 ms; the daemon's CPU time a switch: $daemon_cpu;" \
        "load average $(cut -d' ' -f1-3 /proc/loadavg)$sanitized"

failed=0
[ "$ctl_bad" = 0 ] || { echo "bus-host: $ctl_bad gpuswitchctl switches failed:" >&2; sort "$dir/switch.err" | uniq -c >&2; failed=1; }
if [ -e "$LOAD_FAILED" ]; then
        echo "bus-host: $(wc -l <"$LOAD_FAILED") bus-load runs failed:" >&2; cat "$dir/runs.log" >&2; failed=1
fi
if [ "$SWITCH_FAILS" != 0 ] || [ "$SWITCHES" = 0 ]; then
        echo "bus-host: the switches did not all work:" >&2; sort "$dir/switch.err" | uniq -c >&2; failed=1
fi
kill -0 $DAEMON_PID 2>/dev/null || { echo "bus-host: simulated-gpuswitchd died:" >&2; cat "$dir/daemon.log" >&2; failed=1; }
exit $failed
