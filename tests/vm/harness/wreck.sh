#!/bin/bash
# A guest script that leaves the guest beyond repair, for the test of the
# harness (test-harness.sh): it removes a function of the GPU from the PCI
# bus, which no reset can bring back.  The boot must end after it, and the
# scripts after it run in a fresh guest.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"

echo 1 > /sys/bus/pci/devices/$XHCI/remove
[ -e /sys/bus/pci/devices/$XHCI ] && result function-removed FAIL || result function-removed PASS "$XHCI is gone"
finish
