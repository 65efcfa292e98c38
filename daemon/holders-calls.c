/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "holders-calls.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>

#include "errors.h"
#include "util.h"

typedef struct HoldersCall HoldersCall;

/* What one user has under way: its calls, its polkit checks, and the calls
 * waiting for one of its checks to end (at most its calls). */
typedef struct UserLoad {
        unsigned calls, checks;
        HoldersCall *wait_head, *wait_tail;
} UserLoad;

/* A row as the caller may get it: the scan's result is not kept past the
 * scan's delivery, and polkit may take a while. */
typedef struct HolderRow {
        uint32_t pid, uid;
        char comm[sizeof ((Holder *) NULL)->comm];
        char node[sizeof ((Holder *) NULL)->node];
} HolderRow;

struct HoldersCalls {
        PolkitQueue *polkit;
        GHashTable *users;        /* uid -> UserLoad */
        HoldersCall *calls;
        unsigned n_calls;
};

struct HoldersCall {
        HoldersCalls *owner;
        HoldersCall *next, *prev;
        sd_bus_message *request;
        sd_bus_slot *uid_query;   /* GetConnectionUnixUser under way */
        HoldersQuery query;
        char *gpu, *mode;         /* query's strings, ours */
        uid_t uid;
        bool counted;             /* in its user's calls */
        bool scanning;            /* waiting in query.cache */
        bool checking;            /* a polkit check under way, in its user's checks */
        bool waiting_check;       /* in its user's wait list */
        HoldersCall *next_wait;
        HolderRow *rows;
        size_t n_rows;
};

int holders_calls_new(PolkitQueue *polkit, HoldersCalls **ret) {
        HoldersCalls *l = calloc(1, sizeof *l);

        if (!l)
                return -ENOMEM;
        l->polkit = polkit;
        l->users = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, free);
        *ret = l;
        return 0;
}

static UserLoad *user_load(HoldersCalls *l, uid_t uid, bool create) {
        UserLoad *u = g_hash_table_lookup(l->users, GUINT_TO_POINTER(uid));

        if (!u && create) {
                u = calloc(1, sizeof *u);
                if (u)
                        g_hash_table_insert(l->users, GUINT_TO_POINTER(uid), u);
        }
        return u;
}

static void user_release(HoldersCalls *l, uid_t uid, bool call, bool check) {
        UserLoad *u = user_load(l, uid, false);

        if (!u)
                return;
        if (call && u->calls > 0)
                u->calls--;
        if (check && u->checks > 0)
                u->checks--;
        if (u->calls == 0 && u->checks == 0 && !u->wait_head)
                g_hash_table_remove(l->users, GUINT_TO_POINTER(uid));
}

static void wait_remove(UserLoad *u, HoldersCall *c) {
        HoldersCall *prev = NULL;

        for (HoldersCall *i = u->wait_head; i; prev = i, i = i->next_wait) {
                if (i != c)
                        continue;
                if (prev)
                        prev->next_wait = c->next_wait;
                else
                        u->wait_head = c->next_wait;
                if (u->wait_tail == c)
                        u->wait_tail = prev;
                break;
        }
        c->next_wait = NULL;
        c->waiting_check = false;
}

static void user_next_check(HoldersCalls *l, uid_t uid);

static void on_scan_ready(int result, const Holder *h, size_t n, void *userdata);

static void call_free(HoldersCall *c) {
        HoldersCalls *l = c->owner;

        if (c->prev)
                c->prev->next = c->next;
        else
                l->calls = c->next;
        if (c->next)
                c->next->prev = c->prev;
        l->n_calls--;
        if (c->waiting_check)
                wait_remove(user_load(l, c->uid, false), c);
        if (c->counted || c->checking)
                user_release(l, c->uid, c->counted, c->checking);
        if (c->scanning)
                holders_cache_cancel(c->query.cache, on_scan_ready, c);
        sd_bus_slot_unref(c->uid_query);
        sd_bus_message_unref(c->request);
        free(c->gpu);
        free(c->mode);
        free(c->rows);
        if (c->checking)
                /* its check's slot is free: the next call waiting for one */
                user_next_check(l, c->uid);
        free(c);
}

void holders_calls_free(HoldersCalls *l) {
        if (!l)
                return;
        while (l->calls) {
                (void) sd_bus_reply_method_errorf(l->calls->request, GS_ERROR_BUSY, "gpuswitchd is stopping");
                call_free(l->calls);
        }
        g_hash_table_destroy(l->users);
        free(l);
}

unsigned holders_calls_pending(const HoldersCalls *l) {
        return l->n_calls;
}

