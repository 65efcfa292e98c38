/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gpuswitchctl doctor's checks, each on a good and a broken fake tree: a
 * root folder with sys (the fake sysfs of fake-sysfs.c), proc, a module
 * tree indexed by the real depmod, the config, glvnd's and flatpak's
 * folders.  Nothing here reads this machine's own /sys or /lib/modules. */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "doctor.h"
#include "fake-sysfs.h"
#include "gpuswitch-bus.h"
#include "json-out.h"
#include "nvidia.h"
#include "plan.h"
#include "testlib.h"
#include "util.h"

#define KVER "6.1.0-test-amd64"

/* depmod indexes any ELF file with a .modinfo section: this test's own
 * binary carries one and stands in for vfio-pci.ko in the fake module tree. */
__attribute__((section(".modinfo"), used, aligned(1))) static const char modinfo[] = "name=vfio_pci\0license=GPL";

static char root[PATH_MAX];
static FakeKernel *k;

static char *at(const char *rel) {
        static char buf[4][PATH_MAX];
        static int n;

        n = (n + 1) % 4;
        snprintf(buf[n], sizeof buf[n], "%s%s", root, rel);
        return buf[n];
}

static void put(const char *rel, const char *text) {
        g_autofree char *dir = g_path_get_dirname(at(rel));

        CHECK_INT(g_mkdir_with_parents(dir, 0755), 0);
        CHECK(g_file_set_contents(at(rel), text, -1, NULL));
}

static void mkdir_at(const char *rel) {
        CHECK_INT(g_mkdir_with_parents(at(rel), 0755), 0);
}

static void rm_rf(const char *path) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", path);

        /* only ever our own mkdtemp folders */
        if (strstr(path, "/gpuswitch-test-") && system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", path);
}

/* A fresh root: sys is the standard fake machine (GPU 0000:01:00 in group 5
 * with its root port, a NIC in group 6), proc has an Intel CPU. */
static void setup(void) {
        snprintf(root, sizeof root, "%s/gpuswitch-test-doctor-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(root))
                abort();
        k = fake_kernel_new();
        if (symlink(k->root, at("/sys")) < 0)
                abort();
        put("/proc/cpuinfo", "processor\t: 0\nvendor_id\t: GenuineIntel\n");
        put("/proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet\n");
}

static void teardown(void) {
        fake_kernel_free(k);
        rm_rf(root);
}

#define CONF "/etc/gpuswitch/gpuswitch.conf"

/* What the daemon says over the bus about the standard GPU: its functions
 * and their host drivers (function 0's is host_driver when given). */
static GpuInfo *gpu_info_new(const char *host_driver) {
        GpuInfo *g = g_new0(GpuInfo, 1);
        static const char *const fns[][3] = {
                { "0000:01:00.0", "0x030000", "bochs-drm" },
                { "0000:01:00.1", "0x040300", "snd_hda_intel" },
                { "0000:01:00.2", "0x0c0330", "xhci_hcd" },
        };

        g->address = g_strdup("0000:01:00");
        g->mode = g_strdup("host");
        g->n_functions = G_N_ELEMENTS(fns);
        g->functions = g_new0(FunctionInfo, g->n_functions);
        for (size_t i = 0; i < g->n_functions; i++) {
                g->functions[i].address = g_strdup(fns[i][0]);
                g->functions[i].class_code = g_strdup(fns[i][1]);
                g->functions[i].driver = g_strdup(i == 0 && host_driver ? host_driver : fns[i][2]);
                g->functions[i].host_driver = g_strdup(i == 0 && host_driver ? host_driver : fns[i][2]);
        }
        return g;
}

/* The standard GPU as doctor reads it: sysfs below root, the daemon's host
 * drivers. */
static Gpu *gpu_new(const char *host_driver) {
        g_autoptr(GpuInfo) info = gpu_info_new(host_driver);
        Gpu *g = NULL;

        CHECK_INT(doctor_gpu_read(root, "0000:01:00", NULL, info, &g), 0);
        return g;
}

/* The config below root, parsed by doctor's config check. */
static Config *config_new(void) {
        g_autoptr(Check) c = NULL;
        Config *config = NULL;

        c = doctor_check_config(root, &config);
        CHECK_INT(c->verdict, VERDICT_OK);
        CHECK(config != NULL);
        return config;
}

static void test_iommu(void) {
        g_autoptr(Check) ok = NULL, off = NULL, firmware = NULL, amd = NULL;

        setup();
        ok = doctor_check_iommu(root);
        CHECK_INT(ok->verdict, VERDICT_OK);
        CHECK_STR(ok->id, "iommu");
        CHECK_CONTAINS(ok->detail, "2 IOMMU groups");
        CHECK(ok->fix == NULL);

        rm_rf(k->root);
        CHECK_INT(g_mkdir_with_parents(k->root, 0755), 0);   /* a sysfs without iommu_groups */
        off = doctor_check_iommu(root);
        CHECK_INT(off->verdict, VERDICT_FAIL);
        CHECK_CONTAINS(off->fix, "intel_iommu=on");
        CHECK_CONTAINS(off->fix, "VT-d");

        mkdir_at("/sys/kernel/iommu_groups");                 /* there, but empty */
        put("/proc/cmdline", "root=/dev/sda1 intel_iommu=on\n");
        firmware = doctor_check_iommu(root);
        CHECK_INT(firmware->verdict, VERDICT_FAIL);
        CHECK_CONTAINS(firmware->fix, "the kernel has intel_iommu=on: enable VT-d in the firmware");

        put("/proc/cpuinfo", "vendor_id\t: AuthenticAMD\n");
        amd = doctor_check_iommu(root);
        CHECK_INT(amd->verdict, VERDICT_FAIL);
        CHECK_CONTAINS(amd->fix, "amd_iommu=on");
        teardown();
}

static const char *find_depmod(void) {
        static const char *const paths[] = { "/usr/sbin/depmod", "/sbin/depmod", "/usr/bin/depmod" };

        for (size_t i = 0; i < G_N_ELEMENTS(paths); i++)
                if (access(paths[i], X_OK) == 0)
                        return paths[i];
        return NULL;
}

static bool depmod(void) {
        const char *argv[] = { find_depmod(), "-b", root, KVER, NULL };
        int status = -1;

        return g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                            NULL, NULL, NULL, NULL, &status, NULL) && status == 0;
}

