/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who holds the GPU through systemd-logind: a simulated /proc (PID/fd/N
 * symlinks to /dev/full, which stat() follows like the kernel's magic
 * links) and a folder of session files as logind writes them. */
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <glib.h>

#include "holder-session.h"
#include "holders.h"
#include "testlib.h"
#include "util.h"

typedef struct World {
        char root[64];
        char proc[128];
        char sessions[128];
        DeviceNode nodes[2];
        HolderSources src;
} World;

static void put(const char *path, const char *text) {
        CHECK(g_file_set_contents(path, text, -1, NULL));
}

static void world_init(World *w) {
        struct stat st;
        char p[PATH_MAX];

        *w = (World) {};
        snprintf(w->root, sizeof w->root, "/dev/shm/gpuswitch-session-XXXXXX");
        CHECK(mkdtemp(w->root) != NULL);
        snprintf(w->proc, sizeof w->proc, "%s/proc", w->root);
        snprintf(w->sessions, sizeof w->sessions, "%s/sessions", w->root);
        CHECK_INT(mkdir(w->proc, 0755), 0);
        CHECK_INT(mkdir(w->sessions, 0755), 0);
        snprintf(p, sizeof p, "%s/self", w->proc);
        CHECK_INT(mkdir(p, 0755), 0);
        CHECK_INT(stat("/dev/full", &st), 0);
        w->nodes[0].devnum = st.st_rdev;
        snprintf(w->nodes[0].name, sizeof w->nodes[0].name, "card0");
        CHECK_INT(stat("/dev/zero", &st), 0);
        w->nodes[1].devnum = st.st_rdev;
        snprintf(w->nodes[1].name, sizeof w->nodes[1].name, "renderD128");
        w->src = (HolderSources) { .proc_root = w->proc, .sessions_dir = w->sessions };
}

static void world_done(World *w) {
        char cmd[128];

        snprintf(cmd, sizeof cmd, "rm -rf %s", w->root);
        CHECK_INT(system(cmd), 0);
}

/* A process with n_card descriptors on card0 (/dev/full), its comm,
 * cgroup and audit session. */
static void process(World *w, int pid, const char *comm, unsigned n_card, const char *cgroup, const char *sessionid) {
        char p[PATH_MAX], text[256];

        snprintf(p, sizeof p, "%s/%d/fd", w->proc, pid);
        CHECK_INT(g_mkdir_with_parents(p, 0755), 0);
        for (unsigned i = 0; i < n_card; i++) {
                snprintf(p, sizeof p, "%s/%d/fd/%u", w->proc, pid, 10 + i);
                CHECK_INT(symlink("/dev/full", p), 0);
        }
        snprintf(p, sizeof p, "%s/%d/comm", w->proc, pid);
        snprintf(text, sizeof text, "%s\n", comm);
        put(p, text);
        snprintf(p, sizeof p, "%s/%d/cgroup", w->proc, pid);
        put(p, cgroup);
        snprintf(p, sizeof p, "%s/%d/sessionid", w->proc, pid);
        put(p, sessionid);
}

/* /proc/PID/stat with its parent, after a name that would fool a parser */
static void parent(World *w, int pid, int ppid) {
        char p[PATH_MAX], text[128];

        snprintf(p, sizeof p, "%s/%d/stat", w->proc, pid);
        snprintf(text, sizeof text, "%d (a) S 1 (x) S 7) S %d 1 1 0 -1\n", pid, ppid);
        put(p, text);
}

/* As logind's session_save() writes it; devices "" leaves CONTROLLER= and
 * DEVICES= out, as for a session without a controller. */
static void session(World *w, const char *id, const char *user, const char *controller, const char *devices) {
        char p[PATH_MAX];
        g_autofree char *text = NULL;

        text = g_strdup_printf("# This is private data. Do not parse.\nUID=%u\nUSER=%s\nACTIVE=1\nIS_DISPLAY=1\n"
                               "STATE=active\nREMOTE=0\nTYPE=wayland\nCLASS=user\nSCOPE=session-%s.scope\n"
                               "SEAT=seat0\nTTY=tty2\nVTNR=2\nLEADER=900\nAUDIT=%s\n%s%s%s%s%s",
                               (unsigned) getuid(), user, id, id, controller ? "CONTROLLER=" : "",
                               controller ?: "", controller ? "\n" : "", devices ? "DEVICES=" : "",
                               devices ? devices : "");
        snprintf(p, sizeof p, "%s/%s", w->sessions, id);
        {
                g_autofree char *full = g_strconcat(text, devices ? "\n" : "", NULL);

                put(p, full);
        }
}

