#!/bin/bash
# vmtest: shared-group
# vmtest: systemd
# gpuswitchctl doctor where the GPU's IOMMU group also holds a virtio-rng on
# virtio-pci (the GPU's root port and the rng's share a slot, without ACS):
# the group check fails naming it, and the daemon refuses the switch with
# nothing moved and the same words (doctor runs the daemon's check).  Under systemd: the NVIDIA services check asks systemd
# about a stand-in nvidia-persistenced.service.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"

run_json() { OUT=$("$@" 2>/tmp/doctor.err); RC=$?; echo "\$ $* -> rc=$RC"; echo "$OUT" | sed 's/^/    /'; }
has() { # NAME REGEX: a line of the last output matches
        if echo "$OUT" | grep -qE "$2"; then result "$1" PASS; else result "$1" FAIL "no line matching '$2'"; fi
}
jcheck() { # NAME PYTHON: an expression over d (the --json object) and c (check id -> check)
        if python3 -c 'import json, sys
d = json.loads(sys.argv[2]); c = {x["id"]: x for x in d["checks"]}
sys.exit(0 if eval(sys.argv[1]) else 1)' "$2" "$OUT"; then result "$1" PASS; else result "$1" FAIL "$2"; fi
}
restart_daemon() { systemctl stop gpuswitchd.service; }   # the next call activates it again

OTHER=$(find_bdf 0x1af4 0x1044 || find_bdf 0x1af4 0x1005)
G=$(grp "$VGA")
echo "GPU $SLOT in group $G; virtio-rng $OTHER in group $(grp "$OTHER") on $(drv "$OTHER")"
check rng-shares-gpu-group test -n "$OTHER" -a "$(grp "$OTHER")" = "$G"
check rng-on-virtio-pci test "$(drv "$OTHER")" = virtio-pci
configure "" "AllowBootVga=yes"

# ---- the group is not viable: doctor fails naming the device and its driver ---------
run $CTL doctor
expect_rc shared-group-exit-1 1
has shared-group-fail "^FAIL +IOMMU group \\($SLOT\\) +not viable: IOMMU group $G of $SLOT also holds $OTHER, bound to virtio-pci"
echo "$OUT" | grep -A1 -E "^FAIL +IOMMU group " | grep -qE "^      fix: .*IOMMU group of its own, or take that device off its driver" \
        && result shared-group-fix PASS || result shared-group-fix FAIL "$OUT"
has shared-group-others-run '^ok +gpuswitchd +reachable'
run_json $CTL --json doctor
expect_rc shared-group-json-exit-1 1
jcheck shared-group-json "c['iommu-group']['verdict'] == 'fail' and '$OTHER, bound to virtio-pci' in c['iommu-group']['detail'] and c['iommu-group']['fix'] and d['failures'] == 1"
DOCTOR_MSG=$(echo "$OUT" | python3 -c 'import json, sys; print({x["id"]: x for x in json.load(sys.stdin)["checks"]}["iommu-group"]["detail"].split("not viable: ", 1)[-1])')

# ---- the daemon refuses the switch the same way, nothing moves ------------------------
run $CTL vfio
expect_rc vfio-refused-exit-1 1
echo "$OUT" | grep -q "$OTHER" && echo "$OUT" | grep -q virtio-pci && result vfio-refused-names-device PASS \
        || result vfio-refused-names-device FAIL "$OUT"
# word for word what doctor said
[ -n "$DOCTOR_MSG" ] && echo "$OUT" | grep -qF -- "$DOCTOR_MSG" && result vfio-refused-as-doctor-said PASS \
        || result vfio-refused-as-doctor-said FAIL "doctor: '$DOCTOR_MSG'"
all_original && [ "$(drv "$OTHER")" = virtio-pci ] && result vfio-refused-nothing-moved PASS \
        || result vfio-refused-nothing-moved FAIL "$(state) $OTHER=$(drv "$OTHER")"

# ---- NVIDIA services, asked of systemd ------------------------------------------------
run $CTL doctor
has services-not-running '^ok +NVIDIA services +nvidia-persistenced and nvidia-powerd are not running'
cat > /etc/systemd/system/nvidia-persistenced.service <<UNIT
[Unit]
Description=stand-in for nvidia-persistenced
[Service]
ExecStart=/bin/sleep infinity
UNIT
systemctl daemon-reload
systemctl start nvidia-persistenced.service
run $CTL doctor
has services-running-gpu-not-nvidia '^ok +NVIDIA services +nvidia-persistenced.service running; no managed GPU is on nvidia'
# the GPU as if on nvidia: the daemon stops the service by default ...
configure "" "AllowBootVga=yes\nHostDriver=nvidia"
restart_daemon
run $CTL doctor
has services-stopped-by-default '^ok +NVIDIA services +nvidia-persistenced.service running; gpuswitchd stops them'
has nvidia-not-loaded "^ok +nvidia_drm modeset \\($SLOT\\) +nvidia is not loaded"
# ... but not when StopServices= leaves it out
configure "" "AllowBootVga=yes\nHostDriver=nvidia\nStopServices=cuda-server.service"
restart_daemon
run $CTL doctor
has services-left-running "^warn +NVIDIA services +nvidia-persistenced.service running; StopServices= of $SLOT leaves"
has services-fix "^      fix: add nvidia-persistenced.service to StopServices= in \\[Gpu $SLOT\\] of /etc/gpuswitch/gpuswitch.conf"
systemctl stop nvidia-persistenced.service
configure "" "AllowBootVga=yes"
restart_daemon

# ---- with the rng unbound the group is viable again -----------------------------------
echo "$OTHER" > "/sys/bus/pci/devices/$OTHER/driver/unbind"
run $CTL doctor
expect_rc group-viable-exit-0 0
has group-viable "^ok +IOMMU group \\($SLOT\\) +viable: group $G"
has group-viable-summary '^0 warnings, 0 failures, 1 skipped$'
finish
