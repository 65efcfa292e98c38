#!/bin/bash
# A guest script that fails and leaves the guest in a mess, for the test of
# the harness (test-harness.sh): the GPU half on vfio-pci, the daemon and
# other processes left running, polkitd gone, a user and a group member
# added, a polkit rule and a config in place, a folder mounted over, a
# file in /tmp; then it exits without calling finish.  The reset must put
# all of it back: clean.sh, run next in the same boot, checks that it did.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"

configure "" "AllowBootVga=yes"
install -m644 /usr/share/doc/gpuswitch/examples/50-gpuswitch-group.rules /etc/polkit-1/rules.d/
usermod -aG gpuswitch alice
useradd -M -u 1003 mallory
run $CTL vfio
expect_rc mess-vfio 0
# the audio function back on its driver by hand: the GPU is mixed
echo > /sys/bus/pci/devices/$HDA/driver_override
echo $HDA > /sys/bus/pci/devices/$HDA/driver/unbind
echo $HDA > /sys/bus/pci/drivers_probe
[ "$(prop Mode)" = 's "mixed"' ] || sleep 1
echo 1 > /sys/module/gpuswitch_test/parameters/pin
as_user alice sleep 1000 &
( exec sleep 1000 < /dev/null & )
pkill -x polkitd
mkdir -p /tmp/empty && mount --bind /tmp/empty /usr/share/doc
echo junk > /tmp/harness-junk
result broken-on-purpose FAIL "as the harness test wants: mixed ($(state)), daemon running, polkitd ended"
exit 3
