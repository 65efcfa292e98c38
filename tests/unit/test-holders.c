/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>

#include "fake-sysfs.h"
#include "gpu.h"
#include "holders.h"
#include "testlib.h"
#include "util.h"

static bool has_holder(const Holder *h, size_t n, pid_t pid, const char *node) {
        for (size_t i = 0; i < n; i++)
                if (h[i].pid == pid && streq(h[i].node, node))
                        return true;
        return false;
}

/* A child that holds /dev/null open until its pipe closes. */
static pid_t spawn_holder(bool ignore_term, int *ret_pipe) {
        int p[2];
        pid_t pid;

        if (pipe(p) < 0)
                abort();
        pid = fork();
        if (pid == 0) {
                int fd = open("/dev/null", O_RDONLY);
                char c;

                if (ignore_term)
                        signal(SIGTERM, SIG_IGN);
                close(p[1]);
                (void) fd;
                while (read(p[0], &c, 1) < 0)
                        ;
                _exit(0);
        }
        close(p[0]);
        *ret_pipe = p[1];
        usleep(100 * 1000);    /* let it open the node */
        return pid;
}

/* holders_terminate() from another process, as the daemon is not the
 * holders' parent: here the parent reaps the child at once, so it does not
 * linger as a zombie.  Returns what holders_terminate() returned. */
static int terminate_from_other_process(pid_t child, unsigned timeout_ms, int *ret_status) {
        Holder t = { .pid = child, .pidfd = -1 };
        pid_t killer;
        int status;

        snprintf(t.comm, sizeof t.comm, "child");
        /* our child: its PID cannot be reused before we reap it */
        if (holder_pin(&t, -1) < 0)
                return -1;
        killer = fork();
        if (killer == 0)
                _exit(holders_terminate(&t, 1, timeout_ms));
        if (waitpid(child, ret_status, 0) != child)
                return -1;
        close(t.pidfd);
        if (waitpid(killer, &status, 0) != killer || !WIFEXITED(status))
                return -1;
        return WEXITSTATUS(status);
}

static int put_file(const char *path, const char *text) {
        _cleanup_fclose_ FILE *f = fopen(path, "we");

        return f && fputs(text, f) >= 0 ? 0 : -1;
}

/* A /proc of our own: PID/fd/N are symlinks, which stat() follows as it
 * follows the kernel's magic links.  1,000 PIDs, so the scan splits them
 * between threads; holders at known PIDs; a PID without fd folder (a
 * kernel thread, or gone since the listing); a descriptor whose file went
 * (closed since the listing); entries that are no PID. */
static void test_fake_proc(void) {
        /* tmpfs: thousands of files on a busy disk take seconds */
        char root[] = "/dev/shm/gpuswitch-holders-XXXXXX", p[PATH_MAX], cmd[PATH_MAX + 16];
        pid_t first[16];
        size_t n_first = 0;
        struct stat st;
        DeviceNode node = {};

        CHECK(mkdtemp(root) != NULL);
        CHECK_INT(stat("/dev/full", &st), 0);
        node.devnum = st.st_rdev;
        snprintf(node.name, sizeof node.name, "renderD128");
        snprintf(p, sizeof p, "%s/self", root);
        CHECK_INT(mkdir(p, 0755), 0);
        for (int pid = 1; pid <= 1000; pid++) {
                bool holder = pid % 100 == 7;

                snprintf(p, sizeof p, "%s/%d", root, pid);
                CHECK_INT(mkdir(p, 0755), 0);
                if (pid % 97 == 0)
                        continue;
                snprintf(p, sizeof p, "%s/%d/fd", root, pid);
                CHECK_INT(mkdir(p, 0755), 0);
                snprintf(p, sizeof p, "%s/%d/fd/0", root, pid);
                CHECK_INT(symlink("/dev/null", p), 0);
                snprintf(p, sizeof p, "%s/%d/fd/1", root, pid);
                CHECK_INT(symlink("/dev/zero", p), 0);
                snprintf(p, sizeof p, "%s/%d/fd/2", root, pid);
                CHECK_INT(symlink("/nonexistent/closed", p), 0);
                if (!holder)
                        continue;
                /* two descriptors on the node: one entry */
                snprintf(p, sizeof p, "%s/%d/fd/3", root, pid);
                CHECK_INT(symlink("/dev/full", p), 0);
                snprintf(p, sizeof p, "%s/%d/fd/40", root, pid);
                CHECK_INT(symlink("/dev/full", p), 0);
                snprintf(p, sizeof p, "%s/%d/comm", root, pid);
                snprintf(cmd, sizeof cmd, "proc%d\n", pid);
                CHECK_INT(put_file(p, cmd), 0);
                snprintf(p, sizeof p, "%s/%d/cgroup", root, pid);
                snprintf(cmd, sizeof cmd, "0::/system.slice/fake%d.service\n", pid);
                CHECK_INT(put_file(p, cmd), 0);
                if (pid == 507) {
                        snprintf(p, sizeof p, "%s/%d/root", root, pid);
                        CHECK_INT(mkdir(p, 0755), 0);
                        snprintf(p, sizeof p, "%s/%d/root/.flatpak-info", root, pid);
                        CHECK_INT(put_file(p, "[Application]\n"), 0);
                }
        }

        for (unsigned threads = 0; threads <= HOLDERS_SCAN_MAX_THREADS + 1; threads++) {
                Holder *h = NULL;
                size_t n = 0;

                CHECK_INT(holders_scan_threads(root, &node, 1, threads, &h, &n), 0);
                CHECK_INT(n, 10);
                for (size_t i = 0; i < n && i < ELEMENTSOF(first); i++) {
                        char want[32];

                        CHECK_INT(h[i].pid % 100, 7);
                        CHECK_INT(h[i].uid, getuid());
                        CHECK_STR(h[i].node, "renderD128");
                        snprintf(want, sizeof want, "proc%d", (int) h[i].pid);
                        CHECK_STR(h[i].comm, want);
                        snprintf(want, sizeof want, "fake%d.service", (int) h[i].pid);
                        CHECK_STR(h[i].unit, want);
                        CHECK_INT(h[i].flatpak, h[i].pid == 507);
                        /* the same order (the folder's), however many threads */
                        if (threads == 0)
                                first[n_first++] = h[i].pid;
                        else
                                CHECK_INT(h[i].pid, first[i]);
                }
                holders_free(h, n);
        }
        snprintf(cmd, sizeof cmd, "rm -rf %s", root);
        CHECK_INT(system(cmd), 0);
}

