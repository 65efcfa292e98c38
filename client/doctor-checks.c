/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The checks of `gpuswitchctl doctor` that need no bus: they read sysfs,
 * /proc, the module tree and a few files, all below a root folder so the
 * unit tests can hand them a fake tree. */
#include "doctor.h"

#include <dlfcn.h>
#include <errno.h>
#include <libkmod.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "gpu-arg.h"
#include "gpuswitch-bus.h"
#include "util.h"

#define CONFIG_FILE "/etc/gpuswitch/gpuswitch.conf"
#define GROUP_RULE_EXAMPLE "/usr/share/doc/gpuswitch/examples/50-gpuswitch-group.rules"
#define PCI_CLASS_BRIDGE_PCI 0x0604

const char *const doctor_nvidia_services[3] = { "nvidia-persistenced.service", "nvidia-powerd.service", NULL };

void check_free(Check *c) {
        if (!c)
                return;
        g_free(c->id);
        g_free(c->title);
        g_free(c->detail);
        g_free(c->fix);
        g_free(c);
}

const char *verdict_to_json(Verdict v) {
        switch (v) {
        case VERDICT_OK:      return "ok";
        case VERDICT_WARNING: return "warning";
        case VERDICT_FAIL:    return "fail";
        default:              return "skipped";
        }
}

static Check *check_new(const char *id, const char *title) {
        Check *c = g_new0(Check, 1);

        c->id = g_strdup(id);
        c->title = g_strdup(title);
        return c;
}

Check *doctor_check_skipped(const char *id, const char *title, const char *reason) {
        Check *c = check_new(id, title);

        c->verdict = VERDICT_SKIPPED;
        c->detail = g_strdup(reason);
        return c;
}

/* Sets the verdict, the detail (printf) and the fix (NULL: none). */
static Check *check_set(Check *c, Verdict v, const char *fix, const char *fmt, ...) _printf_(4, 5);
static Check *check_set(Check *c, Verdict v, const char *fix, const char *fmt, ...) {
        va_list ap;

        c->verdict = v;
        g_free(c->detail);
        va_start(ap, fmt);
        c->detail = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_free(c->fix);
        c->fix = g_strdup(fix);
        return c;
}

/* root + path, without a double slash for root "/". */
static char *at(const char *root, const char *fmt, ...) _printf_(2, 3);
static char *at(const char *root, const char *fmt, ...) {
        g_autofree char *rel = NULL;
        va_list ap;

        va_start(ap, fmt);
        rel = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        return g_strconcat(streq(root, "/") ? "" : root, rel, NULL);
}

static bool exists(const char *path) {
        return access(path, F_OK) == 0;
}

static char *read_line(const char *path) {
        char *s = NULL;

        return read_one_line_file(path, &s) >= 0 ? s : NULL;
}

/* The config the daemon reads, when there is one we may read. */
static GKeyFile *config_load(const char *root) {
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autofree char *path = at(root, CONFIG_FILE);

        if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, NULL))
                return NULL;
        return g_steal_pointer(&kf);
}

static char *config_gpu_value(GKeyFile *kf, const GpuInfo *gpu, const char *key) {
        g_autofree char *group = g_strdup_printf("Gpu %s", gpu->address);
        char *v;

        if (!kf)
                return NULL;
        v = g_key_file_get_value(kf, group, key, NULL);
        return v ? g_strstrip(v) : NULL;
}

/* The display function (class 0x03xxxx) of the GPU, else its first. */
static const FunctionInfo *display_function(const GpuInfo *gpu) {
        for (size_t i = 0; i < gpu->n_functions; i++) {
                unsigned long c;

                if (pci_class_parse(gpu->functions[i].class_code, &c) >= 0 && (c >> 16) == 0x03)
                        return &gpu->functions[i];
        }
        return gpu->n_functions > 0 ? &gpu->functions[0] : NULL;
}

