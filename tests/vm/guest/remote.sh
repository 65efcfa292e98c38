#!/bin/bash
# vmtest: systemd
# vmtest-seconds: 100
# gpuswitchctl -H (issue 14): root runs `gpuswitchctl -H alice@localhost`
# through a real sshd in the guest (a throwaway host key and config, keys
# only, the options in root's ~/.ssh/config) and systemd-stdio-bridge on the
# other side, with polkitd and dbus as on a host.  polkit judges alice, not
# the local root: without a rule the switch is refused (exit 4, and why no
# password can be asked), with the example group rule and alice in the group
# it moves the GPU, while bob, not in the group, is still refused.  status,
# --json status, the switches and monitor print what the same call by alice
# on the machine itself prints.  A host ssh cannot reach is named.  -M is
# not tried here: systemd-nspawn (systemd-container) is not installed; its
# parsing is covered by the unit tests.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"

D=/run/remote-test
NOT_AUTH="^gpuswitchctl: switching the GPU to vfio: not authorized: "
configure "" "AllowBootVga=yes"

# the last run's stdout in OUT, stderr in ERR
runo() { OUT=$("$@" 2>/tmp/err); RC=$?; ERR=$(cat /tmp/err); echo "\$ $* -> rc=$RC"; \
        [ -n "$OUT" ] && echo "$OUT" | sed 's/^/    /'; [ -n "$ERR" ] && echo "$ERR" | sed 's/^/  ! /'; return 0; }
same() { # NAME A B: two outputs, equal
        if [ "$2" = "$3" ] && [ -n "$2" ]; then result "$1" PASS
        else result "$1" FAIL "$(diff <(echo "$2") <(echo "$3") | head -20)"; fi
}
has_err() { # NAME REGEX: a line of the last stderr matches
        if echo "$ERR" | grep -qE -- "$2"; then result "$1" PASS; else result "$1" FAIL "no line matching '$2'"; fi
}

# ---- sshd on 127.0.0.1:22: keys only, for alice and bob ----------------------------
ip link set lo up
mkdir -p -m 755 $D $D/keys /run/sshd
ssh-keygen -q -t ed25519 -N '' -f $D/host_key
ssh-keygen -q -t ed25519 -N '' -f $D/user_key -C remote-test
for u in alice bob; do install -m 644 $D/user_key.pub $D/keys/$u; done
cat > $D/sshd_config <<CONF
ListenAddress 127.0.0.1
Port 22
HostKey $D/host_key
PidFile $D/sshd.pid
AuthorizedKeysFile $D/keys/%u
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers alice bob
UsePAM no
CONF
# UsePAM no: sshd refuses an account whose password is locked ("!", as
# useradd leaves it); "*" is no password at all
usermod -p '*' alice; usermod -p '*' bob
# homes as on a host (sshd would say it cannot chdir there, on stderr)
for u in alice bob; do install -d -m 700 -o $u -g $u /home/$u; done
/usr/sbin/sshd -f $D/sshd_config -E $D/sshd.log
for _ in $(seq 50); do ss -ltn | grep -q '127.0.0.1:22 ' && break; sleep 0.1; done
mkdir -p -m 700 /root/.ssh
cat > /root/.ssh/config <<CONF
Host localhost
        IdentityFile $D/user_key
        IdentitiesOnly yes
        StrictHostKeyChecking accept-new
        UserKnownHostsFile $D/known_hosts
        BatchMode yes
CONF
runo ssh alice@localhost id -un
[ "$OUT" = alice ] && result sshd-as-alice PASS || result sshd-as-alice FAIL "$(tail -5 $D/sshd.log)"

# ---- reading: the same as alice's own call on the machine --------------------------
runo as_user alice $CTL status; local_status=$OUT
runo $CTL -H alice@localhost status
expect_rc remote-status 0
same remote-status-as-local "$OUT" "$local_status"
runo as_user alice $CTL --json status; local_json=$OUT
runo $CTL -H alice@localhost --json status
expect_rc remote-json-status 0
same remote-json-status-as-local "$OUT" "$local_json"
runo as_user alice $CTL plan vfio; local_plan=$OUT
runo $CTL --host=alice@localhost plan vfio
same remote-plan-as-local "$OUT" "$local_plan"

# ---- no rule: polkit refuses alice (root on this side would be let through) --------
runo $CTL -H alice@localhost vfio
expect_rc no-rule-denied-exit-4 4
has_err no-rule-not-authorized "${NOT_AUTH}authentication is required for org.gpuswitch1.switch"
has_err no-rule-no-password-remotely "^gpuswitchctl: a password cannot be asked over --host: authorize the user with a polkit rule on alice@localhost"
all_original && result no-rule-nothing-moved PASS || result no-rule-nothing-moved FAIL "$(state)"
# --no-ask-password changes nothing over --host: nothing is asked anyway
runo $CTL --no-ask-password -H alice@localhost vfio
expect_rc no-rule-no-ask-password-exit-4 4
runo $CTL -H alice@localhost --json vfio
expect_rc no-rule-json-exit-4 4
echo "$OUT" | python3 -c 'import json, sys; sys.exit(0 if json.load(sys.stdin)["error"] == "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired" else 1)' \
        && result no-rule-json-error PASS || result no-rule-json-error FAIL "$OUT"

