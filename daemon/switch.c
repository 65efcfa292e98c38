/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "switch.h"

#include <stdio.h>
#include <stdlib.h>

#include "function-health.h"
#include "function-power.h"
#include "kernel-log.h"
#include "nvidia-unbind-lock.h"
#include "nvidia.h"
#include "util.h"

/* What a function looked like before we touched it. */
typedef struct Saved {
        const PciFunction *function;
        bool touched;
} Saved;

static int read_driver_now(const Sysfs *s, const char *function, char **ret) {
        int r = sysfs_read_driver(s, function, ret);
        if (r < 0)
                log_error_errno(r, "%s: reading the driver link", function);
        return r;
}

/* After an unbind the driver link must be gone: a driver whose remove()
 * failed leaves the function bound, and a probe then changes nothing. */
static int unbind_verified(Sysfs *s, const char *fn, const char *driver) {
        _cleanup_free_ char *now = NULL;
        int r;

        r = sysfs_unbind(s, fn, driver);
        if (r < 0)
                return log_error_errno(r, "%s: unbinding from %s", fn, driver);
        r = read_driver_now(s, fn, &now);
        if (r < 0)
                return r;
        if (now)
                return log_error_errno(EBUSY, "%s: still on %s after the unbind", fn, now);
        return 0;
}

/* drivers_probe, then what bound (NULL: nothing did). */
static int probe_and_read(Sysfs *s, const char *fn, char **now, const char **failed_step) {
        int r;

        *failed_step = "drivers_probe";
        r = sysfs_drivers_probe(s, fn);
        if (r < 0)
                return log_error_errno(r, "%s: drivers_probe", fn);
        *failed_step = "verify";
        free(*now);
        *now = NULL;
        return read_driver_now(s, fn, now);
}

/* For the plan's target driver: loaded, so that drivers_probe finds it.
 * Writing driver_override loads nothing by itself. */
static int ensure_driver(Sysfs *s, const char *function, const char *driver, const char *modalias) {
        int r;

        if (sysfs_have_driver(s, driver))
                return 0;
        r = sysfs_load_module(s, driver);
        if (r < 0 && modalias)
                r = sysfs_load_module(s, modalias);
        if (r < 0)
                return log_error_errno(r, "%s: loading the module for %s", function, driver);
        if (!sysfs_have_driver(s, driver))
                return log_error_errno(ENOENT, "%s: module loaded, but no PCI driver %s", function, driver);
        log_info("%s: loaded %s", function, driver);
        return 0;
}

/* Onto one driver for every function (vfio-pci): driver_override makes
 * the probe bind that driver and no other. */
static int move_to_driver(Sysfs *s, const PlanStep *st, const char **failed_step) {
        const char *fn = st->function->address;
        _cleanup_free_ char *now = NULL;
        int r;

        *failed_step = "driver_override";
        r = sysfs_set_driver_override(s, fn, st->to);
        if (r < 0)
                return log_error_errno(r, "%s: writing driver_override=%s", fn, st->to);

        r = read_driver_now(s, fn, &now);
        if (r < 0)
                return r;
        if (now) {
                *failed_step = "unbind";
                r = unbind_verified(s, fn, now);
                if (r < 0)
                        return r;
        }

        r = probe_and_read(s, fn, &now, failed_step);
        if (r < 0)
                return r;
        if (!streq_ptr(now, st->to))
                return log_error_errno(EIO, "%s: after drivers_probe the function is on %s, not %s",
                                       fn, now ? now : "no driver", st->to);
        log_info("%s: %s -> %s", fn, st->from ? st->from : "(unbound)", st->to);
        return 0;
}

