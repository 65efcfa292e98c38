/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <glib.h>

#include "util.h"

#define GROUP_DAEMON "Daemon"
#define GROUP_GPU_PREFIX "Gpu "

void config_free(Config *c) {
        if (!c)
                return;
        for (size_t i = 0; i < c->n_sections; i++) {
                free(c->sections[i].host_driver);
                g_strfreev(c->sections[i].stop_services);
                free(c->sections[i].companions);
        }
        free(c->origin);
        free(c->sections);
        free(c->gpus);
        free(c);
}

static int fail(char **error_message, const char *fmt, ...) _printf_(2, 3);
static int fail(char **error_message, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        if (error_message) {
                g_autofree char *raw = g_strdup_vprintf(fmt, ap);

                /* It quotes the file, which may not be UTF-8, and it may go out
                 * in a bus error (SetDefaultMode), which must be. */
                *error_message = g_utf8_make_valid(raw, -1);
        }
        va_end(ap);
        return -EINVAL;
}

static bool key_known(const char *const *known, const char *key) {
        for (; *known; known++)
                if (streq(*known, key))
                        return true;
        return false;
}

/* Unknown keys are errors, not warnings: a misspelt DefaultMode= silently
 * ignored would switch nothing at boot and nobody would know why. */
static int check_keys(GKeyFile *kf, const char *origin, const char *group, const char *const *known,
                      char **error_message) {
        g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);

        for (char **k = keys; k && *k; k++)
                if (!key_known(known, *k))
                        return fail(error_message, "%s: [%s]: unknown key '%s'", origin, group, *k);
        return 0;
}

static int parse_bool(GKeyFile *kf, const char *origin, const char *group, const char *key, bool *ret,
                      char **error_message) {
        g_autofree char *v = g_key_file_get_value(kf, group, key, NULL);

        if (!v)
                return 0;
        g_strstrip(v);
        if (g_ascii_strcasecmp(v, "yes") == 0 || g_ascii_strcasecmp(v, "true") == 0 || streq(v, "1"))
                *ret = true;
        else if (g_ascii_strcasecmp(v, "no") == 0 || g_ascii_strcasecmp(v, "false") == 0 || streq(v, "0"))
                *ret = false;
        else
                return fail(error_message, "%s: [%s]: %s='%s' is not a boolean (yes or no)", origin, group, key, v);
        return 0;
}

static int parse_daemon(GKeyFile *kf, const char *origin, Config *c, char **error_message) {
        static const char *const known[] = { "Gpus", "StepTimeoutSec", NULL };
        g_autofree char *gpus = NULL, *timeout = NULL;
        g_auto(GStrv) items = NULL;
        int r;

        c->gpus_auto = true;
        c->step_timeout_sec = DEFAULT_STEP_TIMEOUT_SEC;
        if (!g_key_file_has_group(kf, GROUP_DAEMON))
                return 0;
        r = check_keys(kf, origin, GROUP_DAEMON, known, error_message);
        if (r < 0)
                return r;

        timeout = g_key_file_get_value(kf, GROUP_DAEMON, "StepTimeoutSec", NULL);
        if (timeout) {
                char *end;
                unsigned long v;

                g_strstrip(timeout);
                errno = 0;
                v = strtoul(timeout, &end, 10);
                if (errno != 0 || end == timeout || *end != 0 || v < 1 || v > 3600 || timeout[0] == '-')
                        return fail(error_message, "%s: [Daemon]: StepTimeoutSec='%s': expected seconds from 1 to 3600",
                                    origin, timeout);
                c->step_timeout_sec = (unsigned) v;
        }

        gpus = g_key_file_get_value(kf, GROUP_DAEMON, "Gpus", NULL);
        if (!gpus)
                return 0;
        g_strstrip(gpus);
        if (streq(gpus, "auto"))
                return 0;

        c->gpus_auto = false;
        items = g_strsplit_set(gpus, ";, ", -1);
        for (char **it = items; *it; it++) {
                PciAddress a;

                if (isempty(*it))
                        continue;
                if (pci_address_parse(*it, &a) < 0 || a.function >= 0)
                        return fail(error_message,
                                    "%s: [Daemon]: Gpus: '%s' is not a PCI slot address such as 0000:0a:00",
                                    origin, *it);
                for (size_t i = 0; i < c->n_gpus; i++)
                        if (pci_address_same_slot(&c->gpus[i], &a))
                                return fail(error_message, "%s: [Daemon]: Gpus: %s is listed twice", origin, *it);
                PciAddress *n = realloc(c->gpus, (c->n_gpus + 1) * sizeof *n);
                if (!n)
                        return -ENOMEM;
                c->gpus = n;
                c->gpus[c->n_gpus++] = a;
        }
        if (c->n_gpus == 0)
                return fail(error_message, "%s: [Daemon]: Gpus= is empty: give 'auto' or slot addresses", origin);
        return 0;
}

