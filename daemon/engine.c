/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "engine.h"

#include "function-power.h"
#include "gpuswitch-bus.h"

#include "holders.h"
#include "nvidia.h"
#include "services.h"
#include "switch.h"

#define HOLDERS_TERM_TIMEOUT_MS 5000
#define HOLDERS_RELEASE_TIMEOUT_MS 5000
#define HOLDERS_RELEASE_POLL_MS 100

static const char *const origin_table[_SWITCH_ORIGIN_MAX] = {
        [SWITCH_ORIGIN_BUS] = "bus",
        [SWITCH_ORIGIN_BOOT] = "boot",
        [SWITCH_ORIGIN_RECOVERY] = "recovery",
};

const char *switch_origin_to_string(SwitchOrigin o) {
        return o < _SWITCH_ORIGIN_MAX ? origin_table[o] : NULL;
}

const SwitchServices switch_services_systemd = {
        .stop = services_stop,
        .restart = services_restart,
};

/* What one switch carries from step to step. */
typedef struct Run {
        const SwitchContext *c;
        const SwitchTargetInfo *target;
        Gpu *now;                      /* the functions as read when the switch began */
        Plan *plan;
        bool noop;
        bool committed;                /* the kernel writes are done: the switch is not undone any more */
} Run;

typedef int (*StepFunc)(Run *run, SwitchError *error);

typedef struct StepInfo {
        StepFunc run;
        StepFunc undo;        /* after a later step failed; NULL: nothing to undo */
        bool cleanup;         /* runs after a failure too */
        bool changes;         /* skipped when the plan moves nothing */
        bool commits;         /* once it succeeded, the observer cannot stop the switch */
} StepInfo;

static int step_plan(Run *run, SwitchError *error) {
        const SwitchContext *c = run->c;
        int r;

        /* The state may have changed since the request came in: plan from
         * what sysfs says now. */
        r = gpu_reread(c->sysfs, c->gpu, &run->now);
        if (r < 0)
                return switch_error_set(error, SWITCH_ERROR_FAILED, SWITCH_STEP_PLAN, NULL, r,
                                        "%s: reading its functions: %s; nothing was changed", c->gpu->address,
                                        strerror(-r));
        r = plan_make(c->sysfs, run->now, c->target, &c->policy, &run->plan, error);
        if (r < 0)
                return r;
        run->noop = plan_is_noop(run->plan);
        return 0;
}

static int step_stop_services(Run *run, SwitchError *error) {
        const SwitchContext *c = run->c;
        int r = c->services->stop(c->state_dir, c->gpu->address, c->stop_services, error);

        /* Those stopped before the one that failed run again. */
        if (r < 0)
                (void) c->services->restart(c->state_dir, c->gpu->address);
        return r;
}

static int step_start_services(Run *run, SwitchError *error) {
        const SwitchContext *c = run->c;

        /* Recovery puts the GPU back where it was: the services run again
         * only if that is the host. */
        if (c->origin == SWITCH_ORIGIN_RECOVERY && gpu_derive_state(c->record->original) != GPU_STATE_HOST)
                return 0;
        (void) c->services->restart(c->state_dir, c->gpu->address);
        return 0;
}

/* Moves the holders to act on to the front, in their order: those whose
 * node blocks the unbind, or all of them; returns how many. */
static size_t holders_pick(Holder *h, size_t n, bool blocking_only) {
        size_t k = 0;

        for (size_t i = 0; i < n; i++)
                if (!blocking_only || h[i].blocks) {
                        Holder t = h[k];

                        h[k++] = h[i];
                        h[i] = t;
                }
        return k;
}

static HolderSources holder_sources(const SwitchContext *c) {
        return (HolderSources) {
                .proc_root = c->proc_root,
                .sessions_dir = c->sessions_dir,
                .fdstore_units = c->fdstore_units,
        };
}

/* The holders, with PID 1's and logind's copies of a session's devices
 * counted as its controller's (holder-session.h). */
static int scan_holders(const SwitchContext *c, const DeviceNode *nodes, size_t n_nodes, bool attribute,
                        Holder **ret, size_t *ret_n) {
        HolderSources src = holder_sources(c);
        int r;

        r = holders_scan(c->proc_root, nodes, n_nodes, ret, ret_n);
        if (r < 0 || !attribute)
                return r;
        r = holders_attribute(&src, nodes, n_nodes, ret, ret_n);
        if (r < 0) {
                holders_free(*ret, *ret_n);
                *ret = NULL;
                *ret_n = 0;
        }
        return r;
}