static bool gpu_on_nvidia(const GpuInfo *gpu) {
        const FunctionInfo *f = display_function(gpu);

        return f && (streq_ptr(f->host_driver, "nvidia") || streq_ptr(f->driver, "nvidia"));
}

/* ---- 1. the IOMMU -------------------------------------------------------- */

static const char *cpu_vendor(const char *root) {
        g_autofree char *path = at(root, "/proc/cpuinfo");
        g_autofree char *text = NULL;

        if (!g_file_get_contents(path, &text, NULL, NULL))
                return NULL;
        if (strstr(text, "GenuineIntel"))
                return "intel";
        if (strstr(text, "AuthenticAMD") || strstr(text, "HygonGenuine"))
                return "amd";
        return NULL;
}

static bool cmdline_has(const char *root, const char *word) {
        g_autofree char *path = at(root, "/proc/cmdline");
        g_autofree char *line = read_line(path);
        g_auto(GStrv) words = line ? g_strsplit(line, " ", -1) : NULL;

        for (char **w = words; w && *w; w++)
                if (streq(*w, word))
                        return true;
        return false;
}

Check *doctor_check_iommu(const char *root) {
        Check *c = check_new("iommu", "IOMMU");
        g_autofree char *dir = at(root, "/sys/kernel/iommu_groups");
        g_autofree char *fix = NULL;
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        const char *vendor, *param, *firmware;
        size_t n = 0;

        while (d && g_dir_read_name(d))
                n++;
        if (n > 0)
                return check_set(c, VERDICT_OK, NULL, "enabled, %zu IOMMU group%s", n, n == 1 ? "" : "s");

        vendor = cpu_vendor(root);
        param = !vendor ? NULL : streq(vendor, "intel") ? "intel_iommu=on" : "amd_iommu=on";
        firmware = !vendor ? "the IOMMU" : streq(vendor, "intel") ? "VT-d" : "the IOMMU (AMD-Vi)";
        if (!param)
                fix = g_strdup("enable the IOMMU in the firmware setup and on the kernel command line "
                               "(intel_iommu=on for Intel, amd_iommu=on for AMD), then reboot");
        else if (cmdline_has(root, param))
                fix = g_strdup_printf("the kernel has %s: enable %s in the firmware setup", param, firmware);
        else
                fix = g_strdup_printf("add %s to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, "
                                      "then update-grub), enable %s in the firmware setup, and reboot",
                                      param, firmware);
        return check_set(c, VERDICT_FAIL, fix, "no IOMMU groups in /sys/kernel/iommu_groups: the IOMMU is off");
}

/* ---- 2. vfio-pci ------------------------------------------------------- */

/* libkmod is opened here, when doctor asks, not linked: with the libcrypto
 * it pulls in it was most of the dynamic loader's work at every start of
 * gpuswitchctl, a switch included (systemd opens its optional libraries the
 * same way). */
static struct {
        struct kmod_ctx *(*new)(const char *, const char *const *);
        struct kmod_ctx *(*unref)(struct kmod_ctx *);
        void (*set_log_priority)(struct kmod_ctx *, int);
        int (*new_from_lookup)(struct kmod_ctx *, const char *, struct kmod_list **);
        struct kmod_list *(*list_next)(const struct kmod_list *, const struct kmod_list *);
        struct kmod_module *(*get_module)(const struct kmod_list *);
        const char *(*get_path)(const struct kmod_module *);
        struct kmod_module *(*module_unref)(struct kmod_module *);
        int (*unref_list)(struct kmod_list *);
} kmod;

