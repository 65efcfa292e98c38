/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "plan.h"

#include <glib.h>
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

/* A device in the GPU's groups that would keep the VM from taking them. */
typedef struct Blocker {
        char address[PCI_FUNCTION_STRLEN];
        char *driver;
        unsigned group;
} Blocker;

static void blockers_free(Blocker *b, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(b[i].driver);
        free(b);
}

static int group_find_blockers(const Sysfs *s, const Gpu *g, unsigned group, Blocker **blockers, size_t *n) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;

        if (asprintf(&dir, "%s/kernel/iommu_groups/%u/devices", s->root, group) < 0)
                return -ENOMEM;
        d = opendir(dir);
        if (!d)
                return log_error_errno(errno, "%s: reading IOMMU group %u", g->address, group);
        while ((de = readdir(d))) {
                _cleanup_free_ char *driver = NULL;
                unsigned long class;
                Blocker *grown;
                PciAddress a;
                int r;

                if (pci_address_parse(de->d_name, &a) < 0 || a.function < 0)
                        continue;
                /* its own functions, companions included */
                if (gpu_find_function(g, de->d_name))
                        continue;
                if (sysfs_read_hex(s, de->d_name, "class", &class) >= 0 && (class >> 8) == PCI_CLASS_BRIDGE_PCI)
                        continue;
                r = sysfs_read_driver(s, de->d_name, &driver);
                if (r < 0)
                        return log_error_errno(r, "%s: reading the driver of %s", g->address, de->d_name);
                if (driver_ok_for_vfio_group(driver))
                        continue;
                grown = realloc(*blockers, (*n + 1) * sizeof *grown);
                if (!grown)
                        return -ENOMEM;
                *blockers = grown;
                grown[*n] = (Blocker) { .group = group, .driver = TAKE_PTR(driver) };
                pci_address_format_function(&a, grown[*n].address);
                (*n)++;
        }
        return 0;
}

static int compare_blockers(const void *a, const void *b) {
        return strcmp(((const Blocker *) a)->address, ((const Blocker *) b)->address);
}

int iommu_group_check_viable(const Sysfs *s, const Gpu *g, SwitchError *error) {
        g_autoptr(GString) groups_text = g_string_new(NULL), held = g_string_new(NULL), key = g_string_new(NULL);
        Blocker *blockers = NULL;
        unsigned groups[8];
        size_t n = gpu_iommu_groups(g, groups, ELEMENTSOF(groups)), n_blockers = 0, n_groups = 0;
        int r = 0;

        for (size_t i = 0; i < n && r >= 0; i++)
                r = group_find_blockers(s, g, groups[i], &blockers, &n_blockers);
        if (r < 0 || n_blockers == 0) {
                blockers_free(blockers, n_blockers);
                return r;
        }
        qsort(blockers, n_blockers, sizeof *blockers, compare_blockers);

        /* "IOMMU group 7 of 0000:0a:00 also holds 0000:0b:00.0, bound to
         * xhci_hcd": then the key that would move them too, with the
         * companions it has already */
        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < n_blockers; k++)
                        if (blockers[k].group == groups[i]) {
                                g_string_append_printf(groups_text, "%s%u", n_groups ? ", " : "", groups[i]);
                                n_groups++;
                                break;
                        }
        for (size_t k = 0; k < n_blockers; k++)
                g_string_append_printf(held, "%s%s, bound to %s", k == 0 ? "" : k + 1 < n_blockers ? "; " : " and ",
                                       blockers[k].address, blockers[k].driver);
        for (size_t i = 0; i < g->n_companions; i++) {
                char c[PCI_FUNCTION_STRLEN];

                pci_address_format_function(&g->companions[i], c);
                g_string_append_printf(key, "%s%s", key->len ? ";" : "", c);
        }
        for (size_t k = 0; k < n_blockers; k++)
                g_string_append_printf(key, "%s%s", key->len ? ";" : "", blockers[k].address);

        r = switch_error_set(error, SWITCH_ERROR_GROUP_NOT_VIABLE, SWITCH_STEP_PLAN, blockers[0].address, EXDEV,
                             "IOMMU group%s %s of %s also hold%s %s: a VM can only take the whole group; add "
                             "Companions=%s to [Gpu %s] to move %s with the GPU, or unbind %s first",
                             n_groups > 1 ? "s" : "", groups_text->str, g->address,
                             n_groups > 1 ? "" : "s", held->str, key->str, g->address,
                             n_blockers > 1 ? "them" : "it", n_blockers > 1 ? "them" : "it");
        blockers_free(blockers, n_blockers);
        return r;
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
         * last; back to the host function 0 goes first.  The other functions
         * of a GPU (HD audio, USB) are tied to function 0 through runtime PM
         * device links and expect it present while they are bound.  Companions
         * (Companions=, after the slot's functions in g) are consumers of the
         * same kind, an HDMI audio device or USB-C controller of the card on
         * another bus whose driver may bind to the GPU's as a component: they
         * leave the host first and come back last, so that the GPU's driver
         * never sees them bound without it. */
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
