/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

/* Which system bus gpuswitchctl talks to, as systemctl's and busctl's -H
 * and -M choose it. */
typedef enum BusTransport {
        BUS_TRANSPORT_LOCAL,
        BUS_TRANSPORT_REMOTE,   /* -H [USER@]HOST[:PORT]: systemd-stdio-bridge on HOST, over ssh */
        BUS_TRANSPORT_MACHINE,  /* -M CONTAINER: the container's bus, found through systemd-machined */
} BusTransport;

/* The D-Bus address of -H's argument: a unixexec: address that runs
 * `ssh -xT [-p PORT] -- [USER@]HOST systemd-stdio-bridge`, as systemd 252's
 * sd_bus_open_system_remote() does (IPv6 in brackets: [::1]:2222).
 * -EINVAL for an argument ssh would not read as one host. */
int bus_remote_address(const char *host, char **ret);

/* A container name as machined accepts it (-M). */
bool bus_machine_name_is_valid(const char *name);

/* Where the bus is, for messages: "the system bus", "HOST",
 * "container NAME".  Freed by the caller. */
char *bus_transport_describe(BusTransport transport, const char *host);

/* Connects to the system bus of the transport and, for the remote ones,
 * waits for the bus to greet us, so that a host that cannot be reached
 * fails here and not at the first call. */
int bus_transport_connect(BusTransport transport, const char *host, sd_bus **ret);
