#!/bin/bash
# vmtest: systemd
# Services that keep the GPU open (nvidia-persistenced, nvidia-powerd, or
# what StopServices= names) are stopped through systemd's D-Bus API before
# the switch to vfio-pci and started again after the switch back.  A
# stand-in nvidia-persistenced.service holds the nvidia stand-in's node.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"

persistenced_standin nvidia-persistenced.service
sleep 0.5
configure "" "AllowBootVga=yes\nStopServices=nvidia-persistenced.service nvidia-powerd.service"

run $CTL holders
echo "$OUT" | grep -q "sleep .*gpuswitch-test0" && result service-holds-gpu PASS || result service-holds-gpu FAIL "$OUT"
pid=$(systemctl show -P MainPID nvidia-persistenced.service)

run $CTL vfio
expect_rc vfio-with-service 0
[ "$(systemctl is-active nvidia-persistenced.service)" = inactive ] && result service-stopped PASS \
        || result service-stopped FAIL "$(systemctl is-active nvidia-persistenced.service)"
all_on vfio-pci && result all-on-vfio PASS || result all-on-vfio FAIL "$(state)"
[ -s /var/lib/gpuswitch/stopped-services-$SLOT ] && result stop-recorded PASS || result stop-recorded FAIL

run $CTL host
expect_rc host-again 0
all_original && result back-to-host PASS || result back-to-host FAIL "$(state)"
[ "$(systemctl is-active nvidia-persistenced.service)" = active ] && result service-started-again PASS \
        || result service-started-again FAIL "$(systemctl is-active nvidia-persistenced.service)"
[ "$(systemctl show -P MainPID nvidia-persistenced.service)" != "$pid" ] && result service-is-a-new-process PASS \
        || result service-is-a-new-process FAIL
[ ! -e /var/lib/gpuswitch/stopped-services-$SLOT ] && result record-cleared PASS || result record-cleared FAIL
# a service that is not running is left alone
systemctl stop nvidia-persistenced.service
run $CTL vfio
run $CTL host
[ "$(systemctl is-active nvidia-persistenced.service)" = inactive ] && result stopped-service-left-stopped PASS \
        || result stopped-service-left-stopped FAIL
journalctl -u gpuswitchd.service --no-pager | grep -E "stopping|started" | tail -4
finish
