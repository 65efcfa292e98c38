#!/bin/bash
# The project's test command: installs what it needs, builds with warnings
# as errors, runs the unit tests, builds the Debian package, installs into a
# staging tree and runs the real-kernel tests in a QEMU guest (a script marked
# "# vmtest: deb" gets the package instead).  Ends with "N passed, N failed".
#   tests/run-all.sh [--unit-only]
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD
B=${BUILD_DIR:-$top/build}
unit_only=0; [ "${1:-}" = --unit-only ] && unit_only=1

[ "${SKIP_DEPS:-0}" = 1 ] || tools/install-deps.sh $([ $unit_only = 1 ] && echo --build-only) || exit 1

cmake -S . -B "$B" -DCMAKE_INSTALL_PREFIX=/usr -DGPUSWITCH_WERROR=ON >/dev/null || exit 1
cmake --build "$B" -j"$(nproc)" || exit 1

passed=0; failed=0
(cd "$B" && ctest --output-on-failure) | tee "$B/ctest.log"
p=$(sed -n 's/.* tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2 \1/p' "$B/ctest.log")
[ -n "$p" ] || { echo "ctest did not run"; failed=$((failed+1)); }
set -- $p; passed=$((passed + ${1:-0} - ${2:-0})); failed=$((failed + ${2:-0}))

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
        rm -rf "$B/stage"
        DESTDIR="$B/stage" cmake --install "$B" >/dev/null || exit 1
        for script in tests/vm/guest/*.sh; do
                [ "$(basename "$script")" = demo.sh ] && continue
                echo "==== VM: $script"
                from=(--stage "$B/stage")
                if grep -q '^# vmtest: deb$' "$script"; then
                        [ -n "$deb" ] || { echo "FAIL: no package to install (deb-build failed)"; failed=$((failed + 1)); continue; }
                        from=(--deb "$deb")
                fi
                tests/vm/run-vm-test.sh "${from[@]}" --script "$script" --work "$B/vmwork" \
                        --log "$B/vm-$(basename "$script" .sh).log" | tee "$B/vm-$(basename "$script" .sh).out"
                rc=${PIPESTATUS[0]}
                line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$B/vm-$(basename "$script" .sh).out" | tail -1)
                if [ -n "$line" ]; then
                        set -- $line; passed=$((passed + $1)); failed=$((failed + $3))
                fi
                [ $rc = 0 ] || { [ -n "$line" ] && [ "$3" != 0 ]; } || failed=$((failed + 1))
        done
fi

echo
echo "$passed passed, $failed failed"
[ $failed = 0 ]
