#!/bin/bash
# The harness itself: the emulated hardware, the bus and polkit are there,
# and the kernel sequence moves the GPU's functions by hand.
. "$(dirname "$0")/../guest-lib.sh"
read -r VGA HDA XHCI EDU < <(gpu_fns)
NIC=$(nic_bdf)
echo "GPU $VGA $HDA $XHCI $EDU, NIC $NIC"
for f in $VGA $HDA $XHCI $EDU $NIC; do echo "$f $(drv $f) group $(grp $f) boot_vga=$(cat /sys/bus/pci/devices/$f/boot_vga 2>/dev/null)"; done
[ "$(drv $VGA)" = bochs-drm ] && [ "$(drv $HDA)" = snd_hda_intel ] && [ "$(drv $XHCI)" = xhci_hcd ] \
        && [ "$(drv $EDU)" = gpuswitch_test ] && [ -c /dev/gpuswitch-test0 ] \
        && result gpu-functions-on-host-drivers PASS \
        || result gpu-functions-on-host-drivers FAIL "$(drv $VGA) $(drv $HDA) $(drv $XHCI) $(drv $EDU)"
[ "$(grp $VGA)" = "$(grp $HDA)" ] && [ "$(grp $VGA)" = "$(grp $XHCI)" ] && [ "$(grp $VGA)" = "$(grp $EDU)" ] \
        && result gpu-one-iommu-group PASS "group $(grp $VGA)" || result gpu-one-iommu-group FAIL
[ "$(drv $NIC)" = e1000e ] && [ "$(grp $NIC)" != "$(grp $VGA)" ] && result nic-apart PASS || result nic-apart FAIL
[ "$(stat -c %a /)" = 755 ] && result root-dir-mode PASS || result root-dir-mode FAIL "/ is $(stat -c %a /) after the stage copy"
check polkit-on-bus bus_has_owner org.freedesktop.PolicyKit1
[ "$(as_user alice id -u)" = 1001 ] && result as-user PASS || result as-user FAIL "$(as_user alice id -u)"
check vfio-pci-loads modprobe vfio-pci
for f in $EDU $XHCI $HDA $VGA; do
        echo vfio-pci > /sys/bus/pci/devices/$f/driver_override
        echo $f > /sys/bus/pci/devices/$f/driver/unbind
        echo $f > /sys/bus/pci/drivers_probe
done
[ "$(drv $VGA)$(drv $HDA)$(drv $XHCI)$(drv $EDU)" = vfio-pcivfio-pcivfio-pcivfio-pci ] && result by-hand-to-vfio PASS || result by-hand-to-vfio FAIL
check vfio-group-opens "$VFIOCHECK" "$(grp $VGA)" "$VGA" --dma
for f in $VGA $HDA $XHCI $EDU; do
        echo > /sys/bus/pci/devices/$f/driver_override
        echo $f > /sys/bus/pci/drivers/vfio-pci/unbind
        echo $f > /sys/bus/pci/drivers_probe
done
[ "$(drv $VGA) $(drv $HDA) $(drv $XHCI) $(drv $EDU)" = "bochs-drm snd_hda_intel xhci_hcd gpuswitch_test" ] \
        && result by-hand-back PASS || result by-hand-back FAIL "$(drv $VGA) $(drv $HDA) $(drv $XHCI) $(drv $EDU)"
rmmod vfio_pci vfio_pci_core 2>/dev/null   # leave the daemon tests to load it
# the host's switch records do not show through the root overlay
python3 -c 'import os, sys; sys.exit(os.getxattr(sys.argv[1], "trusted.overlay.opaque") != b"y")' \
        /run/vmtest/rw/upper/var/lib/gpuswitch 2>/dev/null && [ ! -e /etc/gpuswitch ] \
        && result host-gpuswitch-state-hidden PASS || result host-gpuswitch-state-hidden FAIL
finish
