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
# boots and the other phases after the builds are shared out between two
# workers, one a core.  Each phase's output is kept
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
        echo "$((t0 - start)) $((SECONDS - t0))" > "$R/$name.time"
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
        count_result "$name" $?
}
harness() { # the test of the harness itself (tests/vm/test-harness.sh)
        tests/vm/test-harness.sh --stage "$A/stage" --work "$B/vmwork" --log "$B/vm-harness.log"
        count_result harness $?
}
count_result() { # NAME EXIT: the counts of NAME's last "N passed, N failed" line
        local line rc=$2
        line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$R/$1.log" | tail -1)
        if [ -n "$line" ]; then
                set -- "$1" $line; count "$1" "$2" "$4"
                [ "$rc" = 0 ] || [ "$4" != 0 ] || { echo "FAIL: exit $rc"; count "$1" "$2" 1; }
        else
                echo "FAIL: no result printed"; count "$1" 0 1
        fi
        return "$rc"
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
        # The guest scripts by kind, a boot a kind; a kind of more than
        # $PER_BOOT scripts is dealt out over several boots, so that the two
        # workers get even shares: the longest script first, each to the boot
        # with the least time so far (a script's "# vmtest-seconds: N" line,
        # measured under TCG, else DEFAULT_SECONDS).  The longest boots first.
        PER_BOOT=7 DEFAULT_SECONDS=20
        declare -A kinds=() boot_scripts=() boot_seconds=()
        while IFS=$'\t' read -r kind script; do
                [ "$(basename "$script")" = demo.sh ] && continue
                kinds[$kind]+="$script "
        done < <(tests/vm/run-vm-test.sh --kinds $(printf -- '--script %s ' tests/vm/guest/*.sh))
        seconds_of() { local n; n=$(sed -n 's/^# vmtest-seconds: \([0-9]\+\)$/\1/p' "$1"); echo "${n:-$DEFAULT_SECONDS}"; }
        for k in "${!kinds[@]}"; do
                set -- ${kinds[$k]}
                n=$(( ($# + PER_BOOT - 1) / PER_BOOT ))
                while read -r secs s; do
                        b=$k
                        if [ $n != 1 ]; then
                                b=$k-1
                                for ((i = 2; i <= n; i++)); do
                                        [ "${boot_seconds[$k-$i]:-0}" -lt "${boot_seconds[$b]:-0}" ] && b=$k-$i
                                done
                        fi
                        boot_scripts[$b]+="$s "
                        boot_seconds[$b]=$(( ${boot_seconds[$b]:-0} + secs ))
                done < <(for s in "$@"; do echo "$(seconds_of "$s") $s"; done | sort -k1,1rn -k2)
        done
        boots=()
        while read -r _ b; do boots+=("$b"); done < <(for b in "${!boot_scripts[@]}"; do
                echo "${boot_seconds[$b]} $b"; done | sort -k1,1rn -k2)
        # The phases, taken in this order by two workers, one a core, the
        # longest first so that the two end together: the boots of more than
        # one script, the unit tests, the package (before the boot that
        # installs it), the fuzzers (3 to 4 minutes), the other boots, the
        # harness.
        queue=()
        for b in "${boots[@]}"; do set -- ${boot_scripts[$b]}; [ $# -gt 1 ] && [[ $b != *deb* ]] && queue+=("vm-$b"); done
        queue+=(unit-plain unit-asan deb)
        [ $fuzzing = 0 ] || queue+=(fuzz)
        for b in "${boots[@]}"; do set -- ${boot_scripts[$b]}; [ $# = 1 ] && [[ $b != *deb* ]] && queue+=("vm-$b"); done
        for b in "${boots[@]}"; do [[ $b != *deb* ]] || queue+=("vm-$b"); done
        queue+=(harness)
        run_phase() { # NAME
                case $1 in
                unit-plain) phase unit-plain unit unit-plain "$B" ;;
                unit-asan) phase unit-asan unit unit-asan "$A" ;;
                deb) phase deb deb ;;
                harness) phase harness harness ;;
                fuzz) phase fuzz fuzz ;;
                vm-*deb*) # the package first: wait for the other worker to build it
                        while [ ! -f "$R/deb.time" ]; do sleep 1; done
                        phase "$1" vm "$1" ${boot_scripts[${1#vm-}]} ;;
                vm-*) phase "$1" vm "$1" ${boot_scripts[${1#vm-}]} ;;
                esac
        }
        echo 0 > "$R/queue"
        worker() {
                local i
                while :; do
                        i=$(flock "$R/queue" sh -c 'read -r i < "$1"; echo $((i + 1)) > "$1"; echo "$i"' - "$R/queue")
                        [ "$i" -lt ${#queue[@]} ] || break
                        run_phase "${queue[$i]}"
                done
        }
        worker & worker & wait
        order=(unit-plain unit-asan)
        [ $fuzzing = 0 ] || order+=(fuzz)
        order+=(deb)
        for b in "${boots[@]}"; do order+=("vm-$b"); done
        order+=(harness)
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

# Where the time went: each phase (from when, how long), each boot and each
# script in it.
{
        echo "==== time report: seconds from the start, and of wall time (two workers side by side)"
        printf '%-30s %5s %5s\n' phase from took
        for t in "$R"/*.time; do echo "$(cat "$t") $(basename "$t" .time)"; done | sort -n | while read -r from took p; do
                printf '%-30s %5s %5s\n' "$p" "$from" "$took"
                [ -f "$R/$p.log" ] && sed -n 's/^TIME boot \([0-9]*\) \([0-9]*\) (ready at \([^ ]*\) s.*/  boot \1 (ready at \3 s)|\2/p;
                        s/^TIME script \([^ ]*\) \([0-9.]*\)$/    \1|\2/p; s/^TIME reset \([^ ]*\) \([0-9.]*\)$/      reset|\2/p' "$R/$p.log" |
                        awk -F'|' '{printf "%-30s %5s %5s\n", $1, "", $2}'
        done
        printf '%-30s %5s %5s (%d min %d s)\n' total "" $((SECONDS - start)) $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60))
} > "$R/time-report.txt"
echo
cat "$R/time-report.txt"
echo
echo "$passed passed, $failed failed"
[ $failed = 0 ]
