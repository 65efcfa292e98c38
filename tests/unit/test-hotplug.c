/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GPUs that appear and go while the daemon runs: the kernel's uevent
 * messages, as its netlink group carries them, fed to the daemon's handler
 * over the simulated kernel, which adds and removes the functions. */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "errors.h"
#include "fake-sysfs.h"
#include "manager.h"
#include "switch-record.h"
#include "testlib.h"
#include "uevent.h"
#include "util.h"

#define GPU_PATH GPUSWITCH_GPU_PATH_PREFIX "/0000_01_00"

static void fake_kernel_freep(FakeKernel **k) {
        if (*k)
                fake_kernel_free(*k);
}

static void feed(Manager *m, const char *action, const char *function) {
        char buf[512];
        size_t n = fake_uevent(action, function, buf, sizeof buf);

        uevent_handle(m, buf, n);
}

static void feed_gpu(Manager *m, const char *action) {
        char msgs[3][512];
        size_t lens[3], n = fake_gpu_uevents(action, msgs, lens);

        for (size_t i = 0; i < n; i++)
                uevent_handle(m, msgs[i], lens[i]);
}

/* The loop, until the burst's refresh and the reads it started are done. */
static void settle(Manager *m) {
        for (int i = 0; i < 10; i++)
                (void) sd_event_run(m->event, 10 * 1000);
        for (int i = 0; i < 500; i++) {
                bool busy = false;

                busy = m->n_appearing > 0;
                for (size_t k = 0; k < m->n_gpus; k++)
                        busy = busy || m->gpus[k]->refreshing;
                if (!busy)
                        break;
                (void) sd_event_run(m->event, 10 * 1000);
        }
}

static Manager *manager(FakeKernel *k, const char *conf) {
        Manager *m = NULL;
        g_autofree char *err = NULL, *err2 = NULL;

        CHECK_INT(manager_new(&m), 0);
        CHECK_INT(config_parse(conf, strlen(conf), "test", &m->config, &err), 0);
        m->sysfs = k->sysfs;    /* never the real /sys */
        CHECK_INT(manager_discover(m, &err2), 0);
        return m;
}

static bool switched;
static char *switch_error;

static void on_done(ManagedGpu *g, const SwitchError *error, void *userdata) {
        switched = true;
        free(switch_error);
        switch_error = error ? strdup(strempty(error->message)) : NULL;
}

static void switch_to(Manager *m, ManagedGpu *g, SwitchTarget target) {
        const SwitchOwner owner = { .done = on_done };

        switched = false;
        CHECK_INT(managed_gpu_switch(g, target, 0, &owner), 0);
        for (int i = 0; i < 1000 && !switched; i++)
                (void) sd_event_run(m->event, 10 * 1000);
        CHECK(switched);
}

static void expect_no_such_gpu(Manager *m, const char *arg) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        CHECK(!manager_find_gpu(m, arg, &e));
        CHECK_STR(e.name, GS_ERROR_NO_SUCH_GPU);
}

/* Gpus= names the slot, absent at start: managed when it appears, function
 * 0 first and the others in add events of their own; gone when its
 * functions are removed; the same object when it comes back. */
