#!/bin/bash
# The Quick Settings extension (applets/gnome-shell/) in Debian's real
# gnome-shell: headless, a virtual monitor, its own session bus, as an
# ordinary user (nobody), against bench/simulated-gpuswitchd (the daemon's
# vtables, polkit check, jobs and signals over the simulated kernel) on a
# private system bus with gpuswitch's bus policy and the real polkitd,
# whose answers the test sets with rules; the shell runs in a logind
# session as polkit sees one, so its own polkit agent asks for the user's
# password, checked by the real polkit-agent-helper-1 and PAM
# (desktop-session.sh: all of it in a mount namespace of the test's).  The
# menu and the password dialog are driven and read through
# org.gnome.Shell.Eval (--unsafe-mode); the Mode is read from the bus with
# busctl.  Screenshots of the open menu go to RESULTS.
#
#   test-gnome-shell.sh BUILD_DIR RESULTS_DIR
#
# Exit 77 (skipped) without gnome-shell, jq, polkitd or root.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: test-gnome-shell.sh BUILD_DIR RESULTS_DIR}" && pwd)
results=${2:?}
UUID=gpuswitch@gpuswitch.org
GPU=0000:01:00
USER_ID=65534 # nobody: the desktop's user
SIM=$build/bench/simulated-gpuswitchd
CTL=$build/client/gpuswitchctl

