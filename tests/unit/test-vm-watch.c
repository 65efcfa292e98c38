/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* VirtualMachine: the daemon finds the process holding a GPU's VFIO group
 * once the GPU is on vfio-pci, and forgets it when it exits or the GPU
 * goes back.  Over the simulated kernel, whose VFIO group node gets the
 * device number of a pseudo-terminal only a child of the test holds: the
 * scan of this machine's /proc finds it and nothing else. */
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include <glib.h>

#include "fake-sysfs.h"
#include "holders.h"
#include "manager.h"
#include "testlib.h"
#include "util.h"
#include "vm-watch.h"

static void fake_kernel_freep(FakeKernel **k) {
        if (*k)
                fake_kernel_free(*k);
}

static bool switched;

static void on_done(ManagedGpu *g, const SwitchError *error, void *userdata) {
        switched = true;
        CHECK(!error);
}

static void on_refused(ManagedGpu *g, const SwitchError *error, void *userdata) {
        switched = true;
        CHECK(error && error->kind == SWITCH_ERROR_IN_USE);
}

static void switch_to(Manager *m, ManagedGpu *g, SwitchTarget target) {
        const SwitchOwner owner = { .done = on_done };

        switched = false;
        CHECK_INT(managed_gpu_switch(g, target, 0, &owner), 0);
        for (int i = 0; i < 500 && !switched; i++)
                (void) sd_event_run(m->event, 10 * 1000);
        CHECK(switched);
}

/* Runs the loop until the property is want, up to seconds. */
static bool wait_name(Manager *m, ManagedGpu *g, const char *want, unsigned seconds) {
        for (unsigned i = 0; i < seconds * 100; i++) {
                if (streq(vm_watch_name(g->vm_watch), want))
                        return true;
                (void) sd_event_run(m->event, 10 * 1000);
        }
        fprintf(stderr, "VirtualMachine is \"%s\", expected \"%s\"\n", vm_watch_name(g->vm_watch), want);
        return false;
}

static char qemu_link[PATH_MAX];

/* This program again, through a link named qemu-system-x86_64 (its comm
 * comes from the file name: the daemon then reads its -name), holding the
 * terminal's slave side until killed. */
static pid_t holder_start(int slave) {
        pid_t pid = fork();

        if (pid == 0) {
                char *argv[] = { qemu_link, (char *) "-name", (char *) "guest=win11,debug-threads=on", NULL };

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                (void) dup2(slave, 3);
                execv(qemu_link, argv);
                _exit(127);
        }
        return pid;
}

/* The holder has exec'ed: its comm is QEMU's. */
static bool wait_exec(pid_t pid) {
        char p[64];

        snprintf(p, sizeof p, "/proc/%d/comm", (int) pid);
        for (int i = 0; i < 500; i++) {
                g_autofree char *comm = NULL;

                if (g_file_get_contents(p, &comm, NULL, NULL) && g_str_has_prefix(comm, "qemu-system"))
                        return true;
                usleep(10 * 1000);
        }
        return false;
}

/* What ListHolders' scan hands the watch: every holder of the GPU's nodes. */
static void scan_for_list_holders(Manager *m, ManagedGpu *g) {
        _cleanup_free_ DeviceNode *nodes = NULL;
        Holder *h = NULL;
        size_t n_nodes = 0, n = 0;

        CHECK_INT(gpu_device_nodes(&m->sysfs, g->state, &nodes, &n_nodes), 0);
        CHECK_INT(holders_scan("/proc", nodes, n_nodes, &h, &n), 0);
        vm_watch_holders_scanned(g->vm_watch, h, n);
        holders_free(h, n);
}

int main(int argc, char *argv[]) {
        static const char conf[] = "[Daemon]\nGpus=0000:01:00\n";
        _cleanup_(fake_kernel_freep) FakeKernel *k = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        g_autofree char *err = NULL, *err2 = NULL, *state = NULL, *dir = NULL, *dev = NULL;
        char path[PATH_MAX];
        struct stat st;
        int master, slave, status;
        ManagedGpu *g;
        pid_t holder;

        /* the holder: this program again, waiting to be killed */
        if (argc > 1 && g_str_has_suffix(argv[0], "/qemu-system-x86_64")) {
                pause();
                return 0;
        }

        k = fake_kernel_new();
        snprintf(qemu_link, sizeof qemu_link, "%s/qemu-system-x86_64", k->root);
        {
                g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);

                CHECK(self && symlink(self, qemu_link) == 0);
        }
        state = g_build_filename(k->root, "state", NULL);
        setenv("GPUSWITCH_STATE_DIR", state, 1);
        setenv("GPUSWITCH_RUNTIME_DIR", state, 1);
        CHECK_INT(manager_new(&m), 0);
        CHECK_INT(config_parse(conf, strlen(conf), "test", &m->config, &err), 0);
        m->sysfs = k->sysfs;
        CHECK_INT(manager_discover(m, &err2), 0);
        if (m->n_gpus != 1)
                abort();
        g = m->gpus[0];
        CHECK_STR(vm_watch_name(g->vm_watch), "");

        /* the group's node has the terminal's device number */
        CHECK_INT(openpty(&master, &slave, NULL, NULL, NULL), 0);
        CHECK_INT(fstat(slave, &st), 0);
        dir = g_strdup_printf("%s/class/vfio/5", k->root);
        CHECK_INT(g_mkdir_with_parents(dir, 0755), 0);
        dev = g_strdup_printf("%u:%u\n", major(st.st_rdev), minor(st.st_rdev));
        snprintf(path, sizeof path, "%s/dev", dir);
        CHECK(g_file_set_contents(path, dev, -1, NULL));

        /* on host: nothing is looked for */
        holder = holder_start(slave);
        close(slave);
        CHECK(wait_name(m, g, "", 1));

        /* on vfio-pci: found after the switch, by its -name */
        switch_to(m, g, SWITCH_TARGET_VFIO);
        CHECK(wait_name(m, g, "win11", 5));

        /* it exits: the pidfd tells, the name goes */
        CHECK_INT(kill(holder, SIGKILL), 0);
        CHECK_INT(waitpid(holder, &status, 0), holder);
        CHECK(wait_name(m, g, "", 5));

        /* a VM started later: the next look of the backoff is a second
         * away, but a scan made for ListHolders names it at once */
        slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
        CHECK(slave >= 0);
        holder = holder_start(slave);
        close(slave);
        CHECK(wait_exec(holder));
        scan_for_list_holders(m, g);
        CHECK_STR(vm_watch_name(g->vm_watch), "win11");

        /* the VM holds the group: host is refused (a holder that blocks the
         * unbind), the name stays */
        switched = false;
        CHECK_INT(managed_gpu_switch(g, SWITCH_TARGET_HOST, 0, &(SwitchOwner) { .done = on_refused }), 0);
        for (int i = 0; i < 500 && !switched; i++)
                (void) sd_event_run(m->event, 10 * 1000);
        CHECK(switched);
        CHECK(wait_name(m, g, "win11", 1));

        /* it ends, the GPU goes back: nothing is named, nothing looked for */
        CHECK_INT(kill(holder, SIGKILL), 0);
        CHECK_INT(waitpid(holder, &status, 0), holder);
        CHECK(wait_name(m, g, "", 5));
        switch_to(m, g, SWITCH_TARGET_HOST);
        CHECK(wait_name(m, g, "", 2));
        close(master);
        return test_failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