/* n children that wait for their pipe to close; every step-th holds
 * /dev/full, the others /dev/null and a pipe. */
static void spawn_table(pid_t *pids, size_t n, size_t step, int *ret_ctl) {
        int ctl[2];

        if (pipe(ctl) < 0)
                abort();
        for (size_t i = 0; i < n; i++) {
                pid_t pid = fork();

                if (pid < 0)
                        abort();
                if (pid == 0) {
                        int p[2], fd;
                        char c;

                        close(ctl[1]);
                        fd = open(i % step == 0 ? "/dev/full" : "/dev/null", O_RDONLY);
                        if (fd < 0 || pipe(p) < 0)
                                _exit(1);
                        while (read(ctl[0], &c, 1) < 0)
                                ;
                        _exit(0);
                }
                pids[i] = pid;
        }
        close(ctl[0]);
        *ret_ctl = ctl[1];
}

static size_t holding_children(const Holder *h, size_t n, const pid_t *children, size_t n_children, pid_t *ret) {
        size_t k = 0;

        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n_children; j++)
                        if (h[i].pid == children[j])
                                ret[k++] = h[i].pid;
        return k;
}

static int cmp_pid(const void *a, const void *b) {
        return *(const pid_t *) a - *(const pid_t *) b;
}

/* 300 real processes, 5 of them holding the node: every thread count finds
 * exactly those, in /proc's (ascending PID) order; and again while
 * processes that open the node come and go during the scans. */
