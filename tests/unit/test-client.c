/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gpuswitchctl's parts that need no bus: arguments, class names, tables,
 * the JSON form of a GPU. */
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "bus-connect.h"
#include "gpu-arg.h"
#include "gpu-info.h"
#include "gpuswitch-bus.h"
#include "holders-out.h"
#include "json-out.h"
#include "output.h"
#include "testlib.h"
#include "util.h"

static void test_args(void) {
        char slot[PCI_SLOT_STRLEN];
        unsigned t = 0;

        CHECK_INT(gpu_arg_normalize("0000:0a:00", slot), 0);
        CHECK_STR(slot, "0000:0a:00");
        CHECK_INT(gpu_arg_normalize("0a:00", slot), 0);
        CHECK_STR(slot, "0000:0a:00");
        CHECK_INT(gpu_arg_normalize("0000:0A:00.3", slot), 0);
        CHECK_STR(slot, "0000:0a:00");
        CHECK_INT(gpu_arg_normalize("", slot), 0);
        CHECK_STR(slot, "");
        CHECK_INT(gpu_arg_normalize(NULL, slot), 0);
        CHECK_STR(slot, "");
        CHECK_INT(gpu_arg_normalize("../../x", slot), -EINVAL);
        CHECK_INT(gpu_arg_normalize("0000:0a:00.9", slot), -EINVAL);
        CHECK_INT(gpu_arg_normalize("nvidia", slot), -EINVAL);

        CHECK(mode_arg_in("vfio", "vfio host"));
        CHECK(mode_arg_in("host", "vfio host"));
        CHECK(mode_arg_in("keep", "host vfio keep"));
        CHECK(!mode_arg_in("keep", "vfio host"));
        CHECK(!mode_arg_in("nvidia", "vfio host"));
        CHECK(!mode_arg_in("mixed", "vfio host"));
        CHECK(!mode_arg_in("ho", "vfio host"));
        CHECK(!mode_arg_in("fio", "vfio host"));
        CHECK(!mode_arg_in("vfio host", "vfio host keep") && !mode_arg_in("o h", "vfio host"));
        CHECK(!mode_arg_in("", "vfio host"));
        CHECK(!mode_arg_in(NULL, "vfio host"));

        /* --force, --keep-holders: Switch()'s flags, the two apart */
        CHECK_INT(switch_flags_from_options(false, false), 0);
        CHECK_INT(switch_flags_from_options(true, false), SWITCH_FLAG_TERMINATE_HOLDERS);
        CHECK_INT(switch_flags_from_options(false, true), SWITCH_FLAG_KEEP_HOLDERS);
        CHECK_INT(switch_flags_from_options(true, true), SWITCH_FLAG_TERMINATE_HOLDERS | SWITCH_FLAG_KEEP_HOLDERS);
        CHECK_INT(SWITCH_FLAG_KEEP_HOLDERS, 0x2);
        CHECK_INT(SWITCH_FLAGS_ALL & SWITCH_FLAG_KEEP_HOLDERS, SWITCH_FLAG_KEEP_HOLDERS);

        CHECK_INT(timeout_arg_parse("30", &t), 0);
        CHECK_INT(t, 30);
        CHECK_INT(timeout_arg_parse("0", &t), -EINVAL);
        CHECK_INT(timeout_arg_parse("-5", &t), -EINVAL);
        CHECK_INT(timeout_arg_parse("+5", &t), -EINVAL);
        CHECK_INT(timeout_arg_parse("5s", &t), -EINVAL);
        CHECK_INT(timeout_arg_parse("", &t), -EINVAL);
        CHECK_INT(timeout_arg_parse("86401", &t), -EINVAL);
        CHECK_INT(timeout_arg_parse("99999999999999999999", &t), -EINVAL);
}

