/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "sysfs.h"

/* Functions held awake for the length of a switch: power/control written
 * "on" (sysfs-devices-power ABI: the device is resumed and runtime PM
 * kept off), so that no unbind, probe or reset meets a runtime-suspended
 * device; each one's earlier setting given back at the end. */
typedef struct PowerHold PowerHold;

int power_hold_new(PowerHold **ret);
/* Holds one function.  A function without power/control (no runtime PM)
 * needs nothing; one already "on" is left alone and not written back.
 * -errno when the write is refused. */
int power_hold(PowerHold *h, Sysfs *s, const char *function);
/* Gives every held function its setting back, last first, and frees h.  A
 * refused write is logged: the switch is over, it changes nothing of it. */
void power_hold_release(PowerHold *h, Sysfs *s);
