/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The libvirt hook's domain XML reader (hooks/libvirt/domain-xml.c) on any
 * input, as libvirtd would hand a domain's XML to it:
 * - it returns slots or names the fault, never both;
 * - every slot is a canonical one, listed once;
 * - its message goes to libvirt's error and a terminal: valid UTF-8 without
 *   a control character. */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "domain-xml.h"
#include "fuzz-assert.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        g_autofree PciAddress *slots = NULL;
        g_autofree char *error_message = NULL;
        size_t n = 0;
        int r;

        r = domain_pci_hostdev_slots((const char *) data, size, &slots, &n, &error_message);
        if (r < 0) {
                ASSERT(r == -EINVAL || r == -ENOMEM);
                if (r == -EINVAL) {
                        ASSERT(error_message && g_utf8_validate(error_message, -1, NULL));
                        for (const char *p = error_message; *p; p++)
                                ASSERT((unsigned char) *p >= 0x20 && *p != 0x7f);
                }
                return 0;
        }
        ASSERT(!error_message);
        for (size_t i = 0; i < n; i++) {
                char text[PCI_SLOT_STRLEN];
                PciAddress b;

                ASSERT(slots[i].function == -1 && slots[i].slot <= 0x1f);
                pci_address_format_slot(&slots[i], text);
                ASSERT(pci_address_parse(text, &b) == 0 && pci_address_same_slot(&slots[i], &b));
                for (size_t j = 0; j < i; j++)
                        ASSERT(!pci_address_same_slot(&slots[i], &slots[j]));
        }
        return 0;
}
