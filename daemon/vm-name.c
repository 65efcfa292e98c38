/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "vm-name.h"

#include <string.h>

#include "util.h"

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

bool vm_name_from_cgroup(const char *line, char *buf, size_t len) {
        static const char prefix[] = "0::/machine.slice/machine-";
        char machine[256];
        const char *p, *end, *name;
        size_t n = 0;

        if (len == 0 || strncmp(line, prefix, strlen(prefix)) != 0)
                return false;
        p = line + strlen(prefix);
        end = strstr(p, ".scope");
        if (!end || (end[6] != '\0' && end[6] != '/'))
                return false;
        /* systemd's unit-name escaping: "\xNN" for every byte but
         * [A-Za-z0-9:_.] ('-' included, which names use as the separator) */
        for (; p < end; p++) {
                int c = (unsigned char) *p;

                if (*p == '\\') {
                        int hi, lo;

                        if (end - p < 4 || p[1] != 'x' || (hi = unhex(p[2])) < 0 || (lo = unhex(p[3])) < 0)
                                return false;
                        c = hi << 4 | lo;
                        p += 3;
                } else if (*p == '-')
                        return false;    /* "-" is a slice separator, not part of one unit name */
                if (n + 1 >= sizeof machine || c < 0x20 || c >= 0x7f)
                        return false;
                machine[n++] = (char) c;
        }
        machine[n] = '\0';

        /* "qemu-ID-NAME" */
        if (strncmp(machine, "qemu-", 5) != 0)
                return false;
        name = machine + 5;
        if (*name < '0' || *name > '9')
                return false;
        while (*name >= '0' && *name <= '9')
                name++;
        if (*name != '-' || name[1] == '\0')
                return false;
        name++;
        snprintf(buf, len, "%s", name);
        return true;
}