/* The rows the caller may see, in the scan's order, then one hidden row
 * per other process (a process holding two nodes is two rows, one
 * process). */
static int reply_rows(HoldersCall *c, bool all) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ uint32_t *hidden = NULL;
        size_t n_hidden = 0;
        int r;

        hidden = calloc(c->n_rows ?: 1, sizeof *hidden);
        if (!hidden)
                return -ENOMEM;
        r = sd_bus_message_new_method_return(c->request, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(uuss)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < c->n_rows; i++) {
                const HolderRow *h = &c->rows[i];
                bool seen = false;

                if (all || h->uid == c->uid) {
                        r = sd_bus_message_append(reply, "(uuss)", h->pid, h->uid, h->comm, h->node);
                        if (r < 0)
                                return r;
                        continue;
                }
                for (size_t k = 0; k < n_hidden && !seen; k++)
                        seen = hidden[k] == h->pid;
                if (!seen)
                        hidden[n_hidden++] = h->pid;
        }
        for (size_t k = 0; k < n_hidden; k++) {
                r = sd_bus_message_append(reply, "(uuss)", UINT32_C(0), HOLDER_HIDDEN_UID, "", "");
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static void call_reply(HoldersCall *c, bool all) {
        int r = reply_rows(c, all);

        if (r < 0)
                log_warning_errno(r, "%s: replying to ListHolders", c->gpu);
        call_free(c);
}

static void call_error(HoldersCall *c, const char *name, const char *fmt, ...) _printf_(3, 4);
static void call_error(HoldersCall *c, const char *name, const char *fmt, ...) {
        _cleanup_free_ char *message = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&message, fmt, ap);
        va_end(ap);
        if (r < 0)
                message = NULL;
        r = sd_bus_reply_method_error(c->request, &SD_BUS_ERROR_MAKE_CONST(name, message ?: "out of memory"));
        if (r < 0)
                log_warning_errno(r, "%s: replying to ListHolders", c->gpu);
        call_free(c);
}

void holders_calls_cancel_cache(HoldersCalls *l, HoldersCache *cache, const char *error_name, const char *message) {
        /* from the head again each time: answering one may answer others
         * (the next polkit check of its user) */
        for (;;) {
                HoldersCall *c = l->calls;

                while (c && !(c->query.cache == cache && (c->scanning || c->uid_query)))
                        c = c->next;
                if (!c)
                        return;
                call_error(c, error_name, "%s: %s", c->gpu, message);
        }
}

static void on_authorized(sd_bus_message *request, int authorized, const sd_bus_error *error, void *userdata) {
        HoldersCall *c = userdata;

        /* not allowed, or polkit not there: the caller sees what is its own */
        call_reply(c, authorized > 0);
}

/* Whether c's caller may see the other users' rows: polkit is asked when
 * one of its user's check slots is free, else c waits for one. */
static void call_check(HoldersCall *c) {
        HoldersCalls *l = c->owner;
        const char *details[] = { "gpu", c->gpu, "mode", c->mode, NULL };
        UserLoad *u;
        int r;

        u = user_load(l, c->uid, true);
        if (!u) {
                call_error(c, SD_BUS_ERROR_NO_MEMORY, "out of memory");
                return;
        }
        if (u->checks >= HOLDERS_CHECKS_PER_UID) {
                if (u->wait_tail)
                        u->wait_tail->next_wait = c;
                else
                        u->wait_head = c;
                u->wait_tail = c;
                c->waiting_check = true;
                return;
        }
        r = polkit_check_async_quiet(l->polkit, c->request, POLKIT_ACTION_SWITCH, details, on_authorized, c);
        if (r == -EBUSY) {
                call_error(c, GS_ERROR_BUSY, "%s: an authorization of yours is being asked for already: "
                           "try again when it is answered", c->gpu);
                return;
        }
        if (r < 0) {
                log_warning_errno(r, "%s: asking polkit for a ListHolders caller", c->gpu);
                call_reply(c, false);
                return;
        }
        if (r > 0) {
                call_reply(c, true);
                return;
        }
        u->checks++;
        c->checking = true;
}

static void user_next_check(HoldersCalls *l, uid_t uid) {
        for (;;) {
                UserLoad *u = user_load(l, uid, false);
                HoldersCall *c;

                if (!u || !u->wait_head || u->checks >= HOLDERS_CHECKS_PER_UID)
                        return;
                c = u->wait_head;
                wait_remove(u, c);
                call_check(c);
        }
}

