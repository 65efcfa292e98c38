/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

/* Sends call (Switch of the GPU argument gpu) and waits for its reply;
 * the GPU's object path, asked for alongside, in *ret_object (g_free()).
 * With progress, a switch that has run for more than a moment gets lines
 * on stderr: the GPU, then each kernel write as the daemon's Step property
 * names it.  Returns 0 or a negative errno with error set. */
int switch_call(sd_bus *bus, const char *gpu, const char *what, sd_bus_message *call, uint64_t timeout_usec,
                bool progress, char **ret_object, sd_bus_error *error);
