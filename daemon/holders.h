/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "gpu.h"
#include "sysfs.h"

/* A device node of the GPU that a process may hold open. */
typedef struct DeviceNode {
        dev_t devnum;
        char name[48];           /* "card0", "renderD128", "controlC0", "vfio/7", "nvidia0" */
        /* Opened by every process that uses any NVIDIA GPU (nvidiactl,
         * nvidia-modeset, nvidia-uvm): holding it alone does not make a
         * process a holder of this GPU. */
        bool shared;
        /* Held open, it keeps its driver's remove() waiting (nvidia, ALSA,
         * vfio-pci, misc nodes, DRM of other drivers): the unbind would
         * hang.  false: the unbind goes through and the holder only loses
         * the device (DRM of drivers that unplug, USB). */
        bool blocks;
} DeviceNode;

typedef struct Holder {
        pid_t pid;
        uid_t uid;
        char comm[32];
        char node[48];           /* the DeviceNode name it holds */
        char unit[96];           /* its systemd system service, "" if none */
        bool flatpak;            /* runs in a flatpak sandbox */
        /* the VM it is part of: its libvirt domain (the machine scope of its
         * cgroup), else for QEMU its -name guest=NAME; "" for none */
        char vm[64];
        /* PID 1, systemd-logind, init.scope and gpuswitchd itself: never
         * signalled, whatever the caller asks. */
        bool protected;
        /* Pins the process from the scan on, so that a signal never reaches
         * another process that got its PID; -1: not pinned (a simulated
         * /proc, or it ended during the scan), and then never signalled. */
        int pidfd;
        bool blocks;             /* its node's DeviceNode.blocks */
        /* Set by holders_attribute() (holder-session.c): */
        char session[32];        /* the logind session whose device this is ("2"), or "" */
        char session_user[32];   /* its user */
        bool session_controller; /* it is that session's controller: logind and PID 1 keep copies for it */
        /* PID 1: the services whose fd store may keep it (", " between
         * them), when it keeps more copies than logind's sessions account for */
        char fdstore[192];
        bool fdstore_exact;      /* systemd said which descriptors they keep (DumpUnitFileDescriptorStore) */
        bool fdstore_unnamed;    /* more copies than the sessions account for, and no service to name */
} Holder;

/* Closes the holders' pidfds and frees the list. */
void holders_free(Holder *h, size_t n);

/* Pins h->pid with a pidfd, if pid_dir_fd (its /proc/PID folder, opened
 * before) still belongs to the same process afterwards; -1 for pid_dir_fd
 * trusts the PID (a child of the caller, which cannot be reused before it
 * is reaped). */
int holder_pin(Holder *h, int pid_dir_fd);

/* The character devices that belong to the GPU's functions: DRM card and
 * render nodes, ALSA nodes, the USB devices below an xHCI function, the
 * VFIO group of a function on vfio-pci and, for a function nvidia's RM
 * drives (its /proc/driver/nvidia/gpus entry), /dev/nvidiaN and the control
 * nodes all NVIDIA GPUs share; each says whether a holder of it blocks the
 * unbind. */
int gpu_device_nodes(const Sysfs *s, const Gpu *g, DeviceNode **ret, size_t *ret_n);

/* Every process under proc_root ("/proc") with one of the nodes open,
 * matched by device number over /proc/PID/fd.  One entry per process and
 * node. */
int holders_scan(const char *proc_root, const DeviceNode *nodes, size_t n_nodes, Holder **ret, size_t *ret_n);

/* The same with n_threads scanning (0: one per CPU we may run on, up to
 * HOLDERS_SCAN_MAX_THREADS, fewer on a small process table).  The result
 * does not depend on it: in /proc's order either way. */
#define HOLDERS_SCAN_MAX_THREADS 4
int holders_scan_threads(const char *proc_root, const DeviceNode *nodes, size_t n_nodes, unsigned n_threads,
                         Holder **ret, size_t *ret_n);

/* What to do about a holder we know of (a compositor that loaded the
 * NVIDIA EGL vendor, a flatpak GL runtime, a service), or NULL. */
const char *holder_hint(const Holder *h, char *buf, size_t len);

/* One line per holder, "  1234 Xwayland (uid 1000) holds card0 (blocks
 * the unbind)" or "... (would lose the device)", each followed by its hint
 * when there is one. */
char *holders_describe(const Holder *h, size_t n);

/* SIGTERM to each holder through its pidfd, up to timeout_ms for them to
 * go (polling the pidfds), then SIGKILL to what is left.  Protected and
 * unpinned holders are not signalled.  Returns the number that needed
 * SIGKILL. */
int holders_terminate(const Holder *h, size_t n, unsigned timeout_ms);