static char *devnum_str(dev_t d) {
        return g_strdup_printf("%u:%u", major(d), minor(d));
}

static const Holder *find(const Holder *h, size_t n, pid_t pid) {
        for (size_t i = 0; i < n; i++)
                if (h[i].pid == pid)
                        return &h[i];
        return NULL;
}

static void scan(World *w, Holder **h, size_t *n) {
        CHECK_INT(holders_scan(w->proc, w->nodes, 2, h, n), 0);
        CHECK_INT(holders_attribute(&w->src, w->nodes, 2, h, n), 0);
}

static bool any_protected(const Holder *h, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (h[i].protected)
                        return true;
        return false;
}

/* logind's state files: the sessions with a controller and devices, "ID.ref"
 * FIFOs and others skipped, devices parsed. */
static void test_sessions_read(void) {
        World w;
        LogindSession *s = NULL;
        size_t n = 0;
        char p[PATH_MAX];

        world_init(&w);
        session(&w, "2", "alice", ":1.42", "226:0 13:64 ");
        session(&w, "c1", "gdm", ":1.7", "226:0 ");
        session(&w, "3", "bob", NULL, NULL);                  /* no controller */
        session(&w, "4", "carol", ":1.9", "nonsense");        /* unreadable devices */
        snprintf(p, sizeof p, "%s/2.ref", w.sessions);
        CHECK_INT(mkfifo(p, 0600), 0);
        snprintf(p, sizeof p, "%s/.#2abcd", w.sessions);      /* logind's temporary file */
        put(p, "CONTROLLER=:1.1\nDEVICES=1:1\n");

        CHECK_INT(logind_sessions_read(w.sessions, &s, &n), 0);
        CHECK_INT(n, 2);
        if (n == 2) {
                CHECK_STR(s[0].id, "2");
                CHECK_STR(s[0].user, "alice");
                CHECK_STR(s[0].controller, ":1.42");
                CHECK_STR(s[0].scope, "session-2.scope");
                CHECK_INT(s[0].uid, getuid());
                CHECK_INT(s[0].n_devices, 2);
                CHECK(s[0].n_devices == 2 && s[0].devices[0] == makedev(226, 0) && s[0].devices[1] == makedev(13, 64));
                CHECK_STR(s[1].id, "c1");
        }
        logind_sessions_free(s, n);
        CHECK_INT(logind_sessions_read("/nonexistent/sessions", &s, &n), 0);
        CHECK_INT(n, 0);
        world_done(&w);
}

/* A compositor in its session's scope took card0 through logind: PID 1 and
 * logind hold copies.  It is the holder, named with the session; PID 1 and
 * logind are not, and nothing left is protected.  Without attribution
 * (no sessions folder) they are listed and protected, as before. */
