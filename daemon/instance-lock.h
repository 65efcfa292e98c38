/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One gpuswitchd at a time: a second one would read the first one's switch
 * record and "put back" a GPU that is still switching under it. */
#pragma once

#include <sys/types.h>

/* The daemon's runtime folder: $GPUSWITCH_RUNTIME_DIR, else /run/gpuswitch
 * (the unit's RuntimeDirectory=). */
const char *runtime_dir(void);

/* Takes the lock file gpuswitchd.lock in DIR (made when missing) and writes
 * our PID into it; the lock lasts as long as *ret_fd is open.  -EBUSY when
 * another process holds it, its PID in *ret_holder (0 when it wrote none). */
int instance_lock(const char *dir, int *ret_fd, pid_t *ret_holder);
