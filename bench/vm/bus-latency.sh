#!/bin/bash
# Bus reply times under load (issue 5): 50 clients reading the GPU's
# properties (bench/bus-load --read) from gpuswitchd, with no switch, while
# root switches the GPU back and forth, and while a switch is held at its
# first unbind (the stand-in's pin).  The same load against bus-floor, a
# service that does nothing but answer the same reads with fixed values, in
# the same boot: what the daemon adds to the bus's own cost.  Back to back
# (each client calls again as soon as it is answered: the bus saturated)
# and paced (each client twice a second, as applets would).
# Figures are BENCH lines; the medians of p50 and p99 over the rounds.
. "$(dirname "$0")/../../tests/vm/guest-lib.sh"
. "$(dirname "$0")/../../tests/vm/gpu-lib.sh"

# The bench programs are built next to the staged tree: BUILD/stage -> BUILD/bench.
stage=$(sed -n 's/.*vmtest\.stage=\([^ ]*\).*/\1/p' /proc/cmdline)
BUS_LOAD=${stage%/stage}/bench/bus-load
BUS_FLOOR=${stage%/stage}/bench/bus-floor
FLOOR=org.gpuswitch1.BenchFloor
CLIENTS=50 CALLS=3000 ROUNDS=3
PACE=100 PACED_CALLS=1000   # paced: calls a second from all clients together
TARGET_P99=5

configure "" "AllowBootVga=yes"
run $CTL status
expect_rc daemon-activated 0
pid=$(pgrep -x gpuswitchd)

# The floor: root may own its name, anyone may call it.
cat >/etc/dbus-1/system.d/gpuswitch-bench-floor.conf <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
        "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
        <policy user="root"><allow own="$FLOOR"/></policy>
        <policy context="default"><allow send_destination="$FLOOR"/></policy>
</busconfig>
EOF
dbus-send --system --type=method_call --dest=org.freedesktop.DBus / org.freedesktop.DBus.ReloadConfig
sleep 0.5
"$BUS_FLOOR" $FLOOR & floor=$!
for _ in $(seq 50); do bus_has_owner $FLOOR && break; sleep 0.2; done
check floor-serving bus_has_owner $FLOOR

DAEMON_PID=$pid FLOOR_PID=$floor LOAD_FAILED=/tmp/bus-load.failed
rm -f "$LOAD_FAILED"
. "$(dirname "$0")/../bus-load-lib.sh"

# Root's switching loop, in the background until told to stop.
switching_start() {
        rm -f /tmp/stop-switching
        (
                n=0
                while [ ! -e /tmp/stop-switching ]; do
                        $CTL -q vfio >/dev/null 2>&1; $CTL -q host >/dev/null 2>&1
                        n=$((n + 2))
                done
                echo $n >/tmp/switches.count
        ) &
        switcher=$!
        sleep 1
}
switching_stop() { touch /tmp/stop-switching; wait $switcher; SWITCHES=$(cat /tmp/switches.count); }

# warm-up: first connections, page cache, the daemon's first allocations
load org.gpuswitch1 >/dev/null
load $FLOOR >/dev/null

compare idle "daemon floor"
compare idle-paced "daemon floor" --rate $PACE --calls $PACED_CALLS
switching_start
compare switching "daemon floor"
compare switching-paced "daemon floor" --rate $PACE --calls $PACED_CALLS
switching_stop
# A switch held at its first unbind: Mode "switching" the whole time, the
# worker thread blocked in the kernel.
echo 1 >/sys/module/gpuswitch_test/parameters/pin
$CTL -q vfio >/tmp/held.out 2>&1 & held=$!
for _ in $(seq 50); do [ "$(prop Mode)" = 's "switching"' ] && break; sleep 0.2; done
compare held daemon
compare held-paced daemon --rate $PACE --calls $PACED_CALLS
echo 0 >/sys/module/gpuswitch_test/parameters/pin
wait $held
$CTL -q host

echo "BENCH bus latency: $CLIENTS clients reading GPU properties (bus-load --read), $CALLS calls a run" \
        "($PACED_CALLS paced), medians of $ROUNDS runs; load average $(cut -d' ' -f1-3 /proc/loadavg) in the guest"
show idle "no switch, back to back"
show switching "switching, back to back"
show held "switch held, back to back"
show idle-paced "no switch, $PACE calls/s"
show switching-paced "switching, $PACE calls/s"
show held-paced "switch held, $PACE calls/s"
echo "BENCH bus while switching: $SWITCHES switches ran, Mode replied \"switching\" to ${SW[switching.daemon]}%" \
        "(back to back) and ${SW[switching-paced.daemon]}% (paced) of the reads; held: ${SW[held.daemon]}%"
for l in switching switching-paced; do target $l $TARGET_P99 "on this guest"; done

kill $floor
[ ! -e /tmp/bus-load.failed ] && result every-call-answered PASS \
        || result every-call-answered FAIL "$(wc -l </tmp/bus-load.failed) runs"
[ "$(pgrep -x gpuswitchd)" = "$pid" ] && result same-daemon-throughout PASS || result same-daemon-throughout FAIL
all_original && result gpu-back-on-host PASS || result gpu-back-on-host FAIL "$(state)"
finish
