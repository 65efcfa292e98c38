#!/bin/bash
# vmtest: systemd
# vmtest-seconds: 150
# The libvirt hook under a real libvirtd (Debian's libvirt-daemon-system),
# found where libvirt looks for it (/etc/libvirt/hooks/qemu.d/gpuswitch):
# domains that pass the GPU's function 0 through, with managed='no' and with
# managed='yes', start with the whole GPU on vfio-pci before QEMU opens it
# (QEMU itself runs under TCG; the domain has no disk and no OS) and give it
# back when they stop: virsh destroy, and QEMU killed with SIGKILL; while
# it runs, status and the VirtualMachine property name the domain.  QEMU
# killed while libvirtd is down: status shows no VM, and host needs no
# --force.  A
# domain with hostdev-like elements in its metadata moves only its real
# hostdev's GPU.  With gpuswitchd's config broken, a domain with only the
# NIC starts and one with the GPU fails with the daemon's message.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"

VIRSH=(virsh -q -c qemu:///system)
nic_on_own_driver() { [ "$(drv $NIC)" = "${ORIG[$NIC]}" ] && [ "$(override $NIC)" = "(null)" ]; }
qemu_pid() { pgrep -f "guest=$1,"; }   # NAME: its QEMU process
domain_state() { "${VIRSH[@]}" domstate "$1" 2>&1; }
wait_for() { local n=$1 i; shift; for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.1; done; return 1; }
stop_daemon() { systemctl stop gpuswitchd.service; wait_for 300 sh -c '! pgrep -x gpuswitchd >/dev/null'; }

# A PCI hostdev's <source> address: BDF [MANAGED]
hostdev() {
        local d=${1%%:*} rest=${1#*:}
        local b=${rest%%:*} s=${rest#*:}
        s=${s%.*}
        printf "    <hostdev mode='subsystem' type='pci' managed='%s'>\n" "${2:-no}"
        printf "      <source><address domain='0x%s' bus='0x%s' slot='0x%s' function='0x%s'/></source>\n" \
                "$d" "$b" "$s" "${1##*.}"
        printf "    </hostdev>\n"
}
# define NAME DEVICES [METADATA]: the smallest domain that starts here: QEMU
# under TCG, no disk, no display, no network of libvirt's
define() {
        cat > "/tmp/$1.xml" <<EOF
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <metadata>$3</metadata>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <video><model type='none'/></video>
    <graphics type='vnc' listen='127.0.0.1' autoport='yes'/>
    <memballoon model='none'/>
$2
  </devices>
</domain>
EOF
        run "${VIRSH[@]}" define "/tmp/$1.xml"
}
# start NAME: virsh start, its exit code in RC and output in OUT
start() { run timeout 240 "${VIRSH[@]}" start "$1"; }
# The GPU's VFIO group is held by the domain's QEMU.
qemu_holds_group() { # NAME
        local pid group
        pid=$(qemu_pid "$1") || return 1
        group=$(grp "$VGA")
        ls -l "/proc/$pid/fd" 2>/dev/null | grep -q " /dev/vfio/$group\$"
}

configure "" "AllowBootVga=yes"
run $CTL status
expect_rc daemon-answers 0

# libvirt looks for hooks when libvirtd starts
check hook-linked-where-libvirt-looks test -x /etc/libvirt/hooks/qemu.d/gpuswitch
run systemctl start virtlogd.service libvirtd.service
expect_rc libvirtd-started 0

# ---- managed='no': the whole GPU before QEMU opens it, back at destroy -------
define gpu-unmanaged "$(hostdev "$VGA" no)"
start gpu-unmanaged
expect_rc unmanaged-start 0
all_on vfio-pci && result unmanaged-whole-gpu-on-vfio PASS || result unmanaged-whole-gpu-on-vfio FAIL "$(state)"
qemu_holds_group gpu-unmanaged && result unmanaged-qemu-holds-group PASS \
        || result unmanaged-qemu-holds-group FAIL "$(qemu_pid gpu-unmanaged) $(ls -l /proc/"$(qemu_pid gpu-unmanaged)"/fd 2>&1 | grep vfio)"
# the daemon looks for the VM after the switch, and again until it finds it
vm_prop() { busctl --system get-property org.gpuswitch1 "$OBJ" org.gpuswitch1.Gpu VirtualMachine 2>&1; }
wait_for 300 sh -c "[ \"\$(busctl --system get-property org.gpuswitch1 $OBJ org.gpuswitch1.Gpu VirtualMachine)\" = 's \"gpu-unmanaged\"' ]" \
        && result vm-property-names-domain PASS "$(vm_prop)" || result vm-property-names-domain FAIL "$(vm_prop)"
run $CTL status
echo "$OUT" | grep -qx "    Held by VM: gpu-unmanaged" && result status-names-domain PASS || result status-names-domain FAIL
run $CTL --json status
echo "$OUT" | python3 -c 'import json,sys; g=json.load(sys.stdin)["gpus"][0]; sys.exit(g["virtual_machine"] != "gpu-unmanaged")' \
        && result json-names-domain PASS || result json-names-domain FAIL
run "${VIRSH[@]}" destroy gpu-unmanaged
expect_rc unmanaged-destroy 0
wait_for 100 all_original && result unmanaged-destroy-gives-back PASS || result unmanaged-destroy-gives-back FAIL "$(state)"

# ---- managed='yes' naming function 0 only: the whole GPU all the same -------
define gpu-managed "$(hostdev "$VGA" yes)"
start gpu-managed
expect_rc managed-start 0
all_on vfio-pci && result managed-whole-gpu-on-vfio PASS || result managed-whole-gpu-on-vfio FAIL "$(state)"
qemu_holds_group gpu-managed && result managed-qemu-holds-group PASS || result managed-qemu-holds-group FAIL
run "${VIRSH[@]}" destroy gpu-managed
expect_rc managed-destroy 0
wait_for 100 all_original && result managed-destroy-gives-back PASS || result managed-destroy-gives-back FAIL "$(state)"

# ---- QEMU killed: libvirtd runs release, the GPU comes back --------------------
start gpu-unmanaged
expect_rc kill-start 0
pid=$(qemu_pid gpu-unmanaged)
all_on vfio-pci && [ -n "$pid" ] && result kill-whole-gpu-on-vfio PASS "qemu $pid" || result kill-whole-gpu-on-vfio FAIL "$(state)"
kill -9 "$pid"
wait_for 300 sh -c "[ \"\$(virsh -q -c qemu:///system domstate gpu-unmanaged)\" = 'shut off' ]" \
        && result kill-domain-shut-off PASS || result kill-domain-shut-off FAIL "$(domain_state gpu-unmanaged)"
wait_for 300 all_original && result kill-gives-gpu-back PASS || result kill-gives-gpu-back FAIL "$(state)"

# ---- QEMU killed while libvirtd is down: nothing gives the GPU back ------------
start gpu-unmanaged
pid=$(qemu_pid gpu-unmanaged)
wait_for 300 sh -c "[ \"\$(busctl --system get-property org.gpuswitch1 $OBJ org.gpuswitch1.Gpu VirtualMachine)\" = 's \"gpu-unmanaged\"' ]"
systemctl stop libvirtd.service libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket
kill -9 "$pid"
wait_for 100 sh -c "! kill -0 $pid 2>/dev/null"
wait_for 100 sh -c "[ \"\$(busctl --system get-property org.gpuswitch1 $OBJ org.gpuswitch1.Gpu VirtualMachine)\" = 's \"\"' ]" \
        && result libvirtd-down-vm-gone-from-property PASS || result libvirtd-down-vm-gone-from-property FAIL "$(vm_prop)"
run $CTL status
all_on vfio-pci && echo "$OUT" | grep -qx "    Held by VM: none" && result libvirtd-down-status-on-vfio-no-vm PASS \
        || result libvirtd-down-status-on-vfio-no-vm FAIL "$(state)"
run $CTL host
expect_rc libvirtd-down-host-without-force 0
all_original && result libvirtd-down-gpu-back PASS || result libvirtd-down-gpu-back FAIL "$(state)"
run systemctl start libvirtd.service
wait_for 300 sh -c "[ \"\$(virsh -q -c qemu:///system domstate gpu-unmanaged)\" = 'shut off' ]" \
        && result libvirtd-back-domain-shut-off PASS || result libvirtd-back-domain-shut-off FAIL "$(domain_state gpu-unmanaged)"
all_original && result libvirtd-back-gpu-still-host PASS || result libvirtd-back-gpu-still-host FAIL "$(state)"

# ---- hostdev-like elements in another namespace's metadata: not hostdevs ------
# (libvirt keeps <metadata> children of a namespace of their own as written;
# the domain passes through the NIC, which gpuswitchd does not manage)
meta="<app:profile xmlns:app='https://example.org/vm-manager/1'><devices>
$(hostdev "$VGA" no)</devices></app:profile>"
define meta-nic "$(hostdev "$NIC" yes)" "$meta"
"${VIRSH[@]}" dumpxml meta-nic | grep -q "app:profile" && result metadata-kept-by-libvirt PASS \
        || result metadata-kept-by-libvirt FAIL
start meta-nic
expect_rc metadata-domain-starts 0
all_original && result metadata-gpu-not-moved PASS || result metadata-gpu-not-moved FAIL "$(state)"
[ "$(drv $NIC)" = vfio-pci ] && result metadata-nic-detached-by-libvirt PASS || result metadata-nic-detached-by-libvirt FAIL "$(drv $NIC)"
run "${VIRSH[@]}" destroy meta-nic
wait_for 100 nic_on_own_driver && result metadata-nic-back PASS || result metadata-nic-back FAIL "$(drv $NIC)"

# ---- gpuswitchd's config broken: the NIC's domain starts, the GPU's stops ------
configure "" "AllowBootVga=yes\nAllowBootVga=maybe"
stop_daemon
define nic-only "$(hostdev "$NIC" yes)"
start nic-only
expect_rc bad-config-nic-domain-starts 0
run "${VIRSH[@]}" destroy nic-only
wait_for 100 nic_on_own_driver && result bad-config-nic-back PASS || result bad-config-nic-back FAIL "$(drv $NIC)"
start gpu-unmanaged
[ "$RC" != 0 ] && echo "$OUT" | grep -q "cannot ask gpuswitchd about GPU $SLOT: .*AllowBootVga" \
        && result bad-config-gpu-domain-fails-with-daemon-message PASS "rc=$RC" \
        || result bad-config-gpu-domain-fails-with-daemon-message FAIL "rc=$RC"
[ "$(domain_state gpu-unmanaged)" = "shut off" ] && all_original && result bad-config-nothing-moved PASS \
        || result bad-config-nothing-moved FAIL "$(domain_state gpu-unmanaged) $(state)"
configure "" "AllowBootVga=yes"
stop_daemon

for d in gpu-unmanaged gpu-managed meta-nic nic-only; do "${VIRSH[@]}" undefine "$d" >/dev/null 2>&1; done
systemctl stop libvirtd.service virtlogd.service
finish
