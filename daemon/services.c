/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "services.h"

#include <glib.h>
#include <systemd/sd-bus.h>

#include "systemd-job.h"
#include "util.h"

#define SYSTEMD_UNIT "org.freedesktop.systemd1.Unit"
#define STOP_TIMEOUT_USEC (20ULL * 1000 * 1000)

static char *record_path(const char *dir, const char *address) {
        g_autofree char *name = g_strdup_printf("stopped-services-%s", address);
        return g_build_filename(dir, name, NULL);
}

static int unit_state(sd_bus *bus, const char *unit, char **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        int r;

        /* GetUnit knows loaded units only: one that is not loaded is not running. */
        r = sd_bus_call_method(bus, SYSTEMD_BUS_NAME, SYSTEMD_BUS_PATH, SYSTEMD_BUS_MANAGER, "GetUnit", &e, &reply,
                               "s", unit);
        if (r < 0) {
                *ret = strdup("inactive");
                return *ret ? 0 : -ENOMEM;
        }
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;
        return sd_bus_get_property_string(bus, SYSTEMD_BUS_NAME, path, SYSTEMD_UNIT, "ActiveState", &e, ret);
}

static bool running(const char *state) {
        return streq(state, "active") || streq(state, "activating") || streq(state, "reloading");
}

/* StopUnit queues a job; systemd's JobRemoved for it says when the unit is
 * down, its processes gone and the files they held closed. */
static int stop_unit(sd_bus *bus, const char *address, const char *unit, uint64_t timeout_usec,
                     SwitchError *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *result = NULL;
        int r;

        r = systemd_stop_unit_wait(bus, unit, timeout_usec, &result, &e);
        if (r == -ETIMEDOUT)
                return switch_error_set(error, SWITCH_ERROR_TIMEOUT, SWITCH_STEP_STOP_SERVICES, NULL, ETIMEDOUT,
                                        "%s: %s did not stop within %g s", address, unit,
                                        (double) timeout_usec / 1e6);
        if (r < 0)
                return switch_error_set(error, SWITCH_ERROR_FAILED, SWITCH_STEP_STOP_SERVICES, NULL, r,
                                        "%s: stopping %s: %s; nothing was changed", address, unit,
                                        e.message ? e.message : strerror(-r));
        /* "canceled": another job (a start) replaced ours, the unit runs on */
        if (!streq(result, "done"))
                return switch_error_set(error, SWITCH_ERROR_FAILED, SWITCH_STEP_STOP_SERVICES, NULL, EBUSY,
                                        "%s: stopping %s: systemd's job ended \"%s\"; nothing was changed", address,
                                        unit, result);
        return 0;
}

int services_stop_on(sd_bus *bus, const char *state_dir, const char *address, char *const *units,
                     uint64_t timeout_usec, SwitchError *error) {
        g_autoptr(GString) stopped = g_string_new(NULL);
        g_autofree char *path = record_path(state_dir, address), *old = NULL;
        int r;

        if (g_file_get_contents(path, &old, NULL, NULL))
                g_string_append(stopped, old);

        for (char *const *u = units; u && *u; u++) {
                _cleanup_free_ char *state = NULL;

                r = unit_state(bus, *u, &state);
                if (r < 0 || !running(state))
                        continue;
                log_notice("%s: stopping %s, which keeps the GPU open; it is started again after the switch "
                           "back to the host", address, *u);
                r = stop_unit(bus, address, *u, timeout_usec, error);
                if (r < 0)
                        return r;
                g_string_append_printf(stopped, "%s\n", *u);
                /* recorded at once: a daemon stopped now still starts it again */
                if (g_mkdir_with_parents(state_dir, 0755) < 0 ||
                    !g_file_set_contents(path, stopped->str, (gssize) stopped->len, NULL))
                        log_warning("%s: could not record in %s that %s was stopped", address, path, *u);
        }
        return 0;
}

int services_stop(const char *state_dir, const char *address, char *const *units, SwitchError *error) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (!units || !units[0])
                return 0;
        r = sd_bus_open_system(&bus);
        if (r < 0) {
                g_autofree char *names = g_strjoinv(", ", (char **) units);

                return switch_error_set(error, SWITCH_ERROR_FAILED, SWITCH_STEP_STOP_SERVICES, NULL, r,
                                        "%s: cannot reach systemd to stop %s: %s; nothing was changed", address,
                                        names, strerror(-r));
        }
        return services_stop_on(bus, state_dir, address, units, STOP_TIMEOUT_USEC, error);
}

int services_restart(const char *state_dir, const char *address) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        g_autofree char *path = record_path(state_dir, address), *data = NULL;
        g_auto(GStrv) units = NULL;
        int r;

        if (!g_file_get_contents(path, &data, NULL, NULL))
                return 0;
        r = sd_bus_open_system(&bus);
        if (r < 0)
                return log_warning_errno(r, "%s: connecting to systemd to start services again", address);
        units = g_strsplit(data, "\n", -1);
        for (char **u = units; *u; u++) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

                if (isempty(*u))
                        continue;
                r = sd_bus_call_method(bus, SYSTEMD_BUS_NAME, SYSTEMD_BUS_PATH, SYSTEMD_BUS_MANAGER, "StartUnit", &e,
                                       NULL, "ss", *u, "replace");
                if (r < 0)
                        log_warning("%s: starting %s again: %s", address, *u, e.message);
                else
                        log_notice("%s: started %s again", address, *u);
        }
        (void) unlink(path);
        return 0;
}
