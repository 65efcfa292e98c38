/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "gpu.h"

/* The GPU's marketing name as lspci shows it, from the hardware database
 * (udev's hwdb, built from pci.ids), else pci.ids itself, else
 * "PCI device VVVV:DDDD". */
char *gpu_name(const Gpu *g);

#define PCI_IDS_FILE "/usr/share/misc/pci.ids"

/* "Vendor Device" from a pci.ids file: vendor lines "vvvv  Name", device
 * lines "\tdddd  Name" below them.  NULL when it does not know them. */
char *pci_ids_lookup(const char *path, uint16_t vendor, uint16_t device);
