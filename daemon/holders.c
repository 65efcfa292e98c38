/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "holders.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>

#include <glib.h>

#include "holder-session.h"
#include "util.h"
#include "vm-name.h"

#define NVIDIA_MAJOR 195
#define NVIDIA_CTL_MINOR 255
#define NVIDIA_MODESET_MINOR 254

static int nodes_add(DeviceNode **nodes, size_t *n, dev_t devnum, const char *name, bool shared, bool blocks) {
        DeviceNode *l;

        for (size_t i = 0; i < *n; i++)
                if ((*nodes)[i].devnum == devnum)
                        return 0;
        l = realloc(*nodes, (*n + 1) * sizeof *l);
        if (!l)
                return -ENOMEM;
        *nodes = l;
        l[*n] = (DeviceNode) { .devnum = devnum, .shared = shared, .blocks = blocks };
        snprintf(l[*n].name, sizeof l[*n].name, "%s", name);
        (*n)++;
        return 0;
}

/* A sysfs "dev" attribute: "226:0". */
static int read_devnum(const char *path, dev_t *ret) {
        _cleanup_free_ char *v = NULL;
        unsigned ma, mi;
        int r;

        r = read_one_line_file(path, &v);
        if (r < 0)
                return r;
        if (sscanf(v, "%u:%u", &ma, &mi) != 2)
                return -EINVAL;
        *ret = makedev(ma, mi);
        return 0;
}

/* A decimal sysfs attribute: usb's "busnum", "devnum". */
static int read_unsigned_file(const char *path, unsigned *ret) {
        _cleanup_free_ char *v = NULL;
        char *end;
        unsigned long k;
        int r;

        r = read_one_line_file(path, &v);
        if (r < 0)
                return r;
        errno = 0;
        k = strtoul(v, &end, 10);
        if (errno != 0 || end == v || *end || k > UINT_MAX)
                return -EINVAL;
        *ret = (unsigned) k;
        return 0;
}

