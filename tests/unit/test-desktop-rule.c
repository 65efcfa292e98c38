/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* DesktopAccess=no: the udev rule's text, its file written, left alone and
 * removed, udevd told (a stand-in udevadm that logs its arguments) and the
 * GPU's DRM nodes, and only its, given a "change" (a sysfs tree of files). */
#include <glib.h>
#include <glib/gstdio.h>
#include <sys/stat.h>

#include "config.h"
#include "desktop-rule.h"
#include "testlib.h"

static char *tmp;

static Config *parse(const char *text) {
        Config *c = NULL;
        g_autofree char *err = NULL;

        if (config_parse(text, strlen(text), "test.conf", &c, &err) < 0) {
                fprintf(stderr, "rejected: %s\n", err);
                test_failures++;
        }
        return c;
}

static char *text_of(const char *conf) {
        Config *c = parse(conf);
        char *text = NULL;

        CHECK_INT(desktop_rule_text(c, &text), 0);
        config_free(c);
        return text;
}

static void test_text(void) {
        char *t;

        CHECK(text_of("") == NULL);
        CHECK(text_of("[Gpu 0000:0a:00]\nDefaultMode=vfio\nDesktopAccess=yes\n") == NULL);

        t = text_of("[Gpu 0000:0a:00]\nDesktopAccess=no\n");
        CHECK_CONTAINS(t, "SUBSYSTEM==\"drm\", KERNELS==\"0000:0a:00.[0-7]\", TAG+=\"mutter-device-ignore\"\n");
        /* one rule line a GPU, the rest comments */
        {
                g_auto(GStrv) lines = g_strsplit(t ? t : "", "\n", -1);
                unsigned rules = 0;

                for (char **l = lines; *l; l++)
                        if (**l && **l != '#')
                                rules++;
                CHECK_INT(rules, 1);
        }
        g_free(t);

        t = text_of("[Gpu 0000:0a:00]\nDesktopAccess=no\n[Gpu 0000:0b:00]\nDesktopAccess=yes\n"
                    "[Gpu 0001:41:00]\nDesktopAccess=false\n");
        CHECK_CONTAINS(t, "KERNELS==\"0000:0a:00.[0-7]\", TAG+=\"mutter-device-ignore\"\n"
                          "SUBSYSTEM==\"drm\", KERNELS==\"0001:41:00.[0-7]\", TAG+=\"mutter-device-ignore\"\n");
        CHECK(t && !strstr(t, "0000:0b:00"));
        g_free(t);
}

static char *at(const char *rel) {
        return g_build_filename(tmp, rel, NULL);
}

static void put(const char *rel, const char *content) {
        g_autofree char *p = at(rel), *dir = g_path_get_dirname(p);

        CHECK_INT(g_mkdir_with_parents(dir, 0755), 0);
        CHECK(g_file_set_contents(p, content, -1, NULL));
}

static char *get(const char *rel) {
        g_autofree char *p = at(rel);
        char *s = NULL;

        return g_file_get_contents(p, &s, NULL, NULL) ? s : NULL;
}

static bool present(const char *rel) {
        g_autofree char *p = at(rel);

        return g_file_test(p, G_FILE_TEST_EXISTS);
}

/* what the stand-in udevadm was asked since the last look, and clears it */
static char *udevadm_calls(void) {
        char *s = get("udevadm.log");
        g_autofree char *p = at("udevadm.log");

        (void) g_unlink(p);
        return s ? s : g_strdup("");
}

static int apply(const char *conf, Sysfs *sysfs, const char *udevadm) {
        g_autofree char *dir = at("rules.d");
        Config *c = parse(conf);
        int r = desktop_rule_apply(c, dir, sysfs, udevadm);

        config_free(c);
        return r;
}

