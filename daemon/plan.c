/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>

#include "util.h"

void plan_free(Plan *p) {
        if (!p)
                return;
        free(p->steps);
        free(p);
}

const char *plan_action_to_string(PlanAction a) {
        return a == PLAN_MOVE ? "move" : "keep";
}

bool plan_is_noop(const Plan *p) {
        for (size_t i = 0; i < p->n_steps; i++)
                if (p->steps[i].action == PLAN_MOVE)
                        return false;
        return true;
}

/* Bridges (the root port above the slot, switch ports) share a group with
 * the endpoints below them and stay with their driver: VFIO allows that. */
static bool driver_ok_for_vfio_group(const char *driver) {
        return !driver || streq(driver, VFIO_PCI_DRIVER) || streq(driver, "pci-stub");
}

int iommu_group_check_viable(const Sysfs *s, const Gpu *g, SwitchError *error) {
        unsigned groups[8];
        size_t n = gpu_iommu_groups(g, groups, ELEMENTSOF(groups));

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *dir = NULL;
                _cleanup_closedir_ DIR *d = NULL;
                struct dirent *de;

                if (asprintf(&dir, "%s/kernel/iommu_groups/%u/devices", s->root, groups[i]) < 0)
                        return -ENOMEM;
                d = opendir(dir);
                if (!d)
                        return log_error_errno(errno, "%s: reading IOMMU group %u", g->address, groups[i]);
                while ((de = readdir(d))) {
                        _cleanup_free_ char *driver = NULL;
                        unsigned long class;
                        PciAddress a;
                        int r;

                        if (pci_address_parse(de->d_name, &a) < 0 || a.function < 0)
                                continue;
                        if (gpu_find_function(g, de->d_name))
                                continue;
                        if (sysfs_read_hex(s, de->d_name, "class", &class) >= 0 &&
                            (class >> 8) == PCI_CLASS_BRIDGE_PCI)
                                continue;
                        r = sysfs_read_driver(s, de->d_name, &driver);
                        if (r < 0)
                                return log_error_errno(r, "%s: reading the driver of %s", g->address, de->d_name);
                        if (driver_ok_for_vfio_group(driver))
                                continue;
                        return switch_error_set(error, SWITCH_ERROR_GROUP_NOT_VIABLE, SWITCH_STEP_PLAN,
                                                de->d_name, EXDEV,
                                                "IOMMU group %u of %s also holds %s, bound to %s: a VM can "
                                                "only take the whole group (unbind %s or move it to vfio-pci "
                                                "first)", groups[i], g->address, de->d_name, driver, de->d_name);
                }
        }
        return 0;
}

static void plan_function(const PciFunction *f, const SwitchTargetInfo *target, PlanStep *step) {
        *step = (PlanStep) { .function = f, .from = f->driver, .action = PLAN_KEEP };

        if (target->driver) {
                step->to = target->driver;
                if (!streq_ptr(f->driver, target->driver))
                        step->action = PLAN_MOVE;
                return;
        }

        /* host: off vfio-pci, onto the default driver; a function on some
         * other host driver already is left alone. */
        step->to = f->host_driver;
        if (streq_ptr(f->driver, VFIO_PCI_DRIVER)) {
                step->action = PLAN_MOVE;
                return;
        }
        if (f->driver) {
                step->to = f->driver;
                /* A leftover driver_override would make the next probe bind
                 * only that driver: clear it. */
                if (f->driver_override)
                        step->action = PLAN_MOVE;
                return;
        }
        if (f->host_driver || f->driver_override)
                step->action = PLAN_MOVE;
}

int plan_make(const Sysfs *s, const Gpu *g, SwitchTarget target, const PlanPolicy *policy,
              Plan **ret, SwitchError *error) {
        const SwitchTargetInfo *info = switch_target_info(target);
        _cleanup_(plan_freep) Plan *p = NULL;
        int r;

        if (!info)
                return switch_error_set(error, SWITCH_ERROR_INVALID, SWITCH_STEP_PLAN, NULL, EINVAL,
                                        "no such switch target (%d)", (int) target);

        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->target = target;
        p->steps = calloc(g->n_functions, sizeof *p->steps);
        if (!p->steps)
                return -ENOMEM;
        p->n_steps = g->n_functions;

        /* Away from the host the highest function goes first and function 0
         * last; back to the host function 0 goes first.  The companion
         * functions of a GPU (HD audio, USB) are tied to function 0 through
         * runtime PM device links and expect it present while they are bound. */
        for (size_t i = 0; i < g->n_functions; i++) {
                size_t k = info->leaves_host ? g->n_functions - 1 - i : i;
                plan_function(&g->functions[k], info, &p->steps[i]);
        }

        if (info->leaves_host && !plan_is_noop(p)) {
                if (gpu_is_boot_vga(g) && !(policy && policy->allow_boot_vga))
                        return switch_error_set(error, SWITCH_ERROR_REFUSED, SWITCH_STEP_PLAN, NULL, EPERM,
                                                "%s is the boot VGA device, showing the console: set "
                                                "AllowBootVga=yes in its [Gpu %s] section to switch it anyway",
                                                g->address, g->address);
                r = iommu_group_check_viable(s, g, error);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(p);
        return 0;
}
