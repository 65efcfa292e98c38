#!/bin/bash
# vmtest-seconds: 90
# Every mutating method denied to an unauthorized caller by the real polkitd
# (issue 5): Switch to vfio, Switch back to host, Switch with
# terminate-holders (a real holder present) and SetDefaultMode, called with
# busctl with and without the allow-interactive-authorization flag: the
# D-Bus error each time, and nothing changed (drivers and overrides in sysfs,
# the config file byte for byte, the holder alive, Mode).  A group member
# under the example rule may switch, and once a rule grants them, end
# holders and configure: the denials are polkit's decision.  Reading needs
# no polkit at all.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"

CONF=/etc/gpuswitch/gpuswitch.conf
MON=/tmp/bus-monitor.log
DENIED=org.freedesktop.DBus.Error.AccessDenied
ASK=org.freedesktop.DBus.Error.InteractiveAuthorizationRequired

# A holder: USER -> the pid of USER's process holding the stand-in's node, in $HOLDER
hold() {
        ( as_user "$1" bash -c "exec sleep 1000 < /dev/gpuswitch-test0" & )
        for _ in $(seq 50); do HOLDER=$(pgrep -u "$1" -n -x sleep) && break; sleep 0.1; done
        sleep 0.2
}
holder_state() { [ -z "${HOLDER:-}" ] && echo none || { kill -0 "$HOLDER" 2>/dev/null && echo alive || echo gone; }; }
# what a mutating call could change
snapshot() { echo "$(state)| conf $(sha256sum < $CONF | cut -c1-16)| holder $(holder_state)| $(prop Mode)| $(prop DefaultMode)"; }

# The bus as root sees it: every message to and from the daemon and polkitd,
# for the error names (busctl prints only the message) and polkit's calls.
busctl --system monitor org.gpuswitch1 org.freedesktop.PolicyKit1 > $MON 2>&1 & monitor=$!
errors_seen=0
count() { grep -c -- "$1" $MON; }
until_seen() { # PATTERN N: wait until the monitor has logged PATTERN more than N times
        for _ in $(seq 30); do [ "$(count "$1")" -gt "$2" ] && return 0; sleep 0.1; done; return 1; }
# the name of the first error the bus carried after the last look
next_error() {
        until_seen ErrorName= "$errors_seen" || { echo none; return; }
        errors_seen=$((errors_seen + 1))
        grep -o 'ErrorName=[^ ]*' $MON | sed -n "${errors_seen}p" | cut -d= -f2
}
skip_errors() { sleep 0.3; errors_seen=$(count ErrorName=); }
mgr() { # USER INTERACTIVE METHOD SIGNATURE ARGS...: a Manager call as USER, through busctl
        local u=$1 i=$2; shift 2
        run as_user "$u" busctl --system --allow-interactive-authorization="$i" \
                call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager "$@"
}
deny() { # NAME USER INTERACTIVE WANT_ERROR METHOD SIGNATURE ARGS...
        local name=$1 u=$2 i=$3 want=$4 before got; shift 4
        before=$(snapshot)
        skip_errors
        mgr "$u" "$i" "$@"
        got=$(next_error)
        [ "$RC" != 0 ] && [ "$got" = "$want" ] && result "$name" PASS "$got" \
                || result "$name" FAIL "rc=$RC error $got, want $want: $OUT"
        [ "$(snapshot)" = "$before" ] && result "$name-nothing-changed" PASS "$before" \
                || result "$name-nothing-changed" FAIL "before: $before; after: $(snapshot)"
}
allow() { # NAME USER METHOD SIGNATURE ARGS...: the call succeeds
        local name=$1 u=$2; shift 2
        mgr "$u" no "$@"
        expect_rc "$name" 0
}

configure "" "AllowBootVga=yes"
for _ in $(seq 30); do
        busctl --system call org.gpuswitch1 /org/gpuswitch1 org.freedesktop.DBus.Peer Ping >/dev/null 2>&1
        grep -q 'Member=Ping' $MON && break
done
check monitor-sees-the-daemon grep -q 'Member=Ping' $MON

# ---- reading: bob, no rule, no interaction allowed, polkit never asked -----------
asked=$(count Member=CheckAuthorization)
ro_ok=0 ro_fail=""
ro() { # busctl ARGS... as bob, interaction not allowed
        if as_user bob busctl --system --allow-interactive-authorization=no "$@" >/tmp/ro.out 2>&1; then
                ro_ok=$((ro_ok + 1))
        else ro_fail="$ro_fail [$* : $(cat /tmp/ro.out)]"; fi
}
for m in "ListGpus" "GetGpu s $SLOT" "GetGpu s $VGA" "Plan ss $SLOT vfio" "Plan ss $SLOT host" "ListHolders s $SLOT"; do
        # shellcheck disable=SC2086 # the method and its arguments, split
        ro call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager $m
