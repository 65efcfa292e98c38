/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-event.h>

#include "engine.h"
#include "worker.h"

/* A switch run by the engine on a worker thread, for a caller on the
 * event loop.  The job keeps its own copy of what the switch needs; it
 * watches the kernel write under way and tells its owner, on the loop. */
typedef struct Job Job;

typedef struct JobCallbacks {
        /* The kernel write under way ("0000:0a:00.1: unbind (...)"), or NULL
         * between writes; writes quicker than the loop coalesce. */
        void (*progress)(const char *step, void *userdata);
        /* Once, when a write has not returned after the step timeout: the
         * switch goes on in the kernel, the caller may be answered now. */
        void (*stuck)(const char *step, unsigned timeout_sec, void *userdata);
        /* The switch is over; error is NULL on success, else it lives in
         * the job until job_free(), which is the owner's to call. */
        void (*done)(const SwitchError *error, void *userdata);
} JobCallbacks;

/* Starts engine_run(ctx) on a switch thread of the pool.  ctx is copied (its gpu
 * and stop_services too); ctx->observer must be NULL: the job observes. */
int job_start(sd_event *e, WorkerPool *workers, const SwitchContext *ctx, unsigned timeout_sec,
              const JobCallbacks *callbacks, void *userdata, Job **ret);

SwitchTarget job_target(const Job *j);
/* The GPU's functions as read on the worker once the switch was over (the
 * caller's now), or NULL when that read failed. */
Gpu *job_steal_state(Job *j);

/* Frees a job whose thread has ended (its done callback ran), or one that
 * never started. */
void job_free(Job *j);
static inline void job_freep(Job **j) { job_free(*j); }