static void test_classes(void) {
        unsigned long c;

        CHECK_STR(pci_class_name(0x030000), "VGA");
        CHECK_STR(pci_class_name(0x030200), "3D");
        CHECK_STR(pci_class_name(0x038000), "Display");
        CHECK_STR(pci_class_name(0x040300), "Audio");
        CHECK_STR(pci_class_name(0x0c0330), "USB");
        CHECK_STR(pci_class_name(0x0c8000), "Serial bus");
        CHECK_STR(pci_class_name(0x020000), "Network");
        CHECK_STR(pci_class_name(0xff0000), "Other");
        CHECK_INT(pci_class_parse("0x0c0330", &c), 0);
        CHECK_INT(c, 0x0c0330);
        CHECK_INT(pci_class_parse("", &c), -EINVAL);
        CHECK_INT(pci_class_parse("0xzz", &c), -EINVAL);
}

/* What a function prints, captured through a pipe. */
static char *capture_table(void) {
        g_autoptr(Table) t = table_new(3, "FUNCTION", "CLASS", "DRIVER");
        char buf[1024] = "";
        FILE *f = fmemopen(buf, sizeof buf, "w");

        table_add_row(t, "0000:01:00.0", "VGA", "bochs-drm");
        table_add_row(t, "0000:01:00.1", "Audio", NULL);
        CHECK_INT(table_rows(t), 2);
        table_print(t, f);
        fclose(f);
        return strdup(buf);
}

static void test_table(void) {
        char *s = capture_table();

        /* not a terminal: no escape sequences, columns two spaces apart */
        CHECK_STR(s, "FUNCTION      CLASS  DRIVER\n"
                     "0000:01:00.0  VGA    bochs-drm\n"
                     "0000:01:00.1  Audio  -\n");
        free(s);
}

static void test_json(void) {
        FunctionInfo fn[] = {
                { "0000:01:00.0", "0x030000", "vfio-pci", "nvidia" },
                { "0000:01:00.1", "0x040300", "", "" },
                { "0000:02:00.0", "0x0c0330", "vfio-pci", "xhci_hcd" },      /* a companion */
        };
        unsigned groups[] = { 12 };
        GpuInfo g = {
                .object = GPUSWITCH_GPU_PATH_PREFIX "/0000_01_00", .address = "0000:01:00", .name = "GA102",
                .mode = "mixed", .default_mode = "keep", .boot_vga = false, .virtual_machine = "win11",
                .iommu_groups = groups, .n_iommu_groups = 1, .functions = fn, .n_functions = 3,
        };
        g_autoptr(JsonOut) o = json_out_new();
        g_autofree char *s = NULL;

        gpu_info_to_json(&g, o);
        s = json_out_to_string(o, false);
        CHECK_STR(s, "{\"address\":\"0000:01:00\",\"object\":\"" GPUSWITCH_GPU_PATH_PREFIX "/0000_01_00\",\"name\":\"GA102\","
                     "\"mode\":\"mixed\",\"default_mode\":\"keep\",\"step\":null,\"virtual_machine\":\"win11\","
                     "\"boot_vga\":false,\"iommu_groups\":[12],"
                     "\"functions\":[{\"address\":\"0000:01:00.0\",\"class\":\"0x030000\",\"class_name\":\"VGA\","
                     "\"driver\":\"vfio-pci\",\"host_driver\":\"nvidia\",\"companion\":false},{\"address\":\"0000:01:00.1\","
                     "\"class\":\"0x040300\",\"class_name\":\"Audio\",\"driver\":null,\"host_driver\":null,"
                     "\"companion\":false},{\"address\":\"0000:02:00.0\",\"class\":\"0x0c0330\",\"class_name\":"
                     "\"USB\",\"driver\":\"vfio-pci\",\"host_driver\":\"xhci_hcd\",\"companion\":true}]}");

        /* without --json there is no JsonOut: a call that does nothing */
        gpu_info_to_json(&g, NULL);
}

