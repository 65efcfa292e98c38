/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "gpuswitch-bus.h"

/* The named errors of the D-Bus API (dbus/org.gpuswitch1.xml). */
#define GS_ERROR_NO_SUCH_GPU       GPUSWITCH_ERROR_PREFIX "NoSuchGpu"
#define GS_ERROR_GPU_IN_USE        GPUSWITCH_ERROR_PREFIX "GpuInUse"
#define GS_ERROR_BUSY              GPUSWITCH_ERROR_PREFIX "Busy"
#define GS_ERROR_GROUP_NOT_VIABLE  GPUSWITCH_ERROR_PREFIX "GroupNotViable"
#define GS_ERROR_SWITCH_FAILED     GPUSWITCH_ERROR_PREFIX "SwitchFailed"
#define GS_ERROR_TIMEOUT           GPUSWITCH_ERROR_PREFIX "Timeout"
#define GS_ERROR_REFUSED           GPUSWITCH_ERROR_PREFIX "Refused"
#define GS_ERROR_BAD_CONFIG        GPUSWITCH_ERROR_PREFIX "BadConfig"

/* gpuswitchctl's exit codes: the client contract in DESIGN.md. */
enum {
        GS_EXIT_OK = 0,
        GS_EXIT_FAILURE = 1,
        GS_EXIT_USAGE = 2,
        GS_EXIT_IN_USE = 3,
        GS_EXIT_NOT_AUTHORIZED = 4,
        GS_EXIT_NO_SUCH_GPU = 5,
        GS_EXIT_BUSY = 6,
};

typedef struct GsErrorInfo {
        const char *name;
        int errnum;     /* what sd_bus_error_get_errno() gives for it */
        int exit_code;  /* gpuswitchctl's exit code */
} GsErrorInfo;

/* The one table: every error the daemon sends or the client expects. */
extern const GsErrorInfo gs_errors[];
extern const size_t gs_errors_count;

/* Registers gs_errors with sd-bus, so errno and names map both ways. */
int gs_errors_register(void);

/* Exit code for an error name; GS_EXIT_FAILURE for names not in the table. */
int gs_error_exit_code(const char *name);

/* How many bytes of a caller's text to quote in an error, at most max, cut
 * at a whole UTF-8 character: "%.*s" with a plain byte limit can split one,
 * and a message that is not valid UTF-8 cannot be sent, so the caller would
 * get no reply at all. */
int gs_quote_len(const char *text, size_t max);
