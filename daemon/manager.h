/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "engine.h"
#include "gpu.h"
#include "gpuswitch-bus.h"
#include "holders-cache.h"
#include "holders-calls.h"
#include "job.h"
#include "polkit.h"
#include "sysfs.h"
#include "worker.h"

typedef struct Manager Manager;
typedef struct ManagedGpu ManagedGpu;

/* Who asked for the switch under way (the bus layer replies from these). */
typedef struct SwitchOwner {
        /* A kernel write has not returned after the step timeout; the switch goes on. */
        void (*stuck)(ManagedGpu *g, const char *step, unsigned timeout_sec, void *userdata);
        /* The switch is over, the GPU's state read again; error NULL on success. */
        void (*done)(ManagedGpu *g, const SwitchError *error, void *userdata);
        void *userdata;
} SwitchOwner;

/* A GPU the daemon manages: its last known state and the switch under way.
 * Counted: m->gpus holds one reference while it is managed; a switch, a
 * read on a worker and a polkit check under way each hold one, so a GPU
 * that leaves the PCI bus meanwhile (manager_remove_gpu()) is freed when
 * the last of them lets go, never under them. */
struct ManagedGpu {
        Manager *manager;
        unsigned n_ref;
        bool gone;                /* removed: off the bus and out of m->gpus */
        PciAddress slot;
        char address[PCI_SLOT_STRLEN];
        char *object_path;
        char *name;
        Gpu *state;               /* last read from sysfs, host drivers filled in */
        GpuState announced;       /* the Mode last sent in PropertiesChanged */
        DefaultMode default_mode;
        bool allow_boot_vga;
        bool boot_vga;
        uint64_t generation;      /* of state: counts the reads applied */
        bool refreshing, refresh_again;
        Job *job;                 /* the switch under way, NULL when idle */
        SwitchOwner owner;        /* who asked for it */
        char *step;               /* the job's current kernel write, for the Step property */
        char **stop_services;     /* units stopped for vfio, started again for host */
        bool reread_whole;        /* a whole read was asked for during the switch */
        struct VmWatch *vm_watch; /* the VM holding it, for VirtualMachine */
        HoldersCache *holders_cache;  /* ListHolders' scans, made on the first */
};

/* The daemon's one context. */
struct Manager {
        sd_event *event;
        sd_bus *bus;
        Sysfs sysfs;
        Config *config;
        char *config_path;        /* read at start, written by SetDefaultMode */
        ManagedGpu **gpus;
        size_t n_gpus;
        ManagedGpu **gone;        /* removed GPUs still referred to (a switch under way, ...) */
        size_t n_gone;
        PciAddress *appearing;    /* slots read on a worker before they are managed (hotplug.c) */
        size_t n_appearing;
        bool stopping;            /* in manager_free(): reads delivered now publish nothing */
        sd_event_source *uevent_source;
        sd_event_source *uevent_refresh;  /* the GPUs read again after a burst of uevents */
        bool uevent_refresh_whole;        /* the burst had more than bind/unbind: read every attribute */
        bool uevent_refresh_gpus;         /* the burst was about a managed GPU: read them */
        bool uevent_hotplug;              /* the burst added or removed PCI functions: manager_hotplug() */
        sd_bus_slot *manager_slot, *gpu_slot, *gpu_enumerator_slot, *object_manager_slot;
        WorkerPool *workers;      /* the threads of switches, reads and holder scans */
        PolkitQueue *polkit;      /* the authorization checks under way */
        HoldersCalls *holders_calls;  /* the ListHolders calls under way, made on the first */
        int lock_fd;              /* instance_lock(): held for the daemon's life */
        /* A config that does not parse: every call is answered with this
         * (BadConfig) until the file changes and the daemon exits. */
        char *config_error;
        sd_bus_slot *config_error_filter;
        sd_event_source *config_watch;
};

int manager_new(Manager **ret);
void manager_free(Manager *m);
static inline void manager_freep(Manager **m) { manager_free(*m); }

/* Finds the GPUs to manage from the config and reads their state.  A
 * mistake in the config only sysfs shows (Companions=) comes back as
 * -EINVAL with *config_error set, in the parser's words. */
int manager_discover(Manager *m, char **config_error);

/* At start, before the config is read: puts back every GPU whose switch
 * a previous daemon left halfway (its record on disk), and starts the
 * services stopped for it.  Synchronous, as is manager_apply_default_modes():
 * nobody can call yet, and the display manager waits for us. */
