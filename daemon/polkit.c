/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "polkit.h"

#include <stdio.h>
#include <stdlib.h>

#include "util.h"

/* polkit's CheckAuthorizationFlags */
#define POLKIT_ALLOW_USER_INTERACTION 1u

#define POLKIT_TIMEOUT_USEC (25ULL * 1000 * 1000)
/* A person may take a while to type a password. */
#define POLKIT_INTERACTIVE_TIMEOUT_USEC (300ULL * 1000 * 1000)

typedef struct AuthQuery AuthQuery;

struct PolkitQueue {
        AuthQuery *queries;
};

struct AuthQuery {
        PolkitQueue *queue;
        AuthQuery *next, *prev;
        sd_bus_message *request;
        sd_bus_message *check;  /* CheckAuthorization, sent once the caller is known not to be root */
        sd_bus_slot *call;      /* the call under way: freeing it cancels it */
        sd_bus_slot *left;      /* the caller's NameOwnerChanged to "" */
        char *action;
        AuthCallback cb;
        void *userdata;
        bool interactive;
};

PolkitQueue *polkit_queue_new(void) {
        return calloc(1, sizeof(PolkitQueue));
}

static void auth_query_free(AuthQuery *q) {
        if (q->prev)
                q->prev->next = q->next;
        else if (q->queue)
                q->queue->queries = q->next;
        if (q->next)
                q->next->prev = q->prev;
        sd_bus_slot_unref(q->call);
        sd_bus_slot_unref(q->left);
        sd_bus_message_unref(q->request);
        sd_bus_message_unref(q->check);
        free(q->action);
        free(q);
}

/* The one way a query ends: its callback, then it is gone. */
static void auth_query_finish(AuthQuery *q, int authorized, const sd_bus_error *error) {
        AuthCallback cb = q->cb;
        sd_bus_message *request = sd_bus_message_ref(q->request);
        void *userdata = q->userdata;

        auth_query_free(q);
        cb(request, authorized, error, userdata);
        sd_bus_message_unref(request);
}

void polkit_queue_free(PolkitQueue *queue) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        if (!queue)
                return;
        sd_bus_error_set(&error, SD_BUS_ERROR_ACCESS_DENIED, "gpuswitchd is stopping");
        while (queue->queries)
                auth_query_finish(queue->queries, 0, &error);
        free(queue);
}

static int auth_query_call(AuthQuery *q, sd_bus_message *call, sd_bus_message_handler_t handler, uint64_t usec) {
        q->call = sd_bus_slot_unref(q->call);
        return sd_bus_call_async(sd_bus_message_get_bus(q->request), &q->call, call, handler, q, usec);
}

static int on_caller_left(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        AuthQuery *q = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(msg, "sss", &name, &old_owner, &new_owner) < 0 || !isempty(new_owner) ||
            !streq_ptr(name, sd_bus_message_get_sender(q->request)))
                return 0;
        log_debug("polkit: %s left while its check for %s was under way: dropped", name, q->action);
        sd_bus_error_set(&error, SD_BUS_ERROR_ACCESS_DENIED, "the caller left");
        auth_query_finish(q, 0, &error);
        return 0;
}

static int on_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        AuthQuery *q = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const sd_bus_error *e;
        int authorized = 0, challenge = 0, r;
        bool dismissed = false;

        e = sd_bus_message_get_error(reply);
        if (e) {
                /* No polkitd: nobody but root may change anything. */
                log_warning("polkit: checking %s failed: %s: %s", q->action, e->name, strempty(e->message));
                sd_bus_error_setf(&error, SD_BUS_ERROR_ACCESS_DENIED,
                                  "polkit could not be asked for %s (%s)", q->action, strempty(e->message));
                auth_query_finish(q, 0, &error);
                return 0;
        }

        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "{ss}");
        while (r >= 0) {
                const char *key, *value;

                r = sd_bus_message_read(reply, "{ss}", &key, &value);
                if (r <= 0)
                        break;
                /* the user closed the agent's dialog (polkitd's own detail) */
                if (streq(key, "polkit.dismissed") && streq(value, "true"))
                        dismissed = true;
        }
        if (r < 0) {
                log_warning_errno(r, "polkit: unexpected reply to CheckAuthorization for %s", q->action);
                sd_bus_error_setf(&error, SD_BUS_ERROR_ACCESS_DENIED,
                                  "polkit's answer for %s could not be read", q->action);
                auth_query_finish(q, 0, &error);
                return 0;
        }

        if (authorized) {
                auth_query_finish(q, 1, NULL);
                return 0;
        }
        if (challenge && !q->interactive)
                sd_bus_error_setf(&error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                  "authentication is required for %s (polkit): run it from a terminal or "
                                  "an agent, or add a polkit rule", q->action);
        else if (dismissed)
                sd_bus_error_setf(&error, SD_BUS_ERROR_ACCESS_DENIED,
                                  "the authentication for %s was dismissed", q->action);
        else
                sd_bus_error_setf(&error, SD_BUS_ERROR_ACCESS_DENIED, "polkit refused %s", q->action);
        auth_query_finish(q, 0, &error);
        return 0;
}

