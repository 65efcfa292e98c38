/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <pthread.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

/* A stand-in for systemd's Manager, for the code that starts and stops
 * units: served on one end of a socketpair (a direct connection, so it
 * names itself as org.freedesktop.systemd1) by a thread of its own, until
 * the other end closes. */
typedef struct FakeSystemd {
        int fd;                              /* its end of the socketpair */
        const sd_bus_vtable *manager;        /* at SYSTEMD_BUS_PATH, SYSTEMD_BUS_MANAGER */
        const sd_bus_vtable *unit;           /* NULL, or org.freedesktop.systemd1.Unit below unit_prefix */
        const char *unit_prefix;
        sd_bus_object_find_t find_unit;
} FakeSystemd;

/* The thread: pthread_create(&t, NULL, fake_systemd_serve, &fake). */
void *fake_systemd_serve(void *fake);

/* A socketpair, fake served on its own thread at one end (f->fd set), the
 * client's connection at the other, started; aborts when it cannot. */
sd_bus *fake_systemd_start(FakeSystemd *f, pthread_t *ret_thread);

/* systemd's JobRemoved signal; sender NULL: systemd's own. */
int fake_systemd_job_removed(sd_bus *bus, const char *sender, uint32_t id, const char *path, const char *unit,
                             const char *result);
