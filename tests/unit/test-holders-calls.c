/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ListHolders' callers (daemon/holders-calls.c) on a real bus (a private
 * dbus-daemon), with callers as other users (children that drop to them),
 * a stand-in polkit that keeps its checks until the test answers them, and
 * a stand-in scan that waits at a gate: the calls that arrive during a scan
 * share it; nobody sees its own process and one hidden row per other
 * process, never their PIDs; a user polkit lets switch and root see every
 * row; polkit is asked non-interactively, with the GPU and the mode, only
 * when there are other users' rows, at most HOLDERS_CHECKS_PER_UID at a time
 * per user; past HOLDERS_CALLS_PER_UID calls a user gets Busy while another
 * user's call is answered.  root only (the callers must be other users). */
#include <pwd.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "errors.h"
#include "holders-calls.h"
#include "holders-stub.h"
#include "polkit.h"
#include "private-bus.h"
#include "testlib.h"
#include "util.h"

#define UID_NOBODY 65534
/* the stand-in polkit says yes to it: a user of /etc/passwd (dbus-daemon
 * drops a connection whose user it cannot look up), found in main() */
static uid_t uid_allowed;

static sd_event *event;
static sd_bus *polkit_bus;
static HoldersCalls *calls;
static HoldersCache *cache;
static uint64_t key = 1;
static sd_bus_message *held[64];          /* the checks the stand-in keeps */
static size_t n_held;
static unsigned checks, checks_interactive, checks_bad_details, max_held_nobody;

static int polkit_check(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *kind, *action, *k, *v, *gpu = NULL, *mode = NULL;
        uint32_t flags;
        int r;

        checks++;
        r = sd_bus_message_enter_container(m, 'r', "sa{sv}");
        if (r >= 0)
                r = sd_bus_message_read(m, "s", &kind);
        if (r >= 0)
                r = sd_bus_message_skip(m, "a{sv}");
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_read(m, "s", &action);
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "{ss}");
        while (r >= 0 && (r = sd_bus_message_read(m, "{ss}", &k, &v)) > 0) {
                if (streq(k, "gpu"))
                        gpu = v;
                if (streq(k, "mode"))
                        mode = v;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_read(m, "u", &flags);
        if (r < 0 || !streq(action, POLKIT_ACTION_SWITCH) || !streq_ptr(gpu, "0000:0a:00") ||
            !streq_ptr(mode, "vfio"))
                checks_bad_details++;
        if (r >= 0 && flags != 0)
                checks_interactive++;
        if (n_held < ELEMENTSOF(held))
                held[n_held++] = sd_bus_message_ref(m);
        return 1;
}

static const sd_bus_vtable polkit_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("CheckAuthorization", "(sa{sv})sa{ss}us", "(bba{ss})", polkit_check, 0),
        SD_BUS_VTABLE_END
};

static uid_t subject_uid(sd_bus_message *check) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *kind, *name = NULL, *k;
        uint32_t uid = UINT32_MAX;

        CHECK(sd_bus_message_rewind(check, true) >= 0);
        if (sd_bus_message_enter_container(check, 'r', "sa{sv}") < 0 || sd_bus_message_read(check, "s", &kind) < 0 ||
            sd_bus_message_enter_container(check, 'a', "{sv}") < 0)
                return UINT32_MAX;
        while (sd_bus_message_enter_container(check, 'e', "sv") > 0) {
                if (sd_bus_message_read(check, "s", &k) < 0)
                        return UINT32_MAX;
                if (streq(k, "name"))
                        (void) sd_bus_message_read(check, "v", "s", &name);
                else
                        (void) sd_bus_message_skip(check, "v");
                (void) sd_bus_message_exit_container(check);
        }
        if (!name || sd_bus_call_method(polkit_bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus", "GetConnectionUnixUser", &e, &reply, "s", name) < 0 ||
            sd_bus_message_read(reply, "u", &uid) < 0)
                return UINT32_MAX;
        return uid;
}

/* The stand-in decides the checks it keeps: yes for uid_allowed only. */
static void polkit_answer_all(void) {
        unsigned nobody = 0;

        for (size_t i = 0; i < n_held; i++)
                if (subject_uid(held[i]) == UID_NOBODY)
                        nobody++;
        if (nobody > max_held_nobody)
                max_held_nobody = nobody;
        for (size_t i = 0; i < n_held; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                uid_t uid = subject_uid(held[i]);

                CHECK(sd_bus_message_new_method_return(held[i], &reply) >= 0);
                CHECK(sd_bus_message_append(reply, "(bba{ss})", uid == uid_allowed, 0, 0) >= 0);
                (void) sd_bus_send(NULL, reply, NULL);
                sd_bus_message_unref(held[i]);
        }
        n_held = 0;
}

