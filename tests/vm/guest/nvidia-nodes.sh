#!/bin/bash
# nvidia's device nodes (issue 13): two NVIDIA-like functions in two slots,
# the stand-in with nvidia_procfs=1 (nvidia's /proc entry and its character
# devices on major 195), the nodes made with mknod as nvidia-modprobe makes
# them.  A process holding the other slot's /dev/nvidiaN and the shared
# /dev/nvidiactl is no holder of this GPU: not listed, and --force leaves it
# running.  One holding this GPU's /dev/nvidiaN is listed and --force ends it.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"
PARAMS=/sys/module/gpuswitch_test/parameters

# The edu alone behind its root port (run-vm-test.sh's one-function "GPU").
SOLO=$(for d in /sys/bus/pci/devices/*; do
        [ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = 0x11e8 ] && [ "${d##*/}" != "$EDU" ] && echo "${d##*/}"
done | head -1)
SOLO_SLOT=${SOLO%.*}
mkdir -p /etc/gpuswitch
printf '[Daemon]\nGpus=%s;%s\n[Gpu %s]\nAllowBootVga=yes\n' "$SLOT" "$SOLO_SLOT" "$SLOT" > /etc/gpuswitch/gpuswitch.conf

minor_of() { sed -n 's/^Device Minor:[[:space:]]*//p' "/proc/driver/nvidia/gpus/$1/information"; }  # FUNCTION
# A holder of the nodes given, orphaned so that PID 1 reaps it, as alice:
# NODE... -> its pid in $HOLDER.
# Each its own sleep time, to tell it from the one before.
HOLDS=0
hold() {
        local redirs="" fd=3 n i
        for n in "$@"; do redirs+=" $fd<$n"; fd=$((fd + 1)); done
        HOLDS=$((HOLDS + 1))
        ( as_user alice bash -c "exec sleep 100$HOLDS $redirs" & )
        for i in $(seq 50); do HOLDER=$(pgrep -u alice -f "^sleep 100$HOLDS\$") && break; sleep 0.1; done
        sleep 0.2
}
holds() { ls -l /proc/$1/fd 2>/dev/null | grep -q " -> $2\$"; }  # PID NODE: it has NODE open
NODES=()
trap 'rm -f "${NODES[@]}"' EXIT   # made here: gone however the script ends

echo 1 > $PARAMS/nvidia_procfs
M0=$(minor_of "$EDU") M1=$(minor_of "$SOLO")
echo "minors: $EDU $M0, $SOLO $M1"
grep -q "^195 nvidia$" /proc/devices && grep -q "^195 nvidiactl$" /proc/devices && [ -n "$M0" ] && [ -n "$M1" ] \
        && [ "$M0" != "$M1" ] && result two-functions-two-minors PASS "$EDU=$M0 $SOLO=$M1" \
        || result two-functions-two-minors FAIL "$EDU=$M0 $SOLO=$M1 $(grep 195 /proc/devices)"
# as nvidia-modprobe: /dev/nvidiaN for each GPU and /dev/nvidiactl, mode 0666
for m in $M0 $M1; do mknod -m 666 /dev/nvidia$m c 195 $m && NODES+=(/dev/nvidia$m); done
mknod -m 666 /dev/nvidiactl c 195 255 && NODES+=(/dev/nvidiactl)

# the other slot's node and the shared one
hold /dev/nvidia$M1 /dev/nvidiactl
OTHER=$HOLDER
echo "holder of nvidia$M1 and nvidiactl: $OTHER"
holds $OTHER /dev/nvidia$M1 && holds $OTHER /dev/nvidiactl && result other-holds-both PASS \
        || result other-holds-both FAIL "$(ls -l /proc/$OTHER/fd 2>&1)"
