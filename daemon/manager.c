/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "manager.h"

#include <assert.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <glib.h>

#include "config-write.h"
#include "errors.h"
#include "gpu-rules.h"
#include "holders-calls.h"
#include "host-driver.h"
#include "instance-lock.h"
#include "pci-name.h"
#include "switch-record.h"
#include "util.h"
#include "vm-watch.h"

static int managed_gpu_apply(ManagedGpu *g, Gpu *now_owned);

static void managed_gpu_free(ManagedGpu *g) {
        if (!g)
                return;
        /* every user of it held a reference: none is under way */
        assert(!g->job && !g->refreshing);
        job_free(g->job);
        vm_watch_free(g->vm_watch);
        holders_cache_free(g->holders_cache);
        gpu_free(g->state);
        free(g->object_path);
        free(g->name);
        free(g->step);
        g_strfreev(g->stop_services);
        free(g);
}

ManagedGpu *managed_gpu_ref(ManagedGpu *g) {
        g->n_ref++;
        return g;
}

/* The one place a ManagedGpu is freed. */
void managed_gpu_unref(ManagedGpu *g) {
        Manager *m;

        if (!g || --g->n_ref > 0)
                return;
        m = g->manager;
        for (size_t i = 0; i < m->n_gone; i++)
                if (m->gone[i] == g) {
                        m->gone[i] = m->gone[--m->n_gone];
                        break;
                }
        managed_gpu_free(g);
}

void managed_gpu_emit_changed(ManagedGpu *g, const char *property) {
        if (g->manager->bus && !g->gone)
                (void) sd_bus_emit_properties_changed(g->manager->bus, g->object_path, GPUSWITCH_GPU_INTERFACE,
                                                      property, NULL);
}

