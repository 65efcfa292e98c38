/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "job.h"

#include <stdlib.h>

#include "errors.h"
#include "holders.h"
#include "switch.h"
#include "util.h"
#include "worker.h"

#define HOLDERS_TERM_TIMEOUT_MS 5000

void job_free(Job *j) {
        if (!j)
                return;
        sd_bus_message_unref(j->request);
        sd_bus_error_free(&j->error);
        gpu_free(j->snapshot);
        free(j);
}

static void job_freep(Job **j) { job_free(*j); }

/* An unbind of a driver whose device is held open waits for the holders
 * to let go (nvidia's remove() waits forever): never start one. */
static int check_holders(Sysfs *s, const Gpu *g, uint64_t flags, sd_bus_error *error) {
        _cleanup_free_ DeviceNode *nodes = NULL;
        _cleanup_free_ Holder *holders = NULL;
        _cleanup_free_ char *who = NULL;
        size_t n_nodes, n;
        int r;

        r = gpu_device_nodes(s, g, &nodes, &n_nodes);
        if (r < 0)
                return log_error_errno(r, "%s: finding its device nodes", g->address);
        r = holders_scan("/proc", nodes, n_nodes, &holders, &n);
        if (r < 0)
                return log_error_errno(r, "%s: scanning for processes holding it", g->address);
        if (n == 0)
                return 0;
        who = holders_describe(holders, n);
        if (!(flags & SWITCH_FLAG_TERMINATE_HOLDERS)) {
                sd_bus_error_setf(error, GS_ERROR_GPU_IN_USE, "%s is in use: %s; nothing was changed",
                                  g->address, strempty(who));
                return -EADDRINUSE;
        }
        log_notice("%s: terminating its holders: %s", g->address, strempty(who));
        (void) holders_terminate(holders, n, HOLDERS_TERM_TIMEOUT_MS);
        return 0;
}

static int job_work(Job *j) {
        _cleanup_(gpu_freep) Gpu *now = NULL;
        _cleanup_(plan_freep) Plan *plan = NULL;
        Sysfs *s = &j->gpu->manager->sysfs;
        int r;

        /* The state may have changed since the request came in: plan from
         * what sysfs says now. */
        r = gpu_reread(s, j->snapshot, &now);
        if (r < 0) {
                sd_bus_error_setf(&j->error, GS_ERROR_SWITCH_FAILED, "%s: reading its functions: %s",
                                  j->snapshot->address, strerror(-r));
                return r;
        }
        r = plan_make(s, now, j->target, &j->policy, &plan, &j->error);
        if (r < 0)
                return r;
        if (plan_is_noop(plan))
                return 0;
        r = check_holders(s, now, j->flags, &j->error);
        if (r < 0)
                return r;
        return switch_run(s, now, plan, &j->error);
}

static int job_thread(void *userdata) {
        return job_work(userdata);
}

static void on_job_done(int result, void *userdata) {
        Job *j = userdata;
        ManagedGpu *g = j->gpu;
        int r;

        g->job = NULL;
        managed_gpu_refresh(g);

        if (result < 0) {
                if (!sd_bus_error_is_set(&j->error))
                        sd_bus_error_set_errnof(&j->error, result, "switching %s to %s: %m", g->address,
                                                gpu_mode_to_string(j->target));
                log_error("%s: switch to %s failed: %s", g->address, gpu_mode_to_string(j->target),
                          j->error.message);
                r = sd_bus_reply_method_error(j->request, &j->error);
        } else {
                log_info("%s: now %s", g->address, gpu_mode_to_string(g->mode));
                r = sd_bus_reply_method_return(j->request, NULL);
        }
        if (r < 0)
                log_warning_errno(r, "%s: replying to the switch request", g->address);

        job_free(j);
}

int job_start(ManagedGpu *g, sd_bus_message *request, GpuMode target, uint64_t flags) {
        _cleanup_(job_freep) Job *j = NULL;
        int r;

        if (g->job)
                return -EBUSY;

        j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        *j = (Job) {
                .gpu = g,
                .target = target,
                .flags = flags,
                .request = sd_bus_message_ref(request),
                .policy.allow_boot_vga = g->allow_boot_vga,
                .error = SD_BUS_ERROR_NULL,
        };

        r = gpu_copy(g->state, &j->snapshot);
        if (r < 0)
                return r;
        r = worker_start(g->manager->event, &g->manager->workers, job_thread, on_job_done, j);
        if (r < 0)
                return r;

        log_info("%s: switching to %s", g->address, gpu_mode_to_string(target));
        g->job = TAKE_PTR(j);
        managed_gpu_set_mode(g, GPU_MODE_SWITCHING);
        return 0;
}
