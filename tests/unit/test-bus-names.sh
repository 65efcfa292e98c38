#!/bin/bash
# The names of the D-Bus API are spelt in C in one place only,
# common/gpuswitch-bus.h: the daemon, gpuswitchctl, the benchmarks, the
# fuzzers and the tests include it.  A second spelling (a "#define BUS_NAME
# ..." of a client file, a path or an error name written out) fails here.
# Comments may name them; shell scripts and the files under dbus/ and
# polkit/ are not C and keep their own.  The header's names are checked
# against dbus/org.gpuswitch1.xml, the API's reference.
#   test-bus-names.sh SOURCE_DIR
set -euo pipefail

src=${1:?usage: test-bus-names.sh SOURCE_DIR}
header=common/gpuswitch-bus.h
xml=$src/dbus/org.gpuswitch1.xml
failures=0
checks=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# Every line of C code (comments taken out) that holds a name of the API.
code_mentions() { # FILE
        sed -e 's|/\*.*\*/||g' -e 's|//.*||' -e '/^[[:space:]]*\(\*\|\/\*\)/d' "$1" | grep -n 'org\.gpuswitch1' || true
}

cd "$src"
files=$(find daemon client common bench fuzz tests hooks tools -name '*.[ch]' 2>/dev/null | sort)
[ -n "$files" ] || { echo "FAIL: no C sources under $src"; exit 1; }
for f in $files; do
        [ "$f" = "$header" ] && continue
        checks=$((checks + 1))
        hits=$(code_mentions "$f")
        [ -z "$hits" ] || fail "$f spells a name of the bus API; include $header instead:"$'\n'"$hits"
done

# The header names what the XML declares.
value() { sed -n "s/^#define $1 \(.*\)$/\1/p" "$header"; }
checks=$((checks + 1))
[ "$(value GPUSWITCH_BUS_NAME)" = '"org.gpuswitch1"' ] || fail "GPUSWITCH_BUS_NAME is $(value GPUSWITCH_BUS_NAME)"
for iface in Manager Gpu; do
        checks=$((checks + 1))
        grep -q "<interface name=\"org.gpuswitch1.$iface\">" "$xml" ||
                fail "$xml has no interface org.gpuswitch1.$iface, which $header names"
done
checks=$((checks + 1))
grep -q 'flags: 0x1 = terminate' "$xml" && grep -q 'SWITCH_FLAG_TERMINATE_HOLDERS UINT64_C(0x1)' "$header" ||
        fail "the flag 0x1 of Switch() differs between $xml and $header"

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
