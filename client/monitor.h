/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

/* gpuswitchctl monitor: prints the managed GPUs' state (or the one at
 * object, when not NULL), then every change of Mode, Step, a function's
 * driver and DefaultMode, and gpuswitchd stopping and starting, until
 * SIGINT or SIGTERM.  json: one compact object per line.  Returns 0 when
 * interrupted, or a negative errno with error set when the daemon could
 * not be read at the start. */
int monitor_run(sd_bus *bus, const char *object, bool json, sd_bus_error *error);
