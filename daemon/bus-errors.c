/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus-errors.h"

#include "errors.h"

static const char *const kind_to_name[_SWITCH_ERROR_KIND_MAX] = {
        [SWITCH_ERROR_INVALID] = SD_BUS_ERROR_INVALID_ARGS,
        [SWITCH_ERROR_REFUSED] = GS_ERROR_REFUSED,
        [SWITCH_ERROR_GROUP_NOT_VIABLE] = GS_ERROR_GROUP_NOT_VIABLE,
        [SWITCH_ERROR_IN_USE] = GS_ERROR_GPU_IN_USE,
        [SWITCH_ERROR_TIMEOUT] = GS_ERROR_TIMEOUT,
        [SWITCH_ERROR_FAILED] = GS_ERROR_SWITCH_FAILED,
};

int bus_error_from_switch_error(sd_bus_error *error, const SwitchError *e) {
        const char *name = e->kind < _SWITCH_ERROR_KIND_MAX ? kind_to_name[e->kind] : NULL;

        return sd_bus_error_set(error, name ? name : GS_ERROR_SWITCH_FAILED,
                                e->message ? e->message : "the switch failed");
}
