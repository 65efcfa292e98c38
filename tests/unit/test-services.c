/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Stopping the services that hold a GPU (daemon/services.c): each stop
 * waited for through systemd's JobRemoved for its job, not by polling the
 * unit's ActiveState; a job that fails or never ends is an error naming
 * the unit; what was stopped is recorded for the start after the switch
 * back.  Against a stand-in for systemd's Manager (fake-systemd.c). */
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include "services.h"
#include "systemd-job.h"
#include "fake-systemd.h"
#include "testlib.h"
#include "util.h"

#define UNIT_PATH_PREFIX SYSTEMD_BUS_PATH "/unit"

/* The stand-in's units: name, state, and what a stop does.
 *   slow.service      the reply to StopUnit, then (the stand-in busy a
 *                     while, as a service taking its time to exit) the
 *                     unit inactive and JobRemoved "done"
 *   quick.service     JobRemoved "done" before the reply
 *   failing.service   JobRemoved "failed", the unit still active
 *   stuck.service     the reply, no JobRemoved ever
 *   idle.service      inactive: never stopped */
typedef struct Unit {
        const char *name, *path;
        const char *state;
        unsigned stops;
} Unit;

static Unit units[] = {
        { "slow.service", UNIT_PATH_PREFIX "/slow", "active" },
        { "quick.service", UNIT_PATH_PREFIX "/quick", "active" },
        { "failing.service", UNIT_PATH_PREFIX "/failing", "active" },
        { "stuck.service", UNIT_PATH_PREFIX "/stuck", "active" },
        { "idle.service", UNIT_PATH_PREFIX "/idle", "inactive" },
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned state_reads_while_stopping;   /* ActiveState asked for between StopUnit and JobRemoved */
static bool stopping;
static uint32_t next_job = 100;

static Unit *find_unit(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (streq(units[i].name, name) || streq(units[i].path, name))
                        return &units[i];
        return NULL;
}

static int method_get_unit(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *name;
        Unit *u;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        u = find_unit(name);
        if (!u)
                return sd_bus_error_setf(error, "org.freedesktop.systemd1.NoSuchUnit", "Unit %s not loaded.", name);
        return sd_bus_reply_method_return(m, "o", u->path);
}

static char slow_job[64];
static uint32_t slow_job_id;

static int on_slow_stopped(sd_event_source *s, uint64_t usec, void *userdata) {
        Unit *u = find_unit("slow.service");

        pthread_mutex_lock(&lock);
        stopping = false;
        pthread_mutex_unlock(&lock);
        u->state = "inactive";
        return fake_systemd_job_removed(userdata, NULL, slow_job_id, slow_job, u->name, "done");
}

static int method_stop_unit(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        sd_bus *bus = sd_bus_message_get_bus(m);
        char job[64];
        const char *name, *mode;
        uint32_t id;
        Unit *u;
        int r;

        r = sd_bus_message_read(m, "ss", &name, &mode);
        if (r < 0)
                return r;
        u = find_unit(name);
        if (!u)
                return sd_bus_error_setf(error, "org.freedesktop.systemd1.NoSuchUnit", "Unit %s not loaded.", name);
        id = next_job++;
        snprintf(job, sizeof job, SYSTEMD_BUS_PATH "/job/%u", id);
        pthread_mutex_lock(&lock);
        u->stops++;
        pthread_mutex_unlock(&lock);

        if (streq(u->name, "quick.service")) {
                u->state = "inactive";
                r = fake_systemd_job_removed(bus, NULL, id, job, u->name, "done");
                return r < 0 ? r : sd_bus_reply_method_return(m, "o", job);
        }
        r = sd_bus_reply_method_return(m, "o", job);
        if (r < 0)
                return r;
        if (streq(u->name, "stuck.service"))
                return 0;
        if (streq(u->name, "failing.service"))
                return fake_systemd_job_removed(bus, NULL, id, job, u->name, "failed");
        /* slow: the service takes its time (on the stand-in's loop, which
         * answers meanwhile); a caller polling would be seen asking for
         * ActiveState */
        pthread_mutex_lock(&lock);
        stopping = true;
        pthread_mutex_unlock(&lock);
        slow_job_id = id;
        snprintf(slow_job, sizeof slow_job, "%s", job);
        return sd_event_add_time_relative(sd_bus_get_event(bus), NULL, CLOCK_MONOTONIC, 300 * 1000, 0,
                                          on_slow_stopped, bus);
}

static int property_active_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Unit *u = find_unit(path);

        pthread_mutex_lock(&lock);
        if (stopping)
                state_reads_while_stopping++;
        pthread_mutex_unlock(&lock);
        return sd_bus_message_append(reply, "s", u ? u->state : "inactive");
}