/* Every DIR/<entry>/dev below a function: drm/card0/dev, sound/card0/controlC0/dev... */
static int add_class_nodes(const char *dir, int depth, bool blocks, DeviceNode **nodes, size_t *n) {
        _cleanup_closedir_ DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return 0;
        while ((de = readdir(d))) {
                _cleanup_free_ char *sub = NULL, *dev = NULL;
                dev_t devnum;
                int r;

                if (de->d_name[0] == '.' || streq(de->d_name, "device") || streq(de->d_name, "subsystem"))
                        continue;
                /* DRM's legacy controlD* entry has no node of its own: its
                 * "dev" repeats the card's (6.1), so it would name card0's
                 * holders after a node that does not exist. */
                if (strncmp(de->d_name, "controlD", 8) == 0)
                        continue;
                if (asprintf(&sub, "%s/%s", dir, de->d_name) < 0 || asprintf(&dev, "%s/dev", sub) < 0)
                        return -ENOMEM;
                if (read_devnum(dev, &devnum) >= 0) {
                        r = nodes_add(nodes, n, devnum, de->d_name, false, blocks);
                        if (r < 0)
                                return r;
                }
                if (depth > 0) {
                        r = add_class_nodes(sub, depth - 1, blocks, nodes, n);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static uint64_t now_msec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static const char *proc_root(const Sysfs *s) {
        return s->proc_root ? s->proc_root : "/proc";
}

/* /proc/driver/nvidia/gpus/ADDR/information has "Device Minor: N". */
static int nvidia_minor(const Sysfs *s, const char *function, unsigned *ret) {
        _cleanup_free_ char *p = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        char line[256];

        if (asprintf(&p, "%s/driver/nvidia/gpus/%s/information", proc_root(s), function) < 0)
                return -ENOMEM;
        f = fopen(p, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof line, f))
                if (sscanf(line, "Device Minor: %u", ret) == 1)
                        return 0;
        return -ENOENT;
}

/* nvidia-uvm's major is dynamic: /proc/devices has it ("511 nvidia-uvm").
 * Not /dev/nvidia-uvm: the unit's PrivateDevices= hides it. */
static int nvidia_uvm_major(const Sysfs *s, unsigned *ret) {
        _cleanup_free_ char *p = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        char line[128], name[64];
        unsigned major;

        if (asprintf(&p, "%s/devices", proc_root(s)) < 0)
                return -ENOMEM;
        f = fopen(p, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof line, f))
                if (sscanf(line, "%u %63s", &major, name) == 2 && streq(name, "nvidia-uvm")) {
                        *ret = major;
                        return 0;
                }
        return -ENOENT;
}

/* DRM drivers whose remove() calls drm_dev_unplug(): the files stay open,
 * their calls fail from then on (drm_dev_enter()), and the unbind does not
 * wait for them to be closed.  Seen in the test VM's 6.1 with bochs-drm: a
 * process holding card0 keeps running while the function goes to
 * vfio-pci.  nvidia's nodes are not among them: its remove() waits for its
 * usage count whatever the node.  Nor are nouveau's: its remove() calls
 * drm_dev_unplug() (since 5.10), so the unbind would not wait, but its
 * ioctls enter no drm_dev_enter() section: one under way while the
 * function goes runs on a torn-down device; nor radeon's, whose remove() only unregisters (drm_put_dev()).
 * Their holders count as blocking: ended first, or the switch refused. */
static const char *const drm_unplug_drivers[] = { "bochs-drm", "amdgpu", "i915" };

static bool drm_driver_unplugs(const char *driver) {
        for (size_t i = 0; driver && i < ELEMENTSOF(drm_unplug_drivers); i++)
                if (streq(driver, drm_unplug_drivers[i]))
                        return true;
        return false;
}

/* The USB devices below an xHCI function (usbN, N-1, N-1.2...): usbfs
 * nodes (/dev/bus/usb/BBB/DDD, which libusb programs keep open).  On a
 * disconnect usbfs kills the file's URBs and fails its calls with ENODEV
 * without waiting for it to be closed, so a holder never blocks the
 * unbind. */
static int add_usb_nodes(const char *dir, int depth, DeviceNode **nodes, size_t *n) {
        _cleanup_closedir_ DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return 0;
        while ((de = readdir(d))) {
                _cleanup_free_ char *sub = NULL, *dev = NULL, *bus = NULL, *num = NULL;
                unsigned b, k;
                dev_t devnum;
                char name[32];
                int r;

                /* usbN (a root hub) or N-P.P... (a device); not N-P:C.I (an interface) */
                if (!(strncmp(de->d_name, "usb", 3) == 0 && de->d_name[3] >= '0' && de->d_name[3] <= '9') &&
                    !(de->d_name[0] >= '0' && de->d_name[0] <= '9' && strchr(de->d_name, '-') && !strchr(de->d_name, ':')))
                        continue;
                if (asprintf(&sub, "%s/%s", dir, de->d_name) < 0 || asprintf(&dev, "%s/dev", sub) < 0 ||
                    asprintf(&bus, "%s/busnum", sub) < 0 || asprintf(&num, "%s/devnum", sub) < 0)
                        return -ENOMEM;
                if (read_devnum(dev, &devnum) >= 0 && read_unsigned_file(bus, &b) >= 0 &&
                    read_unsigned_file(num, &k) >= 0) {
                        snprintf(name, sizeof name, "bus/usb/%03u/%03u", b, k);
                        r = nodes_add(nodes, n, devnum, name, false, false);
                        if (r < 0)
                                return r;
                }
                if (depth > 0) {
                        r = add_usb_nodes(sub, depth - 1, nodes, n);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int add_function_nodes(const Sysfs *s, const PciFunction *f, DeviceNode **nodes, size_t *n) {
        /* The classes of device nodes a function has, and whether one held
         * open keeps its driver's remove() waiting: ALSA's do (snd_card_free()
         * disconnects the files, so that their calls fail, and then waits
         * for every one to be closed: in the test VM a process holding
         * controlC0, even one woken from poll() by the disconnect, keeps
         * snd_hda_intel's unbind waiting until it exits), misc devices (the
         * test VM's stand-in for nvidia) and a VM's VFIO device node
         * through iommufd (vfio-dev/vfioN: vfio-pci's remove() waits for the
         * device's users) do; DRM's depend on the driver. */
        static const struct { const char *dir; int depth; bool blocks; } classes[] = {
                { "drm", 0, true }, { "sound", 1, true }, { "misc", 0, true }, { "vfio-dev", 0, true },
        };
        _cleanup_free_ char *fn_dir = sysfs_function_path(s, f->address, NULL);
        int r;

        if (!fn_dir)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(classes); i++) {
                _cleanup_free_ char *dir = sysfs_function_path(s, f->address, classes[i].dir);
                bool blocks = classes[i].blocks && !(streq(classes[i].dir, "drm") && drm_driver_unplugs(f->driver));

                if (!dir)
                        return -ENOMEM;
                r = add_class_nodes(dir, classes[i].depth, blocks, nodes, n);
                if (r < 0)
                        return r;
        }
        /* the root hub, up to five hubs below it, and a device */
        r = add_usb_nodes(fn_dir, 6, nodes, n);
        if (r < 0)
                return r;

        if (streq_ptr(f->driver, VFIO_PCI_DRIVER) && f->iommu_group >= 0) {
                _cleanup_free_ char *dev = NULL;
                char name[32];
                dev_t devnum;

                if (asprintf(&dev, "%s/class/vfio/%d/dev", s->root, f->iommu_group) < 0)
                        return -ENOMEM;
                snprintf(name, sizeof name, "vfio/%d", f->iommu_group);
                if (read_devnum(dev, &devnum) >= 0) {
                        r = nodes_add(nodes, n, devnum, name, false, true);
                        if (r < 0)
                                return r;
                }
        }

        /* nvidia's RM gives each function it drives an entry in
         * /proc/driver/nvidia/gpus, whose "information" names its own
         * /dev/nvidiaN: the entry, whatever the driver is called, says the
         * function has nvidia's nodes (the test VM's stand-in has it too).
         * On "nvidia" without it (its RM did not take the GPU up) only the
         * shared nodes are listed. */
        unsigned minor;
        bool rm = nvidia_minor(s, f->address, &minor) >= 0;

        if (rm || streq_ptr(f->driver, "nvidia")) {
                unsigned uvm;
                char name[32];

                if (rm) {
                        snprintf(name, sizeof name, "nvidia%u", minor);
                        r = nodes_add(nodes, n, makedev(NVIDIA_MAJOR, minor), name, false, true);
                        if (r < 0)
                                return r;
                }
                /* Shared by every NVIDIA GPU: listed beside a GPU's own node,
                 * never a reason on their own (a CUDA job on another card
                 * holds them too). */
                r = nodes_add(nodes, n, makedev(NVIDIA_MAJOR, NVIDIA_CTL_MINOR), "nvidiactl", true, true);
                if (r >= 0)
                        r = nodes_add(nodes, n, makedev(NVIDIA_MAJOR, NVIDIA_MODESET_MINOR), "nvidia-modeset", true,
                                      true);
                if (r >= 0 && nvidia_uvm_major(s, &uvm) >= 0)
                        r = nodes_add(nodes, n, makedev(uvm, 0), "nvidia-uvm", true, true);
                if (r < 0)
                        return r;
        }
        return 0;
}

int gpu_device_nodes(const Sysfs *s, const Gpu *g, DeviceNode **ret, size_t *ret_n) {
        _cleanup_free_ DeviceNode *nodes = NULL;
        size_t n = 0;

        for (size_t i = 0; i < g->n_functions; i++) {
                int r = add_function_nodes(s, &g->functions[i], &nodes, &n);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(nodes);
        *ret_n = n;
        return 0;
}

static const DeviceNode *match_node(const DeviceNode *nodes, size_t n, dev_t devnum) {
        for (size_t i = 0; i < n; i++)
                if (nodes[i].devnum == devnum)
                        return &nodes[i];
        return NULL;
}

/* systemd's rules for a unit name, as far as a service's goes: the
 * characters it allows, a name before ".service", at most 255 bytes. */
static bool service_name_is_valid(const char *name, size_t len) {
        static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\@";

        if (len <= strlen(".service") || len > 255 || strncmp(name + len - 8, ".service", 8) != 0 || name[0] == '.' ||
            name[0] == '@')
                return false;
        for (size_t i = 0; i < len; i++)
                if (!strchr(allowed, name[i]) || name[i] == 0)
                        return false;
        return true;
}

/* Where a process sits in the cgroup tree: only the exact unified line
 * "0::/system.slice/NAME.service" names a system service (anything deeper is
 * a subtree its owner may name at will), "0::/init.scope" is PID 1's, and a
 * libvirt domain's machine scope names the domain (machine.slice is
 * systemd-machined's, which only root asks to make scopes). */
static void read_cgroup(int pid_fd, Holder *h) {
        _cleanup_close_ int fd = openat(pid_fd, "cgroup", O_RDONLY | O_CLOEXEC);
        static const char prefix[] = "0::/system.slice/";
        char buf[512], *line;
        ssize_t k;

        k = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        if (k <= 0)
                return;
        buf[k] = 0;
        for (line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                size_t len = strcspn(line, "\n");

                if (len == strlen("0::/init.scope") && strncmp(line, "0::/init.scope", len) == 0)
                        h->protected = true;
                if (len > strlen(prefix) && strncmp(line, prefix, strlen(prefix)) == 0 &&
                    service_name_is_valid(line + strlen(prefix), len - strlen(prefix)))
                        snprintf(h->unit, sizeof h->unit, "%.*s", (int) (len - strlen(prefix)), line + strlen(prefix));
                if (strncmp(line, "0::/machine.slice/", strlen("0::/machine.slice/")) == 0) {
                        char l[sizeof buf];

                        snprintf(l, sizeof l, "%.*s", (int) len, line);
                        (void) vm_name_from_cgroup(l, h->vm, sizeof h->vm);
                }
        }
}

/* A QEMU process's guest, as "-name guest=NAME,..." or "-name NAME" on its
 * command line (libvirt passes the domain's name so): NAME, cut at the
 * first ',', only its printable ASCII kept (it goes into messages). */
static void read_vm_name(int pid_fd, char *vm, size_t len) {
        _cleanup_close_ int fd = openat(pid_fd, "cmdline", O_RDONLY | O_CLOEXEC);
        char buf[4096];
        ssize_t k = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        size_t n = 0;

        vm[0] = 0;
        if (k <= 0)
                return;
        buf[k] = 0;
        for (const char *a = buf; a < buf + k; a += strlen(a) + 1) {
                const char *v;

                if (!streq(a, "-name") || a + strlen(a) + 1 >= buf + k)
                        continue;
                v = a + strlen(a) + 1;
                if (strncmp(v, "guest=", 6) == 0)
                        v += 6;
                for (; *v && *v != ',' && n + 1 < len; v++)
                        vm[n++] = (*v > 0x20 && *v < 0x7f && *v != '\'' && *v != '"') ? *v : '?';
                vm[n] = 0;
                return;
        }
}

/* A process names itself (prctl PR_SET_NAME) with any bytes; its name goes
 * out in bus replies, which must be valid UTF-8 or are not sent at all, and
 * onto terminals: what is not UTF-8, and control characters, become '?'. */
static void sanitize_comm(char *comm) {
        const char *end;

        for (char *p = comm; !g_utf8_validate(p, -1, &end); p = (char *) end + 1)
                *(char *) end = '?';
        for (char *p = comm; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = '?';
}

static void read_comm(int pid_fd, char comm[static 32]) {
        _cleanup_close_ int fd = openat(pid_fd, "comm", O_RDONLY | O_CLOEXEC);
        ssize_t k = fd >= 0 ? read(fd, comm, 31) : -1;

        comm[k > 0 ? k : 0] = 0;
        comm[strcspn(comm, "\n")] = 0;
        sanitize_comm(comm);
}

static int pidfd_open_(pid_t pid) {
        return (int) syscall(SYS_pidfd_open, pid, 0);
}

int holder_pin(Holder *h, int pid_dir_fd) {
        int fd = pidfd_open_(h->pid);

        if (fd < 0)
                return -errno;
        /* Its /proc folder still answers: the PID was not given to another
         * process before the pidfd was opened, so the pidfd is that process. */
        if (pid_dir_fd >= 0 && faccessat(pid_dir_fd, "stat", F_OK, 0) < 0) {
                close(fd);
                return -ESRCH;
        }
        h->pidfd = fd;
        return 0;
}

void holders_free(Holder *h, size_t n) {
        for (size_t i = 0; h && i < n; i++)
                closep(&h[i].pidfd);
        free(h);
}

/* One entry per node a process holds, each pinning the process with a
 * pidfd of its own (holders_free() closes them). */
static int holders_add(Holder **l, size_t *n, int pid_fd, pid_t pid, uid_t uid, const char *comm,
                       const DeviceNode *node, bool pin) {
        Holder *h;

        for (size_t i = 0; i < *n; i++)
                if ((*l)[i].pid == pid && streq((*l)[i].node, node->name))
                        return 0;
        h = realloc(*l, (*n + 1) * sizeof *h);
        if (!h)
                return -ENOMEM;
        *l = h;
        h += *n;
        *h = (Holder) { .pid = pid, .uid = uid, .pidfd = -1, .blocks = node->blocks };
        snprintf(h->comm, sizeof h->comm, "%s", comm);
        snprintf(h->node, sizeof h->node, "%s", node->name);
        read_cgroup(pid_fd, h);
        h->flatpak = faccessat(pid_fd, "root/.flatpak-info", F_OK, 0) == 0;
        if (!h->vm[0] && (strncmp(comm, "qemu-system", 11) == 0 || strncmp(comm, "qemu-kvm", 8) == 0))
                read_vm_name(pid_fd, h->vm, sizeof h->vm);
        h->protected = h->protected || pid == 1 || pid == getpid() || streq(h->unit, "systemd-logind.service");
        if (pin)
                (void) holder_pin(h, pid_fd);
        (*n)++;
        return 0;
}

/* The scan's cost is one stat() per descriptor of every process: 2,000
 * processes with 64 descriptors are 128,000 walks through /proc's magic
 * links.  Around those the work is kept small: /proc is listed once, a
 * process costs one openat() of "PID/fd" and getdents64() into a buffer on
 * the stack (no DIR, so no fdopendir() fstat/fcntl/malloc), and its own
 * folder is opened only when it holds a node.  On a big table the PIDs are
 * shared out, a chunk at a time, between up to HOLDERS_SCAN_MAX_THREADS
 * threads: each process's lookups touch only its own files, so they scale
 * with the cores. */
#define PIDS_PER_THREAD 128     /* below that a thread costs more than it saves */
#define PIDS_PER_CHUNK 16

typedef struct ScanChunk {
        Holder *holders;
        size_t n;
} ScanChunk;

typedef struct Scan {
        int proc_fd;
        bool pin;               /* the real /proc: holders are pinned with pidfds */
        const DeviceNode *nodes;
        size_t n_nodes;
        pid_t *pids;            /* in /proc's order */
        size_t n_pids;
        ScanChunk *chunks;      /* the holders found in each chunk of pids[] */
        size_t next;            /* the next index of pids[] to take (atomic) */
        int error;              /* a failure (atomic): the other threads stop */
} Scan;

static int scan_process(const Scan *s, pid_t pid, Holder **l, size_t *n) {
        _cleanup_close_ int fd_dir = -1, pid_fd = -1;
        alignas(struct dirent64) uint8_t buf[8192];
        const DeviceNode *hits[16];
        size_t n_hits = 0;
        bool own = false;
        char path[32], comm[32];
        struct stat pst;
        ssize_t k;

        snprintf(path, sizeof path, "%d/fd", (int) pid);
        fd_dir = openat(s->proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd_dir < 0)
                return 0;       /* gone already, or a kernel thread */

        /* k <= 0: the end, or the process exited meanwhile */
        while ((k = getdents64(fd_dir, buf, sizeof buf)) > 0)
                for (ssize_t off = 0; off < k;) {
                        const struct dirent64 *de = (const struct dirent64 *) (buf + off);
                        const DeviceNode *hit;
                        struct statx sx;
                        bool seen = false;

                        off += de->d_reclen;
                        if (de->d_name[0] == '.')
                                continue;
                        /* Following the fd's magic link stats the open file
                         * itself: a character device, and which one, however
                         * the process named it (a container's /dev, a copy
                         * made with mknod).  The link itself says nothing.
                         * AT_STATX_DONT_SYNC: the type and device number never
                         * need a round trip to a network or FUSE file system
                         * that may hang.  An error is a descriptor closed
                         * since the listing. */
                        if (statx(fd_dir, de->d_name, AT_STATX_DONT_SYNC, STATX_TYPE, &sx) < 0 ||
                            !S_ISCHR(sx.stx_mode))
                                continue;
                        hit = match_node(s->nodes, s->n_nodes, makedev(sx.stx_rdev_major, sx.stx_rdev_minor));
                        if (!hit)
                                continue;
                        for (size_t i = 0; i < n_hits; i++)
                                seen = seen || hits[i] == hit;
                        if (!seen && n_hits < ELEMENTSOF(hits))
                                hits[n_hits++] = hit;
                        own = own || !hit->shared;
                }
        if (!own)
                return 0;

        /* "PID/fd/.." and not "PID": the same process even if the PID was
         * reused meanwhile. */
        pid_fd = openat(fd_dir, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pid_fd < 0 || fstat(pid_fd, &pst) < 0)
                return 0;
        read_comm(pid_fd, comm);
        for (size_t i = 0; i < n_hits; i++) {
                int r = holders_add(l, n, pid_fd, pid, pst.st_uid, comm, hits[i], s->pin);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void *scan_worker(void *userdata) {
        Scan *s = userdata;

        for (;;) {
                size_t first = __atomic_fetch_add(&s->next, PIDS_PER_CHUNK, __ATOMIC_RELAXED);
                ScanChunk *c;

                if (first >= s->n_pids || __atomic_load_n(&s->error, __ATOMIC_RELAXED) < 0)
                        return NULL;
                c = &s->chunks[first / PIDS_PER_CHUNK];
                for (size_t i = first; i < first + PIDS_PER_CHUNK && i < s->n_pids; i++) {
                        int r = scan_process(s, s->pids[i], &c->holders, &c->n);

                        if (r < 0) {
                                __atomic_store_n(&s->error, r, __ATOMIC_RELAXED);
                                return NULL;
                        }
                }
        }
}

static int list_pids(DIR *proc, pid_t **ret, size_t *ret_n) {
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0, allocated = 0;
        struct dirent *de;

        while ((de = readdir(proc))) {
                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                if (n == allocated) {
                        pid_t *p = reallocarray(pids, allocated = allocated ? allocated * 2 : 512, sizeof *p);

                        if (!p)
                                return -ENOMEM;
                        pids = p;
                }
                pids[n++] = (pid_t) atoi(de->d_name);
        }
        *ret = TAKE_PTR(pids);
        *ret_n = n;
        return 0;
}

static unsigned scan_threads(size_t n_pids) {
        cpu_set_t set;
        long cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : sysconf(_SC_NPROCESSORS_ONLN);
        size_t n = n_pids / PIDS_PER_THREAD;

        if (cpus < (long) n)
                n = cpus > 0 ? (size_t) cpus : 1;
        if (n > HOLDERS_SCAN_MAX_THREADS)
                n = HOLDERS_SCAN_MAX_THREADS;
        return n > 0 ? (unsigned) n : 1;
}

/* The calling thread scans too; n_threads - 1 more help it. */
static void scan_run(Scan *s, unsigned n_threads) {
        pthread_t threads[HOLDERS_SCAN_MAX_THREADS];
        unsigned started = 0;
        sigset_t all, old;

        /* Signals stay with the daemon's own threads. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        for (; started + 1 < n_threads; started++) {
                int r = pthread_create(&threads[started], NULL, scan_worker, s);

                if (r != 0) {
                        log_debug_errno(r, "holder scan: starting a helper thread, going on with %u", started + 1);
                        break;
                }
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        scan_worker(s);
        for (unsigned i = 0; i < started; i++)
                pthread_join(threads[i], NULL);
}

int holders_scan_threads(const char *proc_root, const DeviceNode *nodes, size_t n_nodes, unsigned n_threads,
                         Holder **ret, size_t *ret_n) {
        _cleanup_closedir_ DIR *proc = NULL;
        _cleanup_free_ pid_t *pids = NULL;
        _cleanup_free_ ScanChunk *chunks = NULL;
        _cleanup_free_ Holder *l = NULL;
        size_t n_pids, n_chunks, n = 0;
        Scan s;
        int r;

        *ret = NULL;
        *ret_n = 0;
        if (n_nodes == 0)
                return 0;
        proc = opendir(proc_root);
        if (!proc)
                return -errno;
        r = list_pids(proc, &pids, &n_pids);
        if (r < 0)
                return r;
        n_chunks = (n_pids + PIDS_PER_CHUNK - 1) / PIDS_PER_CHUNK;
        chunks = calloc(n_chunks ?: 1, sizeof *chunks);
        if (!chunks)
                return -ENOMEM;

        s = (Scan) {
                .proc_fd = dirfd(proc),
                .pin = streq(proc_root, "/proc"),
                .nodes = nodes,
                .n_nodes = n_nodes,
                .pids = pids,
                .n_pids = n_pids,
                .chunks = chunks,
        };
        if (n_threads == 0)
                n_threads = scan_threads(n_pids);
        scan_run(&s, n_threads < HOLDERS_SCAN_MAX_THREADS ? n_threads : HOLDERS_SCAN_MAX_THREADS);

        /* One list in /proc's order, whichever thread scanned what. */
        for (size_t i = 0; i < n_chunks; i++)
                n += chunks[i].n;
        if (s.error >= 0 && n > 0) {
                l = calloc(n, sizeof *l);
                if (!l)
                        s.error = -ENOMEM;
                /* a chunk without holders has a NULL list, and memcpy() from NULL is undefined */
                for (size_t i = 0, at = 0; l && i < n_chunks; at += chunks[i].n, i++)
                        if (chunks[i].n > 0)
                                memcpy(l + at, chunks[i].holders, chunks[i].n * sizeof *l);
        }
        for (size_t i = 0; i < n_chunks; i++)
                if (!l)
                        holders_free(chunks[i].holders, chunks[i].n);
                else
                        free(chunks[i].holders);       /* their pidfds moved to l */
        if (s.error < 0) {
                holders_free(TAKE_PTR(l), n);
                return s.error;
        }
        *ret = TAKE_PTR(l);
        *ret_n = n;
        return 0;
}

int holders_scan(const char *proc_root, const DeviceNode *nodes, size_t n_nodes, Holder **ret, size_t *ret_n) {
        return holders_scan_threads(proc_root, nodes, n_nodes, 0, ret, ret_n);
}

/* Display servers and compositors: glvnd hands them the NVIDIA EGL vendor
 * (10_nvidia.json) when the nvidia driver is loaded, and they keep the GPU. */
static const char *const compositors[] = {
        "Xwayland", "Xorg", "gnome-shell", "kwin_wayland", "kwin_x11", "sway", "Hyprland", "weston",
        "mutter", "labwc", "cosmic-comp", "river", "wayfire",
};

const char *holder_hint(const Holder *h, char *buf, size_t len) {
        const char *session_hint = holder_session_hint(h, buf, len);

        if (session_hint)
                return session_hint;
        if (h->pid == 1)
                return "systemd keeps the descriptors systemd-logind handed to a graphical session's compositor "
                       "(its fd store): log out of the session that uses this GPU, or keep the desktop off it; "
                       "gpuswitchd never ends PID 1";
        if (streq(h->unit, "systemd-logind.service"))
                return "systemd-logind opened it for a graphical session's compositor (TakeDevice): log out of "
                       "the session that uses this GPU, or keep the desktop off it; gpuswitchd never ends logind";
        if (h->protected)
                return "gpuswitchd never ends this process";
        if (h->vm[0]) {
                snprintf(buf, len, "the virtual machine %s uses the GPU: shut it down first ('virsh shutdown %s' "
                         "for a libvirt domain)", h->vm, h->vm);
                return buf;
        }
        if (h->flatpak)
                return "a flatpak app: its org.freedesktop.Platform.GL.nvidia runtime opens the GPU; "
                       "'flatpak mask org.freedesktop.Platform.GL.nvidia*' keeps flatpak apps off it";
        for (size_t i = 0; i < ELEMENTSOF(compositors); i++)
                if (streq(h->comm, compositors[i]))
                        return "glvnd gave it the NVIDIA EGL vendor (10_nvidia.json); start the session with "
                               "__EGL_VENDOR_LIBRARY_FILENAMES=/usr/share/glvnd/egl_vendor.d/50_mesa.json "
                               "to keep it on the other GPU";
        if (h->unit[0]) {
                snprintf(buf, len, "the system service %s: 'systemctl stop %s' first", h->unit, h->unit);
                return buf;
        }
        return NULL;
}

char *holders_describe(const Holder *h, size_t n) {
        char *s = NULL, hint_buf[512];
        size_t len = 0;
        FILE *f = open_memstream(&s, &len);

        if (!f)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                const char *hint = holder_hint(&h[i], hint_buf, sizeof hint_buf);

                fprintf(f, "%s  %d %s (uid %u) holds %s", i ? "\n" : "", (int) h[i].pid, h[i].comm,
                        (unsigned) h[i].uid, h[i].node);
                if (h[i].session_controller)
                        fprintf(f, " for %s's session %s, through systemd-logind", h[i].session_user,
                                h[i].session);
                fprintf(f, " (%s)", h[i].blocks ? "blocks the unbind" : "would lose the device");
                if (hint)
                        fprintf(f, "\n    %s", hint);
        }
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        return s;
}

int holders_terminate(const Holder *h, size_t n, unsigned timeout_ms) {
        _cleanup_free_ struct pollfd *fds = calloc(n ?: 1, sizeof *fds);
        size_t n_fds = 0;
        int killed = 0;

        if (!fds)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                bool again = false;

                for (size_t k = 0; k < i; k++)
                        again = again || h[k].pid == h[i].pid;
                if (again)
                        continue;       /* one entry per node it holds: one signal */
                if (h[i].protected || h[i].pidfd < 0) {
                        log_notice("not signalling %d (%s): %s", (int) h[i].pid, h[i].comm,
                                   h[i].protected ? "a process gpuswitchd never ends" : "it could not be pinned");
                        continue;
                }
                log_notice("terminating %d (%s, uid %u), holder of %s", (int) h[i].pid, h[i].comm,
                           (unsigned) h[i].uid, h[i].node);
                if (syscall(SYS_pidfd_send_signal, h[i].pidfd, SIGTERM, NULL, 0) < 0)
                        continue;       /* gone already */
                fds[n_fds++] = (struct pollfd) { .fd = h[i].pidfd, .events = POLLIN };
        }
        if (n_fds == 0)
                return 0;
        /* A pidfd polls readable once its process has exited (a zombie holds
         * no files any more, reaped or not). */
        for (uint64_t end = now_msec() + timeout_ms;;) {
                uint64_t now = now_msec();
                size_t alive = 0;

                if (poll(fds, n_fds, now < end ? (int) (end - now) : 0) < 0 && errno != EINTR)
                        break;
                for (size_t i = 0; i < n_fds; i++)
                        if (fds[i].fd >= 0 && !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                alive++;
                        else
                                fds[i].fd = -1;
                if (alive == 0 || now_msec() >= end)
                        break;
        }
        for (size_t i = 0; i < n_fds; i++) {
                const Holder *x = NULL;

                if (fds[i].fd < 0)
                        continue;
                for (size_t k = 0; k < n && !x; k++)
                        if (h[k].pidfd == fds[i].fd)
                                x = &h[k];
                log_notice("killing %d (%s): still alive %u ms after SIGTERM", x ? (int) x->pid : -1,
                           x ? x->comm : "?", timeout_ms);
                if (syscall(SYS_pidfd_send_signal, fds[i].fd, SIGKILL, NULL, 0) >= 0)
                        killed++;
        }
        return killed;
}
