#!/bin/bash
# The built gpuswitchd.service: systemd's own checks find nothing wrong in
# it (a misspelt or unparsable setting is only a warning to systemd, and a
# protection silently lost), and its exposure by `systemd-analyze security`
# is at most 2.0 (systemd-logind's is 3.0), and it can load no module
# itself: CAP_SYS_MODULE and the @module calls are gone (systemd loads
# them, daemon/module-load.c).  Offline: no running systemd needed.
#
#   test-unit-hardening.sh UNIT_FILE DAEMON_BINARY
set -euo pipefail
unit=$1 daemon=$2
max=2.0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# verify checks that ExecStart= exists: a copy that starts the daemon just
# built (the unit names where it is installed).
sed "s|^ExecStart=.*|ExecStart=$daemon|" "$unit" > "$tmp/gpuswitchd.service"
if out=$(systemd-analyze verify --man=no "$tmp/gpuswitchd.service" 2>&1) && [ -z "$out" ]; then
        echo "PASS verify: no warnings"
else
        echo "FAIL verify:"; echo "$out"; fail=1
fi

# Settings systemd cannot parse are reported here too.
if ! out=$(systemd-analyze security --offline=true --no-pager "$unit" 2>"$tmp/err"); then
        echo "FAIL security: systemd-analyze failed:"; cat "$tmp/err"; exit 1
fi
if [ -s "$tmp/err" ]; then
        echo "FAIL security: warnings:"; cat "$tmp/err"; fail=1
fi
score=$(echo "$out" | sed -n 's/^.*Overall exposure level for [^:]*: \([0-9.]*\) .*$/\1/p')
if [ -z "$score" ]; then
        echo "FAIL security: no overall exposure in its output:"; echo "$out"; exit 1
fi
# The settings that still cost something, for whoever reads a failure.
echo "$out" | grep '✗' || true
# systemd's own reading of what the unit allows, not a grep of its text
for want in 'CapabilityBoundingSet=~CAP_SYS_MODULE' 'SystemCallFilter=~@module'; do
        if echo "$out" | grep -qE "^✓ ${want//\~/\~} "; then
                echo "PASS security: $want"
        else
                echo "FAIL security: $want not met:"; echo "$out" | grep -F "$want" || true; fail=1
        fi
done
# --threshold takes tenths: the exit code is systemd's own judgement.
if systemd-analyze security --offline=true --no-pager --threshold="${max/./}" "$unit" >/dev/null 2>&1; then
        echo "PASS security: exposure $score, at most $max"
else
        echo "FAIL security: exposure $score, above $max"; fail=1
fi
exit $fail
