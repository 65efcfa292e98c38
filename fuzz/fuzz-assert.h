/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdio.h>
#include <stdlib.h>

/* A property of the code under test that must hold: libFuzzer keeps the
 * input that breaks it (abort() is a crash to it). */
#define ASSERT(cond) do {                                                       \
        if (!(cond)) {                                                          \
                fprintf(stderr, "%s:%d: %s does not hold\n", __FILE__, __LINE__, #cond); \
                abort();                                                        \
        }                                                                       \
} while (0)
