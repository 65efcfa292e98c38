/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.gpuswitch1.Manager: the vtable of dbus/org.gpuswitch1.xml and its handlers. */
#include <inttypes.h>
#include <stdio.h>

#include "bus.h"
#include "bus-errors.h"
#include "errors.h"
#include "holder-session.h"
#include "holders.h"
#include "holders-cache.h"
#include "holders-calls.h"
#include "manager.h"
#include "nvidia.h"
#include "plan.h"
#include "polkit.h"
#include "util.h"
#include "vm-watch.h"

#ifndef GPUSWITCH_VERSION
#define GPUSWITCH_VERSION "unknown"
#endif

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", GPUSWITCH_VERSION);
}

static int property_get_gpus(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "o");
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->n_gpus; i++) {
                r = sd_bus_message_append(reply, "o", m->gpus[i]->object_path);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int method_list_gpus(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(osss)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->n_gpus; i++) {
                const ManagedGpu *g = m->gpus[i];

                r = sd_bus_message_append(reply, "(osss)", g->object_path, g->address, g->name,
                                          gpu_state_to_string(managed_gpu_state(g)));
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* The "mode" argument of Plan and Switch: a target, not mixed or keep. */
static int parse_target_mode(const char *mode, SwitchTarget *ret, sd_bus_error *error) {
        char choices[SWITCH_TARGET_CHOICES_MAX];

        *ret = switch_target_from_string(mode);
        if (*ret < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "unknown mode '%.*s': expected %s",
                                         gs_quote_len(mode, 32), mode, switch_target_choices(choices, false));
        return 0;
}

/* The methods whose only argument is a GPU. */
static int read_gpu_arg(sd_bus_message *msg, Manager *m, ManagedGpu **ret, sd_bus_error *error) {
        const char *arg;
        int r;

        r = sd_bus_message_read(msg, "s", &arg);
        if (r < 0)
                return r;
        *ret = manager_find_gpu(m, arg, error);
        return *ret ? 0 : -sd_bus_error_get_errno(error);
}

static int method_get_gpu(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        ManagedGpu *g;
        int r;

        r = read_gpu_arg(msg, userdata, &g, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "o", g->object_path);
}

/* Plan reads the GPU's IOMMU groups: it runs on the worker pool and
 * replies from the completion.  The pool's pending limit bounds it (Busy
 * beyond). */

typedef struct Query {
        Manager *manager;
        sd_bus_message *request;
        Gpu *snapshot;            /* the GPU as last read */
        /* Plan */
        SwitchTarget target;
        PlanPolicy policy;
        Plan *plan;
        SwitchError error;
} Query;

static void query_free(Query *q) {
        sd_bus_message_unref(q->request);
        gpu_free(q->snapshot);
        plan_free(q->plan);
        switch_error_done(&q->error);
        free(q);
}

static int query_new(sd_bus_message *msg, ManagedGpu *g, Query **ret) {
        Manager *m = g->manager;
        Query *q;
        int r;

        q = calloc(1, sizeof *q);
        if (!q)
                return -ENOMEM;
        *q = (Query) { .manager = m, .request = sd_bus_message_ref(msg), .error = SWITCH_ERROR_INIT };
        r = gpu_copy(g->state, &q->snapshot);
        if (r < 0) {
                query_free(q);
                return r;
        }
        *ret = q;
        return 0;
}

/* Hands q to the pool; the reply comes from done. */
static int query_run(Query *q, WorkKind kind, WorkFunc work, WorkDoneFunc done, sd_bus_error *error) {
        int r = worker_start(q->manager->workers, kind, work, done, q);

        if (r >= 0)
                return 1;
        /* the work waiting for a thread is bounded: past that, callers
         * are told to come back rather than queue work without end */
        if (r == -EBUSY)
                sd_bus_error_setf(error, GS_ERROR_BUSY, "%s: gpuswitchd has as many such calls under way or waiting "
                                  "as it takes: try again when they are done", q->snapshot->address);
        else
                log_error_errno(r, "%s: starting a worker", q->snapshot->address);
        query_free(q);
        return r;
}

/* From the functions as last read (uevents keep them current): a read of
 * driver_override now would wait for the device lock of an unbind under way,
 * the daemon's own or someone else's, and a dry run must answer meanwhile.
 * The IOMMU group check reads the other devices' class and driver link,
 * which take no device lock. */
static int plan_work(void *userdata) {
        Query *q = userdata;

        return plan_make(&q->manager->sysfs, q->snapshot, q->target, &q->policy, &q->plan, &q->error);
}

static int plan_reply(Query *q) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(q->request, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sssss)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < q->plan->n_steps; i++) {
                const PlanStep *st = &q->plan->steps[i];
                char class[16];

                snprintf(class, sizeof class, "0x%06x", st->function->class);
                r = sd_bus_message_append(reply, "(sssss)", st->function->address, class, strempty(st->from),
                                          strempty(st->to), plan_action_to_string(st->action));
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static void on_plan_done(int result, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Query *q = userdata;
        int r;

        if (result < 0) {
                (void) bus_error_from_switch_error(&error, &q->error);
                r = sd_bus_reply_method_error(q->request, &error);
        } else
                r = plan_reply(q);
        if (r < 0)
                log_warning_errno(r, "%s: replying to Plan", q->snapshot->address);
        query_free(q);
}

static int method_plan(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *arg, *mode;
        SwitchTarget target;
        ManagedGpu *g;
        Query *q;
        int r;

        r = sd_bus_message_read(msg, "ss", &arg, &mode);
        if (r < 0)
                return r;
        r = parse_target_mode(mode, &target, error);
        if (r < 0)
                return r;
        g = manager_find_gpu(m, arg, error);
        if (!g)
                return -sd_bus_error_get_errno(error);
        r = query_new(msg, g, &q);
        if (r < 0)
                return r;
        q->target = target;
        q->policy = (PlanPolicy) { .allow_boot_vga = g->allow_boot_vga };
        return query_run(q, WORK_READ, plan_work, on_plan_done, error);
}

/* ListHolders: the GPU's HoldersCache scans (one scan at a time, its
 * result shared and kept a second), holders-calls.c decides what each
 * caller sees.  A scan reads the functions as last read: their drivers
 * come from the links, the class folders need no device lock. */
typedef struct HoldersScan {
        const Sysfs *sysfs;
        Gpu *snapshot;
} HoldersScan;

static void holders_scan_free(void *input) {
        HoldersScan *s = input;

        gpu_free(s->snapshot);
        free(s);
}

static int holders_scan_prepare(void *userdata, void **ret_input) {
        ManagedGpu *g = userdata;
        HoldersScan *s = calloc(1, sizeof *s);
        int r;

        if (!s)
                return -ENOMEM;
        s->sysfs = &g->manager->sysfs;
        r = gpu_copy(g->state, &s->snapshot);
        if (r < 0) {
                free(s);
                return r;
        }
        *ret_input = s;
        return 0;
}

static int holders_scan_run(void *input, Holder **ret, size_t *ret_n) {
        HoldersScan *s = input;
        _cleanup_free_ DeviceNode *nodes = NULL;
        size_t n_nodes;
        int r;

        r = gpu_device_nodes(s->sysfs, s->snapshot, &nodes, &n_nodes);
        if (r < 0)
                return log_error_errno(r, "%s: finding its device nodes", s->snapshot->address);
        r = holders_scan("/proc", nodes, n_nodes, ret, ret_n);
        if (r < 0)
                return log_error_errno(r, "%s: scanning for holders", s->snapshot->address);
        /* PID 1's and logind's copies of a session's device are its
         * controller's: as the switch counts them (the fd stores' names
         * are for the switch's message only) */
        r = holders_attribute(&(HolderSources) { .proc_root = "/proc", .sessions_dir = LOGIND_SESSIONS_DIR },
                              nodes, n_nodes, ret, ret_n);
        if (r < 0) {
                holders_free(*ret, *ret_n);
                *ret = NULL;
                *ret_n = 0;
                return log_error_errno(r, "%s: naming the holders behind systemd-logind", s->snapshot->address);
        }
        return 0;
}

/* The VM holding the GPU, when the scan found one: named without a scan
 * of the watch's own. */
static void holders_scanned(void *userdata, const Holder *h, size_t n) {
        ManagedGpu *g = userdata;

        vm_watch_holders_scanned(g->vm_watch, h, n);
}

static const HoldersCacheOps holders_scan_ops = {
        .prepare = holders_scan_prepare,
        .scan = holders_scan_run,
        .input_free = holders_scan_free,
        .scanned = holders_scanned,
};

static int method_list_holders(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        HoldersQuery q;
        ManagedGpu *g;
        int r;

        r = read_gpu_arg(msg, m, &g, error);
        if (r < 0)
                return r;
        if (!m->holders_calls) {
                r = holders_calls_new(m->polkit, &m->holders_calls);
                if (r < 0)
                        return r;
        }
        if (!g->holders_cache) {
                r = holders_cache_new(m->workers, &holders_scan_ops, g, HOLDERS_CACHE_MAX_AGE_USEC,
                                      &g->holders_cache);
                if (r < 0)
                        return r;
        }
        q = (HoldersQuery) {
                .cache = g->holders_cache,
                /* a read of the functions (a switch's end, a refresh) and a
                 * switch's start make a new key: nothing older is reused */
                .key = g->generation << 1 | (g->job != NULL),
                .gpu = g->address,
                /* polkit's details: those of the switch the caller could ask for now */
                .mode = switch_target_to_string(managed_gpu_state(g) == GPU_STATE_VFIO ? SWITCH_TARGET_HOST
                                                                                     : SWITCH_TARGET_VFIO),
        };
        return holders_calls_start(m->holders_calls, &q, msg, error);
}

/* polkit_check_async() could not start a check: one of the caller's is
 * under way (Busy: an interactive one may wait minutes for a password),
 * or polkit cannot be asked. */
static int polkit_refusal(int r, ManagedGpu *g, sd_bus_error *error) {
        if (r == -EBUSY)
                return sd_bus_error_set(error, GS_ERROR_BUSY,
                                        "an authorization of yours is being asked for already: answer it (or "
                                        "cancel it) first");
        return log_error_errno(r, "%s: asking polkit", g->address);
}

/* What Switch carries from the request through polkit to the job. */
typedef struct SwitchRequest {
        ManagedGpu *gpu;
        SwitchTarget target;
        uint64_t flags;
} SwitchRequest;

/* A switch under way: its request, answered once. */
typedef struct SwitchCall {
        sd_bus_message *request;
        bool replied;
} SwitchCall;

static void switch_call_free(SwitchCall *c) {
        sd_bus_message_unref(c->request);
        free(c);
}

/* The caller is not left hanging on a kernel write that does not return:
 * Timeout names the step, the Step property keeps showing it. */
static void on_switch_stuck(ManagedGpu *g, const char *step, unsigned timeout_sec, void *userdata) {
        SwitchCall *c = userdata;
        int r;

        if (c->replied)
                return;
        c->replied = true;
        r = sd_bus_reply_method_errorf(c->request, GS_ERROR_TIMEOUT,
                                       "%s: %s has not finished after %u s: something still uses the function; "
                                       "the switch goes on when it lets go (see 'gpuswitchctl status' and "
                                       "'gpuswitchctl holders')%s",
                                       g->address, step, timeout_sec, nvidia_modeset_note(&g->manager->sysfs, g->state));
        if (r < 0)
                log_warning_errno(r, "%s: replying to the switch request", g->address);
}

/* Answered after the state was read again: no caller sees the old one. */
static void on_switch_done(ManagedGpu *g, const SwitchError *e, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        SwitchCall *c = userdata;
        int r = 0;

        if (!c->replied) {
                if (e) {
                        (void) bus_error_from_switch_error(&error, e);
                        r = sd_bus_reply_method_error(c->request, &error);
                } else
                        r = sd_bus_reply_method_return(c->request, NULL);
        } else
                log_info("%s: the switch whose step timed out is over%s", g->address, e ? " (failed)" : "");
        if (r < 0)
                log_warning_errno(r, "%s: replying to the switch request", g->address);
        switch_call_free(c);
}

static void switch_start(sd_bus_message *msg, ManagedGpu *g, SwitchTarget target, uint64_t flags) {
        SwitchCall *c;
        SwitchOwner owner;
        int r;

        /* Checked again: another switch may have started while polkit was asked. */
        if (g->job) {
                (void) sd_bus_reply_method_errorf(msg, GS_ERROR_BUSY, "%s is switching to %s already", g->address,
                                                  switch_target_to_string(job_target(g->job)));
                return;
        }
        c = calloc(1, sizeof *c);
        if (!c) {
                (void) sd_bus_reply_method_errno(msg, ENOMEM, NULL);
                return;
        }
        c->request = sd_bus_message_ref(msg);
        owner = (SwitchOwner) { .stuck = on_switch_stuck, .done = on_switch_done, .userdata = c };
        r = managed_gpu_switch(g, target, flags, &owner);
        if (r < 0) {
                (void) sd_bus_reply_method_errnof(msg, r, "%s: cannot start the switch: %m", g->address);
                switch_call_free(c);
        }
}

/* The GPU may have left the PCI bus while polkit was asked. */
static bool reply_if_gone(sd_bus_message *msg, ManagedGpu *g) {
        if (!g->gone)
                return false;
        (void) sd_bus_reply_method_errorf(msg, GS_ERROR_NO_SUCH_GPU, "%s left the PCI bus", g->address);
        return true;
}

static void on_switch_authorized(sd_bus_message *msg, int authorized, const sd_bus_error *error, void *userdata) {
        SwitchRequest *req = userdata;

        if (authorized <= 0)
                (void) sd_bus_reply_method_error(msg, error);
        else if (!reply_if_gone(msg, req->gpu))
                switch_start(msg, req->gpu, req->target, req->flags);
        managed_gpu_unref(req->gpu);
        free(req);
}

static int method_switch(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *arg, *mode;
        const char *details[7];
        SwitchRequest *req;
        uint64_t flags;
        ManagedGpu *g;
        SwitchTarget target;
        int r;

        r = sd_bus_message_read(msg, "sst", &arg, &mode, &flags);
        if (r < 0)
                return r;
        r = parse_target_mode(mode, &target, error);
        if (r < 0)
                return r;
        if (flags & ~SWITCH_FLAGS_ALL)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "unknown flags 0x%" PRIx64,
                                         flags & ~SWITCH_FLAGS_ALL);
        g = manager_find_gpu(m, arg, error);
        if (!g)
                return -sd_bus_error_get_errno(error);
        if (g->job)
                return sd_bus_error_setf(error, GS_ERROR_BUSY, "%s is switching to %s already", g->address,
                                         switch_target_to_string(job_target(g->job)));

        details[0] = "gpu";
        details[1] = g->address;
        details[2] = "mode";
        details[3] = switch_target_to_string(target);
        details[4] = NULL;
        /* What happens to the holders, for a rule that asks more for
         * leaving them without the device than for the switch alone
         * (org.gpuswitch1.xml says why keep-holders needs no more). */
        if (flags & (SWITCH_FLAG_TERMINATE_HOLDERS | SWITCH_FLAG_KEEP_HOLDERS)) {
                details[4] = "holders";
                details[5] = !(flags & SWITCH_FLAG_TERMINATE_HOLDERS) ? "keep"
                             : (flags & SWITCH_FLAG_KEEP_HOLDERS)      ? "terminate-blocking"
                                                                       : "terminate";
                details[6] = NULL;
        }

        req = calloc(1, sizeof *req);
        if (!req)
                return -ENOMEM;
        *req = (SwitchRequest) { .gpu = managed_gpu_ref(g), .target = target, .flags = flags };

        r = polkit_check_async(m->polkit, msg, (flags & SWITCH_FLAG_TERMINATE_HOLDERS) ? POLKIT_ACTION_TERMINATE_HOLDERS
                                                                            : POLKIT_ACTION_SWITCH,
                               details, on_switch_authorized, req);
        if (r < 0) {
                managed_gpu_unref(g);
                free(req);
                return polkit_refusal(r, g, error);
        }
        if (r > 0) {
                switch_start(msg, g, target, flags);
                managed_gpu_unref(g);
                free(req);
        }
        /* The reply comes when the switch is done. */
        return 1;
}

/* What SetDefaultMode carries through polkit. */
typedef struct DefaultModeRequest {
        ManagedGpu *gpu;
        DefaultMode mode;
} DefaultModeRequest;

static void set_default_mode_reply(sd_bus_message *msg, ManagedGpu *g, DefaultMode mode) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        if (managed_gpu_set_default_mode(g, mode, &error) < 0)
                (void) sd_bus_reply_method_error(msg, &error);
        else
                (void) sd_bus_reply_method_return(msg, NULL);
}

