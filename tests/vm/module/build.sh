#!/bin/bash
# Builds gpuswitch_test.ko for the guest kernel KVER into OUT, with Debian's
# linux-headers-KVER (installed here when missing).
#   build.sh KVER OUT_DIR
set -euo pipefail
kver=$1 out=$2
src=$(cd "$(dirname "$0")" && pwd)
hdr=/usr/src/linux-headers-$kver
if [ ! -d "$hdr" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "linux-headers-$kver" >/dev/null
fi
mkdir -p "$out"
cp "$src/gpuswitch_test.c" "$src/Makefile" "$out/"
make -s -C "$hdr" M="$out" modules >/dev/null
test -f "$out/gpuswitch_test.ko"
