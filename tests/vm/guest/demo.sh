#!/bin/bash
# The demo, inside the QEMU guest: what a user sees.
. "$(dirname "$0")/../guest-lib.sh"
read -r VGA HDA XHCI EDU < <(gpu_fns)
SLOT=${VGA%.*}
say() { printf '\n\033[1m### %s\033[0m\n' "$*"; }
show() { printf '\033[36m%s$ %s\033[0m\n' "${USERNAME:-alice}" "$*"; }

mkdir -p /etc/gpuswitch
# The emulated VGA is the guest's boot VGA device; a real second GPU is not.
printf '[Daemon]\nGpus=%s\n\n[Gpu %s]\nAllowBootVga=yes\n' "$SLOT" "$SLOT" > /etc/gpuswitch/gpuswitch.conf
install -m644 /usr/share/doc/gpuswitch/examples/50-gpuswitch-group.rules /etc/polkit-1/rules.d/
usermod -aG gpuswitch alice
sleep 1

say "The config: /etc/gpuswitch/gpuswitch.conf"; cat /etc/gpuswitch/gpuswitch.conf
say "alice is in the gpuswitch group, allowed by the example polkit rule"
show gpuswitchctl status; as_user alice gpuswitchctl status
show gpuswitchctl plan vfio; as_user alice gpuswitchctl plan vfio
show gpuswitchctl vfio; as_user alice gpuswitchctl --no-ask-password vfio; echo "(exit $?)"
show gpuswitchctl status; as_user alice gpuswitchctl status
say "The VFIO group, opened as a VM would (vfiocheck: attach a container, open the device, map DMA)"
$VFIOCHECK "$(grp $VGA)" "$VGA" --dma
show gpuswitchctl host; as_user alice gpuswitchctl --no-ask-password host; echo "(exit $?)"
show gpuswitchctl status; as_user alice gpuswitchctl status
say "bob is not in the group: polkit says no, nothing moves"
USERNAME=bob show gpuswitchctl vfio; as_user bob gpuswitchctl --no-ask-password vfio; echo "(exit $?)"
say "Scripts: busctl"
show "busctl call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager ListGpus"
as_user alice busctl --system call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager ListGpus
for f in $VGA $HDA $XHCI $EDU; do [ "$(drv $f)" != vfio-pci ] || result demo FAIL "$f left on vfio-pci"; done
result demo PASS "round trip done"
finish