/* The ended holders' files close as they exit; a session's controller
 * leaves copies behind for a moment: logind drops its session devices
 * once the controller's bus connection is gone, closes its descriptor and
 * has PID 1 drop the one in its fd store.  Returns 0 once nothing holds
 * the GPU any more (nothing that blocks the unbind, with keep_holders), or
 * -EADDRINUSE with *error set. */
static int wait_released(Run *run, const DeviceNode *nodes, size_t n_nodes, SwitchError *error) {
        const SwitchContext *c = run->c;
        unsigned timeout_ms = c->holders_release_ms ?: HOLDERS_RELEASE_TIMEOUT_MS;
        _cleanup_free_ char *who = NULL;
        Holder *holders = NULL;
        size_t n = 0;
        int r;

        for (uint64_t waited = 0;; waited += HOLDERS_RELEASE_POLL_MS) {
                r = scan_holders(c, nodes, n_nodes, false, &holders, &n);
                if (r < 0)
                        return switch_error_set(error, SWITCH_ERROR_FAILED, SWITCH_STEP_CHECK_HOLDERS, NULL, r,
                                                "%s: scanning for processes holding it: %s; nothing was changed",
                                                c->gpu->address, strerror(-r));
                /* with keep_holders those that only lose the device stay */
                if (holders_pick(holders, n, c->keep_holders) == 0) {
                        holders_free(holders, n);
                        return 0;
                }
                holders_free(holders, n);
                holders = NULL;
                if (waited >= timeout_ms)
                        break;
                (void) usleep(HOLDERS_RELEASE_POLL_MS * 1000);
        }
        r = scan_holders(c, nodes, n_nodes, true, &holders, &n);
        if (r >= 0) {
                size_t k = holders_pick(holders, n, c->keep_holders);

                if (k == 0) {
                        holders_free(holders, n);
                        return 0;
                }
                who = holders_describe(holders, k);
        }
        holders_free(holders, n);
        return switch_error_set(error, SWITCH_ERROR_IN_USE, SWITCH_STEP_CHECK_HOLDERS, NULL, EADDRINUSE,
                                "%s is still in use %u ms after its holders were ended, nothing was changed:\n%s",
                                c->gpu->address, timeout_ms, strempty(who));
}

/* An unbind of a driver whose device is held open may wait for the holders
 * to let go (nvidia's remove() waits forever): never start one.  Without a
 * flag any holder refuses the switch; keep_holders leaves those that only
 * lose the device running and refuses only for the blocking ones;
 * terminate_holders ends the holders (with keep_holders, only the blocking
 * ones). */
