#!/bin/bash
# vmtest: systemd
# vmtest-seconds: 90
# Holders as on a real desktop (issue 13).  A stand-in compositor in a
# logind session on seat0 takes the GPU's DRM node through systemd-logind
# (TakeControl, TakeDevice): logind keeps a descriptor of its own and one in
# PID 1's fd store.  The refusal names the compositor and its session, not
# PID 1 or logind; --force ends the compositor only, logind and PID 1 let go
# and the switch completes, PID 1 and logind never signalled nor re-executed.
# Then a service keeps the card in its fd store (FileDescriptorStoreMax=):
# refused even with --force, the service named, PID 1 untouched; stopped,
# the switch goes through.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"

T=/run/gpuswitch-logind-test
mkdir -p -m 1777 $T
configure "" "AllowBootVga=yes"
card_node() { local c; for c in /sys/bus/pci/devices/$VGA/drm/card*; do echo "/dev/dri/${c##*/}"; return; done; }
pid1_holds_card() { # how many of PID 1's descriptors are the card
        local n=0 f
        for f in /proc/1/fd/*; do [ "$(stat -L -c %t:%T "$f" 2>/dev/null)" = "$CARD_DEVNUM" ] && n=$((n + 1)); done
        echo $n
}
wait_for() { # TRIES CMD...: up to TRIES tenths of a second
        local n=$1; shift
        for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done; return 1
}
CARD=$(card_node)
CARD_DEVNUM=$(stat -L -c %t:%T "$CARD")
echo "card $CARD ($CARD_DEVNUM hex), seats: $(loginctl list-seats --no-legend 2>&1 | tr '\n' ' ')"
systemctl start systemd-logind.service
LOGIND=$(systemctl show -P MainPID systemd-logind.service)
check logind-running test "${LOGIND:-0}" -gt 0

# The stand-in compositor: its own session's controller, it takes the card
# and keeps the descriptor logind hands it, as gnome-shell and kwin do.
cat > $T/compositor.py <<'PY'
import dbus, os, signal, sys
bus = dbus.SystemBus()
login1 = "org.freedesktop.login1"
manager = dbus.Interface(bus.get_object(login1, "/org/freedesktop/login1"), login1 + ".Manager")
path = manager.GetSessionByPID(dbus.UInt32(os.getpid()))
session = dbus.Interface(bus.get_object(login1, path), login1 + ".Session")
session.TakeControl(False)
st = os.stat(sys.argv[1])
fd, inactive = session.TakeDevice(dbus.UInt32(os.major(st.st_rdev)), dbus.UInt32(os.minor(st.st_rdev)))
fd = fd.take()
with open(sys.argv[2] + ".tmp", "w") as f:
        f.write("%s %s fd=%d inactive=%s\n" % (path, os.environ.get("XDG_SESSION_ID", "?"), fd, inactive))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
signal.signal(signal.SIGTERM, signal.SIG_DFL)
while True:
        signal.pause()
PY
chmod 644 $T/compositor.py
# A login on tty3 (seat0, a VT): pam_systemd makes it a session of seat0.
systemd-run --unit=standin-compositor --uid=alice -p PAMName=login -p TTYPath=/dev/tty3 \
        -p StandardInput=tty-force -p StandardOutput=journal -p StandardError=journal \
        -E XDG_SESSION_TYPE=wayland -E XDG_SESSION_CLASS=user \
        /usr/bin/python3 $T/compositor.py "$CARD" $T/ready
wait_for 300 test -s $T/ready
check compositor-took-card test -s $T/ready
cat $T/ready 2>/dev/null
COMP=$(systemctl show -P MainPID standin-compositor.service)
SESSION=$(loginctl list-sessions --no-legend | awk '$3 == "alice" {print $1; exit}')
echo "compositor $COMP, session $SESSION:"
cat /run/systemd/sessions/"$SESSION" 2>&1 | grep -E "^(UID|USER|SEAT|SCOPE|CONTROLLER|DEVICES|TTY|VTNR)="
DEVNUM=$((16#${CARD_DEVNUM%:*})):$((16#${CARD_DEVNUM#*:}))
[ -n "$SESSION" ] && grep -q "^CONTROLLER=:" /run/systemd/sessions/"$SESSION" \
        && grep -q "^DEVICES=.*$DEVNUM" /run/systemd/sessions/"$SESSION" \
        && result session-file-lists-device PASS || result session-file-lists-device FAIL
[ "$(pid1_holds_card)" = 1 ] && result pid1-keeps-logind-copy PASS || result pid1-keeps-logind-copy FAIL "$(pid1_holds_card)"
ls -l /proc/$LOGIND/fd 2>/dev/null | grep -q "$CARD" && result logind-holds-card PASS || result logind-holds-card FAIL
journalctl -u standin-compositor.service --no-pager | tail -5

run $CTL vfio
expect_rc refused-for-compositor 3
echo "$OUT" | grep -q "$COMP python3 (uid 1001) holds card[0-9]* for alice's session $SESSION, through systemd-logind" \
        && result names-compositor-and-session PASS || result names-compositor-and-session FAIL "$OUT"
echo "$OUT" | grep -qE "^ *1 systemd|^ *$LOGIND systemd-logind|never ends" \
        && result pid1-logind-not-named FAIL "$OUT" || result pid1-logind-not-named PASS
echo "$OUT" | grep -q -- "--force" && result suggests-force PASS || result suggests-force FAIL "$OUT"
all_original && result still-on-host PASS || result still-on-host FAIL "$(state)"

run $CTL holders
echo "$OUT" | grep -qE "^ *$COMP +alice +python3 +card" && ! echo "$OUT" | grep -qE "^ *1 +root|systemd-logind" \
        && result holders-lists-controller-only PASS || result holders-lists-controller-only FAIL "$OUT"

run $CTL vfio --force
expect_rc force-switches 0
echo "$OUT" | grep -qE "^ *1 systemd|systemd-logind" && result force-announces-controller-only FAIL "$OUT" \
        || result force-announces-controller-only PASS
all_on vfio-pci && result all-on-vfio PASS "$(state)" || result all-on-vfio FAIL "$(state)"
[ ! -d /proc/"$COMP" ] && result compositor-ended PASS || result compositor-ended FAIL
[ "$(systemctl show -P MainPID systemd-logind.service)" = "$LOGIND" ] && result logind-same-pid PASS \
        || result logind-same-pid FAIL "$(systemctl show -P MainPID systemd-logind.service) was $LOGIND"
[ "$(pid1_holds_card)" = 0 ] && result pid1-let-go PASS || result pid1-let-go FAIL
reexec=$(journalctl -b --no-pager | grep -c "Reexecuting")
started=$(journalctl -b --no-pager | grep -c "running in system mode")
[ "$reexec" = 0 ] && [ "$started" -le 1 ] && result pid1-not-reexecuted PASS "$started start line" \
        || result pid1-not-reexecuted FAIL "Reexecuting x$reexec, system mode x$started"
journalctl -u gpuswitchd.service --no-pager | grep -E "terminating|not signalling|killing" | tail -4
journalctl -u gpuswitchd.service --no-pager | grep -q "terminating $COMP (python3" && result terminated-compositor PASS \
        || result terminated-compositor FAIL
journalctl -u gpuswitchd.service --no-pager | grep -qE "terminating 1 |terminating $LOGIND |not signalling" \
        && result signalled-only-compositor FAIL || result signalled-only-compositor PASS

run $CTL host
expect_rc host-again 0
all_original && result back-to-host PASS "$(state)" || result back-to-host FAIL "$(state)"

# A service that keeps the card in its fd store and goes on running without
# it: only PID 1 holds the card.
CARD=$(card_node)
CARD_DEVNUM=$(stat -L -c %t:%T "$CARD")
cat > $T/keeper.py <<'PY'
import os, signal, socket
fd = os.open(os.environ["CARD"], os.O_RDWR | os.O_CLOEXEC)
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
        addr = "\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(addr)
socket.send_fds(s, [b"FDSTORE=1\nFDNAME=card\n"], [fd])
os.close(fd)
s.send(b"READY=1")
while True:
        signal.pause()
PY
cat > /run/systemd/system/card-keeper.service <<UNIT
[Service]
Type=notify
NotifyAccess=main
FileDescriptorStoreMax=1
Environment=CARD=$CARD
ExecStart=/usr/bin/python3 $T/keeper.py
UNIT
systemctl daemon-reload
systemctl start card-keeper.service || journalctl -u card-keeper.service --no-pager | tail -8
KEEPER=$(systemctl show -P MainPID card-keeper.service)
[ "$(systemctl show -P NFileDescriptorStore card-keeper.service)" = 1 ] && [ "$(pid1_holds_card)" = 1 ] \
        && ! ls -l /proc/"$KEEPER"/fd | grep -q "$CARD" && result fdstore-keeps-card PASS \
        || result fdstore-keeps-card FAIL "NFileDescriptorStore=$(systemctl show -P NFileDescriptorStore card-keeper.service) pid1=$(pid1_holds_card)"

run $CTL vfio --force
expect_rc fdstore-refused 3
echo "$OUT" | grep -q "card-keeper.service" && result fdstore-names-service PASS || result fdstore-names-service FAIL "$OUT"
echo "$OUT" | grep -q "systemctl stop" && result fdstore-says-what-to-do PASS || result fdstore-says-what-to-do FAIL "$OUT"
all_original && result fdstore-still-on-host PASS || result fdstore-still-on-host FAIL "$(state)"
[ "$(systemctl show -P MainPID card-keeper.service)" = "$KEEPER" ] && [ "$(pid1_holds_card)" = 1 ] \
        && result fdstore-service-untouched PASS || result fdstore-service-untouched FAIL
journalctl -b --no-pager | grep -q "Reexecuting" && result fdstore-pid1-not-reexecuted FAIL \
        || result fdstore-pid1-not-reexecuted PASS

systemctl stop card-keeper.service
run $CTL vfio
expect_rc after-service-stopped 0
all_on vfio-pci && result fdstore-released-switches PASS "$(state)" || result fdstore-released-switches FAIL "$(state)"
run $CTL host
all_original && result fdstore-back-to-host PASS || result fdstore-back-to-host FAIL "$(state)"
rm -f /run/systemd/system/card-keeper.service
systemctl daemon-reload
finish
