/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <linux/netlink.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Whether a message on a NETLINK_KOBJECT_UEVENT socket came from the
 * kernel: its sender's port is 0.  Any process may send to a uevent
 * socket's port (a unicast needs no privilege), so one that is not the
 * kernel could make up bind and unbind events; udev and sd-device drop
 * them the same way. */
typedef struct Manager Manager;

/* Follows bind/unbind of managed functions, whoever does them: the GPUs
 * are read again (managed_gpu_refresh()) after a burst of uevents; and PCI
 * functions added and removed: the GPUs to manage are looked at again
 * (manager_hotplug()) after the burst. */
int uevent_monitor_start(Manager *m);

/* One message as the kernel's netlink group carries it
 * ("ACTION@DEVPATH\0KEY=VALUE\0..."), len bytes; on_uevent() calls it for
 * each message from the kernel, the simulated kernel of the tests too. */
void uevent_handle(Manager *m, const char *buf, size_t len);

bool uevent_sender_is_kernel(const struct sockaddr_nl *sender, socklen_t len);

/* Reads one message into buf (NUL-terminated) and returns its length, or
 * 0 when it was dropped for not coming from the kernel, or -errno
 * (-EAGAIN when there is none). */
ssize_t uevent_receive(int fd, char *buf, size_t size);