static int step_check_holders(Run *run, SwitchError *error) {
        const SwitchContext *c = run->c;
        _cleanup_free_ DeviceNode *nodes = NULL;
        Holder *holders = NULL;
        _cleanup_free_ char *who = NULL, *kept_note = NULL;
        size_t n_nodes, n = 0, n_act;
        bool protected = false, all_lose = true;
        int r;

        r = gpu_device_nodes(c->sysfs, run->now, &nodes, &n_nodes);
        if (r < 0)
                return switch_error_set(error, SWITCH_ERROR_FAILED, SWITCH_STEP_CHECK_HOLDERS, NULL, r,
                                        "%s: finding its device nodes: %s; nothing was changed", c->gpu->address,
                                        strerror(-r));
        r = scan_holders(c, nodes, n_nodes, true, &holders, &n);
        if (r < 0)
                return switch_error_set(error, SWITCH_ERROR_FAILED, SWITCH_STEP_CHECK_HOLDERS, NULL, r,
                                        "%s: scanning for processes holding it: %s; nothing was changed",
                                        c->gpu->address, strerror(-r));
        if (n == 0)
                return 0;
        for (size_t i = 0; i < n; i++)
                all_lose = all_lose && !holders[i].blocks;
        /* the ones to end or to refuse for, first: with keep_holders the blocking ones */
        n_act = holders_pick(holders, n, c->keep_holders);
        for (size_t i = 0; i < n_act; i++)
                protected = protected || holders[i].protected;
        if (n_act < n && (n_act == 0 || (c->terminate_holders && !protected))) {
                _cleanup_free_ char *kept = holders_describe(holders + n_act, n - n_act);

                log_notice("%s: leaving its holders that only lose the device running:\n%s", c->gpu->address,
                           strempty(kept));
        }
        if (n_act == 0) {
                holders_free(holders, n);
                return 0;
        }
        who = holders_describe(holders, n_act);
        if (n_act < n && asprintf(&kept_note, " (%zu more would only lose the device)", n - n_act) < 0)
                kept_note = NULL;
        if (!c->terminate_holders || protected)
                r = switch_error_set(error, SWITCH_ERROR_IN_USE, SWITCH_STEP_CHECK_HOLDERS, NULL, EADDRINUSE,
                                     "%s is in use, nothing was changed:\n%s\n%s%s%s%s", c->gpu->address, strempty(who),
                                     protected ? "Some of them gpuswitchd never ends: see above for what to do"
                                               : "End them, or switch with --force (polkit action "
                                                 POLKIT_ACTION_TERMINATE_HOLDERS ") to have them ended",
                                     c->keep_holders ? "; their driver waits for them to let go, so even "
                                                       "--keep-holders cannot leave them running"
                                     : all_lose ? "; or switch with --keep-holders to leave them running (they "
                                                  "lose the device)"
                                                : "",
                                     strempty(kept_note), nvidia_modeset_note(c->sysfs, run->now));
        else {
                log_notice("%s: terminating its holders: %s", c->gpu->address, strempty(who));
                (void) holders_terminate(holders, n_act, HOLDERS_TERM_TIMEOUT_MS);
        }
        holders_free(holders, n);
        if (r >= 0 && c->terminate_holders)
                r = wait_released(run, nodes, n_nodes, error);
        return r;
}

/* On disk before the first kernel write: a daemon killed mid-switch finds
 * it at its next start and puts the GPU back. */
static int step_write_record(Run *run, SwitchError *error) {
        const SwitchContext *c = run->c;
        int r;

        power_control_read_all(c->sysfs, run->now);
        r = switch_record_write(c->state_dir, run->now, c->target);

        if (r < 0)
                return switch_error_set(error, SWITCH_ERROR_FAILED, SWITCH_STEP_WRITE_RECORD, NULL, r,
                                        "%s: cannot record the switch in %s: %s; nothing was changed",
                                        c->gpu->address, c->state_dir, strerror(-r));
        return 0;
}

/* switch_run() rolls its own writes back when one fails. */
static int step_rebind(Run *run, SwitchError *error) {
        return switch_run(run->c->sysfs, run->now, run->plan, error);
}

static int undo_rebind(Run *run, SwitchError *error) {
        return switch_restore(run->c->sysfs, run->now, error);
}

static int step_restore(Run *run, SwitchError *error) {
        const SwitchContext *c = run->c;

        _cleanup_(gpu_freep) Gpu *now = NULL;

        /* what the GPU shows now, for the log: the record has the drivers
         * from before, so a function it lists as bound counts as wanted */
        if (gpu_reread(c->sysfs, c->record->original, &now) < 0)
                now = NULL;
        log_warning("%s: a switch to %s was interrupted (gpuswitchd stopped mid-switch): the GPU is %s now; "
                    "putting every function back where it was", c->gpu->address,
                    switch_target_to_string(c->record->target),
                    now ? gpu_state_to_string(gpu_derive_state(now)) : "unreadable");
        return switch_restore(c->sysfs, c->record->original, error);
}

static int step_clear_record(Run *run, SwitchError *error) {
        (void) switch_record_remove(run->c->state_dir, run->c->gpu->address);
        return 0;
}

static int undo_stop_services(Run *run, SwitchError *error) {
        (void) run->c->services->restart(run->c->state_dir, run->c->gpu->address);
        return 0;
}

static const StepInfo step_table[_SWITCH_STEP_MAX] = {
        [SWITCH_STEP_PLAN] = { .run = step_plan },
        [SWITCH_STEP_STOP_SERVICES] = { .run = step_stop_services, .undo = undo_stop_services, .changes = true },
        [SWITCH_STEP_CHECK_HOLDERS] = { .run = step_check_holders, .changes = true },
        [SWITCH_STEP_WRITE_RECORD] = { .run = step_write_record, .changes = true },
        [SWITCH_STEP_REBIND] = { .run = step_rebind, .undo = undo_rebind, .changes = true, .commits = true },
        [SWITCH_STEP_RESTORE] = { .run = step_restore, .commits = true },
        [SWITCH_STEP_CLEAR_RECORD] = { .run = step_clear_record, .cleanup = true, .changes = true },
        [SWITCH_STEP_START_SERVICES] = { .run = step_start_services },
};

