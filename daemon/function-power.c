/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "function-power.h"

#include "pci-address.h"
#include "util.h"

typedef struct Held {
        char function[PCI_FUNCTION_STRLEN];
        char *control;          /* what it was, "auto" */
} Held;

struct PowerHold {
        Held *held;
        size_t n;
};

int power_hold_new(PowerHold **ret) {
        *ret = calloc(1, sizeof **ret);
        return *ret ? 0 : -ENOMEM;
}

int power_hold(PowerHold *h, Sysfs *s, const char *function) {
        _cleanup_free_ char *control = NULL;
        Held *nh;
        int r;

        r = sysfs_read_attr(s, function, "power/control", &control);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_error_errno(r, "%s: reading power/control", function);
        if (streq(control, "on"))
                return 0;
        if (!streq(control, "auto"))
                /* the ABI knows two values; another one is not written back */
                return log_error_errno(EINVAL, "%s: power/control is \"%s\", neither on nor auto", function,
                                       control);

        nh = realloc(h->held, (h->n + 1) * sizeof *nh);
        if (!nh)
                return -ENOMEM;
        h->held = nh;
        r = sysfs_write_attr(s, function, "power/control", "on");
        if (r < 0)
                return log_error_errno(r, "%s: writing power/control=on", function);
        snprintf(h->held[h->n].function, sizeof h->held[h->n].function, "%s", function);
        h->held[h->n++].control = TAKE_PTR(control);
        log_debug("%s: held awake for the switch (power/control was auto)", function);
        return 0;
}

void power_hold_release(PowerHold *h, Sysfs *s) {
        if (!h)
                return;
        for (size_t i = h->n; i-- > 0;) {
                int r = sysfs_write_attr(s, h->held[i].function, "power/control", h->held[i].control);

                if (r < 0)
                        log_warning_errno(r, "%s: giving power/control back (%s); it stays on", h->held[i].function,
                                          h->held[i].control);
                free(h->held[i].control);
        }
        free(h->held);
        free(h);
}