static void test_vfio_pci(void) {
        const char *ko = "/lib/modules/" KVER "/kernel/drivers/vfio/pci/vfio-pci.ko";
        g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
        g_autofree char *image = NULL;
        size_t len = 0;

        setup();
        {
                g_autoptr(Check) c = doctor_check_vfio_pci(root, KVER);   /* no module tree at all */
                CHECK_INT(c->verdict, VERDICT_FAIL);
                CHECK_CONTAINS(c->detail, "no vfio-pci module for " KVER);
                CHECK_CONTAINS(c->fix, "linux-image-" KVER);
        }
        mkdir_at("/sys/module/vfio_pci");
        {
                g_autoptr(Check) c = doctor_check_vfio_pci(root, KVER);
                CHECK_INT(c->verdict, VERDICT_OK);
                CHECK_STR(c->detail, "loaded");
        }
        CHECK_INT(rmdir(at("/sys/module/vfio_pci")), 0);

        if (!find_depmod()) {
                fprintf(stderr, "depmod (package kmod) not found: the module tree cases are not run\n");
                teardown();
                return;
        }
        /* a module modules.dep names: found through libkmod */
        CHECK(g_file_get_contents(self, &image, &len, NULL));
        mkdir_at("/lib/modules/" KVER "/kernel/drivers/vfio/pci");
        CHECK(g_file_set_contents(at(ko), image, (gssize) len, NULL));
        CHECK(depmod());
        {
                g_autoptr(Check) c = doctor_check_vfio_pci(root, KVER);
                CHECK_INT(c->verdict, VERDICT_OK);
                CHECK_CONTAINS(c->detail, "gpuswitchd loads /lib/modules/" KVER "/kernel/drivers/vfio/pci/vfio-pci.ko");
        }
        /* named by modules.dep, but the file is gone */
        CHECK_INT(unlink(at(ko)), 0);
        {
                g_autoptr(Check) c = doctor_check_vfio_pci(root, KVER);
                CHECK_INT(c->verdict, VERDICT_FAIL);
                CHECK_CONTAINS(c->detail, "modules.dep names /lib/modules/" KVER "/kernel/drivers/vfio/pci/vfio-pci.ko, "
                               "which is missing");
                CHECK_CONTAINS(c->fix, "apt-get install --reinstall linux-image-" KVER);
        }
        /* built in: modules.builtin, no file */
        put("/lib/modules/" KVER "/modules.builtin", "kernel/drivers/vfio/pci/vfio-pci.ko\n");
        CHECK(depmod());
        {
                g_autoptr(Check) c = doctor_check_vfio_pci(root, KVER);
                CHECK_INT(c->verdict, VERDICT_OK);
                CHECK_CONTAINS(c->detail, "built into the kernel");
        }
        teardown();
}

/* Doctor's config check is the daemon's parser: a mistake is reported in
 * the daemon's own words, and what the daemon accepts doctor accepts. */
