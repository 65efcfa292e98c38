/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "sysfs.h"

/* Loading a module for the daemon, which under its unit may not load one
 * itself (no CAP_SYS_MODULE, no init_module/finit_module): where systemd
 * is PID 1, it is asked to start modprobe@NAME.service, which runs
 * `modprobe -abq NAME` with systemd's privileges; elsewhere (no systemd,
 * so no unit confining the daemon: an initramfs, the plain test VM)
 * libkmod loads it in the daemon, which then needs CAP_SYS_MODULE.
 *
 * NAME is a PCI driver's name or a modalias.  modprobe@ never fails (a
 * missing module is not an error to it), so success is read from the
 * kernel afterwards: for a driver name, the PCI driver NAME is registered;
 * for a modalias (nothing to check it against) the caller checks.
 * Blocking: it waits for systemd's job.  -ENOENT when the module did not
 * come, logged naming the unit and its job's result. */
int module_load(const Sysfs *s, const char *name);

/* "modprobe@NAME.service", with "-" as "_" (modprobe treats them alike;
 * in a unit's instance "-" would stand for "/"); -EINVAL for a name that
 * cannot be one. */
int module_unit_name(const char *name, char **ret);
