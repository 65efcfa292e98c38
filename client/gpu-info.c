/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "gpu-info.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gpu-arg.h"
#include "gpuswitch-bus.h"
#include "output.h"
#include "util.h"


void function_infos_free(FunctionInfo *functions, size_t n) {
        for (size_t i = 0; i < n; i++) {
                g_free(functions[i].address);
                g_free(functions[i].class_code);
                g_free(functions[i].driver);
                g_free(functions[i].host_driver);
        }
        g_free(functions);
}

void gpu_info_free(GpuInfo *g) {
        if (!g)
                return;
        function_infos_free(g->functions, g->n_functions);
        g_free(g->iommu_groups);
        g_free(g->object);
        g_free(g->address);
        g_free(g->name);
        g_free(g->mode);
        g_free(g->default_mode);
        g_free(g->virtual_machine);
        g_free(g->step);
        g_free(g);
}

static int read_string(sd_bus_message *m, char **ret) {
        const char *s;
        int r = sd_bus_message_read(m, "v", "s", &s);

        if (r >= 0)
                *ret = g_strdup(s);
        return r;
}

int function_infos_read(sd_bus_message *m, FunctionInfo **functions, size_t *n) {
        const char *a, *c, *d, *h;
        int r;

        r = sd_bus_message_enter_container(m, 'v', "a(ssss)");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'a', "(ssss)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "(ssss)", &a, &c, &d, &h)) > 0) {
                *functions = g_renew(FunctionInfo, *functions, *n + 1);
                (*functions)[(*n)++] = (FunctionInfo) {
                        g_strdup(a), g_strdup(c), g_strdup(d), g_strdup(h),
                };
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int read_groups(sd_bus_message *m, GpuInfo *g) {
        uint32_t u;
        int r;

        r = sd_bus_message_enter_container(m, 'v', "au");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'a', "u");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "u", &u)) > 0) {
                g->iommu_groups = g_renew(unsigned, g->iommu_groups, g->n_iommu_groups + 1);
                g->iommu_groups[g->n_iommu_groups++] = u;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

int gpu_info_get(sd_bus *bus, const char *object, GpuInfo **ret, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(bus, GPUSWITCH_BUS_NAME, object, "org.freedesktop.DBus.Properties", "GetAll", error, &reply,
                               "s", GPUSWITCH_GPU_INTERFACE);
        if (r < 0)
                return r;
        return gpu_info_read(reply, object, ret, error);
}

int gpu_info_read(sd_bus_message *reply, const char *object, GpuInfo **ret, sd_bus_error *error) {
        g_autoptr(GpuInfo) g = g_new0(GpuInfo, 1);
        const char *key;
        int r;

        g->object = g_strdup(object);
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(reply, "s", &key);
                if (r < 0)
                        break;
                if (strcmp(key, "Address") == 0)
                        r = read_string(reply, &g->address);
                else if (strcmp(key, "Name") == 0)
                        r = read_string(reply, &g->name);
                else if (strcmp(key, "Mode") == 0)
                        r = read_string(reply, &g->mode);
                else if (strcmp(key, "DefaultMode") == 0)
                        r = read_string(reply, &g->default_mode);
                else if (strcmp(key, "Step") == 0) {
                        r = read_string(reply, &g->step);
                        if (r >= 0 && g->step && !*g->step)
                                g_clear_pointer(&g->step, g_free);
                }
                else if (strcmp(key, "VirtualMachine") == 0) {
                        r = read_string(reply, &g->virtual_machine);
                        if (r >= 0 && g->virtual_machine && !*g->virtual_machine)
                                g_clear_pointer(&g->virtual_machine, g_free);
                }
                else if (strcmp(key, "BootVga") == 0) {
                        int b;
                        r = sd_bus_message_read(reply, "v", "b", &b);
                        g->boot_vga = b;
                } else if (strcmp(key, "Functions") == 0)
                        r = function_infos_read(reply, &g->functions, &g->n_functions);
                else if (strcmp(key, "IommuGroups") == 0)
                        r = read_groups(reply, g);
                else
                        r = sd_bus_message_skip(reply, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "reading the properties of %s: %m", object);
        if (!g->address || !g->mode)
                return sd_bus_error_set_errnof(error, EBADMSG, "%s lacks Address or Mode", object);
        *ret = g_steal_pointer(&g);
        return 0;
}

static const char *mode_color(const char *mode) {
        if (strcmp(mode, "host") == 0 || strcmp(mode, "vfio") == 0)
                return ansi_green();
        return ansi_yellow();
}

/* A function outside the GPU's slot is one of its companions
 * (Companions= in gpuswitch.conf). */
static bool function_is_companion(const GpuInfo *g, const FunctionInfo *f) {
        size_t n = g->address ? strlen(g->address) : 0;

        return f->address && n > 0 && !(strncmp(f->address, g->address, n) == 0 && f->address[n] == '.');
}

void gpu_info_print(const GpuInfo *g) {
        g_autoptr(Table) t = table_new(4, "FUNCTION", "CLASS", "DRIVER", "HOST DRIVER");
        g_autoptr(GString) groups = g_string_new(NULL);

        for (size_t i = 0; i < g->n_iommu_groups; i++)
                g_string_append_printf(groups, "%s%u", i ? " " : "", g->iommu_groups[i]);

        printf("%s%s%s  %s\n", ansi_bold(), g->address, ansi_normal(), g->name ? g->name : "");
        printf("          Mode: %s%s%s\n", mode_color(g->mode), g->mode, ansi_normal());
        if (g->step)
                printf("          Step: %s\n", g->step);
        /* on vfio-pci, whether a VM has it: "none" tells that host needs no --force */
        if (g->virtual_machine || strcmp(g->mode, "vfio") == 0 || strcmp(g->mode, "mixed") == 0)
                printf("    Held by VM: %s\n", g->virtual_machine ? g->virtual_machine : "none");
        printf("  Default mode: %s\n", g->default_mode ? g->default_mode : "-");
        printf("      Boot VGA: %s\n", g->boot_vga ? "yes" : "no");
        printf("  IOMMU groups: %s\n\n", groups->len ? groups->str : "none (no IOMMU)");

        for (size_t i = 0; i < g->n_functions; i++) {
                const FunctionInfo *f = &g->functions[i];
                unsigned long class_code;
                const char *cls = pci_class_parse(f->class_code, &class_code) >= 0 ? pci_class_name(class_code) : f->class_code;
                g_autofree char *marked = function_is_companion(g, f) ? g_strdup_printf("%s (companion)", cls) : NULL;

                table_add_row(t, f->address, marked ? marked : cls, f->driver, f->host_driver);
        }
        table_print(t, stdout);
}

/* An empty string is null too. */
static void add_nullable(JsonOut *o, const char *key, const char *value) {
        json_out_member(o, key);
        json_out_string(o, isempty(value) ? NULL : value);
}

void gpu_info_to_json(const GpuInfo *g, JsonOut *o) {
        if (!o)
                return;
        json_out_begin_object(o);
        add_nullable(o, "address", g->address);
        add_nullable(o, "object", g->object);
        add_nullable(o, "name", g->name);
        add_nullable(o, "mode", g->mode);
        add_nullable(o, "default_mode", g->default_mode);
        add_nullable(o, "step", g->step);
        add_nullable(o, "virtual_machine", g->virtual_machine);
        json_out_member(o, "boot_vga");
        json_out_bool(o, g->boot_vga);
        json_out_member(o, "iommu_groups");
        json_out_begin_array(o);
        for (size_t i = 0; i < g->n_iommu_groups; i++)
                json_out_int(o, g->iommu_groups[i]);
        json_out_end_array(o);
        json_out_member(o, "functions");
        json_out_begin_array(o);
        for (size_t i = 0; i < g->n_functions; i++) {
                const FunctionInfo *f = &g->functions[i];
                unsigned long class_code;

                json_out_begin_object(o);
                add_nullable(o, "address", f->address);
                add_nullable(o, "class", f->class_code);
                add_nullable(o, "class_name",
                             pci_class_parse(f->class_code, &class_code) >= 0 ? pci_class_name(class_code) : NULL);
                add_nullable(o, "driver", f->driver);
                add_nullable(o, "host_driver", f->host_driver);
                json_out_member(o, "companion");
                json_out_bool(o, function_is_companion(g, f));
                json_out_end_object(o);
        }
        json_out_end_array(o);
        json_out_end_object(o);
}
