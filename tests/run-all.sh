#!/bin/bash
# The project's test command: installs what it needs, builds with warnings
# as errors (plain, and with ASan and UBSan), runs the unit tests of both,
# the fuzzers, builds the Debian package, and runs the real-kernel tests in
# QEMU guests against the sanitized build (valgrind's against the plain one,
# the "# vmtest: deb" scripts against the package).  Ends with
# "N passed, N failed" and a report of where the time went.
#
#   tests/run-all.sh              everything (CI)
#   tests/run-all.sh --quick      the inner loop: the sanitized build's unit
#                                 tests and one guest with the core scenarios
#   tests/run-all.sh --unit-only  the unit tests of both builds, no QEMU
#
# FUZZ_SECONDS=N: each fuzz target's time (default 60, 0: none; with
# --unit-only only when set).  BUILD_DIR: the build folder (default build/).
#
# The guest scripts of one kind (run-vm-test.sh --kinds) share a boot; the
# boots and the other phases run in two lanes, one a core: the largest boot
# in the first, everything else in the second.  Each phase's output is kept
# in BUILD_DIR/results/PHASE.log and printed, in a fixed order, when all are
# done.
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD
B=${BUILD_DIR:-$top/build}
A=$B/asan
mode=full
case "${1:-}" in
"") ;;
--quick) mode=quick ;;
--unit-only) mode=unit ;;
*) echo "usage: tests/run-all.sh [--quick | --unit-only]" >&2; exit 2 ;;
esac
# The core scenarios of --quick: status, a switch both ways as a user the
# group rule allows, an unprivileged user denied, failures rolled back
# (gpuswitch.sh); a holder found, refused and ended (holders.sh).
QUICK_SCRIPTS=(tests/vm/guest/gpuswitch.sh tests/vm/guest/holders.sh)

R=$B/results
rm -rf "$R"; mkdir -p "$R"
start=$SECONDS

# A phase: its output in $R/NAME.log, its wall time and "passed failed" in
# $R/NAME.time and $R/NAME.count (a phase that counts checks writes that itself).
phase() { # NAME CMD...
        local name=$1 t0=$SECONDS rc; shift
        "$@" >"$R/$name.log" 2>&1; rc=$?
        echo "$((SECONDS - t0))" > "$R/$name.time"
        echo "[$(date +%T)] $name: $((SECONDS - t0)) s$([ $rc = 0 ] || echo ", exit $rc")"
        return $rc
}
count() { echo "$2 $3" > "$R/$1.count"; }   # NAME PASSED FAILED

deps() { tools/install-deps.sh $([ $mode = unit ] && echo --build-only); }
build() { # DIR CMAKE-OPTIONS...: configured, built and installed into DIR/stage
        local dir=$1; shift
        cmake -S . -B "$dir" -DCMAKE_INSTALL_PREFIX=/usr -DGPUSWITCH_WERROR=ON "$@" >/dev/null &&
                cmake --build "$dir" -j"$(nproc)" &&
                { [ $mode = unit ] || { rm -rf "$dir/stage" && DESTDIR="$dir/stage" cmake --install "$dir" >/dev/null; }; }
}
unit() { # NAME DIR: ctest, each test a check
        (cd "$2" && ctest --output-on-failure)
        local p; p=$(sed -n 's/.* tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2 \1/p' "$R/$1.log")
        [ -n "$p" ] || { echo "ctest did not run"; count "$1" 0 1; return 1; }
        set -- "$1" $p; count "$1" $(($2 - $3)) "$3"
}
fuzz() { # the libFuzzer targets, a check each
        FUZZ_BUILD_DIR="$B/fuzz-build" fuzz/run.sh "${FUZZ_SECONDS:-60}"
        local rc=$? p f
        p=$(grep -c '^fuzz-[a-z-]* PASS' "$R/fuzz.log"); f=$(grep -c '^fuzz-[a-z-]* FAIL' "$R/fuzz.log")
        [ $rc = 0 ] || [ "$f" != 0 ] || { echo "fuzz FAIL: fuzz/run.sh exit $rc"; f=1; }
        count fuzz "$p" "$f"
}
deb() { # the Debian package, for the guest scripts that install it
        BUILD_DIR="$B" tools/build-deb.sh >"$B/deb-build.log" 2>&1
        local debs=("$B"/deb/gpuswitch_*.deb)
        if [ -f "${debs[0]}" ]; then
                echo "deb-build PASS ${debs[0]}"; grep -E '^[EW]: ' "$B/deb/lintian.log"; count deb 1 0
        else
                echo "deb-build FAIL; the end of $B/deb-build.log:"; tail -30 "$B/deb-build.log"; count deb 0 1; return 1
        fi
}
vm() { # NAME SCRIPT...: one boot's scripts (a kind's), against the sanitized stage
        local name=$1 from=(--stage "$A/stage") s args=() line; shift
        [ ! -d "$B/stage" ] || from+=(--plain-stage "$B/stage")   # valgrind's daemon
        if grep -q '^# vmtest: deb$' "$1"; then
                local debs=("$B"/deb/gpuswitch_*.deb)
                [ -f "${debs[0]}" ] || { echo "FAIL: no package to install (deb-build failed)"; count "$name" 0 $#; return 1; }
                from=(--deb "${debs[0]}")
        fi
        for s in "$@"; do args+=(--script "$s"); done
        tests/vm/run-vm-test.sh "${from[@]}" "${args[@]}" --work "$B/vmwork" --log "$B/vm-$name.log"
        local rc=$?
        line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$R/$name.log" | tail -1)
        if [ -n "$line" ]; then
                set -- $line; count "$name" "$1" "$3"
                [ $rc = 0 ] || [ "$3" != 0 ] || { echo "FAIL: run-vm-test.sh exit $rc"; count "$name" "$1" 1; }
        else
                echo "FAIL: run-vm-test.sh printed no result"; count "$name" 0 1
        fi
        return $rc
}

order=()   # the phases whose output is printed, in this order
[ "${SKIP_DEPS:-0}" = 1 ] || phase deps deps || { cat "$R/deps.log"; exit 1; }
# --quick: the sanitized build alone, the one its guest runs
[ $mode = quick ] || phase build-plain build "$B" || { cat "$R/build-plain.log"; exit 1; }
phase build-asan build "$A" -DGPUSWITCH_SANITIZE=ON -DGPUSWITCH_BENCH=ON || { cat "$R/build-asan.log"; exit 1; }

fuzzing=0
if [ "${FUZZ_SECONDS:-60}" != 0 ] && { [ $mode = full ] || [ -n "${FUZZ_SECONDS:-}" ]; }; then fuzzing=1; fi
case $mode in
unit)
        order=(unit-plain unit-asan)
        phase unit-plain unit unit-plain "$B"
        phase unit-asan unit unit-asan "$A"
        [ $fuzzing = 0 ] || { order+=(fuzz); phase fuzz fuzz; }
        ;;