for t in gnome-shell gnome-extensions jq gjs dbus-daemon busctl setpriv unshare openssl; do
        command -v $t >/dev/null || { echo "SKIP: no $t"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (the daemon owns org.gpuswitch1, the desktop runs as nobody)"; exit 77; }
[ -x "$SIM" ] || { echo "SKIP: no $SIM (GPUSWITCH_BENCH=OFF)"; exit 77; }
for f in /usr/lib/polkit-1/polkitd /usr/lib/polkit-1/polkit-agent-helper-1 /usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf; do
        [ -e $f ] || { echo "SKIP: no $f (polkitd)"; exit 77; }
done
. "$here/desktop-session.sh"
desktop_session_enter "$here/$(basename "$0")" "$@"

mkdir -p "$results" && results=$(cd "$results" && pwd)
rm -f "$results"/*.png
dir=$(mktemp -d /tmp/gpuswitch-gnome-shell.XXXXXX)
chmod 755 "$dir"
pids=()
passed=0 failed=0
cleanup() {
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
        wait 2>/dev/null
        desktop_session_cleanup
        cp "$DESKTOP_POLKIT_LOG" "$results/polkitd.log" 2>/dev/null
        cp "$dir/shell.log" "$results/gnome-shell.log" 2>/dev/null
        cp "$dir/daemon.log" "$results/daemon.log" 2>/dev/null
        rm -rf "$dir"
}
trap cleanup EXIT
check() { # DESCRIPTION COMMAND...
        if "${@:2}"; then
                passed=$((passed + 1)); echo "ok: $1"
        else
                failed=$((failed + 1)); echo "FAILED: $1"
        fi
}
t0=$EPOCHREALTIME
elapsed() { echo $(( (${EPOCHREALTIME/./} - ${t0/./}) / 1000 )); }

# --- the system side: session, bus, polkit, daemon (root) ---
desktop_session_setup "$dir" $USER_ID || { echo "the desktop session could not be set up"; exit 1; }
. "$top/tests/lib/private-system-bus.sh"
# at the system bus's own address: polkit-agent-helper-1 is setuid
private_system_bus_conf /run/dbus/system_bus_socket \
        '        <include>/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf</include>' >"$dir/system.conf"
dbus-daemon --config-file="$dir/system.conf" --nofork --nopidfile --nosyslog >/dev/null 2>"$dir/system-bus.log" & pids+=($!)
for _ in $(seq 100); do [ -S /run/dbus/system_bus_socket ] && break; sleep 0.05; done
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket
has_owner() { busctl --system status "$1" >/dev/null 2>&1; }

desktop_session_rules org.gpuswitch1.switch=yes
desktop_session_polkitd || exit 1
pids+=($DESKTOP_POLKITD)

mkdir -p "$dir/sim" "$dir/state"
# SIM_COMMANDS: a file its simulated kernel reads commands from (add,
# remove: the GPU comes and goes)
start_daemon() { # [WRITE_DELAY_MS [FAIL_AT]]
        rm -rf "$dir"/sim/*
        GPUSWITCH_STATE_DIR=$dir/state GPUSWITCH_RUNTIME_DIR=$dir/state TMPDIR=$dir/sim GPUSWITCH_TEST_FAIL_AT=${2:-} \
                "$SIM" "${1:-20}" <"${SIM_COMMANDS:-/dev/null}" >/dev/null 2>>"$dir/daemon.log" & DAEMON=$!
        pids+=($DAEMON)
        for _ in $(seq 200); do has_owner org.gpuswitch1 && return 0; sleep 0.05; done
        return 1
}
start_daemon || { echo "simulated-gpuswitchd did not start"; cat "$dir/daemon.log"; exit 1; }
for _ in $(seq 200); do has_owner org.freedesktop.PolicyKit1 && break; sleep 0.05; done
stop_daemon() { kill $DAEMON; wait $DAEMON 2>/dev/null; }
bus_mode() {
        busctl --system get-property org.gpuswitch1 /org/gpuswitch1/gpu/${GPU//:/_} org.gpuswitch1.Gpu Mode 2>/dev/null |
                sed 's/^s "\(.*\)"$/\1/'
}

# --- the desktop: session bus and gnome-shell as nobody ---
home=$dir/home
ext_dir=$home/.local/share/gnome-shell/extensions/$UUID
mkdir -p "$home/runtime" "$(dirname "$ext_dir")"
shell_version=$(gnome-shell --version | grep -o '[0-9]*' | head -1)
flavour=esm
[ "$shell_version" -lt 45 ] && flavour=legacy
cp -r "$build/applets/gnome-shell/$flavour" "$ext_dir"
chown -R $USER_ID:$USER_ID "$home"
chmod 700 "$home/runtime"
user_env=(env -i PATH=/usr/bin:/bin HOME="$home" XDG_RUNTIME_DIR="$home/runtime"
        DBUS_SESSION_BUS_ADDRESS=unix:path=$home/runtime/bus DBUS_SYSTEM_BUS_ADDRESS="$DBUS_SYSTEM_BUS_ADDRESS"
        GSETTINGS_BACKEND=memory LIBGL_ALWAYS_SOFTWARE=1 XDG_SESSION_TYPE=wayland LANG=C.UTF-8 NO_AT_BRIDGE=1)
as_user=(setpriv --reuid=$USER_ID --regid=$USER_ID --clear-groups "${user_env[@]}")
as_user() { "${as_user[@]}" "$@"; }
# A session bus without service folders: nothing is activated (at-spi,
# the calendar server...), so that nothing outlives the test.
cat >"$dir/session.conf" <<EOC
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
        "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
        <type>session</type>
        <listen>unix:path=$home/runtime/bus</listen>
        <auth>EXTERNAL</auth>
        <policy context="default">
                <allow send_destination="*" eavesdrop="true"/>
                <allow eavesdrop="true"/>
                <allow own="*"/>
        </policy>
</busconfig>
EOC
(desktop_session_run "${as_user[@]}" dbus-daemon --config-file="$dir/session.conf" --nofork --nopidfile --nosyslog) \
        >/dev/null 2>"$dir/session-bus.log" & pids+=($!)
for _ in $(seq 100); do [ -S "$home/runtime/bus" ] && break; sleep 0.05; done
(desktop_session_run "${as_user[@]}" gnome-shell --headless --virtual-monitor 1024x768 --wayland --no-x11 --unsafe-mode) \
        >"$dir/shell.log" 2>&1 & pids+=($!)

# Eval: the JavaScript's value as JSON; fails when Eval fails.
js() {
        local out
        out=$(as_user busctl --address=unix:path=$home/runtime/bus --json=short call org.gnome.Shell /org/gnome/Shell \
                org.gnome.Shell Eval s "$1" 2>/dev/null) || return 1
        [ "$(jq -r '.data[0]' <<<"$out")" = true ] || { echo "Eval failed: $out" >&2; return 1; }
        jq -r '.data[1]' <<<"$out"
}
for _ in $(seq 300); do js '"up"' >/dev/null && break; sleep 0.1; done
js '"up"' >/dev/null || { echo "gnome-shell did not start:"; tail -30 "$dir/shell.log"; exit 1; }
echo "gnome-shell $(gnome-shell --version | cut -d' ' -f3) up after $(elapsed) ms, extension build: $flavour"

EXT="Main.extensionManager.lookup('$UUID')"
IND="$EXT.stateObj.indicator"
js "global.settings.set_strv('enabled-extensions', ['$UUID']); 'ok'" >/dev/null
enabled() { [ "$(js "$EXT ? $EXT.state : -1")" = 1 ]; }
for _ in $(seq 100); do enabled && break; sleep 0.1; done
check "the extension is enabled (state 1)" enabled
# the shell's own start-up notifications (no screen lock without GDM...)
# and the overview out of the pictures
clear_notifications() { js "Main.messageTray.getSources().forEach(s => s.destroy()); 'ok'" >/dev/null; }
clear_notifications
js "Main.overview.hide(); 'ok'" >/dev/null
js "$EXT.error || ''" | sed 's/^/extension error: /'

describe() { js "JSON.stringify($IND.describe())" | jq -r 'fromjson'; }
gpu_field() { describe | jq -r ".gpus[0].$1"; }
has_item() { describe | jq -e --arg t "$1" '.gpus[0].items | any(.text == $t)' >/dev/null; }
activate() { [ "$(js "$IND.activate('$GPU', '$1')")" = true ]; }
# within SECONDS CMD...: CMD succeeds before SECONDS have passed
# (WITHIN_AT: when the attempt that succeeded began)
within() {
        local deadline=$(( ${EPOCHREALTIME/./} + $(awk -v s="$1" 'BEGIN { print int(s * 1000000) }') ))
        shift
        while :; do
                WITHIN_AT=$EPOCHREALTIME
                "$@" && return 0
                [ "${EPOCHREALTIME/./}" -lt $deadline ] || return 1
                sleep 0.05
        done
}
mode_is() { [ "$(bus_mode)" = "$1" ]; }
gpus_shown() { [ "$(describe | jq '.gpus | length')" = "$1" ]; }
shown_mode_is() { describe | jq -e --arg m "$1" --arg t "Mode: $2" '.gpus[0] | .mode == $m and any(.items[]; .text == $t)' >/dev/null; }
not_running_shown() { [ "$(describe | jq -r '.notRunning')" = "GPU: gpuswitchd is not running" ] && gpus_shown 0; }
open_menu() {
        js "Main.panel.statusArea.quickSettings.menu.open(0); $IND.toggleOf('$GPU')?.menu.open(0); 'ok'" >/dev/null
}
shot() { # NAME: the open menu, as it is now
        open_menu
        sleep 0.5
        as_user gdbus call --session --dest org.gnome.Shell --object-path /org/gnome/Shell/Screenshot \
                --method org.gnome.Shell.Screenshot.Screenshot false false "$home/$1.png" >/dev/null &&
                cp "$home/$1.png" "$results/$1.png"
        check "screenshot $1.png" test -s "$results/$1.png"
}
notified() { js "JSON.stringify(Main.messageTray.getSources().flatMap(s => s.notifications).map(n => n.title + ' / ' + n.bannerBodyText))" |
        jq -r 'fromjson[]' | grep -qF "$1"; }
has_item_prefix() { describe | jq -e --arg t "$1" '.gpus[0].items | any((.text // "") | startswith($t))' >/dev/null; }
item_has() { # PREFIX TEXT...: an item starting with PREFIX has every TEXT
        describe | jq -e --arg p "$1" --args '.gpus[0].items | any((.text // "") as $t |
                ($t | startswith($p)) and all($ARGS.positional[]; . as $w | $t | contains($w)))' "${@:2}" >/dev/null
}
lacks_item() { ! has_item "$1"; }
# ACTION ANSWER: polkitd's rules were asked about ACTION for the desktop's
# user in its local, active session, and answered ANSWER (their polkit.log)
polkit_asked() {
        grep -qF "gpuswitch-test: $1 for nobody session $DESKTOP_SESSION local true active true: $2" "$DESKTOP_POLKIT_LOG"
}

# 1. The menu appears and shows host.
check "one GPU item, no 'not running'" within 5 gpus_shown 1
check "the item shows host" shown_mode_is host Host
check "the toggle reads 'GPU: Host', unchecked" \
        test "$(describe | jq -r '.gpus[0] | "\(.label) \(.checked)"')" = "GPU: Host false"
check "the menu offers vfio" has_item "Give to virtual machines (vfio-pci)"
shot 01-host

# 2. Choosing vfio switches; the menu follows.
check "vfio chosen from the menu" activate "Give to virtual machines (vfio-pci)"
check "Mode becomes vfio on the bus" within 10 mode_is vfio
check "the menu shows vfio" within 2 shown_mode_is vfio "VFIO (virtual machines)"
check "the toggle is checked" test "$(gpu_field checked)" = true
check "polkitd was asked for switch (nobody, in the local active session)" polkit_asked org.gpuswitch1.switch yes
check "the outcome: switched" within 2 has_item "Switched to VFIO (virtual machines)"
shot 02-vfio

# 3. Not authorized: a notification, nothing switched.
desktop_session_rules org.gpuswitch1.switch=no
check "host chosen from the menu" activate "Use on the host"
check "the menu says not authorized" within 5 has_item "Not authorized"
check "a notification says not authorized" within 2 notified "Not authorized"
check "polkitd's rules said no" polkit_asked org.gpuswitch1.switch no
check "the GPU stayed on vfio" mode_is vfio
shot 03-not-authorized
clear_notifications

# 3b. The rules want the user's password: gnome-shell's own polkit agent
# asks for it, the real polkit-agent-helper-1 checks it with PAM.  A wrong
# one is refused and asked again, Cancel is "not authorized", the right
# one switches.
DLG='Main.componentManager._allComponents.polkitAgent?._currentDialog'
# the dialog as JSON: null when there is none
dialog() {
        js "(d => d ? JSON.stringify({open: d.state === imports.ui.modalDialog.State.OPENED,
                message: d.message, user: d._identityToAuth.get_name(),
                asking: d._passwordEntry.visible && d._passwordEntry.reactive,
                error: d._errorMessageLabel.visible ? d._errorMessageLabel.text : ''}) : 'null')($DLG)" | jq -c 'fromjson'
}
dialog_is() { dialog | jq -e "$1" >/dev/null; }  # JQ_CONDITION
asks_password() { dialog_is '.open and .asking'; }
type_password() { # PASSWORD: typed into the entry, then Enter
        js "(d => { d._passwordEntry.set_text('$1'); d._passwordEntry.clutter_text.activate(); return 'ok'; })($DLG)" >/dev/null
}
dialog_shot() { # NAME: the screen, dialog and all
        as_user gdbus call --session --dest org.gnome.Shell --object-path /org/gnome/Shell/Screenshot \
                --method org.gnome.Shell.Screenshot.Screenshot false false "$home/$1.png" >/dev/null &&
                cp "$home/$1.png" "$results/$1.png"
        check "screenshot $1.png" test -s "$results/$1.png"
}
check "gnome-shell registered its polkit agent for session $DESKTOP_SESSION" \
        grep -q "Registered Authentication Agent for unix-session:$DESKTOP_SESSION " "$DESKTOP_POLKIT_LOG"
desktop_session_rules org.gpuswitch1.switch=auth_self
check "host chosen from the menu (password wanted)" activate "Use on the host"
check "gnome-shell's polkit dialog asks for a password" within 10 asks_password
check "... to move the GPU to host, as nobody" \
        dialog_is '.message == "Authentication is required to move the GPU 0000:01:00 to host." and .user == "nobody"'
check "polkitd's rules wanted the user's password" polkit_asked org.gpuswitch1.switch auth_self
dialog_shot 03b-password
type_password wrong-password
check "a wrong password: the dialog says so" within 10 dialog_is '.open and (.error | startswith("Sorry, that didn"))'
check "... and asks again" within 5 asks_password
check "... the GPU stayed on vfio" mode_is vfio
dialog_shot 03c-wrong-password
js "$DLG._cancelButton.emit('clicked', 1); 'ok'" >/dev/null
check "Cancel: the dialog closes" within 5 dialog_is '. == null'
check "the menu says not authorized" within 5 has_item "Not authorized"
check "a notification says not authorized" within 2 notified "Not authorized"
check "... because the authentication was dismissed (polkit.dismissed)" \
        notified "the authentication for org.gpuswitch1.switch was dismissed"
js "JSON.stringify(Main.messageTray.getSources().flatMap(s => s.notifications).map(n => n.title + ' / ' + n.bannerBodyText))" |
        jq -r 'fromjson[] | "the notification: \(.)"'
check "the GPU stayed on vfio" mode_is vfio
clear_notifications
check "host chosen again" activate "Use on the host"
check "the dialog asks again" within 10 asks_password
type_password "$DESKTOP_PASSWORD"
check "the right password: the dialog closes" within 10 dialog_is '. == null'
check "Mode becomes host on the bus" within 10 mode_is host
check "the outcome: switched" within 2 has_item "Switched to Host"
check "polkitd: nobody authenticated for switch" \
        grep -q "Operator of unix-session:$DESKTOP_SESSION successfully authenticated as unix-user:nobody to gain ONE-SHOT authorization for action org.gpuswitch1.switch" "$DESKTOP_POLKIT_LOG"
check "no notification of a failure" test "$(js "String(Main.messageTray.getSources().flatMap(s => s.notifications).length)")" = '"0"'
# back as section 3 left it for 4: on vfio, the menu's last outcome "not authorized"
"$CTL" -q vfio || echo "gpuswitchctl vfio failed"
desktop_session_rules org.gpuswitch1.switch=no
activate "Use on the host" && within 5 has_item "Not authorized" || echo "3b: 'Not authorized' not shown again"
clear_notifications
desktop_session_rules org.gpuswitch1.switch=yes

# 4. A switch made with gpuswitchctl shows within a second.
"$CTL" -q host || echo "gpuswitchctl host failed"
t=$EPOCHREALTIME
check "gpuswitchctl host: the menu shows host within a second" within 1 shown_mode_is host Host
echo "the menu showed gpuswitchctl's switch when read $(( (${WITHIN_AT/./} - ${t/./}) / 1000 )) ms after it returned (that read ended at $(( (${EPOCHREALTIME/./} - ${t/./}) / 1000 )) ms)"
check "the last outcome from the menu is gone" lacks_item "Not authorized"
shot 04-switched-elsewhere

# 5. Holders: the simulated kernel's VGA function gets a DRM node whose
# device number is that of a pseudo-terminal of the test's own, which
# script(1) and its sleep (nobody's) hold open: the daemon's holder scan of
# this machine's /proc finds them, and no other process has that node open.
setpriv --reuid=$USER_ID --regid=$USER_ID --clear-groups script -q -c 'exec sleep 300' /dev/null \
        </dev/null >/dev/null 2>&1 & SCRIPT=$!
pids+=($SCRIPT)
for _ in $(seq 100); do HOLDER=$(pgrep -P $SCRIPT -x sleep) && break; sleep 0.05; done
pts=$(readlink "/proc/$HOLDER/fd/0")
fake=$(echo "$dir"/sim/gpuswitch-test-*)
node_dir=$fake/devices/pci0000:00/0000:01:00.0/drm/card0
mkdir -p "$node_dir" && printf '%d:%d\n' 0x$(stat -c %t "$pts") 0x$(stat -c %T "$pts") >"$node_dir/dev"
echo "holders: script $SCRIPT and sleep $HOLDER, on $pts ($(cat "$node_dir/dev"))"
check "vfio chosen with a holder" activate "Give to virtual machines (vfio-pci)"
check "the menu lists the holders with their user" \
        within 5 has_item "sleep (PID $HOLDER, nobody) holds card0"
check "... both" has_item "script (PID $SCRIPT, nobody) holds card0"
check "the menu offers 'End them and switch'" has_item "End them and switch"
check "the GPU stayed on host" mode_is host
shot 05-holder
desktop_session_rules org.gpuswitch1.switch=yes org.gpuswitch1.terminate-holders=yes
check "'End them and switch' chosen" activate "End them and switch"
check "Mode becomes vfio on the bus" within 10 mode_is vfio
check "the holders were ended" within 5 sh -c "! kill -0 $HOLDER 2>/dev/null && ! kill -0 $SCRIPT 2>/dev/null"
check "polkit was asked for terminate-holders" polkit_asked org.gpuswitch1.terminate-holders yes
check "the menu shows vfio" within 2 shown_mode_is vfio "VFIO (virtual machines)"
check "no holder listed any more" lacks_item "End them and switch"
shot 06-ended-and-switched
# on vfio, the menu says who uses the GPU when it opens (a VM's QEMU, here
# a sleep of nobody's on the same node)
setpriv --reuid=$USER_ID --regid=$USER_ID --clear-groups script -q -c 'exec sleep 300' /dev/null \
        </dev/null >/dev/null 2>&1 & SCRIPT=$!
pids+=($SCRIPT)
for _ in $(seq 100); do USER_PID=$(pgrep -P $SCRIPT -x sleep) && break; sleep 0.05; done
pts=$(readlink "/proc/$USER_PID/fd/0")
printf '%d:%d\n' 0x$(stat -c %t "$pts") 0x$(stat -c %T "$pts") >"$node_dir/dev"
js "Main.panel.statusArea.quickSettings.menu.close(0); 'ok'" >/dev/null
open_menu
check "on vfio the menu says who uses the GPU" \
        within 5 item_has "Used by: " "script (PID $SCRIPT, nobody)" "sleep (PID $USER_PID, nobody)"
shot 06b-used-by
# another user's process (root's) on the node: polkit does not let nobody
# switch without a password now, so ListHolders hides it from nobody and
# the menu says how many such processes there are, naming none.  (Not
# terminate-holders either: the policy says it implies switch.)
sleep 300 <"$pts" & ROOT_HOLDER=$!
pids+=($ROOT_HOLDER)
desktop_session_rules org.gpuswitch1.switch=auth_self org.gpuswitch1.terminate-holders=auth_self
others_counted() {
        js "Main.panel.statusArea.quickSettings.menu.close(0); 'ok'" >/dev/null
        open_menu
        sleep 0.3
        item_has "Used by: " "script (PID $SCRIPT, nobody)" "sleep (PID $USER_PID, nobody)" "1 process of another user" &&
                ! describe | grep -q "PID $ROOT_HOLDER"
}
check "root's process is counted, not named" within 5 others_counted
check "polkitd was asked without a password dialog (none open)" test "$(dialog)" = null
shot 06c-used-by-others
kill $ROOT_HOLDER
desktop_session_rules org.gpuswitch1.switch=yes org.gpuswitch1.terminate-holders=yes
# the VM holding it (VirtualMachine): the process with the function's VFIO
# group open, here the same script and sleep (the daemon names a process
# that is no QEMU by its command)
group=$(basename "$(readlink "$fake/bus/pci/devices/0000:01:00.0/iommu_group")")
mkdir -p "$fake/class/vfio/$group" && cp "$node_dir/dev" "$fake/class/vfio/$group/dev"
# (a node is one device number: card0 takes one nothing has open)
echo 511:511 >"$node_dir/dev"
# the daemon looks for it at the next step of its backoff (up to a minute
# apart), and takes it from any ListHolders scan meanwhile, as
# gpuswitchctl's asks for
"$CTL" -q holders >/dev/null
vm_named() { has_item "Held by the VM sleep" || has_item "Held by the VM script"; }
check "on vfio the menu names the VM holding the VFIO group" within 5 vm_named
shot 06d-held-by-vm
kill $SCRIPT $USER_PID 2>/dev/null
no_vm_named() { ! vm_named; }
check "the VM gone: the menu names none" within 15 no_vm_named

# 6. The daemon stops: "not running"; it starts again: back.
stop_daemon
check "daemon stopped: the menu says gpuswitchd is not running" within 3 not_running_shown
shot 07-not-running
start_daemon || echo "simulated-gpuswitchd did not start again"
check "daemon started again: the GPU is back, on host" within 5 shown_mode_is host Host
check "no 'not running' any more" test "$(describe | jq -r '.notRunning')" = null
shot 08-back

# 7. A switch under way shows its step without blocking the shell; one that
# fails is rolled back, and says so.  The daemon again, each kernel write
# taking a second.
stop_daemon
start_daemon 1000 || echo "simulated-gpuswitchd did not start again"
check "the slow daemon's GPU is shown" within 5 shown_mode_is host Host
check "vfio chosen (slow kernel)" activate "Give to virtual machines (vfio-pci)"
check "the menu shows the step under way" within 3 has_item_prefix "Step: 0000:01:00"
check "the toggle is insensitive while switching" test "$(gpu_field reactive)" = false
check "the shell answers meanwhile" test "$(js '1 + 1')" = 2
shot 09-switching
check "the switch ends on vfio" within 20 mode_is vfio
check "the menu shows vfio" within 2 shown_mode_is vfio "VFIO (virtual machines)"
stop_daemon
start_daemon 20 0000:01:00.1/probe || echo "simulated-gpuswitchd did not start again"
check "the failing daemon's GPU is shown" within 5 shown_mode_is host Host
check "vfio chosen (the probe of 01:00.1 fails)" activate "Give to virtual machines (vfio-pci)"
check "the menu says rolled back" within 10 has_item_prefix "Failed, rolled back: "
check "a notification says so" within 2 notified "Failed, rolled back"
check "the GPU is back on host" mode_is host
shot 10-rolled-back

# 8. A step that outlasts StepTimeoutSec=: the reply is Timeout, naming
# the step; the switch goes on in the daemon, and the menu tells its end.
clear_notifications
printf '[Daemon]\nGpus=%s\nStepTimeoutSec=1\n\n[Gpu %s]\nDefaultMode=keep\n' $GPU $GPU >"$dir/timeout.conf"
stop_daemon
GPUSWITCH_TEST_CONFIG=$dir/timeout.conf start_daemon 2000 || echo "simulated-gpuswitchd did not start again"
check "the timing-out daemon's GPU is shown" within 5 shown_mode_is host Host
check "vfio chosen (each kernel write takes 2 s, a step may take 1 s)" activate "Give to virtual machines (vfio-pci)"
check "the menu says timed out, naming the function and the step" \
        within 5 item_has "Timed out: " "$GPU" "has not finished after 1 s"
check "a notification says so" within 2 notified "Timed out: "
check "the step under way is still shown" has_item_prefix "Step: $GPU"
check "the shell answers meanwhile" test "$(js '1 + 1')" = 2
shot 11-timed-out
check "the switch goes on and ends on vfio" within 40 mode_is vfio
check "the menu tells how the switch that timed out ended" \
        within 2 has_item "Switched to VFIO (virtual machines) after the time-out"
clear_notifications

# 9. No GPU managed (Gpus= names a slot this machine lacks): nothing shown,
# neither an item nor "not running" nor the panel icon.
printf '[Daemon]\nGpus=0000:0a:00\n' >"$dir/no-gpu.conf"
stop_daemon
GPUSWITCH_TEST_CONFIG=$dir/no-gpu.conf start_daemon || echo "simulated-gpuswitchd did not start again"
check "no GPU managed: no item" within 5 gpus_shown 0
check "... and no 'not running'" test "$(describe | jq -r '.notRunning')" = null
check "... and no panel icon" test "$(describe | jq -r '.icon')" = false
shot 12-no-gpu

# 10. GPUs appearing and going while the daemon runs (plugged in, removed,
# a rescan): the simulated kernel's slot is empty at start, then the GPU
# is added, removed and added again, each with the kernel's uevents.
mkfifo "$dir/sim-commands"
exec 7<>"$dir/sim-commands"
stop_daemon
GPUSWITCH_TEST_SLOT_ABSENT=1 SIM_COMMANDS=$dir/sim-commands start_daemon ||
        echo "simulated-gpuswitchd did not start again"
running_without_gpu() { [ "$(describe | jq -c '[(.gpus | length), .notRunning]')" = '[0,null]' ]; }
check "the slot empty: no item, no 'not running'" within 5 running_without_gpu
echo add >&7
t=$EPOCHREALTIME
check "the GPU appears: its item shows host within a second" within 1 shown_mode_is host Host
echo "the menu showed the GPU $(( (${WITHIN_AT/./} - ${t/./}) / 1000 )) ms after the add"
shot 13-appeared
check "vfio chosen on the GPU that appeared" activate "Give to virtual machines (vfio-pci)"
check "Mode becomes vfio on the bus" within 10 mode_is vfio
check "the menu shows vfio" within 2 shown_mode_is vfio "VFIO (virtual machines)"
echo remove >&7
check "the GPU goes: its item is gone within a second, no 'not running'" within 1 running_without_gpu
check "... and no panel icon" test "$(describe | jq -r '.icon')" = false
shot 14-gone
echo add >&7
check "the GPU back (on its host drivers, as the kernel probes them)" within 1 shown_mode_is host Host
exec 7>&-

# 11. No JavaScript error from the extension in the shell's journal.
js "$EXT.error || ''" >"$dir/ext-error"
check "the extension has no error" test "$(cat "$dir/ext-error")" = '""'
check "no JS error or warning naming the extension in the shell's log" \
        sh -c "! grep -n -e '$UUID' -e 'gpuswitch' '$dir/shell.log'"
grep -n -B2 -A8 -e "$UUID" -e gpuswitch "$dir/shell.log" | head -40

echo "test-gnome-shell: $passed passed, $failed failed, $(elapsed) ms; screenshots in $results"
[ $failed = 0 ]
