#!/bin/bash
# Boots Debian's own kernel in QEMU with an emulated IOMMU and a
# four-function "GPU" (VGA, HD audio, USB, and QEMU's edu device driven by
# our nvidia stand-in, module/gpuswitch_test.c), installs a gpuswitch staging tree in the guest and
# runs a test script there.  Every PCI write happens inside the guest: this
# machine's /sys is never written.
#
#   run-vm-test.sh [--stage DIR] [--deb FILE] --script GUEST_SCRIPT [--work DIR] [--log FILE] [--timeout SEC] [--show]
#
# --deb hands a package to the guest as $VMTEST_DEB (guest/deb.sh installs it).
#
# --show prints the guest's console as it goes (the demo); otherwise it is
# only in the log.
#
# Prints the guest's RESULT lines and ends with "N passed, N failed"; exits 0
# only when the guest finished, something passed and nothing failed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
STAGE= DEB= SCRIPT= WORK=$PWD/vmwork LOG= TIMEOUT=600 SHOW=0
while [ $# -gt 0 ]; do
        case "$1" in
        --stage) STAGE=$(cd "$2" && pwd); shift 2 ;;
        --deb) DEB=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
        --script) SCRIPT=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        --log) LOG=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --show) SHOW=1; shift ;;
        *) echo "run-vm-test: unknown argument $1" >&2; exit 2 ;;
        esac
done
[ -n "$SCRIPT" ] && [ -f "$SCRIPT" ] || { echo "run-vm-test: --script FILE is required" >&2; exit 2; }
mkdir -p "$WORK"; WORK=$(cd "$WORK" && pwd)
LOG=${LOG:-$WORK/vm.log}
cd "$WORK"

# 1. The kernel: the version linux-image-amd64 depends on now, fetched once
#    and unpacked here (never installed into /boot).
if [ ! -f kver ]; then
        pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
        [ -n "$pkg" ] || { echo "run-vm-test: no linux-image package known to apt (apt-get update?)" >&2; exit 1; }
        rm -rf kroot && apt-get download "$pkg" >/dev/null && dpkg -x "$pkg"_*.deb kroot && rm -f "$pkg"_*.deb
        ls kroot/lib/modules | head -1 > kver
fi
KVER=$(cat kver)
MODDIR=$WORK/kroot/lib/modules/$KVER
[ -f "$MODDIR/modules.dep" ] || depmod -b "$WORK/kroot" "$KVER"

# 2. The uncompressed kernel, booted directly (PVH): no bzImage loader, no
#    decompression under TCG.
if [ ! -f vmlinux ]; then
        off=$(LC_ALL=C grep -abo -m1 $'\xfd7zXZ\x00' "kroot/boot/vmlinuz-$KVER" | head -1 | cut -d: -f1)
        { tail -c +$((off + 1)) "kroot/boot/vmlinuz-$KVER" || true; } | xz -dc --single-stream > vmlinux.tmp
        mv vmlinux.tmp vmlinux
fi

# 3. The initramfs: busybox, the modules for a 9p + overlay root, stage 1.
if [ ! -f vfiocheck ] || [ "$here/vfiocheck.c" -nt vfiocheck ]; then
        gcc -O2 -Wall -static -o vfiocheck "$here/vfiocheck.c"
