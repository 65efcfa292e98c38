/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "pci-address.h"
#include "sysfs.h"

/* Whether gpuswitchd would manage slot, for when it cannot be asked: the
 * config's Gpus= (or what Gpus=auto finds in sysfs) and their Companions=,
 * by the daemon's own parser and rules.  With a config that does not
 * parse, every slot whose function 0 is a display controller counts: the
 * daemon's own answer is then BadConfig, and a VM must not take a GPU it
 * may manage while nobody can tell.  Reads only. */
bool hook_slot_may_be_managed(const Sysfs *s, const char *config_path, const PciAddress *slot);
