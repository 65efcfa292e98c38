#!/bin/bash
# Boot and crash (issue 3): the daemon killed with SIGKILL between two steps
# of a switch leaves the GPU mixed; started again it says so and puts every
# function back from its record.  A second daemon is refused.  DefaultMode=
# is applied at start, once a boot.  A daemon whose bus goes away exits.
. "$(dirname "$0")/../guest-lib.sh"

. "$(dirname "$0")/../gpu-lib.sh"
PIN=/sys/module/gpuswitch_test/parameters/pin
RECORD=/var/lib/gpuswitch/switch-$SLOT.conf
mode() { prop Mode; }
daemon_gone() { for i in $(seq 100); do pgrep -x gpuswitchd >/dev/null || return 0; sleep 0.1; done; return 1; }
start_daemon() { # LOG: run it by hand, its log kept
        /usr/libexec/gpuswitchd >"$1" 2>&1 &
        for i in $(seq 100); do bus_has_owner org.gpuswitch1 && return 0; sleep 0.1; done; return 1
}

configure "StepTimeoutSec=2" "AllowBootVga=yes"
$CTL status >/dev/null

# ---- SIGKILL between two steps -------------------------------------------------
# The edu function goes first; with its driver pinned the unbind waits, so
# the daemon is killed after driver_override and before drivers_probe.
# Runtime PM allowed on every function, as on a laptop with TLP: the
# switch holds them awake ("on") while it runs.
powers() { local f; for f in $FNS; do printf '%s ' "$(cat /sys/bus/pci/devices/$f/power/control)"; done; }
for f in $FNS; do echo auto > /sys/bus/pci/devices/$f/power/control; done
echo 1 > $PIN
$CTL vfio >/tmp/sw.out 2>&1 & sw=$!
for i in $(seq 50); do [ -f "$RECORD" ] && break; sleep 0.1; done
[ -f "$RECORD" ] && result record-written PASS || result record-written FAIL
cat "$RECORD"
sleep 0.5
echo "power/control while the switch runs: $(powers)"
pkill -KILL -x gpuswitchd
# A process in a driver's remove() dies only when the write returns.
echo 0 > $PIN
daemon_gone && result daemon-killed PASS || result daemon-killed FAIL
wait $sw
echo "after the kill: $(state)"
[ "$(drv $EDU)" = none ] && [ "$(override $EDU)" = vfio-pci ] && [ "$(drv $VGA)" = bochs-drm ] \
        && result left-mixed PASS "$(state)" || result left-mixed FAIL "$(state)"

start_daemon /tmp/restart.log && result restarted PASS || result restarted FAIL
cat /tmp/restart.log
grep -q "a switch to vfio was interrupted" /tmp/restart.log && grep -q "the GPU is mixed now" /tmp/restart.log \
        && result restart-says-mixed PASS || result restart-says-mixed FAIL
all_original && result restart-puts-back PASS "$(state)" || result restart-puts-back FAIL "$(state)"
[ "$(powers)" = "auto auto auto auto " ] && result restart-gives-power-control-back PASS \
        || result restart-gives-power-control-back FAIL "$(powers)"
[ "$(mode)" = 's "host"' ] && result restart-mode-host PASS || result restart-mode-host FAIL "$(mode)"
[ ! -e "$RECORD" ] && result record-removed PASS || result record-removed FAIL
$CTL vfio >/dev/null 2>&1 && $CTL host >/dev/null 2>&1 && all_original && [ ! -e "$RECORD" ] \
        && result switches-after-recovery PASS || result switches-after-recovery FAIL "$(state)"

# ---- one daemon at a time ----------------------------------------------------------
# A second gpuswitchd started while the first one's switch is held at its
# first unbind (the pin): it changes nothing, names the first one and exits
# non-zero; the held switch then completes.
first=$(pgrep -x gpuswitchd)
# only the driver links: reading driver_override waits for the device lock,
# which the held unbind keeps
drivers() { local f; for f in $FNS; do printf '%s=%s ' "$f" "$(drv "$f")"; done; }
echo 1 > $PIN
$CTL vfio >/tmp/sw3.out 2>&1 & sw=$!
for i in $(seq 50); do [ -f "$RECORD" ] && break; sleep 0.1; done
before="$(drivers) $(cat "$RECORD")"
run timeout 60 /usr/libexec/gpuswitchd
[ "$RC" != 0 ] && [ "$RC" != 124 ] && echo "$OUT" | grep -q "another gpuswitchd (PID $first) is running" \
        && result second-daemon-refused PASS "rc=$RC" || result second-daemon-refused FAIL "rc=$RC, first $first"
