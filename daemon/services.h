/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <systemd/sd-bus.h>

#include "switch-error.h"

/* Services that keep a GPU open (nvidia-persistenced and nvidia-powerd for
 * an NVIDIA GPU, or what StopServices= names) are stopped through systemd's
 * D-Bus API before a switch to vfio-pci and started again after the switch
 * back.  The units that were running are kept in the state folder, so a
 * daemon started again later still restarts them.  Blocking: call on a
 * worker thread. */

/* Stops each running unit of the NULL-terminated list and records it;
 * each stop is waited for through systemd's JobRemoved for its job, up to
 * 20 s. */
int services_stop(const char *state_dir, const char *address, char *const *units, SwitchError *error);
/* The same on a connection of the caller's (tests: a stand-in systemd),
 * with its own timeout for each stop. */
int services_stop_on(sd_bus *bus, const char *state_dir, const char *address, char *const *units,
                     uint64_t timeout_usec, SwitchError *error);

/* Starts again what services_stop() recorded for this GPU, and forgets
 * them.  A unit that does not start is logged, not an error: the GPU is
 * where it was asked to be. */
int services_restart(const char *state_dir, const char *address);
