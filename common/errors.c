/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "errors.h"

#include <errno.h>
#include <string.h>

const GsErrorInfo gs_errors[] = {
        { GS_ERROR_NO_SUCH_GPU,      ENODEV,       GS_EXIT_NO_SUCH_GPU },
        { GS_ERROR_GPU_IN_USE,       EADDRINUSE,   GS_EXIT_IN_USE },
        { GS_ERROR_BUSY,             EBUSY,        GS_EXIT_BUSY },
        { GS_ERROR_GROUP_NOT_VIABLE, EXDEV,        GS_EXIT_FAILURE },
        { GS_ERROR_SWITCH_FAILED,    EIO,          GS_EXIT_FAILURE },
        { GS_ERROR_TIMEOUT,          ETIMEDOUT,    GS_EXIT_FAILURE },
        { GS_ERROR_REFUSED,          EPERM,        GS_EXIT_FAILURE },
        { GS_ERROR_BAD_CONFIG,       EBADMSG,      GS_EXIT_FAILURE },
        /* Errors of the bus itself that the client turns into exit codes. */
        { SD_BUS_ERROR_ACCESS_DENIED,                       EACCES,  GS_EXIT_NOT_AUTHORIZED },
        { SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,  EACCES,  GS_EXIT_NOT_AUTHORIZED },
        { SD_BUS_ERROR_AUTH_FAILED,                         EACCES,  GS_EXIT_NOT_AUTHORIZED },
        { SD_BUS_ERROR_INVALID_ARGS,                        EINVAL,  GS_EXIT_USAGE },
};
const size_t gs_errors_count = sizeof(gs_errors) / sizeof(gs_errors[0]);

/* The first eight entries are ours; the bus's own are mapped by sd-bus already. */
#define GS_OWN_ERRORS 8

int gs_errors_register(void) {
        static sd_bus_error_map map[GS_OWN_ERRORS + 1];
        static int registered;

        if (registered)
                return 0;
        for (size_t i = 0; i < GS_OWN_ERRORS; i++)
                map[i] = (sd_bus_error_map) SD_BUS_ERROR_MAP(gs_errors[i].name, gs_errors[i].errnum);
        map[GS_OWN_ERRORS] = (sd_bus_error_map) SD_BUS_ERROR_MAP_END;
        registered = 1;
        return sd_bus_error_add_map(map);
}

int gs_error_exit_code(const char *name) {
        if (!name)
                return GS_EXIT_FAILURE;
        for (size_t i = 0; i < gs_errors_count; i++)
                if (strcmp(gs_errors[i].name, name) == 0)
                        return gs_errors[i].exit_code;
        return GS_EXIT_FAILURE;
}

int gs_quote_len(const char *text, size_t max) {
        size_t n = strnlen(text, max);

        /* a continuation byte (10xxxxxx) right after the cut: back to its lead byte */
        if (n == max)
                while (n > 0 && ((unsigned char) text[n] & 0xc0) == 0x80)
                        n--;
        return (int) n;
}
