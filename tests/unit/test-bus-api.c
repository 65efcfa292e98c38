/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The D-Bus API as the daemon serves it: its introspection matches
 * dbus/org.gpuswitch1.xml, and the methods answer as documented.  The
 * daemon's Manager runs on a thread of its own, on a direct connection
 * (a socketpair: no dbus-daemon), over the simulated sysfs. */
#include <gio/gio.h>
#include <pthread.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errors.h"
#include "fake-hotplug.h"
#include "fake-sysfs.h"
#include "bus.h"
#include "manager.h"
#include "testlib.h"
#include "util.h"

#define GPU_PATH GPUSWITCH_GPU_PATH_PREFIX "/0000_01_00"

typedef struct Server {
        int fd;
        int commands;             /* fake_hotplug_watch()'s, -1: none */
        FakeKernel *kernel;
        const char *conf;
        int result;
} Server;

static void *server_thread(void *p) {
        Server *srv = p;
        _cleanup_(manager_freep) Manager *m = NULL;
        const char *conf = srv->conf;
        char *err = NULL;
        sd_id128_t id;
        int r;

        r = manager_new(&m);
        if (r >= 0)
                r = config_parse(conf, strlen(conf), "test", &m->config, &err);
        if (r < 0)
                goto out;
        m->sysfs = srv->kernel->sysfs;      /* never the real /sys */
        r = manager_discover(m, NULL);
        if (r >= 0)
                r = sd_bus_new(&m->bus);
        if (r >= 0)
                r = sd_bus_set_fd(m->bus, srv->fd, srv->fd);
        if (r >= 0)
                r = sd_id128_randomize(&id);
        if (r >= 0)
                r = sd_bus_set_server(m->bus, 1, id);
        if (r >= 0)
                r = sd_bus_start(m->bus);
        if (r >= 0)
                r = bus_attach(m);
        if (r >= 0)
                r = sd_bus_attach_event(m->bus, m->event, 0);
        if (r >= 0)
                r = sd_bus_set_exit_on_disconnect(m->bus, 1);
        if (r >= 0 && srv->commands >= 0)
                r = fake_hotplug_watch(srv->kernel, m, srv->commands, NULL);
        if (r >= 0)
                r = sd_event_loop(m->event);
out:
        g_free(err);
        srv->result = r;
        return NULL;
}

static GDBusNodeInfo *introspect(sd_bus *bus, const char *path) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(GError) gerr = NULL;
        const char *xml;
        GDBusNodeInfo *info;

        CHECK(sd_bus_call_method(bus, NULL, path, "org.freedesktop.DBus.Introspectable", "Introspect", &e,
                                     &reply, NULL) >= 0);
        if (!reply || sd_bus_message_read(reply, "s", &xml) < 0)
                abort();
        info = g_dbus_node_info_new_for_xml(xml, &gerr);
        if (!info) {
                fprintf(stderr, "%s: %s\n", path, gerr->message);
                abort();
        }
        return info;
}

static const char *emits(GDBusAnnotationInfo **a) {
        const char *v = g_dbus_annotation_info_lookup(a, "org.freedesktop.DBus.Property.EmitsChangedSignal");
        return v ? v : "true";
}

static void compare_args(const char *where, GDBusArgInfo **want, GDBusArgInfo **got) {
        size_t i;

        for (i = 0; want && want[i]; i++) {
                if (!got || !got[i]) {
                        fprintf(stderr, "%s: argument %s missing\n", where, want[i]->name);
                        test_failures++;
                        return;
                }
                if (!streq(want[i]->name, got[i]->name) || !streq(want[i]->signature, got[i]->signature)) {
                        fprintf(stderr, "%s: argument %zu is %s %s, the XML says %s %s\n", where, i, got[i]->name,
                                got[i]->signature, want[i]->name, want[i]->signature);
                        test_failures++;
                }
        }
        if (got && got[i]) {
                fprintf(stderr, "%s: extra argument %s\n", where, got[i]->name);
                test_failures++;
        }
}

