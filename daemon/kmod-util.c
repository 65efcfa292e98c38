/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "kmod-util.h"

#include <libkmod.h>

#include "util.h"

static void kmod_unrefp(struct kmod_ctx **c) { if (*c) kmod_unref(*c); }
static void kmod_module_unref_listp(struct kmod_list **l) { if (*l) kmod_module_unref_list(*l); }

/* A context per call: the job thread and the bus loop both load modules,
 * and a kmod_ctx is not safe to share between threads. */
static int kmod_open(struct kmod_ctx **ret) {
        struct kmod_ctx *c = kmod_new(NULL, NULL);

        if (!c)
                return -ENOMEM;
        (void) kmod_load_resources(c);
        *ret = c;
        return 0;
}

int kmod_load_module(const char *name) {
        _cleanup_(kmod_unrefp) struct kmod_ctx *ctx = NULL;
        _cleanup_(kmod_module_unref_listp) struct kmod_list *list = NULL;
        struct kmod_list *l;
        int r;

        r = kmod_open(&ctx);
        if (r < 0)
                return r;
        r = kmod_module_new_from_lookup(ctx, name, &list);
        if (r < 0)
                return r;
        if (!list)
                return -ENOENT;
        kmod_list_foreach(l, list) {
                struct kmod_module *m = kmod_module_get_module(l);

                r = kmod_module_probe_insert_module(m, KMOD_PROBE_APPLY_BLACKLIST, NULL, NULL, NULL, NULL);
                kmod_module_unref(m);
                if (r < 0 && r != -EEXIST)
                        return r;
        }
        return 0;
}

int kmod_module_for_modalias(const char *modalias, char **ret) {
        _cleanup_(kmod_unrefp) struct kmod_ctx *ctx = NULL;
        _cleanup_(kmod_module_unref_listp) struct kmod_list *list = NULL;
        _cleanup_(kmod_module_unref_listp) struct kmod_list *filtered = NULL;
        struct kmod_module *m;
        int r;

        r = kmod_open(&ctx);
        if (r < 0)
                return r;
        r = kmod_module_new_from_lookup(ctx, modalias, &list);
        if (r < 0)
                return r;
        r = kmod_module_apply_filter(ctx, KMOD_FILTER_BLACKLIST, list, &filtered);
        if (r < 0)
                return r;
        if (!filtered)
                return -ENOENT;
        m = kmod_module_get_module(filtered);
        *ret = strdup(kmod_module_get_name(m));
        kmod_module_unref(m);
        return *ret ? 0 : -ENOMEM;
}