static int parse_companions(char *value, const char *origin, const char *group, GpuConfig *s,
                            char **error_message) {
        g_auto(GStrv) items = g_strsplit_set(g_strstrip(value), ";, ", -1);

        for (char **it = items; *it; it++) {
                PciAddress a, *grown;

                if (isempty(*it))
                        continue;
                if (pci_address_parse(*it, &a) < 0 || a.function < 0)
                        return fail(error_message, "%s: [%s]: Companions: '%s' is not a PCI function address such "
                                    "as 0000:0b:00.0", origin, group, *it);
                if (pci_address_same_slot(&a, &s->slot))
                        return fail(error_message, "%s: [%s]: Companions: %s is in the GPU's own slot, which moves "
                                    "with it anyway: name only devices outside it", origin, group, *it);
                for (size_t i = 0; i < s->n_companions; i++)
                        if (pci_address_equal(&s->companions[i], &a))
                                return fail(error_message, "%s: [%s]: Companions: %s is listed twice", origin,
                                            group, *it);
                grown = realloc(s->companions, (s->n_companions + 1) * sizeof *grown);
                if (!grown)
                        return -ENOMEM;
                s->companions = grown;
                s->companions[s->n_companions++] = a;
        }
        return 0;
}

/* A companion moves with one GPU: not with two, and it is no GPU itself. */
static int check_companions_owned_once(const Config *c, const char *origin, char **error_message) {
        for (size_t i = 0; i < c->n_sections; i++)
                for (size_t k = 0; k < c->sections[i].n_companions; k++) {
                        const PciAddress *a = &c->sections[i].companions[k];
                        char addr[PCI_FUNCTION_STRLEN];

                        pci_address_format_function(a, addr);
                        for (size_t j = 0; j < c->n_gpus; j++)
                                if (gpu_address_matches(&c->gpus[j], NULL, 0, a))
                                        return fail(error_message, "%s: [Gpu %s]: Companions: %s is a function of "
                                                    "another managed GPU (Gpus=)", origin,
                                                    c->sections[i].address, addr);
                        for (size_t j = 0; j < c->n_sections; j++)
                                if (j != i && gpu_address_matches(&c->sections[j].slot, c->sections[j].companions,
                                                                  c->sections[j].n_companions, a))
                                        return fail(error_message, "%s: [Gpu %s]: Companions: %s is a function of "
                                                    "[Gpu %s] already", origin, c->sections[i].address, addr,
                                                    c->sections[j].address);
                }
        return 0;
}

char *config_error_message(const Config *c, const GpuConfig *gc, const char *key, const char *fmt, ...) {
        g_autofree char *what = NULL, *raw = NULL;
        va_list ap;

        va_start(ap, fmt);
        what = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        raw = g_strdup_printf("%s: [Gpu %s]: %s: %s", strempty(c->origin), gc->address, key, what);
        return g_utf8_make_valid(raw, -1);
}

