/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "systemd-job.h"

#include <time.h>

#include "util.h"

typedef struct JobWait {
        const char *path;       /* the job's object path, once StartUnit answered */
        char *result;           /* set by JobRemoved for that path */
} JobWait;

/* JobRemoved(u id, o job, s unit, s result) */
static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        JobWait *w = userdata;
        const char *path, *unit, *result;
        uint32_t id;

        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        if (!w->path || !streq(path, w->path) || w->result)
                return 0;
        w->result = strdup(result);
        return w->result ? 0 : -ENOMEM;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static int unit_job_wait(sd_bus *bus, const char *method, const char *unit, uint64_t timeout_usec,
                         char **ret_result, sd_bus_error *error) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        JobWait w = {};
        uint64_t deadline;
        int r;

        /* Subscribed before the job exists: its JobRemoved can come before
         * the reply to StartUnit or StopUnit (a oneshot that ends at once, a
         * unit with nothing left to stop).  The signal is queued while
         * sd_bus_call() waits and handled below, when the job's path is
         * known. */
        r = sd_bus_match_signal(bus, &slot, SYSTEMD_BUS_NAME, SYSTEMD_BUS_PATH, SYSTEMD_BUS_MANAGER, "JobRemoved",
                                on_job_removed, &w);
        if (r < 0)
                return r;
        r = sd_bus_call_method(bus, SYSTEMD_BUS_NAME, SYSTEMD_BUS_PATH, SYSTEMD_BUS_MANAGER, method, error,
                               &reply, "ss", unit, "replace");
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "o", &w.path);
        if (r < 0)
                return r;

        deadline = now_usec() + timeout_usec;
        while (!w.result) {
                uint64_t now;

                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        goto fail;
                if (r > 0)
                        continue;
                now = now_usec();
                if (now >= deadline) {
                        r = -ETIMEDOUT;
                        goto fail;
                }
                r = sd_bus_wait(bus, deadline - now);
                if (r < 0)
                        goto fail;
        }
        *ret_result = w.result;
        return 0;
fail:
        free(w.result);
        return r;
}

int systemd_start_unit_wait(sd_bus *bus, const char *unit, uint64_t timeout_usec, char **ret_result,
                            sd_bus_error *error) {
        return unit_job_wait(bus, "StartUnit", unit, timeout_usec, ret_result, error);
}

int systemd_stop_unit_wait(sd_bus *bus, const char *unit, uint64_t timeout_usec, char **ret_result,
                           sd_bus_error *error) {
        return unit_job_wait(bus, "StopUnit", unit, timeout_usec, ret_result, error);
}