static void test_apply(void) {
        static const char *const nodes[] = {
                "sys/bus/pci/devices/0000:0a:00.0/drm/card1/uevent",
                "sys/bus/pci/devices/0000:0a:00.0/drm/renderD128/uevent",
                "sys/bus/pci/devices/0000:0a:00.1/sound/card0/uevent",
                "sys/bus/pci/devices/0000:0b:00.0/drm/card2/uevent",
                "sys/bus/pci/devices/0000:0b:00.0/drm/renderD129/uevent",
        };
        g_autofree char *root = at("sys"), *udevadm = at("udevadm"), *dir = at("rules.d");
        g_autofree char *script = g_strdup_printf("#!/bin/sh\necho \"$*\" >> '%s/udevadm.log'\n", tmp);
        Sysfs sysfs = { .root = root };
        const char *two = "[Gpu 0000:0a:00]\nDesktopAccess=no\n[Gpu 0000:0b:00]\nDefaultMode=vfio\n";
        char *s;

        for (size_t i = 0; i < ELEMENTSOF(nodes); i++)
                put(nodes[i], "");
        put("udevadm", script);
        CHECK_INT(chmod(udevadm, 0755), 0);
        CHECK_INT(g_mkdir_with_parents(dir, 0755), 0);

        /* none asks, none there: nothing done */
        CHECK_INT(apply(two + strlen("[Gpu 0000:0a:00]\nDesktopAccess=no\n"), &sysfs, udevadm), 0);
        CHECK(!present("rules.d/" DESKTOP_RULE_FILE));
        s = udevadm_calls();
        CHECK_STR(s, "");
        g_free(s);

        /* written, udevd reloaded, the GPU's DRM nodes (not its sound card,
         * not the other GPU's) given a change, then waited for */
        CHECK_INT(apply(two, &sysfs, udevadm), 1);
        s = get("rules.d/" DESKTOP_RULE_FILE);
        CHECK_CONTAINS(s, "SUBSYSTEM==\"drm\", KERNELS==\"0000:0a:00.[0-7]\", TAG+=\"mutter-device-ignore\"\n");
        CHECK(s && !strstr(s, "0000:0b:00"));
        g_free(s);
        {
                g_autofree char *p = at("rules.d/" DESKTOP_RULE_FILE);
                struct stat st;

                CHECK_INT(stat(p, &st), 0);
                CHECK_INT(st.st_mode & 0777, 0644);
        }
        s = udevadm_calls();
        CHECK_STR(s, "control --reload\nsettle --timeout=10\n");
        g_free(s);
        for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
                g_autofree char *v = get(nodes[i]);

                CHECK_STR(v, i < 2 ? "change" : "");
                put(nodes[i], "");
        }
        /* no temporary file left beside it */
        {
                g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
                unsigned n = 0;

                while (d && g_dir_read_name(d))
                        n++;
                CHECK_INT(n, 1);
        }

        /* the same again (a restart): left alone, udevd not bothered */
        CHECK_INT(apply(two, &sysfs, udevadm), 0);
        s = udevadm_calls();
        CHECK_STR(s, "");
        g_free(s);
        s = get(nodes[0]);
        CHECK_STR(s, "");
        g_free(s);

        /* a second GPU asks too: both lines, both GPUs' nodes */
        CHECK_INT(apply("[Gpu 0000:0a:00]\nDesktopAccess=no\n[Gpu 0000:0b:00]\nDesktopAccess=no\n", &sysfs, udevadm),
                  1);
        s = get("rules.d/" DESKTOP_RULE_FILE);
        CHECK_CONTAINS(s, "KERNELS==\"0000:0a:00.[0-7]\"");
        CHECK_CONTAINS(s, "KERNELS==\"0000:0b:00.[0-7]\"");
        g_free(s);
        for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
                g_autofree char *v = get(nodes[i]);

                CHECK_STR(v, i != 2 ? "change" : "");
                put(nodes[i], "");
        }
        g_free(udevadm_calls());

        /* no GPU asks any more: removed, udevd reloaded, no node touched */
        CHECK_INT(apply("[Gpu 0000:0a:00]\nDesktopAccess=yes\n", &sysfs, udevadm), 1);
        CHECK(!present("rules.d/" DESKTOP_RULE_FILE));
        s = udevadm_calls();
        CHECK_STR(s, "control --reload\n");
        g_free(s);
        s = get(nodes[0]);
        CHECK_STR(s, "");
        g_free(s);

        /* udevadm failing or missing: the rule is written all the same */
        CHECK_INT(apply(two, &sysfs, "/nonexistent/udevadm"), 1);
        CHECK(present("rules.d/" DESKTOP_RULE_FILE));

        /* a folder that cannot be written: an error */
        {
                g_autofree char *missing = at("no-such-dir");
                Config *c = parse("[Gpu 0000:0b:00]\nDesktopAccess=no\n");

                CHECK(desktop_rule_apply(c, missing, &sysfs, NULL) < 0);
                config_free(c);
        }
}

int main(void) {
        g_autofree char *cmd = NULL;

        gs_log_max_level = LOG_LEVEL_WARNING;
        tmp = g_dir_make_tmp("test-desktop-rule-XXXXXX", NULL);
        CHECK(tmp != NULL);
        if (!tmp)
                TEST_MAIN_END();
        test_text();
        test_apply();
        cmd = g_strdup_printf("rm -rf '%s'", tmp);
        CHECK_INT(system(cmd), 0);
        g_free(tmp);
        TEST_MAIN_END();
}
