/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Companions=: devices outside the GPU's slot that move with it.  The one
 * test of which addresses belong to a GPU; Companions= parsed and checked
 * against sysfs; a companion read, planned (first away from the host, last
 * back), switched, recorded, rolled back and recovered with the GPU; the
 * IOMMU group check that counts it as the GPU's own and, without it, names
 * the key that would move it. */
#include <glib.h>
#include <sys/stat.h>

#include "config.h"
#include "engine.h"
#include "fake-sysfs.h"
#include "gpu-rules.h"
#include "gpu.h"
#include "plan.h"
#include "switch-record.h"
#include "testlib.h"
#include "util.h"

#define GPU "0000:01:00"
#define COMPANION "0000:03:00.0"

static const char *const host_drivers[] = { "bochs-drm", "snd_hda_intel", "xhci_hcd", "xhci_hcd" };

static PciAddress addr(const char *s) {
        PciAddress a = {};

        CHECK_INT(pci_address_parse(s, &a), 0);
        return a;
}

/* The standard machine, and a USB controller of the card on bus 03 in
 * the GPU's IOMMU group (5). */
static FakeKernel *machine(void) {
        FakeKernel *k = fake_kernel_new();

        fake_add_function(k, COMPANION, 0x0c0330, 0x1033, 0x0194, "xhci_hcd", 5, false);
        return k;
}

static Gpu *read_gpu(FakeKernel *k, bool with_companion) {
        PciAddress slot = addr(GPU), companion = addr(COMPANION);
        Gpu *g = NULL;

        CHECK_INT(gpu_read(&k->sysfs, &slot, with_companion ? &companion : NULL, with_companion ? 1 : 0, &g), 0);
        if (!g)
                abort();
        for (size_t i = 0; i < g->n_functions && i < ELEMENTSOF(host_drivers); i++)
                g->functions[i].host_driver = strdup(host_drivers[i]);
        return g;
}

static void test_address_matches(void) {
        PciAddress slot = addr(GPU), companions[] = { addr(COMPANION), addr("0000:04:00.1") };
        static const struct {
                const char *address;
                bool matches;
        } cases[] = {
                { "0000:01:00", true },       /* its slot */
                { "01:00", true },
                { "0000:01:00.0", true },     /* a function of its slot */
                { "0000:01:00.7", true },
                { COMPANION, true },          /* a companion */
                { "0000:04:00.1", true },
                { "0000:03:00", false },      /* a companion's slot is not the GPU */
                { "0000:03:00.1", false },    /* nor its neighbour */
                { "0000:04:00.0", false },
                { "0000:02:00.0", false },
                { "0001:01:00.0", false },    /* another domain */
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                PciAddress a = addr(cases[i].address);

                if (gpu_address_matches(&slot, companions, ELEMENTSOF(companions), &a) != cases[i].matches) {
                        fprintf(stderr, "gpu_address_matches(%s) != %d\n", cases[i].address, cases[i].matches);
                        test_failures++;
                }
        }
        /* without companions, the slot alone */
        {
                PciAddress a = addr(COMPANION), b = addr("0000:01:00.2");

                CHECK(!gpu_address_matches(&slot, NULL, 0, &a));
                CHECK(gpu_address_matches(&slot, NULL, 0, &b));
        }
}

