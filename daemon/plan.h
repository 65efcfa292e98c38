/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "gpu.h"
#include "switch-error.h"

typedef enum PlanAction {
        PLAN_KEEP,
        PLAN_MOVE,
} PlanAction;

typedef struct PlanStep {
        const PciFunction *function;   /* points into the Gpu the plan was made from */
        const char *from;              /* current driver, NULL: unbound */
        const char *to;                /* target driver, NULL: stays unbound */
        PlanAction action;
} PlanStep;

/* The steps in the order they are carried out. */
typedef struct Plan {
        SwitchTarget target;
        PlanStep *steps;
        size_t n_steps;
} Plan;

typedef struct PlanPolicy {
        bool allow_boot_vga;
} PlanPolicy;

void plan_free(Plan *p);
static inline void plan_freep(Plan **p) { plan_free(*p); }

const char *plan_action_to_string(PlanAction a);

/* Plans moving g to target.  Refusals come back as negative errno with
 * error set: REFUSED for the boot VGA GPU, GROUP_NOT_VIABLE when the IOMMU
 * group holds a device outside the GPU that is bound to a host driver. */
int plan_make(const Sysfs *s, const Gpu *g, SwitchTarget target, const PlanPolicy *policy,
              Plan **ret, SwitchError *error);

bool plan_is_noop(const Plan *p);

/* The IOMMU group check on its own: every device in the groups of g that
 * is not one of its functions must be unbound, on vfio-pci or a bridge. */
int iommu_group_check_viable(const Sysfs *s, const Gpu *g, SwitchError *error);