static void on_scan_ready(int result, const Holder *h, size_t n, void *userdata) {
        HoldersCall *c = userdata;
        bool others = false;

        c->scanning = false;
        if (result == -EBUSY) {
                call_error(c, GS_ERROR_BUSY, "%s: gpuswitchd has as many scans under way as it takes: "
                           "try again when they are done", c->gpu);
                return;
        }
        if (result < 0) {
                call_error(c, SD_BUS_ERROR_FAILED, "%s: scanning for holders: %s", c->gpu,
                           strerror(-result));
                return;
        }

        c->rows = calloc(n ?: 1, sizeof *c->rows);
        if (!c->rows) {
                call_error(c, SD_BUS_ERROR_NO_MEMORY, "out of memory");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                c->rows[i] = (HolderRow) { .pid = h[i].pid, .uid = h[i].uid };
                snprintf(c->rows[i].comm, sizeof c->rows[i].comm, "%s", h[i].comm);
                snprintf(c->rows[i].node, sizeof c->rows[i].node, "%s", h[i].node);
                others = others || h[i].uid != c->uid;
        }
        c->n_rows = n;
        if (c->uid == 0 || !others) {
                call_reply(c, true);
                return;
        }

        call_check(c);
}

/* The caller's user is known: its share, then the result. */
static void call_with_uid(HoldersCall *c, uid_t uid) {
        UserLoad *u;
        int r;

        c->uid = uid;
        u = user_load(c->owner, uid, true);
        if (!u) {
                call_error(c, SD_BUS_ERROR_NO_MEMORY, "out of memory");
                return;
        }
        if (u->calls >= HOLDERS_CALLS_PER_UID) {
                /* keep no empty entry */
                user_release(c->owner, uid, false, false);
                call_error(c, GS_ERROR_BUSY, "%s: your user has as many ListHolders calls under way as "
                           "gpuswitchd takes: try again when they are answered", c->gpu);
                return;
        }
        u->calls++;
        c->counted = true;
        c->scanning = true;
        r = holders_cache_get(c->query.cache, c->query.key, on_scan_ready, c);
        if (r == -EBUSY) {
                c->scanning = false;
                call_error(c, GS_ERROR_BUSY, "%s: gpuswitchd has as many scans under way as it takes: "
                           "try again when they are done", c->gpu);
                return;
        }
        if (r < 0) {
                c->scanning = false;
                log_error_errno(r, "%s: starting a scan for holders", c->gpu);
                call_error(c, SD_BUS_ERROR_FAILED, "%s: cannot scan for holders: %s", c->gpu,
                           strerror(-r));
                return;
        }
        /* r > 0: answered already, c is gone */
}

static int on_caller_uid(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        HoldersCall *c = userdata;
        uint32_t uid;
        int r;

        c->uid_query = sd_bus_slot_unref(c->uid_query);
        r = sd_bus_message_is_method_error(reply, NULL) ? -EIO : sd_bus_message_read(reply, "u", &uid);
        if (r < 0) {
                call_error(c, SD_BUS_ERROR_ACCESS_DENIED, "%s: the caller's user could not be found", c->gpu);
                return 0;
        }
        call_with_uid(c, uid);
        return 0;
}

int holders_calls_start(HoldersCalls *l, const HoldersQuery *q, sd_bus_message *request, sd_bus_error *error) {
        const char *sender = sd_bus_message_get_sender(request);
        HoldersCall *c;
        int r;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->owner = l;
        c->request = sd_bus_message_ref(request);
        c->query = *q;
        c->gpu = strdup(q->gpu);
        c->mode = strdup(q->mode);
        c->next = l->calls;
        if (c->next)
                c->next->prev = c;
        l->calls = c;
        l->n_calls++;
        if (!c->gpu || !c->mode) {
                call_free(c);
                return -ENOMEM;
        }

        if (!sender) {
                /* a direct connection: the socket tells */
                _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
                uid_t euid;

                r = sd_bus_query_sender_creds(request, SD_BUS_CREDS_EUID, &creds);
                if (r >= 0)
                        r = sd_bus_creds_get_euid(creds, &euid);
                if (r < 0) {
                        call_free(c);
                        return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                                "the caller's user could not be found");
                }
                call_with_uid(c, euid);
                return 1;
        }
        /* A blocking GetConnectionCredentials (sd_bus_query_sender_creds()
         * on the bus) would stall every caller behind the bus daemon. */
        r = sd_bus_call_method_async(sd_bus_message_get_bus(request), &c->uid_query, "org.freedesktop.DBus",
                                     "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetConnectionUnixUser",
                                     on_caller_uid, c, "s", sender);
        if (r < 0) {
                call_free(c);
                return log_error_errno(r, "%s: asking for a ListHolders caller's user", q->gpu);
        }
        return 1;
}