/* A ListHolders reply of n rows (pid, uid, comm, node), sealed for reading. */
static sd_bus_message *holders_reply(sd_bus *bus, const uint32_t (*ids)[2], const char *const (*names)[2], size_t n) {
        sd_bus_message *m = NULL;

        CHECK(sd_bus_message_new_signal(bus, &m, "/test", "test.Holders", "Reply") >= 0);
        CHECK(sd_bus_message_open_container(m, 'a', "(uuss)") >= 0);
        for (size_t i = 0; i < n; i++)
                CHECK(sd_bus_message_append(m, "(uuss)", ids[i][0], ids[i][1], names[i][0], names[i][1]) >= 0);
        CHECK(sd_bus_message_close_container(m) >= 0);
        CHECK(sd_bus_message_seal(m, 1, 0) >= 0);
        return m;
}

static char *holders_text(sd_bus *bus, const uint32_t (*ids)[2], const char *const (*names)[2], size_t n, bool json,
                          const BusUsers *users) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = holders_reply(bus, ids, names, n);
        g_autoptr(JsonOut) j = json ? json_out_new() : NULL;
        char buf[2048] = "";
        FILE *f = fmemopen(buf, sizeof buf, "w");

        CHECK_INT(holders_out(m, "0000:01:00", users, j, f), 0);
        fclose(f);
        return strdup(buf);
}

/* The holders verb: other users' processes the daemon hid (pid 0, uid
 * HOLDER_HIDDEN_UID) are a count, not rows. */
static void test_holders(void) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        const uint32_t ids[][2] = { { 4242, 0 }, { 0, HOLDER_HIDDEN_UID }, { 0, HOLDER_HIDDEN_UID } };
        const char *const names[][2] = { { "sleep", "card0" }, { "", "" }, { "", "" } };
        const BusUsers local = { .local = true }, remote = { .local = false };
        struct passwd *root = getpwuid(0);
        char want[256];
        int sv[2];
        char *s;

        /* messages need a bus that has started: one end of a socketpair */
        CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        CHECK_INT(sd_bus_new(&bus), 0);
        CHECK_INT(sd_bus_set_fd(bus, sv[0], sv[0]), 0);
        CHECK_INT(sd_bus_start(bus), 0);
        s = holders_text(bus, ids, names, 3, false, &local);
        snprintf(want, sizeof want, "PID   USER%*s  COMMAND  NODE\n4242  %s  sleep    card0\n"
                 "2 more processes of other users, hidden (root or those allowed to switch see them)\n",
                 (int) strlen(root->pw_name) - 4, "", root->pw_name);
        CHECK_STR(s, want);
        free(s);

        s = holders_text(bus, ids + 1, names + 1, 1, false, &local);
        CHECK_STR(s, "1 more process of other users, hidden (root or those allowed to switch see them)\n");
        free(s);

        s = holders_text(bus, ids, names, 0, false, &local);
        CHECK_STR(s, "No process holds 0000:01:00.\n");
        free(s);

        s = holders_text(bus, ids, names, 3, true, &local);
        snprintf(want, sizeof want, "{\n  \"gpu\" : \"0000:01:00\",\n  \"holders\" : [\n    {\n      \"pid\" : 4242,\n"
                 "      \"uid\" : 0,\n      \"user\" : \"%s\",\n      \"command\" : \"sleep\",\n"
                 "      \"node\" : \"card0\"\n    }\n  ],\n  \"hidden\" : 2\n}\n", root->pw_name);
        CHECK_STR(s, want);
        free(s);

        /* over --host the uid is the other machine's: no name from here */
        s = holders_text(bus, ids, names, 1, false, &remote);
        CHECK_STR(s, "PID   USER  COMMAND  NODE\n4242  0     sleep    card0\n");
        free(s);
        close(sv[1]);
}

/* -H's argument as the unixexec: address, or -EINVAL; the forms are
 * those of systemd 252's test-bus-address. */
static void remote_ok(const char *host, const char *want) {
        g_autofree char *a = NULL;

        CHECK_INT(bus_remote_address(host, &a), 0);
        CHECK_STR(a, want);
}

