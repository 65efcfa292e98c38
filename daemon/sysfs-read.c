/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The reads of sysfs.h: linked by gpuswitchctl doctor too (the rules
 * library), so nothing here writes or loads a module. */
#include "sysfs.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>

#include "pci-address.h"
#include "util.h"

/* Each read of each attribute builds a path: concatenated, not printf'd. */
static char *path_concat(const char *const *parts, size_t n) {
        size_t len = 0;
        char *p, *q;

        for (size_t i = 0; i < n; i++)
                if (parts[i])
                        len += strlen(parts[i]) + (i > 0);
        p = q = malloc(len + 1);
        if (!p)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                size_t l;

                if (!parts[i])
                        continue;
                if (i > 0)
                        *q++ = '/';
                l = strlen(parts[i]);
                memcpy(q, parts[i], l);
                q += l;
        }
        *q = 0;
        return p;
}

char *sysfs_path_join(const char *a, const char *b, const char *c, const char *d) {
        return path_concat((const char *const[]) { a, b, c, d }, 4);
}

char *sysfs_function_path(const Sysfs *s, const char *function, const char *attr) {
        return path_concat((const char *const[]) { s->root, "bus/pci/devices", function, attr }, 4);
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

bool sysfs_have_driver(const Sysfs *s, const char *driver) {
        _cleanup_free_ char *p = NULL;

        if (!pci_driver_name_is_valid(driver))
                return false;
        p = sysfs_path_join(s->root, "bus/pci/drivers", driver, NULL);
        return p && access(p, F_OK) == 0;
}
