/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "gpu.h"
#include "pci-address.h"

/* Sets DefaultMode= in the GPU's [Gpu DDDD:BB:SS] section of the file at
 * path (made when missing), keeping every other line and comment.  The new
 * text is parsed as the daemon would read it before it replaces the file,
 * in one rename(2): the file is never left broken or half written.  On
 * error *error_message names the file and what is wrong. */
int config_set_default_mode(const char *path, const PciAddress *slot, DefaultMode mode, char **error_message);
