/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "sysfs.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>

#include "module-load.h"
#include "pci-address.h"
#include "util.h"

void sysfs_init(Sysfs *s) {
        *s = (Sysfs) {
                .root = "/sys",
                .proc_root = "/proc",
                .kmsg = "/dev/kmsg",
                .kmsg_journal = true,
        };
}

/* step: "override", "unbind", "probe", "bind" or the attribute's name, for Step. */
static int sysfs_write(Sysfs *s, const char *function, const char *step, const char *path, const char *value) {
        if (s->progress)
                s->progress(function, step, path, s->progress_userdata);
        if (s->write)
                return s->write(s, path, value);
        return write_string_file(path, value);
}

int sysfs_set_driver_override(Sysfs *s, const char *function, const char *driver) {
        _cleanup_free_ char *p = NULL;

        if (!isempty(driver) && !pci_driver_name_is_valid(driver))
                return -EINVAL;
        p = sysfs_function_path(s, function, "driver_override");
        if (!p)
                return -ENOMEM;
        /* An empty write is refused; a lone newline clears the override. */
        return sysfs_write(s, function, "override", p, isempty(driver) ? "\n" : driver);
}

int sysfs_unbind(Sysfs *s, const char *function, const char *driver) {
        _cleanup_free_ char *p = NULL;

        if (!pci_driver_name_is_valid(driver))
                return -EINVAL;
        p = sysfs_path_join(s->root, "bus/pci/drivers", driver, "unbind");
        if (!p)
                return -ENOMEM;
        return sysfs_write(s, function, "unbind", p, function);
}

int sysfs_drivers_probe(Sysfs *s, const char *function) {
        _cleanup_free_ char *p = sysfs_path_join(s->root, "bus/pci/drivers_probe", NULL, NULL);

        if (!p)
                return -ENOMEM;
        /* A probe that finds no driver is not an error to the kernel: the
         * caller reads the driver link to learn what bound. */
        return sysfs_write(s, function, "probe", p, function);
}

int sysfs_bind(Sysfs *s, const char *function, const char *driver) {
        _cleanup_free_ char *p = NULL;

        if (!pci_driver_name_is_valid(driver))
                return -EINVAL;
        p = sysfs_path_join(s->root, "bus/pci/drivers", driver, "bind");
        if (!p)
                return -ENOMEM;
        return sysfs_write(s, function, "bind", p, function);
}

int sysfs_write_path(Sysfs *s, const char *function, const char *step, const char *path, const char *value) {
        return sysfs_write(s, function, step, path, value);
}

int sysfs_write_attr(Sysfs *s, const char *function, const char *attr, const char *value) {
        _cleanup_free_ char *p = sysfs_function_path(s, function, attr);

        if (!p)
                return -ENOMEM;
        return sysfs_write(s, function, attr, p, value);
}

int sysfs_load_module(Sysfs *s, const char *module) {
        if (s->load_module)
                return s->load_module(s, module);
        return module_load(s, module);
}
