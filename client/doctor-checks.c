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

#include "errors.h"
#include "gpu-rules.h"
#include "gpuswitch-bus.h"
#include "nvidia.h"
#include "plan.h"
#include "util.h"

#define CONFIG_FILE GPUSWITCH_CONFIG_FILE
#define GROUP_RULE_EXAMPLE "/usr/share/doc/gpuswitch/examples/50-gpuswitch-group.rules"

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

/* The daemon's view of the machine below root: its sysfs and proc. */
typedef struct RootSysfs {
        Sysfs sysfs;
        char *sys, *proc;
} RootSysfs;

static void root_sysfs_init(RootSysfs *rs, const char *root) {
        rs->sys = at(root, "/sys");
        rs->proc = at(root, "/proc");
        rs->sysfs = (Sysfs) { .root = rs->sys, .proc_root = rs->proc };
}

static void root_sysfs_done(RootSysfs *rs) {
        g_free(rs->sys);
        g_free(rs->proc);
}

/* The display function of the GPU, else its first. */
static const PciFunction *display_function(const Gpu *gpu) {
        for (size_t i = 0; i < gpu->n_functions; i++)
                if (pci_function_is_display(&gpu->functions[i]))
                        return &gpu->functions[i];
        return gpu->n_functions > 0 ? &gpu->functions[0] : NULL;
}

