#!/bin/bash
# vmtest: systemd
# vmtest-seconds: 60
# Every switch through one engine (issue 12): DefaultMode=vfio at boot
# stops the service holding the GPU (a stand-in nvidia-persistenced), writes
# the switch record and moves the GPU; a daemon SIGKILLed in the middle of
# that boot switch is followed by one that puts the GPU back and starts the
# service again; a stop asked for during the boot switch lets it finish.
# A config with an unknown key: every verb fails within 5 s naming file,
# section and key, and works again once the key is gone.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"
PIN=/sys/module/gpuswitch_test/parameters/pin
RECORD=/var/lib/gpuswitch/switch-$SLOT.conf
MARKER=/run/gpuswitch/default-mode-applied
SERVICE=nvidia-persistenced.service
CONF=/etc/gpuswitch/gpuswitch.conf

persistenced_standin $SERVICE
active() { systemctl is-active "$1" 2>/dev/null; }
wait_for() { # TRIES CMD...: up to TRIES tenths of a second
        local n=$1; shift
        for i in $(seq "$n"); do "$@" && return 0; sleep 0.1; done; return 1
}
daemon_gone() { ! pgrep -x gpuswitchd >/dev/null; }
daemon_stop() { systemctl stop gpuswitchd.service; wait_for 100 daemon_gone; }
# as at boot: the marker gone with /run, the unit started by systemd (not
# waited for: Type=dbus waits for the bus name, taken after the switch)
boot_start() { rm -f $MARKER; systemctl start --no-block gpuswitchd.service; }
holder_pid() { systemctl show -P MainPID $SERVICE; }

configure "" "AllowBootVga=yes\nDefaultMode=vfio\nStopServices=$SERVICE"
daemon_stop

# ---- DefaultMode=vfio at boot, the service holding the GPU ---------------------------
# The pin holds the first unbind, so the switch can be looked at halfway.
echo 1 > $PIN
boot_start
wait_for 300 test -f $RECORD && result boot-record-written PASS || result boot-record-written FAIL "$(state)"
[ "$(active $SERVICE)" = inactive ] && result boot-service-stopped PASS || result boot-service-stopped FAIL "$(active $SERVICE)"
grep -q "^Target=vfio" $RECORD && result boot-record-target PASS || result boot-record-target FAIL "$(cat $RECORD)"
echo 0 > $PIN
wait_for 300 bus_has_owner org.gpuswitch1 && result boot-daemon-up PASS || result boot-daemon-up FAIL
all_on vfio-pci && result boot-all-on-vfio PASS "$(state)" || result boot-all-on-vfio FAIL "$(state)"
[ ! -e $RECORD ] && result boot-record-cleared PASS || result boot-record-cleared FAIL
[ "$(prop Mode)" = 's "vfio"' ] && result boot-mode-vfio PASS || result boot-mode-vfio FAIL "$(prop Mode)"
journalctl -u gpuswitchd.service --no-pager -o cat | grep -q "DefaultMode=vfio applied" \
        && result boot-logged PASS || result boot-logged FAIL
run $CTL host
expect_rc back-to-host 0
all_original && [ "$(active $SERVICE)" = active ] && result host-service-started PASS \
        || result host-service-started FAIL "$(state) $(active $SERVICE)"

# ---- SIGKILL in the middle of the boot switch --------------------------------------
daemon_stop
echo 1 > $PIN
boot_start
wait_for 300 test -f $RECORD && result kill-record-written PASS || result kill-record-written FAIL
first=$(pgrep -x gpuswitchd)
systemctl kill -s KILL gpuswitchd.service
# a process in a driver's remove() dies when the write returns
echo 0 > $PIN
wait_for 100 daemon_gone && result kill-daemon-gone PASS || result kill-daemon-gone FAIL
echo "after the kill: $(state), $SERVICE $(active $SERVICE)"
! all_original && [ "$(active $SERVICE)" = inactive ] && result kill-left-halfway PASS "$(state)" \
        || result kill-left-halfway FAIL "$(state) $(active $SERVICE)"
# the next start (same boot: the marker stays) puts it back and starts the service
systemctl reset-failed gpuswitchd.service 2>/dev/null
run $CTL status
expect_rc kill-restart-answers 0
all_original && result kill-restart-puts-back PASS "$(state)" || result kill-restart-puts-back FAIL "$(state)"
wait_for 100 test "$(active $SERVICE)" = active && result kill-restart-service-started PASS \
        || result kill-restart-service-started FAIL "$(active $SERVICE)"
