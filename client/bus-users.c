/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus-users.h"

#include <pwd.h>
#include <stdio.h>
#include <unistd.h>

#include "util.h"

int bus_users_init(sd_bus *bus, BusTransport transport, BusUsers *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *unique;
        uint32_t uid;
        int r;

        *ret = (BusUsers) { .local = transport == BUS_TRANSPORT_LOCAL, .self = getuid() };
        if (ret->local)
                return 0;
        ret->self = BUS_USERS_SELF_UNKNOWN;
        /* over ssh, the user systemd-stdio-bridge runs as on the other side */
        r = sd_bus_get_unique_name(bus, &unique);
        if (r < 0)
                return r;
        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "GetConnectionUnixUser", &error, &reply, "s", unique);
        if (r >= 0)
                r = sd_bus_message_read(reply, "u", &uid);
        if (r < 0)
                return r;
        ret->self = (uid_t) uid;
        return 0;
}

const char *bus_users_name(const BusUsers *users, uid_t uid, char buf[static BUS_USER_NAME_MAX]) {
        struct passwd *pw = users->local ? getpwuid(uid) : NULL;

        if (pw)
                return pw->pw_name;
        snprintf(buf, BUS_USER_NAME_MAX, "%u", (unsigned) uid);
        return buf;
}
