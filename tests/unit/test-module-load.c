/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Loading modules without CAP_SYS_MODULE: the unit asked of systemd for a
 * driver or modalias, and the wait for its job through JobRemoved against
 * a stand-in for systemd's Manager on a direct connection (a socketpair,
 * its own thread); and the uevent filter that takes only the kernel's
 * messages, over real netlink sockets. */
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "module-load.h"
#include "systemd-job.h"
#include "fake-systemd.h"
#include "testlib.h"
#include "uevent.h"
#include "util.h"

#define JOB_PATH "/org/freedesktop/systemd1/job/42"
#define OTHER_JOB_PATH "/org/freedesktop/systemd1/job/41"

static void check_unit_name(const char *name, const char *want) {
        _cleanup_free_ char *unit = NULL;
        int r = module_unit_name(name, &unit);

        if (want) {
                CHECK_INT(r, 0);
                CHECK_STR(unit, want);
        } else
                CHECK_INT(r, -EINVAL);
}

static void test_unit_names(void) {
        check_unit_name("vfio-pci", "modprobe@vfio_pci.service");
        check_unit_name("vfio_pci", "modprobe@vfio_pci.service");
        check_unit_name("nvidia", "modprobe@nvidia.service");
        check_unit_name("snd_hda_intel", "modprobe@snd_hda_intel.service");
        check_unit_name("pci:v000010DEd00001E84sv00001043sd00008704bc03sc00i00",
                        "modprobe@pci:v000010DEd00001E84sv00001043sd00008704bc03sc00i00.service");
        check_unit_name("", NULL);
        check_unit_name("../x", NULL);
        check_unit_name("a/b", NULL);
        check_unit_name("a b", NULL);
        check_unit_name("a@b", NULL);
        check_unit_name("a\\x2d", NULL);
        check_unit_name(".hidden", NULL);
}

/* ---- a stand-in for systemd's Manager ------------------------------------ */

/* The unit's name says what the stand-in does:
 *   early-RESULT.service   JobRemoved (another job's first) before the reply;
 *   late-RESULT.service    the reply first, then another job's JobRemoved,
 *                          one for this job from someone who is not systemd,
 *                          then systemd's;
 *   stuck.service          the reply, and no JobRemoved ever;
 *   anything else          NoSuchUnit. */
static int method_start_unit(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        sd_bus *bus = sd_bus_message_get_bus(m);
        const char *unit, *mode, *result;
        int r;

        r = sd_bus_message_read(m, "ss", &unit, &mode);
        if (r < 0)
                return r;
        if (!streq(mode, "replace"))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "mode %s", mode);
        if (strncmp(unit, "early-", 6) == 0) {
                result = unit + 6;
                r = fake_systemd_job_removed(bus, NULL, 41, OTHER_JOB_PATH, "other.service", "done");
                if (r >= 0)
                        r = fake_systemd_job_removed(bus, NULL, 42, JOB_PATH, unit, strndupa(result, strcspn(result, ".")));
                if (r < 0)
                        return r;
                return sd_bus_reply_method_return(m, "o", JOB_PATH);
        }
        if (strncmp(unit, "late-", 5) == 0) {
                result = unit + 5;
                r = sd_bus_reply_method_return(m, "o", JOB_PATH);
                if (r >= 0)
                        r = fake_systemd_job_removed(bus, NULL, 41, OTHER_JOB_PATH, "other.service", "failed");
                if (r >= 0)
                        r = fake_systemd_job_removed(bus, "org.example.spoof", 42, JOB_PATH, unit, "spoofed");
                if (r >= 0)
                        r = fake_systemd_job_removed(bus, NULL, 42, JOB_PATH, unit, strndupa(result, strcspn(result, ".")));
                return r;
        }
        if (streq(unit, "stuck.service"))
                return sd_bus_reply_method_return(m, "o", JOB_PATH);
        return sd_bus_error_setf(error, "org.freedesktop.systemd1.NoSuchUnit", "Unit %s not found.", unit);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("StartUnit", "ss", "o", method_start_unit, 0),
        SD_BUS_VTABLE_END,
};

