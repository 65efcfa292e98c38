/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "plan.h"
#include "switch-error.h"
#include "sysfs.h"

/* Carries out a plan made from g: for each function that moves, the
 * driver_override sequence, and a check of the driver link after it.
 * When a step fails, every function already touched is put back on the
 * driver (and driver_override) it had, and error (FAILED) says which
 * step failed and whether the rollback brought everything back.
 * Blocks in the kernel: call it off the bus loop. */
int switch_run(Sysfs *s, const Gpu *g, const Plan *p, SwitchError *error);

/* Puts every function of original back on the driver and driver_override
 * it has there (after an interrupted switch).  The error names those
 * that would not go back. */
int switch_restore(Sysfs *s, const Gpu *original, SwitchError *error);
