#!/bin/bash
# gpuswitchctl -H and -M without another machine: ssh is a fake on PATH that
# records its arguments and runs the real systemd-stdio-bridge against a
# private dbus-daemon (no gpuswitchd on it), as sshd would run it on HOST.
# Shows the command run over ssh, that the client talks D-Bus through the
# bridge (the error is the bus's answer from the other side, naming HOST, in
# --json too), that a host ssh cannot reach is named, and what is refused
# before anything is started: -H with -M, a bad HOST, doctor.  Exit 77
# (skipped) without dbus-daemon or systemd-stdio-bridge.
#   test-client-transport.sh GPUSWITCHCTL
set -uo pipefail

ctl=$(realpath "${1:?usage: test-client-transport.sh GPUSWITCHCTL}")
for p in dbus-daemon systemd-stdio-bridge; do
        command -v $p >/dev/null || { echo "SKIP: $p is not installed"; exit 77; }
done

tmp=$(mktemp -d)
trap 'kill "$bus_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir "$tmp/bin"
cat > "$tmp/bin/ssh" <<'FAKE'
#!/bin/bash
echo "$*" >> "$FAKE_DIR/ssh-calls"
for a; do dest=$b; b=$a; done   # the one before the last: [USER@]HOST
case "$dest" in
*unreachable*) echo "ssh: connect to host $dest port 22: Connection refused" >&2; exit 255 ;;
esac
[ "${*: -1}" = systemd-stdio-bridge ] || exit 127
exec systemd-stdio-bridge --bus-path="unix:path=$FAKE_DIR/bus"
FAKE
chmod +x "$tmp/bin/ssh"
dbus-daemon --session --nofork --nopidfile --address="unix:path=$tmp/bus" >/dev/null 2>&1 & bus_pid=$!
for _ in $(seq 50); do [ -S "$tmp/bus" ] && break; sleep 0.1; done

pass=0 failed=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
# OUT (stdout), ERR, RC of gpuswitchctl ARGS..., and the ssh calls it made in CALLS
ctl() {
        rm -f "$tmp/ssh-calls"
        OUT=$(FAKE_DIR=$tmp PATH=$tmp/bin:$PATH timeout 20 "$ctl" "$@" 2>"$tmp/err")
        RC=$?
        ERR=$(cat "$tmp/err")
        CALLS=$(cat "$tmp/ssh-calls" 2>/dev/null)
}
expect() { # NAME RC STDERR-REGEX [SSH-CALLS]
        if [ "$RC" != "$2" ]; then bad "$1" "rc=$RC want $2: $ERR"
        elif ! grep -qE -- "$3" <<<"$ERR"; then bad "$1" "stderr '$ERR' does not match '$3'"
        elif [ "$CALLS" != "${4:-}" ]; then bad "$1" "ssh ran '$CALLS', want '${4:-}'"
        else ok "$1"; fi
}

# through ssh and the bridge to a bus without gpuswitchd: the bus's own answer
ctl -H alice@gpu-box status
expect remote-through-bridge 1 "^gpuswitchctl: cannot reach gpuswitchd on alice@gpu-box: .*org\.gpuswitch1" \
        "-xT -- alice@gpu-box systemd-stdio-bridge"
ctl --host=alice@gpu-box:2222 vfio 0a:00
expect remote-port 1 "^gpuswitchctl: cannot reach gpuswitchd on alice@gpu-box:2222: " \
        "-xT -p 2222 -- alice@gpu-box systemd-stdio-bridge"
ctl -H '[::1]:22' holders
expect remote-ipv6 1 "cannot reach gpuswitchd on \[::1\]:22: " "-xT -p 22 -- ::1 systemd-stdio-bridge"
ctl --json -H gpu-box status
expect remote-json 1 "cannot reach gpuswitchd on gpu-box: " "-xT -- gpu-box systemd-stdio-bridge"
python3 -c 'import json, sys; d = json.loads(sys.argv[1]); sys.exit(0 if d["error"] == "org.freedesktop.DBus.Error.ServiceUnknown" and d["message"] else 1)' "$OUT" \
        && ok remote-json-error || bad remote-json-error "$OUT"

# ssh cannot connect: its words, then ours naming the host
ctl -H bob@unreachable.example status
expect unreachable-named 1 "^gpuswitchctl: cannot reach gpuswitchd on bob@unreachable.example: .*ssh or systemd-stdio-bridge there ended" \
        "-xT -- bob@unreachable.example systemd-stdio-bridge"
grep -q "^ssh: connect to host" <<<"$ERR" && ok unreachable-ssh-says-why || bad unreachable-ssh-says-why "$ERR"

# refused before ssh runs
ctl -H gpu-box -M vm1 status
expect host-and-machine 2 "^gpuswitchctl: --host and --machine exclude each other"
ctl --machine=vm1 --host=gpu-box status
expect machine-and-host 2 "^gpuswitchctl: --host and --machine exclude each other"
ctl -H gpu-box doctor
expect doctor-host 2 "^gpuswitchctl: doctor checks this machine and cannot run with --host: run 'gpuswitchctl doctor' on gpu-box"
ctl -M vm1 doctor
expect doctor-machine 2 "^gpuswitchctl: doctor checks this machine and cannot run with --machine"
for h in "" "host:" "host:70000" "a@b@c" "-oProxyCommand=sh" "host/vm1" "two words"; do
        ctl -H "$h" status
        expect "bad-host-'$h'" 2 "^gpuswitchctl: --host=.*: expected \[USER@\]HOST\[:PORT\]"
done
ctl -M ../x status
expect bad-machine 2 "^gpuswitchctl: --machine=../x: not a container name"
ctl -H
expect host-needs-argument 2 "requires an argument"

ctl --help
grep -q -- "-H --host=\[USER@\]HOST\[:PORT\]" <<<"$OUT" && grep -q -- "-M --machine=CONTAINER" <<<"$OUT" \
        && ok help-lists-options || bad help-lists-options "$OUT"

echo "$pass passed, $failed failed"
[ "$failed" = 0 ]