/* Every method, argument and property of the XML's interface, in the
 * served one, and nothing more. */
static void compare_interface(GDBusInterfaceInfo *want, GDBusInterfaceInfo *got) {
        size_t n_want = 0, n_got = 0;

        if (!got) {
                fprintf(stderr, "interface %s not served\n", want->name);
                test_failures++;
                return;
        }
        for (GDBusMethodInfo **m = want->methods; m && *m; m++, n_want++) {
                GDBusMethodInfo *g = g_dbus_interface_info_lookup_method(got, (*m)->name);
                char where[128];

                snprintf(where, sizeof where, "%s.%s", want->name, (*m)->name);
                if (!g) {
                        fprintf(stderr, "%s: not served\n", where);
                        test_failures++;
                        continue;
                }
                compare_args(where, (*m)->in_args, g->in_args);
                compare_args(where, (*m)->out_args, g->out_args);
        }
        for (GDBusMethodInfo **m = got->methods; m && *m; m++)
                n_got++;
        CHECK_INT(n_got, n_want);

        n_want = n_got = 0;
        for (GDBusPropertyInfo **p = want->properties; p && *p; p++, n_want++) {
                GDBusPropertyInfo *g = g_dbus_interface_info_lookup_property(got, (*p)->name);

                if (!g) {
                        fprintf(stderr, "%s.%s: property not served\n", want->name, (*p)->name);
                        test_failures++;
                        continue;
                }
                CHECK_STR(g->signature, (*p)->signature);
                CHECK_INT(g->flags, (*p)->flags);
                if (!streq(emits(g->annotations), emits((*p)->annotations))) {
                        fprintf(stderr, "%s.%s: EmitsChangedSignal %s, the XML says %s\n", want->name, (*p)->name,
                                emits(g->annotations), emits((*p)->annotations));
                        test_failures++;
                }
        }
        for (GDBusPropertyInfo **p = got->properties; p && *p; p++)
                n_got++;
        CHECK_INT(n_got, n_want);
}

static void test_xml_matches(sd_bus *bus) {
        g_autofree char *xml = NULL;
        g_autoptr(GError) gerr = NULL;
        GDBusNodeInfo *spec, *manager, *gpu;

        CHECK(g_file_get_contents(DBUS_XML, &xml, NULL, &gerr));
        spec = g_dbus_node_info_new_for_xml(xml, &gerr);
        if (!spec) {
                fprintf(stderr, "%s: %s\n", DBUS_XML, gerr ? gerr->message : "?");
                abort();
        }
        manager = introspect(bus, GPUSWITCH_MANAGER_PATH);
        gpu = introspect(bus, GPU_PATH);
        compare_interface(g_dbus_node_info_lookup_interface(spec, GPUSWITCH_MANAGER_INTERFACE),
                          g_dbus_node_info_lookup_interface(manager, GPUSWITCH_MANAGER_INTERFACE));
        compare_interface(g_dbus_node_info_lookup_interface(spec, GPUSWITCH_GPU_INTERFACE),
                          g_dbus_node_info_lookup_interface(gpu, GPUSWITCH_GPU_INTERFACE));
        /* the GPU object is listed under its parent */
        {
                GDBusNodeInfo *parent = introspect(bus, GPUSWITCH_GPU_PATH_PREFIX);
                CHECK(parent->nodes && parent->nodes[0] && streq(parent->nodes[0]->path, "0000_01_00"));
                g_dbus_node_info_unref(parent);
        }
        g_dbus_node_info_unref(spec);
        g_dbus_node_info_unref(manager);
        g_dbus_node_info_unref(gpu);
}

static void expect_error(sd_bus *bus, const char *method, const char *want, const char *types, ...) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        va_list ap;

        CHECK_INT(sd_bus_message_new_method_call(bus, &m, NULL, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE, method), 0);
        va_start(ap, types);
        CHECK_INT(sd_bus_message_appendv(m, types, ap) >= 0, 1);
        va_end(ap);
        CHECK(sd_bus_call(bus, m, 0, &e, &reply) < 0);
        CHECK_STR(e.name, want);
}

