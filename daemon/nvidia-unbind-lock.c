/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "nvidia-unbind-lock.h"

#include <stdio.h>
#include <stdlib.h>

#include "util.h"

/* NULL without a proc_root of its own (the unit tests' fake kernel): the
 * machine's own /proc is never written from there. */
static char *lock_path(const Sysfs *s, const char *function) {
        char *p = NULL;

        if (!s->proc_root || asprintf(&p, "%s/driver/nvidia/gpus/%s/unbindLock", s->proc_root, function) < 0)
                return NULL;
        return p;
}

int nvidia_unbind_lock_take(Sysfs *s, const char *function) {
        _cleanup_free_ char *p = lock_path(s, function), *v = NULL;
        int r;

        if (!p)
                return s->proc_root ? -ENOMEM : -ENOENT;
        if (access(p, F_OK) < 0)
                return -errno;
        /* the driver decides when the file is closed: one write, then read */
        r = sysfs_write_path(s, function, "unbindLock", p, "1");
        if (r < 0)
                return log_error_errno(r, "%s: writing 1 to %s", function, p);
        r = read_one_line_file(p, &v);
        if (r < 0)
                return log_error_errno(r, "%s: reading %s", function, p);
        if (!streq(v, "1"))
                return -EBUSY;
        log_info("%s: NVIDIA's unbindLock taken", function);
        return 0;
}

void nvidia_unbind_lock_release(Sysfs *s, const char *function) {
        _cleanup_free_ char *p = lock_path(s, function);

        /* gone with the device once it is unbound */
        if (p && access(p, F_OK) == 0 && sysfs_write_path(s, function, "unbindLock", p, "0") >= 0)
                log_info("%s: NVIDIA's unbindLock released", function);
}