static void test_config(void) {
        setup();
        {
                _cleanup_(config_freep) Config *config = NULL;
                g_autoptr(Check) c = doctor_check_config(root, &config);

                CHECK_INT(c->verdict, VERDICT_OK);
                CHECK_STR(c->id, "config");
                CHECK_CONTAINS(c->detail, "the defaults (Gpus=auto)");
                CHECK(config && config->gpus_auto);
        }
        /* doctor passed AllowBootVga=on before; the daemon refuses to start on it */
        put(CONF, "[Gpu 0000:01:00]\nAllowBootVga=on\n");
        {
                _cleanup_(config_freep) Config *config = NULL, *daemon = NULL;
                g_autofree char *daemon_error = NULL;
                g_autoptr(Check) c = doctor_check_config(root, &config);

                CHECK(config_load(at(CONF), &daemon, &daemon_error) < 0);
                CHECK_INT(c->verdict, VERDICT_FAIL);
                CHECK(config == NULL);
                CHECK_STR(c->detail, daemon_error);
                CHECK_STR(c->detail, at(CONF ": [Gpu 0000:01:00]: AllowBootVga='on' is not a boolean (yes or no)"));
                CHECK_CONTAINS(c->fix, "gpuswitchd --check-config");
        }
        put(CONF, "[Daemon]\nGpus=0000:01:00\nStepTimeout=5\n");
        {
                _cleanup_(config_freep) Config *config = NULL;
                g_autoptr(Check) c = doctor_check_config(root, &config);

                CHECK_INT(c->verdict, VERDICT_FAIL);
                CHECK_STR(c->detail, at(CONF ": [Daemon]: unknown key 'StepTimeout'"));
        }
        put(CONF, "[Daemon]\nGpus=01:00\n\n[Gpu 01:00]\nAllowBootVga=yes\n");
        {
                _cleanup_(config_freep) Config *config = NULL;
                g_autoptr(Check) c = doctor_check_config(root, &config);

                CHECK_INT(c->verdict, VERDICT_OK);
                CHECK_CONTAINS(c->detail, "1 GPU in Gpus=, 1 [Gpu] section");
        }
        /* the daemon's rules that need sysfs: a bridge (the GPU's root port) is no companion */
        put(CONF, "[Daemon]\nGpus=01:00\n\n[Gpu 01:00]\nCompanions=0000:00:05.0\n");
        {
                _cleanup_(config_freep) Config *config = NULL;
                g_autoptr(Check) c = doctor_check_config(root, &config);

                CHECK_INT(c->verdict, VERDICT_FAIL);
                CHECK(config == NULL);
                CHECK_STR(c->detail, at(CONF ": [Gpu 0000:01:00]: Companions: 0000:00:05.0 is a bridge (class "
                                        "0x060400): bridges stay on their driver, which VFIO allows; name the "
                                        "devices below it"));
        }
        /* a companion with the GPU: its functions, its group check */
        put(CONF, "[Daemon]\nGpus=01:00\n\n[Gpu 01:00]\nCompanions=0000:03:00.0\n");
        fake_add_function(k, "0000:03:00.0", 0x0c0330, 0x1033, 0x0194, "xhci_hcd", 5, false);
        {
                _cleanup_(config_freep) Config *config = NULL;
                _cleanup_(gpu_freep) Gpu *gpu = NULL;
                g_autoptr(Check) c = doctor_check_config(root, &config);

                CHECK_INT(c->verdict, VERDICT_OK);
                CHECK_INT(doctor_gpu_read(root, "0000:01:00", config, NULL, &gpu), 0);
                CHECK_INT(gpu ? gpu->n_functions : 0, 4);
                if (gpu) {
                        g_autoptr(Check) g = doctor_check_group(root, gpu);
                        CHECK_INT(g->verdict, VERDICT_OK);
                }
        }
        /* unreadable for this user (the daemon reads it as root): not a mistake in it */
        if (geteuid() != 0) {
                _cleanup_(config_freep) Config *config = NULL;
                g_autoptr(Check) c = NULL;

                CHECK_INT(chmod(at(CONF), 0), 0);
                c = doctor_check_config(root, &config);
                CHECK_INT(c->verdict, VERDICT_SKIPPED);
                CHECK_CONTAINS(c->detail, "cannot be read here");
                CHECK(config == NULL);
        }
        teardown();
}

static void test_group(void) {
        setup();
        /* group 5: the GPU's functions and the root port (a bridge, on pcieport) */
        {
                _cleanup_(gpu_freep) Gpu *gpu = gpu_new(NULL);
                g_autoptr(Check) c = doctor_check_group(root, gpu);

                CHECK_INT(c->verdict, VERDICT_OK);
                CHECK_STR(c->title, "IOMMU group (0000:01:00)");
                CHECK_CONTAINS(c->detail, "viable: group 5");
        }
        /* unbound, or on vfio-pci: a VM may take them along */
        fake_add_driver(k, "vfio-pci");
        fake_add_function(k, "0000:03:00.0", 0x0c0330, 0x1b36, 0x000d, NULL, 5, false);
        fake_add_function(k, "0000:04:00.0", 0x020000, 0x8086, 0x10d3, "vfio-pci", 5, false);
        {
                _cleanup_(gpu_freep) Gpu *gpu = gpu_new(NULL);
                g_autoptr(Check) c = doctor_check_group(root, gpu);

                CHECK_INT(c->verdict, VERDICT_OK);
        }
        /* a NIC on its driver in the GPU's group: the daemon's GroupNotViable, word for word */
        fake_add_function(k, "0000:05:00.0", 0x020000, 0x8086, 0x10d3, "e1000e", 5, false);
        {
                _cleanup_(switch_error_done) SwitchError e = SWITCH_ERROR_INIT;
                _cleanup_(gpu_freep) Gpu *gpu = gpu_new(NULL);
                g_autoptr(Check) c = doctor_check_group(root, gpu);
                g_autofree char *daemon = NULL;

                CHECK_INT(iommu_group_check_viable(&k->sysfs, gpu, &e), -EXDEV);
                daemon = g_strconcat("not viable: ", e.message, NULL);
                CHECK_INT(c->verdict, VERDICT_FAIL);
                CHECK_STR(c->detail, daemon);
                CHECK_CONTAINS(c->detail, "IOMMU group 5 of 0000:01:00 also holds 0000:05:00.0, bound to e1000e");
                CHECK_CONTAINS(c->fix, "slot with an IOMMU group of its own");
        }
        /* a function in no group: no IOMMU */
        {
                g_autofree char *link = g_strdup_printf("%s/devices/pci0000:00/0000:01:00.1/iommu_group", k->root);
                _cleanup_(gpu_freep) Gpu *gpu = NULL;
                g_autoptr(Check) c = NULL;

                CHECK_INT(unlink(link), 0);
                gpu = gpu_new(NULL);
                c = doctor_check_group(root, gpu);
                CHECK_INT(c->verdict, VERDICT_FAIL);
                CHECK_CONTAINS(c->detail, "0000:01:00.1 is in no IOMMU group");
        }
        teardown();
}