static void test_many_processes(void) {
        enum { N = 300, STEP = 60 };
        pid_t children[N], want[N / STEP], got[N], churner;
        size_t n_want = 0;
        DeviceNode node = {};
        struct stat st;
        int ctl, status;

        CHECK_INT(stat("/dev/full", &st), 0);
        node.devnum = st.st_rdev;
        snprintf(node.name, sizeof node.name, "card1");
        spawn_table(children, N, STEP, &ctl);
        for (size_t i = 0; i < N; i += STEP)
                want[n_want++] = children[i];
        qsort(want, n_want, sizeof *want, cmp_pid);
        usleep(200 * 1000);    /* let them open their files */

        for (unsigned threads = 1; threads <= HOLDERS_SCAN_MAX_THREADS; threads++) {
                Holder *h = NULL;
                size_t n = 0, k;

                CHECK_INT(holders_scan_threads("/proc", &node, 1, threads, &h, &n), 0);
                k = holding_children(h, n, children, N, got);
                CHECK_INT(k, n_want);
                CHECK(k == n_want && memcmp(got, want, k * sizeof *got) == 0);
                for (size_t i = 1; i < n; i++)
                        CHECK(h[i - 1].pid < h[i].pid);
                holders_free(h, n);
        }

        /* Processes exiting mid-scan: a churner forks short-lived holders
         * of the node without pause; each scan still succeeds and finds
         * the table's holders. */
        churner = fork();
        CHECK(churner >= 0);
        if (churner == 0) {
                close(ctl);
                for (;;) {
                        pid_t p = fork();

                        if (p == 0) {
                                (void) open("/dev/full", O_RDONLY);
                                _exit(0);
                        }
                        if (p > 0)
                                (void) waitpid(p, NULL, 0);
                }
        }
        for (int round = 0; round < 30; round++) {
                Holder *h = NULL;
                size_t n = 0;

                CHECK_INT(holders_scan_threads("/proc", &node, 1, 1 + round % 2, &h, &n), 0);
                CHECK_INT(holding_children(h, n, children, N, got), n_want);
                holders_free(h, n);
        }
        kill(churner, SIGKILL);
        CHECK_INT(waitpid(churner, &status, 0), churner);

        close(ctl);
        for (size_t i = 0; i < N; i++) {
                CHECK_INT(waitpid(children[i], &status, 0), children[i]);
                CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
}

/* A holder that named itself with bytes that are not UTF-8 and with
 * control characters: its name is made safe for the bus and terminals. */
static void test_comm_sanitized(void) {
        char root[] = "/dev/shm/gpuswitch-holders-XXXXXX", p[PATH_MAX], cmd[PATH_MAX + 16];
        DeviceNode node = {};
        Holder *h = NULL;
        size_t n = 0;
        struct stat st;

        CHECK(mkdtemp(root) != NULL);
        CHECK_INT(stat("/dev/full", &st), 0);
        node.devnum = st.st_rdev;
        snprintf(node.name, sizeof node.name, "card0");
        snprintf(p, sizeof p, "%s/42", root);
        CHECK_INT(mkdir(p, 0755), 0);
        snprintf(p, sizeof p, "%s/42/fd", root);
        CHECK_INT(mkdir(p, 0755), 0);
        snprintf(p, sizeof p, "%s/42/fd/3", root);
        CHECK_INT(symlink("/dev/full", p), 0);
        snprintf(p, sizeof p, "%s/42/comm", root);
        CHECK_INT(put_file(p, "ab\xff\x1b[2J\xc3\xa9\xe2\x82\n"), 0);

        CHECK_INT(holders_scan(root, &node, 1, &h, &n), 0);
        CHECK_INT(n, 1);
        if (n == 1)
                CHECK_STR(h[0].comm, "ab??[2J\xc3\xa9??");
        holders_free(h, n);
        snprintf(cmd, sizeof cmd, "rm -rf %s", root);
        CHECK_INT(system(cmd), 0);
}

/* A fake process in a simulated /proc: PID/fd/3 on /dev/full (and fd/4 on
 * /dev/zero when both), its comm, and its cgroup file as given. */
static void fake_process(const char *root, int pid, bool own, bool shared, const char *cgroup) {
        char p[PATH_MAX];

        snprintf(p, sizeof p, "%s/%d/fd", root, pid);
        CHECK_INT(g_mkdir_with_parents(p, 0755), 0);
        if (own) {
                snprintf(p, sizeof p, "%s/%d/fd/3", root, pid);
                CHECK_INT(symlink("/dev/full", p), 0);
        }
        if (shared) {
                snprintf(p, sizeof p, "%s/%d/fd/4", root, pid);
                CHECK_INT(symlink("/dev/zero", p), 0);
        }
        snprintf(p, sizeof p, "%s/%d/comm", root, pid);
        CHECK_INT(put_file(p, "proc\n"), 0);
        snprintf(p, sizeof p, "%s/%d/cgroup", root, pid);
        CHECK_INT(put_file(p, cgroup), 0);
}

static const Holder *find_holder(const Holder *h, size_t n, pid_t pid, const char *node) {
        for (size_t i = 0; i < n; i++)
                if (h[i].pid == pid && streq(h[i].node, node))
                        return &h[i];
        return NULL;
}

/* The GPU's own node and a node every NVIDIA GPU shares (nvidiactl): only
 * the first makes a holder.  The cgroup names a system service only as the
 * exact line "0::/system.slice/NAME.service" with a valid name; PID 1,
 * init.scope and systemd-logind are never to be signalled. */
static void test_shared_and_protected(void) {
        char root[] = "/dev/shm/gpuswitch-holders-XXXXXX", cmd[PATH_MAX + 16];
        DeviceNode nodes[2] = {};
        Holder *h = NULL;
        size_t n = 0;
        struct stat st;
        const Holder *x;

        CHECK(mkdtemp(root) != NULL);
        CHECK_INT(stat("/dev/full", &st), 0);
        nodes[0].devnum = st.st_rdev;
        snprintf(nodes[0].name, sizeof nodes[0].name, "nvidia1");
        CHECK_INT(stat("/dev/zero", &st), 0);
        nodes[1].devnum = st.st_rdev;
        nodes[1].shared = true;
        snprintf(nodes[1].name, sizeof nodes[1].name, "nvidiactl");

        fake_process(root, 1, true, false, "0::/init.scope\n");
        fake_process(root, 10, true, true, "0::/system.slice/nvidia-persistenced.service\n");
        fake_process(root, 11, false, true, "0::/user.slice/user-1000.slice/session-2.scope\n");   /* CUDA on another card */
        fake_process(root, 12, true, false, "0::/system.slice/systemd-logind.service\n");
        fake_process(root, 13, true, false,
                     "0::/user.slice/user-1000.slice/user@1000.service/app.slice/x/system.slice/evil\x1b[2J.service\n");
        fake_process(root, 14, true, false, "0::/system.slice/a.service/sub\n");
        fake_process(root, 15, true, false, "0::/system.slice/bad\xff.service\n");

        /* a VM, as libvirt starts it */
        fake_process(root, 16, true, false, "0::/machine.slice/machine-qemu\\x2d1\\x2dwin10.scope/libvirt/emulator\n");
        snprintf(cmd, sizeof cmd, "%s/16/comm", root);
        CHECK_INT(put_file(cmd, "qemu-system-x86\n"), 0);
        snprintf(cmd, sizeof cmd, "%s/16/cmdline", root);
        {
                static const char cmdline[] = "/usr/bin/qemu-system-x86_64\0-name\0guest=win10,debug-threads=on\0-S\0";
                FILE *cf = fopen(cmd, "we");

                CHECK(cf && fwrite(cmdline, 1, sizeof cmdline - 1, cf) == sizeof cmdline - 1);
                if (cf)
                        fclose(cf);
        }

        CHECK_INT(holders_scan(root, nodes, 2, &h, &n), 0);
        x = find_holder(h, n, 16, "nvidia1");
        CHECK(x && streq(x->vm, "win10"));
        if (x) {
                char buf[256];

                CHECK_CONTAINS(holder_hint(x, buf, sizeof buf), "'virsh shutdown win10'");
        }
        CHECK(find_holder(h, n, 10, "nvidia1") && find_holder(h, n, 10, "nvidiactl"));
        CHECK(!find_holder(h, n, 11, "nvidiactl"));
        x = find_holder(h, n, 1, "nvidia1");
        CHECK(x && x->protected);
        x = find_holder(h, n, 10, "nvidia1");
        CHECK(x && !x->protected && streq(x->unit, "nvidia-persistenced.service"));
        x = find_holder(h, n, 12, "nvidia1");
        CHECK(x && x->protected && streq(x->unit, "systemd-logind.service"));
        for (pid_t pid = 13; pid <= 15; pid++) {
                x = find_holder(h, n, pid, "nvidia1");
                CHECK(x && !x->protected && x->unit[0] == 0);
        }
        /* a simulated /proc: nothing pinned, so nothing could be signalled */
        for (size_t i = 0; i < n; i++)
                CHECK_INT(h[i].pidfd, -1);
        {
                _cleanup_free_ char *d = holders_describe(h, n);

                CHECK_CONTAINS(d, "gpuswitchd never ends PID 1");
                CHECK_CONTAINS(d, "gpuswitchd never ends logind");
                CHECK(!strchr(d, '\x1b'));
        }
        holders_free(h, n);
        snprintf(cmd, sizeof cmd, "rm -rf %s", root);
        CHECK_INT(system(cmd), 0);
}

/* Two NVIDIA GPUs in two slots, as the RM shows them: slot A's function
 * (on the test VM's stand-in, a driver not named "nvidia") with Device
 * Minor 0, slot B's (on nvidia) with 1.  Each slot's nodes are its own
 * /dev/nvidiaN and the shared ones; a process holding nvidia1 and
 * nvidiactl is a holder of B and not of A, one holding nvidia0 of A alone.
 * Without root no node of major 195 can be made: the fake /proc's
 * descriptors point at /dev/full, /dev/zero and /dev/null, and each
 * DeviceNode's number is swapped for the one of the node standing in. */
static void test_nvidia_two_slots(void) {
        static const struct { unsigned minor; const char *standin; } standins[] = {
                { 0, "/dev/full" }, { 1, "/dev/zero" }, { 255, "/dev/null" },
        };
        char proc[] = "/dev/shm/gpuswitch-holders-XXXXXX", p[PATH_MAX + 128];
        FakeKernel *k = fake_kernel_new();
        DeviceNode *nodes[2] = {};
        size_t nn[2] = {};
        Holder *h = NULL;
        size_t n = 0;

        fake_add_function(k, "0000:06:00.0", 0x030000, 0x10de, 0x1e84, "nvidia", 7, false);
        CHECK(mkdtemp(proc) != NULL);
        k->sysfs.proc_root = proc;
        snprintf(p, sizeof p, "mkdir -p %s/driver/nvidia/gpus/0000:01:00.0 %s/driver/nvidia/gpus/0000:06:00.0 && "
                 "printf 'Device Minor: \\t 0\\n' > %s/driver/nvidia/gpus/0000:01:00.0/information && "
                 "printf 'Device Minor: \\t 1\\n' > %s/driver/nvidia/gpus/0000:06:00.0/information",
                 proc, proc, proc, proc);
        CHECK_INT(system(p), 0);

        for (int i = 0; i < 2; i++) {
                _cleanup_(gpu_freep) Gpu *g = NULL;
                PciAddress slot;

                CHECK_INT(pci_address_parse(i == 0 ? "0000:01:00" : "0000:06:00", &slot), 0);
                CHECK_INT(gpu_read(&k->sysfs, &slot, NULL, 0, &g), 0);
                if (!g)
                        continue;
                if (i == 0) {
                        /* the stand-in drives A's function: its RM entry alone says it is nvidia's */
                        free(g->functions[0].driver);
                        g->functions[0].driver = strdup("gpuswitch_test");
                }
                CHECK_INT(gpu_device_nodes(&k->sysfs, g, &nodes[i], &nn[i]), 0);
        }
        for (int i = 0; i < 2; i++) {
                bool own = false, other = false, ctl = false;

                for (size_t j = 0; j < nn[i]; j++) {
                        DeviceNode *d = &nodes[i][j];

                        own = own || (d->devnum == makedev(195, i) && !d->shared);
                        other = other || d->devnum == makedev(195, 1 - i);
                        ctl = ctl || (d->devnum == makedev(195, 255) && d->shared && streq(d->name, "nvidiactl"));
                        for (size_t m = 0; m < ELEMENTSOF(standins); m++) {
                                struct stat st;

                                if (d->devnum != makedev(195, standins[m].minor))
                                        continue;
                                CHECK_INT(stat(standins[m].standin, &st), 0);
                                d->devnum = st.st_rdev;
                                break;
                        }
                }
                CHECK(own);
                CHECK(!other);
                CHECK(ctl);
        }

        /* fd/4 on /dev/zero: nvidia1; fd/5 on /dev/null: nvidiactl */
        fake_process(proc, 20, false, true, "0::/user.slice/user-1000.slice/session-2.scope\n");
        snprintf(p, sizeof p, "%s/20/fd/5", proc);
        CHECK_INT(symlink("/dev/null", p), 0);
        /* fd/3 on /dev/full: nvidia0 */
        fake_process(proc, 21, true, false, "0::/user.slice/user-1000.slice/session-2.scope\n");

        CHECK_INT(holders_scan(proc, nodes[0], nn[0], &h, &n), 0);
        CHECK(!find_holder(h, n, 20, "nvidiactl") && !find_holder(h, n, 20, "nvidia1"));
        CHECK(find_holder(h, n, 21, "nvidia0"));
        CHECK_INT(n, 1);
        holders_free(h, n);
        CHECK_INT(holders_scan(proc, nodes[1], nn[1], &h, &n), 0);
        CHECK(find_holder(h, n, 20, "nvidia1") && find_holder(h, n, 20, "nvidiactl"));
        CHECK(!find_holder(h, n, 21, "nvidia0"));
        CHECK_INT(n, 2);
        holders_free(h, n);

        free(nodes[0]);
        free(nodes[1]);
        snprintf(p, sizeof p, "rm -rf %s", proc);
        CHECK_INT(system(p), 0);
        fake_kernel_free(k);
}

/* Signals go through pidfds only: a holder that could not be pinned, or a
 * protected one, is left alone; one pinned that has exited is not signalled
 * again (its PID may belong to another process by then). */
static void test_pidfds_only(void) {
        int pipe_fd, status;
        pid_t child = spawn_holder(false, &pipe_fd);
        Holder t = { .pid = child, .pidfd = -1 };

        snprintf(t.comm, sizeof t.comm, "child");
        CHECK_INT(holders_terminate(&t, 1, 200), 0);
        CHECK_INT(kill(child, 0), 0);            /* not pinned: not signalled */
        CHECK_INT(holder_pin(&t, -1), 0);
        t.protected = true;
        CHECK_INT(holders_terminate(&t, 1, 200), 0);
        CHECK_INT(kill(child, 0), 0);            /* protected: not signalled */
        t.protected = false;
        close(pipe_fd);                          /* it exits by itself */
        CHECK_INT(waitpid(child, &status, 0), child);
        CHECK(WIFEXITED(status));
        /* reaped: its PID is free for anyone, the pidfd still the old process */
        CHECK_INT(holders_terminate(&t, 1, 200), 0);
        close(t.pidfd);
}

static const DeviceNode *find_node(const DeviceNode *nodes, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(nodes[i].name, name))
                        return &nodes[i];
        return NULL;
}

