/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#include "holders.h"

typedef struct ManagedGpu ManagedGpu;
typedef struct VmWatch VmWatch;

/* Which VM holds a managed GPU, for its VirtualMachine property: while a
 * function is on vfio-pci, the processes holding its VFIO group or device
 * nodes are looked for on the worker pool; the one found is pinned with a
 * pidfd and the watch looks again when it exits (a VM killed while nothing
 * gave the GPU back).  No event tells when a VM opens the group (the
 * daemon's private /dev has no node to watch), so until one is found it
 * looks again after 1 s, then 2, 4 ... up to a minute, and at once after
 * every change of the GPU's functions (a switch, a rebind by others). */
int vm_watch_new(ManagedGpu *g, VmWatch **ret);
/* Also while a look is under way on a worker (its GPU left the bus): the
 * look is dropped when it comes back. */
void vm_watch_free(VmWatch *w);

/* The GPU's functions changed: look soon if one is on vfio-pci, else
 * forget the VM. */
void vm_watch_state_changed(VmWatch *w);

/* A scan of the GPU's holders made for someone else (ListHolders: an
 * applet opening its menu, gpuswitchctl holders) found these: with no VM
 * known, one holding a VFIO node is taken, so that a VM started since the
 * last look is named without a scan of its own. */
void vm_watch_holders_scanned(VmWatch *w, const Holder *h, size_t n);

/* The VM: its libvirt domain or QEMU's -name, else its command (no PID: a
 * property is the same for every caller, and other users' processes are
 * shown only to those allowed to switch); "" for none. */
const char *vm_watch_name(const VmWatch *w);