/* The bus daemon's answer to who the caller is: root goes ahead, anyone
 * else is up to polkit. */
static int on_caller_uid(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        AuthQuery *q = userdata;
        uint32_t uid;
        int r;

        r = sd_bus_message_is_method_error(reply, NULL) ? -EIO : sd_bus_message_read(reply, "u", &uid);
        if (r < 0) {
                sd_bus_error_setf(&error, SD_BUS_ERROR_ACCESS_DENIED,
                                  "the caller's user could not be found, for %s", q->action);
                auth_query_finish(q, 0, &error);
                return 0;
        }
        if (uid == 0) {
                auth_query_finish(q, 1, NULL);
                return 0;
        }
        r = auth_query_call(q, q->check, on_polkit_reply,
                            q->interactive ? POLKIT_INTERACTIVE_TIMEOUT_USEC : POLKIT_TIMEOUT_USEC);
        if (r < 0) {
                log_warning_errno(r, "polkit: asking for %s", q->action);
                sd_bus_error_setf(&error, SD_BUS_ERROR_ACCESS_DENIED,
                                  "polkit could not be asked for %s", q->action);
                auth_query_finish(q, 0, &error);
        }
        return 0;
}

static int polkit_check(PolkitQueue *queue, sd_bus_message *request, const char *action, const char *const *details,
                        bool may_interact, AuthCallback cb, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *uid_call = NULL;
        sd_bus *bus = sd_bus_message_get_bus(request);
        const char *sender = sd_bus_message_get_sender(request);
        AuthQuery *q;
        int r;

        /* root needs no one's permission (as systemd's bus-polkit does it):
         * boot scripts and hooks work without polkitd.  On a direct
         * connection the socket tells at once; on the bus the bus daemon is
         * asked, asynchronously: a blocking call would stall every other
         * caller behind the bus daemon's queue. */
        if (!sender) {
                _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
                uid_t euid;

                r = sd_bus_query_sender_creds(request, SD_BUS_CREDS_EUID, &creds);
                if (r >= 0 && sd_bus_creds_get_euid(creds, &euid) >= 0 && euid == 0)
                        return 1;
                return -EBADMSG;
        }

        r = sd_bus_message_new_method_call(bus, &call, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r < 0)
                return r;
        r = sd_bus_message_append(call, "(sa{sv})s", "system-bus-name", 1, "name", "s", sender, action);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(call, 'a', "{ss}");
        if (r < 0)
                return r;
        for (const char *const *d = details; d && d[0] && d[1]; d += 2) {
                r = sd_bus_message_append(call, "{ss}", d[0], d[1]);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(call);
        if (r < 0)
                return r;

        for (AuthQuery *i = queue->queries; i; i = i->next)
                if (streq(sd_bus_message_get_sender(i->request), sender))
                        return -EBUSY;

        q = calloc(1, sizeof *q);
        if (!q)
                return -ENOMEM;
        q->request = sd_bus_message_ref(request);
        q->cb = cb;
        q->userdata = userdata;
        q->interactive = may_interact && sd_bus_message_get_allow_interactive_authorization(request) > 0;
        q->action = strdup(action);
        q->queue = queue;
        q->next = queue->queries;
        if (q->next)
                q->next->prev = q;
        queue->queries = q;

        /* Before the first call: a caller that leaves before it is
         * answered makes the bus daemon's GetConnectionUnixUser fail. */
        r = q->action ? 0 : -ENOMEM;
        if (r >= 0) {
                _cleanup_free_ char *match = NULL;

                /* a unique name (":1.42") has nothing to quote */
                if (asprintf(&match, "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                             "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='%s'", sender) < 0)
                        r = -ENOMEM;
                else
                        r = sd_bus_add_match_async(bus, &q->left, match, on_caller_left, NULL, q);
        }
        if (r >= 0)
                r = sd_bus_message_append(call, "us", q->interactive ? POLKIT_ALLOW_USER_INTERACTION : 0u, "");
        if (r >= 0) {
                q->check = TAKE_PTR(call);
                r = sd_bus_message_new_method_call(bus, &uid_call, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                                   "org.freedesktop.DBus", "GetConnectionUnixUser");
        }
        if (r >= 0)
                r = sd_bus_message_append(uid_call, "s", sender);
        if (r >= 0)
                r = auth_query_call(q, uid_call, on_caller_uid, POLKIT_TIMEOUT_USEC);
        if (r < 0) {
                auth_query_free(q);
                return r;
        }
        return 0;
}

int polkit_check_async(PolkitQueue *queue, sd_bus_message *request, const char *action, const char *const *details,
                       AuthCallback cb, void *userdata) {
        return polkit_check(queue, request, action, details, true, cb, userdata);
}

int polkit_check_async_quiet(PolkitQueue *queue, sd_bus_message *request, const char *action,
                             const char *const *details, AuthCallback cb, void *userdata) {
        return polkit_check(queue, request, action, details, false, cb, userdata);
}
