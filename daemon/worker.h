/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

/* Work that may take long (kernel writes that wait for a driver's
 * remove(), holder scans over every process) runs on persistent threads of
 * a pool; its completion is delivered on the event loop through one
 * eventfd, so the bus keeps being answered meanwhile.
 *
 * Each kind of work has threads of its own, made when work is queued and
 * none of its threads is free, up to the kind's limit, then kept: a switch
 * blocked in the kernel holds one switch thread and never delays a holder
 * scan or another GPU's switch.  Work past a kind's thread limit waits in
 * its queue; past its pending limit (queued, running or not yet delivered)
 * it is refused.  The limits keep the daemon under its unit's TasksMax=
 * (systemd/gpuswitchd.service.in): WORKER_SWITCH_THREADS + WORKER_READ_THREADS
 * + WORKER_SCAN_THREADS threads, each scan with up to
 * HOLDERS_SCAN_MAX_THREADS - 1 helpers, plus the loop. */
typedef struct WorkerPool WorkerPool;

typedef enum WorkKind {
        WORK_SWITCH,    /* a switch: may block in the kernel for as long as a holder keeps the GPU */
        WORK_SCAN,      /* a ListHolders scan: bounded by the process table */
        WORK_READ,      /* a read of a GPU's functions (after uevents, for Plan): reading driver_override
                           waits for the device lock while someone else's unbind is stuck in a remove() */
        _WORK_KIND_MAX,
} WorkKind;

#define WORKER_SWITCH_THREADS 4   /* one GPU's switch at a time; four GPUs at once */
#define WORKER_SWITCH_PENDING 16
#define WORKER_SCAN_THREADS 2
#define WORKER_SCAN_PENDING 8
#define WORKER_READ_THREADS 2
#define WORKER_READ_PENDING 8
#define WORKER_MAX_THREADS 8      /* the most a kind may be given */

typedef int (*WorkFunc)(void *userdata);                   /* on a pool thread */
typedef void (*WorkDoneFunc)(int result, void *userdata);  /* on the loop, after work() returned */

/* A pool with the limits above, delivering on e. */
int worker_pool_new(sd_event *e, WorkerPool **ret);
/* Joins (worker_join_all()) and frees. */
void worker_pool_free(WorkerPool *p);
static inline void worker_pool_freep(WorkerPool **p) { worker_pool_free(*p); }

/* For tests: max_threads (1..WORKER_MAX_THREADS) and max_pending (>= 1) of
 * a kind, before any work of it is queued. */
int worker_pool_set_limits(WorkerPool *p, WorkKind kind, unsigned max_threads, unsigned max_pending);

/* Queues work(userdata); done(result, userdata) follows on the loop, in
 * the order the work items ended.  -EBUSY when the kind has max_pending
 * items already; -ESHUTDOWN after worker_join_all(). */
int worker_start(WorkerPool *p, WorkKind kind, WorkFunc work, WorkDoneFunc done, void *userdata);

/* At exit: starts nothing more, waits for the work under way (a switch
 * writing to sysfs must not be cut off halfway), ends the threads, then
 * calls each done still owed, on the calling thread: with the work's
 * result, or -ECANCELED for work that never started.  Later worker_start()
 * calls fail. */
void worker_join_all(WorkerPool *p);

/* Threads a kind has now (made and kept), for tests. */
unsigned worker_pool_threads(WorkerPool *p, WorkKind kind);