static void test_boot_vga(void) {
        setup();
        fake_put_attr(k, "0000:01:00.0", "boot_vga", "0");
        {
                _cleanup_(config_freep) Config *config = config_new();
                _cleanup_(gpu_freep) Gpu *gpu = gpu_new(NULL);
                g_autoptr(Check) c = doctor_check_boot_vga(config, gpu);

                CHECK_INT(c->verdict, VERDICT_OK);
                CHECK_CONTAINS(c->detail, "not the boot VGA");
        }
        fake_put_attr(k, "0000:01:00.0", "boot_vga", "1");
        {
                _cleanup_(config_freep) Config *config = config_new();
                _cleanup_(gpu_freep) Gpu *gpu = gpu_new(NULL);
                g_autoptr(Check) c = doctor_check_boot_vga(config, gpu);

                CHECK_INT(c->verdict, VERDICT_WARNING);
                CHECK_CONTAINS(c->detail, "refuses");
                CHECK_CONTAINS(c->fix, "AllowBootVga=yes in [Gpu 0000:01:00]");
        }
        put(CONF, "[Daemon]\nGpus=0000:01:00\n\n[Gpu 0000:01:00]\nAllowBootVga=yes\n");
        {
                _cleanup_(config_freep) Config *config = config_new();
                _cleanup_(gpu_freep) Gpu *gpu = gpu_new(NULL);
                g_autoptr(Check) c = doctor_check_boot_vga(config, gpu);

                CHECK_INT(c->verdict, VERDICT_OK);
                CHECK_CONTAINS(c->detail, "AllowBootVga=yes");
        }
        /* the short section name the daemon accepts, and its booleans */
        put(CONF, "[Gpu 01:00]\nAllowBootVga=TRUE\n");
        {
                _cleanup_(config_freep) Config *config = config_new();
                _cleanup_(gpu_freep) Gpu *gpu = gpu_new(NULL);
                g_autoptr(Check) c = doctor_check_boot_vga(config, gpu);

                CHECK_INT(c->verdict, VERDICT_OK);
                CHECK_CONTAINS(c->detail, "AllowBootVga=yes lets it switch");
        }
        /* a config the daemon refuses: doctor does not guess what it means */
        {
                _cleanup_(gpu_freep) Gpu *gpu = gpu_new(NULL);
                g_autoptr(Check) c = doctor_check_boot_vga(NULL, gpu);

                CHECK_INT(c->verdict, VERDICT_SKIPPED);
                CHECK_CONTAINS(c->detail, "needs a config gpuswitchd accepts");
        }
        teardown();
}

static void test_nvidia(void) {
        setup();
        {
                _cleanup_(gpu_freep) Gpu *bochs = gpu_new(NULL);
                g_autoptr(Check) c = doctor_check_nvidia(root, bochs);

                CHECK_INT(c->verdict, VERDICT_SKIPPED);
                CHECK_CONTAINS(c->detail, "n/a: the host driver of 0000:01:00.0 is bochs-drm");
        }
        {
                _cleanup_(gpu_freep) Gpu *nv = gpu_new("nvidia");
                g_autoptr(Check) c = doctor_check_nvidia(root, nv);

                CHECK_INT(c->verdict, VERDICT_OK);
                CHECK_CONTAINS(c->detail, "not loaded");
        }
        mkdir_at("/sys/module/nvidia");
        put("/sys/module/nvidia_drm/parameters/modeset", "N\n");
        {
                _cleanup_(gpu_freep) Gpu *nv = gpu_new("nvidia");
                g_autoptr(Check) c = doctor_check_nvidia(root, nv);

                CHECK_INT(c->verdict, VERDICT_OK);
                CHECK_CONTAINS(c->detail, "modeset=0");
        }
        /* both values the daemon reads as on (nvidia.c): Y, and 1 */
        for (size_t i = 0; i < 2; i++) {
                _cleanup_(gpu_freep) Gpu *nv = gpu_new("nvidia");
                g_autoptr(Check) c = NULL;

                put("/sys/module/nvidia_drm/parameters/modeset", i == 0 ? "Y\n" : "1\n");
                c = doctor_check_nvidia(root, nv);
                CHECK(nvidia_drm_modeset(&k->sysfs));
                CHECK_INT(c->verdict, VERDICT_WARNING);
                CHECK_CONTAINS(c->detail, "modeset=1");
                CHECK_CONTAINS(c->fix, "options nvidia_drm modeset=0");
                CHECK_CONTAINS(c->fix, "update-initramfs -u");
        }
        put("/proc/cmdline", "root=/dev/sda1 nvidia-drm.modeset=1\n");
        {
                _cleanup_(gpu_freep) Gpu *nv = gpu_new("nvidia");
                g_autoptr(Check) c = doctor_check_nvidia(root, nv);

                CHECK_INT(c->verdict, VERDICT_WARNING);
                CHECK_CONTAINS(c->fix, "remove nvidia-drm.modeset=1 from the kernel command line");
        }
        teardown();
}

/* Without the daemon, doctor checks the GPUs the daemon would manage:
 * Gpus=auto's discovery (NVIDIA display controllers but the boot VGA
 * device), or the Gpus= list in any form the daemon accepts. */
