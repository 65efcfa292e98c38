/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "gpu.h"
#include "sysfs.h"

/* The services that keep every NVIDIA GPU's nodes open, NULL-terminated:
 * stopped for a switch to vfio unless StopServices= says otherwise. */
extern const char *const nvidia_services[3];

/* Whether nvidia_drm runs with modeset=1 (its parameter reads Y or 1). */
bool nvidia_drm_modeset(const Sysfs *s);

/* Whether one of the GPU's functions is on nvidia while nvidia_drm runs
 * with modeset=1; then what that means for a switch, as a sentence for the
 * messages that need it, else "". */
const char *nvidia_modeset_note(const Sysfs *s, const Gpu *g);
