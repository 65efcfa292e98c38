/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The switch engine over the simulated kernel, with systemd's services
 * played by a stand-in: the steps each kind of switch is made of, and a
 * failure at every one of them undone (functions back, services running
 * again, no record left), for a switch over the bus, at boot and in the
 * recovery after a crash. */
#include <glib.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "engine.h"
#include "fake-sysfs.h"
#include "function-power.h"
#include "gpu.h"
#include "switch-record.h"
#include "testlib.h"
#include "util.h"

#define HOST_STATE "bochs-drm[(null)] snd_hda_intel[(null)] xhci_hcd[(null)]"
#define VFIO_STATE "vfio-pci[vfio-pci] vfio-pci[vfio-pci] vfio-pci[vfio-pci]"
#define ADDRESS "0000:01:00"

static const char *const host_drivers[] = { "bochs-drm", "snd_hda_intel", "xhci_hcd" };
static char *const units[] = { (char *) "nvidia-persistenced.service", (char *) "nvidia-powerd.service", NULL };

/* systemd, as far as the engine sees it: which units run. */
static struct {
        bool running[2];
        int stops, restarts;
        int fail_stop_of;           /* 1-based unit index whose stop fails, 0: none */
} fake_systemd;

static int fake_stop(const char *state_dir, const char *address, char *const *list, SwitchError *error) {
        for (size_t i = 0; list && list[i]; i++) {
                if (fake_systemd.fail_stop_of == (int) i + 1)
                        return switch_error_set(error, SWITCH_ERROR_FAILED, SWITCH_STEP_STOP_SERVICES, NULL, EIO,
                                                "%s: stopping %s: refused", address, list[i]);
                fake_systemd.running[i] = false;
                fake_systemd.stops++;
        }
        return 0;
}

static int fake_restart(const char *state_dir, const char *address) {
        fake_systemd.running[0] = fake_systemd.running[1] = true;
        fake_systemd.restarts++;
        return 0;
}

static const SwitchServices fake_services = { .stop = fake_stop, .restart = fake_restart };

static void systemd_reset(void) {
        fake_systemd = (typeof(fake_systemd)) { .running = { true, true } };
}

static bool services_running(void) {
        return fake_systemd.running[0] && fake_systemd.running[1];
}

/* What the observer saw, and where it stops the switch. */
typedef struct Watch {
        SwitchStep seen[_SWITCH_STEP_MAX * 2];
        size_t n_seen;
        SwitchStep veto;             /* fail before this step; _SWITCH_STEP_INVALID: none */
        bool record_at_rebind;       /* the record was on disk when the kernel writes began */
        char record_power[3][8];     /* and the power/control it kept of each function */
        const char *state_dir;
} Watch;

static int watch_step(SwitchStep step, void *userdata) {
        Watch *w = userdata;
        _cleanup_(switch_record_freep) SwitchRecord *rec = NULL;

        if (w->n_seen < ELEMENTSOF(w->seen))
                w->seen[w->n_seen++] = step;
        if (step == SWITCH_STEP_REBIND) {
                w->record_at_rebind = switch_record_read(w->state_dir, ADDRESS, &rec) == 0;
                for (size_t i = 0; rec && i < rec->original->n_functions && i < ELEMENTSOF(w->record_power); i++)
                        snprintf(w->record_power[i], sizeof w->record_power[i], "%s",
                                 strempty(rec->original->functions[i].power_control));
        }
        return step == w->veto ? -ECANCELED : 0;
}

typedef struct Machine {
        FakeKernel *k;
        Gpu *gpu;
        char state_dir[300], proc_root[300];
} Machine;

static void machine_read(Machine *m) {
        PciAddress slot;

        gpu_free(m->gpu);
        m->gpu = NULL;
        CHECK_INT(pci_address_parse(ADDRESS, &slot), 0);
        CHECK_INT(gpu_read(&m->k->sysfs, &slot, NULL, 0, &m->gpu), 0);
        for (size_t i = 0; i < m->gpu->n_functions && i < 3; i++)
                m->gpu->functions[i].host_driver = strdup(host_drivers[i]);
}

static void machine_init(Machine *m) {
        *m = (Machine) { .k = fake_kernel_new() };
        snprintf(m->state_dir, sizeof m->state_dir, "%s/state", m->k->root);
        snprintf(m->proc_root, sizeof m->proc_root, "%s/proc-empty", m->k->root);
        CHECK_INT(mkdir(m->proc_root, 0755), 0);
        machine_read(m);
        systemd_reset();
}

static void machine_done(Machine *m) {
        gpu_free(m->gpu);
        fake_kernel_free(m->k);
}

static bool record_exists(Machine *m) {
        _cleanup_(switch_record_freep) SwitchRecord *rec = NULL;
        return switch_record_read(m->state_dir, ADDRESS, &rec) == 0;
}

