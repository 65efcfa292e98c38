/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Holder scan benchmark: the daemon's holders_scan() against fuser(1) and
 * lsof(8), on this machine, over a synthetic process table.
 *
 *   holder-scan [--rounds N] [--procs N] [--fds N] [--holders N]
 *
 * It forks --procs children (2,000) that each keep --fds descriptors
 * (64: regular files, pipes, unix sockets, /dev/null) open, --holders of
 * them (5, spread over the table) also holding a character device node made
 * with mknod(2) in a mkdtemp(3) folder.  The node's device number is one
 * that no other process on the machine holds (checked before the children
 * start), so every tool must find exactly the holder children, whether it
 * matches by device number (ours) or by inode (fuser, lsof).  Then, after a
 * warm-up, each round times the three tools in turn, wall clock; fuser and
 * lsof from spawn to exit, as a user runs them.  Any round where a tool
 * found another set of PIDs is a loud failure (exit 1).  Figures, not
 * pass/fail: a missed target is printed, not an error.
 *
 * Only /proc is read and the temp folder written.  Every child and the
 * folder go on any exit: normal, error, SIGINT/SIGTERM/SIGHUP, and (through
 * PR_SET_PDEATHSIG) the benchmark being killed. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "holders.h"
#include "util.h"

extern char **environ;

#define N_FILES 8
#define MAX_ROUNDS 1000

/* Harmless character devices (open for reading does nothing), tried in
 * turn until one has no holder on this machine. */
static const struct {
        unsigned major, minor;
        const char *name;
} candidates[] = {
        { 1, 7, "/dev/full" }, { 1, 5, "/dev/zero" }, { 1, 9, "/dev/urandom" }, { 1, 8, "/dev/random" },
};

/* What the signal handler and atexit() clean up; paths are built before
 * any child exists, as the handler may not call snprintf(). */
static char tmp_dir[PATH_MAX];
static char node_path[PATH_MAX + 16];
static char file_paths[N_FILES][PATH_MAX + 16];
static pid_t *children;
static volatile sig_atomic_t n_children;
static volatile pid_t tool_pid;
static pid_t janitor = -1;
static int janitor_fd = -1;

static void remove_tmp(void) {
        if (!tmp_dir[0])
                return;
        (void) unlink(node_path);
        for (int i = 0; i < N_FILES; i++)
                (void) unlink(file_paths[i]);
        (void) rmdir(tmp_dir);
}

/* Async-signal-safe: kill(2), unlink(2) and rmdir(2) only. */
static void kill_all(void) {
        if (tool_pid > 0)
                (void) kill(tool_pid, SIGKILL);
        for (sig_atomic_t i = 0; i < n_children; i++)
                (void) kill(children[i], SIGKILL);
}

static void on_signal(int sig) {
        kill_all();
        remove_tmp();
        signal(sig, SIG_DFL);
        raise(sig);
}

/* The normal path and exit(1) on errors. */
static void cleanup(void) {
        kill_all();
        for (sig_atomic_t i = 0; i < n_children; i++)
                (void) waitpid(children[i], NULL, 0);
        n_children = 0;
        remove_tmp();
        if (janitor > 0) {
                close(janitor_fd);
                (void) waitpid(janitor, NULL, 0);
        }
}