static void test_configured(void) {
        _cleanup_(fake_kernel_freep) FakeKernel *k = fake_kernel_new();
        _cleanup_(manager_freep) Manager *m = NULL;
        ManagedGpu *g;

        fake_gpu_remove(k);
        m = manager(k, "[Daemon]\nGpus=0000:01:00\n");
        CHECK_INT(m->n_gpus, 0);
        expect_no_such_gpu(m, "");

        /* a device of no interest: nothing is read for it */
        fake_add_function(k, "0000:06:00.0", 0x020000, 0x8086, 0x10d3, "e1000e", 8, false);
        feed(m, "add", "0000:06:00.0");
        settle(m);
        CHECK_INT(m->n_gpus, 0);

        /* function 0, alone for a while */
        fake_add_function(k, "0000:01:00.0", 0x030000, 0x1234, 0x1111, "bochs-drm", 5, false);
        feed(m, "add", "0000:01:00.0");
        settle(m);
        CHECK_INT(m->n_gpus, 1);
        if (m->n_gpus != 1)
                return;
        g = m->gpus[0];
        CHECK_STR(g->object_path, GPU_PATH);
        CHECK_STR(g->address, "0000:01:00");
        CHECK_INT(g->state->n_functions, 1);
        /* the others: read into the same GPU */
        fake_add_function(k, "0000:01:00.1", 0x040300, 0x8086, 0x293e, "snd_hda_intel", 5, false);
        fake_add_function(k, "0000:01:00.2", 0x0c0330, 0x1b36, 0x000d, "xhci_hcd", 5, false);
        feed(m, "add", "0000:01:00.1");
        feed(m, "add", "0000:01:00.2");
        settle(m);
        CHECK_INT(m->n_gpus, 1);
        CHECK(m->gpus[0] == g);
        CHECK_INT(g->state->n_functions, 3);
        CHECK_STR(g->state->functions[2].driver, "xhci_hcd");
        CHECK_STR(g->state->functions[2].host_driver, "xhci_hcd");
        CHECK(manager_find_gpu(m, "0000:01:00.2", NULL) == g);

        /* gone: with a read of its functions on a worker under way */
        managed_gpu_refresh(g, true);
        CHECK(g->refreshing);
        fake_gpu_remove(k);
        feed_gpu(m, "remove");
        settle(m);
        CHECK_INT(m->n_gpus, 0);
        expect_no_such_gpu(m, "0000:01:00");
        /* its read came back and let go of it: nothing refers to it */
        for (int i = 0; i < 100 && m->n_gone > 0; i++)
                (void) sd_event_run(m->event, 10 * 1000);
        CHECK_INT(m->n_gone, 0);

        /* back, all three functions in one burst: the same path */
        fake_gpu_add(k);
        feed_gpu(m, "add");
        settle(m);
        CHECK_INT(m->n_gpus, 1);
        if (m->n_gpus == 1) {
                CHECK_STR(m->gpus[0]->object_path, GPU_PATH);
                CHECK_INT(m->gpus[0]->state->n_functions, 3);
                CHECK_INT(managed_gpu_state(m->gpus[0]), GPU_STATE_HOST);
        }

        /* another device's add: the GPU is not read again */
        fake_opens_start(k);
        fake_add_function(k, "0000:07:00.0", 0x020000, 0x8086, 0x10d3, "e1000e", 10, false);
        feed(m, "add", "0000:07:00.0");
        settle(m);
        CHECK_INT(m->n_gpus, 1);
        CHECK_INT(fake_opens(k, NULL), 0);

        /* a function of the slot removed, the others there: still managed */
        fake_remove_function(k, "0000:01:00.2");
        feed(m, "remove", "0000:01:00.2");
        settle(m);
        CHECK_INT(m->n_gpus, 1);
        if (m->n_gpus == 1)
                CHECK_INT(m->gpus[0]->state->n_functions, 2);
}

/* Gpus=auto: a new NVIDIA display controller is managed, a NIC is not. */
static void test_auto(void) {
        _cleanup_(fake_kernel_freep) FakeKernel *k = fake_kernel_new();
        _cleanup_(manager_freep) Manager *m = manager(k, "[Daemon]\nGpus=auto\n");

        CHECK_INT(m->n_gpus, 0);
        fake_add_function(k, "0000:06:00.0", 0x020000, 0x8086, 0x10d3, "e1000e", 8, false);
        feed(m, "add", "0000:06:00.0");
        settle(m);
        CHECK_INT(m->n_gpus, 0);

        fake_add_function(k, "0000:05:00.0", 0x030000, 0x10de, 0x1e84, "nouveau", 9, false);
        fake_add_function(k, "0000:05:00.1", 0x040300, 0x10de, 0x10f8, "snd_hda_intel", 9, false);
        feed(m, "add", "0000:05:00.0");
        feed(m, "add", "0000:05:00.1");
        settle(m);
        CHECK_INT(m->n_gpus, 1);
        if (m->n_gpus == 1) {
                CHECK_STR(m->gpus[0]->address, "0000:05:00");
                CHECK_STR(m->gpus[0]->object_path, GPUSWITCH_GPU_PATH_PREFIX "/0000_05_00");
                CHECK_INT(m->gpus[0]->state->n_functions, 2);
        }
        /* an unrelated device's removal changes nothing */
        fake_remove_function(k, "0000:06:00.0");
        feed(m, "remove", "0000:06:00.0");
        settle(m);
        CHECK_INT(m->n_gpus, 1);
}

/* Removed in the middle of a switch: the switch fails, naming the GPU and
 * the step, and is answered; the GPU is freed after that, not before
 * (ASan); back on the bus it is managed again and switches. */
