# shellcheck shell=bash
# A desktop session for test-gnome-shell.sh as logind and polkit see one,
# with nothing of this machine's changed: the test runs in a mount
# namespace of its own where
# - /run/dbus and /run/systemd are tmpfs: the private system bus listens
#   at the standard address (the setuid polkit-agent-helper-1 ignores
#   DBUS_SYSTEM_BUS_ADDRESS), and /run/systemd/{sessions,users,seats}
#   hold one local, active session on seat0 of the desktop's user in the
#   files and keys logind writes (what sd-login, so polkitd and the
#   shell's polkit agent, reads);
# - the real polkitd runs with gpuswitch's actions and the test's rules
#   (/usr/share/polkit-1/actions and /etc/polkit-1/rules.d are test
#   folders), the rules rewritten to change polkit's answers;
# - /etc/shadow is a copy in which the desktop's user has a password, for
#   the real polkit-agent-helper-1 and PAM to check;
# and the session's processes sit in a session scope cgroup, where
# sd_pid_get_session() finds them: the one cgroup change outside the
# namespace, removed at the end.  Sourced; needs $top, the source tree.
#
#   desktop_session_enter "$0" "$@"      first: re-runs the script inside its namespace
#   desktop_session_setup DIR UID        the mounts, logind's state, the cgroup
#   desktop_session_polkitd              polkitd, on the bus (DESKTOP_POLKITD: its PID)
#   desktop_session_rules ACTION=ANSWER...   polkit's answers (yes, no, auth_self,
#                                        auth_admin), reloaded before it returns
#   desktop_session_run CMD...           CMD in the session (exec)
#   desktop_session_cleanup              ends what is left in the session, removes the cgroup
#
# DESKTOP_PASSWORD is the user's password; DESKTOP_SESSION the session's
# id; DESKTOP_POLKIT_LOG polkitd's output (with the rules' polkit.log()).

DESKTOP_SESSION=c1
DESKTOP_PASSWORD=gpuswitch-test-password

desktop_session_enter() { # SCRIPT ARGS...
        [ "${GPUSWITCH_DESKTOP_NAMESPACE:-}" = $$ ] && return 0
        unshare --mount --propagation private true 2>/dev/null ||
                { echo "SKIP: no mount namespace (unshare --mount fails)"; exit 77; }
        # the namespace's first process is this script again: $$ marks it
        exec unshare --mount --propagation private \
                bash -c 'export GPUSWITCH_DESKTOP_NAMESPACE=$$; exec "$@"' bash "$@"
}

# The hierarchy sd-login reads a process's unit from (systemd's
# cg_pid_get_path for its own controller): cgroup2 mounted on
# /sys/fs/cgroup (unified), else cgroup2 on /sys/fs/cgroup/unified
# (hybrid), else the v1 name=systemd hierarchy (legacy).
desktop_cgroup_root() {
        local t
        for t in /sys/fs/cgroup /sys/fs/cgroup/unified; do
                [ "$(stat -f -c %T "$t" 2>/dev/null)" = cgroup2fs ] && { echo "$t"; return 0; }
        done
        [ "$(stat -f -c %T /sys/fs/cgroup/systemd 2>/dev/null)" = cgroupfs ] && { echo /sys/fs/cgroup/systemd; return 0; }
        return 1
}

# desktop_tmpfs DIR: an empty tmpfs over DIR, in the namespace
desktop_tmpfs() {
        mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$1"
}

