/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "job.h"

#include <glib.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>

#include "util.h"

#define WATCHDOG_INTERVAL_USEC (250ULL * 1000)

struct Job {
        SwitchContext ctx;        /* pointing at the job's own copies below */
        Gpu *gpu;
        char **stop_services;
        Sysfs sysfs;              /* the caller's, with this job's progress hook */
        SwitchError error;
        Gpu *after;               /* read on the worker when the switch is over */

        JobCallbacks callbacks;
        void *userdata;

        /* The kernel write under way: set by the thread, read on the loop. */
        pthread_mutex_t lock;
        char step[160];
        uint64_t step_since;      /* CLOCK_MONOTONIC µs, 0: between writes */

        int step_fd;              /* eventfd: the thread wakes the loop at each write */
        sd_event_source *step_source, *watchdog;
        unsigned timeout_sec;
        bool stuck_told;
};

void job_free(Job *j) {
        if (!j)
                return;
        sd_event_source_disable_unref(j->watchdog);
        sd_event_source_disable_unref(j->step_source);
        closep(&j->step_fd);
        pthread_mutex_destroy(&j->lock);
        g_strfreev(j->stop_services);
        gpu_free(j->gpu);
        gpu_free(j->after);
        switch_error_done(&j->error);
        free(j);
}

SwitchTarget job_target(const Job *j) {
        return j->ctx.target;
}

Gpu *job_steal_state(Job *j) {
        return TAKE_PTR(j->after);
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

static uint64_t job_current_step(Job *j, char step[static sizeof j->step]) {
        uint64_t since;

        pthread_mutex_lock(&j->lock);
        memcpy(step, j->step, sizeof j->step);
        since = j->step_since;
        pthread_mutex_unlock(&j->lock);
        return since;
}

static int on_step(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        Job *j = userdata;
        char step[sizeof j->step];
        eventfd_t n;

        (void) eventfd_read(fd, &n);
        if (job_current_step(j, step))
                j->callbacks.progress(step, j->userdata);
        return 0;
}

/* A write that does not come back (nvidia's remove() waiting for a holder
 * we could not see) must not leave the caller hanging: after the step
 * timeout the owner is told, while the thread waits on. */
static int on_watchdog(sd_event_source *es, uint64_t usec, void *userdata) {
        Job *j = userdata;
        char step[sizeof j->step];
        uint64_t since = job_current_step(j, step);

        j->callbacks.progress(since ? step : NULL, j->userdata);
        if (!j->stuck_told && since && now_usec() - since >= (uint64_t) j->timeout_sec * 1000000) {
                j->stuck_told = true;
                j->callbacks.stuck(step, j->timeout_sec, j->userdata);
        }
        (void) sd_event_source_set_time_relative(es, WATCHDOG_INTERVAL_USEC);
        return sd_event_source_set_enabled(es, SD_EVENT_ONESHOT);
}

static int job_thread(void *userdata) {
        Job *j = userdata;
        int r = engine_run(&j->ctx, &j->error);

        /* here, not on the loop: the loop must not wait on sysfs; after a
         * rebind only the drivers changed, unless a function went */
        if (gpu_reread_changed(&j->sysfs, j->gpu, false, &j->after) < 0)
                j->after = NULL;
        pthread_mutex_lock(&j->lock);
        j->step_since = 0;
        pthread_mutex_unlock(&j->lock);
        return r;
}

static void on_job_done(int result, void *userdata) {
        Job *j = userdata;

        if (result < 0 && !switch_error_is_set(&j->error))
                switch_error_set(&j->error, SWITCH_ERROR_FAILED, _SWITCH_STEP_INVALID, NULL, result,
                                 "%s: switching to %s: %s", j->gpu->address, switch_target_to_string(j->ctx.target),
                                 strerror(-result));
        j->callbacks.progress(NULL, j->userdata);
        j->callbacks.done(result < 0 ? &j->error : NULL, j->userdata);
}

int job_start(sd_event *e, WorkerPool *workers, const SwitchContext *ctx, unsigned timeout_sec,
              const JobCallbacks *callbacks, void *userdata, Job **ret) {
        _cleanup_(job_freep) Job *j = NULL;
        int r;

        if (ctx->observer)
                return -EINVAL;
        j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        *j = (Job) {
                .ctx = *ctx,
                .sysfs = *ctx->sysfs,
                .error = SWITCH_ERROR_INIT,
                .callbacks = *callbacks,
                .userdata = userdata,
                .timeout_sec = timeout_sec,
                .step_fd = -1,
        };
        pthread_mutex_init(&j->lock, NULL);
        r = gpu_copy(ctx->gpu, &j->gpu);
        if (r < 0)
                return r;
        j->stop_services = g_strdupv((char **) ctx->stop_services);
        j->sysfs.progress = job_progress;
        j->sysfs.progress_userdata = j;
        j->ctx.gpu = j->gpu;
        j->ctx.stop_services = j->stop_services;
        j->ctx.sysfs = &j->sysfs;

        j->step_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (j->step_fd < 0)
                return -errno;
        r = sd_event_add_io(e, &j->step_source, j->step_fd, EPOLLIN, on_step, j);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(e, &j->watchdog, CLOCK_MONOTONIC, WATCHDOG_INTERVAL_USEC, 0, on_watchdog, j);
        if (r < 0)
                return r;
        r = worker_start(workers, WORK_SWITCH, job_thread, on_job_done, j);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(j);
        return 0;
}
