#!/bin/bash
# The test of the harness: the scripts of a boot are independent.  In one
# run of run-vm-test.sh, harness/broken.sh fails and leaves the guest in a
# mess, and harness/clean.sh after it, in the same boot, finds it as at boot
# and usable; harness/wreck.sh leaves the guest beyond repair, and the
# script after it runs in a fresh boot; so does the one after
# harness/poweroff.sh, during which the guest goes down.
#   test-harness.sh --stage DIR [--work DIR] [--log FILE]
# A "RESULT NAME PASS|FAIL" line a check, then "N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp); trap 'rm -f "$out"' EXIT
h=$here/harness
"$here/run-vm-test.sh" "$@" --timeout 300 \
        --script "$h/broken.sh" --script "$h/after-broken.sh" \
        --script "$h/wreck.sh" --script "$h/after-wreck.sh" \
        --script "$h/poweroff.sh" --script "$h/after-poweroff.sh" > "$out" 2>&1
rc=$?
cat "$out"
echo "---- the harness, judged"

passed=0 failed=0
result() { # NAME PASS|FAIL [DETAIL]
        echo "RESULT $1 $2 ${3:-}"
        if [ "$2" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}
# the boot each script ran in, from the "TIME boot N" line before its header
boot_of() { awk -v s="$1" '/^TIME boot / {b = $3} $0 == "==== VM: " s {print b; exit}' "$out"; }
summary() { grep -E "^SCRIPT $1: " "$out"; }   # "SCRIPT NAME: N passed, N failed in ..."
clean() { summary "$1" | grep -qE ": [1-9][0-9]* passed, 0 failed"; }

[ $rc != 0 ] && result run-fails PASS "exit $rc" || result run-fails FAIL "run-vm-test.sh exit $rc with a failing script"
summary broken | grep -qE ": [0-9]+ passed, [1-9][0-9]* failed" && grep -q "guest-script FAIL broken exited 3 without calling finish" "$out" \
        && result broken-fails PASS || result broken-fails FAIL "$(summary broken)"
clean after-broken && result after-broken-passes PASS "$(summary after-broken)" || result after-broken-passes FAIL "$(summary after-broken)"
[ "$(boot_of after-broken)" = "$(boot_of broken)" ] && [ -n "$(boot_of broken)" ] \
        && result after-broken-same-boot PASS "boot $(boot_of broken)" \
        || result after-broken-same-boot FAIL "broken in boot '$(boot_of broken)', after-broken in '$(boot_of after-broken)'"
grep -q "^RESULT guest-reset FAIL the guest could not be put back after wreck" "$out" && result wreck-ends-boot PASS || result wreck-ends-boot FAIL
clean after-wreck && result after-wreck-passes PASS "$(summary after-wreck)" || result after-wreck-passes FAIL "$(summary after-wreck)"
[ -n "$(boot_of after-wreck)" ] && [ "$(boot_of after-wreck)" != "$(boot_of wreck)" ] \
        && result after-wreck-fresh-boot PASS "boot $(boot_of after-wreck)" \
        || result after-wreck-fresh-boot FAIL "wreck in boot '$(boot_of wreck)', after-wreck in '$(boot_of after-wreck)'"
grep -q "^RESULT guest-down FAIL the guest went down during poweroff" "$out" && summary poweroff | grep -q ", 1 failed" \
        && result poweroff-fails PASS || result poweroff-fails FAIL "$(summary poweroff)"
clean after-poweroff && result after-poweroff-passes PASS "$(summary after-poweroff)" \
        || result after-poweroff-passes FAIL "$(summary after-poweroff)"
[ -n "$(boot_of after-poweroff)" ] && [ "$(boot_of after-poweroff)" != "$(boot_of poweroff)" ] \
        && result after-poweroff-fresh-boot PASS "boot $(boot_of after-poweroff)" \
        || result after-poweroff-fresh-boot FAIL "poweroff in boot '$(boot_of poweroff)', after-poweroff in '$(boot_of after-poweroff)'"
echo "$passed passed, $failed failed"
[ $failed = 0 ]
