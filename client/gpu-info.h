/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "json-out.h"

/* One function of the Functions property. */
typedef struct FunctionInfo {
        char *address, *class_code, *driver, *host_driver;
} FunctionInfo;

/* The Functions property's value (a variant of a(ssss)), appended to
 * *functions; and their release. */
int function_infos_read(sd_bus_message *m, FunctionInfo **functions, size_t *n);
void function_infos_free(FunctionInfo *functions, size_t n);

/* The org.gpuswitch1.Gpu properties of one object. */
typedef struct GpuInfo {
        char *object, *address, *name, *mode, *default_mode;
        char *step;               /* the kernel write under way; NULL when idle */
        char *virtual_machine;    /* the VM holding it; NULL for none */
        bool boot_vga;
        unsigned *iommu_groups;
        size_t n_iommu_groups;
        FunctionInfo *functions;
        size_t n_functions;
} GpuInfo;

void gpu_info_free(GpuInfo *g);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GpuInfo, gpu_info_free)

/* GetAll on the object; error set on failure. */
int gpu_info_get(sd_bus *bus, const char *object, GpuInfo **ret, sd_bus_error *error);
/* The same from GetAll's reply, read by the caller. */
int gpu_info_read(sd_bus_message *reply, const char *object, GpuInfo **ret, sd_bus_error *error);

void gpu_info_print(const GpuInfo *g);
/* The --json form, as the next value of o (see JSON OUTPUT in
 * man/gpuswitchctl.1.scd); nothing when o is NULL. */
void gpu_info_to_json(const GpuInfo *g, JsonOut *o);
