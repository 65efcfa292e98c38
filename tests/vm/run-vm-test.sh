#!/bin/bash
# Boots Debian's own kernel in QEMU with an emulated IOMMU and a
# four-function "GPU" (VGA, HD audio, USB, and QEMU's edu device driven by
# our nvidia stand-in, module/gpuswitch_test.c), a second, two-function
# one (display and HD audio) with a companion USB controller on a bus of
# its own in its IOMMU group (see boot()), installs a gpuswitch staging tree in the guest and
# runs test scripts there, one after another in one boot, the guest put
# back as it was before each (guest-reset.py).  Every PCI write happens
# inside the guest: this machine's /sys is never written.
#
#   run-vm-test.sh [--stage DIR] [--plain-stage DIR] [--deb FILE] --script GUEST_SCRIPT [--script ...]
#                  [--work DIR] [--log FILE] [--timeout SEC] [--show]
#   run-vm-test.sh --prepare [--work DIR]     the kernel, initramfs and test module only
#   run-vm-test.sh --kinds --script S ...     a line "KIND<tab>S" each: the scripts of one kind share a boot
#
# The scripts of one run share a boot, so they must ask for the same guest
# ("# vmtest: systemd", "shared-group", "two-cpus", "deb" lines).
# --deb hands a package to the guest as $VMTEST_DEB (guest/deb.sh installs it);
# --plain-stage, a build without sanitizers, as $VMTEST_PLAIN_STAGE (for
# valgrind, next to a sanitized --stage).
# --timeout: each script's (default 600 s); a guest that shows no progress
# for that long and two minutes more is stopped.
# --show prints the guest's console as it goes (the demo); otherwise it is
# only in the log (FILE, then FILE.2, ... for the boots after a failed reset).
#
# A script that cannot leave the guest usable ends its boot; the scripts
# after it run in a fresh one.
#
# Prints each script's RESULT lines, a "SCRIPT name: N passed, N failed in S s"
# line each, "TIME" lines (boot NAME SECONDS, script NAME SECONDS, reset
# NAME SECONDS) and ends with "N passed, N failed"; exits 0 only when every
# script finished, something passed and nothing failed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/testvm-guard.sh"
STAGE= PLAIN_STAGE= DEB= SCRIPTS=() WORK=$PWD/vmwork LOG= TIMEOUT=600 SHOW=0 PREPARE=0 KINDS=0
while [ $# -gt 0 ]; do
        case "$1" in
        --stage) STAGE=$(cd "$2" && pwd); shift 2 ;;
        --plain-stage) PLAIN_STAGE=$(cd "$2" && pwd); shift 2 ;;
        --deb) DEB=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
        --script) [ -f "$2" ] || { echo "run-vm-test: no script $2" >&2; exit 2; }
                  SCRIPTS+=("$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"); shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        --log) LOG=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --show) SHOW=1; shift ;;
        --prepare) PREPARE=1; shift ;;
        --kinds) KINDS=1; shift ;;
        *) echo "run-vm-test: unknown argument $1" >&2; exit 2 ;;
        esac
