/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "bus-connect.h"

/* The users of the machine whose bus gpuswitchctl talks to.  The uids in
 * ListHolders are that machine's: over --host or --machine this machine's
 * passwd would name somebody else, so they stay numbers there, and "the
 * caller" is the uid that bus knows the connection by. */
typedef struct BusUsers {
        bool local;
        uid_t self;
} BusUsers;

#define BUS_USER_NAME_MAX 32
/* self when the remote bus could not tell */
#define BUS_USERS_SELF_UNKNOWN ((uid_t) -1)

int bus_users_init(sd_bus *bus, BusTransport transport, BusUsers *ret);

/* uid's name from this machine's passwd on the local bus; else (or with no
 * such user) the number.  Points into buf or into the passwd entry. */
const char *bus_users_name(const BusUsers *users, uid_t uid, char buf[static BUS_USER_NAME_MAX]);
