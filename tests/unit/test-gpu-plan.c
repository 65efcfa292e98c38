/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading a GPU from sysfs, its mode, and planning a switch. */
#include "errors.h"
#include "fake-sysfs.h"
#include "gpu.h"
#include "nvidia.h"
#include "pci-name.h"
#include "plan.h"
#include "testlib.h"
#include "util.h"

static Gpu *read_gpu(FakeKernel *k) {
        PciAddress slot;
        Gpu *g = NULL;

        CHECK_INT(pci_address_parse("0000:01:00", &slot), 0);
        CHECK_INT(gpu_read(&k->sysfs, &slot, NULL, 0, &g), 0);
        if (!g)
                abort();
        /* the daemon remembers each function's host driver */
        for (size_t i = 0; i < g->n_functions; i++)
                if (g->functions[i].driver && !g->functions[i].host_driver)
                        g->functions[i].host_driver = strdup(g->functions[i].driver);
        return g;
}

static void test_read(void) {
        FakeKernel *k = fake_kernel_new();
        _cleanup_(gpu_freep) Gpu *g = read_gpu(k);
        _cleanup_(gpu_freep) Gpu *c = NULL;
        unsigned groups[4];
        PciAddress none;

        CHECK_STR(g->address, "0000:01:00");
        CHECK_INT(g->n_functions, 3);
        CHECK_STR(g->functions[0].address, "0000:01:00.0");
        CHECK_STR(g->functions[1].address, "0000:01:00.1");
        CHECK_STR(g->functions[2].address, "0000:01:00.2");
        CHECK_INT(g->functions[0].class, 0x030000);
        CHECK_INT(g->functions[0].vendor, 0x1234);
        CHECK_INT(g->functions[0].device, 0x1111);
        CHECK_STR(g->functions[0].driver, "bochs-drm");
        CHECK_STR(g->functions[1].driver, "snd_hda_intel");
        CHECK_STR(g->functions[2].driver, "xhci_hcd");
        CHECK(g->functions[0].driver_override == NULL);
        CHECK_INT(g->functions[0].iommu_group, 5);
        CHECK(!g->functions[0].boot_vga);
        CHECK(pci_function_is_display(&g->functions[0]));
        CHECK(!pci_function_is_display(&g->functions[1]));
        CHECK_INT(gpu_iommu_groups(g, groups, ELEMENTSOF(groups)), 1);
        CHECK_INT(groups[0], 5);
        CHECK_INT(gpu_derive_state(g), GPU_STATE_HOST);

        CHECK_INT(gpu_copy(g, &c), 0);
        CHECK(c->functions != g->functions);
        CHECK(c->functions[0].driver != g->functions[0].driver);
        CHECK_STR(c->functions[0].driver, "bochs-drm");
        CHECK_STR(c->functions[2].host_driver, "xhci_hcd");

        CHECK_INT(pci_address_parse("0000:07:00", &none), 0);
        {
                Gpu *n = NULL;
                CHECK_INT(gpu_read(&k->sysfs, &none, NULL, 0, &n), -ENODEV);
                CHECK(n == NULL);
        }
        fake_kernel_free(k);
}

static void test_modes(void) {
        FakeKernel *k = fake_kernel_new();
        _cleanup_(gpu_freep) Gpu *g = read_gpu(k);

        CHECK_INT(gpu_derive_state(g), GPU_STATE_HOST);
        free(g->functions[2].driver);
        g->functions[2].driver = strdup("vfio-pci");
        CHECK_INT(gpu_derive_state(g), GPU_STATE_MIXED);
        for (size_t i = 0; i < 3; i++) {
                free(g->functions[i].driver);
                g->functions[i].driver = strdup("vfio-pci");
        }
        CHECK_INT(gpu_derive_state(g), GPU_STATE_VFIO);
        /* back on the host, one function unbound that has a host driver: mixed */
        for (size_t i = 0; i < 3; i++) {
                free(g->functions[i].driver);
                g->functions[i].driver = strdup(g->functions[i].host_driver);
        }
        free(g->functions[1].driver);
        g->functions[1].driver = NULL;
        CHECK_INT(gpu_derive_state(g), GPU_STATE_MIXED);
        /* ...but a function no driver claims is neither */
        free(g->functions[1].host_driver);
        g->functions[1].host_driver = NULL;
        CHECK_INT(gpu_derive_state(g), GPU_STATE_HOST);
        /* unless a switch left its driver_override behind */
        g->functions[1].driver_override = strdup("vfio-pci");
        CHECK_INT(gpu_derive_state(g), GPU_STATE_MIXED);

        fake_kernel_free(k);
}

