/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "gpu.h"
#include "sysfs.h"

/* Whether one of the GPU's functions is on nvidia while nvidia_drm runs
 * with modeset=1; then what that means for a switch, as a sentence for the
 * messages that need it, else "". */
const char *nvidia_modeset_note(const Sysfs *s, const Gpu *g);
