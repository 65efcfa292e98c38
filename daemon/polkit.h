/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "gpuswitch-bus.h"

/* Called once polkit has answered: authorized > 0, or an error in
 * error (AccessDenied, InteractiveAuthorizationRequired). */
typedef void (*AuthCallback)(sd_bus_message *request, int authorized, const sd_bus_error *error, void *userdata);

/* Asks polkit, without blocking, whether the sender of request may do
 * action.  Returns 1 when it may right away (root), 0 when the answer will
 * come through cb, negative errno on failure to ask.  The details are
 * NULL-terminated key, value pairs polkit rules can read. */
int polkit_check_async(sd_bus_message *request, const char *action, const char *const *details,
                       AuthCallback cb, void *userdata);