static bool kmod_open(void) {
        static void *dl;

        if (dl)
                return true;
        dl = dlopen("libkmod.so.2", RTLD_NOW | RTLD_LOCAL);
        if (!dl)
                return false;
        kmod.new = dlsym(dl, "kmod_new");
        kmod.unref = dlsym(dl, "kmod_unref");
        kmod.set_log_priority = dlsym(dl, "kmod_set_log_priority");
        kmod.new_from_lookup = dlsym(dl, "kmod_module_new_from_lookup");
        kmod.list_next = dlsym(dl, "kmod_list_next");
        kmod.get_module = dlsym(dl, "kmod_module_get_module");
        kmod.get_path = dlsym(dl, "kmod_module_get_path");
        kmod.module_unref = dlsym(dl, "kmod_module_unref");
        kmod.unref_list = dlsym(dl, "kmod_module_unref_list");
        if (kmod.new && kmod.unref && kmod.set_log_priority && kmod.new_from_lookup && kmod.list_next &&
            kmod.get_module && kmod.get_path && kmod.module_unref && kmod.unref_list)
                return true;
        dlclose(dl);
        dl = NULL;
        return false;
}

static void kmod_unrefp(struct kmod_ctx **c) { if (*c) kmod.unref(*c); }
static void kmod_module_unref_listp(struct kmod_list **l) { if (*l) kmod.unref_list(*l); }

Check *doctor_check_vfio_pci(const char *root, const char *kernel_release) {
        Check *c = check_new("vfio-pci", "vfio-pci");
        g_autofree char *loaded = at(root, "/sys/module/vfio_pci");
        g_autofree char *moddir = at(root, "/lib/modules/%s", kernel_release);
        g_autofree char *fix = g_strdup_printf("reinstall the kernel's package (apt-get install --reinstall "
                                               "linux-image-%s) or use a kernel built with CONFIG_VFIO_PCI",
                                               kernel_release);
        char *conf[4] = {};
        _cleanup_(kmod_unrefp) struct kmod_ctx *ctx = NULL;
        _cleanup_(kmod_module_unref_listp) struct kmod_list *list = NULL;
        g_autofree char *missing = NULL;
        struct kmod_list *l;
        int r;

        if (exists(loaded))
                return check_set(c, VERDICT_OK, NULL, "loaded");

        if (!kmod_open())
                return check_set(c, VERDICT_FAIL, "install libkmod2 (apt-get install libkmod2)",
                                 "not loaded, and libkmod.so.2 could not be opened to look for it: %s", dlerror());
        /* modprobe.d of the tree, so a fake root never reads this machine's */
        conf[0] = at(root, "/etc/modprobe.d");
        conf[1] = at(root, "/run/modprobe.d");
        conf[2] = at(root, "/lib/modprobe.d");
        ctx = kmod.new(moddir, (const char *const *) conf);
        for (size_t i = 0; i < 3; i++)
                g_free(conf[i]);
        if (!ctx)
                return check_set(c, VERDICT_FAIL, fix, "not loaded, and libkmod could not open %s", moddir);
        /* what is missing is this check's verdict, not a message of libkmod's */
        kmod.set_log_priority(ctx, 0);
        r = kmod.new_from_lookup(ctx, "vfio-pci", &list);
        if (r < 0 || !list)
                return check_set(c, VERDICT_FAIL, fix, "not loaded, and no vfio-pci module for %s in %s",
                                 kernel_release, moddir);
        for (l = list; l; l = kmod.list_next(list, l)) {
                struct kmod_module *m = kmod.get_module(l);
                const char *path = kmod.get_path(m);
                g_autofree char *p = g_strdup(path);

                kmod.module_unref(m);
                /* in modules.builtin: no file, nothing to load */
                if (!p)
                        return check_set(c, VERDICT_OK, NULL, "built into the kernel %s", kernel_release);
                if (exists(p))
                        return check_set(c, VERDICT_OK, NULL, "not loaded; gpuswitchd loads %s when needed",
                                         p + (streq(root, "/") ? 0 : strlen(root)));
                if (!missing)
                        missing = g_strdup(p + (streq(root, "/") ? 0 : strlen(root)));
        }
        return check_set(c, VERDICT_FAIL, fix, "not loaded, and modules.dep names %s, which is missing",
                         strempty(missing));
}

