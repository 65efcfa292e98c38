/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "pci-address.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Exactly n hex digits, no sign, no prefix: strtoul would take " +0x1f". */
static int parse_hex(const char *s, size_t n, unsigned *ret) {
        unsigned v = 0;

        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                unsigned d;

                if (c >= '0' && c <= '9')
                        d = (unsigned) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        d = (unsigned) (c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        d = (unsigned) (c - 'A' + 10);
                else
                        return -EINVAL;
                v = v * 16 + d;
        }
        *ret = v;
        return 0;
}

int pci_address_parse(const char *s, PciAddress *ret) {
        unsigned domain = 0, bus, slot, function;
        int8_t fn = -1;
        size_t len;

        if (!s || !ret)
                return -EINVAL;

        len = strlen(s);
        /* Optional "dddd:" domain prefix. */
        if (len >= 5 && s[4] == ':') {
                if (parse_hex(s, 4, &domain) < 0)
                        return -EINVAL;
                s += 5;
                len -= 5;
        }

        /* "bb:ss" then optional ".f" */
        if (len != 5 && len != 7)
                return -EINVAL;
        if (s[2] != ':')
                return -EINVAL;
        if (parse_hex(s, 2, &bus) < 0 || parse_hex(s + 3, 2, &slot) < 0)
                return -EINVAL;
        if (slot > 0x1f)
                return -EINVAL;
        if (len == 7) {
                if (s[5] != '.' || parse_hex(s + 6, 1, &function) < 0 || function > 7)
                        return -EINVAL;
                fn = (int8_t) function;
        }

        *ret = (PciAddress) {
                .domain = (uint16_t) domain,
                .bus = (uint8_t) bus,
                .slot = (uint8_t) slot,
                .function = fn,
        };
        return 0;
}

void pci_address_format_slot(const PciAddress *a, char buf[static PCI_SLOT_STRLEN]) {
        snprintf(buf, PCI_SLOT_STRLEN, "%04x:%02x:%02x", a->domain, a->bus, a->slot);
}

void pci_address_format_function(const PciAddress *a, char buf[static PCI_FUNCTION_STRLEN]) {
        snprintf(buf, PCI_FUNCTION_STRLEN, "%04x:%02x:%02x.%x",
                 a->domain, a->bus, a->slot, (unsigned) (a->function < 0 ? 0 : a->function) & 7u);
}

bool pci_address_same_slot(const PciAddress *a, const PciAddress *b) {
        return a->domain == b->domain && a->bus == b->bus && a->slot == b->slot;
}

bool pci_address_equal(const PciAddress *a, const PciAddress *b) {
        return pci_address_same_slot(a, b) && a->function == b->function;
}

bool pci_driver_name_is_valid(const char *name) {
        size_t len;

        if (!name || name[0] == 0 || name[0] == '.')
                return false;
        len = strlen(name);
        return len <= PCI_DRIVER_NAME_MAX &&
               strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") == len;
}
