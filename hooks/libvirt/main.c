/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"
#include "qemu-hook.h"

int main(int argc, char *argv[]) {
        return qemu_hook_main(argc, argv, "/sys", GPUSWITCH_CONFIG_FILE);
}