static int parse_gpu_section(GKeyFile *kf, const char *origin, const char *group, Config *c,
                             char **error_message) {
        static const char *const known[] = { "DefaultMode", "HostDriver", "AllowBootVga", "StopServices", "Companions", "DesktopAccess", NULL };
        const char *addr = group + strlen(GROUP_GPU_PREFIX);
        g_autofree char *mode = NULL, *driver = NULL, *services = NULL, *companions = NULL;
        GpuConfig *s, *n;
        int r;

        n = realloc(c->sections, (c->n_sections + 1) * sizeof *n);
        if (!n)
                return -ENOMEM;
        c->sections = n;
        s = &c->sections[c->n_sections];
        *s = (GpuConfig) { .default_mode = DEFAULT_MODE_KEEP, .desktop_access = true };

        if (pci_address_parse(addr, &s->slot) < 0 || s->slot.function >= 0)
                return fail(error_message, "%s: [%s]: '%s' is not a PCI slot address such as 0000:0a:00",
                            origin, group, addr);
        for (size_t i = 0; i < c->n_sections; i++)
                if (pci_address_same_slot(&c->sections[i].slot, &s->slot))
                        return fail(error_message, "%s: [%s]: a second section for the same GPU", origin, group);
        pci_address_format_slot(&s->slot, s->address);
        c->n_sections++;

        r = check_keys(kf, origin, group, known, error_message);
        if (r < 0)
                return r;

        mode = g_key_file_get_value(kf, group, "DefaultMode", NULL);
        if (mode) {
                char choices[SWITCH_TARGET_CHOICES_MAX];

                g_strstrip(mode);
                s->default_mode = default_mode_from_string(mode);
                if (s->default_mode < 0)
                        return fail(error_message, "%s: [%s]: DefaultMode='%s': expected %s", origin, group,
                                    mode, switch_target_choices(choices, true));
        }

        driver = g_key_file_get_value(kf, group, "HostDriver", NULL);
        if (driver) {
                g_strstrip(driver);
                /* A driver name becomes part of a sysfs path: no '/', no "..". */
                if (!pci_driver_name_is_valid(driver))
                        return fail(error_message, "%s: [%s]: HostDriver='%s' is not a driver name (up to %d of "
                                    "A-Z a-z 0-9 _ - . :, not starting with '.')", origin, group, driver,
                                    PCI_DRIVER_NAME_MAX);
                s->host_driver = strdup(driver);
                if (!s->host_driver)
                        return -ENOMEM;
        }

        services = g_key_file_get_value(kf, group, "StopServices", NULL);
        if (services) {
                g_auto(GStrv) items = g_strsplit_set(g_strstrip(services), "; ", -1);
                g_autoptr(GPtrArray) units = g_ptr_array_new_with_free_func(g_free);

                for (char **it = items; *it; it++) {
                        if (isempty(*it))
                                continue;
                        /* a unit name, "NAME.service": not ".service" alone, not a hidden name */
                        if (!g_str_has_suffix(*it, ".service") || strlen(*it) == strlen(".service") ||
                            (*it)[0] == '.' || strlen(*it) > 255 ||
                            strspn(*it, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.@-\\")
                                != strlen(*it))
                                return fail(error_message, "%s: [%s]: StopServices: '%s' is not a service unit name",
                                            origin, group, *it);
                        g_ptr_array_add(units, g_strdup(*it));
                }
                g_ptr_array_add(units, NULL);
                s->stop_services = (char **) g_ptr_array_free(g_steal_pointer(&units), FALSE);
        }

        companions = g_key_file_get_value(kf, group, "Companions", NULL);
        if (companions) {
                r = parse_companions(companions, origin, group, s, error_message);
                if (r < 0)
                        return r;
        }

        r = parse_bool(kf, origin, group, "DesktopAccess", &s->desktop_access, error_message);
        if (r < 0)
                return r;
        return parse_bool(kf, origin, group, "AllowBootVga", &s->allow_boot_vga, error_message);
}

int config_parse(const char *data, size_t len, const char *origin, Config **ret, char **error_message) {
        _cleanup_(config_freep) Config *c = NULL;
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) err = NULL;
        g_auto(GStrv) groups = NULL;
        int r;

        if (!g_key_file_load_from_data(kf, data, len, G_KEY_FILE_NONE, &err))
                return fail(error_message, "%s: %s", origin, err->message);

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;

        groups = g_key_file_get_groups(kf, NULL);
        for (char **g = groups; *g; g++) {
                if (streq(*g, GROUP_DAEMON))
                        continue;
                if (!g_str_has_prefix(*g, GROUP_GPU_PREFIX))
                        return fail(error_message, "%s: unknown section [%s]: expected [Daemon] or [Gpu 0000:0a:00]",
                                    origin, *g);
                r = parse_gpu_section(kf, origin, *g, c, error_message);
                if (r < 0)
                        return r;
        }

        r = parse_daemon(kf, origin, c, error_message);
        if (r < 0)
                return r;
        r = check_companions_owned_once(c, origin, error_message);
        if (r < 0)
                return r;
        c->origin = strdup(origin);
        if (!c->origin)
                return -ENOMEM;

        *ret = TAKE_PTR(c);
        return 0;
}

int config_load(const char *path, Config **ret, char **error_message) {
        g_autofree char *data = NULL;
        g_autoptr(GError) err = NULL;
        gsize len = 0;

        if (!g_file_get_contents(path, &data, &len, &err)) {
                if (g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                        return config_parse("", 0, path, ret, error_message);
                return fail(error_message, "%s: %s", path, err->message);
        }
        return config_parse(data, len, path, ret, error_message);
}

const GpuConfig *config_find_gpu(const Config *c, const PciAddress *slot) {
        for (size_t i = 0; i < c->n_sections; i++)
                if (pci_address_same_slot(&c->sections[i].slot, slot))
                        return &c->sections[i];
        return NULL;
}