static void test_plan(void) {
        FakeKernel *k = fake_kernel_new();
        _cleanup_(gpu_freep) Gpu *g = read_gpu(k);
        PlanPolicy policy = {};
        Plan *p = NULL;
        SwitchError e = SWITCH_ERROR_INIT;

        CHECK_INT(plan_make(&k->sysfs, g, SWITCH_TARGET_VFIO, &policy, &p, &e), 0);
        CHECK_INT(p->n_steps, 3);
        /* to vfio-pci the highest function first */
        CHECK_STR(p->steps[0].function->address, "0000:01:00.2");
        CHECK_STR(p->steps[1].function->address, "0000:01:00.1");
        CHECK_STR(p->steps[2].function->address, "0000:01:00.0");
        for (size_t i = 0; i < 3; i++) {
                CHECK_INT(p->steps[i].action, PLAN_MOVE);
                CHECK_STR(p->steps[i].to, "vfio-pci");
        }
        CHECK_STR(p->steps[0].from, "xhci_hcd");
        CHECK(!plan_is_noop(p));
        plan_free(p);
        p = NULL;

        /* host from host: nothing to do */
        CHECK_INT(plan_make(&k->sysfs, g, SWITCH_TARGET_HOST, &policy, &p, &e), 0);
        CHECK(plan_is_noop(p));
        CHECK_STR(p->steps[0].function->address, "0000:01:00.0");
        CHECK_STR(p->steps[0].to, "bochs-drm");
        plan_free(p);
        p = NULL;

        /* host from vfio: function 0 first, each to its host driver */
        for (size_t i = 0; i < 3; i++) {
                free(g->functions[i].driver);
                g->functions[i].driver = strdup("vfio-pci");
                g->functions[i].driver_override = strdup("vfio-pci");
        }
        CHECK_INT(plan_make(&k->sysfs, g, SWITCH_TARGET_HOST, &policy, &p, &e), 0);
        CHECK_STR(p->steps[0].function->address, "0000:01:00.0");
        CHECK_STR(p->steps[0].to, "bochs-drm");
        CHECK_STR(p->steps[1].to, "snd_hda_intel");
        CHECK_STR(p->steps[2].to, "xhci_hcd");
        CHECK_INT(p->steps[2].action, PLAN_MOVE);
        plan_free(p);
        p = NULL;
        CHECK_INT(plan_make(&k->sysfs, g, SWITCH_TARGET_VFIO, &policy, &p, &e), 0);
        CHECK(plan_is_noop(p));
        plan_free(p);
        p = NULL;

        /* a host driver with a leftover driver_override: cleared */
        for (size_t i = 0; i < 3; i++) {
                free(g->functions[i].driver);
                g->functions[i].driver = strdup(g->functions[i].host_driver);
        }
        CHECK_INT(plan_make(&k->sysfs, g, SWITCH_TARGET_HOST, &policy, &p, &e), 0);
        CHECK(!plan_is_noop(p));
        plan_free(p);
        p = NULL;

        CHECK_INT(plan_make(&k->sysfs, g, (SwitchTarget) 5, &policy, &p, &e), -EINVAL);
        CHECK_INT(e.kind, SWITCH_ERROR_INVALID);
        CHECK(p == NULL);
        switch_error_done(&e);
        fake_kernel_free(k);
}