static bool terminate_holders, keep_holders;
static const char *sessions_dir;
static unsigned release_ms;
/* the observer's step for run(); NULL: watch_step */
static int (*run_step)(SwitchStep step, void *userdata);

static int run(Machine *m, SwitchOrigin origin, SwitchTarget target, Watch *w, const SwitchRecord *rec,
               SwitchError *e) {
        SwitchObserver o = { .step = run_step ? run_step : watch_step, .userdata = w };
        SwitchContext c = {
                .origin = origin,
                .target = target,
                .gpu = m->gpu,
                .record = rec,
                .sysfs = &m->k->sysfs,
                .state_dir = m->state_dir,
                .proc_root = m->proc_root,
                .stop_services = units,
                .services = &fake_services,
                .observer = &o,
                .terminate_holders = terminate_holders,
                .keep_holders = keep_holders,
                .sessions_dir = sessions_dir,
                .holders_release_ms = release_ms,
        };

        w->state_dir = m->state_dir;
        return engine_run(&c, e);
}

static Watch watch(void) {
        return (Watch) { .veto = _SWITCH_STEP_INVALID };
}

static void check_steps(const Watch *w, const SwitchStep *want, size_t n, const char *what) {
        bool same = w->n_seen == n;

        for (size_t i = 0; same && i < n; i++)
                same = w->seen[i] == want[i];
        if (same)
                return;
        fprintf(stderr, "%s: steps run:", what);
        for (size_t i = 0; i < w->n_seen; i++)
                fprintf(stderr, " %s", switch_step_to_string(w->seen[i]));
        fprintf(stderr, "\n");
        test_failures++;
}

static void test_declared_steps(void) {
        static const SwitchStep to_vfio[] = { SWITCH_STEP_PLAN, SWITCH_STEP_STOP_SERVICES, SWITCH_STEP_CHECK_HOLDERS,
                                              SWITCH_STEP_WRITE_RECORD, SWITCH_STEP_REBIND, SWITCH_STEP_CLEAR_RECORD };
        static const SwitchStep to_host[] = { SWITCH_STEP_PLAN, SWITCH_STEP_CHECK_HOLDERS, SWITCH_STEP_WRITE_RECORD,
                                              SWITCH_STEP_REBIND, SWITCH_STEP_CLEAR_RECORD,
                                              SWITCH_STEP_START_SERVICES };
        static const SwitchStep recovery[] = { SWITCH_STEP_RESTORE, SWITCH_STEP_CLEAR_RECORD,
                                               SWITCH_STEP_START_SERVICES };
        SwitchStep steps[_SWITCH_STEP_MAX];

        for (SwitchOrigin o = SWITCH_ORIGIN_BUS; o <= SWITCH_ORIGIN_BOOT; o++) {
                CHECK_INT(switch_steps(o, SWITCH_TARGET_VFIO, steps), ELEMENTSOF(to_vfio));
                CHECK_INT(memcmp(steps, to_vfio, sizeof to_vfio), 0);
                CHECK_INT(switch_steps(o, SWITCH_TARGET_HOST, steps), ELEMENTSOF(to_host));
                CHECK_INT(memcmp(steps, to_host, sizeof to_host), 0);
                CHECK_INT(switch_steps(o, (SwitchTarget) 9, steps), 0);
        }
        CHECK_INT(switch_steps(SWITCH_ORIGIN_RECOVERY, SWITCH_TARGET_VFIO, steps), ELEMENTSOF(recovery));
        CHECK_INT(memcmp(steps, recovery, sizeof recovery), 0);
        for (SwitchStep s = 0; s < _SWITCH_STEP_MAX; s++)
                CHECK(switch_step_to_string(s) != NULL);
}

/* Each (from, to) runs its declared steps, the record on disk while the
 * kernel writes happen, gone after; the services stopped for vfio and
 * running again on the host. */