/* ---- 3. the GPU's IOMMU group(s) -------------------------------------------- */

static bool is_function_of(const char *name, const GpuInfo *gpu) {
        size_t n = strlen(gpu->address);

        return strncmp(name, gpu->address, n) == 0 && name[n] == '.';
}

static bool is_pci_bridge(const char *root, const char *dev) {
        g_autofree char *path = at(root, "/sys/bus/pci/devices/%s/class", dev);
        g_autofree char *s = read_line(path);
        unsigned long c;

        return s && pci_class_parse(s, &c) >= 0 && (c >> 8) == PCI_CLASS_BRIDGE_PCI;
}

/* The devices of one group that a VM could not take along with the GPU:
 * appended as "ADDR (DRIVER)" to bad, the first named in first/first_driver. */
static int group_scan(const char *root, const GpuInfo *gpu, const char *group, GString *bad, char **first,
                      char **first_driver) {
        g_autofree char *dir = at(root, "/sys/kernel/iommu_groups/%s/devices", group);
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        const char *name;

        if (!d)
                return -ENOENT;
        while ((name = g_dir_read_name(d))) {
                g_autofree char *link = at(root, "/sys/bus/pci/devices/%s/driver", name);
                g_autofree char *driver = NULL;

                if (is_function_of(name, gpu) || is_pci_bridge(root, name))
                        continue;
                if (readlink_basename(link, &driver) < 0 || streq(driver, "vfio-pci") || streq(driver, "pci-stub"))
                        continue;
                g_string_append_printf(bad, "%s%s (%s)", bad->len ? ", " : "", name, driver);
                if (!*first) {
                        *first = g_strdup(name);
                        *first_driver = g_strdup(driver);
                }
        }
        return 0;
}

Check *doctor_check_group(const char *root, const GpuInfo *gpu) {
        g_autofree char *title = g_strdup_printf("IOMMU group (%s)", gpu->address);
        Check *c = check_new("iommu-group", title);
        g_autoptr(GPtrArray) groups = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GString) bad = g_string_new(NULL), names = g_string_new(NULL);
        g_autofree char *first = NULL, *first_driver = NULL, *fix = NULL;

        for (size_t i = 0; i < gpu->n_functions; i++) {
                g_autofree char *link = at(root, "/sys/bus/pci/devices/%s/iommu_group", gpu->functions[i].address);
                char *group = NULL;

                if (readlink_basename(link, &group) < 0)
                        return check_set(c, VERDICT_FAIL, "turn the IOMMU on (see the IOMMU check)",
                                         "%s is in no IOMMU group", gpu->functions[i].address);
                if (g_ptr_array_find_with_equal_func(groups, group, g_str_equal, NULL))
                        free(group);
                else
                        g_ptr_array_add(groups, group);
        }
        if (groups->len == 0)
                return check_set(c, VERDICT_FAIL, "see 'gpuswitchctl status'", "the daemon lists no functions");

        for (size_t i = 0; i < groups->len; i++) {
                const char *g = groups->pdata[i];

                g_string_append_printf(names, "%s%s", i ? ", " : "", g);
                if (group_scan(root, gpu, g, bad, &first, &first_driver) < 0)
                        return check_set(c, VERDICT_FAIL, "see 'gpuswitchctl status'",
                                         "IOMMU group %s has no devices folder", g);
        }
        if (!first)
                return check_set(c, VERDICT_OK, NULL, "viable: group %s holds only the GPU's functions, "
                                 "bridges and devices on no driver or vfio-pci", names->str);
        fix = g_strdup_printf("a VM takes the whole group: put the card in a slot with an IOMMU group of its own, "
                              "or take %s off %s (unbind it, or give it to vfio-pci too); the ACS override "
                              "patch only hides the sharing", first, first_driver);
        return check_set(c, VERDICT_FAIL, fix, "not viable: group %s also holds %s", names->str, bad->str);
}

