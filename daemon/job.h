/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "manager.h"
#include "plan.h"

/* A switch of one GPU.  It runs on a worker thread (worker.h) on a copy of
 * the GPU's state; the reply to the request is sent when it is done. */
struct Job {
        ManagedGpu *gpu;
        GpuMode target;
        uint64_t flags;
        sd_bus_message *request;
        PlanPolicy policy;
        char **stop_services;

        /* the thread's own until it ends */
        Gpu *snapshot;
        sd_bus_error error;
        Sysfs sysfs;              /* the manager's, with this job's progress hook */

        /* The kernel write under way, set by the thread, read by the
         * watchdog on the loop. */
        pthread_mutex_t lock;
        char step[160];
        uint64_t step_since;      /* CLOCK_MONOTONIC µs, 0: between writes */

        int step_fd;              /* eventfd: the thread wakes the loop at each write */
        sd_event_source *step_source, *watchdog;
        unsigned timeout_sec;
        bool replied;             /* Timeout was sent; the switch went on */
};

/* Starts a switch of g to target for request; g->job is set while it runs. */
int job_start(ManagedGpu *g, sd_bus_message *request, GpuMode target, uint64_t flags);

void job_free(Job *j);