static void test_round_trip(SwitchOrigin origin) {
        static const SwitchStep to_vfio[] = { SWITCH_STEP_PLAN, SWITCH_STEP_STOP_SERVICES, SWITCH_STEP_CHECK_HOLDERS,
                                              SWITCH_STEP_WRITE_RECORD, SWITCH_STEP_REBIND, SWITCH_STEP_CLEAR_RECORD };
        static const SwitchStep to_host[] = { SWITCH_STEP_PLAN, SWITCH_STEP_CHECK_HOLDERS, SWITCH_STEP_WRITE_RECORD,
                                              SWITCH_STEP_REBIND, SWITCH_STEP_CLEAR_RECORD,
                                              SWITCH_STEP_START_SERVICES };
        static const SwitchStep nothing_to_do_host[] = { SWITCH_STEP_PLAN, SWITCH_STEP_START_SERVICES };
        static const SwitchStep nothing_to_do_vfio[] = { SWITCH_STEP_PLAN };
        _cleanup_(switch_error_done) SwitchError e = SWITCH_ERROR_INIT;
        Machine m;
        Watch w;

        machine_init(&m);
        fake_put_attr(m.k, "0000:01:00.1", "power/control", "on\n");
        w = watch();
        CHECK_INT(run(&m, origin, SWITCH_TARGET_VFIO, &w, NULL, &e), 0);
        check_steps(&w, to_vfio, ELEMENTSOF(to_vfio), "host -> vfio");
        CHECK(w.record_at_rebind);
        /* the record keeps each function's power/control from before */
        CHECK_STR(w.record_power[0], "auto");
        CHECK_STR(w.record_power[1], "on");
        CHECK_STR(w.record_power[2], "auto");
        CHECK(!record_exists(&m));
        CHECK_STR(fake_state(m.k), VFIO_STATE);
        CHECK(!fake_systemd.running[0] && !fake_systemd.running[1]);

        machine_read(&m);
        w = watch();
        CHECK_INT(run(&m, origin, SWITCH_TARGET_VFIO, &w, NULL, &e), 0);
        check_steps(&w, nothing_to_do_vfio, ELEMENTSOF(nothing_to_do_vfio), "vfio -> vfio");
        CHECK_INT(fake_systemd.stops, 2);

        w = watch();
        CHECK_INT(run(&m, origin, SWITCH_TARGET_HOST, &w, NULL, &e), 0);
        check_steps(&w, to_host, ELEMENTSOF(to_host), "vfio -> host");
        CHECK(w.record_at_rebind);
        CHECK(!record_exists(&m));
        CHECK_STR(fake_state(m.k), HOST_STATE);
        CHECK(services_running());

        /* on the host already: no write, but the services run again (a
         * daemon stopped after the switch back may have left them stopped) */
        machine_read(&m);
        fake_systemd.running[0] = false;
        m.k->n_writes = 0;
        w = watch();
        CHECK_INT(run(&m, origin, SWITCH_TARGET_HOST, &w, NULL, &e), 0);
        check_steps(&w, nothing_to_do_host, ELEMENTSOF(nothing_to_do_host), "host -> host");
        CHECK_INT(m.k->n_writes, 0);
        CHECK(services_running());
        CHECK(!switch_error_is_set(&e));
        machine_done(&m);
}

/* A failure before each step, and at each kernel write: the GPU is where
 * it began, the services run as before, no record is left, and the error
 * names the step. */
static void test_failure_at_every_step(SwitchOrigin origin, SwitchTarget from, SwitchTarget to) {
        SwitchStep steps[_SWITCH_STEP_MAX];
        size_t n = switch_steps(origin, to, steps);
        const char *from_state = from == SWITCH_TARGET_VFIO ? VFIO_STATE : HOST_STATE;
        char what[128];

        for (size_t i = 0; i < n; i++) {
                _cleanup_(switch_error_done) SwitchError e = SWITCH_ERROR_INIT;
                bool was_running;
                Machine m;
                Watch w;
                int r;

                machine_init(&m);
                if (from == SWITCH_TARGET_VFIO) {
                        w = watch();
                        CHECK_INT(run(&m, origin, SWITCH_TARGET_VFIO, &w, NULL, &e), 0);
                        machine_read(&m);
                }
                was_running = services_running();
                w = watch();
                w.veto = steps[i];
                r = run(&m, origin, to, &w, NULL, &e);
                snprintf(what, sizeof what, "%s, %s -> %s, failing at %s", switch_origin_to_string(origin),
                         switch_target_to_string(from), switch_target_to_string(to), switch_step_to_string(steps[i]));
                if (steps[i] == SWITCH_STEP_CLEAR_RECORD || steps[i] == SWITCH_STEP_START_SERVICES) {
                        /* cleanup, and after the kernel writes: they run whatever the observer says */
                        CHECK_INT(r, 0);
                        CHECK_STR(fake_state(m.k), to == SWITCH_TARGET_VFIO ? VFIO_STATE : HOST_STATE);
                } else {
                        CHECK_INT(r, -ECANCELED);
                        CHECK_INT(e.step, steps[i]);
                        CHECK_INT(e.kind, SWITCH_ERROR_FAILED);
                        if (strcmp(fake_state(m.k), from_state) != 0) {
                                fprintf(stderr, "%s: left %s\n", what, fake_state(m.k));
                                test_failures++;
                        }
                        if (services_running() != was_running) {
                                fprintf(stderr, "%s: services %s\n", what, services_running() ? "started" : "stopped");
                                test_failures++;
                        }
                }
                if (record_exists(&m)) {
                        fprintf(stderr, "%s: the record is left\n", what);
                        test_failures++;
                }
                machine_done(&m);
        }

        /* and each kernel write of the rebind in turn */
        for (int write = 1;; write++) {
                _cleanup_(switch_error_done) SwitchError e = SWITCH_ERROR_INIT;
                bool was_running;
                Machine m;
                Watch w = watch();
                int r;

                machine_init(&m);
                if (from == SWITCH_TARGET_VFIO) {
                        CHECK_INT(run(&m, origin, SWITCH_TARGET_VFIO, &w, NULL, &e), 0);
                        machine_read(&m);
                        w = watch();
                }
                was_running = services_running();
                m.k->n_writes = 0;
                m.k->fail_write = write;
                r = run(&m, origin, to, &w, NULL, &e);
                if (r == 0) {
                        CHECK(write > 1);       /* every write was tried */
                        machine_done(&m);
                        break;
                }
                CHECK_INT(e.step, SWITCH_STEP_REBIND);
                CHECK_CONTAINS(e.message, "rolled back");
                CHECK_STR(fake_state(m.k), from_state);
                CHECK(services_running() == was_running);
                CHECK(!record_exists(&m));
                machine_done(&m);
        }
}

