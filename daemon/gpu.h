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
#define PCI_CLASS_BRIDGE_BASE 0x06      /* base class of every bridge: host, ISA, PCI, ... */

/* One PCI function of the GPU, as sysfs shows it right now. */
typedef struct PciFunction {
        char address[PCI_FUNCTION_STRLEN];   /* "0000:0a:00.1" */
        uint32_t class;                      /* 0x030000 */
        uint16_t vendor, device;
        char *modalias;
        char *driver;                        /* NULL: unbound */
        char *driver_override;               /* NULL: none ("(null)" in sysfs) */
        char *host_driver;                   /* the default driver; NULL: none known */
        char *power_control;                 /* power/control before a switch, as its record keeps
                                              * it ("auto", "on"); NULL: not read */
        int iommu_group;                     /* -1: no IOMMU */
        bool boot_vga;
        bool companion;                      /* one of the GPU's Companions=, outside its slot */
} PciFunction;

/* A GPU is a list of functions: every function of its slot, then its
 * companions (devices elsewhere, in the same IOMMU group as a rule, that
 * move with it), each part in address order. */
typedef struct Gpu {
        char address[PCI_SLOT_STRLEN];       /* "0000:0a:00" */
        PciFunction *functions;
        size_t n_functions;
        PciAddress *companions;              /* as configured: read when present */
        size_t n_companions;
} Gpu;

void pci_function_done(PciFunction *f);
void gpu_free(Gpu *g);
static inline void gpu_freep(Gpu **g) { gpu_free(*g); }

/* The one test of which addresses belong to a GPU: a slot address names
 * the GPU when it is its slot; a function address when it is in that slot
 * or one of its companions. */
bool gpu_address_matches(const PciAddress *slot, const PciAddress *companions, size_t n_companions,
                         const PciAddress *a);
bool gpu_has_address(const Gpu *g, const PciAddress *a);

/* Reads every function of the slot and the companions that are present
 * from sysfs, host_driver left NULL.  -ENODEV when the slot has no
 * function. */
int gpu_read(const Sysfs *s, const PciAddress *slot, const PciAddress *companions, size_t n_companions,
             Gpu **ret);

/* Reads the slot and companions again, keeping each function's host_driver
 * from tmpl. */
int gpu_reread(const Sysfs *s, const Gpu *tmpl, Gpu **ret);

/* After a rebind of the same functions: a copy of old with each function's
 * driver and driver_override read again, the attributes no rebind changes
 * (class, IDs, modalias, IOMMU group, boot_vga) and host_driver kept.
 * -ENODEV when one of old's functions is gone: read the slot whole then.
 * Functions that appeared are not seen (their "add" uevent asks for the
 * whole read). */
int gpu_reread_drivers(const Sysfs *s, const Gpu *old, Gpu **ret);
/* gpu_reread_drivers(), or gpu_reread() when whole is asked for or the
 * functions are not the same any more. */
int gpu_reread_changed(const Sysfs *s, const Gpu *old, bool whole, Gpu **ret);

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
