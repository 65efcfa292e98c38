#!/bin/bash
# What the QEMU tests need on the build machine (Debian 12); apt-get update
# is the caller's.
set -euo pipefail
pkgs=(qemu-system-x86 busybox-static kmod cpio xz-utils gcc libc6-dev linux-libc-dev
      dbus polkitd util-linux passwd procps psmisc python3)
missing=()
for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