static int method_list_holders(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *gpu;
        HoldersQuery q = { .cache = cache, .key = key, .gpu = "0000:0a:00", .mode = "vfio" };
        int r;

        r = sd_bus_message_read(m, "s", &gpu);
        if (r < 0)
                return r;
        return holders_calls_start(calls, &q, m, error);
}

static const sd_bus_vtable daemon_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("ListHolders", "s", "a(uuss)", method_list_holders, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

/* In a caller: each reply as a line on out, "E name" or "R" followed by
 * " pid:uid:comm:node" per row. */
typedef struct CallerState {
        int out;
        int left;
} CallerState;

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        CallerState *st = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        char line[1024] = "R";
        const char *comm, *node;
        uint32_t pid, uid;

        if (e)
                snprintf(line, sizeof line, "E %s", e->name);
        else if (sd_bus_message_enter_container(reply, 'a', "(uuss)") >= 0)
                while (sd_bus_message_read(reply, "(uuss)", &pid, &uid, &comm, &node) > 0) {
                        size_t len = strlen(line);

                        snprintf(line + len, sizeof line - len, " %u:%u:%s:%s", pid, uid, comm, node);
                }
        dprintf(st->out, "%s\n", line);
        if (--st->left == 0)
                sd_event_exit(sd_bus_get_event(sd_bus_message_get_bus(reply)), 0);
        return 0;
}

/* A child as uid that calls ListHolders once on each of n connections of
 * its own, all at once, asking for interactive authorization as a
 * terminal would; its replies go to out. */
static pid_t caller(const char *address, const char *daemon_name, uid_t uid, int n, int out) {
        pid_t pid = fork();

        if (pid == 0) {
                CallerState st = { .out = out, .left = n };
                sd_event *e = NULL;
                sd_bus *b[64];

                if (uid != 0 && (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0))
                        _exit(2);
                if (n > (int) ELEMENTSOF(b) || sd_event_new(&e) < 0)
                        _exit(3);
                for (int i = 0; i < n; i++) {
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

                        b[i] = private_bus_connect(address);
                        if (sd_bus_attach_event(b[i], e, 0) < 0 ||
                            sd_bus_message_new_method_call(b[i], &m, daemon_name, "/test", "test.Holders",
                                                           "ListHolders") < 0 ||
                            sd_bus_message_append(m, "s", "") < 0 ||
                            sd_bus_message_set_allow_interactive_authorization(m, 1) < 0 ||
                            sd_bus_call_async(b[i], NULL, m, on_reply, &st, 30 * 1000 * 1000) < 0)
                                _exit(4);
                }
                (void) sd_event_loop(e);
                _exit(0);
        }
        return pid;
}

/* Runs the loop (and the stand-in polkit's answers when answer) until
 * child has ended. */
static uint64_t now_usec(void) {
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (uint64_t) t.tv_sec * 1000000 + (uint64_t) t.tv_nsec / 1000;
}

/* With answer, the stand-in answers the checks it holds once no new one
 * came for 100 ms: the daemon's cap, not the machine's speed, decides how
 * many it holds at once. */
static void spin_until_exit(pid_t child, bool answer) {
        uint64_t deadline = now_usec() + 20 * 1000 * 1000, changed = now_usec();
        size_t held_before = 0;

        while (now_usec() < deadline) {
                if (waitpid(child, NULL, WNOHANG) == child)
                        return;
                (void) sd_event_run(event, 10 * 1000);
                if (!answer)
                        continue;
                if (n_held != held_before) {
                        held_before = n_held;
                        changed = now_usec();
                } else if (n_held > 0 && now_usec() - changed >= 100 * 1000) {
                        polkit_answer_all();
                        held_before = 0;
                }
        }
        CHECK(!"the caller did not end");
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
}

static void spin(unsigned ms) {
        for (unsigned i = 0; i < ms / 10; i++)
                (void) sd_event_run(event, 10 * 1000);
}

typedef struct Replies {
        unsigned ok, busy, no_such_gpu, other_errors;
        unsigned rows, hidden;    /* over the replies */
        bool pid_100, pid_101, pid_200;
} Replies;

static Replies read_replies(int fd) {
        Replies r = {};
        char buf[65536];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        char *save = NULL;

        buf[n > 0 ? n : 0] = 0;
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *save2 = NULL;

                if (line[0] == 'E') {
                        if (streq(line + 2, GS_ERROR_BUSY))
                                r.busy++;
                        else if (streq(line + 2, GS_ERROR_NO_SUCH_GPU))
                                r.no_such_gpu++;
                        else {
                                fprintf(stderr, "unexpected reply: %s\n", line);
                                r.other_errors++;
                        }
                        continue;
                }
                r.ok++;
                for (char *row = strtok_r(line + 1, " ", &save2); row; row = strtok_r(NULL, " ", &save2)) {
                        unsigned pid, uid;

                        if (sscanf(row, "%u:%u:", &pid, &uid) != 2)
                                continue;
                        r.rows++;
                        if (pid == 0 && uid == HOLDER_HIDDEN_UID && streq(row, "0:4294967295::"))
                                r.hidden++;
                        r.pid_100 = r.pid_100 || pid == 100;
                        r.pid_101 = r.pid_101 || pid == 101;
                        r.pid_200 = r.pid_200 || pid == 200;
                }
        }
        return r;
}

