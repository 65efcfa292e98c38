/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The switch and its rollback, against the simulated kernel of fake-sysfs.c:
 * a failure injected at every write of a switch leaves every function as it
 * was. */
#include <glib.h>

#include "errors.h"
#include "fake-sysfs.h"
#include "function-health.h"
#include "kernel-log.h"
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

/* Plans and runs a switch as the daemon's job does, with these host drivers. */
static int do_switch_to(FakeKernel *k, SwitchTarget target, const char *const drivers[3], SwitchError *e) {
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
                g->functions[i].host_driver = strdup(drivers[i]);
        r = plan_make(&k->sysfs, g, target, &policy, &p, e);
        if (r < 0)
                return r;
        return switch_run(&k->sysfs, g, p, e);
}

static int do_switch(FakeKernel *k, SwitchTarget target, SwitchError *e) {
        return do_switch_to(k, target, host_drivers, e);
}

static const char *const gpu_fns[] = { "0000:01:00.0", "0000:01:00.1", "0000:01:00.2" };

/* power/control of the GPU's functions, "auto on auto" */
static const char *power_controls(FakeKernel *k) {
        static char buf[64];

        snprintf(buf, sizeof buf, "%s %s %s", fake_attr(k, gpu_fns[0], "power/control"),
                 fake_attr(k, gpu_fns[1], "power/control"), fake_attr(k, gpu_fns[2], "power/control"));
        return buf;
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
                fake_put_attr(k, gpu_fns[1], "power/control", "on\n");
                k->n_writes = 0;
                k->n_while_suspendable = 0;
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
                /* awake through the switch and its rollback, then as before */
                CHECK_INT(k->n_while_suspendable, 0);
                CHECK_STR(power_controls(k), "auto on auto");
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

        snprintf(k->fail_at, sizeof k->fail_at, "0000:01:00.0/probe");
        CHECK_INT(do_switch(k, SWITCH_TARGET_VFIO, &e), -EIO);
        CHECK_CONTAINS(e.message, "0000:01:00.0 (drivers_probe)");
        CHECK_CONTAINS(e.message, "rolled back");
        CHECK_STR(fake_state(k), HOST_STATE);
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

/* Held awake for the switch (no unbind, probe or reset meets a function
 * that may be runtime-suspended), each given back its own setting. */
static void test_power_held_and_given_back(void) {
        FakeKernel *k = fake_kernel_new();
        SwitchError e = SWITCH_ERROR_INIT;

        fake_put_attr(k, gpu_fns[1], "power/control", "on\n");
        CHECK_STR(power_controls(k), "auto on auto");
        CHECK_INT(do_switch(k, SWITCH_TARGET_VFIO, &e), 0);
        CHECK_STR(fake_state(k), VFIO_STATE);
        CHECK_INT(k->n_while_suspendable, 0);
        CHECK_STR(power_controls(k), "auto on auto");
        /* .0 and .2 held on; vfio-pci's probe allowed runtime PM on all
         * three, so .1 is given "on" back, .0 and .2 have their "auto" */
        CHECK_INT(k->n_power_writes, 3);
        CHECK_INT(do_switch(k, SWITCH_TARGET_HOST, &e), 0);
        CHECK_STR(fake_state(k), HOST_STATE);
        CHECK_INT(k->n_while_suspendable, 0);
        CHECK_STR(power_controls(k), "auto on auto");

        /* a function without runtime PM has nothing to hold */
        fake_remove_attr(k, gpu_fns[0], "power/control");
        k->n_power_writes = 0;
        CHECK_INT(do_switch(k, SWITCH_TARGET_VFIO, &e), 0);
        CHECK_INT(k->n_power_writes, 2);       /* .2 held, .1 given back */
        CHECK_STR(power_controls(k), "? on auto");
        CHECK(!switch_error_is_set(&e));
        fake_kernel_free(k);

        /* a function that cannot be held: nothing is done */
        k = fake_kernel_new();
        k->power_write_fails = true;
        CHECK_INT(do_switch(k, SWITCH_TARGET_VFIO, &e), -EIO);
        CHECK_INT(e.kind, SWITCH_ERROR_FAILED);
        CHECK_CONTAINS(e.message, "awake");
        CHECK_CONTAINS(e.message, "nothing was changed");
        CHECK_INT(k->n_writes, 0);
        CHECK_STR(fake_state(k), HOST_STATE);
        switch_error_done(&e);
        fake_kernel_free(k);

        /* the held functions are given back when the switch rolls back */
        k = fake_kernel_new();
        snprintf(k->fail_at, sizeof k->fail_at, "0000:01:00.0/probe");
        CHECK_INT(do_switch(k, SWITCH_TARGET_VFIO, &e), -EIO);
        CHECK_CONTAINS(e.message, "rolled back");
        CHECK_STR(fake_state(k), HOST_STATE);
        CHECK_STR(power_controls(k), "auto auto auto");
        CHECK_INT(k->n_while_suspendable, 0);
        switch_error_done(&e);
        fake_kernel_free(k);
}

/* Back on the host, a function whose probe fails once is reset, probed
 * again, and the switch succeeds. */
static void test_probe_fails_once(void) {
        FakeKernel *k = fake_kernel_new();
        SwitchError e = SWITCH_ERROR_INIT;

        CHECK_INT(do_switch(k, SWITCH_TARGET_VFIO, &e), 0);
        snprintf(k->flaky_device, sizeof k->flaky_device, "0000:01:00.1");
        k->flaky_probes = 1;
        CHECK_INT(do_switch(k, SWITCH_TARGET_HOST, &e), 0);
        CHECK(!switch_error_is_set(&e));
        CHECK_STR(fake_state(k), HOST_STATE);
        CHECK_INT(k->n_resets, 1);
        CHECK_INT(k->flaky_probes, 0);
        CHECK_INT(k->n_while_suspendable, 0);
        CHECK_STR(power_controls(k), "auto auto auto");

        /* without a reset method: probed again all the same */
        CHECK_INT(do_switch(k, SWITCH_TARGET_VFIO, &e), 0);
        fake_remove_attr(k, gpu_fns[1], "reset");
        k->flaky_probes = 1;
        k->n_resets = 0;
        CHECK_INT(do_switch(k, SWITCH_TARGET_HOST, &e), 0);
        CHECK_STR(fake_state(k), HOST_STATE);
        CHECK_INT(k->n_resets, 0);
        fake_kernel_free(k);
}

/* A probe that always fails: the error names the function, the steps
 * tried and what the kernel logged; every function is back on vfio-pci. */
static void test_probe_fails_always(void) {
        FakeKernel *k = fake_kernel_new();
        SwitchError e = SWITCH_ERROR_INIT;

        CHECK_INT(do_switch(k, SWITCH_TARGET_VFIO, &e), 0);
        fake_kmsg(k, "snd_hda_intel 0000:01:00.1: logged before the switch");
        fake_kmsg(k, "xhci_hcd 0000:01:00.2: not about the function");
        snprintf(k->flaky_device, sizeof k->flaky_device, "0000:01:00.1");
        k->flaky_probes = 1000;
        CHECK_INT(do_switch(k, SWITCH_TARGET_HOST, &e), -EIO);
        CHECK_INT(e.kind, SWITCH_ERROR_FAILED);
        CHECK_CONTAINS(e.message, "failed at 0000:01:00.1 (health check)");
        CHECK_CONTAINS(e.message, "0000:01:00.1 would not come up on snd_hda_intel");
        CHECK_CONTAINS(e.message, "probed: snd_hda_intel did not bind; reset (flr); probed again: snd_hda_intel "
                                  "did not bind");
        CHECK_CONTAINS(e.message, "the kernel logged: snd_hda_intel 0000:01:00.1: probe with driver snd_hda_intel "
                                  "failed with error -5 | pci 0000:01:00.1: resetting | snd_hda_intel "
                                  "0000:01:00.1: probe with driver");
        CHECK(!strstr(e.message, "before the switch"));
        CHECK(!strstr(e.message, "not about"));
        CHECK_CONTAINS(e.message, "rolled back, every function is on the driver it had");
        CHECK_STR(fake_state(k), VFIO_STATE);
        CHECK_INT(k->n_resets, 1);
        CHECK_INT(k->n_while_suspendable, 0);
        CHECK_STR(power_controls(k), "auto auto auto");
        switch_error_done(&e);

        /* without a reset method, and without a kernel log to read */
        fake_remove_attr(k, gpu_fns[1], "reset");
        k->sysfs.kmsg = NULL;
        CHECK_INT(do_switch(k, SWITCH_TARGET_HOST, &e), -EIO);
        CHECK_CONTAINS(e.message, "no reset (the function has no reset method); probed again");
        CHECK_CONTAINS(e.message, "the kernel log could not be read");
        CHECK_STR(fake_state(k), VFIO_STATE);
        switch_error_done(&e);
        fake_kernel_free(k);
}

/* Bound but not well: a function left in D3hot, nvidia without its /proc
 * entry. */
static void test_health_check(void) {
        const char *const nvidia[3] = { "nvidia", "snd_hda_intel", "xhci_hcd" };
        FakeKernel *k = fake_kernel_new();
        SwitchError e = SWITCH_ERROR_INIT;
        char proc[512], gpus[600];
        char *problem = NULL;

        CHECK_INT(do_switch(k, SWITCH_TARGET_VFIO, &e), 0);
        fake_put_attr(k, gpu_fns[2], "power_state", "D3hot\n");
        CHECK_INT(do_switch(k, SWITCH_TARGET_HOST, &e), 0);       /* the reset brought it to D0 */
        CHECK_INT(k->n_resets, 1);
        CHECK_STR(fake_attr(k, gpu_fns[2], "power_state"), "D0");
        CHECK_STR(fake_state(k), HOST_STATE);

        CHECK_INT(function_health_check(&k->sysfs, gpu_fns[0], "bochs-drm", &problem), 0);
        CHECK(problem == NULL);
        fake_put_attr(k, gpu_fns[0], "power_state", "unknown\n");
        CHECK_INT(function_health_check(&k->sysfs, gpu_fns[0], "bochs-drm", &problem), 0);
        fake_put_attr(k, gpu_fns[0], "power_state", "D3cold\n");
        CHECK_INT(function_health_check(&k->sysfs, gpu_fns[0], "bochs-drm", &problem), -EIO);
        CHECK_STR(problem, "bound, but in D3cold, not D0");
        free(problem);
        fake_remove_attr(k, gpu_fns[0], "power_state");        /* an older kernel */
        CHECK_INT(function_health_check(&k->sysfs, gpu_fns[0], "bochs-drm", &problem), 0);
        CHECK_INT(function_health_check(&k->sysfs, gpu_fns[0], "nouveau", &problem), -EIO);
        CHECK_STR(problem, "bochs-drm bound instead of nouveau");
        free(problem);
        fake_kernel_free(k);

        /* nvidia comes up only with its /proc/driver/nvidia/gpus/ADDR */
        k = fake_kernel_new();
        snprintf(proc, sizeof proc, "%s/proc", k->root);
        snprintf(gpus, sizeof gpus, "%s/driver/nvidia/gpus/0000:01:00.0", proc);
        k->sysfs.proc_root = proc;
        fake_add_driver(k, "nvidia");
        fake_put_attr(k, gpu_fns[0], "native_driver", "nvidia\n");
        CHECK_INT(do_switch_to(k, SWITCH_TARGET_VFIO, nvidia, &e), 0);
        CHECK_INT(do_switch_to(k, SWITCH_TARGET_HOST, nvidia, &e), -EIO);
        CHECK_CONTAINS(e.message, "0000:01:00.0 would not come up on nvidia: probed: bound, but ");
        CHECK_CONTAINS(e.message, "/driver/nvidia/gpus/0000:01:00.0 is missing; reset (flr); probed again: bound");
        CHECK_CONTAINS(e.message, "rolled back");
        CHECK_STR(fake_driver(k, gpu_fns[0]), "vfio-pci");
        switch_error_done(&e);
        CHECK_INT(g_mkdir_with_parents(gpus, 0755), 0);
        CHECK_INT(do_switch_to(k, SWITCH_TARGET_HOST, nvidia, &e), 0);
        CHECK_STR(fake_driver(k, gpu_fns[0]), "nvidia");
        fake_kernel_free(k);
}

static bool log_has(const FakeKernel *k, const char *entry, size_t *at) {
        for (size_t i = 0; i < k->n_log; i++)
                if (strstr(k->log[i], entry)) {
                        if (at)
                                *at = i;
                        return true;
                }
        return false;
}

/* NVIDIA's unbindLock: taken before the first unbind of a switch off
 * nvidia; not given (a client inside the kernel), the switch is refused
 * with nothing changed; a later failure releases it. */
static void test_unbind_lock(void) {
        const char *const nvidia[3] = { "nvidia", "snd_hda_intel", "xhci_hcd" };
        FakeKernel *k = fake_kernel_new();
        SwitchError e = SWITCH_ERROR_INIT;
        char proc[512], gpus[600], lock[700], before[256];
        size_t taken = 0, unbound = 0;

        snprintf(proc, sizeof proc, "%s/proc", k->root);
        snprintf(gpus, sizeof gpus, "%s/driver/nvidia/gpus/0000:01:00.0", proc);
        snprintf(lock, sizeof lock, "%s/unbindLock", gpus);
        k->sysfs.proc_root = proc;
        fake_add_driver(k, "nvidia");
        fake_put_attr(k, gpu_fns[0], "native_driver", "nvidia\n");
        CHECK_INT(g_mkdir_with_parents(gpus, 0755), 0);
        CHECK_INT(do_switch_to(k, SWITCH_TARGET_VFIO, nvidia, &e), 0);
        CHECK_INT(do_switch_to(k, SWITCH_TARGET_HOST, nvidia, &e), 0);
        CHECK_STR(fake_driver(k, gpu_fns[0]), "nvidia");
        snprintf(before, sizeof before, "%s", fake_state(k));

        /* an in-kernel client: refused before any unbind */
        CHECK(g_file_set_contents(lock, "0\n", -1, NULL));
        k->nvidia_clients = 1;
        k->n_log = 0;
        CHECK_INT(do_switch_to(k, SWITCH_TARGET_VFIO, nvidia, &e), -EBUSY);
        CHECK_INT(e.kind, SWITCH_ERROR_IN_USE);
        CHECK_CONTAINS(e.message, "unbindLock for 0000:01:00.0 could not be taken");
        CHECK_CONTAINS(e.message, "nothing was changed");
        CHECK_STR(fake_state(k), before);
        CHECK(!log_has(k, "/unbind ", NULL));
        switch_error_done(&e);

        /* taken, then a later write fails: released on the rollback */
        k->nvidia_clients = 0;
        k->n_log = 0;
        k->n_writes = 0;
        k->fail_write = 2;
        CHECK_INT(do_switch_to(k, SWITCH_TARGET_VFIO, nvidia, &e), -EIO);
        CHECK_STR(fake_state(k), before);
        CHECK(log_has(k, "unbindLock 1", NULL) && log_has(k, "unbindLock 0", NULL));
        CHECK_STR(fake_attr(k, gpu_fns[0], "driver_override"), "(null)");
        {
                g_autofree char *v = NULL;

                CHECK(g_file_get_contents(lock, &v, NULL, NULL));
                CHECK_STR(v, "0");
        }
        switch_error_done(&e);

        /* given: taken before the first unbind, gone with the device */
        k->fail_write = 0;
        k->n_log = 0;
        CHECK_INT(do_switch_to(k, SWITCH_TARGET_VFIO, nvidia, &e), 0);
        CHECK(log_has(k, "unbindLock 1", &taken) && log_has(k, "/unbind ", &unbound) && taken < unbound);
        CHECK(!log_has(k, "unbindLock 0", NULL));
        CHECK_STR(fake_driver(k, gpu_fns[0]), "vfio-pci");
        CHECK(access(lock, F_OK) < 0);
        switch_error_done(&e);
        fake_kernel_free(k);
}

/* The kernel's lines about a function, logged since the switch began:
 * escaped to printable ASCII and bounded, the last ones kept. */
static void test_kernel_log(void) {
        FakeKernel *k = fake_kernel_new();
        _cleanup_(kernel_log_freep) KernelLog *log = NULL;
        _cleanup_free_ char *about = NULL, *none = NULL;
        char longline[400];

        fake_kmsg(k, "x 0000:01:00.0: before");
        CHECK_INT(kernel_log_begin(&k->sysfs, &log), 0);
        fake_kmsg(k, "x 0000:01:00.0: first");
        for (int i = 0; i < 40; i++) {
                memset(longline, 'a' + i % 26, sizeof longline - 1);
                longline[sizeof longline - 1] = 0;
                fake_kmsg(k, "x 0000:01:00.0: %d %s", i, longline);
        }
        /* raw bytes, as a kernel that did not escape them would give */
        fake_kmsg(k, "x 0000:01:00.0: esc \x1b[31m \\ \x07 \xc3\xa9 \x01 end");
        fake_kmsg(k, "x 0000:01:00.1: another function");

        about = kernel_log_about(log, "0000:01:00.0");
        CHECK(about && strlen(about) <= KERNEL_LOG_MAX);
        CHECK_CONTAINS(about, "the kernel logged: ");
        CHECK(!strstr(about, "before"));
        CHECK(!strstr(about, "first"));         /* pushed out by the later ones */
        CHECK(!strstr(about, "another"));
        CHECK_CONTAINS(about, "x 0000:01:00.0: 39 ");
        CHECK_CONTAINS(about, "esc \\x1b[31m \\x5c \\x07 \\xc3\\xa9 \\x01 end");
        for (const char *c = about; c && *c; c++)
                if (*c < 0x20 || *c > 0x7e) {
                        fprintf(stderr, "unescaped byte 0x%02x\n", (unsigned char) *c);
                        test_failures++;
                        break;
                }
        none = kernel_log_about(log, "0000:01:00.2");
        CHECK_STR(none, "the kernel logged nothing about it");
        fake_kernel_free(k);
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
        test_unbind_lock();
        test_power_held_and_given_back();
        test_probe_fails_once();
        test_probe_fails_always();
        test_health_check();
        test_kernel_log();
        TEST_MAIN_END();
}