/* systemd refuses to stop the second unit: the first runs again. */
static void test_services_refuse(void) {
        _cleanup_(switch_error_done) SwitchError e = SWITCH_ERROR_INIT;
        Machine m;
        Watch w = watch();

        machine_init(&m);
        fake_systemd.fail_stop_of = 2;
        CHECK(run(&m, SWITCH_ORIGIN_BOOT, SWITCH_TARGET_VFIO, &w, NULL, &e) < 0);
        CHECK_INT(e.step, SWITCH_STEP_STOP_SERVICES);
        CHECK_CONTAINS(e.message, "nvidia-powerd.service");
        CHECK(services_running());
        CHECK_STR(fake_state(m.k), HOST_STATE);
        CHECK(!record_exists(&m));
        machine_done(&m);
}

/* A process holding the GPU's DRM node: GpuInUse, nothing changed, the
 * services stopped for the switch running again. */
static void test_holder(void) {
        _cleanup_(switch_error_done) SwitchError e = SWITCH_ERROR_INIT;
        struct stat st;
        char p[2048], dev[32];
        Machine m;
        Watch w = watch();

        machine_init(&m);
        CHECK_INT(stat("/dev/full", &st), 0);
        snprintf(p, sizeof p, "mkdir -p %s/devices/pci0000:00/0000:01:00.0/drm/card0 %s/4242/fd", m.k->root,
                 m.proc_root);
        CHECK_INT(system(p), 0);
        snprintf(dev, sizeof dev, "%u:%u\n", major(st.st_rdev), minor(st.st_rdev));
        fake_put_attr(m.k, "0000:01:00.0", "drm/card0/dev", dev);
        snprintf(p, sizeof p, "%s/4242/fd/3", m.proc_root);
        CHECK_INT(symlink("/dev/full", p), 0);

        CHECK_INT(run(&m, SWITCH_ORIGIN_BOOT, SWITCH_TARGET_VFIO, &w, NULL, &e), -EADDRINUSE);
        CHECK_INT(e.kind, SWITCH_ERROR_IN_USE);
        CHECK_INT(e.step, SWITCH_STEP_CHECK_HOLDERS);
        CHECK_CONTAINS(e.message, "4242");
        CHECK_CONTAINS(e.message, "nothing was changed");
        CHECK_STR(fake_state(m.k), HOST_STATE);
        CHECK(services_running());
        CHECK_INT(fake_systemd.restarts, 1);

        /* PID 1 (init.scope) holds it: refused even when asked to end the
         * holders, nothing signalled */
        snprintf(p, sizeof p, "%s/4242/cgroup", m.proc_root);
        CHECK_INT(g_file_set_contents(p, "0::/init.scope\n", -1, NULL), 1);
        switch_error_done(&e);
        terminate_holders = true;
        w = watch();
        CHECK_INT(run(&m, SWITCH_ORIGIN_BUS, SWITCH_TARGET_VFIO, &w, NULL, &e), -EADDRINUSE);
        terminate_holders = false;
        CHECK_INT(e.kind, SWITCH_ERROR_IN_USE);
        CHECK_CONTAINS(e.message, "gpuswitchd never ends");
        CHECK_STR(fake_state(m.k), HOST_STATE);
        CHECK(services_running());
        machine_done(&m);
}

/* A node of the GPU with the device number of PATH (a character device of
 * this machine), held by the simulated process PID. */
static void hold_node(Machine *m, const char *function, const char *dir, const char *path, int pid) {
        struct stat st;
        char p[2048], dev[32];

        CHECK_INT(stat(path, &st), 0);
        snprintf(p, sizeof p, "mkdir -p %s/devices/pci0000:00/%s/%s %s/%d/fd", m->k->root, function, dir,
                 m->proc_root, pid);
        CHECK_INT(system(p), 0);
        snprintf(p, sizeof p, "%s/dev", dir);
        snprintf(dev, sizeof dev, "%u:%u\n", major(st.st_rdev), minor(st.st_rdev));
        fake_put_attr(m->k, function, p, dev);
        snprintf(p, sizeof p, "%s/%d/fd/3", m->proc_root, pid);
        CHECK_INT(symlink(path, p), 0);
}

