#!/bin/bash
# clean.sh, after broken.sh (test-harness.sh)
. "$(dirname "$0")/clean.sh"
