/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The wrappers define open() and friends: libc's fortified inline versions
 * must not be declared here. */
#undef _FORTIFY_SOURCE
#include "fuzz-guard.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FOLDERS 8

static char *folders[MAX_FOLDERS];
static size_t n_folders;
static int armed;

void guard_allow(const char *folder) {
        if (n_folders == MAX_FOLDERS || !(folders[n_folders] = strdup(folder)))
                abort();
        n_folders++;
}

void guard_forget(void) {
        for (size_t i = 0; i < n_folders; i++)
                free(folders[i]);
        n_folders = 0;
}

void guard_arm(bool on) {
        __atomic_store_n(&armed, on, __ATOMIC_SEQ_CST);
}

static bool under(const char *path, const char *folder) {
        size_t n = strlen(folder);
        return strncmp(path, folder, n) == 0 && (path[n] == '/' || path[n] == 0);
}

static bool has_dotdot(const char *path) {
        for (const char *p = strstr(path, ".."); p; p = strstr(p + 1, ".."))
                if ((p == path || p[-1] == '/') && (p[2] == '/' || p[2] == 0))
                        return true;
        return false;
}

/* The path a call names, made absolute against dirfd. */
static void resolve(int dirfd, const char *path, char *buf, size_t len) {
        char base[PATH_MAX];
        ssize_t n;

        if (!path) {
                snprintf(buf, len, "(null)");
                return;
        }
        if (path[0] == '/') {
                snprintf(buf, len, "%s", path);
                return;
        }
        if (dirfd == AT_FDCWD) {
                if (!getcwd(base, sizeof base))
                        snprintf(base, sizeof base, "(cwd unknown)");
        } else {
                char link[64];

                snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
                n = readlink(link, base, sizeof base - 1);
                if (n < 0)
                        snprintf(base, sizeof base, "(fd %d)", dirfd);
                else
                        base[n] = 0;
        }
        snprintf(buf, len, "%s/%s", base, path);
}

static void check(const char *call, int dirfd, const char *path) {
        char abs[PATH_MAX * 2];

        if (!__atomic_load_n(&armed, __ATOMIC_SEQ_CST))
                return;
        resolve(dirfd, path, abs, sizeof abs);
        if (!has_dotdot(abs))
                for (size_t i = 0; i < n_folders; i++)
                        if (under(abs, folders[i]))
                                return;
        guard_arm(false);
        fprintf(stderr, "fuzz-guard: %s(\"%s\"): a write outside the folders the input may change:", call, abs);
        for (size_t i = 0; i < n_folders; i++)
                fprintf(stderr, " %s", folders[i]);
        fputc('\n', stderr);
        abort();
}

static bool writes(int flags) {
        return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND)) || (flags & O_TMPFILE) == O_TMPFILE;
}

#define REAL(name) ({                                                   \
        static __typeof__(&name) _real;                                 \
        if (!_real)                                                     \
                _real = (__typeof__(&name)) dlsym(RTLD_NEXT, #name);    \
        if (!_real)                                                     \
                abort();                                                \
        _real;                                                          \
})

#define MODE_ARG(flags) ({                                              \
        mode_t _m = 0;                                                  \
        if ((flags) & (O_CREAT | O_TMPFILE)) {                          \
                va_list _ap;                                            \
                va_start(_ap, flags);                                   \
                _m = va_arg(_ap, mode_t);                               \
                va_end(_ap);                                            \
        }                                                               \
        _m;                                                             \
})

int open(const char *path, int flags, ...) {
        if (writes(flags))
                check("open", AT_FDCWD, path);
        return REAL(open)(path, flags, MODE_ARG(flags));
}

int open64(const char *path, int flags, ...) {
        if (writes(flags))
                check("open64", AT_FDCWD, path);
        return REAL(open64)(path, flags, MODE_ARG(flags));
}

int openat(int dirfd, const char *path, int flags, ...) {
        if (writes(flags))
                check("openat", dirfd, path);
        return REAL(openat)(dirfd, path, flags, MODE_ARG(flags));
}