/* detail: a message of the health check's, when that is what failed. */
static int move_to_host(Sysfs *s, const PlanStep *st, KernelLog *log, const char **failed_step, char **detail) {
        const PciFunction *f = st->function;
        const char *fn = f->address;
        _cleanup_free_ char *now = NULL;
        int r;

        if (st->to) {
                *failed_step = "load driver";
                r = ensure_driver(s, fn, st->to, f->modalias);
                if (r < 0)
                        return r;
        }

        /* Cleared before the unbind: with vfio-pci still in driver_override
         * the probe below could bind nothing else. */
        *failed_step = "driver_override";
        r = sysfs_set_driver_override(s, fn, NULL);
        if (r < 0)
                return log_error_errno(r, "%s: clearing driver_override", fn);

        r = read_driver_now(s, fn, &now);
        if (r < 0)
                return r;
        if (streq_ptr(now, VFIO_PCI_DRIVER)) {
                *failed_step = "unbind";
                r = unbind_verified(s, fn, now);
                if (r < 0)
                        return r;
        } else if (now)
                return 0;      /* on a host driver already; only the override needed clearing */

        r = probe_and_read(s, fn, &now, failed_step);
        if (r < 0)
                return r;
        /* Another driver than the default may match first (nouveau before
         * nvidia, say): bind the default one by name. */
        if (st->to && now && !streq(now, st->to) && !streq(now, VFIO_PCI_DRIVER)) {
                log_notice("%s: %s bound instead of %s, rebinding", fn, now, st->to);
                *failed_step = "unbind";
                r = unbind_verified(s, fn, now);
                if (r < 0)
                        return r;
                *failed_step = "bind";
                r = sysfs_bind(s, fn, st->to);
                if (r < 0)
                        log_warning_errno(r, "%s: binding to %s", fn, st->to);
        }
        if (st->to) {
                /* bound, in D0, and up: else one reset and one more probe */
                *failed_step = "health check";
                r = function_health_ensure(s, fn, st->to, log, detail);
                if (r < 0)
                        return r;
                log_info("%s: vfio-pci -> %s", fn, st->to);
                return 0;
        }
        *failed_step = "verify";
        if (streq_ptr(now, VFIO_PCI_DRIVER))
                return log_error_errno(EIO, "%s: after drivers_probe the function is still on vfio-pci", fn);
        log_info("%s: vfio-pci -> %s", fn, now ? now : "(unbound)");
        return 0;
}

/* Puts one function back where it was: its driver_override, then its
 * driver.  Returns 0 when the driver link shows the original driver. */
static int restore_function(Sysfs *s, const PciFunction *f) {
        const char *fn = f->address;
        _cleanup_free_ char *now = NULL;
        int r;

        r = sysfs_set_driver_override(s, fn, f->driver_override);
        if (r < 0)
                log_error_errno(r, "%s: rollback: restoring driver_override", fn);

        r = read_driver_now(s, fn, &now);
        if (r < 0)
                return r;
        if (streq_ptr(now, f->driver))
                return 0;
        if (now) {
                r = sysfs_unbind(s, fn, now);
                if (r < 0)
                        return log_error_errno(r, "%s: rollback: unbinding from %s", fn, now);
        }
        if (f->driver) {
                r = sysfs_drivers_probe(s, fn);
                if (r < 0)
                        log_error_errno(r, "%s: rollback: drivers_probe", fn);
                free(now);
                now = NULL;
                r = read_driver_now(s, fn, &now);
                if (r < 0)
                        return r;
                if (!now) {
                        r = sysfs_bind(s, fn, f->driver);
                        if (r < 0)
                                log_error_errno(r, "%s: rollback: binding to %s", fn, f->driver);
                        free(now);
                        now = NULL;
                        r = read_driver_now(s, fn, &now);
                        if (r < 0)
                                return r;
                }
        }
        if (!streq_ptr(now, f->driver))
                return log_error_errno(EIO, "%s: rollback: on %s, expected %s", fn,
                                       now ? now : "no driver", f->driver ? f->driver : "no driver");
        log_info("%s: rolled back to %s", fn, f->driver ? f->driver : "(unbound)");
        return 0;
}

/* Puts every touched function back, last first; *left lists those that
 * did not come back. */