static void remote_bad(const char *host) {
        char *a = NULL;

        CHECK_INT(bus_remote_address(host, &a), -EINVAL);
        CHECK(!a);
}

static void test_remote_address(void) {
        remote_ok("host", "unixexec:path=ssh,argv1=-xT,argv2=--,argv3=host,argv4=systemd-stdio-bridge");
        remote_ok("host:123", "unixexec:path=ssh,argv1=-xT,argv2=-p,argv3=123,argv4=--,argv5=host,"
                              "argv6=systemd-stdio-bridge");
        remote_ok("user@host", "unixexec:path=ssh,argv1=-xT,argv2=--,argv3=user%40host,argv4=systemd-stdio-bridge");
        remote_ok("alice@gpu-box.lab.example:2222", "unixexec:path=ssh,argv1=-xT,argv2=-p,argv3=2222,argv4=--,"
                                                    "argv5=alice%40gpu-box.lab.example,argv6=systemd-stdio-bridge");
        remote_ok("192.0.2.7", "unixexec:path=ssh,argv1=-xT,argv2=--,argv3=192.0.2.7,argv4=systemd-stdio-bridge");
        remote_ok("[::1]", "unixexec:path=ssh,argv1=-xT,argv2=--,argv3=%3a%3a1,argv4=systemd-stdio-bridge");
        remote_ok("user@[::1]", "unixexec:path=ssh,argv1=-xT,argv2=--,argv3=user%40%3a%3a1,argv4=systemd-stdio-bridge");
        remote_ok("user@[::1]:99", "unixexec:path=ssh,argv1=-xT,argv2=-p,argv3=99,argv4=--,argv5=user%40%3a%3a1,"
                                   "argv6=systemd-stdio-bridge");
        remote_ok("[fe80::1]:022", "unixexec:path=ssh,argv1=-xT,argv2=-p,argv3=22,argv4=--,argv5=fe80%3a%3a1,"
                                   "argv6=systemd-stdio-bridge");

        remote_bad("");
        remote_bad("host:");
        remote_bad("host:123:123");
        remote_bad("host:0");
        remote_bad("host:65536");
        remote_bad("host:ssh");
        remote_bad("host/container");   /* systemd's HOST/CONTAINER: not offered */
        remote_bad("user@host@host");
        remote_bad("@host");
        remote_bad("user@");
        remote_bad("-oProxyCommand=x");  /* never an ssh option */
        remote_bad("-oBatchMode");
        remote_bad("-l@host");
        remote_bad("host name");
        remote_bad("host,argv9=x");     /* nothing of the address's own syntax */
        remote_bad("[::1");
        remote_bad("[]");
        remote_bad("[host]");
        remote_bad("[::1]x");

        CHECK(bus_machine_name_is_valid("vm-ubuntu_24.04"));
        CHECK(!bus_machine_name_is_valid(""));
        CHECK(!bus_machine_name_is_valid(NULL));
        CHECK(!bus_machine_name_is_valid(".host"));
        CHECK(!bus_machine_name_is_valid("-x"));
        CHECK(!bus_machine_name_is_valid("a/b"));
        CHECK(!bus_machine_name_is_valid("user@c"));
        CHECK(!bus_machine_name_is_valid("0123456789012345678901234567890123456789012345678901234567890123456789"));

        {
                g_autofree char *l = bus_transport_describe(BUS_TRANSPORT_LOCAL, NULL);
                g_autofree char *h = bus_transport_describe(BUS_TRANSPORT_REMOTE, "alice@gpu-box");
                g_autofree char *m = bus_transport_describe(BUS_TRANSPORT_MACHINE, "vm1");

                CHECK_STR(l, "the system bus");
                CHECK_STR(h, "alice@gpu-box");
                CHECK_STR(m, "container vm1");
        }
}

int main(void) {
        test_args();
        test_holders();
        test_remote_address();
        test_classes();
        test_table();
        test_json();
        TEST_MAIN_END();
}
