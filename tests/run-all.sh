#!/bin/bash
# The project's test command: installs what it needs, builds with warnings
# as errors, runs the unit tests, builds the Debian package, installs into a
# staging tree and runs the real-kernel tests in a QEMU guest (a script marked
# "# vmtest: deb" gets the package instead).  Ends with "N passed, N failed".
#   tests/run-all.sh [--unit-only]     (FUZZ_SECONDS=N: each fuzz target's time, 0: none)
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD
B=${BUILD_DIR:-$top/build}
unit_only=0; [ "${1:-}" = --unit-only ] && unit_only=1

[ "${SKIP_DEPS:-0}" = 1 ] || tools/install-deps.sh $([ $unit_only = 1 ] && echo --build-only) || exit 1

cmake -S . -B "$B" -DCMAKE_INSTALL_PREFIX=/usr -DGPUSWITCH_WERROR=ON >/dev/null || exit 1
cmake --build "$B" -j"$(nproc)" || exit 1

# The same code with ASan and UBSan, its lines prefixed "asan: ": the unit
# tests, and the VM scripts against its daemon (guest/load.sh runs its bench/bus-load).
A=$B/asan
cmake -S . -B "$A" -DCMAKE_INSTALL_PREFIX=/usr -DGPUSWITCH_WERROR=ON -DGPUSWITCH_SANITIZE=ON -DGPUSWITCH_BENCH=ON \
        >/dev/null || exit 1
cmake --build "$A" -j"$(nproc)" || exit 1

passed=0; failed=0
unit_tests() { # BUILD PREFIX: ctest in BUILD, its output's lines prefixed
        (cd "$1" && ctest --output-on-failure) | tee "$1/ctest.log" | sed "s/^/$2/"
        local p; p=$(sed -n 's/.* tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2 \1/p' "$1/ctest.log")
        [ -n "$p" ] || { echo "${2}ctest did not run"; failed=$((failed+1)); }
        set -- $p; passed=$((passed + ${1:-0} - ${2:-0})); failed=$((failed + ${2:-0}))
}
unit_tests "$B" ""
unit_tests "$A" "asan: "

# The libFuzzer targets (clang), FUZZ_SECONDS each (default 60, 0 skips them; with
# --unit-only only when FUZZ_SECONDS is set, clang being a test dependency): a line per target.
if [ "${FUZZ_SECONDS:-60}" != 0 ] && { [ $unit_only = 0 ] || [ -n "${FUZZ_SECONDS:-}" ]; }; then
        FUZZ_BUILD_DIR="$B/fuzz-build" fuzz/run.sh "${FUZZ_SECONDS:-60}" | tee "$B/fuzz.log"
        rc=${PIPESTATUS[0]}
        passed=$((passed + $(grep -c '^fuzz-[a-z-]* PASS' "$B/fuzz.log")))
        failed=$((failed + $(grep -c '^fuzz-[a-z-]* FAIL' "$B/fuzz.log")))
        [ "$rc" = 0 ] || grep -q '^fuzz-[a-z-]* FAIL' "$B/fuzz.log" || { echo "fuzz FAIL: fuzz/run.sh exit $rc"; failed=$((failed + 1)); }
fi

if [ $unit_only = 0 ]; then
        # The Debian package, for the VM scripts that install it ("# vmtest: deb").
        deb=
        if BUILD_DIR="$B" tools/build-deb.sh >"$B/deb-build.log" 2>&1; then
                debs=("$B"/deb/gpuswitch_*.deb); [ -f "${debs[0]}" ] && deb=${debs[0]}
        fi
        if [ -n "$deb" ]; then
                echo "deb-build PASS $deb"; passed=$((passed + 1))
                grep -E '^[EW]: ' "$B/deb/lintian.log"
        else
                echo "deb-build FAIL; the end of $B/deb-build.log:"; tail -30 "$B/deb-build.log"; failed=$((failed + 1))
        fi
        vm_tests() { # BUILD PREFIX [SKIP]: every VM script but demo.sh and those marked "# vmtest: SKIP"
                     # (a regex) against BUILD's staging tree; logs in BUILD, output lines prefixed
                local build=$1 prefix=$2 skip=${3:-} script name from rc line
                rm -rf "$build/stage"
                DESTDIR="$build/stage" cmake --install "$build" >/dev/null || exit 1
                for script in tests/vm/guest/*.sh; do
                        name=$(basename "$script" .sh)
                        [ "$name" = demo ] && continue
                        [ -n "$skip" ] && grep -qE "^# vmtest: ($skip)\$" "$script" && continue
                        echo "${prefix}==== VM: $script"
                        from=(--stage "$build/stage")
                        if grep -q '^# vmtest: deb$' "$script"; then
                                [ -n "$deb" ] || { echo "FAIL: no package to install (deb-build failed)"; failed=$((failed + 1)); continue; }
                                from=(--deb "$deb")
                        fi
                        tests/vm/run-vm-test.sh "${from[@]}" --script "$script" --work "$B/vmwork" \
                                --log "$build/vm-$name.log" | tee "$build/vm-$name.out" | sed "s/^/$prefix/"
                        rc=${PIPESTATUS[0]}
                        line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$build/vm-$name.out" | tail -1)
                        if [ -n "$line" ]; then
                                set -- $line; passed=$((passed + $1)); failed=$((failed + $3))
                        fi
                        [ $rc = 0 ] || { [ -n "$line" ] && [ "$3" != 0 ]; } || { echo "${prefix}FAIL: $script"; failed=$((failed + 1)); }
                done
        }
        vm_tests "$B" ""
        # the package is not the sanitized build; valgrind cannot run one
        vm_tests "$A" "asan: " "deb|plain-build"
fi

echo
echo "$passed passed, $failed failed"
[ $failed = 0 ]
