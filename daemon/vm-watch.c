/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vm-watch.h"

#include <fcntl.h>
#include <glib.h>
#include <sys/epoll.h>

#include "gpuswitch-bus.h"
#include "holders.h"
#include "manager.h"
#include "util.h"

#define VM_WATCH_FIRST_USEC (1 * G_USEC_PER_SEC)
#define VM_WATCH_MAX_USEC (60 * G_USEC_PER_SEC)
/* a change of the functions comes in bursts of uevents */
#define VM_WATCH_SETTLE_USEC (200 * 1000)

struct VmWatch {
        ManagedGpu *gpu;
        char *name;                  /* "" for none */
        sd_event_source *timer;      /* the next look */
        uint64_t backoff_usec;
        sd_event_source *exit_source; /* the VM's pidfd */
        int pidfd;
        bool scanning, scan_again;
        struct VmScan *running;      /* the look on a worker, told when the watch goes first */
        uint64_t generation;         /* counts state changes, so a look begun before one is not taken */
};

typedef struct VmScan {
        VmWatch *watch;              /* NULL once the watch is freed (its GPU left the bus) */
        const Sysfs *sysfs;          /* the manager's: it outlives the pool's work */
        Gpu *snapshot;
        const char *proc_root;
        uint64_t generation;
        char *name;                  /* found */
        int pidfd;                   /* of the process found, -1 */
} VmScan;

static void vm_scan_free(VmScan *s) {
        gpu_free(s->snapshot);
        free(s->name);
        closep(&s->pidfd);
        free(s);
}

static bool on_vfio(const ManagedGpu *g) {
        for (size_t i = 0; g->state && i < g->state->n_functions; i++)
                if (streq_ptr(g->state->functions[i].driver, "vfio-pci"))
                        return true;
        return false;
}

static void set_name(VmWatch *w, const char *name) {
        ManagedGpu *g = w->gpu;

        if (streq(w->name, name))
                return;
        free(w->name);
        w->name = strdup(name);
        if (!w->name)
                w->name = strdup("");
        if (name[0])
                log_info("%s: held by the VM %s", g->address, name);
        managed_gpu_emit_changed(g, "VirtualMachine");
}

static void drop_pidfd(VmWatch *w) {
        w->exit_source = sd_event_source_disable_unref(w->exit_source);
        closep(&w->pidfd);
        w->pidfd = -1;
}

static void schedule(VmWatch *w, uint64_t usec);

/* On a worker: the holders of the VFIO nodes only.  A QEMU process holds
 * the group (and the container) or, through iommufd, the device node. */
static int vm_scan_work(void *userdata) {
        VmScan *s = userdata;
        _cleanup_free_ DeviceNode *nodes = NULL;
        Holder *holders = NULL;
        size_t n_nodes = 0, n_vfio = 0, n = 0;
        int r;

        r = gpu_device_nodes(s->sysfs, s->snapshot, &nodes, &n_nodes);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_nodes; i++)
                if (strncmp(nodes[i].name, "vfio", 4) == 0)
                        nodes[n_vfio++] = nodes[i];
        if (n_vfio == 0)
                return 0;
        r = holders_scan(s->proc_root, nodes, n_vfio, &holders, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && !s->name; i++) {
                const Holder *h = &holders[i];

                if (h->vm[0])
                        s->name = strdup(h->vm);
                else
                        s->name = strdup(h->comm);
                s->pidfd = h->pidfd >= 0 ? fcntl(h->pidfd, F_DUPFD_CLOEXEC, 3) : -1;
        }
        holders_free(holders, n);
        return s->name || n == 0 ? 0 : -ENOMEM;
}

static int on_vm_exit(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        VmWatch *w = userdata;

        log_info("%s: the VM %s ended", w->gpu->address, w->name);
        drop_pidfd(w);
        w->backoff_usec = 0;
        schedule(w, 0);
        return 0;
}

