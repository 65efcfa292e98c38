/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_closedir_ _cleanup_(closedirp)
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _unused_ __attribute__((unused))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Hands ownership over: the variable is left empty for its cleanup. */
#define TAKE_PTR(p) ({ __typeof__(p) _p = (p); (p) = NULL; _p; })
#define TAKE_FD(fd) ({ int _fd = (fd); (fd) = -1; _fd; })

static inline void freep(void *p) { free(*(void **) p); }
static inline void closep(int *fd) { if (*fd >= 0) close(*fd); }
static inline void fclosep(FILE **f) { if (*f) fclose(*f); }
static inline void closedirp(DIR **d) { if (*d) closedir(*d); }

static inline bool streq(const char *a, const char *b) { return strcmp(a, b) == 0; }
static inline bool streq_ptr(const char *a, const char *b) {
        return (!a && !b) || (a && b && streq(a, b));
}
static inline const char *strempty(const char *s) { return s ? s : ""; }
static inline bool isempty(const char *s) { return !s || !*s; }

/* One line of a small file (sysfs attribute), without its newline. */
int read_one_line_file(const char *path, char **ret);
/* Writes value in one write(2), as sysfs wants; returns 0 or -errno. */
int write_string_file(const char *path, const char *value);
/* Replaces path with data, mode 0644: written and fsync()ed next to it
 * under a name "PATH.XXXXXX", then renamed over it, so that a reader sees
 * the old file or the new, never part of one (and a program that reads
 * only "*.conf" or "*.rules" never the temporary one).  0 or -errno. */
int write_file_atomic(const char *path, const char *data, size_t len);
/* The last path element of a symlink's target ("…/drivers/vfio-pci" -> "vfio-pci");
 * -ENOENT if there is no link. */
int readlink_basename(const char *path, char **ret);

/* Logging: to stderr, with a syslog priority prefix when stderr is the journal. */
enum { LOG_LEVEL_ERR = 3, LOG_LEVEL_WARNING = 4, LOG_LEVEL_NOTICE = 5, LOG_LEVEL_INFO = 6, LOG_LEVEL_DEBUG = 7 };
extern int gs_log_max_level;
void gs_log(int level, const char *fmt, ...) _printf_(2, 3);
/* Logs and returns -abs(err), so handlers can "return log_error_errno(r, ...)". */
int gs_log_errno(int level, int err, const char *fmt, ...) _printf_(3, 4);
#define log_error(...) gs_log(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warning(...) gs_log(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_notice(...) gs_log(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_info(...) gs_log(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) gs_log(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_error_errno(e, ...) gs_log_errno(LOG_LEVEL_ERR, e, __VA_ARGS__)
#define log_warning_errno(e, ...) gs_log_errno(LOG_LEVEL_WARNING, e, __VA_ARGS__)
#define log_debug_errno(e, ...) gs_log_errno(LOG_LEVEL_DEBUG, e, __VA_ARGS__)