[ "$(holder_pid)" != 0 ] && result kill-service-holds-again PASS || result kill-service-holds-again FAIL
[ ! -e $RECORD ] && result kill-record-removed PASS || result kill-record-removed FAIL
[ "$(pgrep -x gpuswitchd)" != "$first" ] && journalctl -u gpuswitchd.service --no-pager -o cat \
        | grep -q "a switch to vfio was interrupted" && result kill-restart-logged PASS || result kill-restart-logged FAIL
[ "$(prop Mode)" = 's "host"' ] && result kill-not-applied-again PASS || result kill-not-applied-again FAIL "$(prop Mode)"

# ---- a stop during the boot switch -------------------------------------------------
daemon_stop
echo 1 > $PIN
boot_start
wait_for 300 test -f $RECORD
systemctl stop --no-block gpuswitchd.service
sleep 1
pgrep -x gpuswitchd >/dev/null && result stop-waits-for-switch PASS || result stop-waits-for-switch FAIL
echo 0 > $PIN
wait_for 200 daemon_gone && result stop-then-exits PASS || result stop-then-exits FAIL
all_on vfio-pci && [ ! -e $RECORD ] && result stop-switch-finished PASS "$(state)" \
        || result stop-switch-finished FAIL "$(state)"
systemctl reset-failed gpuswitchd.service 2>/dev/null
run $CTL host
expect_rc stop-then-host 0
all_original && [ "$(active $SERVICE)" = active ] && result stop-back-to-host PASS || result stop-back-to-host FAIL "$(state)"

# ---- recovery with a broken config -------------------------------------------------
# A switch over the bus killed halfway, then a config mistake: the next
# daemon still puts the GPU back and starts the service, then answers
# BadConfig.
configure "" "AllowBootVga=yes\nStopServices=$SERVICE"
run $CTL status
echo 1 > $PIN
$CTL vfio >/dev/null 2>&1 & sw=$!
wait_for 300 test -f $RECORD && result badconf-record-written PASS || result badconf-record-written FAIL
systemctl kill -s KILL gpuswitchd.service
echo 0 > $PIN
wait_for 100 daemon_gone
wait $sw
! all_original && result badconf-left-halfway PASS "$(state)" || result badconf-left-halfway FAIL "$(state)"
configure "" "AllowBootVga=yes\nStopServices=$SERVICE\nAllowBootVga=maybe"
systemctl reset-failed gpuswitchd.service 2>/dev/null
run $CTL status
[ "$RC" = 1 ] && echo "$OUT" | grep -q "AllowBootVga" && result badconf-status-says-why PASS \
        || result badconf-status-says-why FAIL "rc=$RC $OUT"
all_original && result badconf-recovered PASS "$(state)" || result badconf-recovered FAIL "$(state)"
wait_for 100 test "$(active $SERVICE)" = active && result badconf-service-started PASS \
        || result badconf-service-started FAIL "$(active $SERVICE)"
[ ! -e $RECORD ] && result badconf-record-removed PASS || result badconf-record-removed FAIL
daemon_stop

# ---- a config mistake fails fast ---------------------------------------------------
configure "" "AllowBootVga=yes\nStopServices=$SERVICE\nDefualtMode=vfio"
daemon_stop
for verb in status vfio; do
        t0=$(date +%s%N)
        run $CTL $verb
        ms=$(( ($(date +%s%N) - t0) / 1000000 ))
        [ "$RC" != 0 ] && [ $ms -le 5000 ] && echo "$OUT" | grep -q "$CONF: \[Gpu $SLOT\]: unknown key 'DefualtMode'" \
                && result "bad-config-$verb-fails-fast" PASS "rc=$RC in $ms ms" \
                || result "bad-config-$verb-fails-fast" FAIL "rc=$RC in $ms ms: $OUT"
done
all_original && result bad-config-changed-nothing PASS || result bad-config-changed-nothing FAIL "$(state)"
[ "$(active gpuswitchd.service)" = active ] && result bad-config-daemon-answers PASS \
        || result bad-config-daemon-answers FAIL "$(active gpuswitchd.service)"
configure "" "AllowBootVga=yes\nStopServices=$SERVICE"
# the daemon sees the file change and exits; the next call starts one with it
wait_for 50 daemon_gone && result bad-config-fixed-exits PASS || result bad-config-fixed-exits FAIL
run $CTL status
expect_rc fixed-config-status 0
run $CTL vfio
expect_rc fixed-config-vfio 0
all_on vfio-pci && result fixed-config-switched PASS || result fixed-config-switched FAIL "$(state)"
run $CTL host
expect_rc fixed-config-host 0
all_original && result fixed-config-back PASS || result fixed-config-back FAIL "$(state)"
journalctl -u gpuswitchd.service --no-pager -o cat | tail -25
finish
