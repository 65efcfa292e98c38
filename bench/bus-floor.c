/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bus-floor: the least a service on the system bus can do for bus-load's
 * reads.  It offers gpuswitchd's objects, properties, ListGpus and GetGpu
 * with the same shapes and fixed values, from one sd-event loop, nothing
 * else.  bench/vm/bus-latency.sh runs the same load against it and against
 * gpuswitchd in the same boot: what the daemon adds over the bus itself.
 *
 *   bus-floor NAME      serve on the system bus as NAME until SIGTERM
 *
 * The bus policy must let root own NAME (the benchmark drops one in). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "gpuswitch-bus.h"

#define GPU_PATH GPUSWITCH_GPU_PATH_PREFIX "/0000_01_00"

static int get_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                      sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", *(const char *const *) userdata);
}

static int get_gpus(sd_bus *bus, const char *path, const char *interface, const char *property,
                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "ao", 1, GPU_PATH);
}

static int get_functions(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "a(ssss)", 4,
                                     "0000:01:00.0", "0x030000", "bochs-drm", "bochs-drm",
                                     "0000:01:00.1", "0x040300", "snd_hda_intel", "snd_hda_intel",
                                     "0000:01:00.2", "0x0c0330", "xhci_hcd", "xhci_hcd",
                                     "0000:01:00.3", "0x00ff00", "gpuswitch_test", "gpuswitch_test");
}

static int get_groups(sd_bus *bus, const char *path, const char *interface, const char *property,
                      sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "au", 1, 3u);
}

static int get_boot_vga(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "b", 0);
}

static int method_list_gpus(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return sd_bus_reply_method_return(msg, "a(osss)", 1, GPU_PATH, "0000:01:00", "Bench floor GPU", "host");
}

static int method_get_gpu(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *arg;
        int r;

        r = sd_bus_message_read(msg, "s", &arg);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "o", GPU_PATH);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Gpus", "ao", get_gpus, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD("ListGpus", "", "a(osss)", method_list_gpus, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("GetGpu", "s", "o", method_get_gpu, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

static const sd_bus_vtable gpu_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Address", "s", get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Name", "s", get_string, sizeof(char *), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Mode", "s", get_string, 2 * sizeof(char *), 0),
        SD_BUS_PROPERTY("Step", "s", get_string, 3 * sizeof(char *), 0),
        SD_BUS_PROPERTY("Functions", "a(ssss)", get_functions, 0, 0),
        SD_BUS_PROPERTY("IommuGroups", "au", get_groups, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("BootVga", "b", get_boot_vga, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("DefaultMode", "s", get_string, 4 * sizeof(char *), 0),
        SD_BUS_VTABLE_END
};

int main(int argc, char *argv[]) {
        /* The property getters are handed userdata + offset: the values in order. */
        static const char *gpu_values[] = { "0000:01:00", "Bench floor GPU", "host", "", "keep" };
        static const char *version = "floor";
        sd_event *event = NULL;
        sd_bus *bus = NULL;
        sigset_t mask;
        int r;

        if (argc != 2) {
                fprintf(stderr, "usage: bus-floor NAME\n");
                return 2;
        }
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = sd_event_default(&event);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
        if (r >= 0)
                r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE, manager_vtable,
                                             &version);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, GPU_PATH, GPUSWITCH_GPU_INTERFACE, gpu_vtable, gpu_values);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, 0);
        if (r >= 0)
                r = sd_bus_request_name(bus, argv[1], 0);
        if (r >= 0)
                r = sd_event_loop(event);
        if (r < 0)
                fprintf(stderr, "bus-floor: %s\n", strerror(-r));
        sd_bus_flush_close_unref(bus);
        sd_event_unref(event);
        return r < 0 ? 1 : 0;
}