static void test_read(void) {
        FakeKernel *k = machine();
        _cleanup_(gpu_freep) Gpu *g = read_gpu(k, true);
        _cleanup_(gpu_freep) Gpu *c = NULL, *again = NULL, *alone = NULL;
        PciAddress a = addr(COMPANION), slot = addr(GPU), missing = addr("0000:09:00.0");
        unsigned groups[4];

        CHECK_INT(g->n_functions, 4);
        CHECK_STR(g->functions[3].address, COMPANION);
        CHECK(g->functions[3].companion);
        CHECK(!g->functions[0].companion && !g->functions[2].companion);
        CHECK_STR(g->functions[3].driver, "xhci_hcd");
        CHECK_INT(g->functions[3].iommu_group, 5);
        CHECK(gpu_has_address(g, &a));
        CHECK_INT(gpu_iommu_groups(g, groups, ELEMENTSOF(groups)), 1);
        CHECK_INT(gpu_derive_state(g), GPU_STATE_HOST);

        /* copies and rereads keep the companions */
        CHECK_INT(gpu_copy(g, &c), 0);
        CHECK_INT(c->n_companions, 1);
        CHECK(c->companions != g->companions);
        CHECK_INT(gpu_reread(&k->sysfs, c, &again), 0);
        CHECK_INT(again->n_functions, 4);
        CHECK(again->functions[3].companion);
        CHECK_STR(again->functions[3].host_driver, "xhci_hcd");

        /* a companion that is not there: the GPU without it; companions alone are no GPU */
        {
                _cleanup_(gpu_freep) Gpu *m = NULL;
                PciAddress none = addr("0000:07:00");
                Gpu *n = NULL;

                CHECK_INT(gpu_read(&k->sysfs, &slot, &missing, 1, &m), 0);
                CHECK_INT(m->n_functions, 3);
                CHECK_INT(gpu_read(&k->sysfs, &none, &a, 1, &n), -ENODEV);
                CHECK(n == NULL);
        }
        CHECK_INT(gpu_read(&k->sysfs, &slot, NULL, 0, &alone), 0);
        CHECK_INT(alone->n_functions, 3);
        CHECK(!gpu_has_address(alone, &a));
        fake_kernel_free(k);
}

static void test_plan_order(void) {
        FakeKernel *k = machine();
        _cleanup_(gpu_freep) Gpu *g = read_gpu(k, true);
        _cleanup_(plan_freep) Plan *to_vfio = NULL;
        SwitchError e = SWITCH_ERROR_INIT;
        PlanPolicy policy = {};

        CHECK_INT(plan_make(&k->sysfs, g, SWITCH_TARGET_VFIO, &policy, &to_vfio, &e), 0);
        CHECK_INT(to_vfio->n_steps, 4);
        /* the companion leaves first, function 0 last */
        CHECK_STR(to_vfio->steps[0].function->address, COMPANION);
        CHECK_STR(to_vfio->steps[1].function->address, "0000:01:00.2");
        CHECK_STR(to_vfio->steps[3].function->address, "0000:01:00.0");
        CHECK_INT(to_vfio->steps[0].action, PLAN_MOVE);

        /* back: function 0 first, the companion last */
        for (size_t i = 0; i < g->n_functions; i++) {
                free(g->functions[i].driver);
                g->functions[i].driver = strdup("vfio-pci");
        }
        {
                _cleanup_(plan_freep) Plan *to_host = NULL;

                CHECK_INT(plan_make(&k->sysfs, g, SWITCH_TARGET_HOST, &policy, &to_host, &e), 0);
                CHECK_STR(to_host->steps[0].function->address, "0000:01:00.0");
                CHECK_STR(to_host->steps[3].function->address, COMPANION);
                CHECK_STR(to_host->steps[3].to, "xhci_hcd");
        }
        switch_error_done(&e);
        fake_kernel_free(k);
}

static void test_group_not_viable(void) {
        FakeKernel *k = machine();
        SwitchError e = SWITCH_ERROR_INIT;
        PlanPolicy policy = {};
        Plan *p = NULL;

        /* without the key: the companion is a stranger in the group, and
         * the message says which key would move it */
        {
                _cleanup_(gpu_freep) Gpu *g = read_gpu(k, false);

                CHECK_INT(plan_make(&k->sysfs, g, SWITCH_TARGET_VFIO, &policy, &p, &e), -EXDEV);
                CHECK(p == NULL);
                CHECK_INT(e.kind, SWITCH_ERROR_GROUP_NOT_VIABLE);
                CHECK_STR(e.function, COMPANION);
                CHECK_CONTAINS(e.message, "IOMMU group 5 of " GPU " also holds " COMPANION ", bound to xhci_hcd");
                CHECK_CONTAINS(e.message, "add Companions=" COMPANION " to [Gpu " GPU "]");
                switch_error_done(&e);
        }
        /* two in the way, one a companion already: the key's whole value */
        fake_add_function(k, "0000:04:00.0", 0x040300, 0x8086, 0x2668, "snd_hda_intel", 5, false);
        {
                _cleanup_(gpu_freep) Gpu *g = read_gpu(k, false);

                CHECK_INT(iommu_group_check_viable(&k->sysfs, g, &e), -EXDEV);
                CHECK_CONTAINS(e.message, "also holds " COMPANION ", bound to xhci_hcd and 0000:04:00.0, bound to "
                               "snd_hda_intel");
                CHECK_CONTAINS(e.message, "Companions=" COMPANION ";0000:04:00.0 to [Gpu " GPU "] to move them");
                switch_error_done(&e);
        }
        {
                _cleanup_(gpu_freep) Gpu *g = read_gpu(k, true);

                CHECK_INT(iommu_group_check_viable(&k->sysfs, g, &e), -EXDEV);
                CHECK_STR(e.function, "0000:04:00.0");
                CHECK(!strstr(e.message, "bound to xhci_hcd"));
                CHECK_CONTAINS(e.message, "Companions=" COMPANION ";0000:04:00.0 to");
                switch_error_done(&e);
        }
        fake_kernel_free(k);
}

