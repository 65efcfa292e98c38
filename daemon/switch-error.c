/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "switch-error.h"

#include <stdarg.h>

static const char *const step_table[_SWITCH_STEP_MAX] = {
        [SWITCH_STEP_PLAN] = "plan",
        [SWITCH_STEP_STOP_SERVICES] = "stop-services",
        [SWITCH_STEP_CHECK_HOLDERS] = "check-holders",
        [SWITCH_STEP_WRITE_RECORD] = "write-record",
        [SWITCH_STEP_REBIND] = "rebind",
        [SWITCH_STEP_RESTORE] = "restore",
        [SWITCH_STEP_CLEAR_RECORD] = "clear-record",
        [SWITCH_STEP_START_SERVICES] = "start-services",
};

static const char *const kind_table[_SWITCH_ERROR_KIND_MAX] = {
        [SWITCH_ERROR_NONE] = "none",
        [SWITCH_ERROR_INVALID] = "invalid",
        [SWITCH_ERROR_REFUSED] = "refused",
        [SWITCH_ERROR_GROUP_NOT_VIABLE] = "group-not-viable",
        [SWITCH_ERROR_IN_USE] = "in-use",
        [SWITCH_ERROR_TIMEOUT] = "timeout",
        [SWITCH_ERROR_FAILED] = "failed",
};

const char *switch_step_to_string(SwitchStep s) {
        return s >= 0 && s < _SWITCH_STEP_MAX ? step_table[s] : NULL;
}

const char *switch_error_kind_to_string(SwitchErrorKind k) {
        return k < _SWITCH_ERROR_KIND_MAX ? kind_table[k] : NULL;
}

int switch_error_set(SwitchError *e, SwitchErrorKind kind, SwitchStep step, const char *function, int errnum,
                     const char *fmt, ...) {
        va_list ap;

        errnum = errnum < 0 ? -errnum : errnum;
        if (errnum == 0)
                errnum = EIO;
        if (!e || switch_error_is_set(e))
                return -errnum;
        e->kind = kind;
        e->step = step;
        snprintf(e->function, sizeof e->function, "%s", strempty(function));
        e->errnum = errnum;
        va_start(ap, fmt);
        if (vasprintf(&e->message, fmt, ap) < 0)
                e->message = NULL;
        va_end(ap);
        return -errnum;
}

void switch_error_done(SwitchError *e) {
        free(e->message);
        *e = SWITCH_ERROR_INIT;
}
