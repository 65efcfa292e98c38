#!/bin/bash
# The libvirt qemu hook (hooks/libvirt/) fed sample domain XMLs, run the way
# libvirtd runs it (env -i, XML on stdin), with GPUSWITCHCTL pointing at a
# fake client that logs its arguments and answers per slot, and a machine of
# its own (HOOK_SYSFS, HOOK_CONFIG: what hook-under-test reads where the
# installed hook reads /sys and gpuswitch.conf).  No root, no daemon.
#   test-libvirt-hook.sh HOOK-UNDER-TEST
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
HOOK=${1:?usage: test-libvirt-hook.sh HOOK-UNDER-TEST}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

# The fake gpuswitchctl: every call logged as a line of its arguments; status
# exits 0 for the slots in $tmp/managed and 5 for the others; a line
# "VERB SLOT RC MESSAGE" in $tmp/fails makes that call print MESSAGE (printf
# %b) on stderr and exit RC.  It prints on stdout, as the real one does,
# which the hook must not pass on.
mkdir "$tmp/bin"
cat > "$tmp/bin/gpuswitchctl" <<EOF
#!/bin/bash
echo "\$*" >> "$tmp/log"
args=()
for a in "\$@"; do case \$a in -*) ;; *) args+=("\$a") ;; esac; done
verb=\${args[0]} slot=\${args[1]}
while read -r v s rc msg; do
        if [ "\$v" = "\$verb" ] && [ "\$s" = "\$slot" ]; then
                printf '%b\n' "\$msg" >&2
                exit "\$rc"
        fi
done < "$tmp/fails"
if [ "\$verb" = status ]; then
        grep -qxF "\$slot" "$tmp/managed" || { echo "gpuswitchctl: no managed GPU at \$slot" >&2; exit 5; }
        echo "\$slot: host"
fi
echo "\$slot: \$verb (4 of 4 functions)"
EOF
chmod +x "$tmp/bin/gpuswitchctl"

world() { # MANAGED-SLOT...: what the fake daemon manages; no failures
        printf '%s\n' "$@" > "$tmp/managed"
        : > "$tmp/fails"
}
fail_on() { # VERB SLOT RC MESSAGE
        echo "$*" >> "$tmp/fails"
}

# The machine, for when the daemon cannot be asked: an NVIDIA GPU at
# 0000:0a:00 and 0000:0b:00, a GPU of another vendor at 0000:0c:00, a NIC at
# 0000:03:00; no config file (Gpus=auto) unless a test writes one.
for f in 0000:0a:00.0:0x10de:0x030000 0000:0a:00.1:0x10de:0x040300 0000:0b:00.0:0x10de:0x030000 \
         0000:0c:00.0:0x1002:0x030000 0000:03:00.0:0x8086:0x020000; do
        IFS=: read -r d b s vendor class <<< "$f"
        mkdir -p "$tmp/sys/bus/pci/devices/$d:$b:$s"
        echo "$vendor" > "$tmp/sys/bus/pci/devices/$d:$b:$s/vendor"
        echo "$class" > "$tmp/sys/bus/pci/devices/$d:$b:$s/class"
