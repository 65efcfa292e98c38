/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "sysfs.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>

#include "kmod-util.h"
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

static char *path_join(const char *a, const char *b, const char *c, const char *d) {
        char *p = NULL;

        if (asprintf(&p, "%s%s%s%s%s%s%s", a, b ? "/" : "", strempty(b),
                     c ? "/" : "", strempty(c), d ? "/" : "", strempty(d)) < 0)
                return NULL;
        return p;
}

char *sysfs_function_path(const Sysfs *s, const char *function, const char *attr) {
        _cleanup_free_ char *devices = path_join(s->root, "bus/pci/devices", NULL, NULL);

        return devices ? path_join(devices, function, attr, NULL) : NULL;
}

int sysfs_read_attr(const Sysfs *s, const char *function, const char *attr, char **ret) {
        _cleanup_free_ char *p = sysfs_function_path(s, function, attr);

        if (!p)
                return -ENOMEM;
        return read_one_line_file(p, ret);
}

int sysfs_read_hex(const Sysfs *s, const char *function, const char *attr, unsigned long *ret) {
        _cleanup_free_ char *v = NULL;
        char *end;
        int r;

        r = sysfs_read_attr(s, function, attr, &v);
        if (r < 0)
                return r;
        errno = 0;
        *ret = strtoul(v, &end, 16);
        if (errno != 0 || end == v || *end != 0)
                return -EINVAL;
        return 0;
}

int sysfs_read_driver(const Sysfs *s, const char *function, char **ret) {
        _cleanup_free_ char *p = sysfs_function_path(s, function, "driver");
        int r;

        if (!p)
                return -ENOMEM;
        r = readlink_basename(p, ret);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (r >= 0 && !pci_driver_name_is_valid(*ret)) {
                /* it would become a path (drivers/NAME/unbind) */
                free(*ret);
                *ret = NULL;
                return -EINVAL;
        }
        return r;
}

int sysfs_read_iommu_group(const Sysfs *s, const char *function, unsigned *ret) {
        _cleanup_free_ char *p = sysfs_function_path(s, function, "iommu_group");
        _cleanup_free_ char *group = NULL;
        char *end;
        unsigned long v;
        int r;

        if (!p)
                return -ENOMEM;
        r = readlink_basename(p, &group);
        if (r < 0)
                return r;
        errno = 0;
        v = strtoul(group, &end, 10);
        if (errno != 0 || end == group || *end != 0 || v > UINT32_MAX)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
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
        p = path_join(s->root, "bus/pci/drivers", driver, "unbind");
        if (!p)
                return -ENOMEM;
        return sysfs_write(s, function, "unbind", p, function);
}

int sysfs_drivers_probe(Sysfs *s, const char *function) {
        _cleanup_free_ char *p = path_join(s->root, "bus/pci/drivers_probe", NULL, NULL);

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
        p = path_join(s->root, "bus/pci/drivers", driver, "bind");
        if (!p)
                return -ENOMEM;
        return sysfs_write(s, function, "bind", p, function);
}

int sysfs_write_attr(Sysfs *s, const char *function, const char *attr, const char *value) {
        _cleanup_free_ char *p = sysfs_function_path(s, function, attr);

        if (!p)
                return -ENOMEM;
        return sysfs_write(s, function, attr, p, value);
}

bool sysfs_have_driver(const Sysfs *s, const char *driver) {
        _cleanup_free_ char *p = NULL;

        if (!pci_driver_name_is_valid(driver))
                return false;
        p = path_join(s->root, "bus/pci/drivers", driver, NULL);
        return p && access(p, F_OK) == 0;
}

int sysfs_load_module(Sysfs *s, const char *module) {
        if (s->load_module)
                return s->load_module(s, module);
        return kmod_load_module(module);
}
