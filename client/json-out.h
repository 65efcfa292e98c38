/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* The --json output: a document built value by value with json-glib's
 * JsonBuilder, json-glib being opened on first use, not linked.
 *
 * Every function does nothing on a NULL JsonOut, so a verb makes one only
 * with --json and calls the others either way:
 *
 *         g_autoptr(JsonOut) j = arg_json ? json_out_new() : NULL;
 *
 *         json_out_begin_object(j);
 *         json_out_member(j, "gpu");
 *         json_out_string(j, address);
 *         json_out_end_object(j);
 *         json_out_print(j, stdout, true);
 */
typedef struct JsonOut JsonOut;

/* Opens json-glib, once: 0, or -ELIBACC when it cannot be opened or lacks a
 * function, with *ret_error (when not NULL) saying why (dlerror()'s words,
 * valid for the life of the process). */
int json_out_load(const char **ret_error);

/* NULL when json-glib cannot be opened: json_out_load() says why. */
JsonOut *json_out_new(void);
void json_out_free(JsonOut *o);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(JsonOut, json_out_free)

void json_out_begin_object(JsonOut *o);
void json_out_end_object(JsonOut *o);
void json_out_begin_array(JsonOut *o);
void json_out_end_array(JsonOut *o);
/* The name of the next value in the object being built. */
void json_out_member(JsonOut *o, const char *name);
void json_out_string(JsonOut *o, const char *s);   /* NULL: null */
void json_out_int(JsonOut *o, int64_t v);
void json_out_bool(JsonOut *o, bool v);
void json_out_null(JsonOut *o);

/* The document as text (g_free() it): pretty is json-glib's generator with
 * an indent of 2, else one line.  NULL for a NULL JsonOut, and while an
 * object or array is still open. */
char *json_out_to_string(JsonOut *o, bool pretty);
/* The text and a newline on f: 0, -EINVAL while the document is not
 * complete, -EIO when f fails.  Nothing, and 0, for a NULL JsonOut. */
int json_out_print(JsonOut *o, FILE *f, bool pretty);
