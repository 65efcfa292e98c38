#!/bin/bash
# A guest script during which the guest goes down, for the test of the
# harness (test-harness.sh): the script fails, and the scripts after it run
# in a fresh guest.
. "$(dirname "$0")/../guest-lib.sh"

result going-down PASS
sync
echo o > /proc/sysrq-trigger
sleep 60
finish
