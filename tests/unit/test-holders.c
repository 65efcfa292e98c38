/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

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
        Holder t = { .pid = child };
        pid_t killer;
        int status;

        snprintf(t.comm, sizeof t.comm, "child");
        killer = fork();
        if (killer == 0)
                _exit(holders_terminate(&t, 1, timeout_ms));
        if (waitpid(child, ret_status, 0) != child)
                return -1;
        if (waitpid(killer, &status, 0) != killer || !WIFEXITED(status))
                return -1;
        return WEXITSTATUS(status);
}

int main(void) {
        struct stat st;
        DeviceNode node = {};
        Holder *h = NULL;
        size_t n = 0;
        int fd, pipe_fd, status;
        pid_t child;

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
                Holder x = { .pid = 42, .uid = 1000 };
                char buf[256];
                _cleanup_free_ char *d = NULL;

                snprintf(x.comm, sizeof x.comm, "Xwayland");
                snprintf(x.node, sizeof x.node, "nvidia0");
                CHECK_CONTAINS(holder_hint(&x, buf, sizeof buf), "__EGL_VENDOR_LIBRARY_FILENAMES");
                d = holders_describe(&x, 1);
                CHECK_STR(d, "  42 Xwayland (uid 1000) holds nvidia0\n    glvnd gave it the NVIDIA EGL vendor "
                             "(10_nvidia.json); start the session with "
                             "__EGL_VENDOR_LIBRARY_FILENAMES=/usr/share/glvnd/egl_vendor.d/50_mesa.json to keep it "
                             "on the other GPU");
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
        free(h);
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
                CHECK_INT(pci_address_parse("0000:01:00", &slot), 0);
                CHECK_INT(gpu_read(&k->sysfs, &slot, &g), 0);
                CHECK_INT(gpu_device_nodes(&k->sysfs, g, &nodes, &nn), 0);
                CHECK_INT(nn, 4);
                for (size_t i = 0; i < nn; i++) {
                        if (streq(nodes[i].name, "card0") && major(nodes[i].devnum) == 226)
                                CHECK_INT(minor(nodes[i].devnum), 0);
                        if (streq(nodes[i].name, "renderD128"))
                                CHECK_INT(minor(nodes[i].devnum), 128);
                        if (streq(nodes[i].name, "controlC0"))
                                CHECK_INT(nodes[i].devnum, makedev(116, 2));
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
        TEST_MAIN_END();
}
