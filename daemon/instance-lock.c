/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "instance-lock.h"
#include "util.h"

const char *runtime_dir(void) {
        const char *d = getenv("GPUSWITCH_RUNTIME_DIR");

        return isempty(d) ? "/run/gpuswitch" : d;
}

int instance_lock(const char *dir, int *ret_fd, pid_t *ret_holder) {
        char path[PATH_MAX], pid[32];
        _cleanup_close_ int fd = -1;
        ssize_t n;
        int len;

        *ret_holder = 0;
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        snprintf(path, sizeof path, "%s/gpuswitchd.lock", dir);
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        /* flock: the kernel drops it when the holder exits, however it ends */
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno != EWOULDBLOCK)
                        return -errno;
                n = pread(fd, pid, sizeof pid - 1, 0);
                if (n > 0) {
                        pid[n] = 0;
                        *ret_holder = (pid_t) strtol(pid, NULL, 10);
                }
                return -EBUSY;
        }
        len = snprintf(pid, sizeof pid, "%d\n", (int) getpid());
        if (ftruncate(fd, 0) < 0)
                return -errno;
        n = pwrite(fd, pid, (size_t) len, 0);
        if (n != len)
                return n < 0 ? -errno : -EIO;
        *ret_fd = TAKE_FD(fd);
        return 0;
}
