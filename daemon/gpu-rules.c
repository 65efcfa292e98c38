/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "gpu-rules.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>

#include "nvidia.h"
#include "util.h"

#define NVIDIA_VENDOR 0x10de

int gpus_discover_auto(const Sysfs *s, PciAddress **ret, size_t *ret_n) {
        _cleanup_free_ PciAddress *slots = NULL;
        _cleanup_free_ char *dir = NULL;
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        size_t n = 0;

        if (asprintf(&dir, "%s/bus/pci/devices", s->root) < 0)
                return -ENOMEM;
        d = opendir(dir);
        if (!d)
                return log_error_errno(errno, "opening %s", dir);
        while ((de = readdir(d))) {
                unsigned long vendor, class, boot_vga;
                PciAddress a, *grown;
                bool known = false;

                if (pci_address_parse(de->d_name, &a) < 0 || a.function < 0)
                        continue;
                if (sysfs_read_hex(s, de->d_name, "vendor", &vendor) < 0 || vendor != NVIDIA_VENDOR)
                        continue;
                if (sysfs_read_hex(s, de->d_name, "class", &class) < 0 || (class >> 16) != PCI_CLASS_DISPLAY)
                        continue;
                if (sysfs_read_hex(s, de->d_name, "boot_vga", &boot_vga) >= 0 && boot_vga == 1) {
                        log_info("%s: boot VGA device, not managed with Gpus=auto", de->d_name);
                        continue;
                }
                for (size_t i = 0; i < n; i++)
                        known = known || pci_address_same_slot(&slots[i], &a);
                if (known)
                        continue;
                grown = realloc(slots, (n + 1) * sizeof *grown);
                if (!grown)
                        return -ENOMEM;
                slots = grown;
                slots[n++] = a;
        }
        *ret = TAKE_PTR(slots);
        *ret_n = n;
        return 0;
}

int gpus_to_manage(const Sysfs *s, const Config *c, PciAddress **ret, size_t *ret_n) {
        if (c->gpus_auto)
                return gpus_discover_auto(s, ret, ret_n);
        *ret = NULL;
        *ret_n = c->n_gpus;
        if (c->n_gpus == 0)
                return 0;
        *ret = calloc(c->n_gpus, sizeof **ret);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, c->gpus, c->n_gpus * sizeof **ret);
        return 0;
}

static int fail(char **error_message, char *message) {
        if (!message)
                return -ENOMEM;
        if (error_message)
                *error_message = message;
        else {
                log_error("%s", message);
                free(message);
        }
        return -EINVAL;
}

int gpus_check_companions(const Sysfs *s, const Config *c, const PciAddress *slots, size_t n_slots,
                          char **error_message) {
        for (size_t i = 0; i < n_slots; i++) {
                const GpuConfig *gc = config_find_gpu(c, &slots[i]);

                for (size_t k = 0; gc && k < gc->n_companions; k++) {
                        const PciAddress *a = &gc->companions[k];
                        char addr[PCI_FUNCTION_STRLEN], other[PCI_SLOT_STRLEN];
                        unsigned long class;

                        pci_address_format_function(a, addr);
                        for (size_t j = 0; j < n_slots; j++)
                                if (j != i && gpu_address_matches(&slots[j], NULL, 0, a)) {
                                        pci_address_format_slot(&slots[j], other);
                                        return fail(error_message, config_error_message(
                                                c, gc, "Companions", "%s is a function of %s, another managed GPU",
                                                addr, other));
                                }
                        if (sysfs_read_hex(s, addr, "class", &class) < 0)
                                continue;
                        if ((class >> 16) == PCI_CLASS_BRIDGE_BASE)
                                return fail(error_message, config_error_message(
                                        c, gc, "Companions", "%s is a bridge (class 0x%06lx): bridges stay on their "
                                        "driver, which VFIO allows; name the devices below it", addr, class));
                }
        }
        return 0;
}

int host_driver_from_state(const PciFunction *f, const char *configured, char **ret) {
        const char *d = configured && pci_function_is_display(f) ? configured
                        : f->driver && !streq(f->driver, VFIO_PCI_DRIVER) ? f->driver : NULL;

        *ret = NULL;
        if (!d)
                return 0;
        *ret = strdup(d);
        return *ret ? 1 : -ENOMEM;
}

char **gpu_stop_services(const Gpu *state, const GpuConfig *gc) {
        if (gc && gc->stop_services)
                return g_strdupv(gc->stop_services);
        for (size_t i = 0; i < state->n_functions; i++)
                if (streq_ptr(state->functions[i].host_driver, "nvidia"))
                        return g_strdupv((char **) nvidia_services);
        return NULL;
}
