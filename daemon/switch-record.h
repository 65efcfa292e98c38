/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "gpu.h"

/* A switch in progress, on disk (StateDirectory): written before the first
 * kernel write, removed when the switch is done or rolled back.  A daemon
 * that finds one at start was stopped mid-switch (a crash, SIGKILL, power
 * loss) and puts the GPU back as the record says it was. */
typedef struct SwitchRecord {
        SwitchTarget target;
        Gpu *original;      /* the functions' drivers, driver_override and power/control before the switch */
} SwitchRecord;

void switch_record_free(SwitchRecord *r);
static inline void switch_record_freep(SwitchRecord **r) { switch_record_free(*r); }

/* The folder: $GPUSWITCH_STATE_DIR, else the build's (/var/lib/gpuswitch). */
const char *switch_record_dir(void);

int switch_record_write(const char *dir, const Gpu *g, SwitchTarget target);
/* The GPUs with a record in dir, NULL-terminated (an empty list when the
 * folder does not exist). */
int switch_record_list(const char *dir, char ***ret);
int switch_record_remove(const char *dir, const char *address);
/* -ENOENT when there is none. */
int switch_record_read(const char *dir, const char *address, SwitchRecord **ret);