done
ro get-property org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager Version Gpus
ro get-property org.gpuswitch1 "$OBJ" org.gpuswitch1.Gpu Address Name Mode Step Functions IommuGroups BootVga DefaultMode
ro call org.gpuswitch1 "$OBJ" org.freedesktop.DBus.Properties GetAll s org.gpuswitch1.Gpu
ro call org.gpuswitch1 /org/gpuswitch1 org.freedesktop.DBus.Properties GetAll s org.gpuswitch1.Manager
ro introspect org.gpuswitch1 "$OBJ"
[ -z "$ro_fail" ] && result read-only-calls-as-bob PASS "$ro_ok calls" || result read-only-calls-as-bob FAIL "$ro_fail"
sleep 0.3
[ "$(count Member=CheckAuthorization)" = "$asked" ] && result reading-asks-no-polkit PASS \
        || result reading-asks-no-polkit FAIL "$(($(count Member=CheckAuthorization) - asked)) CheckAuthorization calls"
all_original && result reading-changed-nothing PASS || result reading-changed-nothing FAIL "$(state)"

# ---- no rule: alice may change nothing ------------------------------------------
# The actions are auth_admin for a caller without an active session: polkit
# wants an administrator's password.  Without the flag the daemon says so
# (InteractiveAuthorizationRequired); with it polkit finds no agent to ask,
# and the answer is no (AccessDenied).
hold bob
echo "bob's holder: $HOLDER"
for i in no yes; do
        want=$ASK; [ $i = yes ] && want=$DENIED
        asked=$(count Member=CheckAuthorization)
        deny "no-rule-vfio-interactive-$i" alice $i $want Switch sst "$SLOT" vfio 0
        until_seen Member=CheckAuthorization "$asked" && result "no-rule-polkit-asked-interactive-$i" PASS \
                || result "no-rule-polkit-asked-interactive-$i" FAIL
        deny "no-rule-terminate-holders-interactive-$i" alice $i $want Switch sst "$SLOT" vfio 1
        deny "no-rule-set-default-interactive-$i" alice $i $want SetDefaultMode ss "$SLOT" vfio
done
kill "$HOLDER"; HOLDER=
run $CTL vfio
expect_rc root-switches-to-vfio 0
all_on vfio-pci && result root-vfio PASS || result root-vfio FAIL "$(state)"
for i in no yes; do
        want=$ASK; [ $i = yes ] && want=$DENIED
        deny "no-rule-host-interactive-$i" alice $i $want Switch sst "$SLOT" host 0
        deny "no-rule-host-terminate-holders-interactive-$i" alice $i $want Switch sst "$SLOT" host 1
        deny "no-rule-set-default-in-vfio-interactive-$i" alice $i $want SetDefaultMode ss "$SLOT" host
done

# ---- the example rule: a gpuswitch group member may switch ----------------------
install -m644 /usr/share/doc/gpuswitch/examples/50-gpuswitch-group.rules /etc/polkit-1/rules.d/
usermod -aG gpuswitch alice
sleep 2   # polkitd reloads rules.d on its own (inotify)
allow group-member-host alice Switch sst "$SLOT" host 0
all_original && result group-member-host-state PASS || result group-member-host-state FAIL "$(state)"
allow group-member-vfio alice Switch sst "$SLOT" vfio 0
all_on vfio-pci && result group-member-vfio-state PASS || result group-member-vfio-state FAIL "$(state)"
allow group-member-host-again alice Switch sst "$SLOT" host 0
all_original && result group-member-host-again-state PASS || result group-member-host-again-state FAIL "$(state)"
deny not-in-group-still-denied bob no $ASK Switch sst "$SLOT" vfio 0

# The example rule grants org.gpuswitch1.switch alone: ending other users'
# programs and the boot configuration still need an administrator.
hold bob
echo "bob's holder: $HOLDER"
for i in no yes; do
        want=$ASK; [ $i = yes ] && want=$DENIED
        deny "group-member-terminate-holders-interactive-$i" alice $i $want Switch sst "$SLOT" vfio 1
done
deny group-member-set-default alice no $ASK SetDefaultMode ss "$SLOT" vfio

# A rule that grants those two: the same calls now go through.
cat > /etc/polkit-1/rules.d/60-test-gpuswitch-admin.rules <<'RULE'
polkit.addRule(function(action, subject) {
        if ((action.id == "org.gpuswitch1.terminate-holders" || action.id == "org.gpuswitch1.configure") &&
            subject.isInGroup("gpuswitch"))
                return polkit.Result.YES;
});
RULE
sleep 2
allow granted-terminate-holders alice Switch sst "$SLOT" vfio 1
! kill -0 "$HOLDER" 2>/dev/null && all_on vfio-pci && result granted-holder-ended-vfio PASS \
        || result granted-holder-ended-vfio FAIL "holder $(holder_state) $(state)"
HOLDER=
allow granted-host alice Switch sst "$SLOT" host 0
cp $CONF /tmp/conf.before
allow granted-set-default alice SetDefaultMode ss "$SLOT" vfio
! cmp -s $CONF /tmp/conf.before && grep -qx "DefaultMode=vfio" $CONF && [ "$(prop DefaultMode)" = 's "vfio"' ] \
        && result granted-set-default-written PASS || result granted-set-default-written FAIL "$(cat $CONF)"
all_original && result end-on-host-drivers PASS || result end-on-host-drivers FAIL "$(state)"

kill $monitor
echo "---- the daemon's error replies"; grep -o 'ErrorName=[^ ]*' $MON | sort | uniq -c
finish
