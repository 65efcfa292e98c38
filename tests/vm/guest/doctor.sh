#!/bin/bash
# vmtest-seconds: 45
# gpuswitchctl doctor in the guest: every check on a good setup (as root and
# as alice, before and after the group rule), and on broken ones: vfio-pci
# missing from the module tree, the boot VGA not allowed, a config mistake
# (reported word for word as gpuswitchd --check-config reports it), the
# daemon not reachable, no system bus.  (A shared IOMMU group:
# doctor-group.sh.)
. "$(dirname "$0")/../guest-lib.sh"

. "$(dirname "$0")/../gpu-lib.sh"

KVER=$(uname -r)
VFIO_DIR=/lib/modules/$KVER/kernel/drivers/vfio/pci
ACTIVATION=/usr/share/dbus-1/system-services/org.gpuswitch1.service

# stdout alone (the JSON), stderr kept apart
run_json() { OUT=$("$@" 2>/tmp/doctor.err); RC=$?; echo "\$ $* -> rc=$RC"; echo "$OUT" | sed 's/^/    /'; }
has() { # NAME REGEX: a line of the last output matches
        if echo "$OUT" | grep -qE "$2"; then result "$1" PASS; else result "$1" FAIL "no line matching '$2'"; fi
}
# NAME PYTHON: an expression over d (the --json object) and c (check id -> check)
jcheck() {
        if python3 -c 'import json, sys
d = json.loads(sys.argv[2]); c = {x["id"]: x for x in d["checks"]}
sys.exit(0 if eval(sys.argv[1]) else 1)' "$2" "$OUT"; then result "$1" PASS; else result "$1" FAIL "$2"; fi
}
reload_bus() { dbus-send --system --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.ReloadConfig >/dev/null; }
stop_daemon() { pkill -x gpuswitchd; for _ in $(seq 50); do pgrep -x gpuswitchd >/dev/null || break; sleep 0.1; done; }

configure "" "AllowBootVga=yes"
ALL_IDS='["iommu", "vfio-pci", "config", "daemon", "iommu-group", "boot-vga", "nvidia-modeset", "compositor", "egl-vendor", "flatpak-gl", "nvidia-services", "authorization"]'

# ---- vfio-pci not findable (before anything loads it) ------------------------
check vfio-pci-not-loaded-yet test ! -e /sys/module/vfio_pci
check vfio-pci-module-in-tree test -e "$VFIO_DIR/vfio-pci.ko"
mkdir -p /tmp/empty && mount --bind /tmp/empty "$VFIO_DIR"
run $CTL doctor
expect_rc vfio-missing-exit-1 1
has vfio-missing-fail '^FAIL +vfio-pci +not loaded, and modules.dep names .*vfio-pci.ko, which is missing'
echo "$OUT" | grep -A1 -E '^FAIL +vfio-pci ' | grep -qE "^      fix: reinstall the kernel's package \(apt-get install --reinstall linux-image-$KVER\)" \
        && result vfio-missing-fix PASS || result vfio-missing-fix FAIL "$OUT"
has vfio-missing-others-run '^ok +IOMMU +enabled'
has vfio-missing-summary '^0 warnings, 1 failure, 2 skipped$'
run_json $CTL --json doctor
expect_rc vfio-missing-json-exit-1 1
jcheck vfio-missing-json 'c["vfio-pci"]["verdict"] == "fail" and "linux-image-" in c["vfio-pci"]["fix"] and d["failures"] == 1'
umount "$VFIO_DIR"

# ---- a good setup, as root ----------------------------------------------------------
run $CTL doctor
expect_rc good-root-exit-0 0
has good-iommu '^ok +IOMMU +enabled, [0-9]+ IOMMU groups$'
has good-vfio-pci "^ok +vfio-pci +not loaded; gpuswitchd loads /lib/modules/$KVER/kernel/drivers/vfio/pci/vfio-pci.ko"
has good-daemon '^ok +gpuswitchd +reachable on the system bus, version '
has good-group "^ok +IOMMU group \\($SLOT\\) +viable: group [0-9]+ holds only"
has good-boot-vga "^ok +Boot VGA \\($SLOT\\) "
has good-nvidia-na "^skip +nvidia_drm modeset \\($SLOT\\) +n/a: the host driver of $VGA is bochs-drm, not nvidia"
has good-egl '^ok +NVIDIA EGL vendor +no 10_nvidia.json'
has good-flatpak '^ok +flatpak GL.nvidia +no org.freedesktop.Platform.GL.nvidia runtime'
has good-services '^skip +NVIDIA services +systemd could not be asked'
has good-root-authorized '^ok +Authorization +root: gpuswitchd lets root switch without asking polkit'
has good-summary '^0 warnings, 0 failures, 2 skipped$'
echo "$OUT" | grep -q 'fix:' && result good-no-fixes FAIL "$OUT" || result good-no-fixes PASS
run_json $CTL --json doctor
expect_rc good-json-exit-0 0
jcheck good-json-ids "[x['id'] for x in d['checks']] == $ALL_IDS"
jcheck good-json-verdicts 'all(x["verdict"] in ("ok", "skipped") for x in d["checks"]) and d["failures"] == 0 and d["warnings"] == 0'
jcheck good-json-shape 'all(set(x) == {"id", "title", "verdict", "detail", "fix"} and x["fix"] is None and x["detail"] for x in d["checks"])'
jcheck good-json-group "c['iommu-group']['title'] == 'IOMMU group ($SLOT)' and c['iommu-group']['verdict'] == 'ok'"
run $CTL doctor "$VGA"
expect_rc named-gpu-exit-0 0
has named-gpu-group "^ok +IOMMU group \\($SLOT\\)"

