/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "errors.h"
#include "testlib.h"

int main(void) {
        CHECK_INT(gs_error_exit_code(GS_ERROR_NO_SUCH_GPU), 5);
        CHECK_INT(gs_error_exit_code(GS_ERROR_GPU_IN_USE), 3);
        CHECK_INT(gs_error_exit_code(GS_ERROR_BUSY), 6);
        CHECK_INT(gs_error_exit_code(GS_ERROR_GROUP_NOT_VIABLE), 1);
        CHECK_INT(gs_error_exit_code(GS_ERROR_SWITCH_FAILED), 1);
        CHECK_INT(gs_error_exit_code(GS_ERROR_TIMEOUT), 1);
        CHECK_INT(gs_error_exit_code(GS_ERROR_REFUSED), 1);
        CHECK_INT(gs_error_exit_code(SD_BUS_ERROR_ACCESS_DENIED), 4);
        CHECK_INT(gs_error_exit_code(SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED), 4);
        CHECK_INT(gs_error_exit_code(SD_BUS_ERROR_INVALID_ARGS), 2);
        CHECK_INT(gs_error_exit_code("org.example.Nope"), 1);
        CHECK_INT(gs_error_exit_code(NULL), 1);

        /* names unique; ours map to their errno (the other way sd-bus's own
         * names come first, so the daemon always names its errors) */
        for (size_t i = 0; i < gs_errors_count; i++)
                for (size_t j = i + 1; j < gs_errors_count; j++)
                        CHECK(strcmp(gs_errors[i].name, gs_errors[j].name) != 0);
        CHECK_INT(gs_errors_register(), 1);
        CHECK_INT(gs_errors_register(), 0);
        for (size_t i = 0; i < gs_errors_count; i++) {
                sd_bus_error e = SD_BUS_ERROR_NULL;

                if (strncmp(gs_errors[i].name, GPUSWITCH_BUS_NAME ".", strlen(GPUSWITCH_BUS_NAME ".")) != 0)
                        continue;
                sd_bus_error_set(&e, gs_errors[i].name, "x");
                CHECK_INT(sd_bus_error_get_errno(&e), gs_errors[i].errnum);
                sd_bus_error_free(&e);
        }

        /* quoting a caller's text: never half a UTF-8 character */
        CHECK_INT(gs_quote_len("vfio", 32), 4);
        CHECK_INT(gs_quote_len("abcdef", 3), 3);
        CHECK_INT(gs_quote_len("ab\xc3\xa9", 3), 2);      /* "abé": é is 2 bytes */
        CHECK_INT(gs_quote_len("ab\xc3\xa9", 4), 4);
        CHECK_INT(gs_quote_len("a\xe2\x82\xac", 2), 1);  /* "a€": € is 3 bytes */
        CHECK_INT(gs_quote_len("a\xe2\x82\xac", 3), 1);
        CHECK_INT(gs_quote_len("\xe2\x82\xac", 0), 0);
        TEST_MAIN_END();
}