static void test_remove_while_switching(void) {
        _cleanup_(fake_kernel_freep) FakeKernel *k = fake_kernel_new();
        g_autofree char *state = g_build_filename(k->root, "state", NULL);
        _cleanup_(manager_freep) Manager *m = NULL;
        const SwitchOwner owner = { .done = on_done };
        ManagedGpu *g;

        setenv("GPUSWITCH_STATE_DIR", state, 1);
        setenv("GPUSWITCH_RUNTIME_DIR", state, 1);
        m = manager(k, "[Daemon]\nGpus=0000:01:00\n");
        CHECK_INT(m->n_gpus, 1);
        if (m->n_gpus != 1)
                return;
        g = m->gpus[0];

        k->write_delay_ms = 200;
        switched = false;
        CHECK_INT(managed_gpu_switch(g, SWITCH_TARGET_VFIO, 0, &owner), 0);
        /* until a kernel write of the rebind is under way */
        for (int i = 0; i < 500 && !(g->step && strstr(g->step, "unbind")); i++)
                (void) sd_event_run(m->event, 10 * 1000);
        CHECK(g->step && strstr(g->step, "unbind"));
        fake_gpu_remove(k);          /* after the write under way */
        feed_gpu(m, "remove");
        settle(m);
        CHECK_INT(m->n_gpus, 0);
        expect_no_such_gpu(m, "");
        for (int i = 0; i < 500 && !switched; i++)
                (void) sd_event_run(m->event, 10 * 1000);
        CHECK(switched);
        CHECK_CONTAINS(switch_error, "0000:01:00: the GPU left the PCI bus during the switch to vfio, at its step rebind (0000:01:00.");
        CHECK(k->n_gone_writes > 0);
        CHECK_INT(m->n_gone, 0);
        /* the record is gone: nothing for the next start to put back */
        {
                _cleanup_(switch_record_freep) SwitchRecord *rec = NULL;

                CHECK_INT(switch_record_read(state, "0000:01:00", &rec), -ENOENT);
        }

        k->write_delay_ms = 0;
        fake_gpu_add(k);
        feed_gpu(m, "add");
        settle(m);
        CHECK_INT(m->n_gpus, 1);
        if (m->n_gpus != 1)
                return;
        g = m->gpus[0];
        CHECK_STR(g->object_path, GPU_PATH);
        switch_to(m, g, SWITCH_TARGET_VFIO);
        CHECK(!switch_error);
        CHECK_INT(managed_gpu_state(g), GPU_STATE_VFIO);
        switch_to(m, g, SWITCH_TARGET_HOST);
        CHECK(!switch_error);
        CHECK_STR(fake_state(k), "bochs-drm[(null)] snd_hda_intel[(null)] xhci_hcd[(null)]");
}

/* A companion removed is no GPU going: the GPU moves without it; back, it
 * is read into the GPU again. */
static void test_companion(void) {
        _cleanup_(fake_kernel_freep) FakeKernel *k = fake_kernel_new();
        _cleanup_(manager_freep) Manager *m = NULL;

        fake_add_function(k, "0000:03:00.0", 0x0c0330, 0x1033, 0x0194, "xhci_hcd", 5, false);
        m = manager(k, "[Daemon]\nGpus=0000:01:00\n[Gpu 0000:01:00]\nCompanions=0000:03:00.0\n");
        CHECK_INT(m->n_gpus, 1);
        if (m->n_gpus != 1)
                return;
        CHECK_INT(m->gpus[0]->state->n_functions, 4);
        fake_remove_function(k, "0000:03:00.0");
        feed(m, "remove", "0000:03:00.0");
        settle(m);
        CHECK_INT(m->n_gpus, 1);
        CHECK_INT(m->gpus[0]->state->n_functions, 3);
        fake_add_function(k, "0000:03:00.0", 0x0c0330, 0x1033, 0x0194, "xhci_hcd", 5, false);
        feed(m, "add", "0000:03:00.0");
        settle(m);
        CHECK_INT(m->n_gpus, 1);
        CHECK_INT(m->gpus[0]->state->n_functions, 4);

        /* the slot gone with its uevents lost (ENOBUFS): the next read
         * finds no function, and the GPU goes */
        fake_gpu_remove(k);
        managed_gpu_refresh(m->gpus[0], true);
        for (int i = 0; i < 500 && m->n_gpus > 0 && m->gpus[0]->refreshing; i++)
                (void) sd_event_run(m->event, 10 * 1000);
        CHECK_INT(m->n_gpus, 0);
        CHECK_INT(m->n_gone, 0);
}

/* A scan that waits on a pipe: it holds the one scan thread. */
static int blocker_work(void *userdata) {
        char c;

        return read(*(int *) userdata, &c, 1) == 1 ? 0 : -EIO;
}

static void blocker_done(int result, void *userdata) {
        CHECK_INT(result, 0);
}

