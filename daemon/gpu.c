/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "gpu.h"

#include <stdio.h>
#include <stdlib.h>

#include "util.h"

void pci_function_done(PciFunction *f) {
        free(f->modalias);
        free(f->driver);
        free(f->driver_override);
        free(f->host_driver);
        free(f->power_control);
        *f = (PciFunction) {};
}

void gpu_free(Gpu *g) {
        if (!g)
                return;
        for (size_t i = 0; i < g->n_functions; i++)
                pci_function_done(&g->functions[i]);
        free(g->functions);
        free(g->companions);
        free(g);
}

static int pci_function_read(const Sysfs *s, const char *address, PciFunction *f) {
        unsigned long class, vendor, device, boot_vga;
        unsigned group;
        char *override = NULL;
        int r;

        if (strlen(address) >= sizeof f->address)
                return -EINVAL;
        strcpy(f->address, address);

        r = sysfs_read_hex(s, address, "class", &class);
        if (r < 0)
                return log_debug_errno(r, "%s: reading class", address);
        r = sysfs_read_hex(s, address, "vendor", &vendor);
        if (r < 0)
                return log_debug_errno(r, "%s: reading vendor", address);
        r = sysfs_read_hex(s, address, "device", &device);
        if (r < 0)
                return log_debug_errno(r, "%s: reading device", address);
        f->class = (uint32_t) class;
        f->vendor = (uint16_t) vendor;
        f->device = (uint16_t) device;

        (void) sysfs_read_attr(s, address, "modalias", &f->modalias);

        r = sysfs_read_driver(s, address, &f->driver);
        if (r < 0)
                return log_debug_errno(r, "%s: reading driver link", address);

        r = sysfs_read_attr(s, address, "driver_override", &override);
        if (r >= 0 && !isempty(override) && !streq(override, "(null)"))
                f->driver_override = override;
        else
                free(override);

        r = sysfs_read_iommu_group(s, address, &group);
        f->iommu_group = r >= 0 ? (int) group : -1;

        /* boot_vga exists only on VGA-class functions. */
        f->boot_vga = sysfs_read_hex(s, address, "boot_vga", &boot_vga) >= 0 && boot_vga == 1;
        return 0;
}

/* The slot's functions first, then the companions: plan.c's order rests on it. */
static int compare_functions(const void *a, const void *b) {
        const PciFunction *x = a, *y = b;

        if (x->companion != y->companion)
                return x->companion ? 1 : -1;
        return strcmp(x->address, y->address);
}

bool gpu_address_matches(const PciAddress *slot, const PciAddress *companions, size_t n_companions,
                         const PciAddress *a) {
        if (pci_address_same_slot(a, slot))
                return true;
        /* a companion is one function, never its whole slot */
        if (a->function < 0)
                return false;
        for (size_t i = 0; i < n_companions; i++)
                if (pci_address_equal(&companions[i], a))
                        return true;
        return false;
}

bool gpu_has_address(const Gpu *g, const PciAddress *a) {
        PciAddress slot;

        return pci_address_parse(g->address, &slot) >= 0 &&
               gpu_address_matches(&slot, g->companions, g->n_companions, a);
}

static int copy_companions(Gpu *g, const PciAddress *companions, size_t n) {
        if (n == 0)
                return 0;
        g->companions = calloc(n, sizeof *g->companions);
        if (!g->companions)
                return -ENOMEM;
        memcpy(g->companions, companions, n * sizeof *companions);
        g->n_companions = n;
        return 0;
}

int gpu_read(const Sysfs *s, const PciAddress *slot, const PciAddress *companions, size_t n_companions,
             Gpu **ret) {
        _cleanup_(gpu_freep) Gpu *g = NULL;
        _cleanup_closedir_ DIR *d = NULL;
        _cleanup_free_ char *devices = NULL;
        bool slot_found = false;
        struct dirent *de;
        int r;

        if (asprintf(&devices, "%s/bus/pci/devices", s->root) < 0)
                return -ENOMEM;
        d = opendir(devices);
        if (!d)
                return log_debug_errno(errno, "opening %s", devices);

        g = calloc(1, sizeof *g);
        if (!g)
                return -ENOMEM;
        pci_address_format_slot(slot, g->address);
        r = copy_companions(g, companions, n_companions);
        if (r < 0)
                return r;

        while ((de = readdir(d))) {
                PciAddress a;
                PciFunction *fs;

                if (pci_address_parse(de->d_name, &a) < 0 || a.function < 0)
                        continue;
                if (!gpu_address_matches(slot, companions, n_companions, &a))
                        continue;

                fs = realloc(g->functions, (g->n_functions + 1) * sizeof *fs);
                if (!fs)
                        return -ENOMEM;
                g->functions = fs;
                fs[g->n_functions] = (PciFunction) { .companion = !pci_address_same_slot(&a, slot) };
                slot_found = slot_found || !fs[g->n_functions].companion;
                r = pci_function_read(s, de->d_name, &fs[g->n_functions]);
                g->n_functions++;
                if (r < 0)
                        return r;
        }
        /* companions alone are no GPU */
        if (!slot_found)
                return -ENODEV;

        qsort(g->functions, g->n_functions, sizeof *g->functions, compare_functions);
        *ret = TAKE_PTR(g);
        return 0;
}