static void test_methods(sd_bus *bus, FakeKernel *k) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *o, *a, *n, *mode, *s1, *s2, *s3, *s4, *s5;
        char *str = NULL;
        int b;

        CHECK(sd_bus_call_method(bus, NULL, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE, "ListGpus", &e, &reply,
                                     NULL) >= 0);
        CHECK_INT(sd_bus_message_read(reply, "a(osss)", 1, &o, &a, &n, &mode), 1);
        CHECK_STR(o, GPU_PATH);
        CHECK_STR(a, "0000:01:00");
        CHECK_STR(mode, "host");
        reply = sd_bus_message_unref(reply);

        for (const char *const *arg = (const char *const[]) { "", "0000:01:00", "01:00", "0000:01:00.2", NULL }; *arg;
             arg++) {
                CHECK(sd_bus_call_method(bus, NULL, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE, "GetGpu", &e,
                                             &reply, "s", *arg) >= 0);
                CHECK_INT(sd_bus_message_read(reply, "o", &o), 1);
                CHECK_STR(o, GPU_PATH);
                reply = sd_bus_message_unref(reply);
        }
        expect_error(bus, "GetGpu", SD_BUS_ERROR_INVALID_ARGS, "s", "../x");
        expect_error(bus, "GetGpu", GS_ERROR_NO_SUCH_GPU, "s", "0000:09:00");
        expect_error(bus, "Plan", SD_BUS_ERROR_INVALID_ARGS, "ss", "", "bogus");
        expect_error(bus, "Plan", GS_ERROR_NO_SUCH_GPU, "ss", "0000:09:00", "vfio");
        expect_error(bus, "Switch", SD_BUS_ERROR_INVALID_ARGS, "sst", "", "bogus", (uint64_t) 0);
        expect_error(bus, "Switch", SD_BUS_ERROR_INVALID_ARGS, "sst", "", "vfio", (uint64_t) 0x100);
        expect_error(bus, "Switch", SD_BUS_ERROR_INVALID_ARGS, "sst", "0000:01:00/../../x", "vfio", (uint64_t) 0);
        expect_error(bus, "ListHolders", GS_ERROR_NO_SUCH_GPU, "s", "0000:09:00");
        /* a bad argument quoted in the error is cut at a whole character:
         * cut inside "é" the reply would not be valid UTF-8, and not be sent */
        expect_error(bus, "Plan", SD_BUS_ERROR_INVALID_ARGS, "ss", "", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9");
        expect_error(bus, "SetDefaultMode", SD_BUS_ERROR_INVALID_ARGS, "ss", "",
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9");
        expect_error(bus, "GetGpu", SD_BUS_ERROR_INVALID_ARGS, "s",
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9");

        CHECK(sd_bus_call_method(bus, NULL, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE, "Plan", &e, &reply, "ss",
                                     "", "vfio") >= 0);
        CHECK_INT(sd_bus_message_enter_container(reply, 'a', "(sssss)"), 1);
        CHECK_INT(sd_bus_message_read(reply, "(sssss)", &s1, &s2, &s3, &s4, &s5), 1);
        CHECK_STR(s1, "0000:01:00.2");
        CHECK_STR(s2, "0x0c0330");
        CHECK_STR(s3, "xhci_hcd");
        CHECK_STR(s4, "vfio-pci");
        CHECK_STR(s5, "move");
        reply = sd_bus_message_unref(reply);
        /* a plan changes nothing */
        CHECK_STR(fake_state(k), "bochs-drm[(null)] snd_hda_intel[(null)] xhci_hcd[(null)]");

        CHECK_INT(sd_bus_get_property_string(bus, NULL, GPU_PATH, GPUSWITCH_GPU_INTERFACE, "Mode", &e, &str), 0);
        CHECK_STR(str, "host");
        free(str);
        CHECK_INT(sd_bus_get_property_string(bus, NULL, GPU_PATH, GPUSWITCH_GPU_INTERFACE, "DefaultMode", &e, &str), 0);
        CHECK_STR(str, "host");
        free(str);
        CHECK_INT(sd_bus_get_property_trivial(bus, NULL, GPU_PATH, GPUSWITCH_GPU_INTERFACE, "BootVga", &e, 'b', &b), 0);
        CHECK_INT(b, 0);
        CHECK_INT(sd_bus_get_property(bus, NULL, GPU_PATH, GPUSWITCH_GPU_INTERFACE, "Functions", &e, &reply, "a(ssss)"),
                  0);
        CHECK_INT(sd_bus_message_read(reply, "a(ssss)", 3, &s1, &s2, &s3, &s4, &a, &n, &o, &mode, &s5, &s5, &s5,
                                      &s5), 1);
        CHECK_STR(s1, "0000:01:00.0");
        CHECK_STR(s2, "0x030000");
        CHECK_STR(s3, "bochs-drm");
        CHECK_STR(s4, "bochs-drm");
        reply = sd_bus_message_unref(reply);
        CHECK_INT(sd_bus_get_property(bus, NULL, GPU_PATH, GPUSWITCH_GPU_INTERFACE, "IommuGroups", &e, &reply, "au"), 0);
        {
                uint32_t grp = 0;
                CHECK_INT(sd_bus_message_read(reply, "au", 1, &grp), 1);
                CHECK_INT(grp, 5);
        }
        reply = sd_bus_message_unref(reply);
}

/* Two GPUs, the first with a companion on bus 03: none named, the error
 * lists both; a companion's address names its GPU; Functions lists it. */
static void test_two_gpus(sd_bus *bus, FakeKernel *k) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *o, *s1, *s2, *s3, *s4;
        size_t n = 0;

        CHECK(sd_bus_call_method(bus, NULL, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE, "GetGpu", &e, &reply,
                                 "s", "") < 0);
        CHECK_STR(e.name, GS_ERROR_NO_SUCH_GPU);
        CHECK_CONTAINS(e.message, "2 GPUs are managed: name one by its address:");
        CHECK_CONTAINS(e.message, "\n  0000:01:00  host      ");
        CHECK_CONTAINS(e.message, "\n  0000:04:00  host      ");
        sd_bus_error_free(&e);

        CHECK(sd_bus_call_method(bus, NULL, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE, "GetGpu", &e, &reply,
                                 "s", "0000:03:00.0") >= 0);
        CHECK_INT(sd_bus_message_read(reply, "o", &o), 1);
        CHECK_STR(o, GPU_PATH);
        reply = sd_bus_message_unref(reply);
        /* its slot is not the GPU */
        expect_error(bus, "GetGpu", GS_ERROR_NO_SUCH_GPU, "s", "0000:03:00");

        CHECK_INT(sd_bus_get_property(bus, NULL, GPU_PATH, GPUSWITCH_GPU_INTERFACE, "Functions", &e, &reply, "a(ssss)"),
                  0);
        CHECK_INT(sd_bus_message_enter_container(reply, 'a', "(ssss)"), 1);
        while (sd_bus_message_read(reply, "(ssss)", &s1, &s2, &s3, &s4) > 0)
                n++;
        CHECK_INT(n, 4);
        CHECK_STR(s1, "0000:03:00.0");        /* the companion, last */
        CHECK_STR(s3, "xhci_hcd");
        reply = sd_bus_message_unref(reply);
}

/* What a client of the bus sees of a GPU that goes and comes back: the
 * signals of the ObjectManager and of Gpus, as a desktop applet follows
 * them; NoSuchGpu and no object while it is gone. */
typedef struct Seen {
        int added, removed, gpus_changed;
        char added_path[64], removed_path[64], address[16];
        bool removed_gpu_interface;
        int n_gpus;               /* in the last Gpus change */
} Seen;

static int on_interfaces_added(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Seen *s = userdata;
        const char *path, *iface, *prop, *address;

        CHECK_INT(sd_bus_message_read(msg, "o", &path), 1);
        snprintf(s->added_path, sizeof s->added_path, "%s", path);
        CHECK_INT(sd_bus_message_enter_container(msg, 'a', "{sa{sv}}"), 1);
        while (sd_bus_message_enter_container(msg, 'e', "sa{sv}") > 0) {
                CHECK_INT(sd_bus_message_read(msg, "s", &iface), 1);
                if (!streq(iface, GPUSWITCH_GPU_INTERFACE)) {
                        CHECK(sd_bus_message_skip(msg, "a{sv}") >= 0);
                } else {
                        CHECK_INT(sd_bus_message_enter_container(msg, 'a', "{sv}"), 1);
                        while (sd_bus_message_enter_container(msg, 'e', "sv") > 0) {
                                CHECK_INT(sd_bus_message_read(msg, "s", &prop), 1);
                                if (streq(prop, "Address")) {
                                        CHECK_INT(sd_bus_message_read(msg, "v", "s", &address), 1);
                                        snprintf(s->address, sizeof s->address, "%s", address);
                                } else
                                        CHECK(sd_bus_message_skip(msg, "v") >= 0);
                                CHECK(sd_bus_message_exit_container(msg) >= 0);
                        }
                        CHECK(sd_bus_message_exit_container(msg) >= 0);
                }
                CHECK(sd_bus_message_exit_container(msg) >= 0);
        }
        s->added++;
        return 0;
}

static int on_interfaces_removed(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Seen *s = userdata;
        const char *path, *iface;

        CHECK_INT(sd_bus_message_read(msg, "o", &path), 1);
        snprintf(s->removed_path, sizeof s->removed_path, "%s", path);
        CHECK_INT(sd_bus_message_enter_container(msg, 'a', "s"), 1);
        while (sd_bus_message_read(msg, "s", &iface) > 0)
                s->removed_gpu_interface = s->removed_gpu_interface || streq(iface, GPUSWITCH_GPU_INTERFACE);
        s->removed++;
        return 0;
}

static int on_manager_changed(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Seen *s = userdata;
        const char *iface, *prop, *o;

        CHECK_INT(sd_bus_message_read(msg, "s", &iface), 1);
        if (!streq(iface, GPUSWITCH_MANAGER_INTERFACE))
                return 0;
        CHECK_INT(sd_bus_message_enter_container(msg, 'a', "{sv}"), 1);
        while (sd_bus_message_enter_container(msg, 'e', "sv") > 0) {
                CHECK_INT(sd_bus_message_read(msg, "s", &prop), 1);
                if (streq(prop, "Gpus")) {
                        s->n_gpus = 0;
                        CHECK_INT(sd_bus_message_enter_container(msg, 'v', "ao"), 1);
                        CHECK_INT(sd_bus_message_enter_container(msg, 'a', "o"), 1);
                        while (sd_bus_message_read(msg, "o", &o) > 0)
                                s->n_gpus++;
                        CHECK(sd_bus_message_exit_container(msg) >= 0);
                        CHECK(sd_bus_message_exit_container(msg) >= 0);
                        s->gpus_changed++;
                } else
                        CHECK(sd_bus_message_skip(msg, "v") >= 0);
                CHECK(sd_bus_message_exit_container(msg) >= 0);
        }
        return 0;
}

static void wait_for(sd_bus *bus, const int *counter, int want) {
        for (int i = 0; i < 500 && *counter < want; i++) {
                if (sd_bus_process(bus, NULL) > 0)
                        continue;
                (void) sd_bus_wait(bus, 10 * 1000);
        }
        CHECK_INT(*counter, want);
}

static size_t managed_objects(sd_bus *bus) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        size_t n = 0;

        CHECK(sd_bus_call_method(bus, NULL, GPUSWITCH_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                                 "GetManagedObjects", &e, &reply, NULL) >= 0);
        if (!reply)
                return SIZE_MAX;
        CHECK_INT(sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}"), 1);
        while (sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}") > 0) {
                CHECK_INT(sd_bus_message_read(reply, "o", &path), 1);
                CHECK_STR(path, GPU_PATH);
                CHECK(sd_bus_message_skip(reply, "a{sa{sv}}") >= 0);
                CHECK(sd_bus_message_exit_container(reply) >= 0);
                n++;
        }
        return n;
}

