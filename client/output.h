/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdio.h>

/* Colour and bold only on a terminal, and not with NO_COLOR set. */
bool output_colors(void);
const char *ansi_bold(void);
const char *ansi_green(void);
const char *ansi_yellow(void);
const char *ansi_normal(void);

/* A table printed with aligned columns: cells are copied. */
typedef struct Table Table;
Table *table_new(size_t n_columns, ...);   /* the headers */
void table_free(Table *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Table, table_free)
int table_add_row(Table *t, ...);           /* n_columns strings; NULL prints "-" */
void table_print(const Table *t, FILE *f);
size_t table_rows(const Table *t);