done
config() { if [ $# -gt 0 ]; then printf '%b' "$1" > "$tmp/gpuswitch.conf"; else rm -f "$tmp/gpuswitch.conf"; fi; }

# run_hook XML OP SUBOP [EXTRA]: as libvirtd does; RC, OUT, ERR and CALLS
# (the fake's log, one call a line) for the checks.
run_hook() {
        local xml=$1; shift
        : > "$tmp/log"
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin GPUSWITCHCTL="$tmp/bin/gpuswitchctl" \
                HOOK_SYSFS="$tmp/sys" HOOK_CONFIG="$tmp/gpuswitch.conf" \
                "$HOOK" win11 "$1" "$2" "${3:--}" < "$here/$xml" > "$tmp/out" 2> "$tmp/err"
        RC=$?
        OUT=$(cat "$tmp/out") ERR=$(cat "$tmp/err") CALLS=$(cat "$tmp/log")
}

result() { # NAME PASS|FAIL [DETAIL]
        echo "$2: $1${3:+ ($3)}"
        if [ "$2" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}
# expect NAME RC CALL...: the last run's exit code and exact calls, nothing on stdout
expect() {
        local name=$1 rc=$2 want
        shift 2
        want=$(printf '%s\n' "$@")
        if [ "$RC" != "$rc" ]; then
                result "$name" FAIL "rc=$RC want $rc; stderr: $ERR"
        elif [ "$CALLS" != "$want" ]; then
                result "$name" FAIL "calls:
$CALLS
want:
$want"
        elif [ -n "$OUT" ]; then
                result "$name" FAIL "stdout not empty: $OUT"
        else
                result "$name" PASS
        fi
}
expect_err() { # NAME LINE: stderr is exactly this one line
        if [ "$ERR" = "$2" ]; then result "$1" PASS; else result "$1" FAIL "stderr:
$ERR
want:
$2"; fi
}

A=0000:0a:00 B=0000:0b:00 C=0000:0c:00
VFIO="-q --no-ask-password vfio" HOST="-q --no-ask-password host" STATUS="-q status"

# ---- one function of one GPU ------------------------------------------------
world $A
run_hook single-function.xml prepare begin
expect prepare-single-function 0 "$STATUS $A" "$VFIO $A"
expect_err prepare-quiet-on-success ""
run_hook single-function.xml release end
expect release-single-function 0 "$STATUS $A" "$HOST $A"
# libvirt >= 10.5 passes the shutoff reason as EXTRA
run_hook single-function.xml release end shutdown
expect release-with-shutoff-reason 0 "$STATUS $A" "$HOST $A"

# ---- the other operations: nothing done, stdin never read --------------------
# stdin is a FIFO with a writer that never writes: a read would block until
# the timeout (rc 124).
mkfifo "$tmp/fifo"
exec 3<> "$tmp/fifo"
for op in "start begin" "started begin" "stopped end" "reconnect begin" "attach begin" \
          "migrate begin" "restore begin" "prepare end" "release begin"; do
        : > "$tmp/log"
        # shellcheck disable=SC2086 # op is two words on purpose
        timeout 10 env -i PATH=/usr/bin:/bin GPUSWITCHCTL="$tmp/bin/gpuswitchctl" \
                "$HOOK" win11 $op - < "$tmp/fifo" > "$tmp/out" 2> "$tmp/err"
        RC=$? OUT=$(cat "$tmp/out") ERR=$(cat "$tmp/err") CALLS=$(cat "$tmp/log")
        expect "${op// /-}-does-nothing" 0
done
exec 3>&-

# ---- four functions named as four hostdevs: one switch -----------------------
run_hook four-functions.xml prepare begin
expect four-functions-one-switch 0 "$STATUS $A" "$VFIO $A"
run_hook four-functions.xml release end
expect four-functions-one-switch-back 0 "$STATUS $A" "$HOST $A"

# ---- double quotes, attributes in another order and over several lines -------
world 0001:0b:00
run_hook double-quotes-split.xml prepare begin
expect double-quotes-split-lines 0 "$STATUS 0001:0b:00" "$VFIO 0001:0b:00"

# ---- guest-side addresses, a USB hostdev, a disk, NICs: ignored ---------------
# even when the daemon would manage the slots they name
world 0000:04:00 0000:01:00 0000:02:00 0000:03:10 0000:00:1b
run_hook ignored-devices.xml prepare begin
expect other-addresses-ignored 0
run_hook ignored-devices.xml release end
expect other-addresses-ignored-release 0

# ---- no hostdev at all --------------------------------------------------------
world $A
run_hook no-hostdev.xml prepare begin
expect no-hostdev-prepare 0
run_hook no-hostdev.xml release end
expect no-hostdev-release 0

# ---- a GPU gpuswitchd does not manage: left to libvirt -------------------------
world
run_hook single-function.xml prepare begin
expect unmanaged-gpu-left-alone 0 "$STATUS $A"
expect_err unmanaged-gpu-quiet ""

# ---- two GPUs and a device the daemon does not manage ------------------------
world $A $B
run_hook two-gpus.xml prepare begin
expect two-gpus-prepare 0 "$STATUS $A" "$STATUS $C" "$STATUS $B" "$VFIO $A" "$VFIO $B"
run_hook two-gpus.xml release end
expect two-gpus-release 0 "$STATUS $A" "$STATUS $C" "$STATUS $B" "$HOST $A" "$HOST $B"

# ---- failures ---------------------------------------------------------------
# the second GPU in use: refused with the client's message in one line; the
# first is put back, the VM does not start
fail_on vfio $B 3 "gpuswitchctl: $B is in use:\n  4242 sleep (uid 1001) holds gpuswitch-test0"
run_hook two-gpus.xml prepare begin
expect prepare-fails-first-put-back 3 "$STATUS $A" "$STATUS $C" "$STATUS $B" "$VFIO $A" "$VFIO $B" "$HOST $A"
expect_err prepare-fails-message \
        "gpuswitch hook: domain win11: cannot switch GPU $B to vfio-pci: $B is in use: 4242 sleep (uid 1001) holds gpuswitch-test0"

world $A $B
fail_on vfio $A 1 "gpuswitchctl: SwitchFailed: $A.0: vfio-pci did not bind; every function put back"
run_hook two-gpus.xml prepare begin
expect prepare-fails-stops-at-first 1 "$STATUS $A" "$STATUS $C" "$STATUS $B" "$VFIO $A"
expect_err prepare-fails-first-message \
        "gpuswitch hook: domain win11: cannot switch GPU $A to vfio-pci: SwitchFailed: $A.0: vfio-pci did not bind; every function put back"

# the daemon unreachable: a slot it may manage (Gpus=auto: an NVIDIA display
# controller) stops the domain with the client's message, nothing switched
world $A $B
fail_on status $A 1 "gpuswitchctl: cannot reach gpuswitchd on the system bus: Connection refused"
run_hook two-gpus.xml prepare begin
expect status-fails-nothing-switched 1 "$STATUS $A"
expect_err status-fails-message \
        "gpuswitch hook: domain win11: cannot ask gpuswitchd about GPU $A: cannot reach gpuswitchd on the system bus: Connection refused"

# ... and a slot it would not manage (another vendor's GPU under Gpus=auto,
# a NIC) is left to libvirt: the domain starts
world $A $B
fail_on status $C 1 "gpuswitchctl: cannot reach gpuswitchd on the system bus: Connection refused"
run_hook two-gpus.xml prepare begin
expect status-fails-unmanaged-slot-starts 0 "$STATUS $A" "$STATUS $C" "$STATUS $B" "$VFIO $A" "$VFIO $B"
world
fail_on status 0000:03:00 1 "gpuswitchctl: cannot reach gpuswitchd on the system bus: Connection refused"
run_hook nic.xml prepare begin
expect nic-starts-without-daemon 0 "$STATUS 0000:03:00"
expect_err nic-starts-quietly ""

# Gpus= listing the NIC's slot: then it counts
config "[Daemon]\nGpus=0000:03:00\n"
run_hook nic.xml prepare begin
expect listed-nic-stops-without-daemon 1 "$STATUS 0000:03:00"
config

# a config that does not parse (the daemon answers BadConfig): GPUs stop the
# domain with the daemon's message, the NIC does not
config "[Daemon]\nGpus=0000:03:00\nnot a key\n"
world
fail_on status $C 1 "gpuswitchctl: BadConfig: /etc/gpuswitch/gpuswitch.conf: line 3: not a key"
fail_on status 0000:03:00 1 "gpuswitchctl: BadConfig: /etc/gpuswitch/gpuswitch.conf: line 3: not a key"
run_hook nic.xml prepare begin
expect bad-config-nic-starts 0 "$STATUS 0000:03:00"
run_hook two-gpus.xml prepare begin
expect bad-config-gpu-stops 1 "$STATUS $A" "$STATUS $C"
expect_err bad-config-gpu-message \
        "gpuswitch hook: domain win11: cannot ask gpuswitchd about GPU $C: BadConfig: /etc/gpuswitch/gpuswitch.conf: line 3: not a key"
config

# XML that only looks like hostdevs (CDATA, a comment, another namespace's
# metadata): only the real hostdev's slot is asked about and moved
world $A $B $C
run_hook not-hostdevs.xml prepare begin
expect only-real-hostdev 0 "$STATUS $A" "$VFIO $A"

# release: every GPU tried, the failure logged and returned
world $A $B
fail_on host $A 6 "gpuswitchctl: switching $A to host: Busy: a switch of $A is under way"
run_hook two-gpus.xml release end
expect release-fails-goes-on 6 "$STATUS $A" "$STATUS $C" "$STATUS $B" "$HOST $A" "$HOST $B"
expect_err release-fails-message \
        "gpuswitch hook: domain win11: cannot switch GPU $A back to its host drivers: switching $A to host: Busy: a switch of $A is under way"

# a client that fails without a word
world $A
fail_on vfio $A 1 ""
run_hook single-function.xml prepare begin
expect silent-failure 1 "$STATUS $A" "$VFIO $A"
expect_err silent-failure-message \
        "gpuswitch hook: domain win11: cannot switch GPU $A to vfio-pci: $tmp/bin/gpuswitchctl exited with status 1"

# an address that is not one: named, nothing asked
world $A
run_hook bad-address.xml prepare begin
expect bad-address-refused 1
expect_err bad-address-message \
        "gpuswitch hook: domain win11: cannot read the domain XML: a PCI hostdev's source address (line 6) is not one: domain='0x0000' bus='0xzz' slot='0x00'"

# ---- without GPUSWITCHCTL: gpuswitchctl from PATH ---------------------------
world $A
: > "$tmp/log"
env -i PATH="$tmp/bin:/usr/bin:/bin" "$HOOK" win11 prepare begin - < "$here/single-function.xml" > "$tmp/out" 2> "$tmp/err"
RC=$? OUT=$(cat "$tmp/out") ERR=$(cat "$tmp/err") CALLS=$(cat "$tmp/log")
expect client-from-path 0 "$STATUS $A" "$VFIO $A"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
