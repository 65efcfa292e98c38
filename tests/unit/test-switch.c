/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The switch and its rollback, against the simulated kernel of fake-sysfs.c:
 * a failure injected at every write of a switch leaves every function as it
 * was. */
#include "errors.h"
#include "fake-sysfs.h"
#include "gpu.h"
#include "plan.h"
#include "services.h"
#include "switch-record.h"
#include "switch.h"
#include "testlib.h"
#include "util.h"

#define HOST_STATE "bochs-drm[(null)] snd_hda_intel[(null)] xhci_hcd[(null)]"
#define VFIO_STATE "vfio-pci[vfio-pci] vfio-pci[vfio-pci] vfio-pci[vfio-pci]"

static const char *const host_drivers[] = { "bochs-drm", "snd_hda_intel", "xhci_hcd" };

/* Plans and runs a switch as the daemon's job does. */
static int do_switch(FakeKernel *k, SwitchTarget target, SwitchError *e) {
        PciAddress slot;
        _cleanup_(gpu_freep) Gpu *g = NULL;
        _cleanup_(plan_freep) Plan *p = NULL;
        PlanPolicy policy = {};
        int r;

        CHECK_INT(pci_address_parse("0000:01:00", &slot), 0);
        r = gpu_read(&k->sysfs, &slot, NULL, 0, &g);
        if (r < 0)
                return r;
        for (size_t i = 0; i < g->n_functions && i < 3; i++)
                g->functions[i].host_driver = strdup(host_drivers[i]);
        r = plan_make(&k->sysfs, g, target, &policy, &p, e);
        if (r < 0)
                return r;
        return switch_run(&k->sysfs, g, p, e);
}

static void test_round_trip(void) {
        FakeKernel *k = fake_kernel_new();
        SwitchError e = SWITCH_ERROR_INIT;

        CHECK_STR(fake_state(k), HOST_STATE);
        CHECK_INT(do_switch(k, SWITCH_TARGET_VFIO, &e), 0);
        CHECK_STR(fake_state(k), VFIO_STATE);
        CHECK_INT(k->n_loads, 1);               /* vfio-pci was loaded */
        CHECK_STR(fake_driver(k, "0000:02:00.0"), "e1000e");
        CHECK_STR(fake_driver(k, "0000:00:05.0"), "pcieport");

        /* the kernel sequence for the first function, in order */
        CHECK_INT(k->n_log >= 3, 1);
        CHECK_STR(k->log[0], "bus/pci/devices/0000:01:00.2/driver_override vfio-pci");
        CHECK_STR(k->log[1], "bus/pci/drivers/xhci_hcd/unbind 0000:01:00.2");
        CHECK_STR(k->log[2], "bus/pci/drivers_probe 0000:01:00.2");
        CHECK_STR(k->log[3], "bus/pci/devices/0000:01:00.1/driver_override vfio-pci");
        CHECK_INT(k->n_log, 9);

        /* again: nothing to do, nothing written */
        k->n_log = 0;
        CHECK_INT(do_switch(k, SWITCH_TARGET_VFIO, &e), 0);
        CHECK_INT(k->n_log, 0);

        CHECK_INT(do_switch(k, SWITCH_TARGET_HOST, &e), 0);
        CHECK_STR(fake_state(k), HOST_STATE);
        /* back: override cleared with a newline first, function 0 first */
        CHECK_STR(k->log[0], "bus/pci/devices/0000:01:00.0/driver_override \n");
        CHECK_STR(k->log[1], "bus/pci/drivers/vfio-pci/unbind 0000:01:00.0");
        CHECK_STR(k->log[2], "bus/pci/drivers_probe 0000:01:00.0");
        CHECK(!switch_error_is_set(&e));
        fake_kernel_free(k);
}

static void test_load_failure(void) {
        FakeKernel *k = fake_kernel_new();
        SwitchError e = SWITCH_ERROR_INIT;

        k->load_fails = true;
        CHECK_INT(do_switch(k, SWITCH_TARGET_VFIO, &e), -ENOENT);
        CHECK_INT(e.kind, SWITCH_ERROR_FAILED);
        CHECK_CONTAINS(e.message, "vfio-pci");
        CHECK_CONTAINS(e.message, "nothing was changed");
        CHECK_STR(fake_state(k), HOST_STATE);
        CHECK_INT(k->n_writes, 0);
        switch_error_done(&e);
        fake_kernel_free(k);
}