int manager_recover(Manager *m);

/* After manager_discover(): DefaultMode= of each GPU, once per boot. */
int manager_apply_default_modes(Manager *m);

/* SIGTERM and SIGINT, blocked from main()'s first line: a stop asked for
 * during the start-up switches lets the one under way finish (or roll back
 * before its kernel writes), and starts no other. */
void manager_block_stop_signals(void);
bool manager_stop_requested(void);
/* From then on they end the event loop (the switch under way is waited
 * for by manager_free()). */
int manager_exit_on_signals(Manager *m);

/* With a config that does not parse: every call gets BadConfig with the
 * parser's message, and the daemon exits once the file has changed and
 * parses, so that the next call starts one that uses it. */
int manager_serve_config_error(Manager *m, const char *message);


/* The GPUs to manage looked at again, after PCI functions were added or
 * removed (uevents; hotplug.c): a managed GPU none of whose slot's
 * functions is left goes (manager_remove_gpu()); a slot that the start-up
 * rules (gpus_to_manage(): Gpus= or Gpus=auto) would manage now and that
 * is present and not managed is read and published.  A slot whose removed
 * GPU still has a switch under way waits for its end (its kernel writes
 * must not reach the new device). */
int manager_hotplug(Manager *m);
/* Whether a function of the slot is in sysfs (a lookup, no device lock). */
bool manager_slot_present(const Manager *m, const PciAddress *slot);
/* Whether one of m->gpus is at the slot. */
bool manager_manages_slot(const Manager *m, const PciAddress *slot);

/* Reads the GPU at slot and manages it (manager_read_gpu(), then
 * manager_publish_gpu()), at start.  0 when the slot has no function. */
int manager_add_gpu(Manager *m, const PciAddress *slot);
/* The GPU's functions as the start-up read takes them.  Reading
 * driver_override waits for the function's device lock: a GPU that appears
 * while the daemon runs is read on a worker (hotplug.c), while the kernel
 * probes its drivers. */
int manager_read_gpu(const Manager *m, const PciAddress *slot, Gpu **ret);
/* Manages the GPU read as state (taken); published on the bus
 * (InterfacesAdded, Gpus changed) when the bus is attached.  1, or a
 * negative errno. */
int manager_publish_gpu(Manager *m, const PciAddress *slot, Gpu *state);
/* The GPU left the PCI bus: off the bus at once (InterfacesRemoved, Gpus
 * changed), out of m->gpus (calls get NoSuchGpu), ListHolders calls waiting
 * for its scan answered; freed when nothing refers to it any more. */
void manager_remove_gpu(Manager *m, ManagedGpu *g);

ManagedGpu *managed_gpu_ref(ManagedGpu *g);
void managed_gpu_unref(ManagedGpu *g);
/* Emits PropertiesChanged for a property of the GPU, while it is published. */
void managed_gpu_emit_changed(ManagedGpu *g, const char *property);

/* By the "gpu" argument of a method: slot, function, short form or ""
 * for the only GPU.  NoSuchGpu or InvalidArgs in error otherwise. */
ManagedGpu *manager_find_gpu(Manager *m, const char *arg, sd_bus_error *error);
ManagedGpu *manager_find_gpu_by_path(Manager *m, const char *path);

/* Reads the GPU's functions again on a worker (the bus loop never waits on
 * sysfs); emits PropertiesChanged when Mode or Functions changed.  whole:
 * every attribute (a function added or removed); else only each function's
 * driver and driver_override (a bind or unbind: nothing else changes). */
void managed_gpu_refresh(ManagedGpu *g, bool whole);
/* A whole read, now: before the event loop runs. */
int managed_gpu_read(ManagedGpu *g);
/* Mode: switching while a switch is in flight, else what the functions show. */
GpuState managed_gpu_state(const ManagedGpu *g);
/* Starts a switch; the owner is told how it ends.  -EBUSY while another
 * runs. */
int managed_gpu_switch(ManagedGpu *g, SwitchTarget target, uint64_t flags, const SwitchOwner *owner);
/* Writes DefaultMode= for the GPU to the config file, reads the file
 * again and announces the new DefaultMode. */
int managed_gpu_set_default_mode(ManagedGpu *g, DefaultMode mode, sd_bus_error *error);

