/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-event.h>

#include "fake-sysfs.h"
#include "manager.h"

/* Hot unplug and replug of the simulated kernel's GPU slot (0000:01:00),
 * told to the daemon as the kernel tells it: its uevent messages, fed to
 * uevent_handle(), the function the netlink socket's messages go to.
 *   "remove": the slot's functions leave the tree (after the write under
 *             way), then one remove@ message per function;
 *   "add":    they are back as at start (host drivers, no override), then
 *             one add@ message per function, function 0 first.
 * -EINVAL for any other command. */
typedef void (*FakeHotplugAdded)(FakeKernel *k);

/* added (optional) dresses the tree that is back before the messages go
 * (a DRM node, say). */
int fake_hotplug_command(FakeKernel *k, Manager *m, const char *command, FakeHotplugAdded added);

/* Commands, one a line, read from fd on m's loop until its end of file
 * (then the loop goes on without it).  Unknown lines are logged.  -EPERM
 * when fd cannot be watched (a file, /dev/null). */
int fake_hotplug_watch(FakeKernel *k, Manager *m, int fd, FakeHotplugAdded added);