static int find_unit_object(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                            sd_bus_error *error) {
        Unit *u = find_unit(path);

        if (!u)
                return 0;
        *found = u;
        return 1;
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("GetUnit", "s", "o", method_get_unit, 0),
        SD_BUS_METHOD("StopUnit", "ss", "o", method_stop_unit, 0),
        SD_BUS_VTABLE_END,
};

static const sd_bus_vtable unit_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("ActiveState", "s", property_active_state, 0, 0),
        SD_BUS_VTABLE_END,
};

static char *recorded(const char *dir) {
        g_autofree char *path = g_build_filename(dir, "stopped-services-0000:01:00", NULL);
        char *data = NULL;

        if (!g_file_get_contents(path, &data, NULL, NULL))
                return g_strdup("");
        return data;
}

int main(void) {
        char dir[] = "/tmp/gpuswitch-test-services-XXXXXX";
        g_autofree char *rec = NULL, *cmd = NULL;
        FakeSystemd fake = { .manager = manager_vtable, .unit = unit_vtable, .unit_prefix = UNIT_PATH_PREFIX,
                             .find_unit = find_unit_object };
        pthread_t thread;

        if (!mkdtemp(dir))
                abort();
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = fake_systemd_start(&fake, &thread);

        /* Stopped and waited for through JobRemoved: done when the call
         * returns, ActiveState never polled while the stop ran. */
        {
                _cleanup_(switch_error_done) SwitchError e = SWITCH_ERROR_INIT;
                char *list[] = { "idle.service", "slow.service", "quick.service", "unknown.service", NULL };

                CHECK_INT(services_stop_on(bus, dir, "0000:01:00", list, 5ULL * 1000 * 1000, &e), 0);
                CHECK(!switch_error_is_set(&e));
                CHECK_STR(find_unit("slow.service")->state, "inactive");
                CHECK_STR(find_unit("quick.service")->state, "inactive");
                CHECK_INT(find_unit("slow.service")->stops, 1);
                CHECK_INT(find_unit("idle.service")->stops, 0);
                CHECK_INT(state_reads_while_stopping, 0);
                rec = recorded(dir);
                CHECK_STR(rec, "slow.service\nquick.service\n");
        }
        /* A job that fails: an error naming the unit and the result; what
         * was stopped before stays recorded. */
        {
                _cleanup_(switch_error_done) SwitchError e = SWITCH_ERROR_INIT;
                char *list[] = { "failing.service", NULL };

                CHECK(services_stop_on(bus, dir, "0000:01:00", list, 5ULL * 1000 * 1000, &e) < 0);
                CHECK(switch_error_is_set(&e));
                CHECK_INT(e.kind, SWITCH_ERROR_FAILED);
                CHECK_INT(e.step, SWITCH_STEP_STOP_SERVICES);
                CHECK_CONTAINS(e.message, "failing.service");
                CHECK_CONTAINS(e.message, "\"failed\"");
                g_free(rec);
                rec = recorded(dir);
                CHECK_STR(rec, "slow.service\nquick.service\n");
        }
        /* No JobRemoved: Timeout at the caller's limit, not a wait forever. */
        {
                _cleanup_(switch_error_done) SwitchError e = SWITCH_ERROR_INIT;
                char *list[] = { "stuck.service", NULL };

                CHECK(services_stop_on(bus, dir, "0000:01:00", list, 200 * 1000, &e) < 0);
                CHECK_INT(e.kind, SWITCH_ERROR_TIMEOUT);
                CHECK_CONTAINS(e.message, "stuck.service did not stop within 0.2 s");
        }

        bus = sd_bus_flush_close_unref(bus);
        pthread_join(thread, NULL);
        cmd = g_strdup_printf("rm -rf '%s'", dir);
        CHECK_INT(system(cmd), 0);
        TEST_MAIN_END();
}
