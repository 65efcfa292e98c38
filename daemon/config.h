/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "gpu.h"
#include "pci-address.h"
#include "util.h"

#define GPUSWITCH_CONFIG_FILE "/etc/gpuswitch/gpuswitch.conf"

/* A [Gpu 0000:0a:00] section. */
typedef struct GpuConfig {
        PciAddress slot;
        char address[PCI_SLOT_STRLEN];
        DefaultMode default_mode;
        char *host_driver;        /* HostDriver=, for the display function(s); NULL: detect */
        bool allow_boot_vga;      /* AllowBootVga= */
        char **stop_services;     /* StopServices=, NULL-terminated; NULL: the default */
        PciAddress *companions;   /* Companions=: functions outside the slot that move with it */
        size_t n_companions;
        bool desktop_access;      /* DesktopAccess=: false tags its DRM nodes for the desktop to leave alone */
} GpuConfig;

typedef struct Config {
        bool gpus_auto;           /* Gpus=auto: NVIDIA display controllers but the boot VGA */
        PciAddress *gpus;         /* Gpus=0000:0a:00;... */
        size_t n_gpus;
        GpuConfig *sections;
        size_t n_sections;
        unsigned step_timeout_sec; /* StepTimeoutSec=: a kernel write taking longer is reported */
        char *origin;             /* the file, for messages about it */
} Config;

#define DEFAULT_STEP_TIMEOUT_SEC 20

void config_free(Config *c);
static inline void config_freep(Config **c) { config_free(*c); }

/* Parses the INI text; origin names it in error messages.  On error
 * *error_message says what is wrong, naming the group and key. */
int config_parse(const char *data, size_t len, const char *origin, Config **ret, char **error_message);

/* Loads path; a missing file is the defaults (Gpus=auto). */
int config_load(const char *path, Config **ret, char **error_message);

/* The message of a mistake in the file found after parsing (the rules
 * that need sysfs, gpu-rules.c): "FILE: [Gpu ADDR]: KEY: ..." as the
 * parser's own. */
char *config_error_message(const Config *c, const GpuConfig *gc, const char *key, const char *fmt, ...)
        _printf_(4, 5);

/* The [Gpu ...] section for a slot, or NULL. */
const GpuConfig *config_find_gpu(const Config *c, const PciAddress *slot);
