/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "gpu.h"
#include "sysfs.h"

/* The driver a function goes back to in host mode, by precedence: the
 * config's HostDriver= (display functions only), the driver bound now
 * unless it is vfio-pci, the first module that the modalias matches
 * (libkmod, blacklist applied).  *ret is NULL when there is none (a
 * function no driver claims). */
int host_driver_resolve(const Sysfs *s, const PciFunction *f, const char *configured, char **ret);