static void test_find_gpus(void) {
        setup();
        fake_add_function(k, "0000:03:00.0", 0x030000, 0x10de, 0x1e84, "nvidia", 7, false);
        fake_add_function(k, "0000:03:00.1", 0x040300, 0x10de, 0x10f8, "snd_hda_intel", 7, false);
        fake_add_function(k, "0000:04:00.0", 0x030000, 0x10de, 0x1e84, "nvidia", 8, true);
        {
                _cleanup_(config_freep) Config *config = config_new();
                g_autoptr(GPtrArray) gpus = g_ptr_array_new_with_free_func((GDestroyNotify) gpu_free);
                const Gpu *g;

                CHECK_INT(doctor_find_gpus(root, config, gpus), 0);
                CHECK_INT(gpus->len, 1);
                g = gpus->pdata[0];
                CHECK_STR(g->address, "0000:03:00");
                CHECK_INT(g->n_functions, 2);
                CHECK_STR(g->functions[0].host_driver, "nvidia");
        }
        put(CONF, "[Daemon]\nGpus=01:00 0000:09:00\n\n[Gpu 01:00]\nHostDriver=nouveau\n");
        {
                _cleanup_(config_freep) Config *config = config_new();
                g_autoptr(GPtrArray) gpus = g_ptr_array_new_with_free_func((GDestroyNotify) gpu_free);
                const Gpu *g;

                /* 0000:09:00 is not there: the daemon leaves it out too */
                CHECK_INT(doctor_find_gpus(root, config, gpus), 0);
                CHECK_INT(gpus->len, 1);
                g = gpus->pdata[0];
                CHECK_STR(g->address, "0000:01:00");
                CHECK_STR(g->functions[0].host_driver, "nouveau");
                CHECK_STR(g->functions[1].host_driver, "snd_hda_intel");
        }
        teardown();
}

/* A DRM card in the fake /sys/class/drm, its device link naming device. */
static void drm_card(const char *name, const char *device) {
        g_autofree char *dir = g_strdup_printf("/sys/class/drm/%s", name);
        g_autofree char *link = g_strdup_printf("%s/device", dir);
        g_autofree char *target = g_strdup_printf("../../../devices/pci0000:00/%s", device);

        mkdir_at(dir);
        CHECK_INT(symlink(target, at(link)), 0);
}

/* The compositor checks of the standard GPU for one holder list. */
static GPtrArray *compositor_checks(const Config *config, const DoctorHolder *holders, size_t n, const char *reason) {
        GPtrArray *checks = g_ptr_array_new_with_free_func((GDestroyNotify) check_free);
        _cleanup_(gpu_freep) Gpu *gpu = gpu_new(NULL);

        doctor_check_compositors(root, config, gpu, &gpu, 1, holders, n, reason, checks);
        return checks;
}

/* The one check for a compositor holding card1: its fix */
static char *compositor_fix(const Config *config, const char *comm) {
        const DoctorHolder h[] = { { 300, (char *) comm, (char *) "/dev/dri/card1" } };
        g_autoptr(GPtrArray) checks = compositor_checks(config, h, 1, NULL);
        const Check *c = checks->pdata[0];

        CHECK_INT(checks->len, 1);
        CHECK_STR(c->id, "compositor");
        CHECK_INT(c->verdict, VERDICT_WARNING);
        CHECK_CONTAINS(c->detail, "PID 300) holds /dev/dri/card1 of 0000:01:00");
        return g_strdup(c->fix);
}