done
[ $PREPARE = 1 ] || [ ${#SCRIPTS[@]} -gt 0 ] || { echo "run-vm-test: --script FILE is required" >&2; exit 2; }
# a script's kind of guest: its "# vmtest:" lines that change the boot, or "plain"
kind() { local k; k=$(sed -n 's/^# vmtest: \(systemd\|shared-group\|two-cpus\|deb\)$/\1/p' "$1" | sort | paste -sd+); echo "${k:-plain}"; }
if [ $KINDS = 1 ]; then
        for s in "${SCRIPTS[@]}"; do printf '%s\t%s\n' "$(kind "$s")" "$s"; done
        exit 0
fi
for s in "${SCRIPTS[@]}"; do
        [ "$(kind "$s")" = "$(kind "${SCRIPTS[0]}")" ] || {
                echo "run-vm-test: $(basename "$s") and $(basename "${SCRIPTS[0]}") ask for different guests (# vmtest: lines): run them apart" >&2
                exit 2; }
done
mkdir -p "$WORK"; WORK=$(cd "$WORK" && pwd)
LOG=${LOG:-$WORK/vm.log}
[ -z "$LOG" ] || LOG=$(cd "$(dirname "$LOG")" && pwd)/$(basename "$LOG")
cd "$WORK"

# Steps 1 to 3 and the module are made once and shared by the runs that use
# this work folder, some of them at the same time: one makes them, the
# others wait.
exec 9>"$WORK/.prepare.lock"
flock 9
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

flock -u 9
exec 9>&-
[ $PREPARE = 0 ] || exit 0

# 4. Boot.  KVM does not work on these machines: TCG.
accel=(-accel tcg -cpu max)
if grep -qE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ] && [ "${VMTEST_KVM:-1}" = 1 ]; then
        accel=(-accel kvm -cpu host)
fi
SCRIPT=${SCRIPTS[0]}   # the guest's kind, from its # vmtest: lines
# no_timer_check: on a loaded machine TCG can miss the kernel's early timer
# test, which then panics ("timer doesn't work through Interrupt-remapped IO-APIC").
# $GPUSWITCH_TESTVM_MARKER: the scripts that write PCI sysfs run only where it is.
append="console=ttyS0 panic=-1 loglevel=4 intel_iommu=on iommu=pt no_timer_check $GPUSWITCH_TESTVM_MARKER"
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
append+=" vmtest.modules=$MODDIR vmtest.stage2=$here/guest-init.sh vmtest.script-timeout=$TIMEOUT"
append+=" vmtest.vfiocheck=$WORK/vfiocheck vmtest.testmod=$WORK/module/gpuswitch_test.ko${STAGE:+ vmtest.stage=$STAGE}"
append+="${PLAIN_STAGE:+ vmtest.plain-stage=$PLAIN_STAGE}${DEB:+ vmtest.deb=$DEB}"

# The second GPU: a display function (bochs-display, class 0x0380, on
# bochs-drm) and HD audio (ICH6, on snd_hda_intel) in one slot behind a
# PCIe-to-PCI bridge, and a USB controller (NEC xHCI, on xhci_hcd) on the
# bus of a PCI bridge beside them: a conventional bus hides who asks for
# DMA, so everything below the PCIe-to-PCI bridge is one IOMMU group, of
# its own.  The xHCI is the companion of guest/two-gpus.sh, outside the
# slot in the GPU's group, with one port of each kind (fewer hubs to set
# up).  Only drivers the first GPU loads already.
gpu2=(-device pcie-root-port,id=rp4,bus=pcie.0,chassis=4,slot=4,addr=0x7
      -device pcie-pci-bridge,id=pb1,bus=rp4
      -device bochs-display,bus=pb1,addr=0x1.0,multifunction=on
      -device intel-hda,bus=pb1,addr=0x1.1,id=hda1
      -audiodev none,id=snd1 -device hda-output,bus=hda1.0,audiodev=snd1
      -device pci-bridge,id=pb2,bus=pb1,addr=0x2,chassis_nr=5,shpc=off
      -device nec-usb-xhci,bus=pb2,addr=0x1,p2=1,p3=1)

# A one-function "GPU": the stand-in's edu alone behind a root port, so the
# kernel can reset it (a secondary bus reset: reset_method "bus"), which
# the four-function slot cannot have.  guest/health.sh resets it after a
# failed probe.
solo=(-device pcie-root-port,id=rp5,bus=pcie.0,chassis=6,slot=6,addr=0x8
      -device edu,bus=rp5,addr=0x0)

# One boot: runs the scripts in PLAN (a file, a path a line) and writes the
# guest's console to BOOTLOG.  The guest shows progress with a line at each
# script's start and end: one that shows none for a script's time and two
# minutes more is stopped.
boot() { # PLAN BOOTLOG
        local plan=$1 bootlog=$2 qpid last seen n
        : > "$bootlog"
        qemu-system-x86_64 "${accel[@]}" -machine q35,kernel-irqchip=split -smp $smp -m 2048 \
                -nodefaults -no-reboot -display none -serial "file:$bootlog" \
                -device intel-iommu,intremap=on,caching-mode=on \
                -device pcie-root-port,id=rp1,bus=pcie.0,chassis=1,slot=1,addr=0x5$rp1_opts \
                -device VGA,bus=rp1,addr=0x0.0,multifunction=on \
                -device ich9-intel-hda,bus=rp1,addr=0x0.1,id=hda0 \
                -audiodev none,id=snd0 -device hda-duplex,bus=hda0.0,audiodev=snd0 \
                -device qemu-xhci,bus=rp1,addr=0x0.2 \
                -device edu,bus=rp1,addr=0x0.3 \
                -device pcie-root-port,id=rp2,bus=pcie.0,chassis=2,slot=2,addr=0x6 \
                -netdev user,id=n0,restrict=on -device e1000e,bus=rp2,netdev=n0 "${shared[@]}" "${gpu2[@]}" "${solo[@]}" \
                -virtfs local,path=/,mount_tag=host0,security_model=passthrough,readonly=on,multidevs=remap \
                -kernel vmlinux -initrd initramfs.cpio.gz -append "$append vmtest.plan=$plan" \
                </dev/null >>"$bootlog.qemu" 2>&1 &
        qpid=$!
        if [ $SHOW = 1 ]; then
                tail -f --pid=$qpid "$bootlog" | tr -d '\r' | grep --line-buffered -vE '^(RESULT|\[ *[0-9]+\.[0-9]+\]) ' &
        fi
        last=$SECONDS seen=0 done_at=
        while kill -0 $qpid 2>/dev/null; do
                sleep 1
                n=$(grep -caE '^VMTEST: (ready|SCRIPT-START|SCRIPT-END|GUEST-DONE)' "$bootlog" || true)
                [ "$n" = "$seen" ] || { seen=$n; last=$SECONDS; }
                # powered off by then; a guest that does not is stopped
                [ -z "$done_at" ] && grep -qa '^VMTEST: GUEST-DONE' "$bootlog" && done_at=$SECONDS
                if (( SECONDS - last > TIMEOUT + 120 )) || { [ -n "$done_at" ] && (( SECONDS - done_at > 30 )); }; then
                        [ -n "$done_at" ] || echo "run-vm-test: no progress from the guest for $((SECONDS - last)) s: stopped" >> "$bootlog"
                        kill $qpid 2>/dev/null || true
                fi
        done
        wait $qpid 2>/dev/null || true
        cat "$bootlog.qemu" >> "$bootlog"; rm -f "$bootlog.qemu"
        wait 2>/dev/null || true
}

# What a boot's log says of each script: "NAME STATE PASS FAIL SECONDS
# RESET_SECONDS", STATE "done" (it ran and the guest was put back), "ended"
# (it ran, the reset failed) or "died" (the guest went down during it); the
# scripts it never started are missing.
summarize() { # BOOTLOG
        tr -d '\r' < "$1" | awk '
                function t(s) { sub(/s$/, "", s); return s + 0 }
                /^VMTEST: SCRIPT-START / { name = $3; start[name] = t($5); st[name] = "died"; pass[name] = 0; fail[name] = 0; order[++n] = name; cur = name; next }
                /^VMTEST: RESET-START / { rs[$3] = t($5); st[$3] = "ended"; next }
                /^VMTEST: SCRIPT-END / { st[$3] = "done"; end[$3] = t($5); cur = ""; next }
                /^RESULT [^ ]+ PASS/ { if (cur != "") pass[cur]++; next }
                /^RESULT [^ ]+ FAIL/ { if (cur != "") fail[cur]++; next }
                END { for (i = 1; i <= n; i++) { s = order[i]
                        r = (s in rs) ? rs[s] : start[s]
                        printf "%s %s %d %d %.1f %.1f\n", s, st[s], pass[s], fail[s], r - start[s], (s in end) ? end[s] - r : 0 } }'
}

total_pass=0 total_fail=0 ok=1 nboot=0
left=("${SCRIPTS[@]}")
while [ ${#left[@]} -gt 0 ]; do
        nboot=$((nboot + 1))
        bootlog=$LOG; [ $nboot = 1 ] || bootlog=$LOG.$nboot
        plan=$(mktemp "$WORK/plan.XXXXXX")
        printf '%s\n' "${left[@]}" > "$plan"
        t0=$SECONDS
        boot "$plan" "$bootlog"
        rm -f "$plan"
        ready=$(tr -d '\r' < "$bootlog" | sed -n 's/^VMTEST: ready at \([0-9.]*\)s$/\1/p' | head -1)
        echo "TIME boot $nboot $((SECONDS - t0)) (ready at ${ready:-?} s of guest time; log $bootlog)"
        # its RESULT lines, under a header a script
        tr -d '\r' < "$bootlog" | awk '/^VMTEST: SCRIPT-START / {print "==== VM: " $3} /^RESULT / {print}'
        declare -A state=()
        while read -r name st pass fail secs rsecs; do
                state[$name]=$st
                case $st in
                ended) echo "RESULT guest-reset FAIL the guest could not be put back after $name: the scripts left go to a fresh boot"
                       tr -d '\r' < "$bootlog" | grep -E '^VMTEST: reset' | tail -5
                       fail=$((fail + 1)) ;;
                died) echo "RESULT guest-down FAIL the guest went down during $name; the end of $bootlog:"
                      tail -30 "$bootlog" | tr -d '\r'
                      fail=$((fail + 1)) ;;
                esac
                total_pass=$((total_pass + pass)); total_fail=$((total_fail + fail))
                echo "SCRIPT $name: $pass passed, $fail failed in $secs s (reset $rsecs s)"
                echo "TIME script $name $secs"
                echo "TIME reset $name $rsecs"
                [ "$pass" -gt 0 ] || { echo "run-vm-test: $name passed nothing"; ok=0; }
        done < <(summarize "$bootlog")
        next=()
        for s in "${left[@]}"; do
                name=$(basename "$s" .sh)
                [ -n "${state[$name]:-}" ] || next+=("$s")
        done
        if [ ${#next[@]} = ${#left[@]} ]; then
                echo "run-vm-test: the guest ran none of its scripts (qemu ended or hung before); the end of $bootlog:"
                tail -40 "$bootlog" | tr -d '\r'
                # once more, in case the boot itself failed (TCG on a loaded machine); then each one fails
                failed_boots=$((${failed_boots:-0} + 1))
                [ $failed_boots -lt 2 ] || { total_fail=$((total_fail + ${#left[@]})); ok=0; break; }
        fi
        unset state
        left=("${next[@]}")
done
[ "$total_pass" -gt 0 ] || ok=0
[ "$total_fail" = 0 ] || ok=0
echo "$total_pass passed, $total_fail failed"
[ $ok = 1 ]