/* Whether a held node blocks the unbind, by the function's driver and the
 * node's kind: DRM of a driver that unplugs and USB below the xHCI do not;
 * ALSA, misc, DRM of other drivers, the VFIO group and nvidia's do.  A
 * holder carries its node's verdict. */
static void test_blocking_classes(void) {
        FakeKernel *k = fake_kernel_new();
        const char *dev = "devices/pci0000:00";
        PciAddress slot;
        Gpu *g = NULL;
        DeviceNode *nodes = NULL;
        const DeviceNode *x;
        size_t nn = 0;
        char p[2048];

        snprintf(p, sizeof p,
                 "mkdir -p %1$s/%2$s/0000:01:00.0/drm/card0 %1$s/%2$s/0000:01:00.0/drm/renderD128 "
                 "%1$s/%2$s/0000:01:00.0/misc/gpuswitch-test0 "
                 "%1$s/%2$s/0000:01:00.1/sound/card0/controlC0 "
                 "%1$s/%2$s/0000:01:00.2/usb1/1-1/1-1.4 %1$s/%2$s/0000:01:00.2/usb1/1-1/1-1:1.0/0003:1:2.0001",
                 k->root, dev);
        CHECK_INT(system(p), 0);
        fake_put_attr(k, "0000:01:00.0", "drm/card0/dev", "226:0\n");
        fake_put_attr(k, "0000:01:00.0", "drm/renderD128/dev", "226:128\n");
        fake_put_attr(k, "0000:01:00.0", "misc/gpuswitch-test0/dev", "10:120\n");
        fake_put_attr(k, "0000:01:00.1", "sound/card0/controlC0/dev", "116:2\n");
        /* the root hub, a device, one behind a hub on it; an interface is no node */
        fake_put_attr(k, "0000:01:00.2", "usb1/dev", "189:0\n");
        fake_put_attr(k, "0000:01:00.2", "usb1/busnum", "1\n");
        fake_put_attr(k, "0000:01:00.2", "usb1/devnum", "1\n");
        fake_put_attr(k, "0000:01:00.2", "usb1/1-1/dev", "189:1\n");
        fake_put_attr(k, "0000:01:00.2", "usb1/1-1/busnum", "1\n");
        fake_put_attr(k, "0000:01:00.2", "usb1/1-1/devnum", "2\n");
        fake_put_attr(k, "0000:01:00.2", "usb1/1-1/1-1.4/dev", "189:2\n");
        fake_put_attr(k, "0000:01:00.2", "usb1/1-1/1-1.4/busnum", "1\n");
        fake_put_attr(k, "0000:01:00.2", "usb1/1-1/1-1.4/devnum", "3\n");
        fake_put_attr(k, "0000:01:00.2", "usb1/1-1/1-1:1.0/dev", "189:99\n");
        CHECK_INT(pci_address_parse("0000:01:00", &slot), 0);
        CHECK_INT(gpu_read(&k->sysfs, &slot, NULL, 0, &g), 0);
        CHECK_STR(g->functions[0].driver, "bochs-drm");

        CHECK_INT(gpu_device_nodes(&k->sysfs, g, &nodes, &nn), 0);
        CHECK_INT(nn, 7);
        x = find_node(nodes, nn, "card0");
        CHECK(x && !x->blocks);
        x = find_node(nodes, nn, "renderD128");
        CHECK(x && !x->blocks);
        x = find_node(nodes, nn, "gpuswitch-test0");
        CHECK(x && x->blocks);
        x = find_node(nodes, nn, "controlC0");
        CHECK(x && x->blocks);
        x = find_node(nodes, nn, "bus/usb/001/001");
        CHECK(x && !x->blocks && x->devnum == makedev(189, 0));
        x = find_node(nodes, nn, "bus/usb/001/002");
        CHECK(x && !x->blocks && x->devnum == makedev(189, 1));
        x = find_node(nodes, nn, "bus/usb/001/003");
        CHECK(x && !x->blocks && x->devnum == makedev(189, 2));
        for (size_t i = 0; i < nn; i++)
                CHECK(nodes[i].devnum != makedev(189, 99));
        free(nodes);
        nodes = NULL;

        /* the same DRM nodes under a driver not known to unplug block */
        free(g->functions[0].driver);
        g->functions[0].driver = strdup("nouveau");
        CHECK_INT(gpu_device_nodes(&k->sysfs, g, &nodes, &nn), 0);
        x = find_node(nodes, nn, "card0");
        CHECK(x && x->blocks);
        x = find_node(nodes, nn, "renderD128");
        CHECK(x && x->blocks);
        free(nodes);
        nodes = NULL;
        free(g->functions[0].driver);
        g->functions[0].driver = strdup("amdgpu");
        CHECK_INT(gpu_device_nodes(&k->sysfs, g, &nodes, &nn), 0);
        x = find_node(nodes, nn, "card0");
        CHECK(x && !x->blocks);
        free(nodes);
        nodes = NULL;

        /* on vfio-pci: its group's node blocks (vfio-pci waits for its users) */
        snprintf(p, sizeof p, "mkdir -p %s/class/vfio/7", k->root);
        CHECK_INT(system(p), 0);
        snprintf(p, sizeof p, "%s/class/vfio/7/dev", k->root);
        CHECK_INT(put_file(p, "511:7\n"), 0);
        free(g->functions[1].driver);
        g->functions[1].driver = strdup("vfio-pci");
        g->functions[1].iommu_group = 7;
        CHECK_INT(gpu_device_nodes(&k->sysfs, g, &nodes, &nn), 0);
        x = find_node(nodes, nn, "vfio/7");
        CHECK(x && x->blocks);
        free(nodes);
        nodes = NULL;

        /* a holder says what its node does */
        {
                char root[] = "/dev/shm/gpuswitch-blocks-XXXXXX";
                struct stat st_full, st_zero;
                DeviceNode two[2] = {};
                Holder *h = NULL;
                size_t n = 0;

                CHECK(mkdtemp(root) != NULL);
                CHECK_INT(stat("/dev/full", &st_full), 0);
                CHECK_INT(stat("/dev/zero", &st_zero), 0);
                two[0] = (DeviceNode) { .devnum = st_full.st_rdev, .blocks = true };
                snprintf(two[0].name, sizeof two[0].name, "controlC0");
                two[1] = (DeviceNode) { .devnum = st_zero.st_rdev, .blocks = false };
                snprintf(two[1].name, sizeof two[1].name, "card0");
                snprintf(p, sizeof p, "mkdir -p %1$s/7/fd %1$s/8/fd && ln -s /dev/full %1$s/7/fd/3 && "
                         "ln -s /dev/zero %1$s/8/fd/3 && ln -s /dev/full %1$s/8/fd/4", root);
                CHECK_INT(system(p), 0);
                CHECK_INT(holders_scan(root, two, 2, &h, &n), 0);
                CHECK_INT(n, 3);
                for (size_t i = 0; i < n; i++)
                        CHECK(h[i].blocks == streq(h[i].node, "controlC0"));
                holders_free(h, n);
                snprintf(p, sizeof p, "rm -rf %s", root);
                CHECK_INT(system(p), 0);
        }
        gpu_free(g);
        fake_kernel_free(k);
}

