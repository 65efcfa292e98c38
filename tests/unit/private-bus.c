/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "private-bus.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char bus_config[] =
        "<busconfig><type>session</type><listen>unix:tmpdir=/tmp</listen><auth>EXTERNAL</auth>"
        "<policy context=\"default\"><allow user=\"*\"/><allow own=\"*\"/>"
        "<allow send_destination=\"*\"/><allow receive_sender=\"*\"/></policy></busconfig>";

int private_bus_start(PrivateBus *b) {
        size_t len = strlen(bus_config);
        int pipefd[2], cfd;
        FILE *f;

        *b = (PrivateBus) { .pid = -1 };
        snprintf(b->config, sizeof b->config, "/tmp/gpuswitch-test-bus-XXXXXX");
        cfd = mkstemp(b->config);
        if (cfd < 0)
                return -errno;
        if (write(cfd, bus_config, len) != (ssize_t) len) {
                close(cfd);
                return -EIO;
        }
        close(cfd);
        if (pipe(pipefd) < 0)
                return -errno;
        b->pid = fork();
        if (b->pid < 0)
                return -errno;
        if (b->pid == 0) {
                char fd[16], arg[96];

                close(pipefd[0]);
                snprintf(fd, sizeof fd, "%d", pipefd[1]);
                snprintf(arg, sizeof arg, "--config-file=%s", b->config);
                execlp("dbus-daemon", "dbus-daemon", arg, "--nofork", "--nopidfile", "--print-address", fd,
                       (char *) NULL);
                _exit(127);
        }
        close(pipefd[1]);
        /* the address is printed once the daemon listens */
        f = fdopen(pipefd[0], "r");
        if (!f)
                return -errno;
        if (!fgets(b->address, sizeof b->address, f)) {
                fclose(f);
                fprintf(stderr, "dbus-daemon did not start\n");
                return -ECHILD;
        }
        fclose(f);
        b->address[strcspn(b->address, "\n")] = 0;
        return 0;
}

void private_bus_stop(PrivateBus *b) {
        if (b->pid > 0) {
                kill(b->pid, SIGTERM);
                waitpid(b->pid, NULL, 0);
                b->pid = -1;
        }
        if (b->config[0])
                unlink(b->config);
}

sd_bus *private_bus_connect(const char *address) {
        sd_bus *b = NULL;

        if (sd_bus_new(&b) < 0 || sd_bus_set_address(b, address) < 0 || sd_bus_set_bus_client(b, 1) < 0 ||
            sd_bus_start(b) < 0)
                abort();
        return b;
}
