/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "polkit-agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define PKTTYAGENT "/usr/bin/pkttyagent"

static pid_t agent_pid;

int polkit_agent_open(void) {
        int notify[2];
        char fd_arg[16], pid_arg[16];
        struct pollfd p;
        pid_t pid;

        if (agent_pid > 0)
                return 0;
        if (access(PKTTYAGENT, X_OK) < 0)
                return -errno;
        if (pipe2(notify, O_CLOEXEC) < 0)
                return -errno;

        snprintf(pid_arg, sizeof pid_arg, "%d", (int) getpid());
        pid = fork();
        if (pid < 0) {
                close(notify[0]);
                close(notify[1]);
                return -errno;
        }
        if (pid == 0) {
                /* The agent tells us it is registered by closing the notify fd. */
                int fd = fcntl(notify[1], F_DUPFD, 3);

                if (fd < 0)
                        _exit(EXIT_FAILURE);
                snprintf(fd_arg, sizeof fd_arg, "%d", fd);
                execl(PKTTYAGENT, PKTTYAGENT, "--notify-fd", fd_arg, "--fallback", "--process", pid_arg,
                      (char *) NULL);
                _exit(EXIT_FAILURE);
        }
        close(notify[1]);
        agent_pid = pid;

        /* Until it is registered polkit would answer without asking. */
        p = (struct pollfd) { .fd = notify[0], .events = POLLIN };
        (void) poll(&p, 1, 5000);
        close(notify[0]);
        return 0;
}

void polkit_agent_close(void) {
        if (agent_pid <= 0)
                return;
        kill(agent_pid, SIGTERM);
        kill(agent_pid, SIGCONT);
        (void) waitpid(agent_pid, NULL, 0);
        agent_pid = 0;
}
