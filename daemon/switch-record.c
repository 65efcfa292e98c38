/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "switch-record.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>

#include "util.h"

#ifndef GPUSWITCH_STATE_DIR
#define GPUSWITCH_STATE_DIR "/var/lib/gpuswitch"
#endif

#define GROUP_SWITCH "Switch"
#define GROUP_FUNCTION_PREFIX "Function "

void switch_record_free(SwitchRecord *r) {
        if (!r)
                return;
        gpu_free(r->original);
        free(r);
}

const char *switch_record_dir(void) {
        const char *d = getenv("GPUSWITCH_STATE_DIR");
        return isempty(d) ? GPUSWITCH_STATE_DIR : d;
}

static char *record_path(const char *dir, const char *address) {
        g_autofree char *name = g_strdup_printf("switch-%s.conf", address);

        /* ':' is fine in a file name, but the address is our own "0000:0a:00" */
        return g_build_filename(dir, name, NULL);
}

int switch_record_write(const char *dir, const Gpu *g, SwitchTarget target) {
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) err = NULL;
        g_autofree char *path = record_path(dir, g->address), *data = NULL;
        gsize len;

        g_key_file_set_string(kf, GROUP_SWITCH, "Gpu", g->address);
        g_key_file_set_string(kf, GROUP_SWITCH, "Target", switch_target_to_string(target));
        if (g->n_companions > 0) {
                g_autoptr(GString) list = g_string_new(NULL);

                for (size_t i = 0; i < g->n_companions; i++) {
                        char c[PCI_FUNCTION_STRLEN];

                        pci_address_format_function(&g->companions[i], c);
                        g_string_append_printf(list, "%s%s", i ? ";" : "", c);
                }
                /* the functions outside the slot this record may name */
                g_key_file_set_string(kf, GROUP_SWITCH, "Companions", list->str);
        }
        for (size_t i = 0; i < g->n_functions; i++) {
                const PciFunction *f = &g->functions[i];
                g_autofree char *group = g_strconcat(GROUP_FUNCTION_PREFIX, f->address, NULL);

                g_key_file_set_string(kf, group, "Driver", strempty(f->driver));
                g_key_file_set_string(kf, group, "DriverOverride", strempty(f->driver_override));
                if (f->power_control)
                        g_key_file_set_string(kf, group, "PowerControl", f->power_control);
        }
        data = g_key_file_to_data(kf, &len, NULL);
        if (g_mkdir_with_parents(dir, 0755) < 0)
                return log_error_errno(errno, "%s: creating %s", g->address, dir);
        /* written to a temporary file and renamed: the record is whole or absent */
        if (!g_file_set_contents(path, data, (gssize) len, &err)) {
                log_error("%s: writing %s: %s", g->address, path, err->message);
                return -EIO;
        }
        return 0;
}

int switch_record_list(const char *dir, char ***ret) {
        g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        const char *name;

        while (d && (name = g_dir_read_name(d))) {
                g_autofree char *address = NULL;
                char canonical[PCI_SLOT_STRLEN];
                PciAddress a;

                if (!g_str_has_prefix(name, "switch-") || !g_str_has_suffix(name, ".conf"))
                        continue;
                address = g_strndup(name + strlen("switch-"), strlen(name) - strlen("switch-") - strlen(".conf"));
                /* a slot, exactly as switch_record_write() names it: anything else is not ours */
                if (pci_address_parse(address, &a) < 0 || a.function >= 0)
                        continue;
                pci_address_format_slot(&a, canonical);
                if (!streq(canonical, address))
                        continue;
                g_ptr_array_add(list, g_steal_pointer(&address));
        }
        g_ptr_array_add(list, NULL);
        *ret = (char **) g_ptr_array_free(g_steal_pointer(&list), FALSE);
        return 0;
}

int switch_record_remove(const char *dir, const char *address) {
        g_autofree char *path = record_path(dir, address);

        if (unlink(path) < 0 && errno != ENOENT)
                return log_warning_errno(errno, "%s: removing %s", address, path);
        return 0;
}

