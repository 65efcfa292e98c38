/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus-connect.h"

#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define HOSTNAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."

static bool in_charset(const char *s, const char *chars) {
        return *s && strspn(s, chars) == strlen(s);
}

/* D-Bus address values: bytes other than [-0-9A-Za-z_/.\*] as %xx. */
static void address_escape(GString *out, const char *s) {
        for (; *s; s++) {
                if (strchr(HOSTNAME_CHARS "/\\*", *s))
                        g_string_append_c(out, *s);
                else
                        g_string_append_printf(out, "%%%02x", (unsigned char) *s);
        }
}

/* [USER@]HOST[:PORT] with HOST a name, an IPv4 address or [IPv6]: the
 * destination ssh is given (USER@HOST, brackets dropped) and the port or
 * NULL. */
static int remote_split(const char *arg, char **ret_dest, char **ret_port) {
        g_autofree char *user = NULL, *host = NULL, *port = NULL;
        const char *at, *h, *rest;

        at = strchr(arg, '@');
        if (at) {
                user = g_strndup(arg, at - arg);
                if (!in_charset(user, HOSTNAME_CHARS) || user[0] == '-')
                        return -EINVAL;
        }
        h = at ? at + 1 : arg;
        if (*h == '[') {
                const char *end = strchr(h, ']');

                if (!end)
                        return -EINVAL;
                host = g_strndup(h + 1, end - h - 1);
                if (!in_charset(host, "0123456789abcdefABCDEF:.") || !strchr(host, ':'))
                        return -EINVAL;
                rest = end + 1;
        } else {
                size_t n = strcspn(h, ":");

                host = g_strndup(h, n);
                if (!in_charset(host, HOSTNAME_CHARS) || host[0] == '-')
                        return -EINVAL;
                rest = h + n;
        }
        if (*rest) {
                char *end;
                unsigned long p;

                if (*rest != ':' || !in_charset(rest + 1, "0123456789"))
                        return -EINVAL;
                errno = 0;
                p = strtoul(rest + 1, &end, 10);
                if (errno != 0 || *end || p == 0 || p > 65535)
                        return -EINVAL;
                port = g_strdup_printf("%lu", p);
        }

        *ret_dest = user ? g_strdup_printf("%s@%s", user, host) : g_steal_pointer(&host);
        *ret_port = g_steal_pointer(&port);
        return 0;
}

int bus_remote_address(const char *host, char **ret) {
        g_autofree char *dest = NULL, *port = NULL;
        g_autoptr(GString) a = NULL;
        unsigned n = 1;
        int r;

        r = remote_split(host, &dest, &port);
        if (r < 0)
                return r;

        /* -x: no X11 forwarding, -T: no terminal; "--": HOST is never an option */
        a = g_string_new("unixexec:path=ssh");
        g_string_append_printf(a, ",argv%u=-xT", n++);
        if (port) {
                g_string_append_printf(a, ",argv%u=-p", n++);
                g_string_append_printf(a, ",argv%u=%s", n++, port);
        }
        g_string_append_printf(a, ",argv%u=--", n++);
        g_string_append_printf(a, ",argv%u=", n++);
        address_escape(a, dest);
        g_string_append_printf(a, ",argv%u=systemd-stdio-bridge", n++);

        *ret = strdup(a->str);
        return *ret ? 0 : -ENOMEM;
}

bool bus_machine_name_is_valid(const char *name) {
        return name && in_charset(name, HOSTNAME_CHARS) && strlen(name) <= 64 && name[0] != '.' && name[0] != '-';
}

char *bus_transport_describe(BusTransport transport, const char *host) {
        switch (transport) {
        case BUS_TRANSPORT_REMOTE:
                return g_strdup(host);
        case BUS_TRANSPORT_MACHINE:
                return g_strdup_printf("container %s", host);
        default:
                return g_strdup("the system bus");
        }
}

int bus_transport_connect(BusTransport transport, const char *host, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *address = NULL;
        const char *unique;
        int r;

        switch (transport) {
        case BUS_TRANSPORT_LOCAL:
                return sd_bus_open_system(ret);
        case BUS_TRANSPORT_MACHINE:
                r = sd_bus_open_system_machine(&bus, host);
                break;
        case BUS_TRANSPORT_REMOTE:
                r = bus_remote_address(host, &address);
                if (r < 0)
                        return r;
                r = sd_bus_new(&bus);
                if (r < 0)
                        return r;
                r = sd_bus_set_address(bus, address);
                if (r >= 0)
                        r = sd_bus_set_bus_client(bus, 1);
                if (r >= 0)
                        r = sd_bus_start(bus);
                break;
        default:
                return -EINVAL;
        }
        if (r < 0)
                return r;

        /* the Hello's answer: ssh and the bridge on the other side are up */
        r = sd_bus_get_unique_name(bus, &unique);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}