static void test_controller(void) {
        World w;
        Holder *h = NULL;
        size_t n = 0;
        g_autofree char *dev = NULL;
        const Holder *x;

        world_init(&w);
        dev = devnum_str(w.nodes[0].devnum);
        process(&w, 1, "systemd", 1, "0::/init.scope\n", "4294967295");
        process(&w, 12, "systemd-logind", 1, "0::/system.slice/systemd-logind.service\n", "4294967295");
        process(&w, 1234, "gnome-shell", 1, "0::/user.slice/user-1000.slice/session-2.scope\n", "2");
        /* the Xwayland it started (a lower PID: they wrapped), with a copy
         * of its own: a holder of its own too, not the controller */
        process(&w, 1200, "Xwayland", 1, "0::/user.slice/user-1000.slice/session-2.scope\n", "2");
        parent(&w, 1200, 1234);
        parent(&w, 1234, 900);
        /* another session's process of the same user, on the card: not the controller */
        process(&w, 1100, "weston", 1, "0::/user.slice/user-1000.slice/session-5.scope\n", "5");
        session(&w, "2", "alice", ":1.42", dev);

        scan(&w, &h, &n);
        CHECK(!find(h, n, 1));
        CHECK(!find(h, n, 12));
        CHECK(!any_protected(h, n));
        x = find(h, n, 1234);
        CHECK(x && x->session_controller && streq(x->session, "2") && streq(x->session_user, "alice"));
        x = find(h, n, 1200);
        CHECK(x && !x->session_controller);
        x = find(h, n, 1100);
        CHECK(x && !x->session_controller);
        {
                _cleanup_free_ char *d = holders_describe(h, n);

                CHECK_CONTAINS(d, "1234 gnome-shell");
                CHECK_CONTAINS(d, "holds card0 for alice's session 2, through systemd-logind");
                CHECK_CONTAINS(d, "--force ends gnome-shell");
                CHECK(!strstr(d, "never ends"));
                CHECK(!strstr(d, "systemd-logind (uid"));
        }
        holders_free(h, n);

        w.src.sessions_dir = NULL;
        scan(&w, &h, &n);
        CHECK(find(h, n, 1) && find(h, n, 12));
        CHECK(any_protected(h, n));
        holders_free(h, n);
        world_done(&w);
}

/* The compositor runs as a service of the user's systemd (GNOME, Plasma
 * 6): neither scope nor audit session say it, its user does.  A greeter's
 * session (gdm) on the same card has a controller of its own: two copies
 * each in PID 1 and logind, all accounted for. */
static void test_user_service_and_greeter(void) {
        World w;
        Holder *h = NULL;
        size_t n = 0;
        g_autofree char *dev = NULL;
        const Holder *x;

        world_init(&w);
        dev = devnum_str(w.nodes[0].devnum);
        process(&w, 1, "systemd", 2, "0::/init.scope\n", "4294967295");
        process(&w, 12, "systemd-logind", 2, "0::/system.slice/systemd-logind.service\n", "4294967295");
        process(&w, 700, "gnome-shell", 1, "0::/user.slice/user-120.slice/session-c1.scope\n", "c1");
        process(&w, 1234, "gnome-shell", 1,
                "0::/user.slice/user-1000.slice/user@1000.service/session.slice/org.gnome.Shell@wayland.service\n",
                "7");
        session(&w, "2", "alice", ":1.42", dev);
        session(&w, "c1", "gdm", ":1.7", dev);

        scan(&w, &h, &n);
        CHECK(!find(h, n, 1));
        CHECK(!find(h, n, 12));
        x = find(h, n, 1234);
        CHECK(x && x->session_controller && streq(x->session, "2"));
        x = find(h, n, 700);
        CHECK(x && x->session_controller && streq(x->session, "c1"));
        holders_free(h, n);
        world_done(&w);
}

/* A session whose controller holds no copy: PID 1 and logind stay
 * (protected), each saying whose session it is and what to do. */
static void test_orphan_session(void) {
        World w;
        Holder *h = NULL;
        size_t n = 0;
        g_autofree char *dev = NULL;
        const Holder *x;

        world_init(&w);
        dev = devnum_str(w.nodes[0].devnum);
        process(&w, 1, "systemd", 1, "0::/init.scope\n", "4294967295");
        process(&w, 12, "systemd-logind", 1, "0::/system.slice/systemd-logind.service\n", "4294967295");
        session(&w, "2", "alice", ":1.42", dev);

        scan(&w, &h, &n);
        x = find(h, n, 1);
        CHECK(x && x->protected && streq(x->session, "2"));
        x = find(h, n, 12);
        CHECK(x && x->protected && streq(x->session, "2"));
        {
                _cleanup_free_ char *d = holders_describe(h, n);

                CHECK_CONTAINS(d, "alice's session 2");
                CHECK_CONTAINS(d, "'loginctl terminate-session 2'");
        }
        holders_free(h, n);
        world_done(&w);
}

static int fake_fdstore_calls;
static int fake_fdstore_answer;   /* what it returns: 1 exact, 0 candidates, -EIO */
static char *const *fake_fdstore_units;

