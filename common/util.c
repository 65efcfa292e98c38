/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>

int gs_log_max_level = LOG_LEVEL_INFO;

int read_one_line_file(const char *path, char **ret) {
        _cleanup_fclose_ FILE *f = NULL;
        char buf[4096];

        f = fopen(path, "re");
        if (!f)
                return -errno;
        if (!fgets(buf, sizeof buf, f)) {
                if (ferror(f))
                        return errno > 0 ? -errno : -EIO;
                buf[0] = 0;
        }
        buf[strcspn(buf, "\n")] = 0;
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

int write_string_file(const char *path, const char *value) {
        _cleanup_close_ int fd = -1;
        size_t n = strlen(value);
        ssize_t k;

        fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        k = write(fd, value, n);
        if (k < 0)
                return -errno;
        if ((size_t) k != n)
                return -EIO;
        return 0;
}

int readlink_basename(const char *path, char **ret) {
        char buf[PATH_MAX];
        ssize_t n;
        const char *b;

        n = readlink(path, buf, sizeof buf - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        b = strrchr(buf, '/');
        *ret = strdup(b ? b + 1 : buf);
        return *ret ? 0 : -ENOMEM;
}

static void log_va(int level, int err, const char *fmt, va_list ap) _printf_(3, 0);
static void log_va(int level, int err, const char *fmt, va_list ap) {
        static int journal = -1;
        int saved = errno;

        if (level > gs_log_max_level)
                return;
        if (journal < 0)
                journal = getenv("JOURNAL_STREAM") != NULL;
        if (journal)
                fprintf(stderr, "<%d>", level);
        vfprintf(stderr, fmt, ap);
        if (err)
                fprintf(stderr, ": %s", strerror(err));
        fputc('\n', stderr);
        errno = saved;
}

void gs_log(int level, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        log_va(level, 0, fmt, ap);
        va_end(ap);
}

int gs_log_errno(int level, int err, const char *fmt, ...) {
        va_list ap;

        err = err < 0 ? -err : err;
        va_start(ap, fmt);
        log_va(level, err, fmt, ap);
        va_end(ap);
        return -err;
}
