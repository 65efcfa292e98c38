/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "gpu-info.h"

/* Sends call (Switch of the GPU argument gpu) and waits for its reply;
 * the GPU's properties as the switch began, asked for alongside, in
 * *ret_info (gpu_info_free()), or NULL if they could not be read; not
 * asked for when ret_info is NULL.
 * With progress, a switch that has run for more than a moment gets lines
 * on stderr: the GPU, then each kernel write as the daemon's Step property
 * names it.  Returns 0 or a negative errno with error set. */
int switch_call(sd_bus *bus, const char *gpu, const char *what, sd_bus_message *call, uint64_t timeout_usec,
                bool progress, GpuInfo **ret_info, sd_bus_error *error);
