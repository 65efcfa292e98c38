#!/bin/bash
# Stage 2, PID 1 in the guest, on the build machine's userspace (overlay):
# load the drivers of the emulated GPU, install the staged gpuswitch, start
# dbus-daemon and polkitd, make test users, then run the boot's test
# scripts one after another, the guest put back as it was before each
# (guest-reset.py), and power off.
. "$(dirname "$0")/testvm-guard.sh"
testvm_guard guest-init.sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C.UTF-8
# the serial console is a terminal: no pagers waiting for a key
export SYSTEMD_PAGER=cat PAGER=cat SYSTEMD_COLORS=0
for a in $(cat /proc/cmdline); do
        case "$a" in
        vmtest.stage=*) STAGE=${a#*=} ;;
        vmtest.plan=*) PLAN=${a#*=} ;;
        vmtest.script-timeout=*) SCRIPT_TIMEOUT=${a#*=} ;;
        vmtest.vfiocheck=*) export VFIOCHECK=${a#*=} ;;
        vmtest.testmod=*) export VMTEST_TESTMOD=${a#*=} ;;
        vmtest.plain-stage=*) export VMTEST_PLAIN_STAGE=${a#*=} ;;
        vmtest.deb=*) export VMTEST_DEB=${a#*=} ;;
        vmtest.sanitize=1) export VMTEST_SANITIZE=1 ;;
        esac
done
# Under systemd (systemd.run=) our output would go through the journal with
# a prefix on each line: straight to the console, as without it.
[ -d /run/systemd/system ] && exec >/dev/console 2>&1
up() { cut -d' ' -f1 /proc/uptime; }
echo "VMTEST: stage 2 at $(up)s, kernel $(uname -r)"
mkdir -p /dev/pts /dev/shm
mountpoint -q /dev/pts || mount -t devpts devpts /dev/pts
mountpoint -q /dev/shm || mount -t tmpfs tmpfs /dev/shm
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
hostname gpuswitch-vm

# The drivers of the "GPU" and the NIC, as udev would load them.  vfio-pci
# is left to the daemon, which must load it itself.
for m in bochs snd_hda_intel snd_hda_codec_generic xhci_pci e1000e; do
        modprobe "$m" || echo "VMTEST: modprobe $m failed"
done
[ -n "$VMTEST_TESTMOD" ] && { insmod "$VMTEST_TESTMOD" || echo "VMTEST: insmod $VMTEST_TESTMOD failed"; }
sleep 0.3   # the HDA codec probes asynchronously

# gpuswitch's state folder is the guest's own.  The root's lower layer is
# the host's root, whose /var/lib/gpuswitch (switch records a daemon here
# would "recover") would show through, and change under the guest while
# host-side tests run.  A folder removed and made again in the overlay is
# opaque, hiding the lower one's files; one the host does not have is
# marked opaque in the upper layer, so that one it makes later stays
# hidden too.  The host's /etc/gpuswitch, if any, is removed: the scripts
# begin without a config.
rm -rf /var/lib/gpuswitch && mkdir -p /var/lib/gpuswitch &&
        python3 -c 'import os, sys; os.setxattr(sys.argv[1], "trusted.overlay.opaque", b"y")' \
                /run/vmtest/rw/upper/var/lib/gpuswitch || echo "VMTEST: making /var/lib/gpuswitch the guest's own failed"
rm -rf /etc/gpuswitch

# gpuswitch as `cmake --install` puts it; --keep-directory-symlink because
# /lib is a link to usr/lib here, --no-overwrite-dir so that the stage's own
# directories (a mktemp -d stage is mode 0700) do not change those of / or
# /usr: with / at 0700 no user could run anything.
if [ -n "$STAGE" ] && [ -d "$STAGE" ]; then
        tar -C "$STAGE" -cf - . | tar -C / -xf - --keep-directory-symlink --no-overwrite-dir --no-same-owner
fi

