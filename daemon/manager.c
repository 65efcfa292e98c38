/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "manager.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <glib.h>

#include "config-write.h"
#include "errors.h"
#include "host-driver.h"
#include "instance-lock.h"
#include "job.h"
#include "holders.h"
#include "pci-name.h"
#include "plan.h"
#include "switch-record.h"
#include "switch.h"
#include "util.h"

#define NVIDIA_VENDOR 0x10de

static void managed_gpu_free(ManagedGpu *g) {
        if (!g)
                return;
        job_free(g->job);
        gpu_free(g->state);
        free(g->object_path);
        free(g->name);
        free(g->step);
        g_strfreev(g->stop_services);
        free(g);
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
        *ret = TAKE_PTR(m);
        return 0;
}

int manager_exit_on_signals(Manager *m) {
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        r = sd_event_add_signal(m->event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT, NULL, NULL);
        return r;
}

void manager_free(Manager *m) {
        if (!m)
                return;
        sd_bus_slot_unref(m->manager_slot);
        sd_bus_slot_unref(m->gpu_slot);
        sd_bus_slot_unref(m->gpu_enumerator_slot);
        sd_event_source_disable_unref(m->uevent_source);
        sd_event_source_disable_unref(m->uevent_refresh);
        /* A switch under way is waited for: its thread writes to sysfs and
         * must not be cut off halfway. */
        worker_join_all(&m->workers);
        for (size_t i = 0; i < m->n_gpus; i++)
                managed_gpu_free(m->gpus[i]);
        free(m->gpus);
        sd_bus_flush_close_unref(m->bus);
        sd_event_unref(m->event);
        config_free(m->config);
        free(m->config_path);
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

/* StopServices=, or for a GPU that nvidia drives the two NVIDIA services
 * that keep every NVIDIA GPU's nodes open. */
static char **default_stop_services(const ManagedGpu *g, const GpuConfig *gc) {
        static const char *const nvidia[] = { "nvidia-persistenced.service", "nvidia-powerd.service", NULL };

        if (gc && gc->stop_services)
                return g_strdupv(gc->stop_services);
        for (size_t i = 0; i < g->state->n_functions; i++)
                if (streq_ptr(g->state->functions[i].host_driver, "nvidia"))
                        return g_strdupv((char **) nvidia);
        return NULL;
}

static int manager_add_gpu(Manager *m, const PciAddress *slot) {
        _cleanup_(gpu_freep) Gpu *state = NULL;
        const GpuConfig *gc = config_find_gpu(m->config, slot);
        ManagedGpu *g, **n;
        char address[PCI_SLOT_STRLEN];
        int r;

        pci_address_format_slot(slot, address);
        r = gpu_read(&m->sysfs, slot, &state);
        if (r == -ENODEV) {
                log_warning("%s: configured GPU not present, not managing it", address);
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "%s: reading its functions", address);
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

        g->manager = m;
        g->slot = *slot;
        memcpy(g->address, address, sizeof g->address);
        g->default_mode = gc ? gc->default_mode : GPU_MODE_KEEP;
        g->allow_boot_vga = gc && gc->allow_boot_vga;
        g->boot_vga = gpu_is_boot_vga(state);
        g->mode = gpu_derive_mode(state);
        g->name = gpu_name(state);
        /* "/org/gpuswitch1/gpu/0000_0a_00": ':' is not allowed in a path */
        if (asprintf(&g->object_path, GPUSWITCH_GPU_PATH_PREFIX "/%04x_%02x_%02x", slot->domain, slot->bus,
                     slot->slot) < 0 || !g->name)
                return -ENOMEM;
        g->state = TAKE_PTR(state);
        g->stop_services = default_stop_services(g, gc);

        log_info("%s: managing %s, %zu functions, mode %s", g->address, g->name, g->state->n_functions,
                 gpu_mode_to_string(g->mode));
        for (size_t i = 0; i < g->state->n_functions; i++) {
                const PciFunction *f = &g->state->functions[i];
                log_info("%s: class 0x%06x, driver %s, host driver %s, IOMMU group %d", f->address, f->class,
                         f->driver ? f->driver : "(none)", f->host_driver ? f->host_driver : "(none)",
                         f->iommu_group);
        }
        return 0;
}

/* Gpus=auto: every NVIDIA display controller that is not the boot VGA
 * device. */
static int discover_auto(Manager *m) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;

        if (asprintf(&dir, "%s/bus/pci/devices", m->sysfs.root) < 0)
                return -ENOMEM;
        d = opendir(dir);
        if (!d)
                return log_error_errno(errno, "opening %s", dir);
        while ((de = readdir(d))) {
                unsigned long vendor, class, boot_vga;
                PciAddress a;
                bool known = false;
                int r;

                if (pci_address_parse(de->d_name, &a) < 0 || a.function < 0)
                        continue;
                if (sysfs_read_hex(&m->sysfs, de->d_name, "vendor", &vendor) < 0 || vendor != NVIDIA_VENDOR)
                        continue;
                if (sysfs_read_hex(&m->sysfs, de->d_name, "class", &class) < 0 || (class >> 16) != PCI_CLASS_DISPLAY)
                        continue;
                if (sysfs_read_hex(&m->sysfs, de->d_name, "boot_vga", &boot_vga) >= 0 && boot_vga == 1) {
                        log_info("%s: boot VGA device, not managed with Gpus=auto", de->d_name);
                        continue;
                }
                for (size_t i = 0; i < m->n_gpus; i++)
                        known = known || pci_address_same_slot(&m->gpus[i]->slot, &a);
                if (known)
                        continue;
                r = manager_add_gpu(m, &a);
                if (r < 0)
                        return r;
        }
        return 0;
}

