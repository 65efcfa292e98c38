/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#include "config.h"
#include "gpu.h"
#include "pci-address.h"
#include "sysfs.h"

/* What the daemon decides about a GPU from its config section and sysfs
 * before it manages it.  gpuswitchctl doctor links these too, so that it
 * tells what the daemon would do, not its own idea of it. */

/* Gpus=auto: the slots of every NVIDIA display controller that is not the
 * boot VGA device, in the order sysfs lists them. */
int gpus_discover_auto(const Sysfs *s, PciAddress **ret, size_t *ret_n);

/* The slots of the GPUs to manage: Gpus= as listed, or those Gpus=auto
 * finds. */
int gpus_to_manage(const Sysfs *s, const Config *c, PciAddress **ret, size_t *ret_n);

/* Companions= of each managed GPU (slots) against the machine: a
 * companion that is present must be no bridge (bridges stay on their
 * driver; name the devices below one) and no function of another managed
 * GPU.  -EINVAL with *error_message in the parser's words (file, section,
 * key) otherwise.  A companion that is not present is no mistake: it moves
 * when it is there. */
int gpus_check_companions(const Sysfs *s, const Config *c, const PciAddress *slots, size_t n_slots,
                          char **error_message);

/* The host driver of f when its config and its state tell it: HostDriver=
 * (configured, display functions only), else the driver bound now unless
 * it is vfio-pci.  1 with *ret set when they do, 0 when only the module
 * lookup of host_driver_resolve() can tell. */
int host_driver_from_state(const PciFunction *f, const char *configured, char **ret);

/* The units a switch to vfio stops and the switch back starts again:
 * StopServices= of gc, or for a GPU with a function whose host driver is
 * nvidia the NVIDIA services (nvidia_services[]); NULL for none.  state's
 * host drivers must be filled in. */
char **gpu_stop_services(const Gpu *state, const GpuConfig *gc);