static bool gpu_on_nvidia(const Gpu *gpu) {
        const PciFunction *f = display_function(gpu);

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

/* ---- the config and the GPUs, as the daemon reads them ------------------------- */

Check *doctor_check_config(const char *root, Config **ret) {
        Check *c = check_new("config", "Configuration");
        g_autofree char *path = at(root, CONFIG_FILE), *error_message = NULL;
        _cleanup_(config_freep) Config *config = NULL;
        int r;

        *ret = NULL;
        /* gpuswitchd reads it as root: a file this user may not read is not
         * a mistake in it */
        if (access(path, R_OK) < 0 && errno != ENOENT)
                return check_set(c, VERDICT_SKIPPED, NULL, "%s cannot be read here (%s): run doctor as root to "
                                 "check it", CONFIG_FILE, strerror(errno));
        r = config_load(path, &config, &error_message);
        if (r >= 0) {
                _cleanup_(root_sysfs_done) RootSysfs rs = {};
                _cleanup_free_ PciAddress *slots = NULL;
                size_t n = 0;

                /* the daemon's rules that need sysfs (Companions=) */
                root_sysfs_init(&rs, root);
                if (gpus_to_manage(&rs.sysfs, config, &slots, &n) >= 0 &&
                    gpus_check_companions(&rs.sysfs, config, slots, n, &error_message) < 0)
                        r = -EINVAL;
        }
        if (r < 0)
                /* word for word what gpuswitchd says, and why it does not start */
                return check_set(c, VERDICT_FAIL, "correct it (gpuswitch.conf(5) lists every key and value), check "
                                 "it with /usr/libexec/gpuswitchd --check-config, then systemctl restart gpuswitchd",
                                 "%s", error_message ? error_message : strerror(-r));
        if (!exists(path))
                check_set(c, VERDICT_OK, NULL, "no %s: the defaults (Gpus=auto)", CONFIG_FILE);
        else if (config->gpus_auto)
                check_set(c, VERDICT_OK, NULL, "gpuswitchd accepts %s: Gpus=auto, %zu [Gpu] section%s", CONFIG_FILE,
                          config->n_sections, config->n_sections == 1 ? "" : "s");
        else
                check_set(c, VERDICT_OK, NULL, "gpuswitchd accepts %s: %zu GPU%s in Gpus=, %zu [Gpu] section%s",
                          CONFIG_FILE, config->n_gpus, config->n_gpus == 1 ? "" : "s", config->n_sections,
                          config->n_sections == 1 ? "" : "s");
        *ret = TAKE_PTR(config);
        return c;
}

int doctor_gpu_read(const char *root, const char *address, const Config *config, const GpuInfo *info, Gpu **ret) {
        _cleanup_(root_sysfs_done) RootSysfs rs = {};
        _cleanup_(gpu_freep) Gpu *g = NULL;
        const GpuConfig *gc;
        PciAddress slot;
        int r;

        r = pci_address_parse(address, &slot);
        if (r < 0)
                return r;
        root_sysfs_init(&rs, root);
        gc = config ? config_find_gpu(config, &slot) : NULL;
        r = gpu_read(&rs.sysfs, &slot, gc ? gc->companions : NULL, gc ? gc->n_companions : 0, &g);
        if (r < 0)
                return r;
        for (size_t i = 0; i < g->n_functions; i++) {
                PciFunction *f = &g->functions[i];

                for (size_t j = 0; info && j < info->n_functions; j++)
                        if (streq_ptr(info->functions[j].address, f->address) && !isempty(info->functions[j].host_driver)) {
                                f->host_driver = strdup(info->functions[j].host_driver);
                                if (!f->host_driver)
                                        return -ENOMEM;
                        }
                if (!info) {
                        r = host_driver_from_state(f, gc ? gc->host_driver : NULL, &f->host_driver);
                        if (r < 0)
                                return r;
                }
        }
        *ret = TAKE_PTR(g);
        return 0;
}

int doctor_find_gpus(const char *root, const Config *config, GPtrArray *ret) {
        _cleanup_(root_sysfs_done) RootSysfs rs = {};
        _cleanup_free_ PciAddress *found = NULL;
        const PciAddress *slots = config->gpus;
        size_t n = config->n_gpus;
        int r;

        root_sysfs_init(&rs, root);
        if (config->gpus_auto) {
                r = gpus_discover_auto(&rs.sysfs, &found, &n);
                if (r < 0)
                        return r;
                slots = found;
        }
        for (size_t i = 0; i < n; i++) {
                char address[PCI_SLOT_STRLEN];
                Gpu *g = NULL;

                pci_address_format_slot(&slots[i], address);
                r = doctor_gpu_read(root, address, config, NULL, &g);
                if (r == -ENODEV)
                        continue;   /* the daemon leaves it out too */
                if (r < 0)
                        return r;
                g_ptr_array_add(ret, g);
        }
        return 0;
}

/* ---- 3. the GPU's IOMMU group(s) -------------------------------------------- */

Check *doctor_check_group(const char *root, const Gpu *gpu) {
        _cleanup_(switch_error_done) SwitchError error = SWITCH_ERROR_INIT;
        _cleanup_(root_sysfs_done) RootSysfs rs = {};
        g_autofree char *title = g_strdup_printf("IOMMU group (%s)", gpu->address);
        Check *c = check_new("iommu-group", title);
        g_autoptr(GString) names = g_string_new(NULL);
        unsigned groups[8];
        size_t n;
        int r;

        for (size_t i = 0; i < gpu->n_functions; i++)
                if (gpu->functions[i].iommu_group < 0)
                        return check_set(c, VERDICT_FAIL, "turn the IOMMU on (see the IOMMU check)",
                                         "%s is in no IOMMU group", gpu->functions[i].address);
        n = gpu_iommu_groups(gpu, groups, ELEMENTSOF(groups));
        if (n == 0)
                return check_set(c, VERDICT_FAIL, "see 'gpuswitchctl status'", "%s has no functions", gpu->address);
        for (size_t i = 0; i < n; i++)
                g_string_append_printf(names, "%s%u", i ? ", " : "", groups[i]);

        /* the check the daemon makes before a switch to vfio-pci */
        root_sysfs_init(&rs, root);
        r = iommu_group_check_viable(&rs.sysfs, gpu, &error);
        if (r == -EXDEV)
                return check_set(c, VERDICT_FAIL, "a VM takes the whole group: put the card in a slot with an IOMMU "
                                 "group of its own, or take that device off its driver (unbind it, or give it to "
                                 "vfio-pci too, with the GPU: Companions=); the ACS override patch only hides the "
                                 "sharing",
                                 "not viable: %s", error.message);
        if (r < 0)
                return check_set(c, VERDICT_FAIL, "see 'gpuswitchctl status'", "IOMMU group %s cannot be read: %s",
                                 names->str, strerror(-r));
        return check_set(c, VERDICT_OK, NULL, "viable: group %s holds only the GPU's functions, bridges and "
                         "devices on no driver or vfio-pci", names->str);
}

/* ---- 4. the boot VGA device ------------------------------------------------ */

Check *doctor_check_boot_vga(const Config *config, const Gpu *gpu) {
        g_autofree char *title = g_strdup_printf("Boot VGA (%s)", gpu->address);
        Check *c = check_new("boot-vga", title);
        const GpuConfig *gc;
        g_autofree char *fix = NULL;
        PciAddress slot;

        if (!gpu_is_boot_vga(gpu))
                return check_set(c, VERDICT_OK, NULL, "not the boot VGA device: the console stays on another GPU");
        if (!config)
                return check_set(c, VERDICT_SKIPPED, NULL, "the boot VGA device (the console); whether AllowBootVga= "
                                 "lets it switch needs a config gpuswitchd accepts (see the configuration check)");
        gc = pci_address_parse(gpu->address, &slot) >= 0 ? config_find_gpu(config, &slot) : NULL;
        if (gc && gc->allow_boot_vga)
                return check_set(c, VERDICT_OK, NULL, "the boot VGA device (the console); AllowBootVga=yes "
                                 "lets it switch, the console goes dark while it is on vfio-pci");
        fix = g_strdup_printf("set AllowBootVga=yes in [Gpu %s] of " CONFIG_FILE ", or make the other GPU "
                              "the primary display in the firmware setup", gpu->address);
        return check_set(c, VERDICT_WARNING, fix, "the boot VGA device (the console): gpuswitchd refuses to "
                         "switch it");
}

/* ---- 5. nvidia and nvidia_drm modeset ------------------------------------------ */

Check *doctor_check_nvidia(const char *root, const Gpu *gpu) {
        _cleanup_(root_sysfs_done) RootSysfs rs = {};
        g_autofree char *title = g_strdup_printf("nvidia_drm modeset (%s)", gpu->address);
        Check *c = check_new("nvidia-modeset", title);
        const PciFunction *f = display_function(gpu);
        g_autofree char *nvidia = at(root, "/sys/module/nvidia");
        g_autofree char *param = at(root, "/sys/module/nvidia_drm/parameters/modeset");

        if (!gpu_on_nvidia(gpu))
                return check_set(c, VERDICT_SKIPPED, NULL, "n/a: the host driver of %s is %s, not nvidia",
                                 f ? f->address : gpu->address,
                                 f && !isempty(f->host_driver) ? f->host_driver : "none");
        if (!exists(nvidia))
                return check_set(c, VERDICT_OK, NULL, "nvidia is not loaded");
        if (!exists(param))
                return check_set(c, VERDICT_OK, NULL, "nvidia is loaded, nvidia_drm is not");
        root_sysfs_init(&rs, root);
        if (!nvidia_drm_modeset(&rs.sysfs))
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

Check *doctor_check_services(const Config *config, const char *const *active_states, const char *reason,
                             Gpu *const *gpus, size_t n_gpus) {
        Check *c = check_new("nvidia-services", "NVIDIA services");
        g_autoptr(GString) running = g_string_new(NULL);
        const char *missing_service = NULL;
        const Gpu *missing_gpu = NULL;
        g_autofree char *fix = NULL;
        bool stopped = false;

        if (!active_states)
                return check_set(c, VERDICT_SKIPPED, NULL, "%s", strempty(reason));
        for (size_t i = 0; nvidia_services[i]; i++) {
                const char *s = nvidia_services[i];

                if (!streq(active_states[i], "active") && !streq(active_states[i], "activating") &&
                    !streq(active_states[i], "reloading"))
                        continue;
                g_string_append_printf(running, "%s%s", running->len ? " and " : "", s);
                for (size_t j = 0; config && gpus && j < n_gpus; j++) {
                        PciAddress slot;
                        const GpuConfig *gc = pci_address_parse(gpus[j]->address, &slot) >= 0
                                              ? config_find_gpu(config, &slot) : NULL;
                        g_auto(GStrv) stops = gpu_stop_services(gpus[j], gc);
                        bool stops_s = stops && g_strv_contains((const char *const *) stops, s);

                        stopped = stopped || stops_s;
                        if (gpu_on_nvidia(gpus[j]) && !stops_s && !missing_service) {
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
        if (!gpus || !config)
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