/* ---- 4. the boot VGA device ------------------------------------------------ */

static bool parse_yes(const char *s) {
        return s && (streq(s, "yes") || streq(s, "true") || streq(s, "1") || streq(s, "on"));
}

Check *doctor_check_boot_vga(const char *root, const GpuInfo *gpu) {
        g_autofree char *title = g_strdup_printf("Boot VGA (%s)", gpu->address);
        Check *c = check_new("boot-vga", title);
        g_autoptr(GKeyFile) kf = config_load(root);
        g_autofree char *allow = config_gpu_value(kf, gpu, "AllowBootVga");
        g_autofree char *fix = NULL;
        bool boot = gpu->boot_vga;

        for (size_t i = 0; i < gpu->n_functions && !boot; i++) {
                g_autofree char *path = at(root, "/sys/bus/pci/devices/%s/boot_vga", gpu->functions[i].address);
                g_autofree char *v = read_line(path);

                boot = streq_ptr(v, "1");
        }
        if (!boot)
                return check_set(c, VERDICT_OK, NULL, "not the boot VGA device: the console stays on another GPU");
        if (parse_yes(allow))
                return check_set(c, VERDICT_OK, NULL, "the boot VGA device (the console); AllowBootVga=yes "
                                 "lets it switch, the console goes dark while it is on vfio-pci");
        fix = g_strdup_printf("set AllowBootVga=yes in [Gpu %s] of " CONFIG_FILE ", or make the other GPU "
                              "the primary display in the firmware setup", gpu->address);
        return check_set(c, VERDICT_WARNING, fix, "the boot VGA device (the console): gpuswitchd refuses to "
                         "switch it");
}

/* ---- 5. nvidia and nvidia_drm modeset ------------------------------------------ */

Check *doctor_check_nvidia(const char *root, const GpuInfo *gpu) {
        g_autofree char *title = g_strdup_printf("nvidia_drm modeset (%s)", gpu->address);
        Check *c = check_new("nvidia-modeset", title);
        const FunctionInfo *f = display_function(gpu);
        g_autofree char *nvidia = at(root, "/sys/module/nvidia");
        g_autofree char *param = at(root, "/sys/module/nvidia_drm/parameters/modeset");
        g_autofree char *modeset = NULL;

        if (!gpu_on_nvidia(gpu))
                return check_set(c, VERDICT_SKIPPED, NULL, "n/a: the host driver of %s is %s, not nvidia",
                                 f ? f->address : gpu->address,
                                 f && !isempty(f->host_driver) ? f->host_driver : "none");
        if (!exists(nvidia))
                return check_set(c, VERDICT_OK, NULL, "nvidia is not loaded");
        modeset = read_line(param);
        if (!modeset)
                return check_set(c, VERDICT_OK, NULL, "nvidia is loaded, nvidia_drm is not");
        if (!streq(modeset, "Y"))
                return check_set(c, VERDICT_OK, NULL, "nvidia is loaded, nvidia_drm with modeset=0");
        if (cmdline_has(root, "nvidia-drm.modeset=1") || cmdline_has(root, "nvidia_drm.modeset=1"))
                return check_set(c, VERDICT_WARNING, "remove nvidia-drm.modeset=1 from the kernel command line "
                                 "(/etc/default/grub, then update-grub) and reboot",
                                 "nvidia_drm modeset=1 (kernel command line): the display stack holds the GPU "
                                 "and unbinding it can hang");
        return check_set(c, VERDICT_WARNING, "echo 'options nvidia_drm modeset=0' > /etc/modprobe.d/"
                         "nvidia-drm-modeset.conf, then update-initramfs -u and reboot",
                         "nvidia_drm modeset=1: the display stack holds the GPU and unbinding it can hang");
}

/* ---- 6. glvnd's NVIDIA EGL vendor file -------------------------------------------- */

