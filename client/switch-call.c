/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "switch-call.h"

#include <stdio.h>
#include <systemd/sd-event.h>

#include "gpu-changes.h"
#include "gpu-info.h"
#include "gpuswitch-bus.h"
#include "util.h"

/* A switch that ends within this is reported by its result line alone. */
#define PROGRESS_AFTER_USEC UINT64_C(1000000)

typedef struct SwitchCall {
        sd_event *event;
        sd_bus *bus;
        const char *what;
        char *object;             /* the GPU's object, from GetGpu */
        GpuInfo *info;            /* its properties as the switch began */
        char *owner;              /* the daemon's unique name */
        char *step;               /* the latest Step, until it is shown */
        bool switching, shown;
        sd_event_source *moment, *listen;
        sd_bus_slot *object_slot, *info_slot, *owner_slot, *changes_slot, *state_slot;
        sd_bus_error *error;
        bool done, want_info;
        int result, object_result;
} SwitchCall;

static void switch_call_done(SwitchCall *c) {
        g_free(c->object);
        gpu_info_free(c->info);
        g_free(c->owner);
        g_free(c->step);
        sd_event_source_disable_unref(c->moment);
        sd_event_source_disable_unref(c->listen);
        sd_bus_slot_unref(c->object_slot);
        sd_bus_slot_unref(c->info_slot);
        sd_bus_slot_unref(c->owner_slot);
        sd_bus_slot_unref(c->changes_slot);
        sd_bus_slot_unref(c->state_slot);
}

static void show_step(const char *step) {
        if (!isempty(step))
                fprintf(stderr, "  %s\n", step);
}

/* GetAll of the GPU's properties, for the progress and result lines, that
 * never starts the daemon: one that died during the switch (and puts the
 * GPU back when it starts) is started by the next call that needs it, not
 * by lines that are a courtesy. */
static int get_properties_async(SwitchCall *c, sd_bus_slot **slot, sd_bus_message_handler_t handler) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(c->bus, &m, GPUSWITCH_BUS_NAME, c->object,
                                           "org.freedesktop.DBus.Properties", "GetAll");
        if (r >= 0)
                r = sd_bus_message_set_auto_start(m, false);
        if (r >= 0)
                r = sd_bus_message_append(m, "s", GPUSWITCH_GPU_INTERFACE);
        if (r < 0)
                return r;
        return sd_bus_call_async(c->bus, slot, m, handler, c, 0);
}

static int on_moment(sd_event_source *s, uint64_t usec, void *userdata) {
        SwitchCall *c = userdata;

        fprintf(stderr, "gpuswitchctl: %s...\n", c->what);
        show_step(c->step);
        c->shown = true;
        return 0;
}

static int on_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SwitchCall *c = userdata;
        g_autoptr(GpuChanges) changes = NULL;

        if (!streq_ptr(sd_bus_message_get_sender(m), c->owner) || gpu_changes_read(m, &changes) < 0)
                return 0;
        /* The clock starts when the switch does, not while polkit asks for
         * a password. */
        if (changes->mode && streq(changes->mode, "switching") && !c->switching) {
                c->switching = true;
                (void) sd_event_add_time_relative(c->event, &c->moment, CLOCK_MONOTONIC, PROGRESS_AFTER_USEC, 0,
                                                  on_moment, c);
        }
        if (changes->step) {
                if (c->shown)
                        show_step(changes->step);
                g_free(c->step);
                c->step = g_strdup(changes->step);
        }
        return 0;
}

static int on_owner(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SwitchCall *c = userdata;
        const char *owner;

        if (!sd_bus_message_is_method_error(m, NULL) && sd_bus_message_read(m, "s", &owner) >= 0) {
                g_free(c->owner);
                c->owner = g_strdup(owner);
        }
        return 0;
}

