/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "switch-error.h"

/* Services that keep a GPU open (nvidia-persistenced and nvidia-powerd for
 * an NVIDIA GPU, or what StopServices= names) are stopped through systemd's
 * D-Bus API before a switch to vfio-pci and started again after the switch
 * back.  The units that were running are kept in the state folder, so a
 * daemon started again later still restarts them.  Blocking: call on a
 * worker thread. */

/* Stops each running unit of the NULL-terminated list and records it. */
int services_stop(const char *state_dir, const char *address, char *const *units, SwitchError *error);

/* Starts again what services_stop() recorded for this GPU, and forgets
 * them.  A unit that does not start is logged, not an error: the GPU is
 * where it was asked to be. */
int services_restart(const char *state_dir, const char *address);
