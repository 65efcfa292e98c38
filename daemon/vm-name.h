/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The libvirt domain a process belongs to, from its cgroup: libvirt puts a
 * domain's QEMU in the systemd scope of its machine,
 * "0::/machine.slice/machine-qemu\x2d1\x2dwin11.scope/libvirt/emulator",
 * the machine named "qemu-ID-NAME" (NAME as libvirt shortened it for
 * machined) and escaped by systemd's unit-name rules.  line is one line of
 * /proc/PID/cgroup without its newline; true with NAME in buf (printable
 * ASCII only) when it is such a line. */
bool vm_name_from_cgroup(const char *line, char *buf, size_t len);
