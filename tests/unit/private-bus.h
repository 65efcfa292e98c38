/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A dbus-daemon of the test's own, which every user may use: for tests whose
 * callers are other users (children that drop to them) and whose polkit is
 * a stand-in on the same bus.  No system bus is touched. */
#pragma once

#include <sys/types.h>

#include <systemd/sd-bus.h>

typedef struct PrivateBus {
        char address[512];
        char config[64];
        pid_t pid;
} PrivateBus;

/* 0 with the daemon listening at b->address, or a negative errno. */
int private_bus_start(PrivateBus *b);
void private_bus_stop(PrivateBus *b);

/* A client connection to it; aborts when the bus cannot be reached. */
sd_bus *private_bus_connect(const char *address);
