/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "gpu.h"
#include "holder-session.h"
#include "plan.h"
#include "switch-error.h"
#include "switch-record.h"
#include "sysfs.h"

/* Every switch goes through engine_run(): one asked for over the bus, the
 * boot-time DefaultMode=, and the recovery of a switch a previous daemon
 * left halfway.  Each is a declared list of steps (switch_steps()); a step
 * that fails undoes the ones before it, last first, and the cleanup steps
 * run whatever happened.  The engine knows no D-Bus: it reports to an
 * observer and returns a SwitchError.  It blocks in the kernel and in
 * systemd: call it off the bus loop, or before there is one. */

typedef enum SwitchOrigin {
        SWITCH_ORIGIN_BUS,
        SWITCH_ORIGIN_BOOT,
        SWITCH_ORIGIN_RECOVERY,
        _SWITCH_ORIGIN_MAX,
} SwitchOrigin;

const char *switch_origin_to_string(SwitchOrigin o);

/* The services a switch stops and starts again (services.c talks to
 * systemd; the unit tests put a stand-in here). */
typedef struct SwitchServices {
        int (*stop)(const char *state_dir, const char *address, char *const *units, SwitchError *error);
        int (*restart)(const char *state_dir, const char *address);
} SwitchServices;

extern const SwitchServices switch_services_systemd;

typedef struct SwitchObserver {
        /* Before each step, on the engine's thread.  A negative return stops
         * the switch there as if the step had failed with it (a daemon told
         * to stop rolls a boot switch back instead of starting its kernel
         * writes). */
        int (*step)(SwitchStep step, void *userdata);
        void *userdata;
} SwitchObserver;

typedef struct SwitchContext {
        SwitchOrigin origin;
        SwitchTarget target;           /* bus and boot */
        const Gpu *gpu;                /* as last known: its address and host drivers; the functions are read again */
        const SwitchRecord *record;    /* recovery: the functions as they were before the interrupted switch */
        Sysfs *sysfs;
        const char *state_dir;         /* the switch record and the stopped services */
        const char *proc_root;         /* for the holder scan */
        PlanPolicy policy;
        bool terminate_holders;
        /* Holders that only lose the device (their driver's remove() does
         * not wait for them) are left running; a blocking one still
         * refuses the switch, or with terminate_holders is the only one
         * ended. */
        bool keep_holders;
        char *const *stop_services;    /* NULL-terminated, or NULL */
        const SwitchServices *services;
        const SwitchObserver *observer;
        /* Who holds the GPU through systemd-logind and PID 1's fd store
         * (holder-session.h): logind's session files (NULL: not read) and
         * the question to systemd (NULL: not asked). */
        const char *sessions_dir;
        FdStoreUnitsFunc fdstore_units;
        /* After its holders were ended, how long the GPU may stay held
         * (logind and PID 1 let go of a session's copies after its
         * controller exited); 0: HOLDERS_RELEASE_TIMEOUT_MS. */
        unsigned holders_release_ms;
} SwitchContext;

/* The steps this switch is made of, in order; returns how many. */
size_t switch_steps(SwitchOrigin origin, SwitchTarget target, SwitchStep steps[static _SWITCH_STEP_MAX]);

int engine_run(const SwitchContext *c, SwitchError *error);
