/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The libvirt hook's reading of a domain XML (the slots of its PCI
 * hostdevs, as XML and nothing else) and its rule for the slots gpuswitchd
 * may manage when it cannot be asked. */
#include <glib.h>

#include "domain-xml.h"
#include "fake-sysfs.h"
#include "hook-rules.h"
#include "testlib.h"

/* The slots of xml as "0000:0a:00 0000:0b:00", or "ERROR: message". */
static char *slots_of(const char *xml) {
        g_autofree PciAddress *slots = NULL;
        g_autofree char *error_message = NULL;
        GString *s = g_string_new(NULL);
        size_t n = 0;

        if (domain_pci_hostdev_slots(xml, strlen(xml), &slots, &n, &error_message) < 0) {
                g_string_printf(s, "ERROR: %s", error_message);
                return g_string_free(s, false);
        }
        for (size_t i = 0; i < n; i++) {
                char b[PCI_SLOT_STRLEN];

                pci_address_format_slot(&slots[i], b);
                g_string_append_printf(s, "%s%s", i ? " " : "", b);
        }
        return g_string_free(s, false);
}

#define HOSTDEV(managed, bus, fn) \
        "<hostdev mode='subsystem' type='pci' managed='" managed "'><source>" \
        "<address domain='0x0000' bus='" bus "' slot='0x00' function='" fn "'/></source>" \
        "<address type='pci' domain='0x0000' bus='0x05' slot='0x00' function='0x0'/></hostdev>"

static void check_slots(const char *name, const char *xml, const char *want) {
        g_autofree char *got = slots_of(xml);

        if (!g_str_equal(got, want)) {
                fprintf(stderr, "%s: got [%s], want [%s]\n", name, got, want);
                test_failures++;
        }
}

static void test_reads_hostdevs(void) {
        check_slots("one function", "<domain><devices>" HOSTDEV("no", "0x0a", "0x0") "</devices></domain>",
                    "0000:0a:00");
        check_slots("four functions, one slot",
                    "<domain><devices>" HOSTDEV("no", "0x0a", "0x0") HOSTDEV("no", "0x0a", "0x1")
                    HOSTDEV("no", "0x0a", "0x2") HOSTDEV("no", "0x0a", "0x3") "</devices></domain>",
                    "0000:0a:00");
        check_slots("managed yes and no, document order",
                    "<domain><devices>" HOSTDEV("yes", "0x0b", "0x0") HOSTDEV("no", "0x0a", "0x0")
                    "</devices></domain>", "0000:0b:00 0000:0a:00");
        check_slots("no mode (libvirt's default is subsystem), decimal numbers, double quotes",
                    "<domain><devices><hostdev type=\"pci\"><source><address domain=\"1\" bus=\"11\" "
                    "slot=\"2\" function=\"0\"/></source></hostdev></devices></domain>",
                    "0001:0b:02");
        check_slots("no domain attribute: domain 0",
                    "<domain><devices><hostdev mode='subsystem' type='pci'><source><address bus='0x0a' "
                    "slot='0x00' function='0x0'/></source></hostdev></devices></domain>",
                    "0000:0a:00");
        check_slots("no hostdev", "<domain><devices><disk type='file'/></devices></domain>", "");
}

/* What a text scanner takes for a hostdev, and libvirt does not. */
static void test_ignores_what_is_not_a_hostdev(void) {
        check_slots("CDATA",
                    "<domain><description><![CDATA[" HOSTDEV("no", "0x0b", "0x0") "]]></description>"
                    "<devices>" HOSTDEV("no", "0x0a", "0x0") "</devices></domain>",
                    "0000:0a:00");
        check_slots("comment",
                    "<domain><devices><!-- " HOSTDEV("no", "0x0b", "0x0") " -->" HOSTDEV("no", "0x0a", "0x0")
                    "</devices></domain>",
                    "0000:0a:00");
        check_slots("metadata of another namespace",
                    "<domain><metadata><app:x xmlns:app='http://example.org/app'><devices>"
                    HOSTDEV("no", "0x0c", "0x0") "</devices></app:x></metadata>"
                    "<devices>" HOSTDEV("no", "0x0a", "0x0") "</devices></domain>",
                    "0000:0a:00");
        check_slots("a hostdev in its own namespace under devices",
                    "<domain><devices><x:hostdev xmlns:x='http://example.org/x' mode='subsystem' type='pci'>"
                    "<x:source><x:address domain='0' bus='0x0d' slot='0' function='0'/></x:source></x:hostdev>"
                    "</devices></domain>", "");
        check_slots("the guest-side address and a USB hostdev",
                    "<domain><devices><hostdev mode='subsystem' type='usb'><source><vendor id='0x1'/>"
                    "<address bus='0x0e' device='2'/></source></hostdev>"
                    "<hostdev mode='subsystem' type='pci'><address type='pci' domain='0' bus='0x0f' slot='0' "
                    "function='0'/><source><address domain='0' bus='0x0a' slot='0' function='0'/></source>"
                    "</hostdev></devices></domain>",
                    "0000:0a:00");
        check_slots("a capabilities hostdev", "<domain><devices><hostdev mode='capabilities' type='pci'><source>"
                    "<address domain='0' bus='0x0b' slot='0' function='0'/></source></hostdev></devices></domain>",
                    "");
        check_slots("not under /domain/devices",
                    "<domain><hostdev mode='subsystem' type='pci'><source><address domain='0' bus='0x0b' "
                    "slot='0' function='0'/></source></hostdev></domain>", "");
}

