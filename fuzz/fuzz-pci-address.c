/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* common/pci-address.c: whatever parses is an address and nothing more
 * (its text is hex digits, ':' and '.' only: it cannot name a path), and it
 * formats back to the canonical text, which parses to the same value.
 * Driver names: a valid one is a plain file name. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pci-address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ASSERT(cond) do {                                                                       \
        if (!(cond)) {                                                                          \
                fprintf(stderr, "%s:%d: %s does not hold for \"%s\"\n", __FILE__, __LINE__,     \
                        #cond, s);                                                              \
                abort();                                                                        \
        }                                                                                       \
} while (0)

static bool same(const PciAddress *a, const PciAddress *b) {
        return a->domain == b->domain && a->bus == b->bus && a->slot == b->slot && a->function == b->function;
}

static void check_address(const char *s) {
        char canonical[PCI_FUNCTION_STRLEN + 5], slot[PCI_SLOT_STRLEN], fn[PCI_FUNCTION_STRLEN];
        size_t len = strlen(s);
        PciAddress a, b;

        if (pci_address_parse(s, &a) < 0)
                return;

        ASSERT(len == 5 || len == 7 || len == 10 || len == 12);
        ASSERT(strspn(s, "0123456789abcdefABCDEF:.") == len);
        ASSERT(a.slot <= 0x1f && a.function >= -1 && a.function <= 7);

        /* The canonical text is the input in lower case, with the domain. */
        snprintf(canonical, sizeof canonical, "%s%s", len == 5 || len == 7 ? "0000:" : "", s);
        for (char *c = canonical; *c; c++)
                if (*c >= 'A' && *c <= 'F')
                        *c = (char) (*c - 'A' + 'a');

        pci_address_format_slot(&a, slot);
        ASSERT(strlen(slot) == PCI_SLOT_STRLEN - 1);
        ASSERT(strncmp(slot, canonical, PCI_SLOT_STRLEN - 1) == 0);
        ASSERT(pci_address_parse(slot, &b) == 0);
        ASSERT(pci_address_same_slot(&a, &b) && b.function == -1);

        if (a.function >= 0) {
                pci_address_format_function(&a, fn);
                ASSERT(strcmp(fn, canonical) == 0);
                ASSERT(pci_address_parse(fn, &b) == 0);
                ASSERT(same(&a, &b));
        } else
                ASSERT(strcmp(slot, canonical) == 0);
}

static void check_driver_name(const char *s) {
        if (!pci_driver_name_is_valid(s))
                return;
        ASSERT(strlen(s) >= 1 && strlen(s) <= PCI_DRIVER_NAME_MAX);
        ASSERT(!strchr(s, '/'));
        ASSERT(strcmp(s, ".") != 0 && strcmp(s, "..") != 0);
        ASSERT(s[0] != '.');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);

        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;    /* an embedded NUL ends the text, as it would on the bus */
        check_address(s);
        check_driver_name(s);
        free(s);
        return 0;
}