static void die(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        fputs("holder-scan: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        exit(1);
}

/* Even a SIGKILL of ours leaves no folder behind: a janitor process waits
 * for its pipe from us to close, however we end, and removes the folder.
 * (The children go by PR_SET_PDEATHSIG.) */
static void start_janitor(void) {
        int p[2];
        char c;

        if (pipe2(p, O_CLOEXEC) < 0)
                die("pipe: %m");
        janitor = fork();
        if (janitor < 0)
                die("fork: %m");
        if (janitor == 0) {
                /* a ^C reaches the whole process group: outlive us */
                signal(SIGINT, SIG_IGN);
                signal(SIGTERM, SIG_IGN);
                signal(SIGHUP, SIG_IGN);
                close(p[1]);
                while (read(p[0], &c, 1) != 0 && errno == EINTR)
                        ;
                remove_tmp();
                _exit(0);
        }
        close(p[0]);
        janitor_fd = p[1];
}

static double now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

/* Sorts v. */
static double median(double *v, unsigned n) {
        qsort(v, n, sizeof *v, cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int cmp_pid(const void *a, const void *b) {
        pid_t x = *(const pid_t *) a, y = *(const pid_t *) b;
        return (x > y) - (x < y);
}

/* Sorted and without repeats (lsof has a line per descriptor). */
static size_t pids_normalize(pid_t *p, size_t n) {
        size_t k = 0;

        qsort(p, n, sizeof *p, cmp_pid);
        for (size_t i = 0; i < n; i++)
                if (k == 0 || p[k - 1] != p[i])
                        p[k++] = p[i];
        return k;
}

/* --- the synthetic process table -------------------------------------- */

/* One child: fd 3 the control pipe it waits on, fd 4 the ready pipe, then
 * descriptors up to n_fds in all, and a read of fd 3 until the parent closes
 * it (or dies: PR_SET_PDEATHSIG). */
_Noreturn static void child_main(pid_t parent, int ctl, int ready, unsigned n_fds, bool holder, unsigned seq) {
        sigset_t none;
        unsigned have;
        char c;

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(1);
        for (int s = 1; s < NSIG; s++)
                (void) signal(s, SIG_DFL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);

        /* Above 9 first, so that neither lands on the other's new number. */
        ctl = fcntl(ctl, F_DUPFD_CLOEXEC, 10);
        ready = fcntl(ready, F_DUPFD_CLOEXEC, 10);
        if (ctl < 0 || ready < 0 || dup2(ctl, 3) < 0 || dup2(ready, 4) < 0)
                _exit(1);
        close_range(5, ~0U, 0);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
                _exit(1);
        close(null);
        have = 5;               /* 0, 1, 2 (stderr kept), 3, 4 */

        if (holder) {
                if (open(node_path, O_RDONLY) < 0)
                        goto fail;
                have++;
        }
        for (unsigned k = seq; have < n_fds; k++) {
                int p[2], fd = 0;

                switch (k % 4) {
                case 0:
                        fd = open(file_paths[k % N_FILES], O_RDONLY);
                        break;
                case 1:
                        if (n_fds - have >= 2) {
                                fd = pipe(p);
                                have += fd == 0;
                        } else
                                fd = open("/dev/null", O_RDONLY);
                        break;
                case 2:
                        if (n_fds - have >= 2) {
                                fd = socketpair(AF_UNIX, SOCK_STREAM, 0, p);
                                have += fd == 0;
                        } else
                                fd = open(file_paths[0], O_RDONLY);
                        break;
                case 3:
                        fd = open("/dev/null", O_WRONLY);
                        break;
                }
                if (fd < 0)
                        goto fail;
                have++;
        }

        c = '1';
        if (write(4, &c, 1) != 1)
                _exit(1);
        while (read(3, &c, 1) != 0)
                ;
        _exit(0);
fail:
        fprintf(stderr, "holder-scan: child %u: %m\n", seq);
        c = '0';
        (void) !write(4, &c, 1);
        _exit(1);
}

static void spawn_table(unsigned n_procs, unsigned n_fds, unsigned n_holders, pid_t *holders) {
        int ctl[2], ready[2];
        unsigned step = n_procs / n_holders, got = 0, h = 0;
        pid_t parent = getpid();
        sigset_t all, old;

        if (pipe2(ctl, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0)
                die("pipe: %m");
        children = calloc(n_procs, sizeof *children);
        if (!children)
                die("out of memory");

        /* A signal between fork() and the child's reset must not run our
         * handler in the child. */
        sigfillset(&all);
        for (unsigned i = 0; i < n_procs; i++) {
                bool holder = h < n_holders && i == h * step + step / 2;
                pid_t pid;

                sigprocmask(SIG_BLOCK, &all, &old);
                pid = fork();
                if (pid == 0)
                        child_main(parent, ctl[0], ready[1], n_fds, holder, i);
                if (pid > 0)
                        children[n_children++] = pid;
                sigprocmask(SIG_SETMASK, &old, NULL);
                if (pid < 0)
                        die("fork of child %u of %u: %m", i + 1, n_procs);
                if (holder)
                        holders[h++] = pid;
        }
        close(ctl[0]);
        close(ready[1]);
        /* ctl[1] stays open, unused, until the process exits: the children
         * wait for its EOF. */

        while (got < n_procs) {
                struct pollfd pfd = { .fd = ready[0], .events = POLLIN };
                char buf[256];
                ssize_t k;

                if (poll(&pfd, 1, 60000) <= 0)
                        die("%u of %u children ready after 60 s", got, n_procs);
                k = read(ready[0], buf, sizeof buf);
                if (k <= 0)
                        die("children's ready pipe: %s", k == 0 ? "closed" : strerror(errno));
                for (ssize_t i = 0; i < k; i++)
                        if (buf[i] != '1')
                                die("a child could not open its descriptors (see above)");
                got += k;
        }
        close(ready[0]);
}

/* --- what is in /proc ------------------------------------------------- */

/* Independent of holders_scan(): which processes hold devnum, by a plain
 * readdir + stat of every /proc/PID/fd/N.  Also counts processes and fds. */
static size_t naive_scan(dev_t devnum, pid_t *found, size_t max, unsigned *ret_procs, unsigned long *ret_fds) {
        DIR *proc = opendir("/proc");
        struct dirent *de;
        size_t n = 0;

        if (!proc)
                die("/proc: %m");
        *ret_procs = 0;
        *ret_fds = 0;
        while ((de = readdir(proc))) {
                char path[sizeof "/proc//fd" + sizeof de->d_name];
                struct dirent *fe;
                DIR *fds;
                bool hit = false;

                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                (*ret_procs)++;
                snprintf(path, sizeof path, "/proc/%s/fd", de->d_name);
                fds = opendir(path);
                if (!fds)
                        continue;
                while ((fe = readdir(fds))) {
                        struct stat st;

                        if (fe->d_name[0] == '.')
                                continue;
                        (*ret_fds)++;
                        if (!hit && fstatat(dirfd(fds), fe->d_name, &st, 0) == 0 && S_ISCHR(st.st_mode) &&
                            st.st_rdev == devnum) {
                                hit = true;
                                if (n < max)
                                        found[n] = atoi(de->d_name);
                                n++;
                        }
                }
                closedir(fds);
        }
        closedir(proc);
        return n;
}

/* --- the three tools -------------------------------------------------- */

typedef struct Tool {
        const char *label;
        const char *const *argv;        /* NULL: holders_scan() */
        bool lsof;                      /* parse lsof's table, not fuser's PID list */
        bool terse;                     /* lsof -t: PIDs only */
        double ms[MAX_ROUNDS];
        double cpu_ms[MAX_ROUNDS];      /* user + system, all threads */
} Tool;

static double tv_ms(struct timeval tv) {
        return tv.tv_sec * 1e3 + tv.tv_usec / 1e3;
}

/* Spawns argv with stdout to a pipe and stderr to /dev/null (fuser writes
 * the file name there, lsof its warnings), reads stdout to EOF, reaps it.
 * Returns wall-clock ms; its CPU time in cpu_ms, the output in out. */
static double run_tool(const char *const *argv, char *out, size_t out_len, double *cpu_ms) {
        struct rusage ru;
        posix_spawn_file_actions_t fa;
        int p[2], status, r;
        size_t len = 0;
        double t0, t1;
        pid_t pid;
        ssize_t k;

        if (pipe2(p, O_CLOEXEC) < 0)
                die("pipe: %m");
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[1], 1);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);

        t0 = now_ms();
        r = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *) argv, environ);
        if (r != 0)
                die("cannot run %s: %s", argv[0], strerror(r));
        tool_pid = pid;
        close(p[1]);
        while ((k = read(p[0], out + len, out_len - 1 - len)) > 0)
                len += k;
        if (wait4(pid, &status, 0, &ru) != pid)
                die("waitpid %s: %m", argv[0]);
        t1 = now_ms();
        *cpu_ms = tv_ms(ru.ru_utime) + tv_ms(ru.ru_stime);
        tool_pid = 0;
        close(p[0]);
        posix_spawn_file_actions_destroy(&fa);
        out[len] = 0;
        /* fuser and lsof exit 1 when nobody holds the file: the PID check
         * reports that; anything else is the tool failing. */
        if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
                die("%s failed (status 0x%x)", argv[0], (unsigned) status);
        return t1 - t0;
}