Check *doctor_check_egl_vendor(const char *root) {
        static const char *const dirs[] = { "/etc/glvnd/egl_vendor.d", "/usr/share/glvnd/egl_vendor.d" };
        Check *c = check_new("egl-vendor", "NVIDIA EGL vendor");

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                g_autofree char *path = at(root, "%s/10_nvidia.json", dirs[i]);

                if (exists(path))
                        return check_set(c, VERDICT_WARNING, "start the graphical session with "
                                         "__EGL_VENDOR_LIBRARY_FILENAMES=/usr/share/glvnd/egl_vendor.d/50_mesa.json "
                                         "(e.g. in ~/.config/environment.d/gpuswitch.conf)",
                                         "%s/10_nvidia.json: glvnd hands compositors and Xwayland the NVIDIA "
                                         "driver, which opens the GPU", dirs[i]);
        }
        return check_set(c, VERDICT_OK, NULL, "no 10_nvidia.json in /etc/glvnd or /usr/share/glvnd");
}

/* ---- 7. flatpak's GL.nvidia runtime --------------------------------------------- */

static char *find_gl_nvidia(const char *dir) {
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        const char *name;

        while (d && (name = g_dir_read_name(d)))
                if (g_str_has_prefix(name, "org.freedesktop.Platform.GL") && strstr(name, ".nvidia"))
                        return g_strdup(name);
        return NULL;
}

Check *doctor_check_flatpak(const char *root, const char *home) {
        Check *c = check_new("flatpak-gl", "flatpak GL.nvidia");
        g_autofree char *system_dir = at(root, "/var/lib/flatpak/runtime");
        g_autofree char *user_dir = home ? at(root, "%s/.local/share/flatpak/runtime", home) : NULL;
        g_autofree char *sys = find_gl_nvidia(system_dir);
        g_autofree char *user = user_dir ? find_gl_nvidia(user_dir) : NULL;
        g_autofree char *fix = NULL;

        if (!sys && !user)
                return check_set(c, VERDICT_OK, NULL, "no org.freedesktop.Platform.GL.nvidia runtime installed");
        fix = g_strdup_printf("flatpak uninstall%s %s && flatpak mask%s 'org.freedesktop.Platform.GL.nvidia*'",
                              sys ? "" : " --user", sys ? sys : user, sys ? "" : " --user");
        return check_set(c, VERDICT_WARNING, fix, "%s is installed%s: flatpak apps open the GPU with it",
                         sys ? sys : user, sys ? "" : " for this user");
}

/* ---- 8. nvidia-persistenced and nvidia-powerd ---------------------------------------- */

/* Whether gpuswitchd stops service before moving gpu: StopServices=, or
 * the NVIDIA services for a GPU on nvidia. */
static bool daemon_stops(GKeyFile *kf, const GpuInfo *gpu, const char *service) {
        g_autofree char *list = config_gpu_value(kf, gpu, "StopServices");
        g_auto(GStrv) items = NULL;

        if (!list)
                return gpu_on_nvidia(gpu);
        items = g_strsplit_set(list, "; ", -1);
        return g_strv_contains((const char *const *) items, service);
}

