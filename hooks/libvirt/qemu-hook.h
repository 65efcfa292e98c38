/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The hook (see qemu-hook.c) with argv as libvirtd passes it; sysfs_root
 * and config_path are where it reads, when gpuswitchd cannot be asked,
 * which slots it may manage: /sys and gpuswitch.conf, a tree of their own
 * in the tests.  Returns the exit status. */
int qemu_hook_main(int argc, char *argv[], const char *sysfs_root, const char *config_path);
