#!/bin/bash
# Boot and crash (issue 3): the daemon killed with SIGKILL between two steps
# of a switch leaves the GPU mixed; started again it says so and puts every
# function back from its record.  DefaultMode= is applied at start, once a
# boot.
. "$(dirname "$0")/../guest-lib.sh"

CTL=gpuswitchctl
read -r VGA HDA XHCI EDU < <(gpu_fns)
SLOT=${VGA%.*}
FNS="$VGA $HDA $XHCI $EDU"
OBJ=/org/gpuswitch1/gpu/${SLOT//:/_}
PIN=/sys/module/gpuswitch_test/parameters/pin
RECORD=/var/lib/gpuswitch/switch-$SLOT.conf
declare -A ORIG
for f in $FNS; do ORIG[$f]=$(drv $f); done
all_on() { local f; for f in $FNS; do [ "$(drv $f)" = "$1" ] || return 1; done; }
all_original() {
        local f; for f in $FNS; do [ "$(drv $f)" = "${ORIG[$f]}" ] && [ "$(override $f)" = "(null)" ] || return 1; done; }
state() { local f; for f in $FNS; do printf '%s=%s[%s] ' "$f" "$(drv $f)" "$(override $f)"; done; }
mode() { busctl --system --timeout=2 get-property org.gpuswitch1 $OBJ org.gpuswitch1.Gpu Mode 2>&1; }
daemon_gone() { for i in $(seq 100); do pgrep -x gpuswitchd >/dev/null || return 0; sleep 0.1; done; return 1; }
start_daemon() { # LOG: run it by hand, its log kept
        /usr/libexec/gpuswitchd >"$1" 2>&1 &
        for i in $(seq 100); do bus_has_owner org.gpuswitch1 && return 0; sleep 0.1; done; return 1
}

mkdir -p /etc/gpuswitch
printf '[Daemon]\nGpus=%s\nStepTimeoutSec=2\n[Gpu %s]\nAllowBootVga=yes\n' "$SLOT" "$SLOT" > /etc/gpuswitch/gpuswitch.conf
$CTL status >/dev/null

# ---- SIGKILL between two steps -------------------------------------------------
# The edu function goes first; with its driver pinned the unbind waits, so
# the daemon is killed after driver_override and before drivers_probe.
echo 1 > $PIN
$CTL vfio >/tmp/sw.out 2>&1 & sw=$!
for i in $(seq 50); do [ -f "$RECORD" ] && break; sleep 0.1; done
[ -f "$RECORD" ] && result record-written PASS || result record-written FAIL
cat "$RECORD"
sleep 0.5
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
[ "$(mode)" = 's "host"' ] && result restart-mode-host PASS || result restart-mode-host FAIL "$(mode)"
[ ! -e "$RECORD" ] && result record-removed PASS || result record-removed FAIL
$CTL vfio >/dev/null 2>&1 && $CTL host >/dev/null 2>&1 && all_original && [ ! -e "$RECORD" ] \
        && result switches-after-recovery PASS || result switches-after-recovery FAIL "$(state)"

# ---- DefaultMode= at boot ----------------------------------------------------------
pkill -x gpuswitchd; daemon_gone
printf '[Daemon]\nGpus=%s\n[Gpu %s]\nAllowBootVga=yes\nDefaultMode=vfio\n' "$SLOT" "$SLOT" > /etc/gpuswitch/gpuswitch.conf
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
finish
