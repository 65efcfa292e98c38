/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <pthread.h>
#include <systemd/sd-bus.h>

#include "manager.h"
#include "plan.h"

/* A switch of one GPU, carried out on a thread of its own: the kernel
 * writes can take seconds, or block, and the bus loop must keep answering.
 * The thread works on a copy of the GPU's state; it reports back through an
 * eventfd that the loop watches, and the reply is sent from there. */
struct Job {
        ManagedGpu *gpu;
        GpuMode target;
        uint64_t flags;
        sd_bus_message *request;
        PlanPolicy policy;

        /* the thread's own */
        Gpu *snapshot;
        int result;
        sd_bus_error error;

        int done_fd;
        sd_event_source *done_source;
        pthread_t thread;
        bool thread_started;
};

/* Starts a switch of g to target for request; the reply is sent when it
 * is done.  g->job is set while it runs. */
int job_start(ManagedGpu *g, sd_bus_message *request, GpuMode target, uint64_t flags);

/* Frees a job whose thread has finished (or never started). */
void job_free(Job *j);
