/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.gpuswitch1.Gpu: one object per managed GPU, found by path. */
#include <stdio.h>

#include "bus.h"
#include "manager.h"
#include "util.h"
#include "vm-watch.h"

static int property_get_address(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        ManagedGpu *g = userdata;
        return sd_bus_message_append(reply, "s", g->address);
}

static int property_get_name(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        ManagedGpu *g = userdata;
        return sd_bus_message_append(reply, "s", g->name);
}

static int property_get_mode(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        ManagedGpu *g = userdata;
        return sd_bus_message_append(reply, "s", gpu_state_to_string(managed_gpu_state(g)));
}

static int property_get_step(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        ManagedGpu *g = userdata;
        return sd_bus_message_append(reply, "s", strempty(g->step));
}

static int property_get_virtual_machine(sd_bus *bus, const char *path, const char *interface, const char *property,
                                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        ManagedGpu *g = userdata;

        return sd_bus_message_append(reply, "s", vm_watch_name(g->vm_watch));
}

static int property_get_default_mode(sd_bus *bus, const char *path, const char *interface, const char *property,
                                     sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        ManagedGpu *g = userdata;
        return sd_bus_message_append(reply, "s", default_mode_to_string(g->default_mode));
}

static int property_get_boot_vga(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        ManagedGpu *g = userdata;
        return sd_bus_message_append(reply, "b", g->boot_vga);
}

static int property_get_functions(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        ManagedGpu *g = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(ssss)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < g->state->n_functions; i++) {
                const PciFunction *f = &g->state->functions[i];
                char class[16];

                snprintf(class, sizeof class, "0x%06x", f->class);
                r = sd_bus_message_append(reply, "(ssss)", f->address, class, strempty(f->driver),
                                          strempty(f->host_driver));
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int property_get_iommu_groups(sd_bus *bus, const char *path, const char *interface, const char *property,
                                     sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        ManagedGpu *g = userdata;
        unsigned groups[8];
        size_t n = gpu_iommu_groups(g->state, groups, ELEMENTSOF(groups));
        int r;

        r = sd_bus_message_open_container(reply, 'a', "u");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                r = sd_bus_message_append(reply, "u", (uint32_t) groups[i]);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

const sd_bus_vtable gpu_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Address", "s", property_get_address, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Name", "s", property_get_name, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Mode", "s", property_get_mode, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Step", "s", property_get_step, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Functions", "a(ssss)", property_get_functions, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("IommuGroups", "au", property_get_iommu_groups, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("BootVga", "b", property_get_boot_vga, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("DefaultMode", "s", property_get_default_mode, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("VirtualMachine", "s", property_get_virtual_machine, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_VTABLE_END
};