/* fuser: "   123  456" on stdout; lsof -t: a PID a line; lsof: a table
 * with the PID in its second column under a header line. */
static size_t parse_pids(const Tool *t, char *out, pid_t *pids, size_t max) {
        size_t n = 0;
        char *save = NULL;

        if (t->lsof && !t->terse) {
                for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                        char cmd[256];
                        int pid;

                        if (strncmp(line, "COMMAND ", 8) == 0)
                                continue;
                        if (sscanf(line, "%255s %d", cmd, &pid) == 2 && n < max)
                                pids[n++] = pid;
                }
        } else
                for (char *w = strtok_r(out, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
                        /* fuser -v or access letters would follow the PID */
                        int pid = atoi(w);

                        if (pid > 0 && n < max)
                                pids[n++] = pid;
                }
        return pids_normalize(pids, n);
}

static double cpu_now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double run_ours(dev_t devnum, pid_t *pids, size_t max, size_t *ret_n, double *cpu_ms) {
        DeviceNode node = { .devnum = devnum };
        Holder *h = NULL;
        size_t n = 0;
        double t0, t1, c0;
        int r;

        snprintf(node.name, sizeof node.name, "bench");
        c0 = cpu_now_ms();
        t0 = now_ms();
        r = holders_scan("/proc", &node, 1, &h, &n);
        t1 = now_ms();
        *cpu_ms = cpu_now_ms() - c0;
        if (r < 0)
                die("holders_scan: %s", strerror(-r));
        *ret_n = 0;
        for (size_t i = 0; i < n && i < max; i++)
                pids[(*ret_n)++] = h[i].pid;
        holders_free(h, n);
        *ret_n = pids_normalize(pids, *ret_n);
        return t1 - t0;
}

