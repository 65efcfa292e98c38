/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "pci-address.h"
#include "testlib.h"

static void ok(const char *s, unsigned dom, unsigned bus, unsigned slot, int fn, const char *slot_text) {
        PciAddress a;
        char buf[PCI_SLOT_STRLEN];

        CHECK_INT(pci_address_parse(s, &a), 0);
        CHECK_INT(a.domain, dom);
        CHECK_INT(a.bus, bus);
        CHECK_INT(a.slot, slot);
        CHECK_INT(a.function, fn);
        pci_address_format_slot(&a, buf);
        CHECK_STR(buf, slot_text);
}

static void bad(const char *s) {
        PciAddress a;

        if (pci_address_parse(s, &a) != -EINVAL) {
                fprintf(stderr, "accepted \"%s\"\n", s);
                test_failures++;
        }
}

int main(void) {
        char fn[PCI_FUNCTION_STRLEN], long_text[4096];
        PciAddress a;

        ok("0000:0a:00", 0, 0x0a, 0, -1, "0000:0a:00");
        ok("0a:00", 0, 0x0a, 0, -1, "0000:0a:00");
        ok("0000:0a:00.1", 0, 0x0a, 0, 1, "0000:0a:00");
        ok("0a:1f.7", 0, 0x0a, 0x1f, 7, "0000:0a:1f");
        ok("ABCD:FF:1F.3", 0xabcd, 0xff, 0x1f, 3, "abcd:ff:1f");

        bad("");
        bad("0a");
        bad("0000:0a:00.8");
        bad("0000:0a:20");
        bad("../../etc");
        bad("0000:0a:00/../..");
        bad("0000:0a:00.1x");
        bad(" 0a:00");
        bad("0a:00 ");
        bad("0x0a:00");
        bad("+a:00");
        bad("0000:0a:00.");
        bad("00000:0a:00");
        bad("0000:0a:0g");
        bad("0000/0a:00");
        memset(long_text, 'a', sizeof long_text - 1);
        long_text[sizeof long_text - 1] = 0;
        bad(long_text);
        CHECK_INT(pci_address_parse(NULL, &a), -EINVAL);

        CHECK_INT(pci_address_parse("0000:0a:00.3", &a), 0);
        pci_address_format_function(&a, fn);
        CHECK_STR(fn, "0000:0a:00.3");
        {
                PciAddress b;
                CHECK_INT(pci_address_parse("0a:00", &b), 0);
                CHECK(pci_address_same_slot(&a, &b));
                CHECK_INT(pci_address_parse("0a:01", &b), 0);
                CHECK(!pci_address_same_slot(&a, &b));
        }

        /* driver and module names: plain file names only */
        CHECK(pci_driver_name_is_valid("vfio-pci"));
        CHECK(pci_driver_name_is_valid("snd_hda_intel"));
        CHECK(pci_driver_name_is_valid("nvidia"));
        CHECK(pci_driver_name_is_valid("a.b:c"));
        CHECK(!pci_driver_name_is_valid(NULL));
        CHECK(!pci_driver_name_is_valid(""));
        CHECK(!pci_driver_name_is_valid("."));
        CHECK(!pci_driver_name_is_valid(".."));
        CHECK(!pci_driver_name_is_valid(".hidden"));
        CHECK(!pci_driver_name_is_valid("../vfio-pci"));
        CHECK(!pci_driver_name_is_valid("vfio/../x"));
        CHECK(!pci_driver_name_is_valid("a b"));
        CHECK(!pci_driver_name_is_valid("nvidia\n"));
        memset(long_text, 'a', PCI_DRIVER_NAME_MAX);
        long_text[PCI_DRIVER_NAME_MAX] = 0;
        CHECK(pci_driver_name_is_valid(long_text));
        long_text[PCI_DRIVER_NAME_MAX] = 'a';
        long_text[PCI_DRIVER_NAME_MAX + 1] = 0;
        CHECK(!pci_driver_name_is_valid(long_text));
        TEST_MAIN_END();
}