# ---- the boot VGA, not allowed: a warning with its fix, exit 0 ----------------------
if [ "$(cat /sys/bus/pci/devices/$VGA/boot_vga 2>/dev/null)" = 1 ]; then
        configure "" ""
        run $CTL doctor
        expect_rc boot-vga-warning-exit-0 0
        has boot-vga-warning "^warn +Boot VGA \\($SLOT\\) +the boot VGA device \\(the console\\): gpuswitchd refuses"
        has boot-vga-fix "^      fix: set AllowBootVga=yes in \\[Gpu $SLOT\\] of /etc/gpuswitch/gpuswitch.conf"
        has boot-vga-summary '^1 warning, 0 failures, 2 skipped$'
        configure "" "AllowBootVga=yes"
else
        result boot-vga-is-boot-vga FAIL "the emulated VGA $VGA is not the boot VGA here"
fi

# ---- a config mistake: doctor says what gpuswitchd says, word for word ---------------
# AllowBootVga=on once passed doctor while the daemon refused to start on it
cp /etc/gpuswitch/gpuswitch.conf /tmp/good.conf
configure "" "AllowBootVga=on"
DAEMON_MSG=$(env -u JOURNAL_STREAM /usr/libexec/gpuswitchd --check-config 2>&1 >/dev/null); DRC=$?
echo "gpuswitchd --check-config -> rc=$DRC: $DAEMON_MSG"
check bad-config-daemon-refuses test "$DRC" != 0
check bad-config-daemon-message test "$DAEMON_MSG" = "/etc/gpuswitch/gpuswitch.conf: [Gpu $SLOT]: AllowBootVga='on' is not a boolean (yes or no)"
run $CTL doctor
expect_rc bad-config-exit-1 1
has bad-config-fail "^FAIL +Configuration +/etc/gpuswitch/gpuswitch.conf: \\[Gpu $SLOT\\]: AllowBootVga='on' is not a boolean"
has bad-config-fix '^      fix: correct it .*gpuswitchd --check-config'
has bad-config-boot-vga-not-guessed "^skip +Boot VGA \\($SLOT\\) +.*needs a config gpuswitchd accepts"
run_json $CTL --json doctor
expect_rc bad-config-json-exit-1 1
DETAIL=$(echo "$OUT" | python3 -c 'import json, sys; print({x["id"]: x for x in json.load(sys.stdin)["checks"]}["config"]["detail"])')
echo "doctor: $DETAIL"
check bad-config-word-for-word test -n "$DETAIL" -a "$DETAIL" = "$DAEMON_MSG"
# an unknown key: the same
configure "" "AllowBootVga=yes\nAllowBootVGA=yes"
DAEMON_MSG=$(env -u JOURNAL_STREAM /usr/libexec/gpuswitchd --check-config 2>&1 >/dev/null)
run_json $CTL --json doctor
DETAIL=$(echo "$OUT" | python3 -c 'import json, sys; print({x["id"]: x for x in json.load(sys.stdin)["checks"]}["config"]["detail"])')
echo "gpuswitchd: $DAEMON_MSG"; echo "doctor: $DETAIL"
check unknown-key-word-for-word test -n "$DETAIL" -a "$DETAIL" = "$DAEMON_MSG"
check unknown-key-names-it test "$DAEMON_MSG" = "/etc/gpuswitch/gpuswitch.conf: [Gpu $SLOT]: unknown key 'AllowBootVGA'"

# ---- [Gpu 00:02]: the short section name the daemon accepts, doctor too -----------
printf '[Daemon]\nGpus=%s\n\n[Gpu %s]\nAllowBootVga=yes\n' "$SLOT" "${SLOT#0000:}" > /etc/gpuswitch/gpuswitch.conf
check short-section-daemon-accepts /usr/libexec/gpuswitchd --check-config
run $CTL doctor
expect_rc short-section-exit-0 0
has short-section-config "^ok +Configuration +gpuswitchd accepts /etc/gpuswitch/gpuswitch.conf: 1 GPU in Gpus=, 1 \\[Gpu\\] section"
has short-section-boot-vga "^ok +Boot VGA \\($SLOT\\) +the boot VGA device \\(the console\\); AllowBootVga=yes lets it switch"
cp /tmp/good.conf /etc/gpuswitch/gpuswitch.conf

