/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "module-load.h"

#include <linux/capability.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <systemd/sd-daemon.h>

#include "kmod-util.h"
#include "systemd-job.h"
#include "util.h"

/* modprobe runs in well under a second; a job that takes this long is
 * stuck behind others in systemd's queue. */
#define MODULE_JOB_TIMEOUT_USEC (30ULL * 1000 * 1000)
#define MODULE_UNIT_NAME_MAX 200

int module_unit_name(const char *name, char **ret) {
        _cleanup_free_ char *instance = NULL;
        char *unit;

        if (isempty(name) || strlen(name) > MODULE_UNIT_NAME_MAX || name[0] == '.')
                return -EINVAL;
        instance = strdup(name);
        if (!instance)
                return -ENOMEM;
        for (char *c = instance; *c; c++) {
                if (*c == '-')
                        *c = '_';
                else if (!(('a' <= *c && *c <= 'z') || ('A' <= *c && *c <= 'Z') || ('0' <= *c && *c <= '9') ||
                           *c == '_' || *c == '.' || *c == ':'))
                        return -EINVAL;
        }
        if (asprintf(&unit, "modprobe@%s.service", instance) < 0)
                return -ENOMEM;
        *ret = unit;
        return 0;
}

static bool is_modalias(const char *name) {
        return strchr(name, ':') != NULL;
}

static bool have_cap_sys_module(void) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {};

        if (syscall(SYS_capget, &h, d) < 0)
                return false;
        return d[CAP_TO_INDEX(CAP_SYS_MODULE)].effective & CAP_TO_MASK(CAP_SYS_MODULE);
}

static int job_result_to_errno(const char *result) {
        if (streq(result, "done"))
                return 0;
        if (streq(result, "timeout"))
                return -ETIMEDOUT;
        if (streq(result, "canceled"))
                return -ECANCELED;
        return -EIO;
}

/* -ENOTCONN: systemd could not be asked (no bus, StartUnit refused): the
 * caller may load the module itself. */
static int load_through_systemd(const Sysfs *s, const char *name) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *unit = NULL, *result = NULL;
        int r;

        r = module_unit_name(name, &unit);
        if (r < 0)
                return log_error_errno(r, "%s: not a module name", name);
        r = sd_bus_open_system(&bus);
        if (r < 0) {
                log_warning_errno(r, "%s: connecting to the system bus to start %s", name, unit);
                return -ENOTCONN;
        }
        r = systemd_start_unit_wait(bus, unit, MODULE_JOB_TIMEOUT_USEC, &result, &e);
        if (r == -ETIMEDOUT)
                return log_error_errno(r, "%s: %s did not finish within %llu s", name, unit,
                                       MODULE_JOB_TIMEOUT_USEC / 1000000);
        if (r < 0) {
                log_warning_errno(r, "%s: starting %s: %s", name, unit, e.message ? e.message : strerror(-r));
                return -ENOTCONN;
        }
        r = job_result_to_errno(result);
        if (r < 0)
                return log_error_errno(r, "%s: %s ended with result \"%s\" (journalctl -u %s)", name, unit, result,
                                       unit);
        if (is_modalias(name) || sysfs_have_driver(s, name)) {
                log_debug("%s: loaded by %s", name, unit);
                return 0;
        }
        /* modprobe -q found no such module, or it is blacklisted with an
         * install line, or its init failed: all "done" to systemd. */
        return log_warning_errno(ENOENT, "%s: %s finished (result \"%s\"), but no PCI driver %s is registered: "
                               "no such module, or modprobe failed (journalctl -u %s)", name, unit, result, name,
                               unit);
}

static int load_with_libkmod(const char *name) {
        int r = kmod_load_module(name);

        if (r == -EPERM && !have_cap_sys_module())
                return log_error_errno(r, "%s: cannot load the module: no systemd to start modprobe@.service "
                                       "and no CAP_SYS_MODULE", name);
        return r;
}

int module_load(const Sysfs *s, const char *name) {
        int r;

        if (sd_booted() <= 0)
                return load_with_libkmod(name);
        r = load_through_systemd(s, name);
        if (r != -ENOTCONN)
                return r;
        /* Not confined by the unit (started by hand, as root): do it here. */
        if (have_cap_sys_module()) {
                log_notice("%s: systemd could not load it, loading it with libkmod", name);
                return load_with_libkmod(name);
        }
        return log_error_errno(EPERM, "%s: systemd could not be asked to load it, and without CAP_SYS_MODULE the "
                               "daemon cannot", name);
}
