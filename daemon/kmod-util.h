/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Loads a module (by name or alias) and what it depends on, honouring
 * modprobe.d: insmod semantics, not a modprobe fork. */
int kmod_load_module(const char *name);

/* The first driver module for a modalias, blacklist applied, or -ENOENT. */
int kmod_module_for_modalias(const char *modalias, char **ret);
