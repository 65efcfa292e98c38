/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "pci-address.h"
#include "util.h"

/* What went wrong in a switch, as the engine knows it.  The bus layer
 * turns the kind into a named error (bus-errors.c); the message is a whole
 * sentence for the caller, the rest is for the logs and the tests. */
typedef enum SwitchErrorKind {
        SWITCH_ERROR_NONE,
        SWITCH_ERROR_INVALID,           /* a request the engine cannot carry out as asked */
        SWITCH_ERROR_REFUSED,           /* the boot VGA device, unless allowed */
        SWITCH_ERROR_GROUP_NOT_VIABLE,  /* the IOMMU group holds a device outside the GPU on a host driver */
        SWITCH_ERROR_IN_USE,            /* processes hold the GPU open */
        SWITCH_ERROR_TIMEOUT,           /* a service would not stop, a kernel write would not return */
        SWITCH_ERROR_FAILED,            /* a step failed; rolled back as far as the message says */
        _SWITCH_ERROR_KIND_MAX,
} SwitchErrorKind;

/* The steps a switch is made of, in the order they may run (engine.c
 * declares which run for which switch). */
typedef enum SwitchStep {
        SWITCH_STEP_PLAN,
        SWITCH_STEP_STOP_SERVICES,
        SWITCH_STEP_CHECK_HOLDERS,
        SWITCH_STEP_WRITE_RECORD,
        SWITCH_STEP_REBIND,
        SWITCH_STEP_RESTORE,            /* crash recovery: every function back as the record says */
        SWITCH_STEP_CLEAR_RECORD,
        SWITCH_STEP_START_SERVICES,
        _SWITCH_STEP_MAX,
        _SWITCH_STEP_INVALID = -1,
} SwitchStep;

typedef struct SwitchError {
        SwitchErrorKind kind;
        SwitchStep step;
        char function[PCI_FUNCTION_STRLEN];  /* "" when no one function failed */
        int errnum;                          /* positive errno */
        char *message;
} SwitchError;

#define SWITCH_ERROR_INIT ((SwitchError) { .step = _SWITCH_STEP_INVALID })

const char *switch_step_to_string(SwitchStep s);
const char *switch_error_kind_to_string(SwitchErrorKind k);

/* Sets every field (the first error wins: a later call on a set error
 * changes nothing) and returns -errnum, so a failing step can
 * "return switch_error_set(...)". */
int switch_error_set(SwitchError *e, SwitchErrorKind kind, SwitchStep step, const char *function, int errnum,
                     const char *fmt, ...) _printf_(6, 7);
static inline bool switch_error_is_set(const SwitchError *e) { return e->kind != SWITCH_ERROR_NONE; }
void switch_error_done(SwitchError *e);
