#!/bin/bash
# Every benchmark in one command: figures, not pass/fail.  Each comparison
# runs both sides in the same run on the same machine and prints the ratio.
#
#   bench/run.sh [holders] [switch] [bus] [bus-host] [footprint] [daemon-time] [daemon-instructions]
#                (default: all seven)
#
#   holders    this machine: our /proc holder scan against fuser and lsof over
#              a synthetic table of 2,000 processes (bench/holder-scan.c)
#   switch     in the QEMU guest: a host -> vfio -> host round trip through
#              gpuswitchctl against the bare kernel sequence (the floor), a
#              pci-bind shell loop and driverctl (bench/vm/switch-latency.sh)
#   bus        in the guest: reply times of 50 clients reading properties
#              while a switch runs (bench/vm/bus-latency.sh)
#   bus-host   the same on this machine, at its own speed: the daemon's
#              Manager over the simulated kernel on a private dbus-daemon
#              (bench/bus-host.sh)
#   footprint  in the guest: the daemon's RSS idle and after 10,000 calls, and
#              its start-to-first-reply when bus-activated (bench/vm/footprint.sh)
#   daemon-time  in the guest: the daemon's CPU time a switch, real and empty
#              (bench/vm/daemon-time.sh)
#   daemon-instructions  in the guest: the daemon's instructions a switch,
#              under callgrind (bench/vm/daemon-instructions.sh)
#
# Installs what it needs from Debian's archive (as root), builds into
# $BUILD_DIR (default build-bench/, the release flags of the package) and
# writes everything it printed to $BUILD_DIR/bench-results.txt too.
# ROUNDS=N sets the holder benchmark's round count.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
B=${BUILD_DIR:-$top/build-bench}

which=("$@")
[ ${#which[@]} -gt 0 ] || which=(holders switch bus bus-host footprint daemon-time daemon-instructions)
for w in "${which[@]}"; do
        case "$w" in
        holders | switch | bus | bus-host | footprint | daemon-time | daemon-instructions) ;;
        *) echo "bench/run.sh: unknown benchmark '$w' (holders, switch, bus, bus-host, footprint, daemon-time," \
                "daemon-instructions)" >&2; exit 2 ;;
        esac
done

[ "${SKIP_DEPS:-0}" = 1 ] || tools/install-deps.sh >/dev/null
cmake -S . -B "$B" -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DGPUSWITCH_TESTS=OFF -DGPUSWITCH_MAN=OFF >/dev/null
cmake --build "$B" -j"$(nproc)" >/dev/null
rm -rf "$B/stage"
DESTDIR="$B/stage" cmake --install "$B" >/dev/null

out=$B/bench-results.txt
: > "$out"
say() { printf '%s\n' "$*" | tee -a "$out"; }

say "gpuswitch $(git describe --always --dirty 2>/dev/null || echo '?') benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
say "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)," \
    "$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"
say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

failed=0
# A guest benchmark: its BENCH lines are the figures; its RESULT lines say
# whether the run was sane (the GPU back on its drivers, the same holders...).
vm_bench() { # NAME SCRIPT
        local log=$B/bench-$1.log
        say ""
        if tests/vm/run-vm-test.sh --stage "$B/stage" --script "$2" --work "$B/vmwork" --log "$log" \
                --timeout 1800 >"$B/bench-$1.out" 2>&1; then
                sed -n 's/\r$//; s/^BENCH //p' "$log" | tee -a "$out"
        else
                sed -n 's/\r$//; s/^BENCH //p' "$log" | tee -a "$out"
                say "$1: the guest run was not clean (figures above are suspect):"
                grep -vE '^RESULT [^ ]+ PASS' "$B/bench-$1.out" | tail -20 | tee -a "$out"
                failed=1
        fi
}

for w in "${which[@]}"; do
        case "$w" in
        holders)
                say ""
                "$B/bench/holder-scan" ${ROUNDS:+--rounds "$ROUNDS"} 2>&1 | tee -a "$out" || failed=1 ;;
        switch) vm_bench switch bench/vm/switch-latency.sh ;;
        bus) vm_bench bus bench/vm/bus-latency.sh ;;
        bus-host)
                say ""
                bench/bus-host.sh "$B" 2>&1 | sed 's/^BENCH //' | tee -a "$out"
                [ "${PIPESTATUS[0]}" = 0 ] || failed=1 ;;
        footprint) vm_bench footprint bench/vm/footprint.sh ;;
        daemon-time) vm_bench daemon-time bench/vm/daemon-time.sh ;;
        daemon-instructions) vm_bench daemon-instructions bench/vm/daemon-instructions.sh ;;
        esac
done
say ""
say "(all of the above in $out)"
exit $failed