static void test_compositor(void) {
        setup();
        /* card0: another GPU; card1 and its connector: the managed one;
         * card2: a platform framebuffer; card10 last, not between 1 and 2 */
        drm_card("card0", "0000:00:02.0");
        drm_card("card1", "0000:01:00.0");
        drm_card("card1-DP-1", "0000:01:00.0");
        drm_card("renderD128", "0000:01:00.0");
        mkdir_at("/sys/class/drm/card2");
        CHECK_INT(symlink("../../../devices/platform/simple-framebuffer.0", at("/sys/class/drm/card2/device")), 0);
        drm_card("card10", "0000:05:00.0");
        {
                _cleanup_(gpu_freep) Gpu *gpu = gpu_new(NULL);
                g_autofree char *cards = doctor_other_cards(root, &gpu, 1), *all = doctor_other_cards(root, NULL, 0);

                CHECK_STR(cards, "/dev/dri/card0:/dev/dri/card2:/dev/dri/card10");
                CHECK_STR(all, "/dev/dri/card0:/dev/dri/card1:/dev/dri/card2:/dev/dri/card10");
        }
        {
                /* GNOME with two nodes: one line; a CUDA program is no compositor */
                const DoctorHolder h[] = {
                        { 100, (char *) "gnome-shell", (char *) "/dev/dri/card1" },
                        { 200, (char *) "cuda-app", (char *) "/dev/nvidia0" },
                        { 100, (char *) "gnome-shell", (char *) "/dev/dri/renderD128" },
                };
                g_autoptr(GPtrArray) checks = compositor_checks(NULL, h, G_N_ELEMENTS(h), NULL);
                const Check *c = checks->pdata[0];

                CHECK_INT(checks->len, 1);
                CHECK_INT(c->verdict, VERDICT_WARNING);
                CHECK_STR(c->detail, "GNOME Shell (gnome-shell, PID 100) holds /dev/dri/card1, /dev/dri/renderD128 "
                                     "of 0000:01:00: a switch to vfio would fail, or end it with --force");
                CHECK_CONTAINS(c->fix, "DesktopAccess=no in [Gpu 0000:01:00] of /etc/gpuswitch/gpuswitch.conf");
                CHECK_CONTAINS(c->fix, "mutter-device-ignore");
        }
        {
                /* two compositors: a line each */
                const DoctorHolder h[] = {
                        { 100, (char *) "gnome-shell", (char *) "/dev/dri/card1" },
                        { 101, (char *) "Xwayland", (char *) "/dev/dri/renderD128" },
                };
                g_autoptr(GPtrArray) checks = compositor_checks(NULL, h, G_N_ELEMENTS(h), NULL);

                CHECK_INT(checks->len, 2);
                CHECK_CONTAINS(((Check *) checks->pdata[1])->detail, "Xwayland (Xwayland, PID 101)");
                CHECK_CONTAINS(((Check *) checks->pdata[1])->fix, "egl-vendor");
        }
        {
                g_autofree char *mutter = compositor_fix(NULL, "mutter");
                g_autofree char *kwin = compositor_fix(NULL, "kwin_wayland");
                g_autofree char *sway = compositor_fix(NULL, "sway");
                g_autofree char *labwc = compositor_fix(NULL, "labwc");
                g_autofree char *river = compositor_fix(NULL, "river");
                g_autofree char *wayfire = compositor_fix(NULL, "wayfire");
                g_autofree char *cage = compositor_fix(NULL, "cage");
                g_autofree char *hypr = compositor_fix(NULL, "Hyprland");
                g_autofree char *xorg = compositor_fix(NULL, "Xorg");
                g_autofree char *kwin_x11 = compositor_fix(NULL, "kwin_x11");

                CHECK_CONTAINS(mutter, "DesktopAccess=no in [Gpu 0000:01:00]");
                CHECK_CONTAINS(kwin, "KWIN_DRM_DEVICES=/dev/dri/card0:/dev/dri/card2:/dev/dri/card10 ");
                CHECK(kwin && !strstr(kwin, "WLR_") && !strstr(kwin, "AQ_"));
                CHECK_CONTAINS(sway, "start sway with WLR_DRM_DEVICES=/dev/dri/card0:/dev/dri/card2:/dev/dri/card10 ");
                CHECK_CONTAINS(labwc, "WLR_DRM_DEVICES=/dev/dri/card0:");
                CHECK_CONTAINS(river, "WLR_DRM_DEVICES=/dev/dri/card0:");
                CHECK_CONTAINS(wayfire, "WLR_DRM_DEVICES=/dev/dri/card0:");
                CHECK_CONTAINS(cage, "WLR_DRM_DEVICES=/dev/dri/card0:");
                CHECK_CONTAINS(hypr, "start Hyprland with AQ_DRM_DEVICES=/dev/dri/card0:/dev/dri/card2:/dev/dri/card10 ");
                CHECK_CONTAINS(xorg, "Option \"AutoAddGPU\" \"false\"");
                CHECK_CONTAINS(kwin_x11, "AutoAddGPU");
        }
        /* DesktopAccess=no set already: GNOME opened the GPU before it */
        put(CONF, "[Daemon]\nGpus=0000:01:00\n[Gpu 0000:01:00]\nDesktopAccess=no\n");
        {
                _cleanup_(config_freep) Config *config = config_new();
                g_autofree char *fix = compositor_fix(config, "gnome-shell");

                CHECK_CONTAINS(fix, "DesktopAccess=no is set");
                CHECK_CONTAINS(fix, "log out and in again");
        }
        {
                /* no compositor among the holders, or none at all: ok */
                const DoctorHolder h[] = { { 200, (char *) "gnome-shell-cal", (char *) "/dev/dri/card1" } };
                g_autoptr(GPtrArray) some = compositor_checks(NULL, h, 1, NULL);
                g_autoptr(GPtrArray) none = compositor_checks(NULL, NULL, 0, NULL);
                g_autoptr(GPtrArray) unknown = compositor_checks(NULL, NULL, 0, "the daemon does not answer");

                CHECK_INT(some->len, 1);
                CHECK_INT(((Check *) some->pdata[0])->verdict, VERDICT_OK);
                CHECK_STR(((Check *) some->pdata[0])->detail, "no desktop compositor or X server holds 0000:01:00");
                CHECK_INT(none->len, 1);
                CHECK_INT(((Check *) none->pdata[0])->verdict, VERDICT_OK);
                CHECK_INT(unknown->len, 1);
                CHECK_INT(((Check *) unknown->pdata[0])->verdict, VERDICT_SKIPPED);
                CHECK_STR(((Check *) unknown->pdata[0])->detail, "the daemon does not answer");
        }
        /* no other card: nothing to name */
        rm_rf(at("/sys/class/drm"));
        {
                g_autofree char *kwin = compositor_fix(NULL, "kwin_wayland");

                CHECK_CONTAINS(kwin, "no other GPU has a DRM card here");
        }
        teardown();
}