static void test_refusals(void) {
        FakeKernel *k = fake_kernel_new();
        PlanPolicy policy = {};
        SwitchError e = SWITCH_ERROR_INIT;
        Plan *p = NULL;

        /* the boot VGA device */
        fake_put_attr(k, "0000:01:00.0", "boot_vga", "1\n");
        {
                _cleanup_(gpu_freep) Gpu *g = read_gpu(k);

                CHECK(gpu_is_boot_vga(g));
                CHECK_INT(plan_make(&k->sysfs, g, SWITCH_TARGET_VFIO, &policy, &p, &e), -EPERM);
                CHECK_INT(e.kind, SWITCH_ERROR_REFUSED);
                CHECK_CONTAINS(e.message, "boot VGA");
                CHECK_CONTAINS(e.message, "AllowBootVga");
                switch_error_done(&e);
                policy.allow_boot_vga = true;
                CHECK_INT(plan_make(&k->sysfs, g, SWITCH_TARGET_VFIO, &policy, &p, &e), 0);
                plan_free(p);
                p = NULL;
                /* going back to the host is never refused */
                policy.allow_boot_vga = false;
                CHECK_INT(plan_make(&k->sysfs, g, SWITCH_TARGET_HOST, &policy, &p, &e), 0);
                plan_free(p);
                p = NULL;
        }
        fake_put_attr(k, "0000:01:00.0", "boot_vga", "0\n");

        /* a NIC on e1000e in the GPU's IOMMU group: not viable */
        fake_set_group(k, "0000:02:00.0", 5);
        {
                _cleanup_(gpu_freep) Gpu *g = read_gpu(k);

                CHECK_INT(plan_make(&k->sysfs, g, SWITCH_TARGET_VFIO, &policy, &p, &e), -EXDEV);
                CHECK_INT(e.kind, SWITCH_ERROR_GROUP_NOT_VIABLE);
                CHECK_CONTAINS(e.message, "0000:02:00.0");
                CHECK_CONTAINS(e.message, "e1000e");
                CHECK_CONTAINS(e.message, "IOMMU group 5");
                switch_error_done(&e);
                CHECK_INT(iommu_group_check_viable(&k->sysfs, g, &e), -EXDEV);
                switch_error_done(&e);
        }
        /* the same NIC unbound, or on vfio-pci: viable (the bridge always is) */
        {
                char p2[512];
                snprintf(p2, sizeof p2, "%s/bus/pci/drivers/e1000e/unbind", k->root);
                CHECK_INT(k->sysfs.write(&k->sysfs, p2, "0000:02:00.0"), 0);
        }
        {
                _cleanup_(gpu_freep) Gpu *g = read_gpu(k);

                CHECK_INT(iommu_group_check_viable(&k->sysfs, g, &e), 0);
                CHECK(!switch_error_is_set(&e));
        }
        fake_kernel_free(k);
}

static void test_nvidia_modeset(void) {
        FakeKernel *k = fake_kernel_new();
        _cleanup_(gpu_freep) Gpu *g = read_gpu(k);
        char cmd[1024];

        /* not on nvidia: nothing to say, whatever nvidia_drm does */
        CHECK_STR(nvidia_modeset_note(&k->sysfs, g), "");
        free(g->functions[0].driver);
        g->functions[0].driver = strdup("nvidia");
        CHECK_STR(nvidia_modeset_note(&k->sysfs, g), "");     /* nvidia_drm not loaded */
        snprintf(cmd, sizeof cmd, "mkdir -p %s/module/nvidia_drm/parameters && echo N > "
                 "%s/module/nvidia_drm/parameters/modeset", k->root, k->root);
        CHECK_INT(system(cmd), 0);
        CHECK_STR(nvidia_modeset_note(&k->sysfs, g), "");
        snprintf(cmd, sizeof cmd, "echo Y > %s/module/nvidia_drm/parameters/modeset", k->root);
        CHECK_INT(system(cmd), 0);
        CHECK_CONTAINS(nvidia_modeset_note(&k->sysfs, g), "modeset=1");
        CHECK_CONTAINS(nvidia_modeset_note(&k->sysfs, g), "options nvidia-drm modeset=0");
        fake_kernel_free(k);
}

static void test_pci_ids(void) {
        char path[] = "/tmp/gpuswitch-pci-ids-XXXXXX";
        int fd = mkstemp(path);
        FILE *f = fdopen(fd, "w");
        char *n;

        fputs("# comment\n"
              "10de  NVIDIA Corporation\n"
              "\t1e84  TU104 [GeForce RTX 2070 SUPER]\n"
              "\t\t1043 8707  subsystem line\n"
              "\t10f8  TU104 HD Audio Controller\n"
              "1234  Technical Corp.\n"
              "\t1111  QEMU Virtual Video Controller\n", f);
        fclose(f);
        n = pci_ids_lookup(path, 0x10de, 0x1e84);
        CHECK_STR(n, "NVIDIA Corporation TU104 [GeForce RTX 2070 SUPER]");
        free(n);
        n = pci_ids_lookup(path, 0x1234, 0x1111);
        CHECK_STR(n, "Technical Corp. QEMU Virtual Video Controller");
        free(n);
        CHECK(pci_ids_lookup(path, 0x10de, 0x8707) == NULL);    /* a subsystem, not a device */
        CHECK(pci_ids_lookup(path, 0x10de, 0x1111) == NULL);    /* another vendor's device */
        CHECK(pci_ids_lookup(path, 0x1002, 0x1111) == NULL);
        CHECK(pci_ids_lookup("/nonexistent", 0x10de, 0x1e84) == NULL);
        unlink(path);
}

int main(void) {
        test_pci_ids();
        test_nvidia_modeset();
        test_read();
        test_modes();
        test_plan();
        test_refusals();
        TEST_MAIN_END();
}