static void check_same(const char *label, int round, const pid_t *want, size_t n_want, const pid_t *got,
                       size_t n_got) {
        if (n_want == n_got && memcmp(want, got, n_want * sizeof *want) == 0)
                return;
        fprintf(stderr, "\nholder-scan: MISMATCH in %s%d: %s found %zu process(es):", round < 0 ? "warm-up" : "round ",
                round < 0 ? 0 : round + 1, label, n_got);
        for (size_t i = 0; i < n_got; i++)
                fprintf(stderr, " %d", (int) got[i]);
        fprintf(stderr, "\n  the holders are %zu process(es):", n_want);
        for (size_t i = 0; i < n_want; i++)
                fprintf(stderr, " %d", (int) want[i]);
        fputc('\n', stderr);
        exit(1);
}

static unsigned parse_uint(const char *opt, const char *v, unsigned lo, unsigned hi) {
        char *end;
        unsigned long x;

        errno = 0;
        x = strtoul(v, &end, 10);
        if (errno || end == v || *end || x < lo || x > hi) {
                fprintf(stderr, "holder-scan: %s wants a number from %u to %u, not '%s'\n", opt, lo, hi, v);
                exit(2);
        }
        return (unsigned) x;
}

static unsigned long read_ulong_file(const char *path) {
        FILE *f = fopen(path, "re");
        unsigned long v = 0;

        if (f) {
                if (fscanf(f, "%lu", &v) != 1)
                        v = 0;
                fclose(f);
        }
        return v;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "rounds", required_argument, NULL, 'r' }, { "procs", required_argument, NULL, 'p' },
                { "fds", required_argument, NULL, 'f' },    { "holders", required_argument, NULL, 'H' },
                { "help", no_argument, NULL, 'h' },         {},
        };
        unsigned rounds = 15, n_procs = 2000, n_fds = 64, n_holders = 5, procs_before, procs_total, cand;
        unsigned long fds_before, fds_total;
        pid_t want[64], got[4096];
        size_t n_want, n_got;
        struct sigaction sa = { .sa_handler = on_signal };
        struct rlimit rl;
        struct utsname un;
        dev_t devnum = 0;
        double load[1];
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'r': rounds = parse_uint("--rounds", optarg, 1, MAX_ROUNDS); break;
                case 'p': n_procs = parse_uint("--procs", optarg, 1, 20000); break;
                case 'f': n_fds = parse_uint("--fds", optarg, 8, 4096); break;
                case 'H': n_holders = parse_uint("--holders", optarg, 1, 64); break;
                case 'h':
                        printf("usage: holder-scan [--rounds N] [--procs N] [--fds N] [--holders N]\n");
                        return 0;
                default: return 2;
                }
        if (optind < argc || n_holders > n_procs) {
                fprintf(stderr, "usage: holder-scan [--rounds N] [--procs N] [--fds N] [--holders N]\n");
                return 2;
        }
        if (geteuid() != 0) {
                fprintf(stderr, "holder-scan: needs root (mknod(2) of the test node)\n");
                return 2;
        }

        /* Limits: each child keeps n_fds open (children inherit ours), and
         * the table needs n_procs PIDs. */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n_fds + 16) {
                rl.rlim_cur = rl.rlim_max;
                if (rl.rlim_cur < n_fds + 16 || setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        die("RLIMIT_NOFILE is %lu, the children need %u", (unsigned long) rl.rlim_cur, n_fds + 16);
        }
        {
                unsigned long pid_max = read_ulong_file("/proc/sys/kernel/pid_max");
                unsigned long threads_max = read_ulong_file("/proc/sys/kernel/threads-max");
                DIR *d = opendir("/proc");
                unsigned long now = 0;

                for (struct dirent *de; d && (de = readdir(d));)
                        now += de->d_name[0] >= '1' && de->d_name[0] <= '9';
                if (d)
                        closedir(d);
                if ((pid_max && now + n_procs + 64 > pid_max) || (threads_max && now + n_procs + 64 > threads_max))
                        die("%u more processes do not fit: %lu running, pid_max %lu, threads-max %lu", n_procs, now,
                            pid_max, threads_max);
        }

        atexit(cleanup);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);

        /* The temp folder: the node and the regular files children open. */
        {
                char tmpl[] = "/tmp/holder-scan.XXXXXX";

                if (!mkdtemp(tmpl))
                        die("mkdtemp: %m");
                snprintf(node_path, sizeof node_path, "%s/node", tmpl);
                for (int i = 0; i < N_FILES; i++)
                        snprintf(file_paths[i], sizeof file_paths[i], "%s/file%d", tmpl, i);
                memcpy(tmp_dir, tmpl, sizeof tmpl);
                start_janitor();
                for (int i = 0; i < N_FILES; i++) {
                        int fd = open(file_paths[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

                        if (fd < 0 || write(fd, "holder-scan\n", 12) != 12)
                                die("%s: %m", file_paths[i]);
                        close(fd);
                }
        }

        /* A device number nobody on the machine holds yet. */
        for (cand = 0; cand < ELEMENTSOF(candidates); cand++) {
                devnum = makedev(candidates[cand].major, candidates[cand].minor);
                if (naive_scan(devnum, want, ELEMENTSOF(want), &procs_before, &fds_before) == 0)
                        break;
        }
        if (cand == ELEMENTSOF(candidates))
                die("every candidate device (/dev/full, /dev/zero, /dev/urandom, /dev/random) is held by some "
                    "process here; the tools would not agree on its holders");
        if (mknod(node_path, S_IFCHR | 0600, devnum) < 0)
                die("mknod %s: %m", node_path);

        spawn_table(n_procs, n_fds, n_holders, want);
        n_want = pids_normalize(want, n_holders);

        /* The children are there and nobody else took the device meanwhile. */
        n_got = naive_scan(devnum, got, ELEMENTSOF(got), &procs_total, &fds_total);
        if (n_got > ELEMENTSOF(got))
                die("%zu processes hold the node", n_got);
        n_got = pids_normalize(got, n_got);
        check_same("a plain readdir+stat scan", -1, want, n_want, got, n_got);

        const char *const fuser_argv[] = { "fuser", node_path, NULL };
        const char *const lsof_argv[] = { "lsof", node_path, NULL };
        const char *const lsof_t_argv[] = { "lsof", "-t", "-w", node_path, NULL };
        static Tool tools[] = {
                { .label = "holders_scan()" },
                { .label = "fuser PATH" },
                { .label = "lsof PATH", .lsof = true },
                { .label = "lsof -t -w PATH", .lsof = true, .terse = true },
        };
        tools[1].argv = fuser_argv;
        tools[2].argv = lsof_argv;
        tools[3].argv = lsof_t_argv;

        uname(&un);
        printf("Holder scan: the daemon's holders_scan() against fuser and lsof, one device node\n");
        if (getloadavg(load, 1) != 1)
                load[0] = -1;
        printf("  machine: %ld cores, kernel %s, load average %.2f at start\n", sysconf(_SC_NPROCESSORS_ONLN),
               un.release, load[0]);
        printf("  table: %u synthetic processes x %u fds (files, pipes, unix sockets, /dev/null), %u of them\n"
               "         holding the node; /proc has %u processes and %lu fds in all (%u and %lu before)\n",
               n_procs, n_fds, n_holders, procs_total, fds_total, procs_before, fds_before);
        printf("  node: %s, char %u:%u (as %s, which no other process holds)\n", node_path,
               candidates[cand].major, candidates[cand].minor, candidates[cand].name);
        printf("  rounds: %u after a warm-up, each runs the tools in turn; fuser and lsof timed from spawn to exit\n",
               rounds);
        fflush(stdout);

        for (int round = -1; round < (int) rounds; round++)
                for (size_t t = 0; t < ELEMENTSOF(tools); t++) {
                        static char out[1 << 20];
                        double ms, cpu_ms;

                        if (!tools[t].argv)
                                ms = run_ours(devnum, got, ELEMENTSOF(got), &n_got, &cpu_ms);
                        else {
                                ms = run_tool(tools[t].argv, out, sizeof out, &cpu_ms);
                                n_got = parse_pids(&tools[t], out, got, ELEMENTSOF(got));
                        }
                        check_same(tools[t].label, round, want, n_want, got, n_got);
                        if (round >= 0) {
                                tools[t].ms[round] = ms;
                                tools[t].cpu_ms[round] = cpu_ms;
                        }
                }

        printf("\n  %-16s %9s %8s %8s %8s %8s   %s\n", "tool", "median ms", "min", "max", "vs ours", "cpu ms",
               "target");
        double ours = 0;
        for (size_t t = 0; t < ELEMENTSOF(tools); t++) {
                double *ms = tools[t].ms, *cpu = tools[t].cpu_ms, med;
                const char *target = "";

                med = median(ms, rounds);
                if (t == 0)
                        ours = med;
                if (t == 1)
                        target = med >= 2 * ours ? ">= 2x: met" : ">= 2x: NOT met";
                if (t == 2)
                        target = med >= 10 * ours ? ">= 10x: met" : ">= 10x: NOT met";
                if (t == 3)
                        target = "(for reference)";
                printf("  %-16s %9.1f %8.1f %8.1f %7.2fx %8.1f   %s\n", tools[t].label, med, ms[0], ms[rounds - 1],
                       med / ours, median(cpu, rounds), target);
        }
        if (getloadavg(load, 1) != 1)
                load[0] = -1;
        printf("  (wall clock, median over %u rounds; \"vs ours\": how many times our median; cpu: median user +\n"
               "  system time, every thread; load average %.2f at the end: a busy machine stretches the wall figures)\n",
               rounds, load[0]);
        printf("  same holders: the %zu holder children (PIDs", n_want);
        for (size_t i = 0; i < n_want; i++)
                printf(" %d", (int) want[i]);
        printf(") and no other, found by every tool in every round\n");
        return 0;
}
