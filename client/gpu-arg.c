/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "gpu-arg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gpuswitch-bus.h"

int gpu_arg_normalize(const char *arg, char ret[static PCI_SLOT_STRLEN]) {
        PciAddress a;

        if (!arg || !*arg) {
                ret[0] = 0;
                return 0;
        }
        if (pci_address_parse(arg, &a) < 0)
                return -EINVAL;
        pci_address_format_slot(&a, ret);
        return 0;
}

bool mode_arg_in(const char *arg, const char *modes) {
        size_t n = arg ? strlen(arg) : 0;

        if (n == 0 || strchr(arg, ' '))
                return false;
        for (const char *p = modes; (p = strstr(p, arg)); p += n)
                if ((p == modes || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0))
                        return true;
        return false;
}

uint64_t switch_flags_from_options(bool force, bool keep_holders) {
        return (force ? SWITCH_FLAG_TERMINATE_HOLDERS : 0) | (keep_holders ? SWITCH_FLAG_KEEP_HOLDERS : 0);
}

int timeout_arg_parse(const char *arg, unsigned *ret_sec) {
        unsigned long v;
        char *end;

        if (!arg || !*arg || *arg == '-' || *arg == '+')
                return -EINVAL;
        errno = 0;
        v = strtoul(arg, &end, 10);
        if (errno != 0 || *end != 0 || v == 0 || v > 86400)
                return -EINVAL;
        *ret_sec = (unsigned) v;
        return 0;
}

int pci_class_parse(const char *s, unsigned long *ret) {
        char *end;

        if (!s || !*s)
                return -EINVAL;
        errno = 0;
        *ret = strtoul(s, &end, 16);
        return errno == 0 && *end == 0 ? 0 : -EINVAL;
}

/* The PCI Code and ID Assignment Specification's class codes. */
const char *pci_class_name(unsigned long class_code) {
        unsigned base = (unsigned) (class_code >> 16) & 0xff, sub = (unsigned) (class_code >> 8) & 0xff;

        switch (base) {
        case 0x03:
                return sub == 0x00 ? "VGA" : sub == 0x02 ? "3D" : "Display";
        case 0x04:
                return sub == 0x03 ? "Audio" : "Multimedia";
        case 0x0c:
                return sub == 0x03 ? "USB" : sub == 0x80 ? "Serial bus" : "Serial bus";
        case 0x02:
                return "Network";
        case 0x06:
                return "Bridge";
        default:
                return "Other";
        }
}