desktop_session_setup() { # DIR UID
        local dir=$1 uid=$2 user now_us mono_us
        [ "${GPUSWITCH_DESKTOP_NAMESPACE:-}" = $$ ] || { echo "desktop_session_setup: not in the test's namespace" >&2; return 1; }
        user=$(getent passwd "$uid" | cut -d: -f1)
        DESKTOP_DIR=$dir/desktop
        mkdir -p "$DESKTOP_DIR"
        # /run/dbus and /run/systemd exist on Debian with dbus and systemd
        # installed; else a tmpfs over all of /run holds them
        if [ ! -d /run/dbus ] || [ ! -d /run/systemd ]; then
                desktop_tmpfs /run || return 1
                mkdir -p /run/dbus /run/systemd
        fi
        desktop_tmpfs /run/dbus && desktop_tmpfs /run/systemd || return 1
        mkdir -p /run/systemd/sessions /run/systemd/users /run/systemd/seats /run/systemd/machines

        # polkit: gpuswitch's actions as installed, the test's rules
        mkdir -p "$DESKTOP_DIR/actions" "$DESKTOP_DIR/rules.d"
        cp "$top/polkit/org.gpuswitch1.policy" "$DESKTOP_DIR/actions/"
        chown polkitd:root "$DESKTOP_DIR/rules.d" 2>/dev/null
        chmod 700 "$DESKTOP_DIR/rules.d"
        mount --bind "$DESKTOP_DIR/actions" /usr/share/polkit-1/actions &&
                mount --bind "$DESKTOP_DIR/rules.d" /etc/polkit-1/rules.d || return 1
        DESKTOP_RULES=$DESKTOP_DIR/rules.d/50-gpuswitch-test.rules
        DESKTOP_POLKIT_LOG=$DESKTOP_DIR/polkitd.log
        # no syslog from polkitd or PAM to this machine's
        [ -e /dev/log ] && mount --bind /dev/null /dev/log

        # the user's password, for PAM (pam_unix reads /etc/shadow)
        cp -p /etc/shadow "$DESKTOP_DIR/shadow"
        local hash
        hash=$(openssl passwd -6 "$DESKTOP_PASSWORD") || return 1
        awk -F: -v OFS=: -v u="$user" -v h="$hash" '$1 == u { $2 = h } { print }' /etc/shadow >"$DESKTOP_DIR/shadow"
        grep -q "^$user:\\\$6\\$" "$DESKTOP_DIR/shadow" || { echo "desktop_session_setup: $user not in /etc/shadow" >&2; return 1; }
        mount --bind "$DESKTOP_DIR/shadow" /etc/shadow || return 1

        # logind's state: one session, local (seat0), active, graphical
        now_us=${EPOCHREALTIME/./}
        mono_us=$(awk '{ printf "%d", $1 * 1000000 }' /proc/uptime)
        cat >"/run/systemd/sessions/$DESKTOP_SESSION" <<EOF
# This is private data. Do not parse.
UID=$uid
USER=$user
ACTIVE=1
IS_DISPLAY=1
STATE=active
REMOTE=0
TYPE=wayland
ORIGINAL_TYPE=wayland
CLASS=user
SCOPE=session-$DESKTOP_SESSION.scope
SEAT=seat0
SERVICE=gpuswitch-test
DESKTOP=GNOME
POSITION=0
REALTIME=$now_us
MONOTONIC=$mono_us
EOF
        cat >"/run/systemd/users/$uid" <<EOF
# This is private data. Do not parse.
NAME=$user
STATE=active
STOPPING=no
RUNTIME=/run/user/$uid
SLICE=user-$uid.slice
DISPLAY=$DESKTOP_SESSION
REALTIME=$now_us
MONOTONIC=$mono_us
SESSIONS=$DESKTOP_SESSION
SEATS=seat0
ACTIVE_SESSIONS=$DESKTOP_SESSION
ONLINE_SESSIONS=$DESKTOP_SESSION
ACTIVE_SEATS=seat0
ONLINE_SEATS=seat0
EOF
        cat >/run/systemd/seats/seat0 <<EOF
# This is private data. Do not parse.
IS_SEAT0=1
CAN_MULTI_SESSION=1
CAN_TTY=0
CAN_GRAPHICAL=1
ACTIVE=$DESKTOP_SESSION
ACTIVE_UID=$uid
SESSIONS=$DESKTOP_SESSION
UIDS=$uid
EOF
        # the session's scope, under a slice of this run's (slices are
        # skipped when the unit is looked for): user-UID.slice gives the
        # owner, session-ID.scope the session
        local root
        root=$(desktop_cgroup_root) || { echo "desktop_session_setup: no cgroup hierarchy for sd-login" >&2; return 1; }
        # those of runs that were killed, if empty
        local stale pid
        for stale in "$root"/gpuswitch_test_*.slice; do
                pid=${stale##*_test_}
                if [ -d "$stale" ] && ! kill -0 "${pid%.slice}" 2>/dev/null; then
                        find "$stale" -depth -type d -exec rmdir {} + 2>/dev/null
                fi
        done
        DESKTOP_CGROUP_TOP=$root/gpuswitch_test_$$.slice
        DESKTOP_CGROUP=$DESKTOP_CGROUP_TOP/user-$uid.slice/session-$DESKTOP_SESSION.scope
        mkdir -p "$DESKTOP_CGROUP" || return 1
}

desktop_session_run() { # CMD...: exec'd in the session's cgroup
        echo $BASHPID >"$DESKTOP_CGROUP/cgroup.procs" || return 1
        exec "$@"
}

desktop_polkit_reloads() { grep -c 'Finished loading, compiling and executing' "$DESKTOP_POLKIT_LOG" 2>/dev/null; }

desktop_session_polkitd() {
        [ -e "$DESKTOP_RULES" ] || desktop_session_rules ""
        # without --no-debug: its log (and the rules' polkit.log()) on stdout
        /usr/lib/polkit-1/polkitd >"$DESKTOP_POLKIT_LOG" 2>&1 & DESKTOP_POLKITD=$!
        local _
        for _ in $(seq 200); do
                busctl --system status org.freedesktop.PolicyKit1 >/dev/null 2>&1 && return 0
                kill -0 $DESKTOP_POLKITD 2>/dev/null || break
                sleep 0.05
        done
        echo "polkitd did not start:" >&2
        cat "$DESKTOP_POLKIT_LOG" >&2
        return 1
}

# desktop_session_rules [ACTION=ANSWER...]: the rules for gpuswitch's
# actions (any other of them: no); each question is logged as
# "gpuswitch-test: ACTION for USER session SESSION local LOCAL active ACTIVE: ANSWER".
# Waits for polkitd to have loaded them when it runs.
desktop_session_rules() {
        local table="" kv answer before _
        for kv in "$@"; do
                [ -n "$kv" ] || continue
                answer=${kv#*=}
                table+="        \"${kv%%=*}\": polkit.Result.${answer^^},"$'\n'
        done
        before=$(desktop_polkit_reloads)
        cat >"$DESKTOP_RULES.tmp" <<EOF
// test-gnome-shell.sh's answers for gpuswitch's actions
polkit.addRule(function(action, subject) {
    if (action.id.indexOf("org.gpuswitch1.") != 0)
        return polkit.Result.NOT_HANDLED;
    var answers = {
$table    };
    var answer = answers[action.id] || polkit.Result.NO;
    polkit.log("gpuswitch-test: " + action.id + " for " + subject.user + " session " + subject.session +
               " local " + subject.local + " active " + subject.active + ": " + answer);
    return answer;
});
EOF
        mv "$DESKTOP_RULES.tmp" "$DESKTOP_RULES"
        [ -n "${DESKTOP_POLKITD:-}" ] || return 0
        for _ in $(seq 100); do
                [ "$(desktop_polkit_reloads)" -gt "$before" ] && return 0
                sleep 0.05
        done
        echo "polkitd did not reload its rules" >&2
        return 1
}

desktop_session_cleanup() {
        local p _ cg
        [ -n "${DESKTOP_CGROUP:-}" ] && [ -d "$DESKTOP_CGROUP" ] || return 0
        # what the session started and is still there (a helper, ...)
        while read -r p; do
                kill "$p" 2>/dev/null
        done <"$DESKTOP_CGROUP/cgroup.procs"
        for cg in "$DESKTOP_CGROUP" "$(dirname "$DESKTOP_CGROUP")" "$DESKTOP_CGROUP_TOP"; do
                for _ in $(seq 100); do
                        rmdir "$cg" 2>/dev/null && break
                        sleep 0.05
                done
                [ -d "$cg" ] && echo "desktop_session_cleanup: $cg left behind" >&2
        done
}