int manager_discover(Manager *m) {
        if (m->config->gpus_auto)
                return discover_auto(m);
        for (size_t i = 0; i < m->config->n_gpus; i++) {
                int r = manager_add_gpu(m, &m->config->gpus[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int recover_gpu(Manager *m, ManagedGpu *g) {
        _cleanup_(switch_record_freep) SwitchRecord *rec = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *dir = switch_record_dir();
        int r;

        r = switch_record_read(dir, g->address, &rec);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                (void) switch_record_remove(dir, g->address);
                return 0;
        }
        /* The record knows each function's driver from before: a function
         * left unbound tells nothing itself (its module may have no alias). */
        for (size_t i = 0; i < rec->original->n_functions; i++) {
                const PciFunction *o = &rec->original->functions[i];
                PciFunction *f = gpu_find_function(g->state, o->address);

                if (f && !f->host_driver && o->driver && !streq(o->driver, VFIO_PCI_DRIVER))
                        f->host_driver = strdup(o->driver);
        }
        g->mode = gpu_derive_mode(g->state);
        log_warning("%s: a switch to %s was interrupted (gpuswitchd stopped mid-switch): the GPU is %s now; "
                    "putting every function back where it was", g->address, gpu_mode_to_string(rec->target),
                    gpu_mode_to_string(g->mode));
        r = switch_restore(&m->sysfs, rec->original, &error);
        if (r < 0)
                log_error("%s: putting the GPU back after the interrupted switch: %s", g->address,
                          error.message ? error.message : strerror(-r));
        (void) switch_record_remove(dir, g->address);
        (void) managed_gpu_refresh(g);
        if (r >= 0)
                log_notice("%s: back to %s after the interrupted switch", g->address, gpu_mode_to_string(g->mode));
        return 0;
}

/* DefaultMode= of one GPU, as root at boot: the holder check still
 * applies (nothing is ended unasked). */
static int apply_default_mode(Manager *m, ManagedGpu *g) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(plan_freep) Plan *plan = NULL;
        _cleanup_free_ DeviceNode *nodes = NULL;
        _cleanup_free_ Holder *holders = NULL;
        PlanPolicy policy = { .allow_boot_vga = g->allow_boot_vga };
        size_t n_nodes, n_holders;
        int r;

        if (g->default_mode != GPU_MODE_HOST && g->default_mode != GPU_MODE_VFIO)
                return 0;
        r = plan_make(&m->sysfs, g->state, g->default_mode, &policy, &plan, &error);
        if (r >= 0 && plan_is_noop(plan))
                return 0;
        if (r >= 0 && gpu_device_nodes(&m->sysfs, g->state, &nodes, &n_nodes) >= 0 &&
            holders_scan("/proc", nodes, n_nodes, &holders, &n_holders) >= 0 && n_holders > 0) {
                _cleanup_free_ char *who = holders_describe(holders, n_holders);
                log_warning("%s: DefaultMode=%s not applied, the GPU is in use:\n%s", g->address,
                            gpu_mode_to_string(g->default_mode), strempty(who));
                return 0;
        }
        if (r >= 0)
                r = switch_run(&m->sysfs, g->state, plan, &error);
        if (r < 0)
                log_error("%s: DefaultMode=%s: %s", g->address, gpu_mode_to_string(g->default_mode),
                          error.message ? error.message : strerror(-r));
        (void) managed_gpu_refresh(g);
        if (r >= 0)
                log_info("%s: DefaultMode=%s applied", g->address, gpu_mode_to_string(g->default_mode));
        return 0;
}

/* /run is empty at each boot: the marker says DefaultMode= was applied in
 * this one, so a daemon started again later (bus activation, a restart)
 * leaves the GPU where the user put it. */
static const char *boot_marker(void) {
        static char path[256];

        snprintf(path, sizeof path, "%s/default-mode-applied", runtime_dir());
        return path;
}

int manager_startup_switches(Manager *m) {
        const char *marker = boot_marker();
        _cleanup_free_ char *dir = strdup(marker);
        int fd;

        for (size_t i = 0; i < m->n_gpus; i++)
                (void) recover_gpu(m, m->gpus[i]);

        if (access(marker, F_OK) == 0)
                return 0;
        for (size_t i = 0; i < m->n_gpus; i++)
                (void) apply_default_mode(m, m->gpus[i]);
        if (!dir)
                return -ENOMEM;
        *strrchr(dir, '/') = 0;
        (void) mkdir(dir, 0755);
        fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                return log_warning_errno(errno, "creating %s", marker);
        close(fd);
        return 0;
}

ManagedGpu *manager_find_gpu(Manager *m, const char *arg, sd_bus_error *error) {
        PciAddress a;

        if (isempty(arg)) {
                if (m->n_gpus == 1)
                        return m->gpus[0];
                if (m->n_gpus == 0)
                        sd_bus_error_set(error, GS_ERROR_NO_SUCH_GPU, "no GPU is managed by gpuswitchd");
                else
                        sd_bus_error_setf(error, GS_ERROR_NO_SUCH_GPU,
                                          "%zu GPUs are managed: name one by its address", m->n_gpus);
                return NULL;
        }
        if (pci_address_parse(arg, &a) < 0) {
                sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                  "'%.*s' is not a PCI address such as 0000:0a:00", gs_quote_len(arg, 64), arg);
                return NULL;
        }
        for (size_t i = 0; i < m->n_gpus; i++)
                if (pci_address_same_slot(&m->gpus[i]->slot, &a))
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

void managed_gpu_set_mode(ManagedGpu *g, GpuMode mode) {
        if (g->mode == mode)
                return;
        g->mode = mode;
        if (g->manager->bus)
                (void) sd_bus_emit_properties_changed(g->manager->bus, g->object_path, GPUSWITCH_GPU_INTERFACE,
                                                      "Mode", NULL);
}

void managed_gpu_set_step(ManagedGpu *g, const char *step) {
        if (streq_ptr(g->step, step) || (isempty(g->step) && isempty(step)))
                return;
        free(g->step);
        g->step = step ? strdup(step) : NULL;
        if (g->manager->bus)
                (void) sd_bus_emit_properties_changed(g->manager->bus, g->object_path, GPUSWITCH_GPU_INTERFACE,
                                                      "Step", NULL);
}

int managed_gpu_set_default_mode(ManagedGpu *g, GpuMode mode, sd_bus_error *error) {
        _cleanup_free_ char *message = NULL;
        int r;

        r = config_set_default_mode(g->manager->config_path, &g->slot, mode, &message);
        if (r < 0) {
                log_error("%s: setting DefaultMode=%s: %s", g->address, gpu_mode_to_string(mode),
                          message ? message : strerror(-r));
                return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED, "%s: cannot set DefaultMode=%s: %s", g->address,
                                         gpu_mode_to_string(mode), message ? message : strerror(-r));
        }
        log_info("%s: DefaultMode=%s written to %s", g->address, gpu_mode_to_string(mode), g->manager->config_path);
        if (g->default_mode == mode)
                return 0;
        g->default_mode = mode;
        if (g->manager->bus)
                (void) sd_bus_emit_properties_changed(g->manager->bus, g->object_path, GPUSWITCH_GPU_INTERFACE,
                                                      "DefaultMode", NULL);
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

int managed_gpu_refresh(ManagedGpu *g) {
        Manager *m = g->manager;
        _cleanup_(gpu_freep) Gpu *now = NULL;
        bool changed;
        int r;

        /* While a switch is under way its functions are not read here:
         * reading driver_override takes the device lock, which an unbind
         * stuck in a driver's remove() holds, and the loop would hang with
         * it.  The switch's end reads them. */
        if (g->job)
                return 0;

        r = gpu_reread(&m->sysfs, g->state, &now);
        if (r < 0)
                return log_warning_errno(r, "%s: reading its functions", g->address);
        r = resolve_host_drivers(m, now, config_find_gpu(m->config, &g->slot));
        if (r < 0)
                return r;
        changed = !functions_equal(g->state, now);
        gpu_free(g->state);
        g->state = TAKE_PTR(now);
        if (changed && m->bus)
                (void) sd_bus_emit_properties_changed(m->bus, g->object_path, GPUSWITCH_GPU_INTERFACE,
                                                      "Functions", NULL);
        if (!g->job)
                managed_gpu_set_mode(g, gpu_derive_mode(g->state));
        return 0;
}

static int gpu_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                           sd_bus_error *error) {
        ManagedGpu *g = manager_find_gpu_by_path(userdata, path);

        if (!g)
                return 0;
        *found = g;
        return 1;
}

static int gpu_object_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***nodes,
                                sd_bus_error *error) {
        Manager *m = userdata;
        char **l = calloc(m->n_gpus + 1, sizeof *l);

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_gpus; i++) {
                l[i] = strdup(m->gpus[i]->object_path);
                if (!l[i]) {
                        for (size_t k = 0; k < i; k++)
                                free(l[k]);
                        free(l);
                        return -ENOMEM;
                }
        }
        *nodes = l;
        return 0;
}

int manager_attach_bus(Manager *m) {
        int r;

        r = sd_bus_add_object_vtable(m->bus, &m->manager_slot, GPUSWITCH_MANAGER_PATH,
                                     GPUSWITCH_MANAGER_INTERFACE, manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "registering %s", GPUSWITCH_MANAGER_PATH);
        r = sd_bus_add_fallback_vtable(m->bus, &m->gpu_slot, GPUSWITCH_GPU_PATH_PREFIX, GPUSWITCH_GPU_INTERFACE,
                                       gpu_vtable, gpu_object_find, m);
        if (r < 0)
                return log_error_errno(r, "registering %s", GPUSWITCH_GPU_PATH_PREFIX);
        r = sd_bus_add_node_enumerator(m->bus, &m->gpu_enumerator_slot, GPUSWITCH_GPU_PATH_PREFIX,
                                       gpu_object_enumerate, m);
        if (r < 0)
                return log_error_errno(r, "registering the GPU enumerator");
        return 0;
}
