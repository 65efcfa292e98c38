#!/bin/bash
# vmtest-seconds: 50
# The daemon under valgrind's memcheck for a switch round trip, a few reads
# and a refused call, then stopped with SIGTERM: no memory error and no leak
# (definite, indirect or possible; glib's and libsystemd's one-time
# allocations are still reachable, which is no error).
# valgrind cannot run an ASan build: in a guest given one (run-all.sh's),
# the daemon under memcheck is the build without sanitizers that
# run-vm-test.sh's --plain-stage names; alone, the installed one.
. "$(dirname "$0")/../guest-lib.sh"

. "$(dirname "$0")/../gpu-lib.sh"

VGLOG=/tmp/valgrind.log
DAEMON=${VMTEST_PLAIN_STAGE:+$VMTEST_PLAIN_STAGE}/usr/libexec/gpuswitchd
readelf -d "$DAEMON" | grep -q libasan && { result plain-daemon FAIL "$DAEMON is sanitized: give run-vm-test.sh --plain-stage"; finish; }

configure "" "AllowBootVga=yes"
pkill -x gpuswitchd
# Under TCG memcheck runs the daemon some 50 times slower: generous waits.
valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect,possible \
        --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 --num-callers=30 \
        --log-file="$VGLOG" "$DAEMON" &
VG=$!
for _ in $(seq 600); do bus_has_owner org.gpuswitch1 && break; kill -0 $VG 2>/dev/null || break; sleep 0.2; done
bus_has_owner org.gpuswitch1 && result daemon-under-memcheck-on-bus PASS || result daemon-under-memcheck-on-bus FAIL

# reads
run $CTL status
expect_rc status 0
run $CTL --json status
expect_rc status-json 0
run prop Mode
[ "$OUT" = 's "host"' ] && result mode-host PASS || result mode-host FAIL "$OUT"
run $CTL plan vfio
expect_rc plan-vfio 0
run $CTL holders
expect_rc holders 0

# refused: an ordinary user without a polkit rule, and a bad argument
run as_user alice $CTL --no-ask-password vfio
expect_rc unprivileged-refused 4
run busctl --system call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager Switch sst "$SLOT" sideways 0
[ $RC != 0 ] && result bad-mode-refused PASS || result bad-mode-refused FAIL "$OUT"
all_original && result refused-nothing-moved PASS || result refused-nothing-moved FAIL "$(state)"

# the round trip
run $CTL --timeout=600 vfio
expect_rc switch-vfio 0
all_on vfio-pci && result all-on-vfio-pci PASS || result all-on-vfio-pci FAIL "$(state)"
run prop Mode
[ "$OUT" = 's "vfio"' ] && result mode-vfio PASS || result mode-vfio FAIL "$OUT"
run $CTL --timeout=600 host
expect_rc switch-host 0
all_original && result back-on-host-drivers PASS || result back-on-host-drivers FAIL "$(state)"

# stopped cleanly: memcheck's leak check runs at exit
kill -TERM $VG
for _ in $(seq 600); do kill -0 $VG 2>/dev/null || break; sleep 0.2; done
if kill -0 $VG 2>/dev/null; then
        result daemon-stopped FAIL "still running 120 s after SIGTERM"; kill -KILL $VG
fi
wait $VG
rc=$?
echo "---- $VGLOG"; cat "$VGLOG"
[ $rc = 0 ] && result memcheck-exit-0 PASS || result memcheck-exit-0 FAIL "exit $rc (99: memcheck found errors)"
grep -q 'ERROR SUMMARY: 0 errors' "$VGLOG" && result memcheck-no-errors PASS \
        || result memcheck-no-errors FAIL "$(grep 'ERROR SUMMARY' "$VGLOG")"
# "All heap blocks were freed" or, with library blocks still reachable, nothing lost
if grep -q 'All heap blocks were freed' "$VGLOG" \
        || { grep -qE 'definitely lost: 0 bytes' "$VGLOG" && grep -qE 'indirectly lost: 0 bytes' "$VGLOG" \
             && grep -qE 'possibly lost: 0 bytes' "$VGLOG"; }; then
        result memcheck-no-leaks PASS
else
        result memcheck-no-leaks FAIL "$(grep -E '(definitely|indirectly|possibly) lost:' "$VGLOG" | tr -s ' ' | paste -sd';')"
fi
finish
