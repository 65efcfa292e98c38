/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* A PCI address as the kernel names it: domain:bus:slot.function
 * (sysfs-bus-pci).  "slot" is the device number, 0..31; "function" 0..7. */
typedef struct PciAddress {
        uint16_t domain;
        uint8_t bus;
        uint8_t slot;
        int8_t function; /* -1 when the text named a whole slot */
} PciAddress;

/* "0000:0a:00.0" plus NUL */
#define PCI_FUNCTION_STRLEN 13
/* "0000:0a:00" plus NUL */
#define PCI_SLOT_STRLEN 11

/* Accepts "0000:0a:00", "0a:00", "0000:0a:00.1" and "0a:00.1", hex digits
 * in either case.  Anything else (a path, trailing text, a value out of
 * range) is -EINVAL: the result is used to build sysfs paths, so nothing
 * but the address may get through. */
int pci_address_parse(const char *s, PciAddress *ret);

/* "0000:0a:00" */
void pci_address_format_slot(const PciAddress *a, char buf[static PCI_SLOT_STRLEN]);
/* "0000:0a:00.1"; a->function must be set */
void pci_address_format_function(const PciAddress *a, char buf[static PCI_FUNCTION_STRLEN]);

bool pci_address_same_slot(const PciAddress *a, const PciAddress *b);
/* The same slot, and the same function (or both the whole slot). */
bool pci_address_equal(const PciAddress *a, const PciAddress *b);

/* A PCI driver or kernel module name as it may appear in a sysfs path
 * (bus/pci/drivers/NAME/bind, module/NAME): 1 to 64 of [A-Za-z0-9_.:-],
 * not starting with '.', so never a '/', "." or "..". */
#define PCI_DRIVER_NAME_MAX 64
bool pci_driver_name_is_valid(const char *name);
