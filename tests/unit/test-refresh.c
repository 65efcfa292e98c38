/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the manager reads back after a rebind: only each function's driver
 * and driver_override (the rest cannot change while the functions stay),
 * the whole slot when a function has gone.  Over the simulated kernel,
 * which counts the attribute files opened (inotify). */
#include <stdlib.h>

#include <glib.h>

#include "fake-sysfs.h"
#include "manager.h"
#include "testlib.h"
#include "util.h"

static void fake_kernel_freep(FakeKernel **k) {
        if (*k)
                fake_kernel_free(*k);
}

static bool switched;
static int switch_failed;

static void on_done(ManagedGpu *g, const SwitchError *error, void *userdata) {
        switched = true;
        switch_failed = error ? 1 : 0;
        if (error)
                fprintf(stderr, "switch failed: %s\n", strempty(error->message));
}

static void switch_start(ManagedGpu *g, SwitchTarget target) {
        const SwitchOwner owner = { .done = on_done };

        switched = false;
        CHECK_INT(managed_gpu_switch(g, target, 0, &owner), 0);
}

static void switch_wait(Manager *m) {
        for (int i = 0; i < 500 && !switched; i++)
                (void) sd_event_run(m->event, 10 * 1000);
        CHECK(switched);
        CHECK_INT(switch_failed, 0);
}

/* A read on the pool, waited for on the loop. */
static void refresh(Manager *m, ManagedGpu *g, bool whole) {
        managed_gpu_refresh(g, whole);
        for (int i = 0; i < 500 && g->refreshing; i++)
                (void) sd_event_run(m->event, 10 * 1000);
        CHECK(!g->refreshing);
}

static void switch_to(Manager *m, ManagedGpu *g, SwitchTarget target) {
        switch_start(g, target);
        switch_wait(m);
}

int main(void) {
        static const char conf[] = "[Daemon]\nGpus=0000:01:00\n";
        _cleanup_(fake_kernel_freep) FakeKernel *k = fake_kernel_new();
        _cleanup_(manager_freep) Manager *m = NULL;
        g_autofree char *err = NULL, *err2 = NULL, *state = g_build_filename(k->root, "state", NULL);
        ManagedGpu *g;

        /* the switch record and the runtime marker: in the fake tree */
        setenv("GPUSWITCH_STATE_DIR", state, 1);
        setenv("GPUSWITCH_RUNTIME_DIR", state, 1);
        CHECK_INT(manager_new(&m), 0);
        CHECK_INT(config_parse(conf, strlen(conf), "test", &m->config, &err), 0);
        m->sysfs = k->sysfs;    /* never the real /sys */
        CHECK_INT(manager_discover(m, &err2), 0);
        if (m->n_gpus != 1)
                abort();
        g = m->gpus[0];
        CHECK_INT(g->state->n_functions, 3);

        /* Behind the daemon's back, attributes that no rebind changes: had
         * the end of the switch read them, its state would show them. */
        fake_put_attr(k, "0000:01:00.1", "class", "0x040100\n");
        fake_put_attr(k, "0000:01:00.1", "modalias", "pci:changed\n");
        fake_set_group(k, "0000:01:00.2", 9);

        switch_to(m, g, SWITCH_TARGET_VFIO);
        for (size_t i = 0; i < g->state->n_functions; i++) {
                const PciFunction *f = &g->state->functions[i];

                CHECK_STR(f->driver, "vfio-pci");
                CHECK_STR(f->driver_override, "vfio-pci");
                CHECK(f->host_driver);
        }
        CHECK_INT(g->state->functions[1].class, 0x040300);
        CHECK_STR(g->state->functions[1].modalias, "pci:v00008086d0000293Esv00000000sd00000000bc04sc03i00");
        CHECK_INT(g->state->functions[2].iommu_group, 5);
        CHECK_INT(gpu_derive_state(g->state), GPU_STATE_VFIO);

        /* Counted: a refresh after a rebind opens driver_override of each
         * function and nothing else (driver is a link: readlink). */
        fake_opens_start(k);
        refresh(m, g, false);
        CHECK_INT(fake_opens(k, "driver_override"), 3);
        CHECK_INT(fake_opens(k, NULL), 3);
        /* a whole read opens every attribute: the counter sees it */
        refresh(m, g, true);
        CHECK_INT(fake_opens(k, "class"), 3);
        CHECK_INT(fake_opens(k, "modalias"), 3);
        CHECK(fake_opens(k, NULL) > 9);
        CHECK_INT(g->state->functions[1].class, 0x040100);
        CHECK_STR(g->state->functions[1].modalias, "pci:changed");
        CHECK_INT(g->state->functions[2].iommu_group, 9);
        /* host drivers are the daemon's, kept by both reads */
        CHECK_STR(g->state->functions[1].host_driver, "snd_hda_intel");

        /* Back to the host: the overrides cleared, the drivers back, read
         * back without the other attributes. */
        fake_put_attr(k, "0000:01:00.0", "vendor", "0x10de\n");
        switch_to(m, g, SWITCH_TARGET_HOST);
        CHECK_STR(g->state->functions[0].driver, "bochs-drm");
        CHECK(!g->state->functions[0].driver_override);
        CHECK_STR(g->state->functions[1].driver, "snd_hda_intel");
        CHECK_STR(g->state->functions[2].driver, "xhci_hcd");
        CHECK_INT(g->state->functions[0].vendor, 0x1234);
        CHECK_INT(gpu_derive_state(g->state), GPU_STATE_HOST);

        /* A whole read asked for while a switch runs (an "add" uevent) is
         * not done then, but at the switch's end instead of the short one. */
        fake_put_attr(k, "0000:01:00.1", "class", "0x040380\n");
        k->write_delay_ms = 50;
        switch_start(g, SWITCH_TARGET_VFIO);
        CHECK(g->job);
        managed_gpu_refresh(g, true);
        CHECK(!g->refreshing);
        CHECK_INT(g->state->functions[1].class, 0x040100);
        switch_wait(m);
        /* the switch's own read, then the whole one on the pool */
        for (int i = 0; i < 500 && g->refreshing; i++)
                (void) sd_event_run(m->event, 10 * 1000);
        CHECK_INT(g->state->functions[1].class, 0x040380);
        CHECK_STR(g->state->functions[1].driver, "vfio-pci");
        k->write_delay_ms = 0;
        fake_put_attr(k, "0000:01:00.1", "class", "0x040300\n");
        switch_to(m, g, SWITCH_TARGET_HOST);
        CHECK_INT(g->state->functions[1].class, 0x040380);

        /* A function gone: the same functions no more, the slot read whole. */
        fake_remove_function(k, "0000:01:00.2");
        refresh(m, g, false);
        CHECK_INT(g->state->n_functions, 2);
        CHECK_INT(g->state->functions[0].vendor, 0x10de);
        CHECK_STR(g->state->functions[1].driver, "snd_hda_intel");

        TEST_MAIN_END();
}