# ---- the example rule, alice in the group: allowed; bob still refused --------------
install -m644 /usr/share/doc/gpuswitch/examples/50-gpuswitch-group.rules /etc/polkit-1/rules.d/
usermod -aG gpuswitch alice
sleep 2   # polkitd reloads rules.d on its own (inotify)
runo $CTL -H bob@localhost vfio
expect_rc rule-bob-denied-exit-4 4
has_err rule-bob-not-authorized "$NOT_AUTH"
all_original && result rule-bob-nothing-moved PASS || result rule-bob-nothing-moved FAIL "$(state)"

# holders over --host: the uids are the other machine's, shown as numbers
# (this machine's passwd could name somebody else); "another user" is
# judged against the uid that machine knows alice by
( as_user bob bash -c "exec sleep 1000 < /dev/gpuswitch-test0" & )
for _ in $(seq 50); do bob_pid=$(pgrep -u bob -x sleep) && break; sleep 0.1; done
runo $CTL -H alice@localhost holders
echo "$OUT" | grep -qE "^$bob_pid +$(id -u bob) +sleep +" && ! echo "$OUT" | grep -qw bob \
        && result remote-holders-uid-as-number PASS || result remote-holders-uid-as-number FAIL "$OUT"
runo $CTL -H alice@localhost --json holders
echo "$OUT" | python3 -c 'import json, sys; h = json.load(sys.stdin)["holders"]; sys.exit(0 if [x["user"] for x in h] == [sys.argv[1]] else 1)' "$(id -u bob)" \
        && result remote-holders-json-uid PASS || result remote-holders-json-uid FAIL "$OUT"
kill "$bob_pid"

# monitor on both sides while the GPU moves: the same events
# setpriv itself in the background (as_user is a function: $! would be a
# subshell that ignores SIGINT), so that $! becomes gpuswitchctl
setpriv --reuid=alice --regid=alice --init-groups -- env HOME=/tmp USER=alice $CTL monitor > /tmp/mon-local.out 2>&1 &
mon_local=$!
$CTL -H alice@localhost monitor > /tmp/mon-remote.out 2>&1 & mon_remote=$!
for _ in $(seq 100); do grep -q ' state ' /tmp/mon-local.out && grep -q ' state ' /tmp/mon-remote.out && break; sleep 0.1; done

runo $CTL -H alice@localhost vfio; remote_vfio=$OUT
expect_rc rule-alice-allowed 0
all_on vfio-pci && result rule-alice-gpu-moved PASS || result rule-alice-gpu-moved FAIL "$(state)"
runo as_user alice $CTL host; local_host=$OUT
expect_rc local-host 0
runo as_user alice $CTL vfio; local_vfio=$OUT
same remote-vfio-as-local "$remote_vfio" "$local_vfio"
runo $CTL -H alice@localhost host; remote_host=$OUT
expect_rc rule-alice-host 0
all_original && result rule-alice-gpu-back PASS || result rule-alice-gpu-back FAIL "$(state)"
same remote-host-as-local "$remote_host" "$local_host"
sleep 1
kill -INT $mon_local $mon_remote
for _ in $(seq 100); do kill -0 $mon_local 2>/dev/null || kill -0 $mon_remote 2>/dev/null || break; sleep 0.1; done
if kill -0 $mon_local 2>/dev/null || kill -0 $mon_remote 2>/dev/null; then
        result monitors-end-on-interrupt FAIL "$(ps -o pid,stat,wchan:24,args -p $mon_local,$mon_remote)"
        kill -KILL $mon_local $mon_remote
else
        result monitors-end-on-interrupt PASS
fi
wait $mon_local $mon_remote
events() { sed -E 's/^[0-9:.]+  //' "$1"; }   # the clock column aside
echo "monitor over --host:"; sed 's/^/    /' /tmp/mon-remote.out
grep -q " mode .*switching -> vfio" /tmp/mon-remote.out && grep -q " mode .*switching -> host" /tmp/mon-remote.out \
        && result remote-monitor-follows-switches PASS || result remote-monitor-follows-switches FAIL
same remote-monitor-as-local "$(events /tmp/mon-remote.out)" "$(events /tmp/mon-local.out)"

# ---- what cannot work over --host -------------------------------------------------
runo $CTL -H alice@localhost doctor
expect_rc doctor-refused 2
has_err doctor-refused-names-option "^gpuswitchctl: doctor checks this machine and cannot run with --host"
runo $CTL -H alice@localhost:2 status
expect_rc unreachable-exit-1 1
has_err unreachable-named "^gpuswitchctl: cannot reach gpuswitchd on alice@localhost:2: "

rm -f /etc/polkit-1/rules.d/50-gpuswitch-group.rules
gpasswd -q -d alice gpuswitch
kill "$(cat $D/sshd.pid)"
usermod -p '!' alice; usermod -p '!' bob
rm -rf /home/alice /home/bob
finish
