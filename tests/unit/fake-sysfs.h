/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "sysfs.h"
#include "util.h"

/* A sysfs tree in a temporary folder, shaped like the kernel's, and a
 * simulated kernel behind its writes (the sysfs-bus-pci semantics the
 * engine relies on).  Nothing here ever touches the real /sys. */
typedef struct FakeKernel {
        char root[256];
        char kmsg[300];
        Sysfs sysfs;
        int n_writes;
        int fail_write;             /* make the Nth write (1-based) fail, 0: none */
        int fail_errno;
        char refuse_driver[32];     /* this driver's probe binds nothing ... */
        char refuse_device[16];     /* ... on this function ("" = every one) */
        char flaky_device[16];      /* the next flaky_probes probes of a host driver (not vfio-pci) on
                                       this function fail, and say so in the kernel log */
        int flaky_probes;
        char fail_at[64];           /* "0000:01:00.2/probe": that write (override, unbind, probe, bind) of
                                       that function fails with EIO, as if the kernel refused it */
        /* power/control and reset are written beside the kernel sequence:
         * they are not in n_writes and the log, and fail_write skips them */
        int n_power_writes;
        bool power_write_fails;
        int n_resets;
        int nvidia_clients;         /* open clients of nvidia (in-kernel ones too): its unbindLock is not given */
        int n_while_suspendable;    /* unbinds, binds, probes and resets of a function whose
                                       power/control was not "on" */
        bool load_fails;
        unsigned write_delay_ms;    /* each unbind, bind and drivers_probe takes this long, as the
                                       driver's remove() and probe() do in a real kernel */
        int n_loads;
        int n_kmsg;
        char log[128][160];         /* "drivers_probe 0000:01:00.0" and the like */
        size_t n_log;
        int opens_fd;               /* inotify, from fake_opens_start(); -1: not counting */
        char open_names[32][32];    /* the attributes opened since, and how often */
        int open_counts[32];
        size_t n_open_names;
        int n_gone_writes;          /* writes about a function that was removed: ENODEV */
        pthread_mutex_t lock;       /* a write, against a hot unplug (fake_gpu_remove()) */
} FakeKernel;

/* Each function has power/control "auto", power_state "D0", reset_method
 * "flr" and reset; the kernel log is a file in the tree.
 * The standard machine: the GPU slot 0000:01:00 with VGA (bochs-drm), HD
 * audio (snd_hda_intel) and USB (xhci_hcd) in IOMMU group 5 with the root
 * port 0000:00:05.0 (pcieport), and a NIC 0000:02:00.0 (e1000e) in group
 * 6.  vfio-pci is not loaded; the VGA function is not the boot VGA. */
FakeKernel *fake_kernel_new(void);
void fake_kernel_free(FakeKernel *k);

/* Adds a PCI function, bound to native (or unbound when NULL). */
void fake_add_function(FakeKernel *k, const char *addr, unsigned class_code, unsigned vendor, unsigned device,
                       const char *native, int iommu_group, bool boot_vga);
void fake_add_driver(FakeKernel *k, const char *driver);
/* Moves a function into another IOMMU group. */
void fake_set_group(FakeKernel *k, const char *addr, int group);

void fake_put_attr(FakeKernel *k, const char *addr, const char *attr, const char *value);
/* An attribute's value now, newline stripped ("?" when missing). */
const char *fake_attr(FakeKernel *k, const char *addr, const char *attr);
/* Removes an attribute (a function without reset, without power_state). */
void fake_remove_attr(FakeKernel *k, const char *addr, const char *attr);
/* A line in the simulated /dev/kmsg (k->sysfs.kmsg), in its format. */
void fake_kmsg(FakeKernel *k, const char *fmt, ...) _printf_(2, 3);

/* What the tree says now: driver ("" when unbound) and driver_override. */
const char *fake_driver(FakeKernel *k, const char *addr);
const char *fake_override(FakeKernel *k, const char *addr);
/* "drv[override] drv[override] ..." of the GPU's three functions. */
const char *fake_state(FakeKernel *k);

/* Takes a function out of the tree, as a hot unplug does. */
void fake_remove_function(FakeKernel *k, const char *addr);

/* The GPU slot 0000:01:00 (its three functions) taken out of the tree, as
 * `echo 1 > .../remove` of each does, after the write under way; and put
 * back as the standard machine has it (host drivers bound, no override),
 * as a rescan does.  From any thread. */
void fake_gpu_remove(FakeKernel *k);
void fake_gpu_add(FakeKernel *k);
/* The message the kernel's netlink group carries for ACTION ("add",
 * "remove") of a PCI function: "ACTION@DEVPATH\0KEY=VALUE\0...", with
 * SUBSYSTEM=pci and PCI_SLOT_NAME=; its length with the last NUL. */
size_t fake_uevent(const char *action, const char *function, char *buf, size_t size);
/* ... for each of the GPU slot's functions, function 0 first. */
size_t fake_gpu_uevents(const char *action, char msgs[3][512], size_t lens[3]);

/* Counts from now on the opens of the attribute files of the GPU's three
 * functions (inotify IN_OPEN: what open(2) reads; the driver and
 * iommu_group links are read with readlink(2), which it does not see). */
void fake_opens_start(FakeKernel *k);
/* The opens of ATTR ("class", ...) since fake_opens_start(), NULL: of any. */
int fake_opens(FakeKernel *k, const char *attr);
