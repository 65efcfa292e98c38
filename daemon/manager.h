/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "gpu.h"
#include "gpuswitch-bus.h"
#include "sysfs.h"
#include "worker.h"

typedef struct Manager Manager;
typedef struct Job Job;

/* A GPU the daemon manages: its last known state and the switch under way. */
typedef struct ManagedGpu {
        Manager *manager;
        PciAddress slot;
        char address[PCI_SLOT_STRLEN];
        char *object_path;
        char *name;
        Gpu *state;               /* last read from sysfs, host drivers filled in */
        GpuMode mode;             /* derived from state, or switching */
        GpuMode default_mode;
        bool allow_boot_vga;
        bool boot_vga;
        Job *job;                 /* the switch under way, NULL when idle */
        char *step;               /* the job's current kernel write, for the Step property */
        char **stop_services;     /* units stopped for vfio, started again for host */
} ManagedGpu;

/* The daemon's one context. */
struct Manager {
        sd_event *event;
        sd_bus *bus;
        Sysfs sysfs;
        Config *config;
        char *config_path;        /* read at start, written by SetDefaultMode */
        ManagedGpu **gpus;
        size_t n_gpus;
        sd_event_source *uevent_source;
        sd_event_source *uevent_refresh;  /* the GPUs read again after a burst of uevents */
        sd_bus_slot *manager_slot, *gpu_slot, *gpu_enumerator_slot;
        Worker *workers;          /* switches and scans under way */
        int lock_fd;              /* instance_lock(): held for the daemon's life */
};

int manager_new(Manager **ret);
void manager_free(Manager *m);
static inline void manager_freep(Manager **m) { manager_free(*m); }

/* Finds the GPUs to manage from the config and reads their state. */
int manager_discover(Manager *m);

/* At start, before the bus name: puts back a GPU whose switch a previous
 * daemon left halfway (its record on disk), then applies DefaultMode= once
 * per boot.  Synchronous: nobody can call yet, and the display manager
 * waits for us. */
int manager_startup_switches(Manager *m);

/* SIGTERM and SIGINT end the event loop (the switch under way is waited
 * for by manager_free()). */
int manager_exit_on_signals(Manager *m);

/* Connects the vtables and the uevent monitor; bus must be set. */
int manager_attach_bus(Manager *m);

/* By the "gpu" argument of a method: slot, function, short form or ""
 * for the only GPU.  NoSuchGpu or InvalidArgs in error otherwise. */
ManagedGpu *manager_find_gpu(Manager *m, const char *arg, sd_bus_error *error);
ManagedGpu *manager_find_gpu_by_path(Manager *m, const char *path);

/* Reads the GPU's functions again; emits PropertiesChanged when Mode or
 * Functions changed. */
int managed_gpu_refresh(ManagedGpu *g);
void managed_gpu_set_mode(ManagedGpu *g, GpuMode mode);
void managed_gpu_set_step(ManagedGpu *g, const char *step);
/* Writes DefaultMode= for the GPU to the config file, reads the file
 * again and announces the new DefaultMode. */
int managed_gpu_set_default_mode(ManagedGpu *g, GpuMode mode, sd_bus_error *error);

/* bus-manager.c, bus-gpu.c */
extern const sd_bus_vtable manager_vtable[];
extern const sd_bus_vtable gpu_vtable[];

/* uevent.c: follows bind/unbind of managed functions, whoever does them. */
int uevent_monitor_start(Manager *m);