/* Back to the host with no holders: the fake kernel keeps a function's
 * nodes after the unbind, where a real one has none on vfio-pci. */
static void back_to_host(Machine *m) {
        _cleanup_(switch_error_done) SwitchError e = SWITCH_ERROR_INIT;
        char off[320];
        Watch w = watch();
        bool keep = keep_holders, term = terminate_holders;

        snprintf(off, sizeof off, "%s.off", m->proc_root);
        CHECK_INT(rename(m->proc_root, off), 0);
        CHECK_INT(mkdir(m->proc_root, 0755), 0);
        machine_read(m);
        keep_holders = terminate_holders = false;
        CHECK_INT(run(m, SWITCH_ORIGIN_BUS, SWITCH_TARGET_HOST, &w, NULL, &e), 0);
        keep_holders = keep;
        terminate_holders = term;
        CHECK_STR(fake_state(m->k), HOST_STATE);
        CHECK_INT(rmdir(m->proc_root), 0);
        CHECK_INT(rename(off, m->proc_root), 0);
        machine_read(m);
}

static void set_cgroup(Machine *m, int pid, const char *line) {
        char p[512];

        snprintf(p, sizeof p, "%s/%d/cgroup", m->proc_root, pid);
        CHECK_INT(g_file_set_contents(p, line, -1, NULL), 1);
}

static char release_root[1024];
static int release_pids[4];
static size_t n_release_pids;

/* The holders let go a moment after the check began, in release_pids'
 * order (a compositor exits, then logind and PID 1 drop their copies). */
static void *release_later(void *userdata) {
        char p[2048];

        usleep(300 * 1000);
        for (size_t i = 0; i < n_release_pids; i++) {
                snprintf(p, sizeof p, "%s/%d/fd/3", release_root, release_pids[i]);
                (void) unlink(p);
                usleep(50 * 1000);
        }
        return NULL;
}

static pthread_t release_thread;

static int release_at_check(SwitchStep step, void *userdata) {
        if (step == SWITCH_STEP_CHECK_HOLDERS)
                CHECK_INT(pthread_create(&release_thread, NULL, release_later, NULL), 0);
        return watch_step(step, userdata);
}

/* keep_holders: holders that only lose the device (the DRM node of
 * bochs-drm, a USB node below the xHCI) are left running and the switch
 * completes; one that blocks (ALSA's control node) refuses it, naming only
 * the blocking one, with nothing written.  Without the flag the
 * non-blocking ones refuse as before; with terminate_holders too only the
 * blocking ones are to be ended, so a protected holder that only loses
 * the device does not refuse it. */
static void test_keep_holders(void) {
        _cleanup_(switch_error_done) SwitchError e = SWITCH_ERROR_INIT;
        Machine m;
        Watch w = watch();

        machine_init(&m);
        hold_node(&m, "0000:01:00.0", "drm/card0", "/dev/full", 4242);
        hold_node(&m, "0000:01:00.2", "usb1", "/dev/zero", 4343);
        fake_put_attr(m.k, "0000:01:00.2", "usb1/busnum", "1\n");
        fake_put_attr(m.k, "0000:01:00.2", "usb1/devnum", "1\n");

        /* no flag: refused, each named as losing the device, the option offered */
        m.k->n_writes = 0;
        CHECK_INT(run(&m, SWITCH_ORIGIN_BUS, SWITCH_TARGET_VFIO, &w, NULL, &e), -EADDRINUSE);
        CHECK_INT(e.kind, SWITCH_ERROR_IN_USE);
        CHECK_CONTAINS(e.message, "4242  (uid 0) holds card0 (would lose the device)");
        CHECK_CONTAINS(e.message, "holds bus/usb/001/001 (would lose the device)");
        CHECK_CONTAINS(e.message, "--keep-holders to leave them running");
        CHECK_STR(fake_state(m.k), HOST_STATE);
        CHECK_INT(m.k->n_writes, 0);

        /* keep_holders: the switch goes through them, there and back */
        switch_error_done(&e);
        keep_holders = true;
        w = watch();
        CHECK_INT(run(&m, SWITCH_ORIGIN_BUS, SWITCH_TARGET_VFIO, &w, NULL, &e), 0);
        CHECK(!switch_error_is_set(&e));
        CHECK_STR(fake_state(m.k), VFIO_STATE);
        CHECK(!record_exists(&m));
        back_to_host(&m);

        /* and a holder of the HD audio function's ALSA node: refused,
         * naming it alone, nothing written */
        hold_node(&m, "0000:01:00.1", "sound/card0/controlC0", "/dev/urandom", 4444);
        m.k->n_writes = 0;
        w = watch();
        CHECK_INT(run(&m, SWITCH_ORIGIN_BUS, SWITCH_TARGET_VFIO, &w, NULL, &e), -EADDRINUSE);
        CHECK_INT(e.kind, SWITCH_ERROR_IN_USE);
        CHECK_INT(e.step, SWITCH_STEP_CHECK_HOLDERS);
        CHECK_CONTAINS(e.message, "4444  (uid 0) holds controlC0 (blocks the unbind)");
        CHECK_CONTAINS(e.message, "even --keep-holders cannot leave them running (2 more would only lose the device)");
        CHECK(!strstr(e.message, "4242"));
        CHECK(!strstr(e.message, "4343"));
        CHECK_STR(fake_state(m.k), HOST_STATE);
        CHECK_INT(m.k->n_writes, 0);
        CHECK(!record_exists(&m));
        CHECK(services_running());

        /* both flags: only the blocking holder is to be ended, so PID 1
         * holding card0 refuses nothing; PID 1 holding the ALSA node does */
        set_cgroup(&m, 4242, "0::/init.scope\n");
        switch_error_done(&e);
        terminate_holders = true;
        w = watch();
        /* the ended holder exits (a simulated one is not signalled), and
         * the switch waits for it only: card0's and the USB node's stay */
        snprintf(release_root, sizeof release_root, "%s", m.proc_root);
        release_pids[0] = 4444;
        n_release_pids = 1;
        run_step = release_at_check;
        CHECK_INT(run(&m, SWITCH_ORIGIN_BUS, SWITCH_TARGET_VFIO, &w, NULL, &e), 0);
        run_step = NULL;
        CHECK_INT(pthread_join(release_thread, NULL), 0);
        CHECK_STR(fake_state(m.k), VFIO_STATE);
        back_to_host(&m);
        hold_node(&m, "0000:01:00.1", "sound/card0/controlC0", "/dev/urandom", 4444);
        set_cgroup(&m, 4444, "0::/init.scope\n");
        m.k->n_writes = 0;
        w = watch();
        CHECK_INT(run(&m, SWITCH_ORIGIN_BUS, SWITCH_TARGET_VFIO, &w, NULL, &e), -EADDRINUSE);
        CHECK_CONTAINS(e.message, "gpuswitchd never ends");
        CHECK(!strstr(e.message, "4242"));
        CHECK_INT(m.k->n_writes, 0);
        CHECK_STR(fake_state(m.k), HOST_STATE);
        terminate_holders = keep_holders = false;
        machine_done(&m);
}

