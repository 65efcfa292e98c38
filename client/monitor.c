/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "monitor.h"

#include <signal.h>
#include <stdio.h>
#include <systemd/sd-event.h>

#include "gpu-changes.h"
#include "gpu-info.h"
#include "gpuswitch-bus.h"
#include "json-out.h"
#include "output.h"
#include "util.h"


typedef struct Monitor {
        sd_bus *bus;
        bool json;
        const char *only;         /* the one GPU object to follow, or NULL */
        char *owner;              /* the daemon's unique name, "" while it is gone */
        GPtrArray *gpus;          /* GpuInfo, as last printed */
} Monitor;

static void monitor_done(Monitor *mon) {
        g_free(mon->owner);
        g_ptr_array_unref(mon->gpus);
}

typedef enum EventField { FIELD_END, FIELD_STRING, FIELD_BOOL } EventField;

/* One line: "12:00:01.234  0000:0a:00  mode     host -> switching", or a
 * JSON object with time, gpu (null for the daemon) and event, then the
 * event's own fields, as (type, key, value) triples up to FIELD_END. */
static void print_event(const Monitor *mon, const char *gpu, const char *event, const char *text, ...) {
        g_autoptr(GDateTime) now = g_date_time_new_now_local();
        va_list ap;

        if (!mon->json) {
                g_autofree char *clock = g_date_time_format(now, "%H:%M:%S");

                printf("%s.%03d  %-10s  %s%-8s%s %s\n", clock, g_date_time_get_microsecond(now) / 1000,
                       gpu ? gpu : "gpuswitchd", ansi_bold(), event, ansi_normal(), text);
                return;
        }

        g_autoptr(JsonOut) j = json_out_new();
        g_autofree char *iso = g_date_time_format_iso8601(now);
        EventField type;

        json_out_begin_object(j);
        json_out_member(j, "time");
        json_out_string(j, iso);
        json_out_member(j, "gpu");
        json_out_string(j, gpu);
        json_out_member(j, "event");
        json_out_string(j, event);
        va_start(ap, text);
        while ((type = va_arg(ap, EventField)) != FIELD_END) {
                const char *key = va_arg(ap, const char *);

                json_out_member(j, key);
                if (type == FIELD_BOOL)
                        json_out_bool(j, va_arg(ap, int));
                else {
                        const char *v = va_arg(ap, const char *);
                        json_out_string(j, isempty(v) ? NULL : v);
                }
        }
        va_end(ap);
        json_out_end_object(j);
        /* one object a line */
        json_out_print(j, stdout, false);
}

static const char *or_none(const char *s) {
        return s && *s ? s : "none";
}

static void print_state(const Monitor *mon, const GpuInfo *g) {
        g_autofree char *text = g_strdup_printf("%s, %s%s%s (default %s)", g->name ? g->name : "", g->mode,
                                                g->step ? ": " : "", strempty(g->step), or_none(g->default_mode));

        print_event(mon, g->address, "state", text, FIELD_STRING, "name", g->name, FIELD_STRING, "mode", g->mode,
                    FIELD_STRING, "step", g->step, FIELD_STRING, "default_mode", g->default_mode, FIELD_END);
}

/* (Re)reads the GPUs to follow, printing each one's state. */
static int monitor_load(Monitor *mon, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *object, *address, *name, *mode;
        g_autoptr(GPtrArray) objects = g_ptr_array_new_with_free_func(g_free);
        int r;

        g_ptr_array_set_size(mon->gpus, 0);
        g_free(mon->owner);
        r = gpu_daemon_owner(mon->bus, &mon->owner);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "asking the bus who owns " GPUSWITCH_BUS_NAME ": %m");

        r = sd_bus_call_method(mon->bus, GPUSWITCH_BUS_NAME, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE, "ListGpus", error,
                               &reply, NULL);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(osss)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(osss)", &object, &address, &name, &mode)) > 0)
                if (!mon->only || streq(mon->only, object))
                        g_ptr_array_add(objects, g_strdup(object));
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "reading ListGpus: %m");
        /* ListGpus may have started the daemon (bus activation). */
        if (isempty(mon->owner)) {
                g_free(mon->owner);
                (void) gpu_daemon_owner(mon->bus, &mon->owner);
        }

        for (size_t i = 0; i < objects->len; i++) {
                GpuInfo *g = NULL;

                r = gpu_info_get(mon->bus, g_ptr_array_index(objects, i), &g, error);
                if (r < 0)
                        return r;
                g_ptr_array_add(mon->gpus, g);
                print_state(mon, g);
        }
        return 0;
}

