#!/bin/bash
# vmtest: systemd
# The daemon's own time a switch, in the QEMU guest: the CPU time that
# gpuswitchd (every thread of it, ended ones included: /proc/PID/stat)
# spends on a switch asked for with busctl, split into user time (the
# daemon's own code: bus, planning, reading sysfs, the record) and system
# time (its system calls, and the drivers' remove() and probe() that the
# kernel runs in the writing thread), for
#   real switches    host -> vfio and back, DAEMON_TIME_ROUNDS round trips
#                    (default 10), each on a GPU settled 1 s on its drivers
#   empty switches   "host" on a GPU already there: bus, authorization,
#                    reading and planning, no write (3 x DAEMON_TIME_ROUNDS)
# and the wall clock of busctl for each.  The clock ticks at 100 Hz, so
# the CPU figures are totals over every switch of a kind, divided.
# Figures on BENCH lines (bench/run.sh daemon-time keeps them).
. "$(dirname "$0")/../../tests/vm/guest-lib.sh"
. "$(dirname "$0")/../../tests/vm/gpu-lib.sh"

ROUNDS=${DAEMON_TIME_ROUNDS:-10}
HZ=$(getconf CLK_TCK)

configure "" "AllowBootVga=yes"
modprobe vfio-pci
switch() { busctl --system --timeout=60 call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager Switch sst "" "$1" 0; }
settle() { udevadm settle --timeout=10 2>/dev/null; sleep 1; }
usec() { local t=${1/./}; echo $((10#$t)); }   # EPOCHREALTIME -> microseconds
ticks() { local s; read -r -a s < "/proc/$PID/stat"; echo "${s[13]} ${s[14]}"; }   # utime stime

# Totals of one kind of switch: user ticks, system ticks, wall µs, count.
declare -A UT ST WALL N
timed() { # KIND MODE
        local u0 s0 u1 s1 t0 t1
        read -r u0 s0 < <(ticks)
        t0=$EPOCHREALTIME
        switch "$2" >/dev/null || BAD+="$1 $2; "
        t1=$EPOCHREALTIME
        read -r u1 s1 < <(ticks)
        UT[$1]=$(( ${UT[$1]:-0} + u1 - u0 )); ST[$1]=$(( ${ST[$1]:-0} + s1 - s0 ))
        WALL[$1]=$(( ${WALL[$1]:-0} + $(usec "$t1") - $(usec "$t0") )); N[$1]=$(( ${N[$1]:-0} + 1 ))
}

# warm-up: activates the daemon, its libraries and the drivers' paths come in
switch vfio >/dev/null && settle && switch host >/dev/null && settle
PID=$(systemctl show -P MainPID gpuswitchd.service)
[ "${PID:-0}" != 0 ] && result daemon-running PASS "pid $PID" || result daemon-running FAIL "no MainPID"

BAD=""
for ((i = 0; i < ROUNDS; i++)); do
        timed real vfio; all_on vfio-pci || BAD+="not on vfio-pci: $(state); "
        settle
        timed real host; all_original || BAD+="not back: $(state); "
        settle
done
for ((i = 0; i < 3 * ROUNDS; i++)); do timed empty host; done

show() { # KIND LABEL
        awk -v u="${UT[$1]}" -v s="${ST[$1]}" -v w="${WALL[$1]}" -v n="${N[$1]}" -v hz="$HZ" -v l="$2" 'BEGIN {
                printf "BENCH   %s: %.1f ms CPU a switch (user %.1f, system %.1f), busctl wall %.1f ms, mean of %d\n",
                        l, (u + s) * 1000 / hz / n, u * 1000 / hz / n, s * 1000 / hz / n, w / 1000 / n, n }'
}
echo "BENCH daemon time in the QEMU guest (TCG, $(nproc) vCPUs): gpuswitchd's CPU time (all its threads) for a switch" \
        "asked for with busctl; system time includes the drivers' remove() and probe() run in its writing thread"
show real "real switch (host -> vfio or back, $(wc -w <<< "$FNS") functions)"
show empty "empty switch (host on a GPU on its host drivers)"

[ -z "$BAD" ] && result every-switch-moved PASS || result every-switch-moved FAIL "$BAD"
[ "$(systemctl show -P MainPID gpuswitchd.service)" = "$PID" ] && result same-daemon-throughout PASS \
        || result same-daemon-throughout FAIL
all_original && result gpu-back-on-its-drivers PASS "$(state)" || result gpu-back-on-its-drivers FAIL "$(state)"
finish
