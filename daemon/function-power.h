/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "gpu.h"
#include "sysfs.h"

/* Functions held awake for the length of a switch: power/control written
 * "on" (sysfs-devices-power ABI: the device is resumed and runtime PM
 * kept off), so that no unbind, probe or reset meets a runtime-suspended
 * device; each one's earlier setting given back at the end. */
typedef struct PowerHold PowerHold;

int power_hold_new(PowerHold **ret);
/* Holds one function.  A function without power/control needs nothing;
 * one already "on" is not written.  -errno when the write is refused. */
int power_hold(PowerHold *h, Sysfs *s, const char *function);
/* Holds again the functions whose driver let go of the hold since
 * (vfio-pci's probe allows runtime PM): before a rollback unbinds them. */
void power_hold_renew(PowerHold *h, Sysfs *s);
/* Gives every held function the setting it had, last first, where it
 * differs now (ours, or a driver's bound in the meantime), and frees h.  A
 * refused write is logged: the switch is over, it changes nothing of it. */
void power_hold_release(PowerHold *h, Sysfs *s);

/* Each function's power/control into its power_control, for the switch
 * record: a switch killed mid-way leaves its hold ("on") behind, and only
 * the record knows what to give back.  A function without the attribute,
 * or with a value the ABI does not know, keeps NULL. */
void power_control_read_all(const Sysfs *s, Gpu *g);
/* Gives each function of g the power_control it has, where it differs now;
 * refused writes are logged. */
void power_control_restore(Sysfs *s, const Gpu *g);