static int restore_functions(Sysfs *s, const Saved *saved, size_t n, char **left, size_t *n_left) {
        size_t len = 0;

        *n_left = 0;
        for (size_t i = n; i-- > 0;) {
                const PciFunction *f = saved[i].function;
                char *nl;

                if (!saved[i].touched || restore_function(s, f) >= 0)
                        continue;
                nl = realloc(*left, len + strlen(f->address) + 3);
                if (!nl)
                        return -ENOMEM;
                *left = nl;
                len += (size_t) sprintf(*left + len, "%s%s", *n_left ? ", " : "", f->address);
                (*n_left)++;
        }
        return 0;
}

/* Holds awake the functions that saved[] marks as touched.  On failure,
 * error says nothing was changed. */
static int hold_awake(Sysfs *s, const char *gpu, const Saved *saved, size_t n, PowerHold **ret,
                      SwitchStep step, SwitchError *error) {
        PowerHold *h = NULL;
        int r;

        r = power_hold_new(&h);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (!saved[i].touched)
                        continue;
                r = power_hold(h, s, saved[i].function->address);
                if (r < 0) {
                        power_hold_release(h, s);
                        return switch_error_set(error, SWITCH_ERROR_FAILED, step, saved[i].function->address, r,
                                                "%s: cannot keep %s awake (power/control): %s; nothing was changed",
                                                gpu, saved[i].function->address, strerror(-r));
                }
        }
        *ret = h;
        return 0;
}

int switch_restore(Sysfs *s, const Gpu *original, SwitchError *error) {
        _cleanup_free_ Saved *saved = calloc(original->n_functions, sizeof *saved);
        _cleanup_free_ char *left = NULL;
        PowerHold *power = NULL;
        size_t n_left;
        int r;

        bool to_vfio = gpu_derive_state(original) == GPU_STATE_VFIO;

        if (!saved)
                return -ENOMEM;
        /* restore_functions() goes last to first: in the order a switch to
         * that state takes (plan.c), function 0 first back to the host, last
         * back to vfio-pci, the companions on the other side of it. */
        for (size_t i = 0; i < original->n_functions; i++) {
                size_t k = to_vfio ? i : original->n_functions - 1 - i;
                saved[i] = (Saved) { .function = &original->functions[k], .touched = true };
        }
        r = hold_awake(s, original->address, saved, original->n_functions, &power, SWITCH_STEP_RESTORE, error);
        if (r < 0)
                return r;
        r = restore_functions(s, saved, original->n_functions, &left, &n_left);
        power_hold_release(power, s);
        /* the hold's own release gives back what it found, which after a
         * switch that was killed is that switch's "on" */
        power_control_restore(s, original);
        if (r < 0)
                return r;
        if (n_left > 0)
                return switch_error_set(error, SWITCH_ERROR_FAILED, SWITCH_STEP_RESTORE, NULL, EIO,
                                        "%s: %s not back on the driver it had before the switch",
                                        original->address, left);
        return 0;
}

/* A function whose driver the switch unbinds.  Whether that driver has an
 * unbindLock is for its /proc entry to say: nvidia's exists while nvidia
 * drives the function (the test VM's stand-in has one too). */
static bool unbinds_driver(const PlanStep *st) {
        return st->action == PLAN_MOVE && st->from;
}

static void release_unbind_locks(Sysfs *s, const Plan *p) {
        for (size_t i = 0; i < p->n_steps; i++)
                if (unbinds_driver(&p->steps[i]))
                        nvidia_unbind_lock_release(s, p->steps[i].function->address);
}

/* NVIDIA's unbindLock for each function that leaves nvidia (every one whose
 * driver has the file), before any function is unbound: a client no process scan sees (nvidia-drm's console
 * with modeset=1, nvidia-uvm, persistence mode) would make its unbind wait
 * forever, with the functions before it moved already. */
