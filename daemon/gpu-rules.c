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