/* The GPU's Mode and Step when the listening starts. */
static int on_state(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SwitchCall *c = userdata;
        g_autofree char *mode = NULL, *step = NULL;
        const char *key, *v;
        int r;

        if (sd_bus_message_is_method_error(m, NULL))
                return 0;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read(m, "s", &key);
                if (r >= 0 && (streq(key, "Mode") || streq(key, "Step"))) {
                        r = sd_bus_message_read(m, "v", "s", &v);
                        if (r >= 0)
                                *(streq(key, "Mode") ? &mode : &step) = g_strdup(v);
                } else if (r >= 0)
                        r = sd_bus_message_skip(m, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        /* Not switching yet: polkit is still asking; on_changed starts the
         * clock when the switch does. */
        if (r < 0 || !streq_ptr(mode, "switching") || c->switching)
                return 0;
        c->switching = true;
        if (!c->step)          /* a signal since is newer */
                c->step = g_steal_pointer(&step);
        return on_moment(NULL, 0, c);
}

/* A switch still going after a second: from now on its changes are
 * followed.  Not before: a quick switch's signals (its Mode, one Step per
 * kernel write) would wake this process for nothing.  The bus answers in
 * order, so the daemon's name is known before any signal of it arrives,
 * and the signals sent after the state was read come after it. */
static int on_listen(sd_event_source *s, uint64_t usec, void *userdata) {
        SwitchCall *c = userdata;

        if (!c->object)         /* no such GPU: the switch's reply says so */
                return 0;

        (void) sd_bus_call_method_async(c->bus, &c->owner_slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus", "GetNameOwner", on_owner, c, "s",
                                        GPUSWITCH_BUS_NAME);
        (void) gpu_changes_match_async(c->bus, c->object, on_changed, c, &c->changes_slot);
        (void) get_properties_async(c, &c->state_slot, on_state);
        return 0;
}

/* Without it the caller asks again after the switch. */
static int on_info(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        SwitchCall *c = userdata;

        if (!sd_bus_message_is_method_error(m, NULL))
                (void) gpu_info_read(m, c->object, &c->info, &error);
        c->info_slot = sd_bus_slot_unref(c->info_slot);
        return 0;
}

/* The GPU's properties are asked for as soon as its object is known,
 * while the switch runs: the result line then needs no call after the
 * reply, when the daemon is busy reading the new state and the kernel and
 * udev with the functions' new drivers. */
static int on_object(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SwitchCall *c = userdata;
        const char *path;
        int r;

        if (sd_bus_message_is_method_error(m, NULL))
                r = -sd_bus_error_get_errno(sd_bus_message_get_error(m));
        else
                r = sd_bus_message_read(m, "o", &path);
        if (r >= 0) {
                c->object = g_strdup(path);
                if (c->want_info)
                        (void) get_properties_async(c, &c->info_slot, on_info);
        }
        c->object_result = r < 0 ? r : 0;
        c->object_slot = sd_bus_slot_unref(c->object_slot);
        return 0;
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SwitchCall *c = userdata;
        int r = 0;

        if (sd_bus_message_is_method_error(m, NULL)) {
                sd_bus_error_copy(c->error, sd_bus_message_get_error(m));
                r = -sd_bus_error_get_errno(c->error);
        }
        c->result = r < 0 ? r : 0;
        c->done = true;
        return 0;
}

int switch_call(sd_bus *bus, const char *gpu, const char *what, sd_bus_message *call, uint64_t timeout_usec,
                bool progress, GpuInfo **ret_info, sd_bus_error *error) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *call_slot = NULL;
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(switch_call_done) SwitchCall c = { .bus = bus, .what = what, .error = error,
                                                     .want_info = ret_info != NULL };
        int r;

        r = sd_event_new(&event);
        if (r < 0)
                return r;
        c.event = event;
        r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;
        /* The GPU's object is asked for alongside the switch, not before
         * it: the daemon answers it first, and a GPU that does not exist
         * gets the same error from both. */
        r = sd_bus_call_method_async(bus, &c.object_slot, GPUSWITCH_BUS_NAME, GPUSWITCH_MANAGER_PATH,
                                     GPUSWITCH_MANAGER_INTERFACE, "GetGpu", on_object, &c, "s", gpu);
        if (r < 0)
                return r;
        /* No progress without the daemon's name: the lines are a courtesy,
         * the reply is what counts. */
        if (progress)
                (void) sd_event_add_time_relative(event, &c.listen, CLOCK_MONOTONIC, PROGRESS_AFTER_USEC, 0,
                                                  on_listen, &c);
        r = sd_bus_call_async(bus, &call_slot, call, on_reply, &c, timeout_usec);
        /* Not sd_event_loop() and sd_event_exit(): the loop's exit would
         * close the bus, which the caller goes on using. */
        while (r >= 0 && (!c.done || c.object_slot || c.info_slot))
                r = sd_event_run(event, UINT64_MAX);
        if (r >= 0)
                r = c.result;
        if (r >= 0)
                r = c.object_result;

        (void) sd_bus_detach_event(bus);
        if (r < 0 && !sd_bus_error_is_set(error))
                sd_bus_error_set_errno(error, r);
        if (r >= 0 && ret_info)
                *ret_info = g_steal_pointer(&c.info);
        return r;
}
