/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* daemon/config.c and daemon/config-write.c on any text:
 * - config_parse() accepts or names the fault; what it accepts holds only
 *   canonical slot addresses and plain driver and unit names (nothing that
 *   could name a path outside the device);
 * - config_set_default_mode() on that text as the file: it changes nothing
 *   but the file (the guard aborts on any other write), leaves the file
 *   byte for byte as it was when it fails, writes a file the daemon accepts
 *   when it succeeds, and always succeeds on a file the daemon accepts. */
#include <fcntl.h>
#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config-write.h"
#include "config.h"
#include "fuzz-guard.h"
#include "fuzz-assert.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dir, *conf;

static void cleanup(void) {
        guard_remove_tree(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        gs_log_max_level = getenv("FUZZ_VERBOSE") ? LOG_LEVEL_DEBUG : -1;
        dir = guard_make_temp_dir("gpuswitch-fuzz-config");
        conf = g_build_filename(dir, "gpuswitch.conf", NULL);
        guard_allow(dir);
        atexit(cleanup);
        return 0;
}

static bool unit_name_ok(const char *u) {
        size_t len = strlen(u);
        return len > strlen(".service") && g_str_has_suffix(u, ".service") && !strchr(u, '/') && u[0] != '.';
}

static void check_slot(const PciAddress *a) {
        char text[PCI_SLOT_STRLEN];
        PciAddress b;

        ASSERT(a->function == -1 && a->slot <= 0x1f);
        pci_address_format_slot(a, text);
        ASSERT(pci_address_parse(text, &b) == 0 && pci_address_same_slot(a, &b));
}

/* Everything in an accepted config that could end up in a path is clean. */
static void check_config(const Config *c) {
        ASSERT(c->step_timeout_sec >= 1 && c->step_timeout_sec <= 3600);
        ASSERT(c->gpus_auto == (c->n_gpus == 0));
        for (size_t i = 0; i < c->n_gpus; i++)
                check_slot(&c->gpus[i]);
        for (size_t i = 0; i < c->n_sections; i++) {
                const GpuConfig *s = &c->sections[i];
                char text[PCI_SLOT_STRLEN];

                check_slot(&s->slot);
                pci_address_format_slot(&s->slot, text);
                ASSERT(streq(text, s->address));
                ASSERT(default_mode_to_string(s->default_mode));
                ASSERT(!s->host_driver || pci_driver_name_is_valid(s->host_driver));
                for (char **u = s->stop_services; u && *u; u++)
                        ASSERT(unit_name_ok(*u));
                for (size_t j = 0; j < i; j++)
                        ASSERT(!pci_address_same_slot(&c->sections[j].slot, &s->slot));
        }
}

static bool same_gpu_config(const GpuConfig *a, const GpuConfig *b) {
        if (!pci_address_same_slot(&a->slot, &b->slot) || !streq_ptr(a->host_driver, b->host_driver) ||
            a->allow_boot_vga != b->allow_boot_vga || !a->stop_services != !b->stop_services)
                return false;
        return !a->stop_services || g_strv_equal((const char *const *) a->stop_services,
                                                 (const char *const *) b->stop_services);
}

/* The written config is the old one with only DefaultMode= of the slot changed. */
static void check_written(const Config *old, const Config *now, const PciAddress *slot, DefaultMode mode) {
        const GpuConfig *s = config_find_gpu(now, slot);

        ASSERT(s && s->default_mode == mode);
        ASSERT(now->gpus_auto == old->gpus_auto && now->n_gpus == old->n_gpus &&
               now->step_timeout_sec == old->step_timeout_sec);
        for (size_t i = 0; i < old->n_gpus; i++)
                ASSERT(pci_address_same_slot(&old->gpus[i], &now->gpus[i]));
        for (size_t i = 0; i < old->n_sections; i++) {
                const GpuConfig *o = &old->sections[i], *n = config_find_gpu(now, &o->slot);

                ASSERT(n && same_gpu_config(o, n));
                if (!pci_address_same_slot(&o->slot, slot))
                        ASSERT(n->default_mode == o->default_mode);
        }
        ASSERT(now->n_sections == old->n_sections + (config_find_gpu(old, slot) ? 0 : 1));
}

static void put_file(const uint8_t *data, size_t size) {
        int fd = open(conf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        ASSERT(fd >= 0);
        ASSERT(write(fd, data, size) == (ssize_t) size);
        close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(config_freep) Config *c = NULL, *written = NULL;
        g_autofree char *err = NULL, *msg = NULL, *after = NULL, *err2 = NULL;
        static const DefaultMode modes[] = { DEFAULT_MODE_HOST, DEFAULT_MODE_VFIO, DEFAULT_MODE_KEEP, _DEFAULT_MODE_MAX };
        PciAddress slot = { .domain = 0, .bus = 1, .slot = 0, .function = -1 };
        DefaultMode mode;
        gsize after_len = 0;
        int r, w;

        r = config_parse((const char *) data, size, "fuzz.conf", &c, &err);
        if (r < 0) {
                ASSERT(r == -EINVAL || r == -ENOMEM);
                ASSERT(r == -ENOMEM || (err && g_str_has_prefix(err, "fuzz.conf: ")));
                /* it may go out in a bus error (SetDefaultMode) */
                ASSERT(r == -ENOMEM || g_utf8_validate(err, -1, NULL));
        } else {
                ASSERT(!err);
                check_config(c);
        }

        /* The writer on the same text: the last byte picks the mode (one past the
         * last is refused) and the GPU (slot 0000:01:00 or the config's first section,
         * however the file spells it). */
        mode = modes[size ? data[size - 1] % 4 : 0];
        if (c && c->n_sections > 0 && size && (data[size - 1] & 4))
                slot = c->sections[0].slot;
        put_file(data, size);

        guard_arm(true);
        w = config_set_default_mode(conf, &slot, mode, &msg);
        guard_arm(false);

        ASSERT(g_file_get_contents(conf, &after, &after_len, NULL));
        if (w < 0) {
                ASSERT(msg && g_utf8_validate(msg, -1, NULL));
                ASSERT(after_len == size && memcmp(after, data, size) == 0);
                /* refused only for a bad mode or a file the daemon would not read */
                ASSERT(mode == _DEFAULT_MODE_MAX || r < 0);
        } else {
                ASSERT(mode != _DEFAULT_MODE_MAX);
                ASSERT(config_parse(after, after_len, "written", &written, &err2) == 0);
                check_config(written);
                if (r >= 0)
                        check_written(c, written, &slot, mode);
        }
        return 0;
}
