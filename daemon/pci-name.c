/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "pci-name.h"

#include <stdio.h>
#include <systemd/sd-hwdb.h>

#include "util.h"

static const PciFunction *primary_function(const Gpu *g) {
        for (size_t i = 0; i < g->n_functions; i++)
                if (pci_function_is_display(&g->functions[i]))
                        return &g->functions[i];
        return g->n_functions > 0 ? &g->functions[0] : NULL;
}

char *pci_ids_lookup(const char *path, uint16_t vendor, uint16_t device) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ char *vendor_name = NULL;
        char line[512], *name = NULL;

        if (!f)
                return NULL;
        while (fgets(line, sizeof line, f)) {
                unsigned id;
                int n = 0;

                line[strcspn(line, "\n")] = 0;
                if (line[0] == '#' || line[0] == 0)
                        continue;
                if (!vendor_name) {
                        /* a vendor line: four hex digits at the start */
                        if (line[0] != '\t' && sscanf(line, "%4x  %n", &id, &n) == 1 && n > 0 && id == vendor)
                                vendor_name = strdup(line + n);
                        continue;
                }
                if (line[0] != '\t')
                        break;          /* the next vendor: the device is not listed */
                if (line[1] != '\t' && sscanf(line + 1, "%4x  %n", &id, &n) == 1 && n > 0 && id == device) {
                        if (asprintf(&name, "%s %s", vendor_name, line + 1 + n) < 0)
                                name = NULL;
                        return name;
                }
        }
        return NULL;
}

char *gpu_name(const Gpu *g) {
        const PciFunction *f = primary_function(g);
        sd_hwdb *hwdb = NULL;
        const char *vendor = NULL, *model = NULL;
        char key[64], *name = NULL;

        if (!f)
                return strdup("unknown");

        snprintf(key, sizeof key, "pci:v%08Xd%08X", f->vendor, f->device);
        if (sd_hwdb_new(&hwdb) >= 0) {
                (void) sd_hwdb_get(hwdb, key, "ID_VENDOR_FROM_DATABASE", &vendor);
                (void) sd_hwdb_get(hwdb, key, "ID_MODEL_FROM_DATABASE", &model);
        }
        if (model && vendor) {
                if (asprintf(&name, "%s %s", vendor, model) < 0)
                        name = NULL;
        } else if (model)
                name = strdup(model);
        else if (asprintf(&name, "PCI device %04x:%04x", f->vendor, f->device) < 0)
                name = NULL;
        sd_hwdb_unref(hwdb);
        return name;
}