static void test_egl_vendor(void) {
        setup();
        put("/usr/share/glvnd/egl_vendor.d/50_mesa.json", "{}");
        {
                g_autoptr(Check) c = doctor_check_egl_vendor(root);
                CHECK_INT(c->verdict, VERDICT_OK);
        }
        put("/etc/glvnd/egl_vendor.d/10_nvidia.json", "{}");
        {
                g_autoptr(Check) c = doctor_check_egl_vendor(root);
                CHECK_INT(c->verdict, VERDICT_WARNING);
                CHECK_CONTAINS(c->detail, "/etc/glvnd/egl_vendor.d/10_nvidia.json");
                CHECK_CONTAINS(c->fix, "__EGL_VENDOR_LIBRARY_FILENAMES=/usr/share/glvnd/egl_vendor.d/50_mesa.json");
        }
        CHECK_INT(unlink(at("/etc/glvnd/egl_vendor.d/10_nvidia.json")), 0);
        put("/usr/share/glvnd/egl_vendor.d/10_nvidia.json", "{}");
        {
                g_autoptr(Check) c = doctor_check_egl_vendor(root);
                CHECK_INT(c->verdict, VERDICT_WARNING);
                CHECK_CONTAINS(c->detail, "/usr/share/glvnd/egl_vendor.d/10_nvidia.json");
        }
        teardown();
}

static void test_flatpak(void) {
        setup();
        mkdir_at("/var/lib/flatpak/runtime/org.freedesktop.Platform");
        mkdir_at("/var/lib/flatpak/runtime/org.freedesktop.Platform.GL.default");
        {
                g_autoptr(Check) c = doctor_check_flatpak(root, "/home/alice");
                CHECK_INT(c->verdict, VERDICT_OK);
        }
        mkdir_at("/home/alice/.local/share/flatpak/runtime/org.freedesktop.Platform.GL.nvidia-535-113-01");
        {
                g_autoptr(Check) c = doctor_check_flatpak(root, "/home/alice");
                CHECK_INT(c->verdict, VERDICT_WARNING);
                CHECK_CONTAINS(c->detail, "org.freedesktop.Platform.GL.nvidia-535-113-01 is installed for this user");
                CHECK_CONTAINS(c->fix, "flatpak mask --user 'org.freedesktop.Platform.GL.nvidia*'");
        }
        mkdir_at("/var/lib/flatpak/runtime/org.freedesktop.Platform.GL32.nvidia-535-113-01");
        {
                g_autoptr(Check) c = doctor_check_flatpak(root, NULL);
                CHECK_INT(c->verdict, VERDICT_WARNING);
                CHECK_CONTAINS(c->fix, "flatpak uninstall org.freedesktop.Platform.GL32.nvidia-535-113-01 && "
                               "flatpak mask 'org.freedesktop.Platform.GL.nvidia*'");
        }
        teardown();
}

static void test_services(void) {
        const char *none[] = { "", "inactive", NULL };
        const char *running[] = { "active", "", NULL };

        setup();
        _cleanup_(gpu_freep) Gpu *nv = gpu_new("nvidia");
        _cleanup_(gpu_freep) Gpu *bochs = gpu_new(NULL);
        Gpu *gpus[] = { nv }, *other[] = { bochs };
        _cleanup_(config_freep) Config *defaults = config_new();
        {
                g_autoptr(Check) c = doctor_check_services(defaults, NULL, "systemd is not on the bus", gpus, 1);
                CHECK_INT(c->verdict, VERDICT_SKIPPED);
                CHECK_STR(c->detail, "systemd is not on the bus");
        }
        {
                g_autoptr(Check) c = doctor_check_services(defaults, none, NULL, gpus, 1);
                CHECK_INT(c->verdict, VERDICT_OK);
                CHECK_CONTAINS(c->detail, "not running");
        }
        {
                g_autoptr(Check) c = doctor_check_services(defaults, running, NULL, gpus, 1);
                CHECK_INT(c->verdict, VERDICT_OK);
                CHECK_CONTAINS(c->detail, "nvidia-persistenced.service running; gpuswitchd stops them");
        }
        {
                g_autoptr(Check) c = doctor_check_services(defaults, running, NULL, NULL, 0);
                CHECK_INT(c->verdict, VERDICT_OK);
        }
        {
                g_autoptr(Check) c = doctor_check_services(defaults, running, NULL, other, 1);
                CHECK_INT(c->verdict, VERDICT_OK);
                CHECK_CONTAINS(c->detail, "no managed GPU is on nvidia");
        }
        /* StopServices= in the short section name the daemon accepts */
        put(CONF, "[Gpu 01:00]\nStopServices=cuda-server.service\n");
        {
                _cleanup_(config_freep) Config *config = config_new();
                g_autoptr(Check) c = doctor_check_services(config, running, NULL, gpus, 1);
                CHECK_INT(c->verdict, VERDICT_WARNING);
                CHECK_CONTAINS(c->fix, "add nvidia-persistenced.service to StopServices= in [Gpu 0000:01:00]");
        }
        put(CONF, "[Gpu 0000:01:00]\nStopServices=cuda-server.service nvidia-persistenced.service\n");
        {
                _cleanup_(config_freep) Config *config = config_new();
                g_autoptr(Check) c = doctor_check_services(config, running, NULL, gpus, 1);
                CHECK_INT(c->verdict, VERDICT_OK);
        }
        teardown();
}

