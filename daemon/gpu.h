/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gpu-modes.h"
#include "pci-address.h"
#include "sysfs.h"

#define PCI_CLASS_DISPLAY 0x03          /* base class of VGA, 3D and other display controllers */
#define PCI_CLASS_BRIDGE_PCI 0x0604     /* class and subclass: PCI-to-PCI bridge */

/* One PCI function of the GPU's slot, as sysfs shows it right now. */
typedef struct PciFunction {
        char address[PCI_FUNCTION_STRLEN];   /* "0000:0a:00.1" */
        uint32_t class;                      /* 0x030000 */
        uint16_t vendor, device;
        char *modalias;
        char *driver;                        /* NULL: unbound */
        char *driver_override;               /* NULL: none ("(null)" in sysfs) */
        char *host_driver;                   /* the default driver; NULL: none known */
        int iommu_group;                     /* -1: no IOMMU */
        bool boot_vga;
} PciFunction;

/* A GPU is every function of one slot. */
typedef struct Gpu {
        char address[PCI_SLOT_STRLEN];       /* "0000:0a:00" */
        PciFunction *functions;
        size_t n_functions;
} Gpu;

void pci_function_done(PciFunction *f);
void gpu_free(Gpu *g);
static inline void gpu_freep(Gpu **g) { gpu_free(*g); }

/* Reads every function of the slot from sysfs, host_driver left NULL.
 * -ENODEV when the slot has no function. */
int gpu_read(const Sysfs *s, const PciAddress *slot, Gpu **ret);

/* Reads the slot again, keeping each function's host_driver from tmpl. */
int gpu_reread(const Sysfs *s, const Gpu *tmpl, Gpu **ret);

/* After a rebind of the same functions: a copy of old with each function's
 * driver and driver_override read again, the attributes no rebind changes
 * (class, IDs, modalias, IOMMU group, boot_vga) and host_driver kept.
 * -ENODEV when one of old's functions is gone: read the slot whole then.
 * Functions that appeared are not seen (their "add" uevent asks for the
 * whole read). */
int gpu_reread_drivers(const Sysfs *s, const Gpu *old, Gpu **ret);

/* Copies: the job thread works on its own snapshot. */
int gpu_copy(const Gpu *g, Gpu **ret);

PciFunction *gpu_find_function(const Gpu *g, const char *address);

/* The mode the functions are in: vfio when every function is on vfio-pci,
 * host when none is and each function that has a host driver (or a
 * driver_override) is bound, mixed otherwise. */
GpuState gpu_derive_state(const Gpu *g);

bool gpu_is_boot_vga(const Gpu *g);
bool pci_function_is_display(const PciFunction *f);

/* The distinct IOMMU groups of the GPU's functions, ascending; returns
 * the count. */
size_t gpu_iommu_groups(const Gpu *g, unsigned *groups, size_t max);
