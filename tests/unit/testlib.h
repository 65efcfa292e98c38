/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Assertions for the unit tests: each failure says where and what, and the
 * test exits non-zero at its end. */
#pragma once

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures;

#define CHECK(cond) do {                                                                        \
        if (!(cond)) {                                                                          \
                fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);        \
                test_failures++;                                                                \
        }                                                                                       \
} while (0)

#define CHECK_INT(a, b) do {                                                                    \
        long long _a = (long long) (a), _b = (long long) (b);                                   \
        if (_a != _b) {                                                                         \
                fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, \
                        #a, _a, #b, _b);                                                        \
                test_failures++;                                                                \
        }                                                                                       \
} while (0)

#define CHECK_STR(a, b) do {                                                                    \
        const char *_a = (a), *_b = (b);                                                        \
        if (!_a || !_b || strcmp(_a, _b) != 0) {                                                \
                fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__,   \
                        #a, _a ? _a : "(null)", _b ? _b : "(null)");                            \
                test_failures++;                                                                \
        }                                                                                       \
} while (0)

#define CHECK_CONTAINS(hay, needle) do {                                                        \
        const char *_h = (hay), *_n = (needle);                                                 \
        if (!_h || !strstr(_h, _n)) {                                                           \
                fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,  \
                        _h ? _h : "(null)", _n);                                                \
                test_failures++;                                                                \
        }                                                                                       \
} while (0)

#define TEST_MAIN_END() do {                                                                    \
        if (test_failures)                                                                      \
                fprintf(stderr, "%d check(s) failed\n", test_failures);                         \
        return test_failures ? EXIT_FAILURE : EXIT_SUCCESS;                                     \
} while (0)
