/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "gpu-changes.h"
#include "gpuswitch-bus.h"

#include <errno.h>
#include <string.h>

#include "util.h"


void gpu_changes_free(GpuChanges *c) {
        if (!c)
                return;
        function_infos_free(c->functions, c->n_functions);
        g_free(c->mode);
        g_free(c->step);
        g_free(c->default_mode);
        g_free(c);
}

int gpu_changes_read(sd_bus_message *m, GpuChanges **ret) {
        g_autoptr(GpuChanges) c = g_new0(GpuChanges, 1);
        const char *interface, *key, *s;
        int r;

        r = sd_bus_message_read(m, "s", &interface);
        if (r < 0)
                return r;
        if (!streq(interface, GPUSWITCH_GPU_INTERFACE))
                return -ENOMSG;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        break;
                if (streq(key, "Mode") || streq(key, "Step") || streq(key, "DefaultMode")) {
                        r = sd_bus_message_read(m, "v", "s", &s);
                        if (r >= 0)
                                *(streq(key, "Mode") ? &c->mode : streq(key, "Step") ? &c->step : &c->default_mode) =
                                        g_strdup(s);
                } else if (streq(key, "Functions")) {
                        r = function_infos_read(m, &c->functions, &c->n_functions);
                        c->has_functions = r >= 0;
                }
                else
                        r = sd_bus_message_skip(m, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        if (r < 0)
                return r;
        *ret = g_steal_pointer(&c);
        return 0;
}

static char *changes_match(const char *object) {
        /* No sender=: the bus knows the daemon by its unique name only; the
         * handlers check the sender against the name's owner themselves. */
        return g_strdup_printf("type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                               "arg0='" GPUSWITCH_GPU_INTERFACE "',%s='%s'",
                               object ? "path" : "path_namespace", object ? object : GPUSWITCH_GPU_PATH_PREFIX);
}

int gpu_changes_match(sd_bus *bus, const char *object, sd_bus_message_handler_t cb, void *userdata,
                      sd_bus_slot **ret_slot) {
        g_autofree char *match = changes_match(object);

        return sd_bus_add_match(bus, ret_slot, match, cb, userdata);
}

int gpu_changes_match_async(sd_bus *bus, const char *object, sd_bus_message_handler_t cb, void *userdata,
                            sd_bus_slot **ret_slot) {
        g_autofree char *match = changes_match(object);

        return sd_bus_add_match_async(bus, ret_slot, match, cb, NULL, userdata);
}

int gpu_daemon_owner(sd_bus *bus, char **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *owner;
        int r;

        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "GetNameOwner", &error, &reply, "s", GPUSWITCH_BUS_NAME);
        if (r < 0) {
                *ret = g_strdup("");
                return sd_bus_error_has_name(&error, SD_BUS_ERROR_NAME_HAS_NO_OWNER) ? 0 : r;
        }
        r = sd_bus_message_read(reply, "s", &owner);
        if (r < 0)
                return r;
        *ret = g_strdup(owner);
        return 0;
}
