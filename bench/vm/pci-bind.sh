#!/bin/bash
# The usual user script, a subject of the switch benchmark (switch-latency.sh):
# every function of the slot to DRIVER, or with "" back to its default driver.
#   pci-bind.sh DRIVER SLOT
# Like every program here that writes PCI sysfs, it runs only in the test VM.
. "$(dirname "$0")/../../tests/vm/testvm-guard.sh"
testvm_guard pci-bind.sh
drv=$1 slot=$2
[ -n "$drv" ] && modprobe "$drv"
for dev in /sys/bus/pci/devices/"$slot".*; do
        addr=${dev##*/}
        echo "$drv" > "$dev/driver_override"
        [ -e "$dev/driver" ] && echo "$addr" > "$dev/driver/unbind"
        echo "$addr" > /sys/bus/pci/drivers_probe
        [ -e "$dev/driver" ] || { echo "pci-bind: $addr has no driver" >&2; exit 1; }
done
