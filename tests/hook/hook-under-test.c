/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The libvirt hook with the sysfs tree and the config it reads, when
 * gpuswitchd cannot be asked, taken from HOOK_SYSFS and HOOK_CONFIG:
 * test-libvirt-hook.sh gives it a machine of its own.  The installed hook
 * (hooks/libvirt/main.c) reads /sys and gpuswitch.conf. */
#include <stdlib.h>

#include "qemu-hook.h"

int main(int argc, char *argv[]) {
        const char *sysfs = getenv("HOOK_SYSFS"), *config = getenv("HOOK_CONFIG");

        return qemu_hook_main(argc, argv, sysfs ? sysfs : "/nonexistent", config ? config : "/nonexistent");
}