static int fake_fdstore(dev_t devnum, char ***ret_units, void *userdata) {
        World *w = userdata;

        fake_fdstore_calls++;
        CHECK(devnum == w->nodes[0].devnum);
        *ret_units = fake_fdstore_answer >= 0 ? g_strdupv((char **) fake_fdstore_units) : NULL;
        return fake_fdstore_answer;
}

/* PID 1 keeps more copies than the sessions account for: a service's fd
 * store.  Named when systemd can say whose; the candidates when it can
 * only say who keeps any; what to do when nothing can be named.  PID 1
 * stays protected throughout, and the compositor is still the session's
 * holder. */
static void test_fdstore(void) {
        static char *const exact[] = { (char *) "card-keeper.service", NULL };
        static char *const some[] = { (char *) "a.service", (char *) "b.service", NULL };
        World w;
        Holder *h = NULL;
        size_t n = 0;
        g_autofree char *dev = NULL;
        const Holder *x;

        world_init(&w);
        dev = devnum_str(w.nodes[0].devnum);
        process(&w, 1, "systemd", 2, "0::/init.scope\n", "4294967295");
        process(&w, 12, "systemd-logind", 1, "0::/system.slice/systemd-logind.service\n", "4294967295");
        process(&w, 1234, "sway", 1, "0::/user.slice/user-1000.slice/session-2.scope\n", "2");
        session(&w, "2", "alice", ":1.42", dev);
        w.src.fdstore_units = fake_fdstore;
        w.src.userdata = &w;

        fake_fdstore_answer = 1;
        fake_fdstore_units = exact;
        scan(&w, &h, &n);
        CHECK_INT(fake_fdstore_calls, 1);
        CHECK(!find(h, n, 12));
        x = find(h, n, 1);
        CHECK(x && x->protected && x->fdstore_exact && streq(x->fdstore, "card-keeper.service") && !x->session[0]);
        x = find(h, n, 1234);
        CHECK(x && x->session_controller);
        {
                _cleanup_free_ char *d = holders_describe(h, n);

                CHECK_CONTAINS(d, "fd store (FileDescriptorStoreMax=) of card-keeper.service");
                CHECK_CONTAINS(d, "'systemctl stop card-keeper.service'");
        }
        holders_free(h, n);

        fake_fdstore_answer = 0;
        fake_fdstore_units = some;
        scan(&w, &h, &n);
        x = find(h, n, 1);
        CHECK(x && x->protected && !x->fdstore_exact);
        {
                _cleanup_free_ char *d = holders_describe(h, n);

                CHECK_CONTAINS(d, "these services keep descriptors there: a.service, b.service");
        }
        holders_free(h, n);

        for (int answer = 0; answer >= -EIO; answer -= EIO) {
                static char *const none[] = { NULL };

                fake_fdstore_answer = answer;
                fake_fdstore_units = none;
                scan(&w, &h, &n);
                x = find(h, n, 1);
                CHECK(x && x->protected && x->fdstore_unnamed);
                {
                        _cleanup_free_ char *d = holders_describe(h, n);

                        CHECK_CONTAINS(d, "no session or service could be named");
                        CHECK_CONTAINS(d, "NFileDescriptorStore");
                }
                holders_free(h, n);
        }

        /* no session at all: every copy is a service's */
        {
                char p[PATH_MAX];

                snprintf(p, sizeof p, "%s/2", w.sessions);
                CHECK_INT(unlink(p), 0);
        }
        fake_fdstore_answer = 1;
        fake_fdstore_units = exact;
        fake_fdstore_calls = 0;
        scan(&w, &h, &n);
        CHECK_INT(fake_fdstore_calls, 1);
        x = find(h, n, 1);
        CHECK(x && streq(x->fdstore, "card-keeper.service"));
        CHECK(find(h, n, 12) != NULL);   /* logind holds it for no session it names: listed as before */
        holders_free(h, n);
        world_done(&w);
}

int main(void) {
        test_sessions_read();
        test_controller();
        test_user_service_and_greeter();
        test_orphan_session();
        test_fdstore();
        TEST_MAIN_END();
}
