#!/bin/bash
# Builds the libFuzzer targets with clang (ASan, UBSan) in their own build
# folder and runs each for a bounded time, seeded from the corpus kept in
# fuzz/corpus/TARGET, which is only read: new inputs go to a scratch folder.
# A crash, a leak, a timeout or an out-of-memory fails the target, and its
# reproducer is printed.  One "fuzz-NAME PASS|FAIL ..." line per target.
#   fuzz/run.sh [SECONDS]      seconds per target (default $FUZZ_SECONDS or 60)
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_WORK (scratch,
# default FUZZ_BUILD_DIR/fuzz-work), FUZZ_TARGETS (default all four).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
top=$PWD
seconds=${1:-${FUZZ_SECONDS:-60}}
FB=${FUZZ_BUILD_DIR:-$top/build-fuzz}
work=${FUZZ_WORK:-$FB/fuzz-work}
read -ra targets <<<"${FUZZ_TARGETS:-fuzz-config fuzz-pci-address fuzz-bus-method fuzz-domain-xml}"

case $seconds in ''|*[!0-9]*) echo "usage: fuzz/run.sh [SECONDS]" >&2; exit 2 ;; esac

if [ -f "$FB/CMakeCache.txt" ] && ! grep -q '^CMAKE_C_COMPILER:.*clang' "$FB/CMakeCache.txt"; then
        echo "$FB was configured with another compiler than clang: remove it or set FUZZ_BUILD_DIR" >&2
        exit 1
fi
out=$(CC=clang cmake -S . -B "$FB" -DGPUSWITCH_FUZZ=ON -DGPUSWITCH_WERROR=ON 2>&1) ||
        { echo "$out"; echo "fuzz: configuring $FB failed" >&2; exit 1; }
cmake --build "$FB" -j"$(nproc)" --target "${targets[@]}" || { echo "fuzz: building the targets failed" >&2; exit 1; }

# The fake sysfs trees of fuzz-bus-method are made and removed for every
# input: on tmpfs when there is one.
rm -rf "$work"
mkdir -p "$work"
tmp=$(mktemp -d "$( [ -w /dev/shm ] && echo /dev/shm || echo /tmp )/gpuswitch-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
for t in "${targets[@]}"; do
        new=$work/$t/new-inputs      # libFuzzer adds its finds to the first folder only
        mkdir -p "$new"
        opts=(-max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1
              -artifact_prefix="$work/$t/")
        [ -f "fuzz/$t.dict" ] && opts+=(-dict="fuzz/$t.dict")
        TMPDIR=$tmp "$FB/fuzz/$t" "${opts[@]}" "$new" "fuzz/corpus/$t" >"$work/$t.log" 2>&1
        rc=$?
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t.log")
        found=$(sed -n 's/^stat::new_units_added: *//p' "$work/$t.log")
        crashes=("$work/$t"/crash-* "$work/$t"/leak-* "$work/$t"/timeout-* "$work/$t"/oom-*)
        artifacts=()
        for a in "${crashes[@]}"; do [ -f "$a" ] && artifacts+=("$a"); done
        if [ $rc = 0 ] && [ ${#artifacts[@]} = 0 ] && [ -n "$runs" ]; then
                echo "$t PASS ${runs} runs in ${seconds} s, ${rate}/s, ${found:-0} new inputs (not kept)"
                continue
        fi
        failed=$((failed + 1))
        echo "$t FAIL (exit $rc); the end of $work/$t.log:"
        grep -v '^#[0-9]' "$work/$t.log" | tail -40
        for a in "${artifacts[@]}"; do
                echo "reproducer: $a ($(stat -c %s "$a") bytes), base64 $(base64 -w0 "$a")"
                echo "  run it again: $FB/fuzz/$t $a"
        done
done
exit $((failed > 0))