/* Every write of a switch in turn fails: the error says rolled back and the
 * tree is as before.  start: the state to begin from. */
static void test_every_failure(SwitchTarget from, SwitchTarget to, const char *from_state) {
        int writes_in_clean_run;

        {
                FakeKernel *k = fake_kernel_new();
                SwitchError e = SWITCH_ERROR_INIT;

                if (from == SWITCH_TARGET_VFIO)
                        CHECK_INT(do_switch(k, SWITCH_TARGET_VFIO, &e), 0);
                k->n_writes = 0;
                CHECK_INT(do_switch(k, to, &e), 0);
                writes_in_clean_run = k->n_writes;
                fake_kernel_free(k);
        }
        CHECK_INT(writes_in_clean_run, 9);

        for (int n = 1; n <= writes_in_clean_run; n++) {
                FakeKernel *k = fake_kernel_new();
                SwitchError e = SWITCH_ERROR_INIT;
                int r;

                if (from == SWITCH_TARGET_VFIO)
                        CHECK_INT(do_switch(k, SWITCH_TARGET_VFIO, &e), 0);
                CHECK_STR(fake_state(k), from_state);
                k->n_writes = 0;
                k->fail_write = n;
                r = do_switch(k, to, &e);
                if (r != -EIO || e.kind != SWITCH_ERROR_FAILED) {
                        fprintf(stderr, "write %d: r=%d %s\n", n, r, switch_error_kind_to_string(e.kind));
                        test_failures++;
                }
                CHECK_CONTAINS(e.message, "rolled back");
                if (strcmp(fake_state(k), from_state) != 0) {
                        fprintf(stderr, "%s -> %s, write %d failed: left %s\n", switch_target_to_string(from),
                                switch_target_to_string(to), n, fake_state(k));
                        test_failures++;
                }
                CHECK_STR(fake_driver(k, "0000:02:00.0"), "e1000e");
                switch_error_done(&e);
                fake_kernel_free(k);
        }
}

static void test_probe_binds_nothing(void) {
        FakeKernel *k = fake_kernel_new();
        SwitchError e = SWITCH_ERROR_INIT;

        /* vfio-pci's probe fails on function 1 */
        fake_add_driver(k, "vfio-pci");
        snprintf(k->refuse_driver, sizeof k->refuse_driver, "vfio-pci");
        snprintf(k->refuse_device, sizeof k->refuse_device, "0000:01:00.1");
        CHECK_INT(do_switch(k, SWITCH_TARGET_VFIO, &e), -EIO);
        CHECK_INT(e.kind, SWITCH_ERROR_FAILED);
        CHECK_CONTAINS(e.message, "0000:01:00.1");
        CHECK_CONTAINS(e.message, "rolled back");
        CHECK_STR(fake_state(k), HOST_STATE);
        switch_error_done(&e);
        fake_kernel_free(k);
}

static void test_rollback_incomplete(void) {
        FakeKernel *k = fake_kernel_new();
        SwitchError e = SWITCH_ERROR_INIT;

        /* function 2 moves, function 1 fails, and xhci_hcd will not take
         * function 2 back */
        fake_add_driver(k, "vfio-pci");
        k->fail_write = 5;      /* function 1's unbind */
        snprintf(k->refuse_driver, sizeof k->refuse_driver, "xhci_hcd");
        CHECK_INT(do_switch(k, SWITCH_TARGET_VFIO, &e), -EIO);
        CHECK_INT(e.kind, SWITCH_ERROR_FAILED);
        CHECK_CONTAINS(e.message, "rollback incomplete");
        CHECK_CONTAINS(e.message, "0000:01:00.2");
        CHECK_CONTAINS(e.message, "mixed");
        CHECK_STR(fake_driver(k, "0000:01:00.1"), "snd_hda_intel");
        CHECK_STR(fake_driver(k, "0000:01:00.0"), "bochs-drm");
        switch_error_done(&e);
        fake_kernel_free(k);
}