static void driver_changes(const Monitor *mon, GpuInfo *g, const GpuChanges *c) {
        for (size_t i = 0; i < c->n_functions; i++) {
                const FunctionInfo *now = &c->functions[i];
                FunctionInfo *was = NULL;

                for (size_t j = 0; j < g->n_functions; j++)
                        if (streq(g->functions[j].address, now->address))
                                was = &g->functions[j];
                if (was && streq_ptr(was->driver, now->driver))
                        continue;
                g_autofree char *text = g_strdup_printf("%s: %s -> %s", now->address, or_none(was ? was->driver : NULL),
                                                        or_none(now->driver));
                print_event(mon, g->address, "driver", text, FIELD_STRING, "function", now->address, FIELD_STRING,
                            "driver", now->driver, FIELD_STRING, "previous", was ? was->driver : NULL, FIELD_END);
                if (was) {
                        g_free(was->driver);
                        was->driver = g_strdup(now->driver);
                }
        }
}

/* A string property: printed when it changed, then remembered. */
static void string_change(const Monitor *mon, const GpuInfo *g, const char *event, char **field, const char *now) {
        g_autofree char *text = NULL;

        if (!now || streq(strempty(*field), now))
                return;
        if (streq(event, "step"))
                text = g_strdup(*now ? now : "(done)");
        else
                text = g_strdup_printf("%s -> %s", or_none(*field), now);
        print_event(mon, g->address, event, text, FIELD_STRING, streq(event, "default") ? "default_mode" : event, now,
                    FIELD_STRING, "previous", *field, FIELD_END);
        g_free(*field);
        *field = *now ? g_strdup(now) : NULL;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Monitor *mon = userdata;
        g_autoptr(GpuChanges) c = NULL;
        GpuInfo *g = NULL;

        if (!streq_ptr(sd_bus_message_get_sender(m), mon->owner))
                return 0;
        for (size_t i = 0; i < mon->gpus->len; i++)
                if (streq(((GpuInfo *) g_ptr_array_index(mon->gpus, i))->object, sd_bus_message_get_path(m)))
                        g = g_ptr_array_index(mon->gpus, i);
        if (!g || gpu_changes_read(m, &c) < 0)
                return 0;

        string_change(mon, g, "mode", &g->mode, c->mode);
        string_change(mon, g, "step", &g->step, c->step);
        if (c->has_functions)
                driver_changes(mon, g, c);
        string_change(mon, g, "default", &g->default_mode, c->default_mode);
        return 0;
}

static GpuInfo *find_gpu(const Monitor *mon, const char *object, guint *ret_index) {
        for (guint i = 0; i < mon->gpus->len; i++) {
                GpuInfo *g = g_ptr_array_index(mon->gpus, i);

                if (streq(g->object, object)) {
                        if (ret_index)
                                *ret_index = i;
                        return g;
                }
        }
        return NULL;
}

/* A GPU appeared (a card plugged in, found by a rescan, powered on): its
 * properties come with the signal. */
