/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "kernel-log.h"
#include "sysfs.h"

/* Whether a function is well on its host driver: bound to driver, in D0
 * (power_state, where the kernel has it), and, for nvidia, its entry in
 * /proc/driver/nvidia/gpus/.  0, or -EIO with *ret_problem saying what is
 * wrong ("the probe bound nothing", "in D3hot"). */
int function_health_check(const Sysfs *s, const char *function, const char *driver, char **ret_problem);

/* After the host probe of a function: its check, and when that fails one
 * reset (the reset attribute, by the kernel's reset_method) and one more
 * probe, a bind to driver by name, then the check again.  0 when the
 * function is well; otherwise -errno and *ret_message says which function,
 * what was tried and what the kernel logged about it since log began. */
int function_health_ensure(Sysfs *s, const char *function, const char *driver, KernelLog *log,
                           char **ret_message);
