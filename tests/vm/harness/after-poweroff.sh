#!/bin/bash
# clean.sh, after poweroff.sh (test-harness.sh)
. "$(dirname "$0")/clean.sh"
