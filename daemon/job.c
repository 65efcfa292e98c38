/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "job.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>

#include "errors.h"
#include <glib.h>

#include "holders.h"
#include "services.h"
#include "nvidia.h"
#include "switch-record.h"
#include "switch.h"
#include "util.h"
#include "worker.h"

#define HOLDERS_TERM_TIMEOUT_MS 5000
#define WATCHDOG_INTERVAL_USEC (250ULL * 1000)

void job_free(Job *j) {
        if (!j)
                return;
        sd_event_source_disable_unref(j->watchdog);
        sd_event_source_disable_unref(j->step_source);
        if (j->step_fd >= 0)
                close(j->step_fd);
        pthread_mutex_destroy(&j->lock);
        sd_bus_message_unref(j->request);
        g_strfreev(j->stop_services);
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
                sd_bus_error_setf(error, GS_ERROR_GPU_IN_USE,
                                  "%s is in use, nothing was changed:\n%s\nEnd them, or switch with --force "
                                  "(polkit action " POLKIT_ACTION_TERMINATE_HOLDERS ") to have them ended%s",
                                  g->address, strempty(who), nvidia_modeset_note(s, g));
                return -EADDRINUSE;
        }
        log_notice("%s: terminating its holders: %s", g->address, strempty(who));
        (void) holders_terminate(holders, n, HOLDERS_TERM_TIMEOUT_MS);
        return 0;
}

static int job_work(Job *j) {
        _cleanup_(gpu_freep) Gpu *now = NULL;
        _cleanup_(plan_freep) Plan *plan = NULL;
        Sysfs *s = &j->sysfs;
        const char *dir = switch_record_dir();
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
        if (plan_is_noop(plan)) {
                if (j->target == GPU_MODE_HOST)
                        (void) services_restart(dir, now->address);
                return 0;
        }
        /* The services first: they are holders too. */
        if (j->target == GPU_MODE_VFIO) {
                r = services_stop(dir, now->address, j->stop_services, &j->error);
                if (r < 0)
                        return r;
        }
        r = check_holders(s, now, j->flags, &j->error);
        if (r >= 0) {
                /* On disk before the first write: a daemon killed mid-switch
                 * finds it at its next start and puts the GPU back. */
                r = switch_record_write(dir, now, j->target);
                if (r < 0)
                        sd_bus_error_setf(&j->error, GS_ERROR_SWITCH_FAILED, "%s: cannot record the switch in %s: "
                                          "%s; nothing was changed", now->address, dir, strerror(-r));
        }
        if (r >= 0) {
                r = switch_run(s, now, plan, &j->error);
                (void) switch_record_remove(dir, now->address);
        }
        /* Back on the host, or the switch to vfio-pci did not happen: the
         * services run again. */
        if (j->target == GPU_MODE_HOST ? r >= 0 : r < 0)
                (void) services_restart(dir, now->address);
        return r;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* On the job's thread, before each kernel write. */
static void job_progress(const char *function, const char *step, const char *path, void *userdata) {
        Job *j = userdata;

        pthread_mutex_lock(&j->lock);
        snprintf(j->step, sizeof j->step, "%s: %s (%s)", function, step, path);
        j->step_since = now_usec();
        pthread_mutex_unlock(&j->lock);
        (void) eventfd_write(j->step_fd, 1);
}

/* The write under way, as Step, read under the lock. */
static uint64_t job_current_step(Job *j, char step[static sizeof j->step]) {
        uint64_t since;

        pthread_mutex_lock(&j->lock);
        memcpy(step, j->step, sizeof j->step);
        since = j->step_since;
        pthread_mutex_unlock(&j->lock);
        return since;
}

/* On the loop: each write announced as it starts (Step, PropertiesChanged),
 * so that clients show progress; writes quicker than the loop coalesce. */
static int on_step(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        Job *j = userdata;
        char step[sizeof j->step];
        eventfd_t n;

        (void) eventfd_read(fd, &n);
        if (job_current_step(j, step))
                managed_gpu_set_step(j->gpu, step);
        return 0;
}

static int job_thread(void *userdata) {
        Job *j = userdata;
        int r = job_work(j);

        pthread_mutex_lock(&j->lock);
        j->step_since = 0;
        pthread_mutex_unlock(&j->lock);
        return r;
}

/* A write that does not come back (nvidia's remove() waiting for a holder
 * we could not see) must not leave the caller hanging: after the step
 * timeout it gets Timeout naming the step, while the thread waits on; the
 * Step property keeps showing where the GPU is stuck. */
static int on_watchdog(sd_event_source *es, uint64_t usec, void *userdata) {
        Job *j = userdata;
        ManagedGpu *g = j->gpu;
        char step[sizeof j->step];
        uint64_t since = job_current_step(j, step);

        managed_gpu_set_step(g, since ? step : NULL);
        if (!j->replied && since && now_usec() - since >= (uint64_t) j->timeout_sec * 1000000) {
                log_error("%s: %s has not finished after %u s", g->address, step, j->timeout_sec);
                (void) sd_bus_reply_method_errorf(j->request, GS_ERROR_TIMEOUT,
                                                  "%s: %s has not finished after %u s: something still uses the "
                                                  "function; the switch goes on when it lets go (see 'gpuswitchctl "
                                                  "status' and 'gpuswitchctl holders')%s",
                                                  g->address, step, j->timeout_sec,
                                                  nvidia_modeset_note(&j->sysfs, j->snapshot));
                j->replied = true;
        }
        (void) sd_event_source_set_time_relative(es, WATCHDOG_INTERVAL_USEC);
        return sd_event_source_set_enabled(es, SD_EVENT_ONESHOT);
}

static void on_job_done(int result, void *userdata) {
        Job *j = userdata;
        ManagedGpu *g = j->gpu;
        int r;

        /* The caller is answered before the state is read again: the loop
         * reads it before it handles any other message, so no caller sees
         * the old one, and the reply does not wait for sysfs. */
        g->job = NULL;
        if (j->replied)
                /* Timeout was the answer; the log tells how it ended. */
                r = 0;
        else if (result < 0) {
                if (!sd_bus_error_is_set(&j->error))
                        sd_bus_error_set_errnof(&j->error, result, "switching %s to %s: %m", g->address,
                                                gpu_mode_to_string(j->target));
                r = sd_bus_reply_method_error(j->request, &j->error);
        } else
                r = sd_bus_reply_method_return(j->request, NULL);
        managed_gpu_set_step(g, NULL);
        (void) managed_gpu_refresh(g);

        if (result < 0)
                log_error("%s: switch to %s failed: %s", g->address, gpu_mode_to_string(j->target),
                          j->error.message);
        else
                log_info("%s: now %s%s", g->address, gpu_mode_to_string(g->mode),
                         j->replied ? ", after the step that timed out finished" : "");
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
                .sysfs = g->manager->sysfs,
                .timeout_sec = g->manager->config->step_timeout_sec,
                .step_fd = -1,
        };
        pthread_mutex_init(&j->lock, NULL);
        j->stop_services = g_strdupv(g->stop_services);
        j->sysfs.progress = job_progress;
        j->sysfs.progress_userdata = j;
        j->step_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (j->step_fd < 0)
                return -errno;
        r = sd_event_add_io(g->manager->event, &j->step_source, j->step_fd, EPOLLIN, on_step, j);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(g->manager->event, &j->watchdog, CLOCK_MONOTONIC, WATCHDOG_INTERVAL_USEC, 0,
                                       on_watchdog, j);
        if (r < 0)
                return r;

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
