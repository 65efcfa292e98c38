/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "gpu-info.h"

/* What one PropertiesChanged signal of org.gpuswitch1.Gpu says; NULL (or
 * has_functions false) for what it does not mention. */
typedef struct GpuChanges {
        char *mode, *step, *default_mode;
        bool has_functions;
        FunctionInfo *functions;
        size_t n_functions;
} GpuChanges;

void gpu_changes_free(GpuChanges *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GpuChanges, gpu_changes_free)

/* Reads a PropertiesChanged signal; -ENOMSG when it is about another
 * interface. */
int gpu_changes_read(sd_bus_message *m, GpuChanges **ret);

/* The match for the PropertiesChanged of every GPU object, or of one. */
int gpu_changes_match(sd_bus *bus, const char *object, sd_bus_message_handler_t cb, void *userdata,
                      sd_bus_slot **ret_slot);
/* The same without waiting for the bus to confirm it: messages sent after
 * it on the connection are routed after it is in place. */
int gpu_changes_match_async(sd_bus *bus, const char *object, sd_bus_message_handler_t cb, void *userdata,
                            sd_bus_slot **ret_slot);

/* The unique name that owns org.gpuswitch1 now, "" when nobody does. */
int gpu_daemon_owner(sd_bus *bus, char **ret);
