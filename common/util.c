/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "util.h"

#include <fcntl.h>
#include <sys/stat.h>
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

int write_file_atomic(const char *path, const char *data, size_t len) {
        char tmp[PATH_MAX];
        _cleanup_close_ int fd = -1;
        int r;

        if ((size_t) snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= sizeof tmp)
                return -ENAMETOOLONG;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        /* mkostemp() makes 0600, and the daemon's UMask= is 0077: what it
         * writes for others (its config, udev rules) is world-readable */
        if (fchmod(fd, 0644) < 0 || write(fd, data, len) != (ssize_t) len || fsync(fd) < 0) {
                r = errno ? -errno : -EIO;
                (void) unlink(tmp);
                return r;
        }
        if (rename(tmp, path) < 0) {
                r = -errno;
                (void) unlink(tmp);
                return r;
        }
        return 0;
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
        _cleanup_free_ char *msg = NULL;
        int saved = errno;

        if (level > gs_log_max_level)
                return;
        if (journal < 0)
                journal = getenv("JOURNAL_STREAM") != NULL;
        /* One fprintf, one write on the unbuffered stderr: a line is one
         * wakeup of journald, and the worker's lines never interleave with
         * the loop's. */
        if (vasprintf(&msg, fmt, ap) >= 0) {
                char prefix[8] = "";

                if (journal)
                        snprintf(prefix, sizeof prefix, "<%d>", level);
                fprintf(stderr, "%s%s%s%s\n", prefix, msg, err ? ": " : "", err ? strerror(err) : "");
        }
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
