/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "gpuswitch-bus.h"

/* Called once polkit has answered: authorized > 0, or an error in
 * error (AccessDenied, InteractiveAuthorizationRequired).  Also when the
 * caller left the bus meanwhile, or the daemon ends: then the reply goes
 * nowhere, and the callback only lets go of userdata. */
typedef void (*AuthCallback)(sd_bus_message *request, int authorized, const sd_bus_error *error, void *userdata);

/* The checks under way: at most one per caller, each dropped when its
 * caller leaves the bus (an interactive check may wait minutes for a
 * password that nobody will type). */
typedef struct PolkitQueue PolkitQueue;

PolkitQueue *polkit_queue_new(void);
/* Ends every check under way (the callbacks are called). */
void polkit_queue_free(PolkitQueue *q);

/* Asks polkit, without blocking, whether the sender of request may do
 * action.  Returns 1 when it may right away (root), 0 when the answer will
 * come through cb, -EBUSY when that caller waits for another check already,
 * other negative errno on failure to ask.  The details are NULL-terminated
 * key, value pairs polkit rules can read. */
int polkit_check_async(PolkitQueue *queue, sd_bus_message *request, const char *action, const char *const *details,
                       AuthCallback cb, void *userdata);
/* The same, never interactive whatever the message's flag: for a check
 * the caller did not ask for (whether a ListHolders caller may switch,
 * to show it other users' processes). */
int polkit_check_async_quiet(PolkitQueue *queue, sd_bus_message *request, const char *action,
                             const char *const *details, AuthCallback cb, void *userdata);
