/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

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

        /* the thread's own until it ends */
        Gpu *snapshot;
        sd_bus_error error;
};

/* Starts a switch of g to target for request; g->job is set while it runs. */
int job_start(ManagedGpu *g, sd_bus_message *request, GpuMode target, uint64_t flags);

void job_free(Job *j);
