/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "holders-cache.h"
#include "polkit.h"

/* The ListHolders calls under way, and who may see what.
 *
 * A caller's user is asked of the bus daemon (asynchronously, as polkit.c
 * does); then the GPU's HoldersCache gives the result (one scan at a time,
 * shared).  root sees every row; anyone else sees the rows of its own
 * processes, and the others' too when polkit says (non-interactively) that
 * it may switch the GPU: it could end them with --force anyway.  polkit is
 * asked only when the result has other users' processes.  A process the
 * caller may not see is one row (0, HOLDER_HIDDEN_UID, "", "").
 *
 * Per user, HOLDERS_CALLS_PER_UID calls at once (from the moment its user
 * is known to the reply; Busy beyond) and HOLDERS_CHECKS_PER_UID polkit
 * checks made for them (its other calls that need one wait for a slot).
 * So one user's many connections (PolkitQueue's limit of one check per
 * unique name does not bound those) neither fill polkit's queue nor keep
 * other users' calls waiting; a Switch is never refused for them. */
#define HOLDERS_CALLS_PER_UID 16
#define HOLDERS_CHECKS_PER_UID 4

typedef struct HoldersCalls HoldersCalls;

int holders_calls_new(PolkitQueue *polkit, HoldersCalls **ret);
/* The calls still waiting (for their caller's user or a scan) are answered
 * with an error.  Before worker_join_all(): scans delivered later find no
 * caller of ours. */
void holders_calls_free(HoldersCalls *l);

/* What a call is about. */
typedef struct HoldersQuery {
        HoldersCache *cache;
        uint64_t key;             /* of the GPU's state: holders_cache_get() */
        const char *gpu;          /* its address, for messages and polkit's "gpu" */
        const char *mode;         /* polkit's "mode": where a switch would take it now */
} HoldersQuery;

/* Answers request (a ListHolders call) later: returns 1, or a negative
 * errno with error set. */
int holders_calls_start(HoldersCalls *l, const HoldersQuery *q, sd_bus_message *request, sd_bus_error *error);

/* The GPU of cache is gone: the calls that still wait for its user or a
 * scan of cache are answered with error_name and message; those past it
 * (a polkit check for the rows they have) are answered as usual.  Then no
 * call refers to cache any more. */
void holders_calls_cancel_cache(HoldersCalls *l, HoldersCache *cache, const char *error_name, const char *message);

/* Calls under way, for tests: all, and those of uid. */
unsigned holders_calls_pending(const HoldersCalls *l);