[ "$(drivers) $(cat "$RECORD")" = "$before" ] && [ "$(pgrep -x gpuswitchd)" = "$first" ] \
        && result second-daemon-changed-nothing PASS || result second-daemon-changed-nothing FAIL "$(drivers)"
echo 0 > $PIN
# (held longer than StepTimeoutSec=2, the caller may have had Timeout: the
# switch goes on all the same)
wait $sw; rc=$?
for i in $(seq 100); do all_on vfio-pci && [ "$(mode)" = 's "vfio"' ] && break; sleep 0.1; done
all_on vfio-pci && [ "$(mode)" = 's "vfio"' ] && result held-switch-completes PASS "rc=$rc" \
        || result held-switch-completes FAIL "rc=$rc $(state) $(cat /tmp/sw3.out)"
$CTL host >/dev/null 2>&1
all_original && result one-daemon-back-to-host PASS || result one-daemon-back-to-host FAIL "$(state)"

# ---- DefaultMode= at boot ----------------------------------------------------------
pkill -x gpuswitchd; daemon_gone
configure "" "AllowBootVga=yes\nDefaultMode=vfio"
rm -f /run/gpuswitch/default-mode-applied      # as after a reboot
start_daemon /tmp/boot.log
# applied before the daemon took its name: vfio at once
m=$(mode)
[ "$m" = 's "vfio"' ] && all_on vfio-pci && result default-mode-applied-at-start PASS \
        || result default-mode-applied-at-start FAIL "$m $(state)"
grep -q "DefaultMode=vfio applied" /tmp/boot.log && result default-mode-logged PASS || result default-mode-logged FAIL
# the user moves it; a later start in the same boot leaves it there
$CTL host >/dev/null 2>&1
pkill -x gpuswitchd; daemon_gone
start_daemon /tmp/again.log
[ "$(mode)" = 's "host"' ] && all_original && result default-mode-once-a-boot PASS \
        || result default-mode-once-a-boot FAIL "$(mode) $(state)"
# ---- the bus goes away -------------------------------------------------------------
# A daemon on a bus of its own (a private dbus-daemon; its own lock and
# state folders): killing that bus ends the daemon, which serves nobody.
pkill -x gpuswitchd; daemon_gone
configure "" "AllowBootVga=yes"
mkdir -p /tmp/lostbus/run /tmp/lostbus/state
addr=$(dbus-daemon --session --fork --print-address=1 --print-pid=3 3>/tmp/lostbus/pid)
busd=$(cat /tmp/lostbus/pid)
DBUS_SYSTEM_BUS_ADDRESS=$addr GPUSWITCH_RUNTIME_DIR=/tmp/lostbus/run GPUSWITCH_STATE_DIR=/tmp/lostbus/state \
        /usr/libexec/gpuswitchd >/tmp/lostbus/log 2>&1 & lost=$!
for i in $(seq 100); do grep -q "running" /tmp/lostbus/log && break; sleep 0.1; done
grep -q "running" /tmp/lostbus/log && result private-bus-daemon-up PASS || result private-bus-daemon-up FAIL "$(cat /tmp/lostbus/log)"
kill "$busd"
for i in $(seq 100); do kill -0 $lost 2>/dev/null || break; sleep 0.1; done
if kill -0 $lost 2>/dev/null; then
        result exits-on-bus-loss FAIL "still running: $(cat /tmp/lostbus/log)"; kill $lost
else
        result exits-on-bus-loss PASS
fi
wait $lost
all_original && result bus-loss-changed-nothing PASS || result bus-loss-changed-nothing FAIL "$(state)"
finish
