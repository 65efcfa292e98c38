/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* instance_lock(): the first taker holds it and names itself in the file, a
 * second one is refused with the holder's PID, and the lock goes with the
 * holder's descriptor.  (flock locks belong to the open file, so two opens
 * in one process stand for two daemons.) */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "instance-lock.h"
#include "testlib.h"
#include "util.h"

int main(void) {
        char tmp[] = "/tmp/test-instance-lock.XXXXXX", dir[64], path[128];
        _cleanup_free_ char *content = NULL;
        int fd1 = -1, fd2 = -1, fd3 = -1;
        pid_t holder = -1;

        CHECK(mkdtemp(tmp) != NULL);
        snprintf(dir, sizeof dir, "%s/run", tmp);     /* made when missing, as /run/gpuswitch */
        snprintf(path, sizeof path, "%s/gpuswitchd.lock", dir);

        CHECK_INT(instance_lock(dir, &fd1, &holder), 0);
        CHECK(fd1 >= 0);
        CHECK_INT(holder, 0);
        CHECK_INT(read_one_line_file(path, &content), 0);
        CHECK_INT(strtol(content, NULL, 10), getpid());

        CHECK_INT(instance_lock(dir, &fd2, &holder), -EBUSY);
        CHECK_INT(fd2, -1);
        CHECK_INT(holder, getpid());

        close(fd1);
        CHECK_INT(instance_lock(dir, &fd3, &holder), 0);
        CHECK(fd3 >= 0);
        close(fd3);

        setenv("GPUSWITCH_RUNTIME_DIR", dir, 1);
        CHECK_STR(runtime_dir(), dir);
        unsetenv("GPUSWITCH_RUNTIME_DIR");
        CHECK_STR(runtime_dir(), "/run/gpuswitch");

        unlink(path);
        rmdir(dir);
        rmdir(tmp);
        TEST_MAIN_END();
}
