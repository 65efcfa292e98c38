/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "host-driver.h"

#include <stdio.h>

#include "gpu-rules.h"
#include "kmod-util.h"
#include "util.h"

/* A module and the PCI driver it registers often differ in name (module
 * "bochs" registers "bochs-drm", "xhci_pci" registers "xhci_hcd"); a
 * loaded module lists its drivers as /sys/module/M/drivers/pci:NAME. */
static int driver_of_module(const Sysfs *s, const char *module, char **ret) {
        _cleanup_free_ char *p = NULL;
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;

        if (asprintf(&p, "%s/module/%s/drivers", s->root, module) < 0)
                return -ENOMEM;
        d = opendir(p);
        if (d)
                while ((de = readdir(d)))
                        if (strncmp(de->d_name, "pci:", 4) == 0 && pci_driver_name_is_valid(de->d_name + 4)) {
                                *ret = strdup(de->d_name + 4);
                                return *ret ? 0 : -ENOMEM;
                        }
        /* Not loaded: the module name is the best name there is. */
        if (!pci_driver_name_is_valid(module))
                return -EINVAL;
        *ret = strdup(module);
        return *ret ? 0 : -ENOMEM;
}

int host_driver_resolve(const Sysfs *s, const PciFunction *f, const char *configured, char **ret) {
        _cleanup_free_ char *module = NULL;
        int r;

        r = host_driver_from_state(f, configured, ret);
        if (r != 0)
                return r < 0 ? r : 0;
        if (!f->modalias)
                return 0;
        r = kmod_module_for_modalias(f->modalias, &module);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_warning_errno(r, "%s: looking up the driver for %s", f->address, f->modalias);
        if (streq(module, "vfio_pci"))
                return 0;
        return driver_of_module(s, module, ret);
}
