/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "sysfs.h"

/* What the kernel logs from a point on (/dev/kmsg), for the message of a
 * failed switch: the lines about one function, escaped, bounded. */
typedef struct KernelLog KernelLog;

/* From now on.  Never fails for want of the log: where /dev/kmsg cannot be
 * read (no Sysfs.kmsg, the unit's ProtectKernelLogs=, dmesg_restrict) the
 * journal's kernel lines are read instead when Sysfs.kmsg_journal says so;
 * failing that, kernel_log_about() says why there are none. */
int kernel_log_begin(const Sysfs *s, KernelLog **ret);
void kernel_log_free(KernelLog *l);
static inline void kernel_log_freep(KernelLog **l) { kernel_log_free(*l); }

/* The last lines logged since kernel_log_begin() that name function,
 * "line | line", each escaped to printable ASCII (\xNN) and the whole at
 * most KERNEL_LOG_MAX bytes; or a sentence saying why there are none.
 * NULL only when out of memory. */
#define KERNEL_LOG_MAX 1024
char *kernel_log_about(KernelLog *l, const char *function);