typedef struct SwitchReply {
        int done;
        char *name, *message;
} SwitchReply;

static int on_switch_reply(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        SwitchReply *r = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(msg);

        r->name = e ? strdup(e->name) : NULL;
        r->message = e && e->message ? strdup(e->message) : NULL;
        r->done++;
        return 0;
}

static void test_hotplug(sd_bus *bus, FakeKernel *k, int commands) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *added = NULL, *removed = NULL, *changed = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        Seen seen = {};
        char *str = NULL;

        CHECK(sd_bus_match_signal(bus, &added, NULL, GPUSWITCH_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                                  "InterfacesAdded", on_interfaces_added, &seen) >= 0);
        CHECK(sd_bus_match_signal(bus, &removed, NULL, GPUSWITCH_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                                  "InterfacesRemoved", on_interfaces_removed, &seen) >= 0);
        CHECK(sd_bus_match_signal(bus, &changed, NULL, GPUSWITCH_MANAGER_PATH, "org.freedesktop.DBus.Properties",
                                  "PropertiesChanged", on_manager_changed, &seen) >= 0);
        CHECK_INT(managed_objects(bus), 1);

        CHECK_INT(write(commands, "remove\n", 7), 7);
        wait_for(bus, &seen.removed, 1);
        wait_for(bus, &seen.gpus_changed, 1);
        CHECK_STR(seen.removed_path, GPU_PATH);
        CHECK(seen.removed_gpu_interface);
        CHECK_INT(seen.n_gpus, 0);
        CHECK_INT(seen.added, 0);
        CHECK_INT(managed_objects(bus), 0);
        expect_error(bus, "GetGpu", GS_ERROR_NO_SUCH_GPU, "s", "0000:01:00");
        expect_error(bus, "GetGpu", GS_ERROR_NO_SUCH_GPU, "s", "");
        expect_error(bus, "ListHolders", GS_ERROR_NO_SUCH_GPU, "s", "0000:01:00");
        CHECK(sd_bus_get_property_string(bus, NULL, GPU_PATH, GPUSWITCH_GPU_INTERFACE, "Mode", &e, &str) < 0);
        CHECK(e.name && strncmp(e.name, "org.freedesktop.DBus.Error.Unknown", 34) == 0);
        sd_bus_error_free(&e);

        CHECK_INT(write(commands, "add\n", 4), 4);
        wait_for(bus, &seen.added, 1);
        wait_for(bus, &seen.gpus_changed, 2);
        CHECK_STR(seen.added_path, GPU_PATH);
        CHECK_STR(seen.address, "0000:01:00");
        CHECK_INT(seen.n_gpus, 1);
        CHECK_INT(managed_objects(bus), 1);
        CHECK_INT(sd_bus_get_property_string(bus, NULL, GPU_PATH, GPUSWITCH_GPU_INTERFACE, "Mode", &e, &str), 0);
        CHECK_STR(str, "host");
        free(str);
        CHECK_STR(fake_state(k), "bochs-drm[(null)] snd_hda_intel[(null)] xhci_hcd[(null)]");
        /* gone in the middle of a switch (root's: no polkit on a direct
         * connection): the caller is answered, naming the GPU and the step */
        if (geteuid() != 0)
                return;
        k->write_delay_ms = 300;
        {
                _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *call = NULL;
                SwitchReply reply = {};
                bool rebinding = false;

                CHECK(sd_bus_call_method_async(bus, &call, NULL, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE,
                                               "Switch", on_switch_reply, &reply, "sst", "0000:01:00", "vfio",
                                               (uint64_t) 0) >= 0);
                for (int i = 0; i < 500 && !rebinding && !reply.done; i++) {
                        (void) sd_bus_process(bus, NULL);
                        CHECK_INT(sd_bus_get_property_string(bus, NULL, GPU_PATH, GPUSWITCH_GPU_INTERFACE, "Step", &e,
                                                             &str), 0);
                        rebinding = str && strstr(str, "unbind");
                        free(str);
                        str = NULL;
                        if (!rebinding)
                                usleep(10 * 1000);
                }
                CHECK(rebinding);
                CHECK_INT(write(commands, "remove\n", 7), 7);
                wait_for(bus, &reply.done, 1);
                CHECK_STR(reply.name, GS_ERROR_SWITCH_FAILED);
                CHECK_CONTAINS(reply.message,
                               "0000:01:00: the GPU left the PCI bus during the switch to vfio, at its step rebind");
                wait_for(bus, &seen.removed, 2);
                free(reply.name);
                free(reply.message);
        }
        k->write_delay_ms = 0;
}

