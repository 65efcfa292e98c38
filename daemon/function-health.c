/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "function-health.h"

#include <stdio.h>

#include "util.h"

static const char *proc_root(const Sysfs *s) {
        return s->proc_root ? s->proc_root : "/proc";
}

int function_health_check(const Sysfs *s, const char *function, const char *driver, char **ret_problem) {
        _cleanup_free_ char *now = NULL, *state = NULL, *p = NULL;
        int r;

        *ret_problem = NULL;
        r = sysfs_read_driver(s, function, &now);
        if (r < 0)
                return asprintf(ret_problem, "its driver link cannot be read (%s)", strerror(-r)) < 0 ? -ENOMEM : r;
        if (!now)
                return asprintf(ret_problem, "%s did not bind", driver) < 0 ? -ENOMEM : -EIO;
        if (!streq(now, driver))
                return asprintf(ret_problem, "%s bound instead of %s", now, driver) < 0 ? -ENOMEM : -EIO;

        /* "unknown": the kernel does not know (a function without power
         * management that its driver never enabled); only a named other
         * state is one. */
        r = sysfs_read_attr(s, function, "power_state", &state);
        if (r >= 0 && !streq(state, "D0") && !streq(state, "unknown"))
                return asprintf(ret_problem, "bound, but in %s, not D0", state) < 0 ? -ENOMEM : -EIO;

        /* nvidia's probe can succeed while its RM did not take the GPU up */
        if (streq(driver, "nvidia")) {
                if (asprintf(&p, "%s/driver/nvidia/gpus/%s", proc_root(s), function) < 0)
                        return -ENOMEM;
                if (access(p, F_OK) < 0)
                        return asprintf(ret_problem, "bound, but %s is missing", p) < 0 ? -ENOMEM : -EIO;
        }
        return 0;
}

/* Writes 1 to reset, which resets the function by the first of its
 * reset_method that works.  Into *ret, what happened, for the message. */
static int reset_function(Sysfs *s, const char *function, char **ret) {
        _cleanup_free_ char *methods = NULL, *p = sysfs_function_path(s, function, "reset");
        int r;

        if (!p)
                return -ENOMEM;
        if (access(p, F_OK) < 0) {
                log_notice("%s: no reset method, probing again without a reset", function);
                return asprintf(ret, "no reset (the function has no reset method)") < 0 ? -ENOMEM : 0;
        }
        (void) sysfs_read_attr(s, function, "reset_method", &methods);
        r = sysfs_write_attr(s, function, "reset", "1");
        if (r < 0) {
                log_warning_errno(r, "%s: reset (%s) failed", function, strempty(methods));
                return asprintf(ret, "reset (%s) failed: %s", isempty(methods) ? "?" : methods, strerror(-r)) < 0
                               ? -ENOMEM : 0;
        }
        log_notice("%s: reset (%s)", function, strempty(methods));
        return asprintf(ret, "reset (%s)", isempty(methods) ? "?" : methods) < 0 ? -ENOMEM : 0;
}

int function_health_ensure(Sysfs *s, const char *function, const char *driver, KernelLog *log,
                           char **ret_message) {
        _cleanup_free_ char *problem = NULL, *again = NULL, *reset = NULL, *now = NULL, *logged = NULL,
                            *unbound = NULL;
        int r;

        *ret_message = NULL;
        r = function_health_check(s, function, driver, &problem);
        if (r != -EIO)
                return r;
        log_warning("%s: after the probe: %s; resetting it and probing once more", function, problem);

        /* A driver that bound but is not well lets go first: the reset and
         * the probe after it are for an unbound function. */
        r = sysfs_read_driver(s, function, &now);
        if (r >= 0 && now) {
                r = sysfs_unbind(s, function, now);
                if (r < 0 && asprintf(&unbound, "unbinding %s failed: %s; ", now, strerror(-r)) < 0)
                        return -ENOMEM;
        }
        r = reset_function(s, function, &reset);
        if (r < 0)
                return r;

        r = sysfs_bind(s, function, driver);
        if (r < 0)
                log_warning_errno(r, "%s: binding to %s again", function, driver);
        r = function_health_check(s, function, driver, &again);
        if (r != -EIO) {
                if (r >= 0)
                        log_notice("%s: on %s at the second probe", function, driver);
                return r;
        }

        logged = log ? kernel_log_about(log, function) : strdup("the kernel log was not read");
        if (!logged)
                return -ENOMEM;
        log_error("%s: %s at the second probe too", function, again);
        if (asprintf(ret_message,
                     "%s would not come up on %s: probed: %s; %s%s; probed again: %s; %s",
                     function, driver, problem, strempty(unbound), reset, again, logged) < 0)
                return -ENOMEM;
        return -EIO;
}