static int strdup_maybe(const char *s, char **ret) {
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int gpu_copy(const Gpu *g, Gpu **ret) {
        _cleanup_(gpu_freep) Gpu *c = calloc(1, sizeof *c);

        if (!c)
                return -ENOMEM;
        memcpy(c->address, g->address, sizeof c->address);
        if (copy_companions(c, g->companions, g->n_companions) < 0)
                return -ENOMEM;
        c->functions = calloc(g->n_functions, sizeof *c->functions);
        if (!c->functions)
                return -ENOMEM;
        c->n_functions = g->n_functions;
        for (size_t i = 0; i < g->n_functions; i++) {
                const PciFunction *f = &g->functions[i];
                PciFunction *t = &c->functions[i];

                *t = *f;
                t->modalias = t->driver = t->driver_override = t->host_driver = t->power_control = NULL;
                if (strdup_maybe(f->modalias, &t->modalias) < 0 ||
                    strdup_maybe(f->driver, &t->driver) < 0 ||
                    strdup_maybe(f->driver_override, &t->driver_override) < 0 ||
                    strdup_maybe(f->host_driver, &t->host_driver) < 0 ||
                    strdup_maybe(f->power_control, &t->power_control) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int gpu_reread(const Sysfs *s, const Gpu *tmpl, Gpu **ret) {
        _cleanup_(gpu_freep) Gpu *g = NULL;
        PciAddress slot;
        int r;

        r = pci_address_parse(tmpl->address, &slot);
        if (r < 0)
                return r;
        r = gpu_read(s, &slot, tmpl->companions, tmpl->n_companions, &g);
        if (r < 0)
                return r;
        for (size_t i = 0; i < g->n_functions; i++) {
                const PciFunction *old = gpu_find_function(tmpl, g->functions[i].address);

                if (old && old->host_driver) {
                        g->functions[i].host_driver = strdup(old->host_driver);
                        if (!g->functions[i].host_driver)
                                return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(g);
        return 0;
}

int gpu_reread_drivers(const Sysfs *s, const Gpu *old, Gpu **ret) {
        _cleanup_(gpu_freep) Gpu *g = NULL;
        int r;

        r = gpu_copy(old, &g);
        if (r < 0)
                return r;
        for (size_t i = 0; i < g->n_functions; i++) {
                PciFunction *f = &g->functions[i];
                _cleanup_free_ char *override = NULL;

                /* Every function has the attribute: without it, the
                 * function is gone. */
                r = sysfs_read_attr(s, f->address, "driver_override", &override);
                if (r == -ENOENT)
                        return -ENODEV;
                free(f->driver_override);
                f->driver_override = r >= 0 && !isempty(override) && !streq(override, "(null)") ? TAKE_PTR(override)
                                                                                                 : NULL;
                free(f->driver);
                f->driver = NULL;
                r = sysfs_read_driver(s, f->address, &f->driver);
                if (r < 0)
                        return log_debug_errno(r, "%s: reading driver link", f->address);
        }
        *ret = TAKE_PTR(g);
        return 0;
}

int gpu_reread_changed(const Sysfs *s, const Gpu *old, bool whole, Gpu **ret) {
        int r = -ENODEV;

        if (!whole)
                r = gpu_reread_drivers(s, old, ret);
        if (r == -ENODEV)
                r = gpu_reread(s, old, ret);
        return r;
}

PciFunction *gpu_find_function(const Gpu *g, const char *address) {
        for (size_t i = 0; i < g->n_functions; i++)
                if (streq(g->functions[i].address, address))
                        return &g->functions[i];
        return NULL;
}

GpuState gpu_derive_state(const Gpu *g) {
        size_t on_vfio = 0, missing_host = 0;

        for (size_t i = 0; i < g->n_functions; i++) {
                const PciFunction *f = &g->functions[i];

                if (streq_ptr(f->driver, VFIO_PCI_DRIVER))
                        on_vfio++;
                else if (!f->driver && (f->host_driver || f->driver_override))
                        /* unbound but wanted by a driver, or half-switched:
                         * a leftover override lets nothing else bind */
                        missing_host++;
        }
        if (on_vfio == g->n_functions)
                return GPU_STATE_VFIO;
        if (on_vfio == 0 && missing_host == 0)
                return GPU_STATE_HOST;
        return GPU_STATE_MIXED;
}

bool pci_function_is_display(const PciFunction *f) {
        return (f->class >> 16) == PCI_CLASS_DISPLAY;
}

bool gpu_is_boot_vga(const Gpu *g) {
        for (size_t i = 0; i < g->n_functions; i++)
                if (g->functions[i].boot_vga)
                        return true;
        return false;
}

size_t gpu_iommu_groups(const Gpu *g, unsigned *groups, size_t max) {
        size_t n = 0;

        for (size_t i = 0; i < g->n_functions; i++) {
                int grp = g->functions[i].iommu_group;
                size_t j;

                if (grp < 0)
                        continue;
                /* insertion into a sorted, deduplicated array */
                for (j = 0; j < n && groups[j] < (unsigned) grp; j++)
                        ;
                if (j < n && groups[j] == (unsigned) grp)
                        continue;
                if (n == max)
                        break;
                memmove(groups + j + 1, groups + j, (n - j) * sizeof *groups);
                groups[j] = (unsigned) grp;
                n++;
        }
        return n;
}
