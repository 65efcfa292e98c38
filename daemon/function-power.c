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
        if (!streq(control, "on") && !streq(control, "auto"))
                /* the ABI knows two values; another one is not written back */
                return log_error_errno(EINVAL, "%s: power/control is \"%s\", neither on nor auto", function,
                                       control);

        /* Kept also when "on": a driver bound during the switch may choose
         * otherwise (vfio-pci allows runtime PM in its probe), and the
         * setting is the administrator's, as before the switch. */
        nh = realloc(h->held, (h->n + 1) * sizeof *nh);
        if (!nh)
                return -ENOMEM;
        h->held = nh;
        if (!streq(control, "on")) {
                r = sysfs_write_attr(s, function, "power/control", "on");
                if (r < 0)
                        return log_error_errno(r, "%s: writing power/control=on", function);
                log_debug("%s: held awake for the switch (power/control was %s)", function, control);
        }
        snprintf(h->held[h->n].function, sizeof h->held[h->n].function, "%s", function);
        h->held[h->n++].control = TAKE_PTR(control);
        return 0;
}

void power_hold_renew(PowerHold *h, Sysfs *s) {
        for (size_t i = 0; i < h->n; i++) {
                _cleanup_free_ char *now = NULL;
                int r;

                if (sysfs_read_attr(s, h->held[i].function, "power/control", &now) < 0 || streq(now, "on"))
                        continue;
                r = sysfs_write_attr(s, h->held[i].function, "power/control", "on");
                if (r < 0)
                        log_warning_errno(r, "%s: writing power/control=on again", h->held[i].function);
        }
}

void power_control_read_all(const Sysfs *s, Gpu *g) {
        for (size_t i = 0; i < g->n_functions; i++) {
                PciFunction *f = &g->functions[i];
                _cleanup_free_ char *control = NULL;

                free(f->power_control);
                f->power_control = NULL;
                if (sysfs_read_attr(s, f->address, "power/control", &control) >= 0 &&
                    (streq(control, "on") || streq(control, "auto")))
                        f->power_control = TAKE_PTR(control);
        }
}

void power_control_restore(Sysfs *s, const Gpu *g) {
        for (size_t i = 0; i < g->n_functions; i++) {
                const PciFunction *f = &g->functions[i];
                _cleanup_free_ char *now = NULL;
                int r;

                if (!f->power_control || sysfs_read_attr(s, f->address, "power/control", &now) < 0 ||
                    streq(now, f->power_control))
                        continue;
                r = sysfs_write_attr(s, f->address, "power/control", f->power_control);
                if (r < 0)
                        log_warning_errno(r, "%s: giving power/control back (%s); it stays %s", f->address,
                                          f->power_control, now);
                else
                        log_info("%s: power/control back to %s, as before the switch", f->address,
                                 f->power_control);
        }
}

void power_hold_release(PowerHold *h, Sysfs *s) {
        if (!h)
                return;
        for (size_t i = h->n; i-- > 0;) {
                Held *x = &h->held[i];
                _cleanup_free_ char *now = NULL;
                int r;

                r = sysfs_read_attr(s, x->function, "power/control", &now);
                if (r < 0 || !streq(now, x->control)) {
                        r = sysfs_write_attr(s, x->function, "power/control", x->control);
                        if (r < 0)
                                log_warning_errno(r, "%s: giving power/control back (%s); it stays %s",
                                                  x->function, x->control, strempty(now));
                }
                free(x->control);
        }
        free(h->held);
        free(h);
}