# A sanitized build (run-vm-test.sh saw libasan): every report goes to a
# file in $VMTEST_SANDIR and aborts; guest-lib.sh's finish fails the script
# on any.  The scripts inherit the options from here; the bus-activated
# daemon gets them on its command line, and under systemd from a drop-in
# that relaxes the hardened unit for this pass only: LeakSanitizer stops
# the daemon's threads with ptrace (@debug), the reports need a writable
# folder.
if [ "${VMTEST_SANITIZE:-0}" = 1 ]; then
        export VMTEST_SANDIR=/run/gpuswitch-sanitizer
        mkdir -p -m 1777 "$VMTEST_SANDIR"
        export ASAN_OPTIONS="log_path=$VMTEST_SANDIR/report:log_exe_name=1:abort_on_error=1:detect_leaks=1"
        export UBSAN_OPTIONS="log_path=$VMTEST_SANDIR/report:log_exe_name=1:abort_on_error=1:halt_on_error=1:print_stacktrace=1"
        # dbus-daemon's activation helper clears the environment: the options
        # go on the activated command line.
        sed -i "s|^Exec=|Exec=/usr/bin/env ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS |" \
                /usr/share/dbus-1/system-services/org.gpuswitch1.service
        if [ -d /run/systemd/system ]; then
                mkdir -p /run/systemd/system/gpuswitchd.service.d
                printf '[Service]\nEnvironment="ASAN_OPTIONS=%s" "UBSAN_OPTIONS=%s"\nReadWritePaths=%s\nSystemCallFilter=ptrace\n' \
                        "$ASAN_OPTIONS" "$UBSAN_OPTIONS" "$VMTEST_SANDIR" > /run/systemd/system/gpuswitchd.service.d/sanitizer.conf
        fi
        echo "VMTEST: sanitized build, reports in $VMTEST_SANDIR"
fi

if [ -d /run/systemd/system ]; then
        # systemd is PID 1 (a "# vmtest: systemd" script): the bus and
        # polkit as its units, gpuswitchd's unit known to it.
        systemctl daemon-reload
        systemctl start dbus.service polkit.service || echo "VMTEST: starting dbus and polkit failed"
else
        mkdir -p /run/dbus
        dbus-daemon --system --fork || echo "VMTEST: dbus-daemon failed"
        for i in $(seq 100); do [ -S /run/dbus/system_bus_socket ] && break; sleep 0.05; done
        /usr/lib/polkit-1/polkitd --no-debug >/run/vmtest/polkitd.log 2>&1 &
fi
has_owner() {
        dbus-send --system --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.NameHasOwner \
                "string:$1" 2>/dev/null | grep -q 'boolean true'
}
# at most ~15 s: a dbus-send costs a few tenths of a second under TCG
for i in $(seq 40); do has_owner org.freedesktop.PolicyKit1 && break; sleep 0.1; done
has_owner org.freedesktop.PolicyKit1 || { echo "VMTEST: polkitd did not start:"; cat /run/vmtest/polkitd.log; }
groupadd -f gpuswitch
useradd -M -u 1001 -s /bin/bash alice
useradd -M -u 1002 -s /bin/bash bob
echo "VMTEST: ready at $(up)s"


# The scripts, each from the state recorded here.  A script ends with
# finish (guest-lib.sh), which leaves the file $VMTEST_FINISHED; one that
# does not, or runs past its time, fails.  When the guest cannot be put back
# the boot ends here: the host boots a fresh guest for the scripts left.
reset() { /usr/bin/python3 "$(dirname "$0")/guest-reset.py" "$1"; }
export VMTEST_FINISHED=/run/vmtest/finished
mapfile -t scripts < <(grep -v '^$' "$PLAN")
if reset snapshot; then
        for i in "${!scripts[@]}"; do
                script=${scripts[$i]}
                name=$(basename "$script" .sh)
                rm -f "$VMTEST_FINISHED"
                VMTEST_DMESG_FROM=$(( $(dmesg | wc -l) + 1 ))
                echo "VMTEST: SCRIPT-START $name at $(up)s"
                VMTEST_DMESG_FROM=$VMTEST_DMESG_FROM timeout -k 10 "${SCRIPT_TIMEOUT:-600}" bash "$script"
                rc=$?
                if [ ! -e "$VMTEST_FINISHED" ]; then
                        [ $rc = 124 ] && why="ran past ${SCRIPT_TIMEOUT:-600} s" || why="exited $rc"
                        echo "RESULT guest-script FAIL $name $why without calling finish at $(up)s"
                fi
                echo "VMTEST: RESET-START $name at $(up)s"
                # after the last one, only for what a script that did not finish left
                if [ $((i + 1)) -lt ${#scripts[@]} ] || [ ! -e "$VMTEST_FINISHED" ]; then
                        reset restore || { echo "VMTEST: RESET-FAILED after $name at $(up)s"; break; }
                fi
                echo "VMTEST: SCRIPT-END $name at $(up)s"
        done
else
        echo "VMTEST: RESET-FAILED before the first script"
fi
echo "VMTEST: GUEST-DONE"
sync
echo o > /proc/sysrq-trigger
exec 2>/dev/null
while :; do read -rt 10 <> <(:) || true; done
