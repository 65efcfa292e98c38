/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "output.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool output_colors(void) {
        static int cached = -1;

        if (cached < 0)
                cached = isatty(STDOUT_FILENO) && !getenv("NO_COLOR") &&
                         !(getenv("TERM") && strcmp(getenv("TERM"), "dumb") == 0);
        return cached;
}

const char *ansi_bold(void) { return output_colors() ? "\033[1m" : ""; }
const char *ansi_green(void) { return output_colors() ? "\033[32m" : ""; }
const char *ansi_yellow(void) { return output_colors() ? "\033[33m" : ""; }
const char *ansi_normal(void) { return output_colors() ? "\033[0m" : ""; }

struct Table {
        size_t n_columns;
        GPtrArray *cells;       /* headers first, then the rows, row by row */
};

Table *table_new(size_t n_columns, ...) {
        Table *t = g_new0(Table, 1);
        va_list ap;

        t->n_columns = n_columns;
        t->cells = g_ptr_array_new_with_free_func(g_free);
        va_start(ap, n_columns);
        for (size_t i = 0; i < n_columns; i++)
                g_ptr_array_add(t->cells, g_strdup(va_arg(ap, const char *)));
        va_end(ap);
        return t;
}

void table_free(Table *t) {
        if (!t)
                return;
        g_ptr_array_unref(t->cells);
        g_free(t);
}

int table_add_row(Table *t, ...) {
        va_list ap;

        va_start(ap, t);
        for (size_t i = 0; i < t->n_columns; i++) {
                const char *s = va_arg(ap, const char *);
                g_ptr_array_add(t->cells, g_strdup(s && *s ? s : "-"));
        }
        va_end(ap);
        return 0;
}

size_t table_rows(const Table *t) {
        return t->cells->len / t->n_columns - 1;
}

void table_print(const Table *t, FILE *f) {
        g_autofree size_t *width = g_new0(size_t, t->n_columns);

        for (size_t i = 0; i < t->cells->len; i++) {
                size_t w = g_utf8_strlen(g_ptr_array_index(t->cells, i), -1);
                if (w > width[i % t->n_columns])
                        width[i % t->n_columns] = w;
        }
        for (size_t i = 0; i < t->cells->len; i++) {
                size_t col = i % t->n_columns;
                const char *cell = g_ptr_array_index(t->cells, i);
                bool last = col == t->n_columns - 1;

                if (i < t->n_columns)
                        fputs(ansi_bold(), f);
                fputs(cell, f);
                if (i < t->n_columns)
                        fputs(ansi_normal(), f);
                if (last)
                        fputc('\n', f);
                else
                        fprintf(f, "%*s", (int) (width[col] - g_utf8_strlen(cell, -1) + 2), "");
        }
}