/* ---- the engine: a switch both ways, a failure, recovery --------------------- */

static int no_stop(const char *state_dir, const char *address, char *const *units, SwitchError *error) {
        return 0;
}
static int no_restart(const char *state_dir, const char *address) {
        return 0;
}
static const SwitchServices no_services = { .stop = no_stop, .restart = no_restart };

typedef struct Seen {
        const char *state_dir;
        bool companion_recorded;     /* the record named the companion when the kernel writes began */
} Seen;

static int seen_step(SwitchStep step, void *userdata) {
        Seen *s = userdata;
        _cleanup_(switch_record_freep) SwitchRecord *rec = NULL;

        if (step == SWITCH_STEP_REBIND && switch_record_read(s->state_dir, GPU, &rec) == 0)
                s->companion_recorded = gpu_find_function(rec->original, COMPANION) &&
                                        gpu_find_function(rec->original, COMPANION)->companion;
        return 0;
}

static int run(FakeKernel *k, const Gpu *g, SwitchTarget target, const char *state_dir, Seen *seen,
               SwitchError *e) {
        SwitchObserver o = { .step = seen_step, .userdata = seen };
        char proc[300];
        SwitchContext c = {
                .origin = SWITCH_ORIGIN_BUS,
                .target = target,
                .gpu = g,
                .sysfs = &k->sysfs,
                .state_dir = state_dir,
                .proc_root = proc,
                .services = &no_services,
                .observer = &o,
        };

        snprintf(proc, sizeof proc, "%s/proc-empty", k->root);
        (void) mkdir(proc, 0755);
        seen->state_dir = state_dir;
        return engine_run(&c, e);
}

static void test_switch(void) {
        FakeKernel *k = machine();
        _cleanup_(gpu_freep) Gpu *g = read_gpu(k, true);
        SwitchError e = SWITCH_ERROR_INIT;
        char state_dir[300];
        Seen seen = {};
        int vfio_writes;

        snprintf(state_dir, sizeof state_dir, "%s/state", k->root);
        CHECK_INT(run(k, g, SWITCH_TARGET_VFIO, state_dir, &seen, &e), 0);
        CHECK_STR(fake_driver(k, COMPANION), "vfio-pci");
        CHECK_STR(fake_driver(k, "0000:01:00.0"), "vfio-pci");
        CHECK_STR(fake_driver(k, "0000:02:00.0"), "e1000e");
        CHECK(seen.companion_recorded);
        /* the companion's unbind came before function 0's */
        {
                int companion_at = -1, fn0_at = -1;

                for (size_t i = 0; i < k->n_log; i++) {
                        if (companion_at < 0 && strstr(k->log[i], "xhci_hcd/unbind " COMPANION))
                                companion_at = (int) i;
                        if (fn0_at < 0 && strstr(k->log[i], "bochs-drm/unbind 0000:01:00.0"))
                                fn0_at = (int) i;
                }
                CHECK(companion_at >= 0 && fn0_at > companion_at);
        }
        vfio_writes = k->n_writes;

        CHECK_INT(run(k, g, SWITCH_TARGET_HOST, state_dir, &seen, &e), 0);
        CHECK_STR(fake_driver(k, COMPANION), "xhci_hcd");
        CHECK_STR(fake_override(k, COMPANION), "(null)");
        CHECK_STR(fake_driver(k, "0000:01:00.0"), "bochs-drm");

        /* a failure at each kernel write of the way to vfio-pci: every
         * function back, the companion included, no record left */
        for (int n = 1; n <= vfio_writes; n++) {
                _cleanup_(switch_record_freep) SwitchRecord *rec = NULL;

                k->n_writes = 0;
                k->fail_write = n;
                CHECK(run(k, g, SWITCH_TARGET_VFIO, state_dir, &seen, &e) < 0);
                switch_error_done(&e);
                k->fail_write = 0;
                if (!streq(fake_driver(k, COMPANION), "xhci_hcd") || !streq(fake_override(k, COMPANION), "(null)") ||
                    !streq(fake_driver(k, "0000:01:00.0"), "bochs-drm")) {
                        fprintf(stderr, "failure at write %d: %s, companion %s[%s]\n", n, fake_state(k),
                                fake_driver(k, COMPANION), fake_override(k, COMPANION));
                        test_failures++;
                }
                CHECK_INT(switch_record_read(state_dir, GPU, &rec), -ENOENT);
        }
        fake_kernel_free(k);
}