/* A fake process holding /dev/full (the fake card0) in cgroup. */
static void session_process(Machine *m, int pid, const char *cgroup) {
        char p[2048];

        snprintf(p, sizeof p, "%s/%d/fd", m->proc_root, pid);
        CHECK_INT(g_mkdir_with_parents(p, 0755), 0);
        snprintf(p, sizeof p, "%s/%d/fd/3", m->proc_root, pid);
        CHECK_INT(symlink("/dev/full", p), 0);
        snprintf(p, sizeof p, "%s/%d/comm", m->proc_root, pid);
        CHECK_INT(g_file_set_contents(p, pid == 1 ? "systemd\n" : pid == 12 ? "systemd-logind\n" : "kwin_wayland\n",
                                      -1, NULL), 1);
        snprintf(p, sizeof p, "%s/%d/cgroup", m->proc_root, pid);
        CHECK_INT(g_file_set_contents(p, cgroup, -1, NULL), 1);
}

/* A compositor took the card through systemd-logind: PID 1 and logind hold
 * copies for its session.  The refusal names it with its session, not PID
 * 1 or logind; asked to end the holders, the switch waits for logind and
 * PID 1 to let go, and refuses, naming who still holds it, when they do
 * not; once they do, it goes on. */
static void test_session_holder(void) {
        _cleanup_(switch_error_done) SwitchError e = SWITCH_ERROR_INIT;
        struct stat st;
        char p[2048], dev[32], sessions[1100];
        Machine m;
        Watch w = watch();

        machine_init(&m);
        CHECK_INT(stat("/dev/full", &st), 0);
        snprintf(p, sizeof p, "mkdir -p %s/devices/pci0000:00/0000:01:00.0/drm/card0", m.k->root);
        CHECK_INT(system(p), 0);
        snprintf(dev, sizeof dev, "%u:%u\n", major(st.st_rdev), minor(st.st_rdev));
        fake_put_attr(m.k, "0000:01:00.0", "drm/card0/dev", dev);
        session_process(&m, 1, "0::/init.scope\n");
        session_process(&m, 12, "0::/system.slice/systemd-logind.service\n");
        session_process(&m, 4300, "0::/user.slice/user-1001.slice/session-2.scope\n");
        snprintf(sessions, sizeof sessions, "%s/sessions", m.k->root);
        CHECK_INT(mkdir(sessions, 0755), 0);
        snprintf(p, sizeof p, "%s/2", sessions);
        {
                g_autofree char *text = g_strdup_printf("UID=%u\nUSER=alice\nSCOPE=session-2.scope\nSEAT=seat0\n"
                                                        "CONTROLLER=:1.42\nDEVICES=%u:%u \n", (unsigned) getuid(),
                                                        major(st.st_rdev), minor(st.st_rdev));

                CHECK_INT(g_file_set_contents(p, text, -1, NULL), 1);
        }
        sessions_dir = sessions;

        CHECK_INT(run(&m, SWITCH_ORIGIN_BUS, SWITCH_TARGET_VFIO, &w, NULL, &e), -EADDRINUSE);
        CHECK_INT(e.kind, SWITCH_ERROR_IN_USE);
        CHECK_CONTAINS(e.message, "4300 kwin_wayland");
        CHECK_CONTAINS(e.message, "alice's session 2, through systemd-logind");
        CHECK_CONTAINS(e.message, "switch with --force");
        CHECK(e.message && !strstr(e.message, "systemd-logind (uid") && !strstr(e.message, "never ends"));

        /* --force: the fake compositor cannot be signalled (not pinned) and
         * nothing lets go */
        switch_error_done(&e);
        terminate_holders = true;
        release_ms = 300;
        w = watch();
        CHECK_INT(run(&m, SWITCH_ORIGIN_BUS, SWITCH_TARGET_VFIO, &w, NULL, &e), -EADDRINUSE);
        CHECK_INT(e.kind, SWITCH_ERROR_IN_USE);
        CHECK_CONTAINS(e.message, "still in use 300 ms after its holders were ended");
        CHECK_CONTAINS(e.message, "4300 kwin_wayland");
        CHECK_STR(fake_state(m.k), HOST_STATE);
        CHECK(!record_exists(&m));

        /* they let go while the switch waits: it goes on */
        switch_error_done(&e);
        snprintf(release_root, sizeof release_root, "%s", m.proc_root);
        memcpy(release_pids, (int[]) { 4300, 12, 1 }, 3 * sizeof(int));
        n_release_pids = 3;
        release_ms = 5000;
        w = watch();
        {
                SwitchObserver o = { .step = release_at_check, .userdata = &w };
                SwitchContext c = {
                        .origin = SWITCH_ORIGIN_BUS,
                        .target = SWITCH_TARGET_VFIO,
                        .gpu = m.gpu,
                        .sysfs = &m.k->sysfs,
                        .state_dir = m.state_dir,
                        .proc_root = m.proc_root,
                        .stop_services = units,
                        .services = &fake_services,
                        .observer = &o,
                        .terminate_holders = true,
                        .sessions_dir = sessions,
                        .holders_release_ms = release_ms,
                };

                CHECK_INT(engine_run(&c, &e), 0);
                pthread_join(release_thread, NULL);
        }
        CHECK_STR(fake_state(m.k), VFIO_STATE);
        terminate_holders = false;
        release_ms = 0;
        sessions_dir = NULL;
        machine_done(&m);
}