static void on_configure_authorized(sd_bus_message *msg, int authorized, const sd_bus_error *error, void *userdata) {
        DefaultModeRequest *req = userdata;

        if (authorized <= 0)
                (void) sd_bus_reply_method_error(msg, error);
        else if (!reply_if_gone(msg, req->gpu))
                set_default_mode_reply(msg, req->gpu, req->mode);
        managed_gpu_unref(req->gpu);
        free(req);
}

static int method_set_default_mode(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *arg, *mode_arg;
        const char *details[5];
        DefaultModeRequest *req;
        char choices[SWITCH_TARGET_CHOICES_MAX];
        ManagedGpu *g;
        DefaultMode mode;
        int r;

        r = sd_bus_message_read(msg, "ss", &arg, &mode_arg);
        if (r < 0)
                return r;
        mode = default_mode_from_string(mode_arg);
        if (mode < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "unknown default mode '%.*s': expected %s",
                                         gs_quote_len(mode_arg, 32), mode_arg, switch_target_choices(choices, true));
        g = manager_find_gpu(m, arg, error);
        if (!g)
                return -sd_bus_error_get_errno(error);

        details[0] = "gpu";
        details[1] = g->address;
        details[2] = "mode";
        details[3] = default_mode_to_string(mode);
        details[4] = NULL;

        req = calloc(1, sizeof *req);
        if (!req)
                return -ENOMEM;
        *req = (DefaultModeRequest) { .gpu = managed_gpu_ref(g), .mode = mode };
        r = polkit_check_async(m->polkit, msg, POLKIT_ACTION_CONFIGURE, details, on_configure_authorized, req);
        if (r < 0) {
                managed_gpu_unref(g);
                free(req);
                return polkit_refusal(r, g, error);
        }
        if (r > 0) {
                set_default_mode_reply(msg, g, mode);
                managed_gpu_unref(g);
                free(req);
        }
        return 1;
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Gpus", "ao", property_get_gpus, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("ListGpus",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(osss)", gpus),
                                method_list_gpus, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetGpu",
                                SD_BUS_ARGS("s", gpu),
                                SD_BUS_RESULT("o", object),
                                method_get_gpu, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Switch",
                                SD_BUS_ARGS("s", gpu, "s", mode, "t", flags),
                                SD_BUS_NO_RESULT,
                                method_switch, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Plan",
                                SD_BUS_ARGS("s", gpu, "s", mode),
                                SD_BUS_RESULT("a(sssss)", steps),
                                method_plan, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListHolders",
                                SD_BUS_ARGS("s", gpu),
                                SD_BUS_RESULT("a(uuss)", holders),
                                method_list_holders, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetDefaultMode",
                                SD_BUS_ARGS("s", gpu, "s", mode),
                                SD_BUS_NO_RESULT,
                                method_set_default_mode, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