static void test_start_unit_wait(void) {
        FakeSystemd fake = { .manager = manager_vtable };
        pthread_t thread;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = fake_systemd_start(&fake, &thread);
        int r;

        static const struct {
                const char *unit, *result;
        } cases[] = {
                { "early-done.service", "done" },       /* the signal before StartUnit's reply */
                { "early-failed.service", "failed" },
                { "late-done.service", "done" },        /* after it, behind a spoof and another job's */
                { "late-canceled.service", "canceled" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                _cleanup_free_ char *result = NULL;

                r = systemd_start_unit_wait(bus, cases[i].unit, 5ULL * 1000 * 1000, &result, &e);
                CHECK_INT(r, 0);
                CHECK_STR(result, cases[i].result);
        }

        /* no JobRemoved: given up on at the timeout, not waited for forever */
        {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                char *result = NULL;

                r = systemd_start_unit_wait(bus, "stuck.service", 200 * 1000, &result, &e);
                CHECK_INT(r, -ETIMEDOUT);
                CHECK(!result);
        }
        /* StartUnit refused: its error comes back */
        {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                char *result = NULL;

                r = systemd_start_unit_wait(bus, "modprobe@nothing.service", 5ULL * 1000 * 1000, &result, &e);
                CHECK(r < 0);
                CHECK(!result);
                CHECK(sd_bus_error_has_name(&e, "org.freedesktop.systemd1.NoSuchUnit"));
        }

        bus = sd_bus_flush_close_unref(bus);
        pthread_join(thread, NULL);
}

/* ---- uevents only from the kernel ------------------------------------------ */

static void test_uevent_sender(void) {
        struct sockaddr_nl kernel = { .nl_family = AF_NETLINK, .nl_pid = 0 };
        struct sockaddr_nl process = { .nl_family = AF_NETLINK, .nl_pid = 4242 };
        struct sockaddr_nl other_family = { .nl_family = AF_UNIX, .nl_pid = 0 };

        CHECK(uevent_sender_is_kernel(&kernel, sizeof kernel));
        CHECK(!uevent_sender_is_kernel(&process, sizeof process));
        CHECK(!uevent_sender_is_kernel(&other_family, sizeof other_family));
        CHECK(!uevent_sender_is_kernel(&kernel, 0));
        CHECK(!uevent_sender_is_kernel(&kernel, sizeof kernel - 1));
}

static int uevent_socket(struct sockaddr_nl *ret) {
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
        socklen_t len = sizeof sa;
        int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);

        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 || getsockname(fd, (struct sockaddr *) &sa, &len) < 0) {
                close(fd);
                return -errno;
        }
        *ret = sa;
        return fd;
}

/* A process sends a made-up "unbind" straight to the daemon's port, as
 * anyone may: it is read and dropped, and the socket is drained. */
static void test_uevent_forged(void) {
        static const char forged[] = "unbind@/devices/pci0000:00/0000:00:05.0/0000:01:00.0\0ACTION=unbind\0"
                                     "SUBSYSTEM=pci\0PCI_SLOT_NAME=0000:01:00.0";
        struct sockaddr_nl daemon_sa, forger_sa;
        _cleanup_close_ int daemon_fd = -1, forger_fd = -1;
        char buf[512];

        daemon_fd = uevent_socket(&daemon_sa);
        forger_fd = uevent_socket(&forger_sa);
        if (daemon_fd < 0 || forger_fd < 0) {
                fprintf(stderr, "no NETLINK_KOBJECT_UEVENT socket here (%s): forged-uevent test skipped\n",
                        strerror(-(daemon_fd < 0 ? daemon_fd : forger_fd)));
                return;
        }
        CHECK(daemon_sa.nl_pid != 0 && forger_sa.nl_pid != 0);
        CHECK(sendto(forger_fd, forged, sizeof forged, 0, (struct sockaddr *) &daemon_sa, sizeof daemon_sa) ==
              (ssize_t) sizeof forged);
        CHECK_INT(uevent_receive(daemon_fd, buf, sizeof buf), 0);
        CHECK_INT(uevent_receive(daemon_fd, buf, sizeof buf), -EAGAIN);
}

int main(void) {
        test_unit_names();
        test_start_unit_wait();
        test_uevent_sender();
        test_uevent_forged();
        TEST_MAIN_END();
}
