/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's polkit checks on a real bus (a private dbus-daemon), with a
 * stand-in polkit that never answers, as one waiting for a password does:
 * a caller gets one check at a time (the second is refused at once), a
 * caller that leaves has its check dropped, and another caller's checks go
 * on.  Only sd-bus and dbus-daemon: no root, no system bus. */
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "errors.h"
#include "polkit.h"
#include "private-bus.h"
#include "testlib.h"
#include "util.h"

static sd_event *event;
static PolkitQueue *queue;
static sd_bus_message *held[8];          /* the CheckAuthorization calls the stand-in keeps */
static size_t n_held;
static int answered, authorized, dropped;

/* polkit that never answers: it keeps the calls */
static int polkit_check(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        if (n_held < ELEMENTSOF(held))
                held[n_held++] = sd_bus_message_ref(m);
        return 1;
}

static const sd_bus_vtable polkit_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("CheckAuthorization", "(sa{sv})sa{ss}us", "(bba{ss})", polkit_check, 0),
        SD_BUS_VTABLE_END
};

static void on_auth(sd_bus_message *request, int ok, const sd_bus_error *error, void *userdata) {
        answered++;
        if (ok > 0)
                authorized++;
        else if (error && strstr(error->message, "the caller left"))
                dropped++;
        if (ok > 0)
                (void) sd_bus_reply_method_return(request, NULL);
        else
                (void) sd_bus_reply_method_error(request, error);
}

/* the daemon's side: a method that asks polkit, as Switch does */
static int method_ask(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        int r = polkit_check_async(queue, m, POLKIT_ACTION_SWITCH, NULL, on_auth, NULL);

        if (r == -EBUSY)
                return sd_bus_error_set(error, GS_ERROR_BUSY, "pending already");
        if (r < 0)
                return r;
        return r > 0 ? sd_bus_reply_method_return(m, NULL) : 1;
}

static const sd_bus_vtable daemon_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Ask", "", "", method_ask, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

static void attach(sd_bus *b) {
        if (sd_bus_attach_event(b, event, 0) < 0)
                abort();
}

static void spin_until(const bool *cond, unsigned ms) {
        for (unsigned i = 0; i < ms / 10 && !(cond && *cond); i++)
                (void) sd_event_run(event, 10 * 1000);
}

/* A caller as another user than root (root needs no polkit): a child that
 * calls Ask `calls` times on one connection, without waiting, then waits
 * for the last reply; it writes the error names of the replies it got to
 * fd, one a line ("" for success), and stays on the bus until told (a byte
 * on hold) to leave. */
static pid_t caller(const char *address, const char *daemon_name, int calls, int fd, int hold) {
        pid_t pid = fork();

        if (pid == 0) {
                sd_bus *b;
                char c;

                if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
                        _exit(2);
                b = private_bus_connect(address);
                for (int i = 0; i < calls; i++) {
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
                        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

                        if (sd_bus_message_new_method_call(b, &m, daemon_name, "/test", "test.Polkit", "Ask") < 0)
                                _exit(3);
                        if (i + 1 < calls) {
                                if (sd_bus_send(b, m, NULL) < 0)
                                        _exit(4);
                                continue;
                        }
                        (void) sd_bus_call(b, m, 30 * 1000 * 1000, &e, &reply);
                        dprintf(fd, "%s\n", strempty(e.name));
                }
                if (read(hold, &c, 1) < 0)
                        c = 0;
                sd_bus_flush_close_unref(b);
                _exit(0);
        }
        return pid;
}

static void read_line(int fd, char *buf, size_t size) {
        size_t n = 0;
        char c;

        while (n + 1 < size && read(fd, &c, 1) == 1 && c != '\n')
                buf[n++] = c;
        buf[n] = 0;
}

int main(void) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *daemon = NULL, *polkit = NULL;
        char line[128];
        PrivateBus bus;
        const char *address;
        const char *daemon_name;
        int alice_out[2], alice_hold[2], bob_out[2], bob_hold[2], status;
        bool never = false;
        pid_t alice, bob;

        if (geteuid() != 0) {
                /* the callers must be another user than the daemon's */
                fprintf(stderr, "test-polkit-queue: needs root, skipped\n");
                return 77;
        }
        CHECK_INT(private_bus_start(&bus), 0);
        address = bus.address;

        CHECK_INT(sd_event_new(&event), 0);
        daemon = private_bus_connect(address);
        polkit = private_bus_connect(address);
        attach(daemon);
        attach(polkit);
        CHECK(sd_bus_request_name(polkit, "org.freedesktop.PolicyKit1", 0) > 0);
        CHECK(sd_bus_add_object_vtable(polkit, NULL, "/org/freedesktop/PolicyKit1/Authority",
                                       "org.freedesktop.PolicyKit1.Authority", polkit_vtable, NULL) >= 0);
        CHECK(sd_bus_add_object_vtable(daemon, NULL, "/test", "test.Polkit", daemon_vtable, NULL) >= 0);
        CHECK_INT(sd_bus_get_unique_name(daemon, &daemon_name), 0);
        queue = polkit_queue_new();

        /* alice asks twice on one connection: the first waits for polkit,
         * the second is refused at once */
        CHECK_INT(pipe(alice_out), 0);
        CHECK_INT(pipe(alice_hold), 0);
        alice = caller(address, daemon_name, 2, alice_out[1], alice_hold[0]);
        spin_until(&never, 1500);
        read_line(alice_out[0], line, sizeof line);
        CHECK_STR(line, GS_ERROR_BUSY);
        CHECK_INT(n_held, 1);
        CHECK_INT(answered, 0);

        /* bob is not held up by her */
        CHECK_INT(pipe(bob_out), 0);
        CHECK_INT(pipe(bob_hold), 0);
        bob = caller(address, daemon_name, 1, bob_out[1], bob_hold[0]);
        spin_until(&never, 1500);
        CHECK_INT(n_held, 2);

        /* alice leaves: her check is dropped, its callback called once */
        CHECK_INT(write(alice_hold[1], "x", 1), 1);
        CHECK_INT(waitpid(alice, &status, 0), alice);
        spin_until(&never, 1000);
        CHECK_INT(dropped, 1);
        CHECK_INT(answered, 1);

        /* polkit answers bob's: authorized */
        if (n_held >= 2) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

                CHECK(sd_bus_message_new_method_return(held[1], &reply) >= 0);
                CHECK(sd_bus_message_append(reply, "(bba{ss})", 1, 0, 0) >= 0);
                CHECK(sd_bus_send(NULL, reply, NULL) >= 0);
        }
        spin_until(&never, 1000);
        read_line(bob_out[0], line, sizeof line);
        CHECK_STR(line, "");
        CHECK_INT(authorized, 1);
        CHECK_INT(answered, 2);
        CHECK_INT(write(bob_hold[1], "x", 1), 1);
        CHECK_INT(waitpid(bob, &status, 0), bob);

        /* the daemon ends: nothing is left pending */
        polkit_queue_free(queue);
        CHECK_INT(answered, 2);

        for (size_t i = 0; i < n_held; i++)
                sd_bus_message_unref(held[i]);
        private_bus_stop(&bus);
        sd_event_unref(event);
        TEST_MAIN_END();
}
