#!/bin/bash
# The libvirt qemu hook, installed, called exactly as libvirtd calls it (as
# root, a minimal environment, the domain XML on stdin) against the real
# daemon: a domain naming the GPU's functions as managed='no' hostdevs gets
# the whole GPU on vfio-pci at prepare and back at release; a domain without
# it moves nothing; a refused switch stops the start with the reason; with
# the daemon's config broken, only a domain with the GPU is stopped.
. "$(dirname "$0")/../guest-lib.sh"

. "$(dirname "$0")/../gpu-lib.sh"

HOOK=/usr/libexec/gpuswitch/libvirt-qemu-hook
nic_untouched() { [ "$(drv $NIC)" = "${ORIG[$NIC]}" ] && [ "$(override $NIC)" = "(null)" ]; }

# A PCI hostdev as virsh dumpxml writes it: BDF [MANAGED [GUEST-BUS GUEST-SLOT]]
hostdev() {
        local d=${1%%:*} b=${1#*:} s f=${1##*.}
        b=${b%%:*} s=${1%.*} s=${s##*:}
        cat <<EOF
    <hostdev mode='subsystem' type='pci' managed='${2:-no}'>
      <driver name='vfio'/>
      <source>
        <address domain='0x$d' bus='0x$b' slot='0x$s' function='0x$f'/>
      </source>
      <alias name='hostdev$f'/>
      <address type='pci' domain='0x0000' bus='${3:-0x05}' slot='${4:-0x00}' function='0x$f'/>
    </hostdev>
EOF
}
domain() { # DEVICES-XML: a domain around them, with a disk and a NIC of its own
        cat <<EOF
<domain type='kvm'>
  <name>win11</name>
  <uuid>6b1f3c1e-0d7a-4a8e-9d55-2f1f0c3b7a10</uuid>
  <memory unit='KiB'>8388608</memory>
  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/win11.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
    <interface type='network'>
      <source network='default'/>
      <model type='virtio'/>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </interface>
$1
  </devices>
</domain>
EOF
}
# hook XML OPERATION SUB-OPERATION: the exit code in RC, stdout in OUT, stderr in ERR
hook() {
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin $HOOK win11 "$2" "$3" - < "$1" > /tmp/hook.out 2> /tmp/hook.err
        RC=$?
        OUT=$(< /tmp/hook.out) ERR=$(< /tmp/hook.err)
        echo "\$ $HOOK win11 $2 $3 - < ${1##*/} -> rc=$RC"
        [ -z "$OUT$ERR" ] || echo "$OUT$ERR" | sed 's/^/    /'
}

configure "" "AllowBootVga=yes"
check hook-installed-executable test -x $HOOK

# The GPU's four functions as four hostdevs, as virt-manager adds them.
gpu_devs=$(for f in $FNS; do hostdev $f; done)
domain "$gpu_devs" > /tmp/win11.xml
# A domain without the GPU: the NIC passed through (libvirt's own business)
# and a disk, both with the GPU's slot as their guest-side address.
gslot=${SLOT##*:} gbus=${SLOT#*:} gbus=${gbus%%:*}
domain "$(hostdev $NIC yes 0x$gbus 0x$gslot)
    <disk type='file' device='cdrom'>
      <source file='/var/lib/libvirt/images/virtio-win.iso'/>
      <target dev='sdb' bus='sata'/>
      <address type='pci' domain='0x0000' bus='0x$gbus' slot='0x$gslot' function='0x1'/>
    </disk>" > /tmp/other.xml
grep -q "bus='0x$gbus' slot='0x$gslot'" /tmp/other.xml && result other-domain-has-gpu-slot-guest-side PASS \
        || result other-domain-has-gpu-slot-guest-side FAIL "$(cat /tmp/other.xml)"

# ---- the domain with the GPU: prepare, start, started, stopped, release ---------
hook /tmp/win11.xml prepare begin
expect_rc prepare-rc 0
all_on vfio-pci && result prepare-all-on-vfio PASS "$(state)" || result prepare-all-on-vfio FAIL "$(state)"
[ -z "$OUT" ] && result prepare-no-stdout PASS || result prepare-no-stdout FAIL "$OUT"
run prop Mode
[ "$OUT" = 's "vfio"' ] && result prepare-mode-vfio PASS || result prepare-mode-vfio FAIL "$OUT"
run $VFIOCHECK "$(grp $VGA)" "$VGA"
expect_rc prepare-group-viable 0
nic_untouched && result prepare-nic-untouched PASS || result prepare-nic-untouched FAIL "$(drv $NIC)"

for op in "start begin" "started begin" "stopped end"; do
        hook /tmp/win11.xml $op
        expect_rc "${op%% *}-rc" 0
        all_on vfio-pci && result "${op%% *}-nothing-moved" PASS || result "${op%% *}-nothing-moved" FAIL "$(state)"
done

hook /tmp/win11.xml release end
expect_rc release-rc 0
all_original && result release-all-original PASS "$(state)" || result release-all-original FAIL "$(state)"
nic_untouched && result release-nic-untouched PASS || result release-nic-untouched FAIL "$(drv $NIC)"

# ---- a domain without the GPU -------------------------------------------------
hook /tmp/other.xml prepare begin
expect_rc other-prepare-rc 0
all_original && nic_untouched && result other-prepare-nothing-moved PASS \
        || result other-prepare-nothing-moved FAIL "$(state) NIC $(drv $NIC)"
hook /tmp/other.xml release end
expect_rc other-release-rc 0
all_original && nic_untouched && result other-release-nothing-moved PASS \
        || result other-release-nothing-moved FAIL "$(state) NIC $(drv $NIC)"

# ---- the nvidia stand-in held: the start is refused, nothing moves ------------
( as_user alice bash -c "exec sleep 1000 < /dev/gpuswitch-test0" & )
for i in $(seq 50); do HOLDER=$(pgrep -u alice -n -x sleep) && break; sleep 0.1; done
sleep 0.2
echo "holder: $HOLDER"
hook /tmp/win11.xml prepare begin
[ "$RC" != 0 ] && result held-prepare-fails PASS "rc=$RC" || result held-prepare-fails FAIL "rc=$RC"
[ "$(printf '%s\n' "$ERR" | wc -l)" = 1 ] && [[ $ERR == "gpuswitch hook: domain win11: cannot switch GPU $SLOT to vfio-pci: "* ]] \
        && [[ $ERR == *"$SLOT is in use"*"$HOLDER sleep (uid 1001) holds gpuswitch-test0"* ]] \
        && result held-prepare-message PASS || result held-prepare-message FAIL "$ERR"
all_original && kill -0 "$HOLDER" && result held-nothing-moved PASS || result held-nothing-moved FAIL "$(state)"
# libvirt runs release after a failed prepare
hook /tmp/win11.xml release end
expect_rc held-release-rc 0
all_original && result held-release-nothing-moved PASS || result held-release-nothing-moved FAIL "$(state)"
kill "$HOLDER"
nic_untouched && result nic-never-moved PASS || result nic-never-moved FAIL "$(drv $NIC)"

# ---- gpuswitchd's config broken: it answers BadConfig ----------------------------
# A domain passing through only the NIC still starts; one with the GPU stops
# with the daemon's own message.
daemon_gone() { ! pgrep -x gpuswitchd >/dev/null; }
stop_daemon() { pkill -TERM -x gpuswitchd; for i in $(seq 300); do daemon_gone && break; sleep 0.1; done; }
configure "" "AllowBootVga=yes\nAllowBootVga=maybe"
stop_daemon
domain "$(hostdev $NIC yes)" > /tmp/nic-only.xml
hook /tmp/nic-only.xml prepare begin
expect_rc bad-config-nic-domain-starts 0
[ -z "$ERR" ] && result bad-config-nic-domain-quiet PASS || result bad-config-nic-domain-quiet FAIL "$ERR"
hook /tmp/win11.xml prepare begin
[ "$RC" != 0 ] && [ "$(printf '%s\n' "$ERR" | wc -l)" = 1 ] \
        && [[ $ERR == "gpuswitch hook: domain win11: cannot ask gpuswitchd about GPU $SLOT: "*AllowBootVga* ]] \
        && result bad-config-gpu-domain-stops PASS "rc=$RC" || result bad-config-gpu-domain-stops FAIL "rc=$RC $ERR"
all_original && nic_untouched && result bad-config-nothing-moved PASS || result bad-config-nothing-moved FAIL "$(state)"
configure "" "AllowBootVga=yes"
stop_daemon
finish