# ---- alice: polkit's answer, before and after the group rule ------------------------
run as_user alice $CTL doctor
if echo "$OUT" | grep -qE '^warn +Authorization +after authentication: polkit asks alice for a password'; then
        expect_rc alice-challenge-exit-0 0
elif echo "$OUT" | grep -qE '^FAIL +Authorization +no: polkit does not let alice switch'; then
        expect_rc alice-no-exit-1 1
else
        result alice-not-authorized FAIL "$OUT"
fi
echo "$OUT" | grep -A1 -E '^(warn|FAIL) +Authorization ' | grep -qE '^      fix: cp /usr/share/doc/gpuswitch/examples/50-gpuswitch-group.rules /etc/polkit-1/rules.d/ && usermod -aG gpuswitch alice' \
        && result alice-group-rule-fix PASS || result alice-group-rule-fix FAIL "$OUT"
has alice-others-run "^ok +IOMMU group \\($SLOT\\)"
run_json as_user alice $CTL --json doctor
jcheck alice-json-not-authorized 'c["authorization"]["verdict"] in ("warning", "fail") and "usermod -aG gpuswitch alice" in c["authorization"]["fix"]'

install -m644 /usr/share/doc/gpuswitch/examples/50-gpuswitch-group.rules /etc/polkit-1/rules.d/
usermod -aG gpuswitch alice
sleep 1   # polkitd reloads rules.d on its own (inotify)
run as_user alice $CTL doctor
expect_rc alice-authorized-exit-0 0
has alice-authorized '^ok +Authorization +yes: polkit lets alice switch GPUs'
has alice-authorized-summary '^0 warnings, 0 failures, 2 skipped$'
run_json as_user alice $CTL --json doctor
jcheck alice-json-authorized 'c["authorization"]["verdict"] == "ok" and c["authorization"]["fix"] is None and d["failures"] == 0'

# ---- a GPU the daemon does not manage, a bad argument -----------------------------
run $CTL doctor 0000:3f:00
expect_rc no-such-gpu-exit-5 5
[ "$(echo "$OUT" | wc -l)" = 1 ] && echo "$OUT" | grep -q 0000:3f:00 && result no-such-gpu-one-line PASS \
        || result no-such-gpu-one-line FAIL "$OUT"
run $CTL doctor ../../etc
expect_rc bad-gpu-argument-exit-2 2

# ---- the daemon not reachable: that check fails, the rest still run ------------------
mv "$ACTIVATION" /tmp/org.gpuswitch1.service
stop_daemon
reload_bus
run $CTL doctor
expect_rc no-daemon-exit-1 1
has no-daemon-fail '^FAIL +gpuswitchd +org.gpuswitch1 does not answer: '
echo "$OUT" | grep -A1 -E '^FAIL +gpuswitchd ' | grep -qE '^      fix: systemctl status gpuswitchd; .*org.gpuswitch1.service' \
        && result no-daemon-fix PASS || result no-daemon-fix FAIL "$OUT"
# the per-GPU checks run on the GPUs of its config, with its rules
has no-daemon-group-from-config "^ok +IOMMU group \\($SLOT\\) +viable: group [0-9]+"
has no-daemon-boot-vga-from-config "^ok +Boot VGA \\($SLOT\\) +the boot VGA device \\(the console\\); AllowBootVga=yes"
has no-daemon-iommu-runs '^ok +IOMMU +enabled'
has no-daemon-vfio-runs '^ok +vfio-pci '
has no-daemon-authorization-runs '^ok +Authorization +root'
has no-daemon-summary '^0 warnings, 1 failure, 3 skipped$'   # the compositor check needs the daemon too
run_json as_user alice $CTL --json doctor
expect_rc no-daemon-json-exit-1 1
jcheck no-daemon-json 'c["daemon"]["verdict"] == "fail" and c["daemon"]["fix"] and c["iommu-group"]["verdict"] == "ok" and c["iommu"]["verdict"] == "ok" and c["authorization"]["verdict"] == "ok" and d["failures"] == 1'
# ... and are skipped when its config does not parse either
configure "" "AllowBootVga=on"
run $CTL doctor
has no-daemon-bad-config-skipped '^skip +IOMMU group +needs the daemon, which does not answer, or a config it accepts'
has no-daemon-bad-config-summary '^0 warnings, 2 failures, 5 skipped$'
cp /tmp/good.conf /etc/gpuswitch/gpuswitch.conf
mv /tmp/org.gpuswitch1.service "$ACTIVATION"
reload_bus

# ---- no system bus at all ----------------------------------------------------------
run env DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/nothing-here $CTL doctor
expect_rc no-bus-exit-1 1
has no-bus-fail '^FAIL +gpuswitchd +cannot connect to the system bus: '
has no-bus-fix '^      fix: start the system bus: systemctl start dbus'
has no-bus-iommu-runs '^ok +IOMMU +enabled'
has no-bus-egl-runs '^ok +NVIDIA EGL vendor'
has no-bus-authorization-root '^ok +Authorization +root'

# the daemon comes back through activation
run $CTL doctor
expect_rc daemon-back-exit-0 0
finish