int manager_new(Manager **ret) {
        _cleanup_(manager_freep) Manager *m = calloc(1, sizeof *m);
        int r;

        if (!m)
                return -ENOMEM;
        m->lock_fd = -1;
        sysfs_init(&m->sysfs);
        m->config_path = strdup(GPUSWITCH_CONFIG_FILE);
        if (!m->config_path)
                return -ENOMEM;
        r = sd_event_default(&m->event);
        if (r < 0)
                return r;
        r = worker_pool_new(m->event, &m->workers);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

static void stop_signals(sigset_t *mask) {
        sigemptyset(mask);
        sigaddset(mask, SIGTERM);
        sigaddset(mask, SIGINT);
}

void manager_block_stop_signals(void) {
        sigset_t mask;

        stop_signals(&mask);
        sigprocmask(SIG_BLOCK, &mask, NULL);
}

bool manager_stop_requested(void) {
        sigset_t pending;

        return sigpending(&pending) == 0 && (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
}

int manager_exit_on_signals(Manager *m) {
        int r;

        manager_block_stop_signals();
        r = sd_event_add_signal(m->event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT, NULL, NULL);
        return r;
}

void manager_free(Manager *m) {
        if (!m)
                return;
        m->stopping = true;
        sd_bus_slot_unref(m->manager_slot);
        sd_bus_slot_unref(m->gpu_slot);
        sd_bus_slot_unref(m->gpu_enumerator_slot);
        sd_bus_slot_unref(m->config_error_filter);
        /* the checks under way answered before their bus goes */
        polkit_queue_free(m->polkit);
        /* after the checks (they answer their calls), before the scans
         * are waited for (they find no call of ours) */
        holders_calls_free(m->holders_calls);
        sd_event_source_disable_unref(m->config_watch);
        sd_event_source_disable_unref(m->uevent_source);
        sd_event_source_disable_unref(m->uevent_refresh);
        /* A switch under way is waited for: its thread writes to sysfs and
         * must not be cut off halfway. */
        worker_join_all(m->workers);
        for (size_t i = 0; i < m->n_gpus; i++)
                managed_gpu_unref(m->gpus[i]);
        free(m->gpus);
        /* their switches and reads were delivered above, their polkit
         * checks answered: nothing is left to let go of them */
        while (m->n_gone > 0)
                managed_gpu_free(m->gone[--m->n_gone]);
        free(m->gone);
        free(m->appearing);
        sd_bus_slot_unref(m->object_manager_slot);
        worker_pool_free(m->workers);
        sd_bus_flush_close_unref(m->bus);
        sd_event_unref(m->event);
        config_free(m->config);
        free(m->config_path);
        free(m->config_error);
        closep(&m->lock_fd);
        free(m);
}

/* Each function's host driver is decided once, when the daemon first sees
 * it: later the function may be on vfio-pci and no longer tell. */
static int resolve_host_drivers(Manager *m, Gpu *state, const GpuConfig *gc) {
        for (size_t i = 0; i < state->n_functions; i++) {
                PciFunction *f = &state->functions[i];
                int r;

                if (f->host_driver)
                        continue;
                r = host_driver_resolve(&m->sysfs, f, gc ? gc->host_driver : NULL, &f->host_driver);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Gpus changed: after a GPU was added or removed. */
static void emit_gpus_changed(Manager *m) {
        if (m->bus)
                (void) sd_bus_emit_properties_changed(m->bus, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE,
                                                      "Gpus", NULL);
}

/* The companions not present in now (that were in before, when given):
 * at start, and when one is removed while the daemon runs. */
static void warn_missing_companions(const char *address, const Gpu *before, const Gpu *now) {
        for (size_t i = 0; i < now->n_companions; i++) {
                char c[PCI_FUNCTION_STRLEN];

                pci_address_format_function(&now->companions[i], c);
                if (!gpu_find_function(now, c) && (!before || gpu_find_function(before, c)))
                        log_warning("%s: companion %s (Companions=) is not present: the GPU moves without it",
                                    address, c);
        }
}

int manager_read_gpu(const Manager *m, const PciAddress *slot, Gpu **ret) {
        const GpuConfig *gc = config_find_gpu(m->config, slot);

        return gpu_read(&m->sysfs, slot, gc ? gc->companions : NULL, gc ? gc->n_companions : 0, ret);
}

int manager_add_gpu(Manager *m, const PciAddress *slot) {
        Gpu *state = NULL;
        char address[PCI_SLOT_STRLEN];
        int r;

        pci_address_format_slot(slot, address);
        r = manager_read_gpu(m, slot, &state);
        if (r == -ENODEV) {
                log_warning("%s: configured GPU not present, managed when it appears", address);
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "%s: reading its functions", address);
        return manager_publish_gpu(m, slot, state);
}

int manager_publish_gpu(Manager *m, const PciAddress *slot, Gpu *state_owned) {
        _cleanup_(gpu_freep) Gpu *state = state_owned;
        const GpuConfig *gc = config_find_gpu(m->config, slot);
        ManagedGpu *g, **n;
        char address[PCI_SLOT_STRLEN];
        int r;

        pci_address_format_slot(slot, address);
        warn_missing_companions(address, NULL, state);
        r = resolve_host_drivers(m, state, gc);
        if (r < 0)
                return r;

        n = realloc(m->gpus, (m->n_gpus + 1) * sizeof *n);
        if (!n)
                return -ENOMEM;
        m->gpus = n;
        g = calloc(1, sizeof *g);
        if (!g)
                return -ENOMEM;
        m->gpus[m->n_gpus++] = g;

        g->n_ref = 1;             /* m->gpus' */
        g->manager = m;
        g->slot = *slot;
        memcpy(g->address, address, sizeof g->address);
        g->default_mode = gc ? gc->default_mode : DEFAULT_MODE_KEEP;
        g->allow_boot_vga = gc && gc->allow_boot_vga;
        g->boot_vga = gpu_is_boot_vga(state);
        g->announced = gpu_derive_state(state);
        g->name = gpu_name(state);
        /* "/org/gpuswitch1/gpu/0000_0a_00": ':' is not allowed in a path */
        if (asprintf(&g->object_path, GPUSWITCH_GPU_PATH_PREFIX "/%04x_%02x_%02x", slot->domain, slot->bus,
                     slot->slot) < 0 || !g->name)
                return -ENOMEM;
        g->state = TAKE_PTR(state);
        g->stop_services = gpu_stop_services(g->state, gc);
        r = vm_watch_new(g, &g->vm_watch);
        if (r < 0)
                return r;
        vm_watch_state_changed(g->vm_watch);

        log_info("%s: managing %s, %zu functions, mode %s", g->address, g->name, g->state->n_functions,
                 gpu_state_to_string(g->announced));
        for (size_t i = 0; i < g->state->n_functions; i++) {
                const PciFunction *f = &g->state->functions[i];
                log_info("%s: class 0x%06x, driver %s, host driver %s, IOMMU group %d", f->address, f->class,
                         f->driver ? f->driver : "(none)", f->host_driver ? f->host_driver : "(none)",
                         f->iommu_group);
        }
        /* after it is found by its path: the signal lists its interfaces */
        if (m->bus) {
                r = sd_bus_emit_object_added(m->bus, g->object_path);
                if (r < 0)
                        log_warning_errno(r, "%s: announcing its object", g->address);
        }
        emit_gpus_changed(m);
        return 1;
}

void manager_remove_gpu(Manager *m, ManagedGpu *g) {
        size_t i;
        int r;

        for (i = 0; i < m->n_gpus && m->gpus[i] != g; i++)
                ;
        if (i == m->n_gpus)
                return;
        log_notice("%s: gone from the PCI bus, no longer managed%s", g->address,
                   g->job ? "; the switch under way fails" : "");
        /* while it is still found by its path: the signal lists its interfaces */
        if (m->bus) {
                r = sd_bus_emit_object_removed(m->bus, g->object_path);
                if (r < 0)
                        log_warning_errno(r, "%s: announcing its removal", g->address);
        }
        memmove(m->gpus + i, m->gpus + i + 1, (m->n_gpus - i - 1) * sizeof *m->gpus);
        m->n_gpus--;
        g->gone = true;
        emit_gpus_changed(m);

        /* what only serves its properties and ListHolders ends now */
        if (m->holders_calls && g->holders_cache)
                holders_calls_cancel_cache(m->holders_calls, g->holders_cache, GS_ERROR_NO_SUCH_GPU,
                                           "the GPU left the PCI bus");
        holders_cache_free(TAKE_PTR(g->holders_cache));
        vm_watch_free(TAKE_PTR(g->vm_watch));

        if (g->n_ref > 1) {
                ManagedGpu **n = realloc(m->gone, (m->n_gone + 1) * sizeof *n);

                /* without the entry its slot only waits less for its switch */
                if (n) {
                        m->gone = n;
                        m->gone[m->n_gone++] = g;
                }
        }
        managed_gpu_unref(g);
}

int manager_discover(Manager *m, char **config_error) {
        _cleanup_free_ PciAddress *slots = NULL;
        size_t n = 0;
        int r;

        r = gpus_to_manage(&m->sysfs, m->config, &slots, &n);
        if (r < 0)
                return r;
        r = gpus_check_companions(&m->sysfs, m->config, slots, n, config_error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                r = manager_add_gpu(m, &slots[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A switch as the daemon makes them: the engine on the real sysfs and
 * /proc, systemd's services, the records in the state folder. */
static SwitchContext switch_context(Manager *m, SwitchOrigin origin, SwitchTarget target, const Gpu *gpu) {
        return (SwitchContext) {
                .origin = origin,
                .target = target,
                .gpu = gpu,
                .sysfs = &m->sysfs,
                .state_dir = switch_record_dir(),
                .proc_root = "/proc",
                .services = &switch_services_systemd,
                .sessions_dir = LOGIND_SESSIONS_DIR,
                .fdstore_units = fdstore_units_systemd,
        };
}

/* ...of a managed GPU: its policy and the services that hold it. */
static SwitchContext managed_gpu_switch_context(ManagedGpu *g, SwitchOrigin origin, SwitchTarget target) {
        SwitchContext ctx = switch_context(g->manager, origin, target, g->state);

        ctx.policy = (PlanPolicy) { .allow_boot_vga = g->allow_boot_vga };
        ctx.stop_services = g->stop_services;
        return ctx;
}

/* The start-up switches stop before their kernel writes when the daemon
 * is told to stop meanwhile; once those began, they finish. */
static int startup_switch_step(SwitchStep step, void *userdata) {
        if (step < SWITCH_STEP_REBIND && manager_stop_requested())
                return -ECANCELED;
        return 0;
}

static const SwitchObserver startup_observer = { .step = startup_switch_step };

static int recover_gpu(Manager *m, const char *address) {
        _cleanup_(switch_record_freep) SwitchRecord *rec = NULL;
        _cleanup_(switch_error_done) SwitchError error = SWITCH_ERROR_INIT;
        const char *dir = switch_record_dir();
        SwitchContext ctx;
        int r;

        r = switch_record_read(dir, address, &rec);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                /* switch_record_read() said why; a record we cannot read
                 * cannot put anything back, and would stop every start */
                return switch_record_remove(dir, address);

        ctx = switch_context(m, SWITCH_ORIGIN_RECOVERY, rec->target, rec->original);
        ctx.record = rec;
        ctx.observer = &startup_observer;
        r = engine_run(&ctx, &error);
        if (r < 0)
                log_error("%s: putting the GPU back after the interrupted switch: %s", address,
                          strempty(error.message));
        else
                log_notice("%s: back as it was before the interrupted switch", address);
        return r;
}

int manager_recover(Manager *m) {
        g_auto(GStrv) addresses = NULL;
        int r;

        r = switch_record_list(switch_record_dir(), &addresses);
        if (r < 0)
                return r;
        for (char **a = addresses; *a && !manager_stop_requested(); a++)
                (void) recover_gpu(m, *a);
        return 0;
}

/* DefaultMode= of one GPU, as root at boot, through the same steps as a
 * switch asked for over the bus: the services that hold it stopped, the
 * holder check (nothing else is ended unasked), the record. */
static int apply_default_mode(ManagedGpu *g) {
        _cleanup_(switch_error_done) SwitchError error = SWITCH_ERROR_INIT;
        SwitchContext ctx;
        SwitchTarget target;
        int r;

        if (!default_mode_target(g->default_mode, &target))
                return 0;
        ctx = managed_gpu_switch_context(g, SWITCH_ORIGIN_BOOT, target);
        ctx.observer = &startup_observer;
        log_info("%s: applying DefaultMode=%s", g->address, default_mode_to_string(g->default_mode));
        r = engine_run(&ctx, &error);
        (void) managed_gpu_read(g);
        if (r < 0)
                log_error("%s: DefaultMode=%s not applied: %s", g->address, default_mode_to_string(g->default_mode),
                          strempty(error.message));
        else
                log_info("%s: DefaultMode=%s applied, the GPU is %s", g->address,
                         default_mode_to_string(g->default_mode), gpu_state_to_string(managed_gpu_state(g)));
        return r;
}

/* /run is empty at each boot: the marker says DefaultMode= had its chance
 * in this one, so a daemon started again later (bus activation, a restart,
 * one stopped in the middle of it) leaves the GPU where it is. */
static int boot_marker_take(void) {
        _cleanup_free_ char *path = NULL;
        int fd;

        if (asprintf(&path, "%s/default-mode-applied", runtime_dir()) < 0)
                return -ENOMEM;
        (void) mkdir(runtime_dir(), 0755);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return errno == EEXIST ? 0 : log_warning_errno(errno, "creating %s", path);
        close(fd);
        return 1;
}

int manager_apply_default_modes(Manager *m) {
        /* Taken before the switches: one interrupted is recovered at the
         * next start, not tried again. */
        if (boot_marker_take() <= 0)
                return 0;
        for (size_t i = 0; i < m->n_gpus && !manager_stop_requested(); i++)
                (void) apply_default_mode(m->gpus[i]);
        return 0;
}

ManagedGpu *manager_find_gpu(Manager *m, const char *arg, sd_bus_error *error) {
        PciAddress a;

        if (isempty(arg)) {
                if (m->n_gpus == 1)
                        return m->gpus[0];
                if (m->n_gpus == 0)
                        sd_bus_error_set(error, GS_ERROR_NO_SUCH_GPU, "no GPU is managed by gpuswitchd");
                else {
                        g_autoptr(GString) list = g_string_new(NULL);

                        for (size_t i = 0; i < m->n_gpus; i++)
                                g_string_append_printf(list, "\n  %s  %-9s %s", m->gpus[i]->address,
                                                       gpu_state_to_string(managed_gpu_state(m->gpus[i])),
                                                       m->gpus[i]->name);
                        sd_bus_error_setf(error, GS_ERROR_NO_SUCH_GPU,
                                          "%zu GPUs are managed: name one by its address:%s", m->n_gpus, list->str);
                }
                return NULL;
        }
        if (pci_address_parse(arg, &a) < 0) {
                sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                  "'%.*s' is not a PCI address such as 0000:0a:00", gs_quote_len(arg, 64), arg);
                return NULL;
        }
        for (size_t i = 0; i < m->n_gpus; i++)
                if (gpu_has_address(m->gpus[i]->state, &a))
                        return m->gpus[i];
        sd_bus_error_setf(error, GS_ERROR_NO_SUCH_GPU, "no managed GPU at %.64s", arg);
        return NULL;
}

ManagedGpu *manager_find_gpu_by_path(Manager *m, const char *path) {
        for (size_t i = 0; i < m->n_gpus; i++)
                if (streq(m->gpus[i]->object_path, path))
                        return m->gpus[i];
        return NULL;
}

GpuState managed_gpu_state(const ManagedGpu *g) {
        return g->job ? GPU_STATE_SWITCHING : gpu_derive_state(g->state);
}

static void announce_mode(ManagedGpu *g) {
        GpuState now = managed_gpu_state(g);

        if (g->announced == now)
                return;
        g->announced = now;
        managed_gpu_emit_changed(g, "Mode");
}

static void set_step(ManagedGpu *g, const char *step) {
        if (streq_ptr(g->step, step) || (isempty(g->step) && isempty(step)))
                return;
        free(g->step);
        g->step = step ? strdup(step) : NULL;
        managed_gpu_emit_changed(g, "Step");
}

static void on_job_progress(const char *step, void *userdata) {
        set_step(userdata, step);
}

static void on_job_stuck(const char *step, unsigned timeout_sec, void *userdata) {
        ManagedGpu *g = userdata;

        log_error("%s: %s has not finished after %u s", g->address, step, timeout_sec);
        if (g->owner.stuck)
                g->owner.stuck(g, step, timeout_sec, g->owner.userdata);
}

/* The switch of a GPU that left the PCI bus meanwhile: whatever its
 * writes said (ENODEV, ENOENT) and its rollback could not do, the caller is
 * told why, and at which step.  Nothing is left to roll back: a device that
 * comes back is a new one, without override, on its default drivers. */
static void gone_error(ManagedGpu *g, SwitchTarget target, const SwitchError *error, SwitchError *ret) {
        const char *step = error && error->step >= 0 ? switch_step_to_string(error->step) : "its end";
        const char *fn = error && error->function[0] ? error->function : NULL;
        int errnum = error && error->errnum > 0 ? error->errnum : ENODEV;

        (void) switch_error_set(ret, SWITCH_ERROR_FAILED, error ? error->step : _SWITCH_STEP_INVALID, fn, errnum,
                                "%s: the GPU left the PCI bus during the switch to %s, at its step %s%s%s%s: %s",
                                g->address, switch_target_to_string(target), step, fn ? " (" : "", strempty(fn),
                                fn ? ")" : "", strerror(errnum));
}

static void on_job_done(const SwitchError *error, void *userdata) {
        _cleanup_(switch_error_done) SwitchError gone = SWITCH_ERROR_INIT;
        ManagedGpu *g = userdata;
        SwitchOwner owner = g->owner;
        /* error lives in the job: freed last */
        _cleanup_(job_freep) Job *job = TAKE_PTR(g->job);
        SwitchTarget target = job_target(job);
        Gpu *after = job_steal_state(job);

        g->owner = (SwitchOwner) {};
        /* its writes may fail before the removal's uevents are read */
        if (error && !g->gone && !manager_slot_present(g->manager, &g->slot))
                manager_remove_gpu(g->manager, g);
        if (g->gone) {
                /* its record was cleared by the switch's cleanup: the device
                 * that comes back is a new one, with no override to undo */
                gpu_free(after);
                gone_error(g, target, error, &gone);
                error = &gone;
        } else {
                if (after)
                        (void) managed_gpu_apply(g, after);
                /* a whole read asked for meanwhile (a function added, say), or
                 * the switch's own read failed */
                if (!after || g->reread_whole)
                        managed_gpu_refresh(g, true);
        }
        if (error)
                log_error("%s: switch to %s failed: %s", g->address, switch_target_to_string(target),
                          strempty(error->message));
        else
                log_info("%s: now %s", g->address, gpu_state_to_string(managed_gpu_state(g)));
        if (owner.done)
                owner.done(g, error, owner.userdata);
        /* its slot waited for this switch's end to be managed again */
        if (g->gone)
                (void) manager_hotplug(g->manager);
        managed_gpu_unref(g);
}

static const JobCallbacks job_callbacks = {
        .progress = on_job_progress,
        .stuck = on_job_stuck,
        .done = on_job_done,
};

int managed_gpu_switch(ManagedGpu *g, SwitchTarget target, uint64_t flags, const SwitchOwner *owner) {
        Manager *m = g->manager;
        SwitchContext ctx = managed_gpu_switch_context(g, SWITCH_ORIGIN_BUS, target);
        int r;

        ctx.terminate_holders = flags & SWITCH_FLAG_TERMINATE_HOLDERS;
        ctx.keep_holders = flags & SWITCH_FLAG_KEEP_HOLDERS;
        if (g->job)
                return -EBUSY;
        if (g->gone)
                return -ENODEV;
        r = job_start(m->event, m->workers, &ctx, m->config->step_timeout_sec, &job_callbacks, g, &g->job);
        if (r < 0)
                return log_error_errno(r, "%s: starting the switch to %s", g->address, switch_target_to_string(target));
        managed_gpu_ref(g);       /* on_job_done()'s */
        g->owner = *owner;
        log_info("%s: switching to %s", g->address, switch_target_to_string(target));
        announce_mode(g);
        return 0;
}

int managed_gpu_set_default_mode(ManagedGpu *g, DefaultMode mode, sd_bus_error *error) {
        _cleanup_free_ char *message = NULL;
        int r;

        r = config_set_default_mode(g->manager->config_path, &g->slot, mode, &message);
        if (r < 0) {
                log_error("%s: setting DefaultMode=%s: %s", g->address, default_mode_to_string(mode),
                          message ? message : strerror(-r));
                return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED, "%s: cannot set DefaultMode=%s: %s", g->address,
                                         default_mode_to_string(mode), message ? message : strerror(-r));
        }
        log_info("%s: DefaultMode=%s written to %s", g->address, default_mode_to_string(mode), g->manager->config_path);
        if (g->default_mode == mode)
                return 0;
        g->default_mode = mode;
        managed_gpu_emit_changed(g, "DefaultMode");
        return 0;
}

static bool functions_equal(const Gpu *a, const Gpu *b) {
        if (a->n_functions != b->n_functions)
                return false;
        for (size_t i = 0; i < a->n_functions; i++)
                if (!streq(a->functions[i].address, b->functions[i].address) ||
                    !streq_ptr(a->functions[i].driver, b->functions[i].driver) ||
                    !streq_ptr(a->functions[i].host_driver, b->functions[i].host_driver))
                        return false;
        return true;
}

/* Takes a fresh read of the GPU's functions as its state; emits
 * PropertiesChanged for what changed. */
static int managed_gpu_apply(ManagedGpu *g, Gpu *now_owned) {
        _cleanup_(gpu_freep) Gpu *now = now_owned;
        Manager *m = g->manager;
        bool changed;
        int r;

        r = resolve_host_drivers(m, now, config_find_gpu(m->config, &g->slot));
        if (r < 0)
                return r;
        changed = !functions_equal(g->state, now);
        if (changed)
                warn_missing_companions(g->address, g->state, now);
        gpu_free(g->state);
        g->state = TAKE_PTR(now);
        g->generation++;
        if (changed)
                managed_gpu_emit_changed(g, "Functions");
        announce_mode(g);
        if (changed && g->vm_watch)
                vm_watch_state_changed(g->vm_watch);
        return 0;
}

int managed_gpu_read(ManagedGpu *g) {
        Gpu *now = NULL;
        int r;

        r = gpu_reread(&g->manager->sysfs, g->state, &now);
        if (r < 0)
                return log_warning_errno(r, "%s: reading its functions", g->address);
        return managed_gpu_apply(g, now);
}

/* A read of the functions on a worker: reading driver_override takes the
 * device lock, which an unbind stuck in a driver's remove() holds (someone
 * else's: a script, libvirt), and the loop must keep answering meanwhile. */
typedef struct Refresh {
        ManagedGpu *gpu;
        Gpu *tmpl, *now;
        bool whole;
        uint64_t generation;      /* of the state it started from */
} Refresh;

static void refresh_free(Refresh *q) {
        gpu_free(q->tmpl);
        gpu_free(q->now);
        free(q);
}

static int refresh_work(void *userdata) {
        Refresh *q = userdata;

        return gpu_reread_changed(&q->gpu->manager->sysfs, q->tmpl, q->whole, &q->now);
}

static void refresh_done(int result, void *userdata) {
        Refresh *q = userdata;
        ManagedGpu *g = q->gpu;

        g->refreshing = false;
        if (g->gone) {
                refresh_free(q);
                managed_gpu_unref(g);
                return;
        }
        /* gone, and its uevents lost (ENOBUFS) or not read yet */
        if (result == -ENODEV && !manager_slot_present(g->manager, &g->slot))
                manager_remove_gpu(g->manager, g);
        else if (result < 0)
                log_warning_errno(result, "%s: reading its functions", g->address);
        /* A switch that began or ended meanwhile has read them itself. */
        else if (!g->job && q->generation == g->generation) {
                if (q->whole)
                        g->reread_whole = false;
                (void) managed_gpu_apply(g, TAKE_PTR(q->now));
        }
        refresh_free(q);
        if (g->refresh_again) {
                g->refresh_again = false;
                managed_gpu_refresh(g, g->reread_whole);
        }
        managed_gpu_unref(g);
}

void managed_gpu_refresh(ManagedGpu *g, bool whole) {
        Refresh *q;
        int r;

        g->reread_whole = g->reread_whole || whole;
        /* the switch under way reads them when it ends */
        if (g->job || g->gone)
                return;
        /* one read at a time; a burst of requests makes one more */
        if (g->refreshing) {
                g->refresh_again = true;
                return;
        }
        q = calloc(1, sizeof *q);
        if (!q || gpu_copy(g->state, &q->tmpl) < 0) {
                if (q)
                        refresh_free(q);
                log_error("%s: out of memory reading its functions", g->address);
                return;
        }
        q->gpu = g;
        q->whole = g->reread_whole;
        q->generation = g->generation;
        r = worker_start(g->manager->workers, WORK_READ, refresh_work, refresh_done, q);
        if (r < 0) {
                log_warning_errno(r, "%s: starting a read of its functions", g->address);
                refresh_free(q);
                return;
        }
        g->refreshing = true;
        managed_gpu_ref(g);       /* refresh_done()'s */
}

/* Every method call but Peer's gets BadConfig: a client learns what is
 * wrong at once, instead of waiting out the bus's activation timeout for
 * a daemon that exited. */
static int config_error_filter(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        uint8_t type;

        if (sd_bus_message_get_type(msg, &type) < 0 || type != SD_BUS_MESSAGE_METHOD_CALL ||
            streq_ptr(sd_bus_message_get_interface(msg), "org.freedesktop.DBus.Peer"))
                return 0;
        return sd_bus_error_setf(error, GS_ERROR_BAD_CONFIG, "gpuswitchd cannot use its configuration: %s",
                                 m->config_error);
}

static int on_config_changed(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        Manager *m = userdata;
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *message = NULL;

        if (config_load(m->config_path, &c, &message) < 0) {
                log_error("%s", strempty(message));
                free(m->config_error);
                m->config_error = TAKE_PTR(message);
                return 0;
        }
        log_notice("%s parses now: exiting, so that the next call starts gpuswitchd with it", m->config_path);
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

int manager_serve_config_error(Manager *m, const char *message) {
        _cleanup_free_ char *dir = strdup(m->config_path);
        char *slash;
        int r;

        m->config_error = strdup(message);
        if (!m->config_error || !dir)
                return -ENOMEM;
        r = sd_bus_add_filter(m->bus, &m->config_error_filter, config_error_filter, m);
        if (r < 0)
                return log_error_errno(r, "installing the bus filter for the configuration error");
        /* The folder, not the file: editors replace the file by a rename. */
        slash = strrchr(dir, '/');
        if (slash && slash != dir)
                *slash = 0;
        r = sd_event_add_inotify(m->event, &m->config_watch, dir,
                                 IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ONLYDIR,
                                 on_config_changed, m);
        if (r < 0)
                log_warning_errno(r, "watching %s: restart gpuswitchd once the configuration is fixed", dir);
        return 0;
}