quick)
        order=(unit-asan vm-quick)
        phase vm-prepare tests/vm/run-vm-test.sh --prepare --work "$B/vmwork" || { cat "$R/vm-prepare.log"; exit 1; }
        phase vm-quick vm vm-quick "${QUICK_SCRIPTS[@]}" &
        phase unit-asan unit unit-asan "$A"
        wait
        ;;
full)
        phase vm-prepare tests/vm/run-vm-test.sh --prepare --work "$B/vmwork" || { cat "$R/vm-prepare.log"; exit 1; }
        # the guest scripts by kind, the kind with the most scripts first
        declare -A kinds=()
        while IFS=$'\t' read -r kind script; do
                [ "$(basename "$script")" = demo.sh ] && continue
                kinds[$kind]+="$script "
        done < <(tests/vm/run-vm-test.sh --kinds $(printf -- '--script %s ' tests/vm/guest/*.sh))
        boots=()
        while read -r _ kind; do boots+=("$kind"); done < <(for k in "${!kinds[@]}"; do
                set -- ${kinds[$k]}; echo "$# $k"; done | sort -rn)
        # lane 1: the largest boot; lane 2: the unit tests, the package, the
        # other boots (the package's last), the fuzzers
        ( phase "vm-${boots[0]}" vm "vm-${boots[0]}" ${kinds[${boots[0]}]} ) &
        lane1=$!
        (
                phase unit-plain unit unit-plain "$B"
                phase unit-asan unit unit-asan "$A"
                phase deb deb
                for k in "${boots[@]:1}"; do
                        [[ $k == *deb* ]] || phase "vm-$k" vm "vm-$k" ${kinds[$k]}
                done
                for k in "${boots[@]:1}"; do
                        [[ $k != *deb* ]] || phase "vm-$k" vm "vm-$k" ${kinds[$k]}
                done
                [ $fuzzing = 0 ] || phase fuzz fuzz
        ) &
        lane2=$!
        wait $lane1 $lane2
        order=(unit-plain unit-asan)
        [ $fuzzing = 0 ] || order+=(fuzz)
        order+=(deb)
        for k in "${boots[@]}"; do order+=("vm-$k"); done
        ;;
esac

passed=0 failed=0
for p in "${order[@]}"; do
        echo
        echo "######## $p"
        if [ -f "$R/$p.log" ]; then cat "$R/$p.log"; else echo "(did not run)"; fi
        if [ -f "$R/$p.count" ]; then
                read -r a f < "$R/$p.count"; passed=$((passed + a)); failed=$((failed + f))
        else
                echo "FAIL: $p counted no checks"; failed=$((failed + 1))
        fi
done

# Where the time went: each phase, each boot and each script in it.
{
        echo "==== time report (wall seconds; the two lanes run side by side)"
        for t in "$R"/*.time; do
                p=$(basename "$t" .time)
                printf '%-28s %5s\n' "$p" "$(cat "$t")"
                [ -f "$R/$p.log" ] && sed -n 's/^TIME boot \([0-9]*\) \([0-9]*\) (ready at \([^ ]*\) s.*/  boot \1 (ready at \3 s)|\2/p;
                        s/^TIME script \([^ ]*\) \([0-9.]*\)$/    \1|\2/p; s/^TIME reset \([^ ]*\) \([0-9.]*\)$/      reset|\2/p' "$R/$p.log" |
                        awk -F'|' '{printf "%-28s %5s\n", $1, $2}'
        done
        printf '%-28s %5s (%d min %d s)\n' total $((SECONDS - start)) $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60))
} > "$R/time-report.txt"
echo
cat "$R/time-report.txt"
echo
echo "$passed passed, $failed failed"
[ $failed = 0 ]