static void test_record_and_recovery(void) {
        FakeKernel *k = machine();
        _cleanup_(gpu_freep) Gpu *g = read_gpu(k, true);
        _cleanup_(switch_record_freep) SwitchRecord *rec = NULL;
        SwitchError e = SWITCH_ERROR_INIT;
        char state_dir[300], path[400];
        Seen seen = {};

        snprintf(state_dir, sizeof state_dir, "%s/state", k->root);
        CHECK_INT(switch_record_write(state_dir, g, SWITCH_TARGET_VFIO), 0);
        CHECK_INT(switch_record_read(state_dir, GPU, &rec), 0);
        CHECK_INT(rec->original->n_functions, 4);
        CHECK_INT(rec->original->n_companions, 1);
        CHECK(gpu_find_function(rec->original, COMPANION) && gpu_find_function(rec->original, COMPANION)->companion);
        CHECK_STR(gpu_find_function(rec->original, COMPANION)->driver, "xhci_hcd");

        /* the daemon died with the companion on vfio-pci: recovery puts it back */
        CHECK_INT(run(k, g, SWITCH_TARGET_VFIO, state_dir, &seen, &e), 0);
        CHECK_STR(fake_driver(k, COMPANION), "vfio-pci");
        {
                SwitchContext c = {
                        .origin = SWITCH_ORIGIN_RECOVERY,
                        .target = rec->target,
                        .gpu = rec->original,
                        .record = rec,
                        .sysfs = &k->sysfs,
                        .state_dir = state_dir,
                        .proc_root = "/nonexistent",
                        .services = &no_services,
                };

                CHECK_INT(switch_record_write(state_dir, g, SWITCH_TARGET_VFIO), 0);
                CHECK_INT(engine_run(&c, &e), 0);
                CHECK_STR(fake_driver(k, COMPANION), "xhci_hcd");
                CHECK_STR(fake_override(k, COMPANION), "(null)");
                CHECK_STR(fake_driver(k, "0000:01:00.0"), "bochs-drm");
        }

        /* a record that names a function outside the slot without listing
         * it in Companions= is not ours to write to */
        snprintf(path, sizeof path, "%s/switch-" GPU ".conf", state_dir);
        CHECK(g_file_set_contents(path, "[Switch]\nGpu=" GPU "\nTarget=vfio\n[Function 0000:02:00.0]\nDriver=e1000e\n"
                                  "DriverOverride=\n", -1, NULL));
        {
                _cleanup_(switch_record_freep) SwitchRecord *bad = NULL;
                CHECK_INT(switch_record_read(state_dir, GPU, &bad), -EINVAL);
        }
        CHECK(g_file_set_contents(path, "[Switch]\nGpu=" GPU "\nTarget=vfio\nCompanions=0000:01:00.3\n", -1, NULL));
        {
                _cleanup_(switch_record_freep) SwitchRecord *bad = NULL;
                CHECK_INT(switch_record_read(state_dir, GPU, &bad), -EINVAL);
        }
        fake_kernel_free(k);
}

/* ---- the key ------------------------------------------------------------------- */

static Config *parse(const char *text, char **err) {
        Config *c = NULL;

        *err = NULL;
        (void) config_parse(text, strlen(text), "test.conf", &c, err);
        return c;
}

static void parse_bad(const char *text, const char *must_name) {
        g_autofree char *err = NULL;
        Config *c = parse(text, &err);

        CHECK(c == NULL);
        CHECK_CONTAINS(err, "test.conf: [Gpu ");
        CHECK_CONTAINS(err, "Companions");
        CHECK_CONTAINS(err, must_name);
        config_free(c);
}