/* A daemon killed in the middle of a switch to vfio: the record and the
 * stopped services are on disk, the GPU half moved.  Recovery puts every
 * function back, starts the services and removes the record; a recovery
 * that cannot put them all back still removes it and says which are left. */
static void test_recovery(void) {
        static const SwitchStep recovery[] = { SWITCH_STEP_RESTORE, SWITCH_STEP_CLEAR_RECORD,
                                               SWITCH_STEP_START_SERVICES };

        for (int broken = 0; broken <= 1; broken++) {
                _cleanup_(switch_error_done) SwitchError e = SWITCH_ERROR_INIT;
                _cleanup_(switch_record_freep) SwitchRecord *rec = NULL;
                Machine m;
                Watch w = watch();
                int r;

                machine_init(&m);
                /* the interrupted switch: services stopped, record written,
                 * the USB function (the first to move) on vfio-pci */
                fake_systemd.running[0] = fake_systemd.running[1] = false;
                /* its record kept power/control as the engine reads it
                 * (auto, and "on" for the audio function); the switch's
                 * hold was never released */
                fake_put_attr(m.k, "0000:01:00.1", "power/control", "on\n");
                power_control_read_all(&m.k->sysfs, m.gpu);
                CHECK_INT(switch_record_write(m.state_dir, m.gpu, SWITCH_TARGET_VFIO), 0);
                for (int f = 0; f < 3; f++) {
                        char fn[PCI_FUNCTION_STRLEN];

                        snprintf(fn, sizeof fn, "%s.%d", ADDRESS, f);
                        fake_put_attr(m.k, fn, "power/control", "on\n");
                }
                fake_add_driver(m.k, "vfio-pci");
                CHECK_INT(sysfs_set_driver_override(&m.k->sysfs, "0000:01:00.2", "vfio-pci"), 0);
                CHECK_INT(sysfs_unbind(&m.k->sysfs, "0000:01:00.2", "xhci_hcd"), 0);
                CHECK_INT(sysfs_drivers_probe(&m.k->sysfs, "0000:01:00.2"), 0);
                CHECK_STR(fake_driver(m.k, "0000:01:00.2"), "vfio-pci");

                CHECK_INT(switch_record_read(m.state_dir, ADDRESS, &rec), 0);
                if (broken) {
                        /* xhci_hcd binds nothing any more */
                        snprintf(m.k->refuse_driver, sizeof m.k->refuse_driver, "xhci_hcd");
                        snprintf(m.k->refuse_device, sizeof m.k->refuse_device, "0000:01:00.2");
                }
                m.k->n_log = 0;
                r = run(&m, SWITCH_ORIGIN_RECOVERY, rec->target, &w, rec, &e);
                if (!broken) {
                        CHECK_INT(r, 0);
                        /* back to the host function 0 first, as a switch there goes */
                        CHECK(m.k->n_log > 0 && strstr(m.k->log[0], "0000:01:00.0/driver_override"));
                        check_steps(&w, recovery, ELEMENTSOF(recovery), "recovery");
                        CHECK_STR(fake_state(m.k), HOST_STATE);
                        CHECK(services_running());
                        /* power/control as the record kept it */
                        CHECK_STR(fake_attr(m.k, "0000:01:00.0", "power/control"), "auto");
                        CHECK_STR(fake_attr(m.k, "0000:01:00.1", "power/control"), "on");
                        CHECK_STR(fake_attr(m.k, "0000:01:00.2", "power/control"), "auto");
                } else {
                        CHECK(r < 0);
                        CHECK_INT(e.step, SWITCH_STEP_RESTORE);
                        CHECK_CONTAINS(e.message, "0000:01:00.2");
                        CHECK(!services_running());     /* not started on a GPU that is not back */
                }
                CHECK(!record_exists(&m));
                machine_done(&m);
        }

        /* the switch interrupted was one back to the host: the GPU goes back
         * to vfio-pci and the services stay stopped */
        {
                _cleanup_(switch_error_done) SwitchError e = SWITCH_ERROR_INIT;
                _cleanup_(switch_record_freep) SwitchRecord *rec = NULL;
                Machine m;
                Watch w = watch();

                machine_init(&m);
                CHECK_INT(run(&m, SWITCH_ORIGIN_BUS, SWITCH_TARGET_VFIO, &w, NULL, &e), 0);
                machine_read(&m);
                CHECK_INT(switch_record_write(m.state_dir, m.gpu, SWITCH_TARGET_HOST), 0);
                CHECK_INT(sysfs_set_driver_override(&m.k->sysfs, "0000:01:00.0", NULL), 0);
                CHECK_INT(sysfs_unbind(&m.k->sysfs, "0000:01:00.0", "vfio-pci"), 0);
                CHECK_INT(sysfs_drivers_probe(&m.k->sysfs, "0000:01:00.0"), 0);
                CHECK_STR(fake_driver(m.k, "0000:01:00.0"), "bochs-drm");
                CHECK_INT(switch_record_read(m.state_dir, ADDRESS, &rec), 0);
                w = watch();
                CHECK_INT(run(&m, SWITCH_ORIGIN_RECOVERY, rec->target, &w, rec, &e), 0);
                CHECK_STR(fake_state(m.k), VFIO_STATE);
                CHECK(!fake_systemd.running[0] && !fake_systemd.running[1]);
                CHECK(!record_exists(&m));
                machine_done(&m);
        }
}