static void test_daemon_and_authorization(void) {
        g_autoptr(Check) up = doctor_check_daemon("0.3", NULL, NULL);
        g_autoptr(Check) down = doctor_check_daemon(NULL, "org.freedesktop.DBus.Error.ServiceUnknown",
                                                     "The name " GPUSWITCH_BUS_NAME " was not provided by any .service files");
        g_autoptr(Check) nobus = doctor_check_daemon(NULL, NULL, "No such file or directory");
        g_autoptr(Check) root_ok = doctor_check_authorization(AUTH_ROOT, "root", NULL);
        g_autoptr(Check) yes = doctor_check_authorization(AUTH_YES, "alice", NULL);
        g_autoptr(Check) challenge = doctor_check_authorization(AUTH_CHALLENGE, "alice", NULL);
        g_autoptr(Check) no = doctor_check_authorization(AUTH_NO, "alice", NULL);
        g_autoptr(Check) nopolkit = doctor_check_authorization(AUTH_UNKNOWN, "alice", "ServiceUnknown");

        CHECK_INT(up->verdict, VERDICT_OK);
        CHECK_CONTAINS(up->detail, "version 0.3");
        CHECK_INT(down->verdict, VERDICT_FAIL);
        CHECK_CONTAINS(down->detail, "not provided by any .service files");
        CHECK_CONTAINS(down->fix, "systemctl status gpuswitchd");
        CHECK_CONTAINS(down->fix, GPUSWITCH_BUS_NAME ".service");
        CHECK_INT(nobus->verdict, VERDICT_FAIL);
        CHECK_CONTAINS(nobus->fix, "systemctl start dbus");

        CHECK_INT(root_ok->verdict, VERDICT_OK);
        CHECK_CONTAINS(root_ok->detail, "root");
        CHECK_INT(yes->verdict, VERDICT_OK);
        CHECK_CONTAINS(yes->detail, "yes");
        CHECK(yes->fix == NULL);
        CHECK_INT(challenge->verdict, VERDICT_WARNING);
        CHECK_CONTAINS(challenge->detail, "after authentication");
        CHECK_CONTAINS(challenge->fix, "/usr/share/doc/gpuswitch/examples/50-gpuswitch-group.rules");
        CHECK_CONTAINS(challenge->fix, "usermod -aG gpuswitch alice");
        CHECK_INT(no->verdict, VERDICT_FAIL);
        CHECK_CONTAINS(no->detail, "no:");
        CHECK_CONTAINS(no->fix, "usermod -aG gpuswitch alice");
        CHECK_INT(nopolkit->verdict, VERDICT_FAIL);
        CHECK_CONTAINS(nopolkit->fix, "polkit");
}

/* The human list and the JSON of three checks. */
static void test_output(void) {
        g_autoptr(GPtrArray) checks = g_ptr_array_new_with_free_func((GDestroyNotify) check_free);
        g_autoptr(JsonOut) out = json_out_new();
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autofree char *text = NULL;
        JsonObject *o, *first, *second;
        JsonArray *a;
        char buf[4096] = "";
        FILE *f = fmemopen(buf, sizeof buf, "w");

        g_ptr_array_add(checks, doctor_check_daemon("0.3", NULL, NULL));
        g_ptr_array_add(checks, doctor_check_authorization(AUTH_NO, "alice", NULL));
        g_ptr_array_add(checks, doctor_check_authorization(AUTH_CHALLENGE, "bob", NULL));
        g_ptr_array_add(checks, doctor_check_skipped("boot-vga", "Boot VGA", "needs the daemon"));
        doctor_print(checks, f);
        fclose(f);
        /* not a terminal: no colour; titles aligned; the fix on its own line */
        CHECK(!strchr(buf, '\033'));
        CHECK_CONTAINS(buf, "ok    gpuswitchd     reachable");
        CHECK_CONTAINS(buf, "FAIL  Authorization  no: polkit does not let alice switch GPUs\n      fix: cp ");
        CHECK_CONTAINS(buf, "warn  Authorization  after authentication");
        CHECK_CONTAINS(buf, "skip  Boot VGA       needs the daemon\n");
        CHECK_CONTAINS(buf, "\n1 warning, 1 failure, 1 skipped\n");

        doctor_to_json(checks, out);
        text = json_out_to_string(out, true);
        CHECK(json_parser_load_from_data(parser, text, -1, NULL));
        o = json_node_get_object(json_parser_get_root(parser));
        CHECK_INT(json_object_get_int_member(o, "failures"), 1);
        CHECK_INT(json_object_get_int_member(o, "warnings"), 1);
        a = json_object_get_array_member(o, "checks");
        CHECK_INT(json_array_get_length(a), 4);
        first = json_array_get_object_element(a, 0);
        second = json_array_get_object_element(a, 1);
        CHECK_STR(json_object_get_string_member(first, "id"), "daemon");
        CHECK_STR(json_object_get_string_member(first, "verdict"), "ok");
        CHECK(json_node_is_null(json_object_get_member(first, "fix")));
        CHECK_STR(json_object_get_string_member(second, "id"), "authorization");
        CHECK_STR(json_object_get_string_member(second, "verdict"), "fail");
        CHECK_CONTAINS(json_object_get_string_member(second, "fix"), "usermod -aG gpuswitch alice");
        CHECK_STR(json_object_get_string_member(json_array_get_object_element(a, 3), "verdict"), "skipped");
}

int main(void) {
        test_iommu();
        test_vfio_pci();
        test_config();
        test_group();
        test_boot_vga();
        test_nvidia();
        test_find_gpus();
        test_compositor();
        test_egl_vendor();
        test_flatpak();
        test_services();
        test_daemon_and_authorization();
        test_output();
        TEST_MAIN_END();
}
