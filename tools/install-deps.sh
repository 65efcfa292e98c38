#!/bin/bash
# Installs what building gpuswitch and running its tests need (Debian 12).
# Pass --build-only for the build dependencies alone.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
build=(cmake gcc make pkg-config libsystemd-dev libglib2.0-dev libjson-glib-dev libkmod-dev libxml2-dev
       systemd dbus polkitd python3 pci.ids scdoc
       kmod    # depmod: the doctor's unit test builds a module index
       strace) # test-testvm-guard: what a refusing program opened
vm=()
if [ "${1:-}" != --build-only ]; then
        # the QEMU guest: kernel tools, busybox, qemu; and the userspace it borrows
        vm=(qemu-system-x86 busybox-static kmod cpio xz-utils libc6-dev linux-libc-dev
            util-linux passwd procps psmisc bash-completion zsh fish
            libglib2.0-bin   # gdbus: the README's applet sequence
            dpkg-dev debhelper lintian fakeroot adduser    # the Debian package: build, check, install
            clang libclang-rt-14-dev llvm   # libFuzzer targets (fuzz/) and their symbolizer
            valgrind                        # memcheck of the daemon in the guest
            lsof driverctl                  # the peers bench/ measures against (fuser is psmisc's)
            libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu  # the hook under a real libvirtd
            openssh-server                  # sshd for gpuswitchctl -H in the guest (guest/remote.sh)
            gnome-shell gnome-shell-extension-prefs jq gettext   # the GNOME Shell extension in a real gnome-shell
            openssl)   # ... and the password its polkit dialog is given (openssl passwd)
fi
missing=()
for p in "${build[@]}" "${vm[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" = 0 ] || { echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; }
        if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' 2>/dev/null | head -1)" ] || [ "${APT_UPDATE:-0}" = 1 ]; then
                apt-get update
        fi
        apt-get install -y --no-install-recommends "${missing[@]}"
        # installed only for the guest to start its own: not left serving this machine
        if [[ " ${missing[*]} " == *" openssh-server "* ]]; then
                systemctl disable --now ssh.service 2>/dev/null || systemctl disable ssh.service || true
        fi
        if [[ " ${missing[*]} " == *" libvirt-daemon-system "* ]]; then
                units=(libvirtd.service libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket
                       virtlogd.socket virtlogd-admin.socket virtlockd.socket virtlockd-admin.socket)
                systemctl disable --now "${units[@]}" 2>/dev/null || systemctl disable "${units[@]}" 2>/dev/null || true
        fi
fi
if [ -x tests/vm/deps.sh ] && [ "${1:-}" != --build-only ]; then
        tests/vm/deps.sh
fi
