#!/bin/bash
# For the test of the harness (test-harness.sh): the guest is as it was at
# boot, whatever the script before it did (broken.sh, wreck.sh,
# poweroff.sh), and usable: the daemon switches the GPU both ways.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"

check gpu-on-boot-drivers test "${ORIG[$VGA]} ${ORIG[$HDA]} ${ORIG[$XHCI]} ${ORIG[$EDU]}" = "bochs-drm snd_hda_intel xhci_hcd gpuswitch_test"
all_original && result no-driver-override PASS || result no-driver-override FAIL "$(state)"
check nic-on-e1000e test "$(drv $NIC)" = e1000e
check no-daemon sh -c '! pgrep -x gpuswitchd'
check no-leftover-process sh -c '! pgrep -x sleep'
check pin-released test "$(cat /sys/module/gpuswitch_test/parameters/pin)" = 0
check vfio-pci-unloaded test ! -e /sys/module/vfio_pci
check no-config test ! -e /etc/gpuswitch
check no-polkit-rule test ! -e /etc/polkit-1/rules.d/50-gpuswitch-group.rules
check alice-not-in-group sh -c '! id -nG alice | grep -qw gpuswitch'
check no-user-mallory sh -c '! getent passwd mallory'
check no-mount-over-doc sh -c '! mountpoint -q /usr/share/doc'
check no-file-in-tmp test ! -e /tmp/harness-junk
check polkit-on-bus bus_has_owner org.freedesktop.PolicyKit1

configure "" "AllowBootVga=yes"
run $CTL vfio
expect_rc usable-vfio 0
all_on vfio-pci && result usable-all-on-vfio PASS || result usable-all-on-vfio FAIL "$(state)"
run as_user bob $CTL --no-ask-password host
expect_rc usable-polkit-denies-bob 4
run $CTL host
expect_rc usable-host 0
all_original && result usable-back PASS || result usable-back FAIL "$(state)"
finish