/* The daemon's list of records, as recovery finds them. */
static void test_record_list(void) {
        Machine m;
        char p[2048];
        char **l = NULL;

        machine_init(&m);
        CHECK_INT(switch_record_list(m.state_dir, &l), 0);
        CHECK(l && !l[0]);
        free(l);
        CHECK_INT(switch_record_write(m.state_dir, m.gpu, SWITCH_TARGET_VFIO), 0);
        /* not ours, or not a canonical slot: ignored */
        snprintf(p, sizeof p, "touch %s/switch-0a:00.conf %s/switch-0000:0a:00.1.conf %s/other.conf "
                 "%s/stopped-services-0000:01:00", m.state_dir, m.state_dir, m.state_dir, m.state_dir);
        CHECK_INT(system(p), 0);
        CHECK_INT(switch_record_list(m.state_dir, &l), 0);
        CHECK(l && l[0] && !l[1]);
        CHECK_STR(l[0], ADDRESS);
        for (char **i = l; i && *i; i++)
                free(*i);
        free(l);
        machine_done(&m);
}

int main(void) {
        test_declared_steps();
        for (SwitchOrigin o = SWITCH_ORIGIN_BUS; o <= SWITCH_ORIGIN_BOOT; o++) {
                test_round_trip(o);
                test_failure_at_every_step(o, SWITCH_TARGET_HOST, SWITCH_TARGET_VFIO);
                test_failure_at_every_step(o, SWITCH_TARGET_VFIO, SWITCH_TARGET_HOST);
        }
        test_services_refuse();
        test_holder();
        test_keep_holders();
        test_session_holder();
        test_recovery();
        test_record_list();
        TEST_MAIN_END();
}