static int gpu_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                           sd_bus_error *error) {
        ManagedGpu *g = manager_find_gpu_by_path(userdata, path);

        if (!g)
                return 0;
        *found = g;
        return 1;
}

static int gpu_object_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***nodes,
                                sd_bus_error *error) {
        Manager *m = userdata;
        char **l = calloc(m->n_gpus + 1, sizeof *l);

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_gpus; i++) {
                l[i] = strdup(m->gpus[i]->object_path);
                if (!l[i]) {
                        for (size_t k = 0; k < i; k++)
                                free(l[k]);
                        free(l);
                        return -ENOMEM;
                }
        }
        *nodes = l;
        return 0;
}

int bus_attach(Manager *m) {
        int r;

        m->polkit = polkit_queue_new();
        if (!m->polkit)
                return -ENOMEM;
        r = sd_bus_add_object_vtable(m->bus, &m->manager_slot, GPUSWITCH_MANAGER_PATH,
                                     GPUSWITCH_MANAGER_INTERFACE, manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "registering %s", GPUSWITCH_MANAGER_PATH);
        r = sd_bus_add_fallback_vtable(m->bus, &m->gpu_slot, GPUSWITCH_GPU_PATH_PREFIX, GPUSWITCH_GPU_INTERFACE,
                                       gpu_vtable, gpu_object_find, m);
        if (r < 0)
                return log_error_errno(r, "registering %s", GPUSWITCH_GPU_PATH_PREFIX);
        r = sd_bus_add_node_enumerator(m->bus, &m->gpu_enumerator_slot, GPUSWITCH_GPU_PATH_PREFIX,
                                       gpu_object_enumerate, m);
        if (r < 0)
                return log_error_errno(r, "registering the GPU enumerator");
        /* GetManagedObjects, InterfacesAdded and InterfacesRemoved for the
         * GPUs that come and go (manager_add_gpu(), manager_remove_gpu()) */
        r = sd_bus_add_object_manager(m->bus, &m->object_manager_slot, GPUSWITCH_MANAGER_PATH);
        if (r < 0)
                return log_error_errno(r, "registering the object manager");
        return 0;
}
