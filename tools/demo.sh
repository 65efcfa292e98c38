#!/bin/bash
# The main job, shown on a machine without a spare GPU: builds gpuswitch,
# installs it into a QEMU guest (Debian's kernel, an emulated IOMMU and a
# three-function "GPU"), and switches that GPU to vfio-pci and back as an
# ordinary user whom a polkit group rule allows.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BUILD_DIR:-$PWD/build}
[ "${SKIP_DEPS:-0}" = 1 ] || tools/install-deps.sh
cmake -S . -B "$B" -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build "$B" -j"$(nproc)" >/dev/null
rm -rf "$B/stage"
DESTDIR="$B/stage" cmake --install "$B" >/dev/null
exec tests/vm/run-vm-test.sh --stage "$B/stage" --script tests/vm/guest/demo.sh --work "$B/vmwork" \
        --log "$B/vm-demo.log" --show
