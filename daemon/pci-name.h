/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "gpu.h"

/* The GPU's marketing name as lspci shows it, from the hardware database
 * (udev's hwdb, built from pci.ids), or "PCI device VVVV:DDDD". */
char *gpu_name(const Gpu *g);