/* The switch records and the runtime marker in the fake tree, never in
 * /var/lib/gpuswitch: the test VM's root has this machine's as its lower
 * layer, where a record would be one of its own. */
static void use_fake_state_dir(FakeKernel *k) {
        g_autofree char *state = g_build_filename(k->root, "state", NULL);

        setenv("GPUSWITCH_STATE_DIR", state, 1);
        setenv("GPUSWITCH_RUNTIME_DIR", state, 1);
}

static void serve_hotplug(const char *conf) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        Server srv = { .conf = conf };
        pthread_t t;
        int pair[2], pipefd[2];

        CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
        CHECK_INT(pipe2(pipefd, O_CLOEXEC), 0);
        srv.fd = pair[0];
        srv.commands = pipefd[0];
        srv.kernel = fake_kernel_new();
        use_fake_state_dir(srv.kernel);
        CHECK_INT(pthread_create(&t, NULL, server_thread, &srv), 0);

        CHECK_INT(sd_bus_new(&bus), 0);
        CHECK_INT(sd_bus_set_fd(bus, pair[1], pair[1]), 0);
        CHECK(sd_bus_start(bus) >= 0);
        (void) gs_errors_register();

        test_hotplug(bus, srv.kernel, pipefd[1]);

        bus = sd_bus_flush_close_unref(bus);
        pthread_join(t, NULL);
        CHECK_INT(srv.result >= 0, 1);
        close(pipefd[0]);
        close(pipefd[1]);
        fake_kernel_free(srv.kernel);
}

