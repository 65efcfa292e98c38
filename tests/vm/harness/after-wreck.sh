#!/bin/bash
# clean.sh, after wreck.sh (test-harness.sh)
. "$(dirname "$0")/clean.sh"
