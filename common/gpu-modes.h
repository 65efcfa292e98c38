/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#define VFIO_PCI_DRIVER "vfio-pci"

/* What a GPU's functions show now: the Mode property.  SWITCHING is never
 * read from sysfs: it is what a GPU with a switch in flight shows. */
typedef enum GpuState {
        GPU_STATE_HOST,
        GPU_STATE_VFIO,
        GPU_STATE_MIXED,
        GPU_STATE_SWITCHING,
        _GPU_STATE_MAX,
        _GPU_STATE_INVALID = -1,
} GpuState;

/* Where a switch takes every function of a GPU: the "mode" argument of
 * Switch and Plan, and the verbs of gpuswitchctl. */
typedef enum SwitchTarget {
        SWITCH_TARGET_HOST,
        SWITCH_TARGET_VFIO,
        _SWITCH_TARGET_MAX,
        _SWITCH_TARGET_INVALID = -1,
} SwitchTarget;

/* DefaultMode=: a switch target applied once per boot, or keep. */
typedef enum DefaultMode {
        DEFAULT_MODE_HOST = SWITCH_TARGET_HOST,
        DEFAULT_MODE_VFIO = SWITCH_TARGET_VFIO,
        DEFAULT_MODE_KEEP = _SWITCH_TARGET_MAX,
        _DEFAULT_MODE_MAX,
        _DEFAULT_MODE_INVALID = -1,
} DefaultMode;

/* Everything the daemon needs to know about a target: adding one is a row
 * here (and its documentation in gpuswitchd(8) and the XML). */
typedef struct SwitchTargetInfo {
        const char *name;
        /* The driver every function goes to; NULL: each function's own host
         * driver (its default, or HostDriver=). */
        const char *driver;
        /* Takes the GPU away from the host: the services that keep it open
         * are stopped first, the boot VGA device is refused, and the IOMMU
         * group must be viable. */
        bool leaves_host;
        /* The state the GPU shows once every function is there. */
        GpuState state;
} SwitchTargetInfo;

const SwitchTargetInfo *switch_target_info(SwitchTarget t);

const char *gpu_state_to_string(GpuState s);
GpuState gpu_state_from_string(const char *s);

const char *switch_target_to_string(SwitchTarget t);
SwitchTarget switch_target_from_string(const char *s);
/* "vfio or host" ("vfio, host or keep" with and_keep: DefaultMode=), for
 * messages that say what is accepted. */
#define SWITCH_TARGET_CHOICES_MAX 64
const char *switch_target_choices(char buf[static SWITCH_TARGET_CHOICES_MAX], bool and_keep);

const char *default_mode_to_string(DefaultMode m);
DefaultMode default_mode_from_string(const char *s);
/* The target DefaultMode= asks for; false for keep. */
bool default_mode_target(DefaultMode m, SwitchTarget *ret);
