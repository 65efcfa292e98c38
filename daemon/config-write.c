/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config-write.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <glib.h>

#include "config.h"
#include "util.h"

/* The section of this slot as the file spells it ("[Gpu 0a:00]" is the
 * same GPU as "[Gpu 0000:0a:00]"), or the canonical name for a new one. */
static char *find_group(GKeyFile *kf, const PciAddress *slot) {
        g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
        char address[PCI_SLOT_STRLEN];

        for (char **g = groups; *g; g++) {
                PciAddress a;

                if (g_str_has_prefix(*g, "Gpu ") && pci_address_parse(*g + 4, &a) >= 0 &&
                    pci_address_same_slot(&a, slot))
                        return g_strdup(*g);
        }
        pci_address_format_slot(slot, address);
        return g_strdup_printf("Gpu %s", address);
}

int config_set_default_mode(const char *path, const PciAddress *slot, DefaultMode mode, char **error_message) {
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) err = NULL;
        g_autofree char *group = NULL, *data = NULL, *dir = g_path_get_dirname(path);
        _cleanup_(config_freep) Config *check = NULL;
        gsize len = 0;
        int r;

        if (!default_mode_to_string(mode)) {
                char choices[SWITCH_TARGET_CHOICES_MAX];

                *error_message = g_strdup_printf("DefaultMode must be %s", switch_target_choices(choices, true));
                return -EINVAL;
        }
        if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_KEEP_COMMENTS, &err) &&
            !g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
                g_autofree char *raw = g_strdup_printf("%s: %s; not changing it", path, err->message);

                /* GLib's message quotes the file, which may not be UTF-8; this
                 * one goes out in SetDefaultMode's error, which must be */
                *error_message = g_utf8_make_valid(raw, -1);
                return -EINVAL;
        }

        group = find_group(kf, slot);
        g_key_file_set_value(kf, group, "DefaultMode", default_mode_to_string(mode));
        data = g_key_file_to_data(kf, &len, NULL);

        /* The file may have been edited since the daemon read it: what would
         * be written must still be a config the daemon accepts. */
        r = config_parse(data, len, path, &check, error_message);
        if (r < 0)
                return r;

        r = g_mkdir_with_parents(dir, 0755) < 0 ? -errno : write_file_atomic(path, data, len);
        if (r < 0)
                *error_message = g_strdup_printf("%s: writing it: %s", path, g_strerror(-r));
        return r;
}
