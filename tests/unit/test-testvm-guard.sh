#!/bin/bash
# Every program and script outside the daemon that writes PCI sysfs refuses
# to run outside the test VM (tests/vm/testvm-guard.sh), saying why, before
# it opens anything under /sys.  Each is run here, on the build machine,
# aimed at a PCI address no machine has (ffff:ff:1f), as an unprivileged
# user when this test runs as root, under strace, which records every file
# it opens: a broken guard would still harm nothing.
#   test-testvm-guard.sh SOURCE_DIR [SWITCH_FLOOR]
set -uo pipefail
src=$1 floor=${2:-}
. "$src/tests/vm/testvm-guard.sh"
command -v strace >/dev/null || { echo "FAIL: strace is not installed (tools/install-deps.sh installs it)"; exit 1; }
if grep -qw -- "$GPUSWITCH_TESTVM_MARKER" /proc/cmdline; then
        echo "FAIL: this is the test VM: the guard has nothing to refuse here"; exit 1
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# a copy that the unprivileged user can read, wherever the sources are
chmod 755 "$tmp"
mkdir -p "$tmp/src/tests" "$tmp/src/bench"
cp -r "$src/tests/vm" "$tmp/src/tests/"; cp -r "$src/bench/vm" "$tmp/src/bench/"
[ -z "$floor" ] || cp "$floor" "$tmp/switch-floor"
chmod -R a+rX "$tmp/src"
src=$tmp/src
# LeakSanitizer cannot work under strace (the sanitized build's switch-floor)
export ASAN_OPTIONS=detect_leaks=0
as_nobody=()
[ "$(id -u)" = 0 ] && as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups --)

failed=0 n=0
refuses() { # NAME CMD...: exit 77, the guard's message, nothing under /sys opened
        local name=$1 rc; shift
        n=$((n + 1))
        (cd "$tmp" && strace -f -qq -e trace=open,openat,openat2,creat,truncate -o "$tmp/trace" \
                "${as_nobody[@]}" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null)
        rc=$?
        local why=""
        [ $rc = 77 ] || why+=" exit $rc, not 77;"
        grep -q "refusing to run: this is not the gpuswitch test VM ($GPUSWITCH_TESTVM_MARKER is not on the kernel command line)" "$tmp/err" \
                || why+=" no refusal naming the marker;"
        # strace's record: open*("PATH", ...); /proc/cmdline is what the guard reads
        local opened; opened=$(grep -oE '(open|openat|openat2|creat|truncate)\((AT_FDCWD, )?"/sys/[^"]*"' "$tmp/trace")
        [ -z "$opened" ] || why+=" opened under /sys: $(echo "$opened" | head -3 | tr '\n' ' ');"
        if [ -z "$why" ]; then
                echo "PASS $name"
        else
                echo "FAIL $name:$why"; sed 's/^/    stderr: /' "$tmp/err" | head -5; failed=$((failed + 1))
        fi
}

if [ -n "$floor" ]; then
        refuses switch-floor "$tmp/switch-floor" vfio ffff:ff:1f
fi
refuses pci-bind.sh bash "$src/bench/vm/pci-bind.sh" vfio-pci ffff:ff:1f
refuses guest-init.sh bash "$src/tests/vm/guest-init.sh"
refuses guest-reset.py /usr/bin/python3 "$src/tests/vm/guest-reset.py" restore
shopt -s nullglob
for s in "$src"/tests/vm/guest/*.sh "$src"/tests/vm/harness/*.sh "$src"/bench/vm/*.sh; do
        [ "$(basename "$s")" = pci-bind.sh ] && continue
        refuses "${s#"$src"/}" bash "$s"
done
echo "$((n - failed)) of $n refused outside the test VM"
[ $failed = 0 ]