int main(void) {
        struct stat st;
        DeviceNode node = {};
        Holder *h = NULL;
        size_t n = 0;
        int fd, pipe_fd, status;
        pid_t child;

        test_comm_sanitized();
        test_shared_and_protected();
        test_nvidia_two_slots();
        test_pidfds_only();
        test_blocking_classes();

        CHECK_INT(stat("/dev/null", &st), 0);
        node.devnum = st.st_rdev;
        snprintf(node.name, sizeof node.name, "card0");

        fd = open("/dev/null", O_RDONLY);
        CHECK(fd >= 0);
        child = spawn_holder(false, &pipe_fd);
        CHECK_INT(holders_scan("/proc", &node, 1, &h, &n), 0);
        CHECK(has_holder(h, n, getpid(), "card0"));
        CHECK(has_holder(h, n, child, "card0"));
        for (size_t i = 0; i < n; i++)
                if (h[i].pid == getpid()) {
                        CHECK_INT(h[i].uid, getuid());
                        CHECK_STR(h[i].comm, "test-holders");
                }
        {
                _cleanup_free_ char *d = holders_describe(h, n);
                char want[64];

                snprintf(want, sizeof want, "  %d test-holders (uid %u) holds card0", (int) getpid(), (unsigned) getuid());
                CHECK_CONTAINS(d, want);
        }
        /* the hints for the known holders */
        {
                Holder x = { .pid = 42, .uid = 1000, .blocks = true };
                char buf[256];
                _cleanup_free_ char *d = NULL;

                snprintf(x.comm, sizeof x.comm, "Xwayland");
                snprintf(x.node, sizeof x.node, "nvidia0");
                CHECK_CONTAINS(holder_hint(&x, buf, sizeof buf), "__EGL_VENDOR_LIBRARY_FILENAMES");
                d = holders_describe(&x, 1);
                CHECK_STR(d, "  42 Xwayland (uid 1000) holds nvidia0 (blocks the unbind)\n    glvnd gave it the NVIDIA EGL vendor "
                             "(10_nvidia.json); start the session with "
                             "__EGL_VENDOR_LIBRARY_FILENAMES=/usr/share/glvnd/egl_vendor.d/50_mesa.json to keep it "
                             "on the other GPU");
                free(d);
                x.blocks = false;
                snprintf(x.node, sizeof x.node, "renderD128");
                d = holders_describe(&x, 1);
                CHECK(g_str_has_prefix(d, "  42 Xwayland (uid 1000) holds renderD128 (would lose the device)\n"));
                x.flatpak = true;
                CHECK_CONTAINS(holder_hint(&x, buf, sizeof buf), "flatpak mask org.freedesktop.Platform.GL.nvidia");
                x.flatpak = false;
                snprintf(x.comm, sizeof x.comm, "nvidia-persiste");
                snprintf(x.unit, sizeof x.unit, "nvidia-persistenced.service");
                CHECK_STR(holder_hint(&x, buf, sizeof buf),
                          "the system service nvidia-persistenced.service: 'systemctl stop nvidia-persistenced.service' first");
                snprintf(x.comm, sizeof x.comm, "sleep");
                x.unit[0] = 0;
                CHECK(holder_hint(&x, buf, sizeof buf) == NULL);
        }
        holders_free(h, n);
        h = NULL;

        /* a device number nobody holds */
        node.devnum = makedev(4095, 4095);
        CHECK_INT(holders_scan("/proc", &node, 1, &h, &n), 0);
        CHECK_INT(n, 0);
        CHECK_INT(holders_scan("/proc", NULL, 0, &h, &n), 0);
        CHECK_INT(n, 0);

        /* SIGTERM is enough for the first child */
        CHECK_INT(terminate_from_other_process(child, 2000, &status), 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
        close(pipe_fd);
        /* one that ignores SIGTERM gets SIGKILL after the timeout */
        child = spawn_holder(true, &pipe_fd);
        CHECK_INT(terminate_from_other_process(child, 300, &status), 1);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        close(pipe_fd);
        close(fd);

        /* the GPU's own nodes, from the fake sysfs */
        {
                FakeKernel *k = fake_kernel_new();
                PciAddress slot;
                Gpu *g = NULL;
                DeviceNode *nodes = NULL;
                size_t nn = 0;
                char p[1024];

                snprintf(p, sizeof p, "mkdir -p %s/devices/pci0000:00/0000:01:00.0/drm/card0 "
                         "%s/devices/pci0000:00/0000:01:00.0/drm/renderD128 "
                         "%s/devices/pci0000:00/0000:01:00.1/sound/card0/controlC0",
                         k->root, k->root, k->root);
                CHECK_INT(system(p), 0);
                fake_put_attr(k, "0000:01:00.0", "drm/card0/dev", "226:0\n");
                fake_put_attr(k, "0000:01:00.0", "drm/renderD128/dev", "226:128\n");
                fake_put_attr(k, "0000:01:00.1", "sound/card0/dev", "116:1\n");
                fake_put_attr(k, "0000:01:00.1", "sound/card0/controlC0/dev", "116:2\n");
                /* a VM's iommufd device node */
                snprintf(p, sizeof p, "mkdir -p %s/devices/pci0000:00/0000:01:00.2/vfio-dev/vfio0", k->root);
                CHECK_INT(system(p), 0);
                fake_put_attr(k, "0000:01:00.2", "vfio-dev/vfio0/dev", "511:0\n");
                CHECK_INT(pci_address_parse("0000:01:00", &slot), 0);
                CHECK_INT(gpu_read(&k->sysfs, &slot, NULL, 0, &g), 0);
                CHECK_INT(gpu_device_nodes(&k->sysfs, g, &nodes, &nn), 0);
                CHECK_INT(nn, 5);
                for (size_t i = 0; i < nn; i++) {
                        if (streq(nodes[i].name, "card0") && major(nodes[i].devnum) == 226)
                                CHECK_INT(minor(nodes[i].devnum), 0);
                        if (streq(nodes[i].name, "renderD128"))
                                CHECK_INT(minor(nodes[i].devnum), 128);
                        if (streq(nodes[i].name, "controlC0"))
                                CHECK_INT(nodes[i].devnum, makedev(116, 2));
                        if (streq(nodes[i].name, "vfio0"))
                                CHECK_INT(nodes[i].devnum, makedev(511, 0));
                }
                free(nodes);
                nodes = NULL;

                /* on nvidia: /dev/nvidiaN from /proc/driver/nvidia, the
                 * control nodes, nvidia-uvm's major from /proc/devices */
                snprintf(p, sizeof p, "mkdir -p %s/proc/driver/nvidia/gpus/0000:01:00.0 && "
                         "printf 'Model: x\\nDevice Minor: 3\\n' > %s/proc/driver/nvidia/gpus/0000:01:00.0/information && "
                         "printf 'Character devices:\\n195 nvidia\\n508 nvidia-uvm\\n' > %s/proc/devices",
                         k->root, k->root, k->root);
                CHECK_INT(system(p), 0);
                snprintf(p, sizeof p, "%s/proc", k->root);
                k->sysfs.proc_root = p;
                free(g->functions[0].driver);
                g->functions[0].driver = strdup("nvidia");
                CHECK_INT(gpu_device_nodes(&k->sysfs, g, &nodes, &nn), 0);
                {
                        bool n3 = false, ctl = false, ms = false, uvm = false;

                        for (size_t i = 0; i < nn; i++) {
                                n3 = n3 || (streq(nodes[i].name, "nvidia3") && nodes[i].devnum == makedev(195, 3));
                                ctl = ctl || (streq(nodes[i].name, "nvidiactl") && nodes[i].devnum == makedev(195, 255));
                                ms = ms || (streq(nodes[i].name, "nvidia-modeset") && nodes[i].devnum == makedev(195, 254));
                                uvm = uvm || (streq(nodes[i].name, "nvidia-uvm") && nodes[i].devnum == makedev(508, 0));
                        }
                        CHECK(n3);
                        CHECK(ctl);
                        CHECK(ms);
                        CHECK(uvm);
                }
                free(nodes);
                gpu_free(g);
                fake_kernel_free(k);
        }

        test_fake_proc();
        test_many_processes();
        TEST_MAIN_END();
}