int main(void) {
        /* root's Xorg on two nodes, nobody's program, another user's */
        static const Holder rows[] = {
                { .pid = 100, .uid = 0, .comm = "Xorg", .node = "card0" },
                { .pid = 101, .uid = UID_NOBODY, .comm = "mine", .node = "renderD128" },
                { .pid = 100, .uid = 0, .comm = "Xorg", .node = "renderD128" },
                { .pid = 200, .uid = 1000, .comm = "cuda", .node = "card0" },
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *daemon = NULL;
        PrivateBus bus;
        const char *address;
        const char *daemon_name;
        int out_nobody[2], out_allowed[2], out_root[2];
        WorkerPool *pool = NULL;
        PolkitQueue *queue;
        StubScan s;
        Replies r;
        pid_t nobody, allowed, root;

        if (geteuid() != 0) {
                fprintf(stderr, "test-holders-calls: needs root, skipped\n");
                return 77;
        }
        for (struct passwd *pw; (pw = getpwent()); )
                if (pw->pw_uid != 0 && pw->pw_uid != UID_NOBODY) {
                        uid_allowed = pw->pw_uid;
                        break;
                }
        endpwent();
        if (uid_allowed == 0) {
                fprintf(stderr, "test-holders-calls: no user but root and nobody, skipped\n");
                return 77;
        }
        CHECK_INT(private_bus_start(&bus), 0);
        address = bus.address;

        CHECK_INT(sd_event_new(&event), 0);
        daemon = private_bus_connect(address);
        polkit_bus = private_bus_connect(address);
        CHECK(sd_bus_attach_event(daemon, event, 0) >= 0);
        CHECK(sd_bus_attach_event(polkit_bus, event, 0) >= 0);
        CHECK(sd_bus_request_name(polkit_bus, "org.freedesktop.PolicyKit1", 0) > 0);
        CHECK(sd_bus_add_object_vtable(polkit_bus, NULL, "/org/freedesktop/PolicyKit1/Authority",
                                       "org.freedesktop.PolicyKit1.Authority", polkit_vtable, NULL) >= 0);
        CHECK(sd_bus_add_object_vtable(daemon, NULL, "/test", "test.Holders", daemon_vtable, NULL) >= 0);
        CHECK_INT(sd_bus_get_unique_name(daemon, &daemon_name), 0);

        CHECK_INT(worker_pool_new(event, &pool), 0);
        queue = polkit_queue_new();
        CHECK_INT(holders_calls_new(queue, &calls), 0);
        stub_init(&s, rows, ELEMENTSOF(rows));
        CHECK_INT(holders_cache_new(pool, &stub_ops, &s, HOLDERS_CACHE_MAX_AGE_USEC, &cache), 0);

        /* nobody calls on 20 connections at once while the scan waits at
         * its gate: HOLDERS_CALLS_PER_UID are taken, the rest get Busy; a
         * user polkit lets switch calls meanwhile and is taken too */
        stub_gate(&s, false);
        CHECK_INT(pipe(out_nobody), 0);
        CHECK_INT(pipe(out_allowed), 0);
        nobody = caller(address, daemon_name, UID_NOBODY, 20, out_nobody[1]);
        for (unsigned i = 0; i < 500 && holders_calls_pending(calls) < HOLDERS_CALLS_PER_UID; i++)
                (void) sd_event_run(event, 10 * 1000);
        spin(500);
        CHECK_INT(holders_calls_pending(calls), HOLDERS_CALLS_PER_UID);
        allowed = caller(address, daemon_name, uid_allowed, 1, out_allowed[1]);
        for (unsigned i = 0; i < 500 && holders_calls_pending(calls) < HOLDERS_CALLS_PER_UID + 1; i++)
                (void) sd_event_run(event, 10 * 1000);
        CHECK_INT(holders_calls_pending(calls), HOLDERS_CALLS_PER_UID + 1);
        /* one scan for all of them */
        CHECK_INT(stub_runs(&s), 1);
        CHECK_INT(checks, 0);

        /* the scan ends: polkit is asked for the callers that see other
         * users' rows, at most HOLDERS_CHECKS_PER_UID of nobody's at a time */
        stub_gate(&s, true);
        spin_until_exit(allowed, true);
        spin_until_exit(nobody, true);
        CHECK_INT(stub_runs(&s), 1);
        CHECK_INT(max_held_nobody, HOLDERS_CHECKS_PER_UID);
        CHECK_INT(checks, HOLDERS_CALLS_PER_UID + 1);
        CHECK_INT(checks_interactive, 0);
        CHECK_INT(checks_bad_details, 0);
        CHECK_INT(holders_calls_pending(calls), 0);

        r = read_replies(out_nobody[0]);
        CHECK_INT(r.ok, HOLDERS_CALLS_PER_UID);
        CHECK_INT(r.busy, 20 - HOLDERS_CALLS_PER_UID);
        CHECK_INT(r.other_errors, 0);
        /* its own row, and two hidden (root's Xorg on two nodes is one process) */
        CHECK_INT(r.rows, 3 * HOLDERS_CALLS_PER_UID);
        CHECK_INT(r.hidden, 2 * HOLDERS_CALLS_PER_UID);
        CHECK(r.pid_101);
        CHECK(!r.pid_100);
        CHECK(!r.pid_200);

        r = read_replies(out_allowed[0]);
        CHECK_INT(r.ok, 1);
        CHECK_INT(r.rows, 4);
        CHECK_INT(r.hidden, 0);
        CHECK(r.pid_100 && r.pid_101 && r.pid_200);

        /* root: every row, no polkit check, the kept result (no scan) */
        CHECK_INT(pipe(out_root), 0);
        root = caller(address, daemon_name, 0, 3, out_root[1]);
        spin_until_exit(root, false);
        r = read_replies(out_root[0]);
        CHECK_INT(r.ok, 3);
        CHECK_INT(r.rows, 12);
        CHECK_INT(r.hidden, 0);
        CHECK(r.pid_100 && r.pid_101 && r.pid_200);
        CHECK_INT(checks, HOLDERS_CALLS_PER_UID + 1);
        CHECK_INT(stub_runs(&s), 1);

        /* a new state of the GPU (another key): a new scan; nobody's
         * program and root's Xorg on one node: one hidden row a reply */
        s.n_rows = 2;
        s.rows = rows + 1;
        key++;
        nobody = caller(address, daemon_name, UID_NOBODY, 2, out_nobody[1]);
        spin_until_exit(nobody, true);
        r = read_replies(out_nobody[0]);
        CHECK_INT(r.ok, 2);
        CHECK_INT(r.rows, 4);
        CHECK_INT(r.hidden, 2);
        CHECK(!r.pid_100);
        CHECK_INT(stub_runs(&s), 2);
        CHECK_INT(checks, HOLDERS_CALLS_PER_UID + 1 + 2);

        /* only nobody's own process: polkit is not asked */
        s.n_rows = 1;
        key++;
        nobody = caller(address, daemon_name, UID_NOBODY, 2, out_nobody[1]);
        spin_until_exit(nobody, false);
        r = read_replies(out_nobody[0]);
        CHECK_INT(r.ok, 2);
        CHECK_INT(r.rows, 2);
        CHECK_INT(r.hidden, 0);
        CHECK_INT(stub_runs(&s), 3);
        CHECK_INT(checks, HOLDERS_CALLS_PER_UID + 1 + 2);

        /* the GPU leaves the PCI bus while calls wait for its scan: they are
         * answered NoSuchGpu at once, and the scan that ends later finds no
         * caller */
        key++;
        stub_gate(&s, false);
        nobody = caller(address, daemon_name, UID_NOBODY, 2, out_nobody[1]);
        for (unsigned i = 0; i < 500 && (holders_calls_pending(calls) < 2 || stub_runs(&s) < 4); i++)
                (void) sd_event_run(event, 10 * 1000);
        CHECK_INT(holders_calls_pending(calls), 2);
        CHECK_INT(stub_runs(&s), 4);
        holders_calls_cancel_cache(calls, cache, GS_ERROR_NO_SUCH_GPU, "the GPU left the PCI bus");
        CHECK_INT(holders_calls_pending(calls), 0);
        spin_until_exit(nobody, false);
        r = read_replies(out_nobody[0]);
        CHECK_INT(r.no_such_gpu, 2);
        CHECK_INT(r.ok, 0);
        stub_gate(&s, true);
        spin(100);

        /* the daemon ends as manager_free() does it */
        polkit_queue_free(queue);
        holders_calls_free(calls);
        worker_join_all(pool);
        holders_cache_free(cache);
        worker_pool_free(pool);
        polkit_bus = sd_bus_flush_close_unref(polkit_bus);
        private_bus_stop(&bus);
        sd_event_unref(event);
        TEST_MAIN_END();
}
