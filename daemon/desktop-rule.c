/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "desktop-rule.h"

#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "util.h"

extern char **environ;

int desktop_rule_text(const Config *c, char **ret) {
        g_autoptr(GString) text = NULL;

        for (size_t i = 0; i < c->n_sections; i++) {
                if (c->sections[i].desktop_access)
                        continue;
                if (!text)
                        text = g_string_new("# Written by gpuswitchd at its start, for DesktopAccess=no in "
                                            "gpuswitch.conf(5): GNOME's\n# mutter leaves the DRM nodes of these "
                                            "GPUs alone.  Edit the config, not this file.\n");
                /* KERNELS: the node's PCI function, one of the slot's eight */
                g_string_append_printf(text, "SUBSYSTEM==\"drm\", KERNELS==\"%s.[0-7]\", TAG+=\"" MUTTER_IGNORE_TAG
                                       "\"\n", c->sections[i].address);
        }
        *ret = text ? g_string_free(g_steal_pointer(&text), FALSE) : NULL;
        return 0;
}

/* `udevadm ARGS...`, waited for; the daemon's blocked stop signals are not
 * the child's.  0, or -errno / -EPROTO when it failed. */
static int run_udevadm(const char *udevadm, const char *const *args) {
        const char *argv[8] = { udevadm };
        posix_spawnattr_t attr;
        sigset_t none;
        pid_t pid;
        int r, status;
        size_t n = 1;

        for (; *args && n < ELEMENTSOF(argv) - 1; args++)
                argv[n++] = *args;
        sigemptyset(&none);
        r = posix_spawnattr_init(&attr);
        if (r != 0)
                return -r;
        r = posix_spawnattr_setsigmask(&attr, &none);
        if (r == 0)
                r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
        if (r == 0)
                r = posix_spawnp(&pid, udevadm, NULL, &attr, (char *const *) argv, environ);
        posix_spawnattr_destroy(&attr);
        if (r != 0)
                return -r;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EPROTO;
}

/* "change" to the uevent file of each DRM node of the slot's functions:
 * udevd runs the rules on them again, as `udevadm trigger` would. */
static void retrigger_slot(Sysfs *sysfs, const char *slot) {
        for (unsigned f = 0; f < 8; f++) {
                g_autofree char *function = g_strdup_printf("%s.%u", slot, f);
                _cleanup_free_ char *drm = sysfs_function_path(sysfs, function, "drm");
                _cleanup_closedir_ DIR *d = drm ? opendir(drm) : NULL;
                struct dirent *de;

                while (d && (de = readdir(d))) {
                        _cleanup_free_ char *uevent = NULL;
                        int r;

                        if (!g_str_has_prefix(de->d_name, "card") && !g_str_has_prefix(de->d_name, "renderD"))
                                continue;
                        uevent = sysfs_path_join(drm, de->d_name, "uevent", NULL);
                        if (!uevent)
                                return;
                        r = sysfs_write_path(sysfs, function, "uevent", uevent, "change");
                        if (r < 0)
                                log_warning_errno(r, "%s: udevd not told to tag %s again (writing %s)", function,
                                                  de->d_name, uevent);
                }
        }
}

int desktop_rule_apply(const Config *c, const char *dir, Sysfs *sysfs, const char *udevadm) {
        g_autofree char *path = g_build_filename(dir, DESKTOP_RULE_FILE, NULL), *text = NULL, *old = NULL;
        int r;

        r = desktop_rule_text(c, &text);
        if (r < 0)
                return log_error_errno(r, "DesktopAccess=: making the udev rule");
        (void) g_file_get_contents(path, &old, NULL, NULL);
        if (streq_ptr(old, text))
                return 0;

        if (text) {
                /* the temporary name does not end in .rules: udevd never reads it */
                r = write_file_atomic(path, text, strlen(text));
                if (r < 0)
                        return log_error_errno(r, "DesktopAccess=no: writing the udev rule %s (the desktop may "
                                               "open the GPU)", path);
                log_info("DesktopAccess=no: udev rule %s written", path);
        } else {
                if (unlink(path) < 0 && errno != ENOENT)
                        return log_error_errno(-errno, "DesktopAccess=: removing the udev rule %s, which no GPU "
                                               "asks for any more", path);
                log_info("no GPU has DesktopAccess=no: udev rule %s removed", path);
        }
        if (!udevadm)
                return 1;

        /* udevd looks at its rule files by itself only every few seconds,
         * at an event: told, it reads them before the next one. */
        r = run_udevadm(udevadm, (const char *const[]) { "control", "--reload", NULL });
        if (r < 0)
                log_warning_errno(r, "`%s control --reload` failed: udevd may apply the rule a few seconds late",
                                  udevadm);
        /* Nodes there are already were tagged (or not) before: again with
         * the rule.  A tag that is gone stays on a node until it is made
         * anew (udev's TAGS=, which mutter reads): not untagged here. */
        if (!text)
                return 1;
        for (size_t i = 0; i < c->n_sections; i++)
                if (!c->sections[i].desktop_access)
                        retrigger_slot(sysfs, c->sections[i].address);
        r = run_udevadm(udevadm, (const char *const[]) { "settle", "--timeout=10", NULL });
        if (r < 0)
                log_warning_errno(r, "`%s settle` failed: the tag may reach the GPU's DRM nodes after the "
                                  "display manager looked", udevadm);
        return 1;
}