fi
if [ ! -f initramfs.cpio.gz ] || [ "$here/init" -nt initramfs.cpio.gz ]; then
        R=$(mktemp -d "$WORK/initrd.XXXX")
        mkdir -p "$R"/{bin,proc,sys,dev,tmp,lower,rw,newroot,lib/modules/$KVER}
        cp /bin/busybox "$R/bin/"
        for a in $(/bin/busybox --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
        for m in virtio_pci 9pnet_virtio 9p overlay; do
                /sbin/modprobe -d "$WORK/kroot" -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
        done | sort -u | while read -r f; do
                rel=${f#"$MODDIR"/}
                mkdir -p "$R/lib/modules/$KVER/$(dirname "$rel")"
                cp "$f" "$R/lib/modules/$KVER/$rel"
        done
        cp "$MODDIR"/modules.{order,builtin,builtin.modinfo} "$R/lib/modules/$KVER/"
        depmod -b "$R" "$KVER"
        install -m755 "$here/init" "$R/init"
        (cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > initramfs.cpio.gz
        rm -rf "$R"
fi

# The stand-in for nvidia (module/): a driver whose remove() waits for its users.
if [ ! -f module/gpuswitch_test.ko ] || [ "$here/module/gpuswitch_test.c" -nt module/gpuswitch_test.ko ]; then
        "$here/module/build.sh" "$KVER" "$WORK/module"
fi

# 4. Boot.  KVM does not work on these machines: TCG.
accel=(-accel tcg -cpu max)
if grep -qE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ] && [ "${VMTEST_KVM:-1}" = 1 ]; then
        accel=(-accel kvm -cpu host)
fi
# no_timer_check: on a loaded machine TCG can miss the kernel's early timer
# test, which then panics ("timer doesn't work through Interrupt-remapped IO-APIC").
append="console=ttyS0 panic=-1 loglevel=4 intel_iommu=on iommu=pt no_timer_check"
# A script that says "# vmtest: systemd" gets systemd as PID 1, which runs
# stage 2 as the kernel command line's transient service.
if grep -q '^# vmtest: systemd$' "$SCRIPT"; then
        append+=" vmtest.systemd=1 systemd.run=\"/bin/bash $here/guest-init.sh\""
        append+=" systemd.run_success_action=poweroff systemd.show_status=0"
fi
# A script that says "# vmtest: shared-group" gets a device in the GPU's
# IOMMU group: the GPU's root port shares a multifunction slot with a second
# one, both without ACS, and a virtio-rng (on virtio-pci) sits below that.
rp1_opts= shared=()
if grep -q '^# vmtest: shared-group$' "$SCRIPT"; then
        rp1_opts=,multifunction=on,disable-acs=on
        shared=(-device pcie-root-port,id=rp3,bus=pcie.0,chassis=3,slot=3,addr=0x5.1,disable-acs=on
                -device virtio-rng-pci,bus=rp3)
fi
# A script that says "# vmtest: two-cpus" gets a second vCPU (MTTCG, a host
# thread each): udev's and systemd's work on the uevents of a rebind then
# runs beside the switch instead of taking turns with it, as on any
# multi-core machine that has a GPU to pass through (the switch benchmark).
smp=1
grep -q '^# vmtest: two-cpus$' "$SCRIPT" && smp=2
# A stage built with GPUSWITCH_SANITIZE: the guest sets the sanitizers'
# options, and every script fails on any report (guest-lib.sh's finish).
if [ -n "$STAGE" ] && find "$STAGE" -path '*/libexec/gpuswitchd' -exec readelf -d {} + 2>/dev/null | grep -q 'libasan'; then
        append+=" vmtest.sanitize=1"
fi
append+=" vmtest.modules=$MODDIR vmtest.stage2=$here/guest-init.sh vmtest.script=$SCRIPT"
append+=" vmtest.vfiocheck=$WORK/vfiocheck vmtest.testmod=$WORK/module/gpuswitch_test.ko${STAGE:+ vmtest.stage=$STAGE}${DEB:+ vmtest.deb=$DEB}"
set +e
timeout "$TIMEOUT" qemu-system-x86_64 "${accel[@]}" -machine q35,kernel-irqchip=split -smp $smp -m 2048 \
        -nodefaults -no-reboot -display none -serial stdio \
        -device intel-iommu,intremap=on,caching-mode=on \
        -device pcie-root-port,id=rp1,bus=pcie.0,chassis=1,slot=1,addr=0x5$rp1_opts \
        -device VGA,bus=rp1,addr=0x0.0,multifunction=on \
        -device ich9-intel-hda,bus=rp1,addr=0x0.1,id=hda0 \
        -audiodev none,id=snd0 -device hda-duplex,bus=hda0.0,audiodev=snd0 \
        -device qemu-xhci,bus=rp1,addr=0x0.2 \
        -device edu,bus=rp1,addr=0x0.3 \
        -device pcie-root-port,id=rp2,bus=pcie.0,chassis=2,slot=2,addr=0x6 \
        -netdev user,id=n0,restrict=on -device e1000e,bus=rp2,netdev=n0 "${shared[@]}" \
        -virtfs local,path=/,mount_tag=host0,security_model=passthrough,readonly=on,multidevs=remap \
        -kernel vmlinux -initrd initramfs.cpio.gz -append "$append" </dev/null 2>&1 |
        if [ $SHOW = 1 ]; then tee "$LOG" | tr -d '\r' | grep -vE '^(RESULT|\[ *[0-9]+\.[0-9]+\]) '; else cat > "$LOG"; fi
qrc=${PIPESTATUS[0]}
set -e

# 5. Judge by what the guest printed: QEMU exits 0 on a guest panic too.
grep -E '^RESULT ' "$LOG" | tr -d '\r' || true
pass=$(grep -cE '^RESULT [^ ]+ PASS' "$LOG" || true)
fail=$(grep -cE '^RESULT [^ ]+ FAIL' "$LOG" || true)
ok=1
if ! grep -q 'VMTEST: GUEST-DONE' "$LOG"; then
        echo "run-vm-test: the guest did not finish (qemu exit $qrc); the end of $LOG:"
        tail -40 "$LOG" | tr -d '\r'
        fail=$((fail + 1)); ok=0
fi
[ "$pass" -gt 0 ] || ok=0
[ "$fail" = 0 ] || ok=0
echo "$pass passed, $fail failed"
[ $ok = 1 ]