/* Gone while on vfio-pci with the VM watch's look queued on the pool (its
 * one scan thread held): the look runs and comes back after its watch is
 * freed, and finds none (ASan). */
static void test_gone_while_vm_watch_looks(void) {
        _cleanup_(fake_kernel_freep) FakeKernel *k = fake_kernel_new();
        g_autofree char *state = g_build_filename(k->root, "state", NULL);
        _cleanup_(manager_freep) Manager *m = NULL;
        uint64_t start, now;
        int pipefd[2];

        setenv("GPUSWITCH_STATE_DIR", state, 1);
        setenv("GPUSWITCH_RUNTIME_DIR", state, 1);
        m = manager(k, "[Daemon]\nGpus=0000:01:00\n");
        CHECK_INT(m->n_gpus, 1);
        if (m->n_gpus != 1)
                return;
        CHECK_INT(pipe2(pipefd, O_CLOEXEC), 0);
        CHECK_INT(worker_pool_set_limits(m->workers, WORK_SCAN, 1, 8), 0);
        CHECK_INT(worker_start(m->workers, WORK_SCAN, blocker_work, blocker_done, &pipefd[0]), 0);
        switch_to(m, m->gpus[0], SWITCH_TARGET_VFIO);
        CHECK(!switch_error);
        /* its first look is queued 200 ms after the switch */
        CHECK_INT(sd_event_now(m->event, CLOCK_MONOTONIC, &start), 0);
        do {
                (void) sd_event_run(m->event, 10 * 1000);
                CHECK_INT(sd_event_now(m->event, CLOCK_MONOTONIC, &now), 0);
        } while (now - start < 300 * 1000);
        fake_gpu_remove(k);
        CHECK_INT(manager_hotplug(m), 0);
        CHECK_INT(m->n_gpus, 0);
        CHECK_INT(m->n_gone, 0);
        CHECK_INT(write(pipefd[1], "x", 1), 1);
        for (int i = 0; i < 50; i++)
                (void) sd_event_run(m->event, 10 * 1000);
        close(pipefd[0]);
        close(pipefd[1]);
}

static uint64_t now_usec(void) {
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (uint64_t) t.tv_sec * 1000000 + (uint64_t) t.tv_nsec / 1000;
}

static void *probe_ends(void *path) {
        int fd;

        usleep(1000 * 1000);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
                (void) !write(fd, "(null)\n", 7);
                close(fd);
        }
        return NULL;
}

/* The kernel probes a function it has just added, holding its device lock,
 * which reading its driver_override waits for (nvidia's probe takes a
 * second or more): here a FIFO that answers when a thread of the test
 * writes to it, a second later.  The loop turns meanwhile, and the GPU is
 * managed once its read is delivered. */
static void test_read_off_the_loop(void) {
        _cleanup_(fake_kernel_freep) FakeKernel *k = fake_kernel_new();
        _cleanup_(manager_freep) Manager *m = NULL;
        g_autofree char *fifo = NULL;
        unsigned turns = 0;
        pthread_t probe;
        uint64_t t0;

        fake_gpu_remove(k);
        m = manager(k, "[Daemon]\nGpus=0000:01:00\n");
        fake_add_function(k, "0000:01:00.0", 0x030000, 0x1234, 0x1111, "bochs-drm", 5, false);
        fifo = g_build_filename(k->root, "devices/pci0000:00/0000:01:00.0/driver_override", NULL);
        CHECK_INT(unlink(fifo), 0);
        CHECK_INT(mkfifo(fifo, 0644), 0);
        CHECK_INT(pthread_create(&probe, NULL, probe_ends, fifo), 0);

        feed(m, "add", "0000:01:00.0");
        t0 = now_usec();
        while (now_usec() - t0 < 500 * 1000) {
                (void) sd_event_run(m->event, 10 * 1000);
                turns++;
        }
        /* a turn is 10 ms at most while nothing happens */
        CHECK(turns >= 20);
        CHECK_INT(m->n_gpus, 0);
        CHECK_INT(m->n_appearing, 1);

        CHECK_INT(pthread_join(probe, NULL), 0);
        settle(m);
        CHECK_INT(m->n_appearing, 0);
        CHECK_INT(m->n_gpus, 1);
        if (m->n_gpus == 1)
                CHECK_STR(m->gpus[0]->object_path, GPU_PATH);
}

int main(void) {
        test_read_off_the_loop();
        test_configured();
        test_gone_while_vm_watch_looks();
        test_companion();
        test_auto();
        test_remove_while_switching();
        free(switch_error);
        TEST_MAIN_END();
}