static int take_unbind_locks(Sysfs *s, const Gpu *g, const Plan *p, SwitchError *error) {
        for (size_t i = 0; i < p->n_steps; i++) {
                const char *fn = p->steps[i].function->address;
                int r;

                if (!unbinds_driver(&p->steps[i]))
                        continue;
                r = nvidia_unbind_lock_take(s, fn);
                if (r >= 0 || r == -ENOENT)
                        continue;
                release_unbind_locks(s, p);
                if (r == -EBUSY)
                        return switch_error_set(error, SWITCH_ERROR_IN_USE, SWITCH_STEP_REBIND, fn, EBUSY,
                                                "%s: NVIDIA's unbindLock for %s could not be taken: a client of the "
                                                "driver still has the GPU open, one no process shows: nvidia_drm "
                                                "with modeset=1 (the console or a compositor on this GPU), "
                                                "nvidia-uvm (unloaded with 'modprobe -r nvidia_uvm' once no CUDA "
                                                "program runs) or persistence mode ('nvidia-smi -pm 0', or stop "
                                                "nvidia-persistenced); nothing was changed%s",
                                                g->address, fn, nvidia_modeset_note(s, g));
                return switch_error_set(error, SWITCH_ERROR_FAILED, SWITCH_STEP_REBIND, fn, r,
                                        "%s: taking NVIDIA's unbindLock for %s: %s; nothing was changed", g->address,
                                        fn, strerror(-r));
        }
        return 0;
}

int switch_run(Sysfs *s, const Gpu *g, const Plan *p, SwitchError *error) {
        const SwitchTargetInfo *target = switch_target_info(p->target);
        _cleanup_free_ Saved *saved = NULL;
        _cleanup_free_ char *left = NULL, *detail = NULL;
        _cleanup_(kernel_log_freep) KernelLog *log = NULL;
        PowerHold *power = NULL;
        const char *failed_step = NULL;
        size_t failed = SIZE_MAX, n_left;
        int r = 0, r_restore;

        if (plan_is_noop(p))
                return 0;

        if (target->driver) {
                r = ensure_driver(s, g->address, target->driver, NULL);
                if (r < 0)
                        return switch_error_set(error, SWITCH_ERROR_FAILED, SWITCH_STEP_REBIND, NULL, r,
                                                "cannot load %s: %s; nothing was changed", target->driver,
                                                strerror(-r));
        }

        saved = calloc(p->n_steps, sizeof *saved);
        if (!saved)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_steps; i++)
                saved[i] = (Saved) { .function = p->steps[i].function, .touched = p->steps[i].action == PLAN_MOVE };

        /* Awake until the end, the rollback included. */
        r = hold_awake(s, g->address, saved, p->n_steps, &power, SWITCH_STEP_REBIND, error);
        if (r < 0)
                return r;
        r = kernel_log_begin(s, &log);
        if (r >= 0)
                r = take_unbind_locks(s, g, p, error);
        if (r < 0) {
                power_hold_release(power, s);
                return r;
        }

        for (size_t i = 0; i < p->n_steps; i++) {
                const PlanStep *st = &p->steps[i];

                if (!saved[i].touched)
                        continue;
                r = target->driver ? move_to_driver(s, st, &failed_step)
                                   : move_to_host(s, st, log, &failed_step, &detail);
                if (r < 0) {
                        failed = i;
                        break;
                }
        }
        if (failed == SIZE_MAX) {
                power_hold_release(power, s);
                return 0;
        }

        /* Roll back in reverse order, every function we touched. */
        release_unbind_locks(s, p);
        power_hold_renew(power, s);
        r_restore = restore_functions(s, saved, failed + 1, &left, &n_left);
        power_hold_release(power, s);
        if (r_restore < 0)
                return r_restore;

        if (n_left == 0)
                return switch_error_set(error, SWITCH_ERROR_FAILED, SWITCH_STEP_REBIND,
                                        p->steps[failed].function->address, r,
                                        "switching %s to %s failed at %s (%s): %s; rolled back, every function "
                                        "is on the driver it had",
                                        g->address, target->name, p->steps[failed].function->address,
                                        failed_step, detail ? detail : strerror(-r));
        return switch_error_set(error, SWITCH_ERROR_FAILED, SWITCH_STEP_REBIND, p->steps[failed].function->address,
                                r,
                                "switching %s to %s failed at %s (%s): %s; rollback incomplete, %s not "
                                "back on the original driver: the GPU is mixed",
                                g->address, target->name, p->steps[failed].function->address, failed_step,
                                detail ? detail : strerror(-r), left);
}