static void vm_scan_done(int result, void *userdata) {
        VmScan *s = userdata;
        VmWatch *w = s->watch;
        ManagedGpu *g;

        if (!w) {
                vm_scan_free(s);
                return;
        }
        g = w->gpu;
        w->running = NULL;
        w->scanning = false;
        if (result < 0)
                log_warning_errno(result, "%s: looking for the VM that holds it", g->address);
        else if (s->generation == w->generation && on_vfio(g)) {
                drop_pidfd(w);
                set_name(w, strempty(s->name));
                if (s->name && s->pidfd >= 0 &&
                    sd_event_add_io(g->manager->event, &w->exit_source, s->pidfd, EPOLLIN, on_vm_exit, w) >= 0)
                        w->pidfd = TAKE_FD(s->pidfd);
        }
        vm_scan_free(s);
        if (w->scan_again) {
                w->scan_again = false;
                schedule(w, VM_WATCH_SETTLE_USEC);
        } else if (on_vfio(g) && w->pidfd < 0) {
                /* nothing pinned to wait on: look again, less often each time */
                w->backoff_usec = w->backoff_usec ? MIN(w->backoff_usec * 2, VM_WATCH_MAX_USEC) : VM_WATCH_FIRST_USEC;
                schedule(w, w->backoff_usec);
        }
}

static void start_scan(VmWatch *w) {
        ManagedGpu *g = w->gpu;
        VmScan *s;
        int r;

        if (w->scanning) {
                w->scan_again = true;
                return;
        }
        if (!on_vfio(g))
                return;
        s = calloc(1, sizeof *s);
        if (!s || gpu_copy(g->state, &s->snapshot) < 0) {
                free(s);
                log_error("%s: out of memory looking for the VM that holds it", g->address);
                return;
        }
        s->watch = w;
        s->sysfs = &g->manager->sysfs;
        s->pidfd = -1;
        s->generation = w->generation;
        s->proc_root = g->manager->sysfs.proc_root ? g->manager->sysfs.proc_root : "/proc";
        r = worker_start(g->manager->workers, WORK_SCAN, vm_scan_work, vm_scan_done, s);
        if (r < 0) {
                vm_scan_free(s);
                /* the scans of callers come first; try again later */
                if (r == -EBUSY)
                        schedule(w, VM_WATCH_FIRST_USEC);
                return;
        }
        w->scanning = true;
        w->running = s;
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        start_scan(userdata);
        return 0;
}

static void schedule(VmWatch *w, uint64_t usec) {
        sd_event *e = w->gpu->manager->event;
        uint64_t now;

        if (!e || sd_event_now(e, CLOCK_MONOTONIC, &now) < 0)
                return;
        if (w->timer) {
                (void) sd_event_source_set_time(w->timer, now + usec);
                (void) sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
                return;
        }
        if (sd_event_add_time(e, &w->timer, CLOCK_MONOTONIC, now + usec, 0, on_timer, w) >= 0)
                (void) sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
}

void vm_watch_state_changed(VmWatch *w) {
        w->generation++;
        w->backoff_usec = 0;
        if (!on_vfio(w->gpu)) {
                if (w->timer)
                        (void) sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
                drop_pidfd(w);
                set_name(w, "");
                return;
        }
        if (w->scanning)
                w->scan_again = true;
        else
                schedule(w, VM_WATCH_SETTLE_USEC);
}

void vm_watch_holders_scanned(VmWatch *w, const Holder *h, size_t n) {
        ManagedGpu *g = w ? w->gpu : NULL;

        /* a look of its own under way answers the same question */
        if (!g || !on_vfio(g) || w->pidfd >= 0 || w->scanning)
                return;
        for (size_t i = 0; i < n; i++) {
                _cleanup_close_ int pidfd = -1;

                if (strncmp(h[i].node, "vfio", 4) != 0)
                        continue;
                set_name(w, h[i].vm[0] ? h[i].vm : h[i].comm);
                pidfd = h[i].pidfd >= 0 ? fcntl(h[i].pidfd, F_DUPFD_CLOEXEC, 3) : -1;
                if (pidfd >= 0 && sd_event_add_io(g->manager->event, &w->exit_source, pidfd, EPOLLIN, on_vm_exit, w) >= 0) {
                        w->pidfd = TAKE_FD(pidfd);
                        if (w->timer)
                                (void) sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
                }
                return;
        }
}

int vm_watch_new(ManagedGpu *g, VmWatch **ret) {
        VmWatch *w = calloc(1, sizeof *w);

        if (!w)
                return -ENOMEM;
        w->gpu = g;
        w->pidfd = -1;
        w->name = strdup("");
        if (!w->name) {
                free(w);
                return -ENOMEM;
        }
        *ret = w;
        return 0;
}

void vm_watch_free(VmWatch *w) {
        if (!w)
                return;
        /* the pool delivers it later: it must not find us */
        if (w->running)
                w->running->watch = NULL;
        sd_event_source_disable_unref(w->timer);
        drop_pidfd(w);
        free(w->name);
        free(w);
}

const char *vm_watch_name(const VmWatch *w) {
        return w ? w->name : "";
}
