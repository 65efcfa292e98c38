/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* While armed, any file made, opened for writing, renamed, linked or
 * removed outside the allowed folders aborts the fuzzer, naming the call
 * and the path, whoever in the process does it (the code under test, glib,
 * libsystemd).  A path with a ".." element is outside whatever its prefix.
 * The libc calls are wrapped by name in this executable, so this holds for
 * the libraries' calls through the PLT; libc's calls to itself (fopen's own
 * open) are seen at the outer call. */
void guard_allow(const char *folder);
void guard_forget(void);
void guard_arm(bool armed);

/* A folder of our own for the run: under $TMPDIR (or /dev/shm, /tmp), removed with
 * everything in it by guard_remove_tree(). */
char *guard_make_temp_dir(const char *name);
void guard_remove_tree(const char *path);