static void test_fail_at_hook(void) {
        FakeKernel *k = fake_kernel_new();
        SwitchError e = SWITCH_ERROR_INIT;

        k->sysfs.fail_at = strdup("0000:01:00.0/probe");
        CHECK_INT(do_switch(k, SWITCH_TARGET_VFIO, &e), -EIO);
        CHECK_CONTAINS(e.message, "0000:01:00.0 (drivers_probe)");
        CHECK_CONTAINS(e.message, "rolled back");
        CHECK_STR(fake_state(k), HOST_STATE);
        free(k->sysfs.fail_at);
        switch_error_done(&e);
        fake_kernel_free(k);
}

/* A driver name that is not a plain name never becomes a path: the sysfs
 * layer refuses it before any write, from a caller or from a driver link. */
static void test_driver_names_are_plain(void) {
        FakeKernel *k = fake_kernel_new();
        char link[512], *driver = NULL;

        CHECK_INT(sysfs_unbind(&k->sysfs, "0000:01:00.0", "../../../x"), -EINVAL);
        CHECK_INT(sysfs_unbind(&k->sysfs, "0000:01:00.0", ".."), -EINVAL);
        CHECK_INT(sysfs_bind(&k->sysfs, "0000:01:00.0", "a/b"), -EINVAL);
        CHECK_INT(sysfs_set_driver_override(&k->sysfs, "0000:01:00.0", "../vfio-pci"), -EINVAL);
        CHECK(!sysfs_have_driver(&k->sysfs, "."));
        CHECK_INT(k->n_writes, 0);
        CHECK_STR(fake_state(k), HOST_STATE);

        snprintf(link, sizeof link, "%s/devices/pci0000:00/0000:01:00.1/driver", k->root);
        CHECK_INT(unlink(link), 0);
        CHECK_INT(symlink("../../../bus/pci/drivers/..", link), 0);
        CHECK_INT(sysfs_read_driver(&k->sysfs, "0000:01:00.1", &driver), -EINVAL);
        CHECK(driver == NULL);

        /* a switch record left on disk names the drivers to bind back to */
        for (const char *const *bad = (const char *const[]) { "Driver=../../x", "Driver=..", "DriverOverride=a/b",
                                                              NULL }; *bad; bad++) {
                SwitchRecord *rec = NULL;
                char path[512];
                FILE *f;

                snprintf(path, sizeof path, "%s/switch-0000:01:00.conf", k->root);
                f = fopen(path, "we");
                CHECK(f != NULL);
                if (!f)
                        break;
                fprintf(f, "[Switch]\nGpu=0000:01:00\nTarget=vfio\n[Function 0000:01:00.0]\n%s\n", *bad);
                fclose(f);
                CHECK_INT(switch_record_read(k->root, "0000:01:00", &rec), -EINVAL);
                CHECK(rec == NULL);
        }
        fake_kernel_free(k);
}

/* StopServices= with systemd out of reach: the switch is refused naming
 * the services and saying nothing changed, not with a bare errno. */
static void test_services_unreachable(void) {
        _cleanup_(switch_error_done) SwitchError e = SWITCH_ERROR_INIT;
        char *const units[] = { (char *) "a.service", (char *) "b.service", NULL };

        setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/gpuswitch-test", 1);
        CHECK(services_stop("/nonexistent/state", "0000:01:00", units, &e) < 0);
        CHECK_INT(e.kind, SWITCH_ERROR_FAILED);
        CHECK_CONTAINS(e.message, "a.service, b.service");
        CHECK_CONTAINS(e.message, "nothing was changed");
        unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
}

int main(void) {
        test_driver_names_are_plain();
        test_services_unreachable();
        test_round_trip();
        test_load_failure();
        test_every_failure(SWITCH_TARGET_HOST, SWITCH_TARGET_VFIO, HOST_STATE);
        test_every_failure(SWITCH_TARGET_VFIO, SWITCH_TARGET_HOST, VFIO_STATE);
        test_probe_binds_nothing();
        test_rollback_incomplete();
        test_fail_at_hook();
        TEST_MAIN_END();
}