Check *doctor_check_services(const char *root, const char *const *active_states, const char *reason,
                             GpuInfo *const *gpus, size_t n_gpus) {
        Check *c = check_new("nvidia-services", "NVIDIA services");
        g_autoptr(GKeyFile) kf = config_load(root);
        g_autoptr(GString) running = g_string_new(NULL);
        const char *missing_service = NULL;
        const GpuInfo *missing_gpu = NULL;
        g_autofree char *fix = NULL;
        bool stopped = false;

        if (!active_states)
                return check_set(c, VERDICT_SKIPPED, NULL, "%s", strempty(reason));
        for (size_t i = 0; doctor_nvidia_services[i]; i++) {
                const char *s = doctor_nvidia_services[i];

                if (!streq(active_states[i], "active") && !streq(active_states[i], "activating") &&
                    !streq(active_states[i], "reloading"))
                        continue;
                g_string_append_printf(running, "%s%s", running->len ? " and " : "", s);
                for (size_t j = 0; gpus && j < n_gpus; j++) {
                        bool stops = daemon_stops(kf, gpus[j], s);

                        stopped = stopped || stops;
                        if (gpu_on_nvidia(gpus[j]) && !stops && !missing_service) {
                                missing_service = s;
                                missing_gpu = gpus[j];
                        }
                }
        }
        if (running->len == 0)
                return check_set(c, VERDICT_OK, NULL, "nvidia-persistenced and nvidia-powerd are not running");
        if (missing_service) {
                fix = g_strdup_printf("add %s to StopServices= in [Gpu %s] of " CONFIG_FILE, missing_service,
                                      missing_gpu->address);
                return check_set(c, VERDICT_WARNING, fix, "%s running; StopServices= of %s leaves %s running, "
                                 "and it keeps the GPU open", running->str, missing_gpu->address, missing_service);
        }
        if (!gpus)
                return check_set(c, VERDICT_OK, NULL, "%s running; gpuswitchd stops them before a switch to vfio "
                                 "for a GPU on nvidia (StopServices=), unless configured otherwise", running->str);
        if (!stopped)
                return check_set(c, VERDICT_OK, NULL, "%s running; no managed GPU is on nvidia, so they hold none "
                                 "of them", running->str);
        return check_set(c, VERDICT_OK, NULL, "%s running; gpuswitchd stops them before a switch to vfio and "
                         "starts them again after the switch back (StopServices=)", running->str);
}

/* ---- 9. the daemon -------------------------------------------------------------------- */

Check *doctor_check_daemon(const char *version, const char *error_name, const char *error_message) {
        Check *c = check_new("daemon", "gpuswitchd");

        if (version)
                return check_set(c, VERDICT_OK, NULL, "reachable on the system bus, version %s", version);
        if (!error_name)
                return check_set(c, VERDICT_FAIL, "start the system bus: systemctl start dbus",
                                 "cannot connect to the system bus: %s", strempty(error_message));
        return check_set(c, VERDICT_FAIL, "systemctl status gpuswitchd; if it is unknown, reinstall gpuswitch "
                         "(/usr/share/dbus-1/system-services/" GPUSWITCH_BUS_NAME ".service, "
                         "/usr/share/dbus-1/system.d/" GPUSWITCH_BUS_NAME ".conf) and run systemctl daemon-reload",
                         GPUSWITCH_BUS_NAME " does not answer: %s", strempty(error_message));
}

/* ---- 10. authorization ---------------------------------------------------------------- */

Check *doctor_check_authorization(AuthAnswer answer, const char *user, const char *reason) {
        Check *c = check_new("authorization", "Authorization");
        g_autofree char *fix = g_strdup_printf("cp " GROUP_RULE_EXAMPLE " /etc/polkit-1/rules.d/ && "
                                               "usermod -aG gpuswitch %s (as root; then log in again)", user);

        switch (answer) {
        case AUTH_ROOT:
                return check_set(c, VERDICT_OK, NULL, "root: gpuswitchd lets root switch without asking polkit");
        case AUTH_YES:
                return check_set(c, VERDICT_OK, NULL, "yes: polkit lets %s switch GPUs (" POLKIT_ACTION_SWITCH ")", user);
        case AUTH_CHALLENGE:
                return check_set(c, VERDICT_WARNING, fix, "after authentication: polkit asks %s for a password "
                                 "to switch, so --no-ask-password and scripts fail", user);
        case AUTH_NO:
                return check_set(c, VERDICT_FAIL, fix, "no: polkit does not let %s switch GPUs", user);
        default:
                return check_set(c, VERDICT_FAIL, "systemctl status polkit (package polkitd)",
                                 "polkit could not be asked: %s; only root can switch", strempty(reason));
        }
}
