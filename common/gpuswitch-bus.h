/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* The names of the D-Bus API, for the daemon, gpuswitchctl, the benchmarks,
 * the fuzzers and the tests alike.  dbus/org.gpuswitch1.xml is the API's
 * reference (test-bus-api checks the daemon's vtables against it); C code
 * spells no name of it anywhere but here (test-bus-names). */
#define GPUSWITCH_BUS_NAME "org.gpuswitch1"
#define GPUSWITCH_MANAGER_PATH "/org/gpuswitch1"
#define GPUSWITCH_GPU_PATH_PREFIX GPUSWITCH_MANAGER_PATH "/gpu"
#define GPUSWITCH_MANAGER_INTERFACE GPUSWITCH_BUS_NAME ".Manager"
#define GPUSWITCH_GPU_INTERFACE GPUSWITCH_BUS_NAME ".Gpu"
/* errors.h names each error below it */
#define GPUSWITCH_ERROR_PREFIX GPUSWITCH_BUS_NAME ".Error."

/* Switch(s gpu, s mode, t flags) */
#define SWITCH_FLAG_TERMINATE_HOLDERS UINT64_C(0x1)
/* leave the holders that only lose the device running; refused when one blocks */
#define SWITCH_FLAG_KEEP_HOLDERS UINT64_C(0x2)
#define SWITCH_FLAGS_ALL (SWITCH_FLAG_TERMINATE_HOLDERS | SWITCH_FLAG_KEEP_HOLDERS)

/* polkit/org.gpuswitch1.policy */
#define POLKIT_ACTION_SWITCH GPUSWITCH_BUS_NAME ".switch"
#define POLKIT_ACTION_TERMINATE_HOLDERS GPUSWITCH_BUS_NAME ".terminate-holders"
#define POLKIT_ACTION_CONFIGURE GPUSWITCH_BUS_NAME ".configure"

/* ListHolders(s gpu) -> a(uuss): a process of another user, to a caller
 * that may not see it (not root, and not allowed to switch the GPU), is a
 * row (0, HOLDER_HIDDEN_UID, "", ""), one per such process. */
#define HOLDER_HIDDEN_UID UINT32_MAX
#define HOLDER_IS_HIDDEN(pid, uid) ((pid) == 0 && (uid) == HOLDER_HIDDEN_UID)
