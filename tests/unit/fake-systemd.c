/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "fake-systemd.h"

#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "systemd-job.h"
#include "util.h"

void *fake_systemd_serve(void *p) {
        const FakeSystemd *f = p;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        sd_id128_t id;
        int r;

        r = sd_event_new(&e);
        if (r >= 0)
                r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_fd(bus, f->fd, f->fd);
        if (r >= 0)
                r = sd_id128_randomize(&id);
        if (r >= 0)
                r = sd_bus_set_server(bus, 1, id);
        /* on a direct connection nothing names the sender: say who we are */
        if (r >= 0)
                r = sd_bus_set_sender(bus, SYSTEMD_BUS_NAME);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, SYSTEMD_BUS_PATH, SYSTEMD_BUS_MANAGER, f->manager, NULL);
        if (r >= 0 && f->unit)
                r = sd_bus_add_fallback_vtable(bus, NULL, f->unit_prefix, "org.freedesktop.systemd1.Unit", f->unit,
                                               f->find_unit, NULL);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = sd_bus_attach_event(bus, e, 0);
        if (r >= 0)
                r = sd_bus_set_exit_on_disconnect(bus, 1);
        if (r >= 0)
                (void) sd_event_loop(e);
        if (bus)
                (void) sd_bus_detach_event(bus);
        return NULL;
}

int fake_systemd_job_removed(sd_bus *bus, const char *sender, uint32_t id, const char *path, const char *unit,
                             const char *result) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_signal(bus, &m, SYSTEMD_BUS_PATH, SYSTEMD_BUS_MANAGER, "JobRemoved");
        if (r >= 0 && sender)
                r = sd_bus_message_set_sender(m, sender);
        if (r >= 0)
                r = sd_bus_message_append(m, "uoss", id, path, unit, result);
        if (r >= 0)
                r = sd_bus_send(bus, m, NULL);
        return r;
}

sd_bus *fake_systemd_start(FakeSystemd *f, pthread_t *ret_thread) {
        sd_bus *bus = NULL;
        int fds[2];

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
                abort();
        f->fd = fds[1];
        if (pthread_create(ret_thread, NULL, fake_systemd_serve, f) != 0)
                abort();
        if (sd_bus_new(&bus) < 0 || sd_bus_set_fd(bus, fds[0], fds[0]) < 0 || sd_bus_start(bus) < 0)
                abort();
        return bus;
}
