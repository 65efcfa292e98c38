/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "kernel-log.h"

#include <fcntl.h>
#include <stdio.h>
#include <time.h>

#include <systemd/sd-journal.h>

#include "util.h"

#define KMSG_RECORD_MAX 8192    /* a read of /dev/kmsg shorter than a record fails with EINVAL */
#define LINES_KEPT 8
#define LINE_MAX_BYTES 240
#define JOURNAL_WAITS 10
#define JOURNAL_WAIT_USEC (100 * 1000)

struct KernelLog {
        int fd;
        int error;              /* why fd is -1 */
        bool journal;           /* without /dev/kmsg: the kernel's lines in the journal */
        uint64_t since;         /* CLOCK_REALTIME, usec */
};

static uint64_t now_realtime_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

int kernel_log_begin(const Sysfs *s, KernelLog **ret) {
        KernelLog *l = calloc(1, sizeof *l);

        if (!l)
                return -ENOMEM;
        l->fd = -1;
        l->since = now_realtime_usec();
        /* Under the unit (ProtectKernelLogs=, PrivateDevices=) /dev/kmsg is
         * not there, but journald keeps the kernel's lines. */
        l->journal = s->kmsg_journal;
        if (!s->kmsg)
                l->error = ENOENT;
        else {
                l->fd = open(s->kmsg, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
                if (l->fd < 0)
                        l->error = errno;
                else if (lseek(l->fd, 0, SEEK_END) < 0) {
                        l->error = errno;
                        closep(&l->fd);
                        l->fd = -1;
                }
        }
        if (l->fd < 0)
                log_debug_errno(l->error, "kernel log %s not readable", strempty(s->kmsg));
        *ret = l;
        return 0;
}

void kernel_log_free(KernelLog *l) {
        if (!l)
                return;
        closep(&l->fd);
        free(l);
}

/* The text of one record, "PRI,SEQ,TIME,FLAGS;TEXT", or NULL for a
 * continuation line (" KEY=VALUE", the record's dictionary). */
static const char *record_text(const char *line) {
        const char *semi;

        if (line[0] == ' ')
                return NULL;
        semi = strchr(line, ';');
        return semi ? semi + 1 : line;
}

/* Appends text to out, escaped: kmsg escapes most bytes itself, but this
 * goes into a D-Bus string (UTF-8) and a terminal. */
static void append_escaped(char *out, size_t *len, size_t max, const char *text) {
        for (const unsigned char *c = (const unsigned char *) text; *c && *len + 5 < max; c++) {
                if (*c >= 0x20 && *c < 0x7f && *c != '\\')
                        out[(*len)++] = (char) *c;
                else
                        *len += (size_t) snprintf(out + *len, max - *len, "\\x%02x", *c);
        }
        out[*len] = 0;
}

/* Keeps the last LINES_KEPT lines that name function.  kmsg: line is a
 * record of /dev/kmsg's, else the text alone. */
static void keep_line(char kept[LINES_KEPT][LINE_MAX_BYTES], size_t *n, const char *line, const char *function,
                      bool kmsg) {
        const char *text = kmsg ? record_text(line) : line;
        size_t len = 0;

        if (!text || !strstr(text, function))
                return;
        if (*n == LINES_KEPT) {
                memmove(kept[0], kept[1], sizeof kept[0] * (LINES_KEPT - 1));
                (*n)--;
        }
        append_escaped(kept[*n], &len, LINE_MAX_BYTES, text);
        (*n)++;
}

/* The kernel's lines since l->since that the journal holds. */
static int journal_lines(KernelLog *l, const char *function, char kept[LINES_KEPT][LINE_MAX_BYTES], size_t *n) {
        char line[LINE_MAX_BYTES * 2];
        sd_journal *j = NULL;
        const void *data;
        size_t len;
        int r;

        r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
        if (r < 0)
                return r;
        r = sd_journal_add_match(j, "_TRANSPORT=kernel", 0);
        if (r >= 0)
                r = sd_journal_seek_realtime_usec(j, l->since);
        /* journald reads the kernel's lines after they are logged: with
         * none yet, wait for them a little */
        for (unsigned waits = 0; r >= 0; ) {
                r = sd_journal_next(j);
                if (r == 0 && *n == 0 && waits++ < JOURNAL_WAITS) {
                        r = sd_journal_wait(j, JOURNAL_WAIT_USEC);
                        continue;
                }
                if (r <= 0)
                        break;
                if (sd_journal_get_data(j, "MESSAGE", &data, &len) < 0 || len < 8)
                        continue;
                len -= 8;                                       /* "MESSAGE=" */
                if (len >= sizeof line)
                        len = sizeof line - 1;
                memcpy(line, (const char *) data + 8, len);
                line[len] = 0;
                keep_line(kept, n, line, function, false);
        }
        log_debug("%s: %zu line(s) of the kernel in the journal", function, *n);
        sd_journal_close(j);
        return r;
}

char *kernel_log_about(KernelLog *l, const char *function) {
        _cleanup_free_ char *buf = NULL;
        char kept[LINES_KEPT][LINE_MAX_BYTES];
        size_t n = 0, have = 0, len = 0;
        char *out;

        if (l->fd < 0 && l->journal) {
                int r = journal_lines(l, function, kept, &n);

                if (r < 0) {
                        out = NULL;
                        return asprintf(&out, "the kernel log could not be read (%s, journal: %s)",
                                        strerror(l->error), strerror(-r)) < 0 ? NULL : out;
                }
        } else if (l->fd < 0) {
                out = NULL;
                return asprintf(&out, "the kernel log could not be read (%s)", strerror(l->error)) < 0 ? NULL : out;
        } else {
                buf = malloc(KMSG_RECORD_MAX + 1);
                if (!buf)
                        return NULL;
                /* /dev/kmsg gives one record a read; a plain file (the
                 * tests') gives what fits: lines are cut at '\n' either way. */
                for (;;) {
                        ssize_t k = read(l->fd, buf + have, KMSG_RECORD_MAX - have);
                        char *start = buf, *nl;

                        if (k < 0 && (errno == EPIPE || errno == EINTR))
                                continue;       /* EPIPE: records overwritten before we read them */
                        if (k <= 0)
                                break;
                        have += (size_t) k;
                        buf[have] = 0;
                        while ((nl = memchr(start, '\n', have - (size_t) (start - buf)))) {
                                *nl = 0;
                                keep_line(kept, &n, start, function, true);
                                start = nl + 1;
                        }
                        have -= (size_t) (start - buf);
                        memmove(buf, start, have);
                        if (have == KMSG_RECORD_MAX)
                                have = 0;       /* a line longer than any record: dropped */
                }
        }
        if (n == 0)
                return strdup("the kernel logged nothing about it");

        out = malloc(KERNEL_LOG_MAX + 1);
        if (!out)
                return NULL;
        len = (size_t) snprintf(out, KERNEL_LOG_MAX, "the kernel logged: ");
        /* the last lines matter most: the first ones go when it is long */
        size_t first = 0, total = len;
        for (size_t i = n; i-- > 0;) {
                total += strlen(kept[i]) + 3;
                if (total > KERNEL_LOG_MAX) {
                        first = i + 1;
                        break;
                }
        }
        for (size_t i = first; i < n; i++)
                len += (size_t) snprintf(out + len, KERNEL_LOG_MAX + 1 - len, "%s%s", i > first ? " | " : "",
                                         kept[i]);
        return out;
}
