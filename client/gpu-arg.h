/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "pci-address.h"

/* The GPU argument of a verb: "0000:0a:00", "0a:00" or a function
 * "0000:0a:00.1", normalized to the slot "0000:0a:00"; NULL or "" stays ""
 * (the daemon's only GPU).  -EINVAL for anything else. */
int gpu_arg_normalize(const char *arg, char ret[static PCI_SLOT_STRLEN]);

/* Whether arg is one of the space-separated words of modes ("vfio host"). */
bool mode_arg_in(const char *arg, const char *modes);

/* Switch()'s flags for --force (end the holders) and --keep-holders
 * (leave those that only lose the device running); with both, the daemon
 * ends only the holders that would block the unbind. */
uint64_t switch_flags_from_options(bool force, bool keep_holders);

/* Seconds for --timeout: a positive number up to a day; -EINVAL otherwise. */
int timeout_arg_parse(const char *arg, unsigned *ret_sec);

/* A short name for a PCI class code such as 0x030000: "VGA", "Audio"... */
const char *pci_class_name(unsigned long class_code);
int pci_class_parse(const char *s, unsigned long *ret);