static void test_config(void) {
        g_autofree char *err = NULL;
        Config *c = parse("[Daemon]\nGpus=0000:01:00;0000:05:00\n"
                          "[Gpu 01:00]\nCompanions=0000:03:00.0; 0000:04:00.1\n"
                          "[Gpu 0000:05:00]\nCompanions=\n", &err);
        PciAddress slot = addr(GPU), other = addr("0000:05:00");
        const GpuConfig *gc;

        CHECK(c != NULL);
        if (!c) {
                fprintf(stderr, "%s\n", err);
                return;
        }
        gc = config_find_gpu(c, &slot);
        CHECK_INT(gc->n_companions, 2);
        CHECK(pci_address_equal(&gc->companions[0], &(PciAddress) { 0, 3, 0, 0 }));
        CHECK(pci_address_equal(&gc->companions[1], &(PciAddress) { 0, 4, 0, 1 }));
        CHECK_INT(config_find_gpu(c, &other)->n_companions, 0);
        config_free(c);

        parse_bad("[Gpu 0000:01:00]\nCompanions=0000:03:00\n", "'0000:03:00' is not a PCI function address");
        parse_bad("[Gpu 0000:01:00]\nCompanions=usb\n", "'usb' is not a PCI function address");
        parse_bad("[Gpu 0000:01:00]\nCompanions=../../x\n", "is not a PCI function address");
        parse_bad("[Gpu 0000:01:00]\nCompanions=0000:01:00.1\n", "0000:01:00.1 is in the GPU's own slot");
        parse_bad("[Gpu 0000:01:00]\nCompanions=03:00.0;0000:03:00.0\n", "0000:03:00.0 is listed twice");
        parse_bad("[Daemon]\nGpus=0000:01:00;0000:03:00\n[Gpu 0000:01:00]\nCompanions=0000:03:00.0\n",
                  "0000:03:00.0 is a function of another managed GPU");
        parse_bad("[Gpu 0000:01:00]\nCompanions=0000:03:00.0\n[Gpu 0000:05:00]\nCompanions=0000:03:00.0\n",
                  "is a function of [Gpu 0000:0");
}

static void test_check_against_sysfs(void) {
        FakeKernel *k = machine();
        PciAddress slots[] = { addr(GPU), addr("0000:02:00") };
        g_autofree char *err = NULL;
        char *err2 = NULL, *err3 = NULL;
        Config *c;

        fake_add_function(k, "0000:00:06.0", 0x060400, 0x1b36, 0x000c, "pcieport", 7, false);

        c = parse("[Gpu 0000:01:00]\nCompanions=0000:03:00.0;0000:0f:00.0\n", &err);
        CHECK(c != NULL);
        /* a companion that is present and no bridge, one that is absent: fine */
        CHECK_INT(gpus_check_companions(&k->sysfs, c, slots, 1, &err2), 0);
        CHECK(err2 == NULL);
        config_free(c);

        c = parse("[Gpu 0000:01:00]\nCompanions=0000:00:06.0\n", &err2);
        CHECK(c != NULL);
        CHECK_INT(gpus_check_companions(&k->sysfs, c, slots, 1, &err3), -EINVAL);
        CHECK_CONTAINS(err3, "test.conf: [Gpu 0000:01:00]: Companions: 0000:00:06.0 is a bridge");
        free(err3);
        err3 = NULL;
        config_free(c);

        /* the NIC's slot managed too (as Gpus=auto could find it): not a companion */
        c = parse("[Gpu 0000:01:00]\nCompanions=0000:02:00.0\n", &err2);
        CHECK(c != NULL);
        CHECK_INT(gpus_check_companions(&k->sysfs, c, slots, 2, &err3), -EINVAL);
        CHECK_CONTAINS(err3, "test.conf: [Gpu 0000:01:00]: Companions: 0000:02:00.0 is a function of 0000:02:00, "
                       "another managed GPU");
        free(err3);
        CHECK_INT(gpus_check_companions(&k->sysfs, c, slots, 1, NULL), 0);
        config_free(c);
        fake_kernel_free(k);
}

int main(void) {
        test_address_matches();
        test_read();
        test_plan_order();
        test_group_not_viable();
        test_switch();
        test_record_and_recovery();
        test_config();
        test_check_against_sysfs();
        TEST_MAIN_END();
}
