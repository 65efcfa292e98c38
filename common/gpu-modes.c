/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "gpu-modes.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static const char *const gpu_state_table[_GPU_STATE_MAX] = {
        [GPU_STATE_HOST] = "host",
        [GPU_STATE_VFIO] = "vfio",
        [GPU_STATE_MIXED] = "mixed",
        [GPU_STATE_SWITCHING] = "switching",
};

static const SwitchTargetInfo switch_target_table[_SWITCH_TARGET_MAX] = {
        [SWITCH_TARGET_HOST] = { .name = "host", .driver = NULL, .leaves_host = false, .state = GPU_STATE_HOST },
        [SWITCH_TARGET_VFIO] = { .name = "vfio", .driver = VFIO_PCI_DRIVER, .leaves_host = true,
                                 .state = GPU_STATE_VFIO },
};

const SwitchTargetInfo *switch_target_info(SwitchTarget t) {
        if (t < 0 || t >= _SWITCH_TARGET_MAX)
                return NULL;
        return &switch_target_table[t];
}

const char *gpu_state_to_string(GpuState s) {
        if (s < 0 || s >= _GPU_STATE_MAX)
                return NULL;
        return gpu_state_table[s];
}

GpuState gpu_state_from_string(const char *s) {
        for (int i = 0; s && i < _GPU_STATE_MAX; i++)
                if (streq(gpu_state_table[i], s))
                        return (GpuState) i;
        return _GPU_STATE_INVALID;
}

const char *switch_target_to_string(SwitchTarget t) {
        const SwitchTargetInfo *info = switch_target_info(t);
        return info ? info->name : NULL;
}

SwitchTarget switch_target_from_string(const char *s) {
        for (int i = 0; s && i < _SWITCH_TARGET_MAX; i++)
                if (streq(switch_target_table[i].name, s))
                        return (SwitchTarget) i;
        return _SWITCH_TARGET_INVALID;
}

const char *switch_target_choices(char buf[static SWITCH_TARGET_CHOICES_MAX], bool and_keep) {
        const char *names[_SWITCH_TARGET_MAX + 1];
        size_t n = 0, len = 0;

        for (int i = _SWITCH_TARGET_MAX - 1; i >= 0; i--)
                names[n++] = switch_target_table[i].name;
        if (and_keep)
                names[n++] = "keep";
        buf[0] = 0;
        for (size_t i = 0; i < n && len < SWITCH_TARGET_CHOICES_MAX; i++)
                len += (size_t) snprintf(buf + len, SWITCH_TARGET_CHOICES_MAX - len, "%s%s", names[i],
                                         i + 1 == n ? "" : i + 2 == n ? " or " : ", ");
        return buf;
}

const char *default_mode_to_string(DefaultMode m) {
        if (m == DEFAULT_MODE_KEEP)
                return "keep";
        return switch_target_to_string((SwitchTarget) m);
}

DefaultMode default_mode_from_string(const char *s) {
        SwitchTarget t;

        if (streq_ptr(s, "keep"))
                return DEFAULT_MODE_KEEP;
        t = switch_target_from_string(s);
        return t < 0 ? _DEFAULT_MODE_INVALID : (DefaultMode) t;
}

bool default_mode_target(DefaultMode m, SwitchTarget *ret) {
        if (m < 0 || m >= (DefaultMode) _SWITCH_TARGET_MAX)
                return false;
        *ret = (SwitchTarget) m;
        return true;
}
