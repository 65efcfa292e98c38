/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "sysfs.h"

/* NVIDIA's unbindLock, /proc/driver/nvidia/gpus/ADDR/unbindLock: written 1,
 * the driver takes it only when no client has the GPU open, in-kernel ones
 * included (nvidia-drm with modeset=1, nvidia-uvm, persistence mode), none
 * of which a /proc/PID/fd scan can see; while it is held, new opens fail.
 * Reading it back says whether it was taken.  Taken just before the unbind
 * that would otherwise wait for those clients forever. */

/* 0: taken; -ENOENT: the driver has no such file (not nvidia, or too old);
 * -EBUSY: a client holds the GPU. */
int nvidia_unbind_lock_take(Sysfs *s, const char *function);
/* Lets go of it (a switch that does not unbind after all). */
void nvidia_unbind_lock_release(Sysfs *s, const char *function);