# the stand-in counts it as a user of the solo function: that one's unbindLock is not given
echo 1 > /proc/driver/nvidia/gpus/$SOLO/unbindLock
[ "$(cat /proc/driver/nvidia/gpus/$SOLO/unbindLock)" = 0 ] && result other-is-a-user-of-solo PASS \
        || { result other-is-a-user-of-solo FAIL; echo 0 > /proc/driver/nvidia/gpus/$SOLO/unbindLock; }

run timeout 60 $CTL holders "$SOLO_SLOT"
echo "$OUT" | grep -qE "^$OTHER +alice +sleep +nvidia$M1$" && echo "$OUT" | grep -qE "^$OTHER +alice +sleep +nvidiactl$" \
        && result solo-slot-lists-it PASS || result solo-slot-lists-it FAIL "$OUT"
run timeout 60 $CTL holders "$SLOT"
expect_rc gpu-holders-rc 0
echo "$OUT" | grep -q "No process holds $SLOT" && result gpu-slot-does-not-list-it PASS \
        || result gpu-slot-does-not-list-it FAIL "$OUT"
run timeout 60 $CTL --json holders "$SLOT"
echo "$OUT" | python3 -c "import json,sys; sys.exit(1 if any(x['pid']==$OTHER for x in json.load(sys.stdin)['holders']) else 0)" \
        && result gpu-slot-json-does-not-list-it PASS || result gpu-slot-json-does-not-list-it FAIL "$OUT"

run timeout 120 $CTL --force vfio "$SLOT"
expect_rc force-switches 0
all_on vfio-pci && result force-all-on-vfio PASS || result force-all-on-vfio FAIL "$(state)"
kill -0 $OTHER && holds $OTHER /dev/nvidia$M1 && holds $OTHER /dev/nvidiactl && result force-left-other-running PASS \
        || result force-left-other-running FAIL "pid $OTHER: $(ls -l /proc/$OTHER/fd 2>&1)"
[ "$(drv $SOLO)" = gpuswitch_test ] && result solo-untouched PASS || result solo-untouched FAIL "$(drv $SOLO)"
run timeout 120 $CTL host "$SLOT"
expect_rc back-to-host 0
all_original && [ "$(minor_of "$EDU")" = "$M0" ] && result host-same-minor PASS \
        || result host-same-minor FAIL "$(state) minor $(minor_of "$EDU")"

# this GPU's own node
hold /dev/nvidia$M0
OWN=$HOLDER
echo "holder of nvidia$M0: $OWN"
run timeout 60 $CTL holders "$SLOT"
echo "$OUT" | grep -qE "^$OWN +alice +sleep +nvidia$M0$" && result own-node-listed PASS || result own-node-listed FAIL "$OUT"
echo "$OUT" | grep -q "^$OTHER " && result other-still-not-listed FAIL "$OUT" || result other-still-not-listed PASS
run timeout 60 $CTL vfio "$SLOT"
expect_rc own-node-refused 3
echo "$OUT" | grep -q "^  $OWN sleep (uid 1001) holds nvidia$M0 (blocks the unbind)$" && result own-node-named PASS || result own-node-named FAIL "$OUT"
all_original && result own-node-nothing-moved PASS || result own-node-nothing-moved FAIL "$(state)"
run timeout 120 $CTL --force vfio "$SLOT"
expect_rc own-force-switches 0
! kill -0 $OWN 2>/dev/null && result own-force-ended-it PASS || result own-force-ended-it FAIL "pid $OWN alive"
kill -0 $OTHER && result own-force-left-other PASS || result own-force-left-other FAIL "pid $OTHER gone"
all_on vfio-pci && result own-force-all-on-vfio PASS || result own-force-all-on-vfio FAIL "$(state)"

run timeout 120 $CTL host "$SLOT"
expect_rc end-back-to-host 0
all_original && result end-original PASS || result end-original FAIL "$(state)"
kill $OTHER
rm -f "${NODES[@]}"
echo 0 > $PARAMS/nvidia_procfs
! grep -q "^195 " /proc/devices && result chrdev-dropped PASS || result chrdev-dropped FAIL "$(grep '^195 ' /proc/devices)"
finish
