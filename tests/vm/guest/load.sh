#!/bin/bash
# vmtest-seconds: 200
# The daemon under load (issue 5): 10,000 method calls from 50 clients,
# invalid ones mixed in, while root switches the GPU to vfio-pci and back
# over and over.  The daemon must never crash (one PID throughout, no
# sanitizer report, still answering), every call must get its answer
# (bench/bus-load: the right named error for each bad one, Busy or polkit's
# refusal for the switches of an unauthorized user), and the GPU must end
# in one mode, all of it, with the NIC never moved.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"

# bus-load is built next to the staged tree: BUILD/stage -> BUILD/bench.
stage=$(sed -n 's/.*vmtest\.stage=\([^ ]*\).*/\1/p' /proc/cmdline)
BUS_LOAD=${stage%/stage}/bench/bus-load
CALLS=10000 CLIENTS=50

nic_untouched() { [ "$(drv $NIC)" = "${ORIG[$NIC]}" ] && [ "$(override $NIC)" = "(null)" ]; }
consistent() { # every function on its host driver or every one on vfio-pci, and Mode says which
        local m f
        m=$(prop Mode)
        if [ "$m" = 's "host"' ]; then
                all_original
        elif [ "$m" = 's "vfio"' ]; then
                for f in $FNS; do [ "$(drv $f)" = vfio-pci ] && [ "$(override $f)" = vfio-pci ] || return 1; done
        else
                return 1
        fi
}

configure "" "AllowBootVga=yes"
check bus-load-built test -x "$BUS_LOAD"
run $CTL status
expect_rc daemon-activated 0
pid=$(pgrep -x gpuswitchd)
echo "gpuswitchd pid $pid"

# Root switches back and forth until told to stop; every switch must work
# (alice's calls are refused before they could start one).
rm -f /tmp/stop-switching /tmp/switches.log
(
        n=0 bad=0
        while [ ! -e /tmp/stop-switching ]; do
                for mode in vfio host; do
                        $CTL -q $mode >>/tmp/switches.log 2>&1
                        r=$?
                        [ $r = 0 ] || { bad=$((bad + 1)); echo "rc $r to $mode" >>/tmp/switches.log; }
                        n=$((n + 1))
                done
        done
        echo "$n $bad" >/tmp/switches.count
) &
switcher=$!

# alice is no one polkit knows: her valid Switch and SetDefaultMode calls
# are refused (or answered Busy while root's switch runs).
start=$SECONDS
as_user alice "$BUS_LOAD" --mixed --clients $CLIENTS --calls $CALLS --timeout 60 >/tmp/load.out 2>&1
rc=$?
took=$((SECONDS - start))
touch /tmp/stop-switching
wait $switcher
read -r switches bad_switches </tmp/switches.count
cat /tmp/load.out
echo "bus-load rc $rc in ${took}s; $switches switches meanwhile, $bad_switches failed"
tail -5 /tmp/switches.log

[ $rc = 0 ] && result every-call-answered-as-expected PASS || result every-call-answered-as-expected FAIL "rc=$rc"
grep -q "^answered as expected $CALLS, answered otherwise 0, no reply 0$" /tmp/load.out \
        && result all-$CALLS-calls-replied PASS || result all-$CALLS-calls-replied FAIL "$(sed -n 2p /tmp/load.out)"
grep -q "^error org.gpuswitch1.Error.Busy " /tmp/load.out && grep -q "^error org.gpuswitch1.Error.NoSuchGpu " /tmp/load.out \
        && grep -q "^error org.freedesktop.DBus.Error.InvalidArgs " /tmp/load.out \
        && result named-errors-seen PASS || result named-errors-seen FAIL "no Busy, NoSuchGpu or InvalidArgs among the answers"
[ "$switches" -ge 4 ] && [ "$bad_switches" = 0 ] && result switches-ran-and-worked PASS "$switches switches" \
        || result switches-ran-and-worked FAIL "$switches switches, $bad_switches failed"

[ "$(pgrep -x gpuswitchd)" = "$pid" ] && result same-daemon-throughout PASS "pid $pid" \
        || result same-daemon-throughout FAIL "pid $pid before, '$(pgrep -x gpuswitchd)' now"
dmesg | grep -E 'gpuswitchd\[[0-9]+\]: segfault|traps: gpuswitchd' && result no-crash-in-kernel-log FAIL \
        || result no-crash-in-kernel-log PASS
run busctl --system --timeout=5 get-property org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager Version
expect_rc still-answering 0

consistent && result consistent-mode PASS "$(prop Mode): $(state)" || result consistent-mode FAIL "$(prop Mode): $(state)"
run $CTL host
expect_rc back-to-host 0
all_original && result back-on-host-drivers PASS || result back-on-host-drivers FAIL "$(state)"
nic_untouched && result nic-never-moved PASS "$(drv $NIC)" || result nic-never-moved FAIL "$(drv $NIC) [$(override $NIC)]"
finish
