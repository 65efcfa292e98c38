#!/bin/bash
# Holders are signalled through pidfds only (issue 13): with --force, one
# holder dies of SIGTERM, another ignores it; while the daemon waits to
# SIGKILL the second, the first one's PID is given to a newcomer of another
# user that holds nothing (ns_last_pid).  The newcomer survives, the
# stubborn holder is killed, the switch completes.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"

configure "" "AllowBootVga=yes"
run $CTL status
( as_user alice bash -c "exec sleep 1001 < /dev/gpuswitch-test0" & )
( as_user alice bash -c "trap '' TERM; exec sleep 1002 < /dev/gpuswitch-test0" & )
for i in $(seq 50); do
        H1=$(pgrep -u alice -x -f "sleep 1001") && H2=$(pgrep -u alice -x -f "sleep 1002") && break; sleep 0.1
done
echo "holders: $H1 (ends on SIGTERM), $H2 (ignores it)"
[ -n "$H1" ] && [ -n "$H2" ] && result holders-started PASS || result holders-started FAIL

$CTL --force vfio >/tmp/force.out 2>&1 & sw=$!
for i in $(seq 100); do kill -0 "$H1" 2>/dev/null || break; sleep 0.02; done
# H1 is gone (PID 1 reaps it): its PID to a newcomer that holds nothing
for i in $(seq 50); do [ -d /proc/$H1 ] || break; sleep 0.02; done
echo $((H1 - 1)) > /proc/sys/kernel/ns_last_pid
setpriv --reuid=65534 --regid=65534 --clear-groups sleep 1003 & NEW=$!
echo "newcomer: $NEW"
[ "$NEW" = "$H1" ] && kill -0 "$H2" 2>/dev/null && result pid-reused-while-waiting PASS \
        || result pid-reused-while-waiting FAIL "newcomer $NEW, H1 $H1, H2 alive: $(kill -0 $H2 2>/dev/null && echo yes || echo no)"
wait $sw; rc=$?
cat /tmp/force.out
[ $rc = 0 ] && all_on vfio-pci && result force-switched PASS || result force-switched FAIL "rc=$rc $(state)"
kill -0 "$NEW" 2>/dev/null && result newcomer-survives PASS || result newcomer-survives FAIL
# by its command line: its PID may belong to another process by now, and a
# zombie has none
for i in $(seq 50); do pgrep -u alice -x -f "sleep 1002" >/dev/null || break; sleep 0.1; done
! pgrep -u alice -x -f "sleep 1002" >/dev/null && result stubborn-holder-killed PASS \
        || result stubborn-holder-killed FAIL "$(pgrep -a -u alice -x -f 'sleep 1002')"
kill "$NEW" 2>/dev/null
run $CTL host
expect_rc back-to-host 0
all_original && result all-original PASS || result all-original FAIL "$(state)"
finish