static void test_refuses(void) {
        g_autofree char *bad = slots_of("<domain><devices><hostdev mode='subsystem' type='pci'><source>"
                                        "<address domain='0x0000' bus='0xzz' slot='0x00' function='0x0'/>"
                                        "</source></hostdev></devices></domain>");
        g_autofree char *big = slots_of("<domain><devices><hostdev mode='subsystem' type='pci'><source>"
                                        "<address domain='0x0000' bus='0x100' slot='0x00'/>"
                                        "</source></hostdev></devices></domain>");
        g_autofree char *slot32 = slots_of("<domain><devices><hostdev mode='subsystem' type='pci'><source>"
                                           "<address bus='0x01' slot='0x20'/></source></hostdev></devices></domain>");
        /* DEL and CSI, legal in XML 1.0 */
        g_autofree char *esc = slots_of("<domain><devices><hostdev mode='subsystem' type='pci'><source>"
                                        "<address bus='&#x7f;&#x9b;31m' slot='0'/></source></hostdev></devices></domain>");
        g_autofree char *esc_char = slots_of("<domain><devices><hostdev mode='subsystem' type='pci'><source>"
                                             "<address bus='&#27;[31m' slot='0'/></source></hostdev></devices></domain>");
        g_autofree char *broken = slots_of("<domain><devices><hostdev");
        /* an external entity is not fetched: the parser is told NONET and
         * substitutes no entity */
        g_autofree char *xxe = slots_of("<?xml version='1.0'?><!DOCTYPE domain [<!ENTITY e SYSTEM "
                                        "'http://127.0.0.1:1/x'>]><domain><devices><hostdev mode='subsystem' "
                                        "type='pci'><source><address bus='&e;' slot='0'/></source></hostdev>"
                                        "</devices></domain>");

        CHECK_STR(bad, "ERROR: a PCI hostdev's source address (line 1) is not one: domain='0x0000' bus='0xzz' slot='0x00'");
        CHECK(g_str_has_prefix(big, "ERROR: a PCI hostdev's source address"));
        CHECK(g_str_has_prefix(slot32, "ERROR: a PCI hostdev's source address"));
        /* the escape byte reaches libvirt's error (a terminal) escaped */
        CHECK(g_str_has_prefix(esc, "ERROR: a PCI hostdev's source address"));
        CHECK(!strchr(esc, '\177') && !strstr(esc, "\302\233") && strstr(esc, "\\177\\302\\233"));
        /* ESC itself is no XML character */
        CHECK_STR(esc_char, "ERROR: it is not XML: line 1: xmlParseCharRef: invalid xmlChar value 27");
        CHECK(g_str_has_prefix(broken, "ERROR: it is not XML: line 1: "));
        CHECK(g_str_has_prefix(xxe, "ERROR: "));
}

static void test_may_be_managed(void) {
        FakeKernel *k = fake_kernel_new();
        g_autofree char *dir = g_dir_make_tmp("hook-config-XXXXXX", NULL);
        g_autofree char *conf = g_build_filename(dir, "gpuswitch.conf", NULL);
        PciAddress gpu, nic, nvidia, companion, absent;

        CHECK_INT(pci_address_parse("0000:01:00", &gpu), 0);
        CHECK_INT(pci_address_parse("0000:02:00", &nic), 0);
        CHECK_INT(pci_address_parse("0000:03:00", &nvidia), 0);
        CHECK_INT(pci_address_parse("0000:04:00", &companion), 0);
        CHECK_INT(pci_address_parse("0000:09:00", &absent), 0);
        fake_add_function(k, "0000:03:00.0", 0x030000, 0x10de, 0x1e84, NULL, 7, false);
        fake_add_function(k, "0000:04:00.0", 0x0c0330, 0x1b36, 0x000d, "xhci_hcd", 8, false);

        /* no config: Gpus=auto, NVIDIA display controllers only */
        CHECK(hook_slot_may_be_managed(&k->sysfs, conf, &nvidia));
        CHECK(!hook_slot_may_be_managed(&k->sysfs, conf, &gpu));
        CHECK(!hook_slot_may_be_managed(&k->sysfs, conf, &nic));

        /* Gpus= as listed, and the companions of a listed GPU */
        CHECK(g_file_set_contents(conf, "[Daemon]\nGpus=0000:01:00\n[Gpu 0000:01:00]\nCompanions=0000:04:00.0\n",
                                  -1, NULL));
        CHECK(hook_slot_may_be_managed(&k->sysfs, conf, &gpu));
        CHECK(hook_slot_may_be_managed(&k->sysfs, conf, &companion));
        CHECK(!hook_slot_may_be_managed(&k->sysfs, conf, &nvidia));
        CHECK(!hook_slot_may_be_managed(&k->sysfs, conf, &nic));

        /* a config that does not parse: every display controller, and only those */
        CHECK(g_file_set_contents(conf, "[Daemon]\nGpus=0000:01:00\nBogus\n", -1, NULL));
        CHECK(hook_slot_may_be_managed(&k->sysfs, conf, &gpu));
        CHECK(hook_slot_may_be_managed(&k->sysfs, conf, &nvidia));
        CHECK(!hook_slot_may_be_managed(&k->sysfs, conf, &nic));
        CHECK(!hook_slot_may_be_managed(&k->sysfs, conf, &absent));

        unlink(conf);
        rmdir(dir);
        fake_kernel_free(k);
}

int main(void) {
        test_reads_hostdevs();
        test_ignores_what_is_not_a_hostdev();
        test_refuses();
        test_may_be_managed();
        return test_failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