static int on_interfaces_added(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Monitor *mon = userdata;
        const char *object, *interface;
        GpuInfo *g = NULL;

        if (!streq_ptr(sd_bus_message_get_sender(m), mon->owner) || sd_bus_message_read(m, "o", &object) < 0 ||
            (mon->only && !streq(mon->only, object)) || find_gpu(mon, object, NULL))
                return 0;
        if (sd_bus_message_enter_container(m, 'a', "{sa{sv}}") < 0)
                return 0;
        while (!g && sd_bus_message_enter_container(m, 'e', "sa{sv}") > 0) {
                if (sd_bus_message_read(m, "s", &interface) < 0)
                        return 0;
                if (streq(interface, GPUSWITCH_GPU_INTERFACE)) {
                        if (gpu_info_read(m, object, &g, &error) < 0)
                                return 0;
                } else if (sd_bus_message_skip(m, "a{sv}") < 0 || sd_bus_message_exit_container(m) < 0)
                        return 0;
        }
        if (!g)
                return 0;
        g_ptr_array_add(mon->gpus, g);
        {
                g_autofree char *text = g_strdup_printf("%s, %s", g->name ? g->name : "", g->mode ? g->mode : "");

                print_event(mon, g->address, "added", text, FIELD_STRING, "name", g->name, FIELD_STRING, "mode",
                            g->mode, FIELD_STRING, "object", g->object, FIELD_END);
        }
        return 0;
}

/* A GPU went (unplugged, removed through sysfs). */
static int on_interfaces_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Monitor *mon = userdata;
        const char *object;
        GpuInfo *g;
        guint i;

        if (!streq_ptr(sd_bus_message_get_sender(m), mon->owner) || sd_bus_message_read(m, "o", &object) < 0)
                return 0;
        g = find_gpu(mon, object, &i);
        if (!g)
                return 0;
        print_event(mon, g->address, "removed", g->name ? g->name : "", FIELD_STRING, "name", g->name,
                    FIELD_STRING, "object", g->object, FIELD_END);
        g_ptr_array_remove_index(mon->gpus, i);
        return 0;
}

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Monitor *mon = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || !streq(name, GPUSWITCH_BUS_NAME))
                return 0;
        if (isempty(new_owner)) {
                print_event(mon, NULL, "daemon", "stopped", FIELD_BOOL, "running", false, FIELD_END);
                g_free(mon->owner);
                mon->owner = g_strdup("");
                return 0;
        }
        print_event(mon, NULL, "daemon", "started", FIELD_BOOL, "running", true, FIELD_END);
        if (monitor_load(mon, &error) < 0)
                print_event(mon, NULL, "daemon", error.message ? error.message : "cannot be read", FIELD_BOOL,
                            "running", true, FIELD_STRING, "error", error.message, FIELD_END);
        return 0;
}

int monitor_run(sd_bus *bus, const char *object, bool json, sd_bus_error *error) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *owner_slot = NULL, *changes_slot = NULL, *added_slot = NULL,
                                             *removed_slot = NULL;
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(monitor_done) Monitor mon = {
                .bus = bus, .json = json, .only = object,
                .gpus = g_ptr_array_new_with_free_func((GDestroyNotify) gpu_info_free),
        };
        sigset_t mask;
        int r;

        /* Lines for a pipe as they happen, not when a buffer fills. */
        setvbuf(stdout, NULL, _IOLBF, 0);

        r = sd_event_default(&event);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "setting up an event loop: %m");
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        r = sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        /* Subscribed before the first read: nothing between the two is lost. */
        if (r >= 0)
                r = sd_bus_match_signal(bus, &owner_slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus", "NameOwnerChanged", on_owner_changed, &mon);
        if (r >= 0)
                r = gpu_changes_match(bus, object, on_properties_changed, &mon, &changes_slot);
        if (r >= 0)
                r = sd_bus_match_signal(bus, &added_slot, NULL, GPUSWITCH_MANAGER_PATH,
                                        "org.freedesktop.DBus.ObjectManager", "InterfacesAdded", on_interfaces_added,
                                        &mon);
        if (r >= 0)
                r = sd_bus_match_signal(bus, &removed_slot, NULL, GPUSWITCH_MANAGER_PATH,
                                        "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved",
                                        on_interfaces_removed, &mon);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "subscribing to the daemon's signals: %m");

        r = monitor_load(&mon, error);
        if (r < 0)
                return r;
        if (!json && mon.gpus->len == 0)
                printf("No GPU is managed yet; waiting for changes (Ctrl-C to stop).\n");

        r = sd_event_loop(event);
        (void) sd_bus_detach_event(bus);
        return r < 0 ? sd_bus_error_set_errnof(error, r, "following the daemon: %m") : 0;
}