int switch_record_read(const char *dir, const char *address, SwitchRecord **ret) {
        _cleanup_(switch_record_freep) SwitchRecord *rec = NULL;
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) err = NULL;
        g_autofree char *path = record_path(dir, address), *target = NULL, *companions = NULL;
        g_auto(GStrv) groups = NULL, items = NULL;
        PciAddress slot;
        Gpu *g;

        if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &err)) {
                if (g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                        return -ENOENT;
                log_error("%s: reading %s: %s", address, path, err->message);
                return -EINVAL;
        }
        rec = calloc(1, sizeof *rec);
        g = calloc(1, sizeof *g);
        if (!rec || !g) {
                free(g);
                return -ENOMEM;
        }
        rec->original = g;
        snprintf(g->address, sizeof g->address, "%s", address);
        target = g_key_file_get_string(kf, GROUP_SWITCH, "Target", NULL);
        rec->target = switch_target_from_string(target);
        if (rec->target < 0) {
                log_error("%s: %s: no valid Target=", address, path);
                return -EINVAL;
        }

        if (pci_address_parse(address, &slot) < 0 || slot.function >= 0) {
                log_error("%s: %s: not a slot address", address, path);
                return -EINVAL;
        }
        companions = g_key_file_get_string(kf, GROUP_SWITCH, "Companions", NULL);
        items = g_strsplit(strempty(companions), ";", -1);
        for (char **it = items; *it; it++) {
                PciAddress a, *grown;

                if (isempty(*it))
                        continue;
                if (pci_address_parse(*it, &a) < 0 || a.function < 0 || pci_address_same_slot(&a, &slot)) {
                        log_error("%s: %s: Companions= names '%s', not a function outside the slot", address, path,
                                  *it);
                        return -EINVAL;
                }
                grown = realloc(g->companions, (g->n_companions + 1) * sizeof *grown);
                if (!grown)
                        return -ENOMEM;
                g->companions = grown;
                g->companions[g->n_companions++] = a;
        }

        groups = g_key_file_get_groups(kf, NULL);
        for (char **grp = groups; *grp; grp++) {
                g_autofree char *driver = NULL, *override = NULL, *power = NULL;
                const char *fn = *grp + strlen(GROUP_FUNCTION_PREFIX);
                PciFunction *fs;
                PciAddress a;

                if (!g_str_has_prefix(*grp, GROUP_FUNCTION_PREFIX))
                        continue;
                /* only the GPU's own functions: the record names what gets written to */
                if (pci_address_parse(fn, &a) < 0 || a.function < 0 ||
                    !gpu_address_matches(&slot, g->companions, g->n_companions, &a)) {
                        log_error("%s: %s: [%s] is not a function of the GPU", address, path, *grp);
                        return -EINVAL;
                }
                fs = realloc(g->functions, (g->n_functions + 1) * sizeof *fs);
                if (!fs)
                        return -ENOMEM;
                g->functions = fs;
                fs[g->n_functions] = (PciFunction) { .iommu_group = -1,
                                                     .companion = !pci_address_same_slot(&a, &slot) };
                pci_address_format_function(&a, fs[g->n_functions].address);
                g->n_functions++;
                driver = g_key_file_get_string(kf, *grp, "Driver", NULL);
                override = g_key_file_get_string(kf, *grp, "DriverOverride", NULL);
                power = g_key_file_get_string(kf, *grp, "PowerControl", NULL);
                /* driver names become sysfs paths (drivers/NAME/bind) */
                if ((!isempty(driver) && !pci_driver_name_is_valid(driver)) ||
                    (!isempty(override) && !pci_driver_name_is_valid(override))) {
                        log_error("%s: %s: [%s] names no driver", address, path, *grp);
                        return -EINVAL;
                }
                if (!isempty(driver) && !(fs[g->n_functions - 1].driver = strdup(driver)))
                        return -ENOMEM;
                if (!isempty(override) && !(fs[g->n_functions - 1].driver_override = strdup(override)))
                        return -ENOMEM;
                /* the two values of the sysfs-devices-power ABI; a record
                 * without it (an older daemon's) leaves power/control alone */
                if (power && !streq(power, "on") && !streq(power, "auto")) {
                        log_error("%s: %s: [%s] PowerControl='%s': on or auto", address, path, *grp, power);
                        return -EINVAL;
                }
                if (power && !(fs[g->n_functions - 1].power_control = strdup(power)))
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(rec);
        return 0;
}