size_t switch_steps(SwitchOrigin origin, SwitchTarget target, SwitchStep steps[static _SWITCH_STEP_MAX]) {
        const SwitchTargetInfo *info = switch_target_info(target);
        size_t n = 0;

        if (origin == SWITCH_ORIGIN_RECOVERY) {
                steps[n++] = SWITCH_STEP_RESTORE;
                steps[n++] = SWITCH_STEP_CLEAR_RECORD;
                steps[n++] = SWITCH_STEP_START_SERVICES;
                return n;
        }
        if (!info)
                return 0;
        steps[n++] = SWITCH_STEP_PLAN;
        /* The services first: they are holders too. */
        if (info->leaves_host)
                steps[n++] = SWITCH_STEP_STOP_SERVICES;
        steps[n++] = SWITCH_STEP_CHECK_HOLDERS;
        steps[n++] = SWITCH_STEP_WRITE_RECORD;
        steps[n++] = SWITCH_STEP_REBIND;
        steps[n++] = SWITCH_STEP_CLEAR_RECORD;
        /* Back on the host (or there already): what was stopped for the
         * switch away runs again. */
        if (!info->leaves_host)
                steps[n++] = SWITCH_STEP_START_SERVICES;
        return n;
}

/* error is NULL for the cleanup steps after a failure: the first error is
 * the one reported. */
static int run_step(Run *run, SwitchStep step, SwitchError *error) {
        const SwitchObserver *o = run->c->observer;
        int r;

        if (o && o->step) {
                r = o->step(step, o->userdata);
                /* a cleanup step runs whatever the observer says, and so
                 * does what follows the kernel writes */
                if (r < 0 && !step_table[step].cleanup && !run->committed)
                        return switch_error_set(error, SWITCH_ERROR_FAILED, step, NULL, r,
                                                "%s: the switch to %s was stopped before %s: %s",
                                                run->c->gpu->address, run->target->name,
                                                switch_step_to_string(step), strerror(-r));
        }
        log_debug("%s: %s switch: %s", run->c->gpu->address, switch_origin_to_string(run->c->origin),
                  switch_step_to_string(step));
        r = step_table[step].run(run, error);
        if (r >= 0 && step_table[step].commits)
                run->committed = true;
        if (r < 0 && error && !switch_error_is_set(error))
                switch_error_set(error, SWITCH_ERROR_FAILED, step, NULL, r, "%s: %s failed: %s",
                                 run->c->gpu->address, switch_step_to_string(step), strerror(-r));
        return r;
}

int engine_run(const SwitchContext *c, SwitchError *error) {
        SwitchStep steps[_SWITCH_STEP_MAX];
        size_t n = switch_steps(c->origin, c->target, steps);
        Run run = { .c = c, .target = switch_target_info(c->target) };
        bool failed = false;
        int r = 0;

        if (n == 0 || !run.target)
                return switch_error_set(error, SWITCH_ERROR_INVALID, SWITCH_STEP_PLAN, NULL, EINVAL,
                                        "%s: no such switch target (%d)", c->gpu->address, (int) c->target);
        if (c->origin == SWITCH_ORIGIN_RECOVERY && !c->record)
                return switch_error_set(error, SWITCH_ERROR_INVALID, SWITCH_STEP_RESTORE, NULL, EINVAL,
                                        "%s: recovery without a switch record", c->gpu->address);

        for (size_t i = 0; i < n; i++) {
                const StepInfo *info = &step_table[steps[i]];
                int q;

                if ((run.noop && info->changes) || (failed && !info->cleanup))
                        continue;
                q = run_step(&run, steps[i], failed ? NULL : error);
                if (q >= 0 || failed)
                        continue;
                failed = true;
                r = q;
                /* Undo what the steps before it did, last first. */
                for (size_t k = i; k-- > 0;) {
                        const StepInfo *before = &step_table[steps[k]];

                        if (before->undo && !(run.noop && before->changes))
                                (void) before->undo(&run, NULL);
                }
        }
        gpu_free(run.now);
        plan_free(run.plan);
        return r;
}
