/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "holders.h"
#include "worker.h"

/* One GPU's holder scans: one at a time, whatever the number of callers.
 * A caller that asks while a scan runs waits for that scan and gets its
 * result; a result is handed out again for max_age after it was made, as
 * long as the caller's key is the one it was made for (the daemon's key
 * changes when the GPU's state is read again or a switch starts, so a
 * result never outlives them).  A failed scan is not kept. */
typedef struct HoldersCache HoldersCache;

typedef struct HoldersCacheOps {
        /* On the loop, when a scan is to start: what it needs (a copy of
         * the GPU as last read), in *ret_input. */
        int (*prepare)(void *userdata, void **ret_input);
        /* On a worker thread (WORK_SCAN). */
        int (*scan)(void *input, Holder **ret, size_t *ret_n);
        void (*input_free)(void *input);
        /* On the loop, after each scan that succeeded, before the callers
         * get it (optional): others may use what it found. */
        void (*scanned)(void *userdata, const Holder *h, size_t n);
} HoldersCacheOps;

/* On the loop: the result, valid during the call only, or a negative
 * errno (-EBUSY: the pool took no more scans). */
typedef void (*HoldersReadyFunc)(int result, const Holder *h, size_t n, void *userdata);

#define HOLDERS_CACHE_MAX_AGE_USEC (1000ULL * 1000)

int holders_cache_new(WorkerPool *pool, const HoldersCacheOps *ops, void *userdata, uint64_t max_age_usec,
                      HoldersCache **ret);
/* Callers still waiting get -ECANCELED. */
void holders_cache_free(HoldersCache *c);

/* The result for key: at once (ready is called before this returns, and
 * 1 is returned) when a result of key younger than max_age is there, else
 * through ready once the scan under way, or one started now, is done (0).
 * Negative errno when a scan cannot be started; ready is not called then. */
int holders_cache_get(HoldersCache *c, uint64_t key, HoldersReadyFunc ready, void *userdata);
/* Drops a caller's wait: ready will not be called for it. */
void holders_cache_cancel(HoldersCache *c, HoldersReadyFunc ready, void *userdata);
/* The kept result is not handed out again. */
void holders_cache_invalidate(HoldersCache *c);

/* Scans started, for tests. */
unsigned holders_cache_scans(const HoldersCache *c);
