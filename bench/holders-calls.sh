#!/bin/bash
# ListHolders under concurrent callers (issue 13): rounds of N calls at once
# (busctl, a connection each, as root) to simulated-gpuswitchd on a private
# dbus-daemon; each ListHolders scans this machine's /proc for the
# simulated GPU's DRM node.  Reports the daemon's CPU time (all its
# threads, /proc/PID/stat) and the wall time a round, and the replies by
# kind.  Nothing is written to /sys.
#
#   bench/holders-calls.sh BENCH_BUILD_DIR [N] [ROUNDS]
#
# To compare builds, run it with each build's bench/simulated-gpuswitchd
# (BUILD_DIR/bench).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:?usage: bench/holders-calls.sh BUILD_DIR [N] [ROUNDS]}/bench
N=${2:-8} ROUNDS=${3:-25}

dir=$(mktemp -d /tmp/gpuswitch-holders-calls.XXXXXX)
pids=()
cleanup() {
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
        rm -rf "$dir"
}
trap cleanup EXIT

. "$top/tests/lib/private-system-bus.sh"
private_system_bus_conf "$dir/bus" >"$dir/bus.conf"
dbus-daemon --config-file="$dir/bus.conf" --nofork --nopidfile --nosyslog 2>"$dir/bus.log" & pids+=($!)
for _ in $(seq 100); do [ -S "$dir/bus" ] && break; sleep 0.05; done
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$dir/bus

mkdir -p "$dir/state"
GPUSWITCH_STATE_DIR=$dir/state GPUSWITCH_RUNTIME_DIR=$dir/state TMPDIR=$dir \
        "$bin/simulated-gpuswitchd" 0 2>"$dir/daemon.log" & daemon=$!; pids+=($!)
for _ in $(seq 100); do busctl --system status org.gpuswitch1 >/dev/null 2>&1 && break; sleep 0.05; done
busctl --system status org.gpuswitch1 >/dev/null 2>&1 || { echo "simulated-gpuswitchd did not start:" >&2; cat "$dir/daemon.log" >&2; exit 1; }

cpu_ticks() { awk '{ print $14 + $15 }' /proc/$daemon/stat; }
call() { busctl --system --timeout=60 call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager ListHolders s "" >"$dir/out.$1" 2>&1 || true; }

call warmup
t0=$(cpu_ticks) start=$(date +%s%N)
for r in $(seq "$ROUNDS"); do
        for i in $(seq "$N"); do call "$r.$i" & done
        wait $(jobs -p | grep -v -e "${pids[0]}" -e "$daemon") 2>/dev/null || true
done
t1=$(cpu_ticks) end=$(date +%s%N)
calls=$((N * ROUNDS))
ok=$(cat "$dir"/out.*.* | grep -c '^a(uuss) ' || true)
busy=$(cat "$dir"/out.*.* | grep -c 'as gpuswitchd takes\|as many such calls' || true)
hz=$(getconf CLK_TCK)
echo "BENCH ListHolders, $ROUNDS rounds of $N concurrent calls ($calls) as root, $(ls /proc | grep -c '^[0-9]') processes in /proc:" \
        "daemon CPU $(( (t1 - t0) * 1000 / hz )) ms ($(awk "BEGIN { printf \"%.2f\", ($t1 - $t0) * 1000 / $hz / $calls }") ms a call)," \
        "wall $(( (end - start) / 1000000 / ROUNDS )) ms a round; $ok answered, $busy Busy;" \
        "load average $(cut -d' ' -f1-3 /proc/loadavg)"
