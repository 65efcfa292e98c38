/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <systemd/sd-bus.h>

#define SYSTEMD_BUS_NAME "org.freedesktop.systemd1"
#define SYSTEMD_BUS_PATH "/org/freedesktop/systemd1"
#define SYSTEMD_BUS_MANAGER "org.freedesktop.systemd1.Manager"

/* Starts UNIT ("replace") and waits for its job to end, told by systemd's
 * JobRemoved signal for that job: no polling.  *ret_result is the job's
 * result ("done", "failed", "canceled", "timeout", "dependency",
 * "skipped").  Blocking, on a connection of the caller's thread.  Returns
 * -ETIMEDOUT when no JobRemoved came within timeout_usec, or the error of
 * StartUnit (in *error). */
int systemd_start_unit_wait(sd_bus *bus, const char *unit, uint64_t timeout_usec, char **ret_result,
                            sd_bus_error *error);
/* The same for StopUnit: "done" once the unit is down (its processes
 * gone, so the files they held are closed). */
int systemd_stop_unit_wait(sd_bus *bus, const char *unit, uint64_t timeout_usec, char **ret_result,
                           sd_bus_error *error);
