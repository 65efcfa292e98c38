/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SetDefaultMode's writer: DefaultMode= set in the GPU's section, every
 * other line kept, a broken file left alone, the result one the daemon
 * reads back. */
#include <glib.h>
#include <sys/stat.h>

#include "config-write.h"
#include "config.h"
#include "testlib.h"

static char *dir;

static char *write_file(const char *name, const char *text) {
        char *path = g_build_filename(dir, name, NULL);

        g_assert(g_file_set_contents(path, text, -1, NULL));
        return path;
}

static char *read_file(const char *path) {
        char *text = NULL;

        if (!g_file_get_contents(path, &text, NULL, NULL))
                return NULL;
        return text;
}

static DefaultMode default_mode_of(const char *path, const char *slot) {
        Config *c = NULL;
        char *err = NULL;
        PciAddress a;
        DefaultMode m = _DEFAULT_MODE_INVALID;

        g_assert(pci_address_parse(slot, &a) == 0);
        if (config_load(path, &c, &err) == 0) {
                const GpuConfig *gc = config_find_gpu(c, &a);
                m = gc ? gc->default_mode : DEFAULT_MODE_KEEP;
        } else
                fprintf(stderr, "%s does not load: %s\n", path, err);
        g_free(err);
        config_free(c);
        return m;
}

static size_t files_in_dir(void) {
        GDir *d = g_dir_open(dir, 0, NULL);
        size_t n = 0;

        while (g_dir_read_name(d))
                n++;
        g_dir_close(d);
        return n;
}

int main(void) {
        g_autofree char *missing = NULL, *commented = NULL, *broken = NULL, *text = NULL, *before = NULL;
        g_autofree char *rm = NULL;
        char *err = NULL;
        PciAddress slot, other;
        struct stat st;

        dir = g_dir_make_tmp("gpuswitch-config-XXXXXX", NULL);
        g_assert(dir);
        g_assert(pci_address_parse("0000:0a:00", &slot) == 0);
        g_assert(pci_address_parse("0000:0b:00", &other) == 0);

        /* No file yet: made with the GPU's section, world-readable. */
        missing = g_build_filename(dir, "sub", "gpuswitch.conf", NULL);
        CHECK_INT(config_set_default_mode(missing, &slot, DEFAULT_MODE_VFIO, &err), 0);
        CHECK_INT(default_mode_of(missing, "0000:0a:00"), DEFAULT_MODE_VFIO);
        CHECK(stat(missing, &st) == 0 && (st.st_mode & 0777) == 0644);

        /* An existing file: comments, other keys and sections kept; the
         * section found however the file spells the slot. */
        commented = write_file("commented.conf",
                               "# the admin's notes\n[Daemon]\nGpus=0a:00;0b:00\nStepTimeoutSec=7\n\n"
                               "# the compute card\n[Gpu 0a:00]\nHostDriver=nvidia\nDefaultMode=host\n\n"
                               "[Gpu 0000:0b:00]\nDefaultMode=vfio\n");
        CHECK_INT(config_set_default_mode(commented, &slot, DEFAULT_MODE_KEEP, &err), 0);
        text = read_file(commented);
        CHECK_CONTAINS(text, "# the admin's notes");
        CHECK_CONTAINS(text, "# the compute card");
        CHECK_CONTAINS(text, "[Gpu 0a:00]\nHostDriver=nvidia\nDefaultMode=keep");
        CHECK_CONTAINS(text, "StepTimeoutSec=7");
        CHECK(!strstr(text, "[Gpu 0000:0a:00]"));
        CHECK_INT(default_mode_of(commented, "0000:0a:00"), DEFAULT_MODE_KEEP);
        CHECK_INT(default_mode_of(commented, "0000:0b:00"), DEFAULT_MODE_VFIO);
        g_clear_pointer(&text, g_free);

        /* A second GPU gets its own section. */
        CHECK_INT(config_set_default_mode(missing, &other, DEFAULT_MODE_HOST, &err), 0);
        CHECK_INT(default_mode_of(missing, "0000:0a:00"), DEFAULT_MODE_VFIO);
        CHECK_INT(default_mode_of(missing, "0000:0b:00"), DEFAULT_MODE_HOST);

        /* Not a target for DefaultMode. */
        CHECK_INT(config_set_default_mode(missing, &slot, (DefaultMode) 7, &err), -EINVAL);
        CHECK_CONTAINS(err, "vfio, host or keep");
        g_clear_pointer(&err, g_free);

        /* A file the daemon would refuse is left exactly as it was, and the
         * error names the file and the fault. */
        broken = write_file("broken.conf", "[Daemon]\nGpus=auto\nFrobnicate=yes\n");
        before = read_file(broken);
        CHECK_INT(config_set_default_mode(broken, &slot, DEFAULT_MODE_VFIO, &err), -EINVAL);
        CHECK_CONTAINS(err, "broken.conf");
        CHECK_CONTAINS(err, "Frobnicate");
        g_clear_pointer(&err, g_free);
        text = read_file(broken);
        CHECK_STR(text, before);
        g_clear_pointer(&text, g_free);
        g_free(broken);
        broken = write_file("broken.conf", "[Daemon\nGpus=auto\n");
        CHECK_INT(config_set_default_mode(broken, &slot, DEFAULT_MODE_VFIO, &err), -EINVAL);
        CHECK_CONTAINS(err, "not changing it");
        g_clear_pointer(&err, g_free);
        /* the message goes out in a bus error: UTF-8, whatever the file's bytes */
        g_free(broken);
        broken = write_file("broken.conf", "[Daem\x96n]\nGpus=auto\n");
        CHECK_INT(config_set_default_mode(broken, &slot, DEFAULT_MODE_VFIO, &err), -EINVAL);
        CHECK(err && g_utf8_validate(err, -1, NULL));
        g_clear_pointer(&err, g_free);
        g_free(broken);
        broken = write_file("broken.conf", "[Gpu 0000:0a:00]\nDefaultMode=host\nK\xe9y=1\n");
        CHECK_INT(config_set_default_mode(broken, &slot, DEFAULT_MODE_VFIO, &err), -EINVAL);
        CHECK(err && g_utf8_validate(err, -1, NULL));
        g_clear_pointer(&err, g_free);
        g_free(broken);
        broken = write_file("broken.conf", "[Gpu 0000:0a:00]\n[Gpu\xe6x=keep\n");     /* GLib quotes the key */
        CHECK_INT(config_set_default_mode(broken, &slot, DEFAULT_MODE_VFIO, &err), -EINVAL);
        CHECK_CONTAINS(err, "not changing it");
        CHECK(err && g_utf8_validate(err, -1, NULL));
        g_clear_pointer(&err, g_free);

        /* No temporary file left behind: sub/, commented.conf, broken.conf. */
        CHECK_INT(files_in_dir(), 3);

        rm = g_strdup_printf("rm -rf '%s'", dir);
        g_assert(system(rm) == 0);
        TEST_MAIN_END();
}