static void serve(const char *conf, void (*test)(sd_bus *bus, FakeKernel *k), bool second_gpu) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        Server srv = { .conf = conf, .commands = -1 };
        pthread_t t;
        int pair[2];

        CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
        srv.fd = pair[0];
        srv.kernel = fake_kernel_new();
        use_fake_state_dir(srv.kernel);
        if (second_gpu) {
                fake_add_function(srv.kernel, "0000:03:00.0", 0x0c0330, 0x1033, 0x0194, "xhci_hcd", 5, false);
                fake_add_function(srv.kernel, "0000:04:00.0", 0x030000, 0x1234, 0x1111, "bochs-drm", 7, false);
        }
        CHECK_INT(pthread_create(&t, NULL, server_thread, &srv), 0);

        CHECK_INT(sd_bus_new(&bus), 0);
        CHECK_INT(sd_bus_set_fd(bus, pair[1], pair[1]), 0);
        CHECK(sd_bus_start(bus) >= 0);
        (void) gs_errors_register();

        test(bus, srv.kernel);

        bus = sd_bus_flush_close_unref(bus);
        pthread_join(t, NULL);
        CHECK_INT(srv.result >= 0, 1);
        fake_kernel_free(srv.kernel);
}

static void test_one_gpu(sd_bus *bus, FakeKernel *k) {
        test_xml_matches(bus);
        test_methods(bus, k);
}

int main(void) {
        serve("[Daemon]\nGpus=0000:01:00\n[Gpu 0000:01:00]\nDefaultMode=host\n", test_one_gpu, false);
        serve("[Daemon]\nGpus=0000:01:00;0000:04:00\n[Gpu 0000:01:00]\nCompanions=0000:03:00.0\n", test_two_gpus,
              true);
        serve_hotplug("[Daemon]\nGpus=0000:01:00\n");
        TEST_MAIN_END();
}