int openat64(int dirfd, const char *path, int flags, ...) {
        if (writes(flags))
                check("openat64", dirfd, path);
        return REAL(openat64)(dirfd, path, flags, MODE_ARG(flags));
}

int creat(const char *path, mode_t mode) {
        check("creat", AT_FDCWD, path);
        return REAL(creat)(path, mode);
}

static bool fopen_writes(const char *mode) {
        return mode && strpbrk(mode, "wa+");
}

FILE *fopen(const char *path, const char *mode) {
        if (fopen_writes(mode))
                check("fopen", AT_FDCWD, path);
        return REAL(fopen)(path, mode);
}

FILE *fopen64(const char *path, const char *mode) {
        if (fopen_writes(mode))
                check("fopen64", AT_FDCWD, path);
        return REAL(fopen64)(path, mode);
}

int mkstemp(char *template) {
        check("mkstemp", AT_FDCWD, template);
        return REAL(mkstemp)(template);
}

int mkostemp(char *template, int flags) {
        check("mkostemp", AT_FDCWD, template);
        return REAL(mkostemp)(template, flags);
}

int rename(const char *from, const char *to) {
        check("rename", AT_FDCWD, from);
        check("rename", AT_FDCWD, to);
        return REAL(rename)(from, to);
}

int renameat(int fromfd, const char *from, int tofd, const char *to) {
        check("renameat", fromfd, from);
        check("renameat", tofd, to);
        return REAL(renameat)(fromfd, from, tofd, to);
}

int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned flags) {
        check("renameat2", fromfd, from);
        check("renameat2", tofd, to);
        return REAL(renameat2)(fromfd, from, tofd, to, flags);
}

/* A folder that is there already is not made (mkdir -p walks its parents). */
static bool exists(int dirfd, const char *path) {
        struct stat st;
        return path && fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

int mkdir(const char *path, mode_t mode) {
        if (!exists(AT_FDCWD, path))
                check("mkdir", AT_FDCWD, path);
        return REAL(mkdir)(path, mode);
}

int mkdirat(int dirfd, const char *path, mode_t mode) {
        if (!exists(dirfd, path))
                check("mkdirat", dirfd, path);
        return REAL(mkdirat)(dirfd, path, mode);
}

int unlink(const char *path) {
        check("unlink", AT_FDCWD, path);
        return REAL(unlink)(path);
}

int unlinkat(int dirfd, const char *path, int flags) {
        check("unlinkat", dirfd, path);
        return REAL(unlinkat)(dirfd, path, flags);
}

int rmdir(const char *path) {
        check("rmdir", AT_FDCWD, path);
        return REAL(rmdir)(path);
}

int symlink(const char *target, const char *path) {
        check("symlink", AT_FDCWD, path);
        return REAL(symlink)(target, path);
}

int symlinkat(const char *target, int dirfd, const char *path) {
        check("symlinkat", dirfd, path);
        return REAL(symlinkat)(target, dirfd, path);
}

int link(const char *from, const char *to) {
        check("link", AT_FDCWD, to);
        return REAL(link)(from, to);
}

int linkat(int fromfd, const char *from, int tofd, const char *to, int flags) {
        check("linkat", tofd, to);
        return REAL(linkat)(fromfd, from, tofd, to, flags);
}

int truncate(const char *path, off_t len) {
        check("truncate", AT_FDCWD, path);
        return REAL(truncate)(path, len);
}

char *guard_make_temp_dir(const char *name) {
        const char *tmp = getenv("TMPDIR");
        char *p = NULL;

        /* tmpfs when there is one: each input makes and removes a fake tree */
        if (!tmp || !*tmp)
                tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        if (asprintf(&p, "%s/%s-XXXXXX", tmp, name) < 0 || !mkdtemp(p))
                abort();
        return p;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        (void) remove(path);
        return 0;
}

void guard_remove_tree(const char *path) {
        (void) nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}
