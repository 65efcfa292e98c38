/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bus-load: N clients on the system bus, each its own connection, calling
 * gpuswitchd as fast as it answers (one call in flight per client), for a
 * number of calls or a duration.  Each call's reply time and outcome is
 * recorded; the summary gives the count, the errors by name and the
 * p50/p90/p99/max reply times.
 *
 *   --read    Get and GetAll of the org.gpuswitch1.Gpu properties, the
 *             Manager's properties, ListGpus, GetGpu
 *   --mixed   the reads, and calls that must be refused with a named error:
 *             unknown GPUs, malformed addresses, unknown modes and flags,
 *             wrong signatures, unknown methods and properties; Plan for
 *             both modes, ListHolders, and (for a caller that is not root,
 *             who would really switch) valid Switch calls, which polkit
 *             must refuse or the daemon answer Busy while a switch runs.
 *
 * With --rate the clients are paced instead, each calling at its own
 * steady interval: the reply time of an applet-like load, not of a queue.
 *
 * All clients share one sd-event loop in one thread: a reply is stamped
 * when the loop reads it, and nothing else runs there but the stamping, so
 * the time measured is the bus's and the daemon's, not the scheduling of
 * fifty client threads on a small machine.
 *
 * Exit status: 0 every call got the answer it should; 1 some call got no
 * reply at all (timeout, the daemon or the bus went away) or the setup
 * failed; 2 usage; 3 every call was answered, but some not as expected. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "errors.h"
#include "gpuswitch-bus.h"

#define MANAGER_PATH GPUSWITCH_MANAGER_PATH
#define MANAGER_IFACE GPUSWITCH_MANAGER_INTERFACE
#define GPU_IFACE GPUSWITCH_GPU_INTERFACE
#define PROPS_IFACE "org.freedesktop.DBus.Properties"

#define E_INVALID "org.freedesktop.DBus.Error.InvalidArgs"
#define E_NO_GPU GS_ERROR_NO_SUCH_GPU
#define E_BUSY GS_ERROR_BUSY
#define E_DENIED "org.freedesktop.DBus.Error.AccessDenied"
#define E_INTERACTIVE "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"
#define E_UNKNOWN_METHOD "org.freedesktop.DBus.Error.UnknownMethod"
#define E_UNKNOWN_PROPERTY "org.freedesktop.DBus.Error.UnknownProperty"
#define E_UNKNOWN_INTERFACE "org.freedesktop.DBus.Error.UnknownInterface"
#define E_UNKNOWN_OBJECT "org.freedesktop.DBus.Error.UnknownObject"
#define E_READ_ONLY "org.freedesktop.DBus.Error.PropertyReadOnly"
#define OK "" /* a method return */

typedef enum Category { CAT_READ, CAT_PLAN, CAT_HOLDERS, CAT_INVALID, CAT_SWITCH, _CAT_MAX } Category;
static const char *const category_names[_CAT_MAX] = {
        [CAT_READ] = "read", [CAT_PLAN] = "plan", [CAT_HOLDERS] = "holders",
        [CAT_INVALID] = "invalid", [CAT_SWITCH] = "switch",
};

typedef enum Object { OBJ_MANAGER, OBJ_GPU, OBJ_NO_GPU } Object;

/* Argument tokens: replaced by the GPU's addresses found at start. */
#define A_SLOT "@slot"   /* 0000:0a:00 */
#define A_FUNC "@func"   /* 0000:0a:00.1 */
#define A_SHORT "@short" /* 0a:00 */
#define A_LONG "@long"   /* 3,000 characters */

typedef struct CallKind {
        const char *name;
        Category category;
        bool unprivileged_only; /* root would really switch or configure */
        unsigned weight;
        Object object;
        const char *interface, *member;
        const char *signature; /* 's' takes the next string, 't' flags, 'u' 7 */
        const char *args[3];
        uint64_t flags;
        const char *expect[4]; /* the acceptable answers; OK = a method return */
} CallKind;

static const CallKind read_calls[] = {
        { "Get Mode", CAT_READ, false, 4, OBJ_GPU, PROPS_IFACE, "Get", "ss", { GPU_IFACE, "Mode" }, 0, { OK } },
        { "Get Functions", CAT_READ, false, 2, OBJ_GPU, PROPS_IFACE, "Get", "ss", { GPU_IFACE, "Functions" }, 0, { OK } },
        { "Get Step", CAT_READ, false, 1, OBJ_GPU, PROPS_IFACE, "Get", "ss", { GPU_IFACE, "Step" }, 0, { OK } },
        { "Get Address", CAT_READ, false, 1, OBJ_GPU, PROPS_IFACE, "Get", "ss", { GPU_IFACE, "Address" }, 0, { OK } },
        { "Get Name", CAT_READ, false, 1, OBJ_GPU, PROPS_IFACE, "Get", "ss", { GPU_IFACE, "Name" }, 0, { OK } },
        { "Get IommuGroups", CAT_READ, false, 1, OBJ_GPU, PROPS_IFACE, "Get", "ss", { GPU_IFACE, "IommuGroups" }, 0, { OK } },
        { "Get BootVga", CAT_READ, false, 1, OBJ_GPU, PROPS_IFACE, "Get", "ss", { GPU_IFACE, "BootVga" }, 0, { OK } },
        { "Get DefaultMode", CAT_READ, false, 1, OBJ_GPU, PROPS_IFACE, "Get", "ss", { GPU_IFACE, "DefaultMode" }, 0, { OK } },
        { "GetAll Gpu", CAT_READ, false, 3, OBJ_GPU, PROPS_IFACE, "GetAll", "s", { GPU_IFACE }, 0, { OK } },
        { "GetAll Manager", CAT_READ, false, 1, OBJ_MANAGER, PROPS_IFACE, "GetAll", "s", { MANAGER_IFACE }, 0, { OK } },
        { "ListGpus", CAT_READ, false, 3, OBJ_MANAGER, MANAGER_IFACE, "ListGpus", "", {}, 0, { OK } },
        { "GetGpu \"\"", CAT_READ, false, 1, OBJ_MANAGER, MANAGER_IFACE, "GetGpu", "s", { "" }, 0, { OK } },
        { "GetGpu slot", CAT_READ, false, 1, OBJ_MANAGER, MANAGER_IFACE, "GetGpu", "s", { A_SLOT }, 0, { OK } },
        { "GetGpu function", CAT_READ, false, 1, OBJ_MANAGER, MANAGER_IFACE, "GetGpu", "s", { A_FUNC }, 0, { OK } },
        { "GetGpu short", CAT_READ, false, 1, OBJ_MANAGER, MANAGER_IFACE, "GetGpu", "s", { A_SHORT }, 0, { OK } },
};

static const CallKind mixed_calls[] = {
        { "Plan vfio", CAT_PLAN, false, 2, OBJ_MANAGER, MANAGER_IFACE, "Plan", "ss", { A_SLOT, "vfio" }, 0, { OK } },
        { "Plan host", CAT_PLAN, false, 2, OBJ_MANAGER, MANAGER_IFACE, "Plan", "ss", { A_SLOT, "host" }, 0, { OK } },
        { "ListHolders", CAT_HOLDERS, false, 1, OBJ_MANAGER, MANAGER_IFACE, "ListHolders", "s", { A_SLOT }, 0, { OK } },
        { "GetGpu unknown", CAT_INVALID, false, 1, OBJ_MANAGER, MANAGER_IFACE, "GetGpu", "s", { "0000:7f:1f" }, 0,
          { E_NO_GPU } },
        { "GetGpu path", CAT_INVALID, false, 1, OBJ_MANAGER, MANAGER_IFACE, "GetGpu", "s", { "../../../etc" }, 0,
          { E_INVALID } },
        { "GetGpu long", CAT_INVALID, false, 1, OBJ_MANAGER, MANAGER_IFACE, "GetGpu", "s", { A_LONG }, 0,
          { E_INVALID } },
        { "GetGpu wrong signature", CAT_INVALID, false, 1, OBJ_MANAGER, MANAGER_IFACE, "GetGpu", "u", {}, 0,
          { E_INVALID } },
        { "Plan unknown mode", CAT_INVALID, false, 1, OBJ_MANAGER, MANAGER_IFACE, "Plan", "ss", { A_SLOT, "warp" },
          0, { E_INVALID } },
        { "Plan mode mixed", CAT_INVALID, false, 1, OBJ_MANAGER, MANAGER_IFACE, "Plan", "ss", { A_SLOT, "mixed" },
          0, { E_INVALID } },
        { "Plan unknown GPU", CAT_INVALID, false, 1, OBJ_MANAGER, MANAGER_IFACE, "Plan", "ss",
          { "0000:7f:1f", "vfio" }, 0, { E_NO_GPU } },
        { "ListHolders malformed", CAT_INVALID, false, 1, OBJ_MANAGER, MANAGER_IFACE, "ListHolders", "s",
          { "zz:zz" }, 0, { E_INVALID } },
        { "Switch unknown mode", CAT_INVALID, false, 1, OBJ_MANAGER, MANAGER_IFACE, "Switch", "sst",
          { A_SLOT, "warp" }, 0, { E_INVALID } },
        { "Switch bad flags", CAT_INVALID, false, 1, OBJ_MANAGER, MANAGER_IFACE, "Switch", "sst",
          { A_SLOT, "vfio" }, 0x80, { E_INVALID } },
        { "Switch unknown GPU", CAT_INVALID, false, 1, OBJ_MANAGER, MANAGER_IFACE, "Switch", "sst",
          { "0000:7f:1f", "host" }, 0, { E_NO_GPU } },
        { "Switch malformed", CAT_INVALID, false, 1, OBJ_MANAGER, MANAGER_IFACE, "Switch", "sst",
          { "0000:01:00/../../devices", "vfio" }, 0, { E_INVALID } },
        { "Switch wrong signature", CAT_INVALID, false, 1, OBJ_MANAGER, MANAGER_IFACE, "Switch", "ss",
          { A_SLOT, "vfio" }, 0, { E_INVALID } },
        { "SetDefaultMode unknown mode", CAT_INVALID, false, 1, OBJ_MANAGER, MANAGER_IFACE, "SetDefaultMode", "ss",
          { A_SLOT, "sideways" }, 0, { E_INVALID } },
        { "unknown method", CAT_INVALID, false, 1, OBJ_MANAGER, MANAGER_IFACE, "Frobnicate", "", {}, 0,
          { E_UNKNOWN_METHOD } },
        { "Get unknown property", CAT_INVALID, false, 1, OBJ_GPU, PROPS_IFACE, "Get", "ss",
          { GPU_IFACE, "Temperature" }, 0, { E_UNKNOWN_PROPERTY } },
        { "Get unknown interface", CAT_INVALID, false, 1, OBJ_GPU, PROPS_IFACE, "Get", "ss",
          { GPUSWITCH_BUS_NAME ".Nope", "Mode" }, 0, { E_UNKNOWN_PROPERTY, E_UNKNOWN_INTERFACE } },
        { "Get unknown GPU object", CAT_INVALID, false, 1, OBJ_NO_GPU, PROPS_IFACE, "Get", "ss",
          { GPU_IFACE, "Mode" }, 0, { E_UNKNOWN_OBJECT, E_UNKNOWN_INTERFACE, E_UNKNOWN_PROPERTY } },
        /* the bus policy refuses it for users; the daemon for root */
        { "Set read-only property", CAT_INVALID, false, 1, OBJ_GPU, PROPS_IFACE, "Set", "ssv",
          { GPU_IFACE, "Mode", "vfio" }, 0, { E_DENIED, E_READ_ONLY } },
        { "Switch vfio", CAT_SWITCH, true, 1, OBJ_MANAGER, MANAGER_IFACE, "Switch", "sst", { A_SLOT, "vfio" }, 0,
          { E_BUSY, E_INTERACTIVE, E_DENIED } },
        { "Switch host", CAT_SWITCH, true, 1, OBJ_MANAGER, MANAGER_IFACE, "Switch", "sst", { "", "host" }, 0,
          { E_BUSY, E_INTERACTIVE, E_DENIED } },
        { "Switch vfio terminating", CAT_SWITCH, true, 1, OBJ_MANAGER, MANAGER_IFACE, "Switch", "sst",
          { A_FUNC, "vfio" }, 1, { E_BUSY, E_INTERACTIVE, E_DENIED } },
        { "SetDefaultMode", CAT_SWITCH, true, 1, OBJ_MANAGER, MANAGER_IFACE, "SetDefaultMode", "ss",
          { A_SLOT, "keep" }, 0, { E_INTERACTIVE, E_DENIED } },
};

/* Answers that mean the call got none: it never reached the daemon or the
 * daemon never replied. */
static const char *const no_reply_errors[] = {
        "org.freedesktop.DBus.Error.Timeout",         "org.freedesktop.DBus.Error.NoReply",
        "org.freedesktop.DBus.Error.Disconnected",    "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.NameHasNoOwner",  "org.freedesktop.DBus.Error.Spawn.ChildExited",
        "org.freedesktop.DBus.Error.Spawn.ChildSignaled", "org.freedesktop.DBus.Error.Spawn.Failed",
};

typedef enum Outcome { OUT_EXPECTED, OUT_UNEXPECTED, OUT_NO_REPLY } Outcome;

typedef struct ErrorCount {
        char *name;
        unsigned count;
} ErrorCount;

typedef struct Samples {
        uint32_t *usec;
        size_t n, allocated;
} Samples;

struct Load;

typedef struct Client {
        struct Load *load;
        sd_bus *bus;
        const CallKind *kind;
        uint64_t sent_usec;
        sd_event_source *timer; /* --rate: the next call's time */
        uint64_t due_usec;
} Client;

typedef struct Load {
        sd_event *event;
        Client *clients;
        unsigned n_clients;
        const CallKind **kinds; /* one entry per unit of weight */
        size_t n_kinds;
        const char *dest;
        char gpu_path[256], slot[32], func[40], short_addr[32], long_arg[3001];
        uint64_t timeout_usec, end_usec, interval_usec;
        unsigned long max_calls, issued, in_flight, waiting;
        uint64_t rng;
        unsigned long outcomes[3];
        Samples all, by_category[_CAT_MAX];
        ErrorCount *errors;
        size_t n_errors;
        unsigned long modes[5]; /* host, vfio, mixed, switching, other: the Mode replies */
        unsigned long unexpected_shown;
        int failure;
} Load;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static int samples_add(Samples *s, uint64_t usec) {
        if (s->n == s->allocated) {
                size_t a = s->allocated ? s->allocated * 2 : 4096;
                uint32_t *p = realloc(s->usec, a * sizeof *p);

                if (!p)
                        return -ENOMEM;
                s->usec = p;
                s->allocated = a;
        }
        s->usec[s->n++] = usec > UINT32_MAX ? UINT32_MAX : (uint32_t) usec;
        return 0;
}

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least q of them at or below it. */
static double percentile_ms(const Samples *s, double q) {
        size_t rank = (size_t) ceil(q * (double) s->n);

        if (s->n == 0)
                return 0;
        if (rank < 1)
                rank = 1;
        return s->usec[rank - 1] / 1000.0;
}

static void count_error(Load *l, const char *name) {
        for (size_t i = 0; i < l->n_errors; i++)
                if (strcmp(l->errors[i].name, name) == 0) {
                        l->errors[i].count++;
                        return;
                }
        ErrorCount *e = realloc(l->errors, (l->n_errors + 1) * sizeof *e);
        if (!e)
                return;
        l->errors = e;
        l->errors[l->n_errors].name = strdup(name);
        l->errors[l->n_errors].count = l->errors[l->n_errors].name ? 1 : 0;
        if (l->errors[l->n_errors].name)
                l->n_errors++;
}

static void count_mode(Load *l, sd_bus_message *reply) {
        static const char *const names[] = { "host", "vfio", "mixed", "switching" };
        const char *mode;
        size_t i;

        if (sd_bus_message_read(reply, "v", "s", &mode) < 0)
                return;
        for (i = 0; i < 4 && strcmp(names[i], mode) != 0; i++)
                ;
        l->modes[i]++;
}

static uint64_t next_random(Load *l) {
        /* xorshift64: the same sequence of calls on every run */
        l->rng ^= l->rng << 13;
        l->rng ^= l->rng >> 7;
        l->rng ^= l->rng << 17;
        return l->rng;
}

static const char *resolve_arg(Load *l, const char *a) {
        if (!a)
                return "";
        if (strcmp(a, A_SLOT) == 0)
                return l->slot;
        if (strcmp(a, A_FUNC) == 0)
                return l->func;
        if (strcmp(a, A_SHORT) == 0)
                return l->short_addr;
        if (strcmp(a, A_LONG) == 0)
                return l->long_arg;
        return a;
}

static int build_call(Load *l, Client *c, const CallKind *k, sd_bus_message **ret) {
        sd_bus_message *m = NULL;
        const char *path = k->object == OBJ_MANAGER ? MANAGER_PATH
                           : k->object == OBJ_GPU   ? l->gpu_path
                                                    : GPUSWITCH_GPU_PATH_PREFIX "/0000_7f_1f";
        size_t a = 0;
        int r;

        r = sd_bus_message_new_method_call(c->bus, &m, l->dest, path, k->interface, k->member);
        for (const char *t = k->signature; r >= 0 && *t; t++)
                switch (*t) {
                case 's':
                        r = sd_bus_message_append(m, "s", resolve_arg(l, k->args[a++]));
                        break;
                case 't':
                        r = sd_bus_message_append(m, "t", k->flags);
                        break;
                case 'u':
                        r = sd_bus_message_append(m, "u", 7u);
                        break;
                case 'v':
                        r = sd_bus_message_append(m, "v", "s", resolve_arg(l, k->args[a++]));
                        break;
                default:
                        r = -EINVAL;
                }
        if (r < 0) {
                sd_bus_message_unref(m);
                return r;
        }
        *ret = m;
        return 0;
}

static int client_next(Client *c);
static int issue(Client *c);

static void exit_when_idle(Load *l) {
        if (l->in_flight == 0 && l->waiting == 0)
                (void) sd_event_exit(l->event, 0);
}

static bool is_no_reply(const char *name) {
        for (size_t i = 0; i < sizeof no_reply_errors / sizeof *no_reply_errors; i++)
                if (strcmp(no_reply_errors[i], name) == 0)
                        return true;
        return false;
}

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Client *c = userdata;
        Load *l = c->load;
        uint64_t took = now_usec() - c->sent_usec;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        const char *got = e ? e->name : OK;
        Outcome o = OUT_UNEXPECTED;

        l->in_flight--;
        if (e && is_no_reply(e->name))
                o = OUT_NO_REPLY;
        else
                for (size_t i = 0; i < 4 && c->kind->expect[i]; i++)
                        if (strcmp(c->kind->expect[i], got) == 0)
                                o = OUT_EXPECTED;
        l->outcomes[o]++;
        if (e)
                count_error(l, e->name);
        if (o != OUT_EXPECTED && l->unexpected_shown++ < 10)
                fprintf(stderr, "bus-load: %s: %s %s%s%s\n", c->kind->name,
                        o == OUT_NO_REPLY ? "no reply:" : "unexpected answer", e ? e->name : "a method return",
                        e && e->message ? ": " : "", e && e->message ? e->message : "");
        if (!e && strcmp(c->kind->name, "Get Mode") == 0)
                count_mode(l, reply);
        if (samples_add(&l->all, took) < 0 || samples_add(&l->by_category[c->kind->category], took) < 0)
                l->failure = -ENOMEM;

        if (client_next(c) <= 0)
                exit_when_idle(l);
        return 0;
}

static bool load_done(Load *l) {
        return l->failure < 0 || l->issued >= l->max_calls || (l->end_usec && now_usec() >= l->end_usec);
}

static int on_due(sd_event_source *s, uint64_t usec, void *userdata) {
        Client *c = userdata;

        c->load->waiting--;
        if (issue(c) <= 0)
                exit_when_idle(c->load);
        return 0;
}

/* After a reply, or at the start: the client's next call, at once, or with
 * --rate when its pace says (never making up for a late reply: a slow
 * answer is measured as slow, not hidden behind a burst). */
static int client_next(Client *c) {
        Load *l = c->load;
        uint64_t now = now_usec();
        int r;

        if (load_done(l))
                return 0;
        if (l->interval_usec == 0)
                return issue(c);
        c->due_usec += l->interval_usec;
        if (c->due_usec < now)
                c->due_usec = now;
        if (!c->timer)
                r = sd_event_add_time(l->event, &c->timer, CLOCK_MONOTONIC, c->due_usec, 1, on_due, c);
        else {
                r = sd_event_source_set_time(c->timer, c->due_usec);
                if (r >= 0)
                        r = sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
        }
        if (r < 0) {
                fprintf(stderr, "bus-load: arming a timer: %s\n", strerror(-r));
                l->failure = r;
                return r;
        }
        l->waiting++;
        return 1;
}

/* The next call on this client's connection; 0 when there is nothing more to do. */
static int issue(Client *c) {
        Load *l = c->load;
        sd_bus_message *m = NULL;
        int r;

        if (load_done(l))
                return 0;
        c->kind = l->kinds[next_random(l) % l->n_kinds];
        r = build_call(l, c, c->kind, &m);
        if (r < 0) {
                fprintf(stderr, "bus-load: building %s: %s\n", c->kind->name, strerror(-r));
                l->failure = r;
                return r;
        }
        c->sent_usec = now_usec();
        r = sd_bus_call_async(c->bus, NULL, m, on_reply, c, l->timeout_usec);
        sd_bus_message_unref(m);
        if (r < 0) {
                /* the connection is gone: this call got no reply */
                fprintf(stderr, "bus-load: sending %s: %s\n", c->kind->name, strerror(-r));
                l->issued++;
                l->outcomes[OUT_NO_REPLY]++;
                count_error(l, "(not sent)");
                return 0;
        }
        l->issued++;
        l->in_flight++;
        return 1;
}

/* The GPU's object and addresses, asked once before the load. */
static int find_gpu(Load *l, const char *gpu) {
        sd_bus *bus = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *path;
        char *addr = NULL;
        unsigned d, b, s;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return fprintf(stderr, "bus-load: connecting to the system bus: %s\n", strerror(-r)), r;
        r = sd_bus_call_method(bus, l->dest, MANAGER_PATH, MANAGER_IFACE, "GetGpu", &error, &reply, "s", gpu);
        if (r >= 0)
                r = sd_bus_message_read(reply, "o", &path);
        if (r >= 0)
                snprintf(l->gpu_path, sizeof l->gpu_path, "%s", path);
        sd_bus_message_unref(reply);
        if (r >= 0)
                r = sd_bus_get_property_string(bus, l->dest, l->gpu_path, GPU_IFACE, "Address", &error, &addr);
        sd_bus_flush_close_unref(bus);
        if (r < 0) {
                fprintf(stderr, "bus-load: finding GPU '%s' on %s: %s\n", gpu, l->dest,
                        error.message ? error.message : strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        if (sscanf(addr, "%x:%x:%x", &d, &b, &s) != 3) {
                fprintf(stderr, "bus-load: the GPU's Address '%s' is not a slot address\n", addr);
                free(addr);
                return -EINVAL;
        }
        free(addr);
        snprintf(l->slot, sizeof l->slot, "%04x:%02x:%02x", d, b, s);
        snprintf(l->func, sizeof l->func, "%s.1", l->slot);
        snprintf(l->short_addr, sizeof l->short_addr, "%02x:%02x", b, s);
        return 0;
}

static int add_kinds(Load *l, const CallKind *table, size_t n) {
        bool root = geteuid() == 0;

        for (size_t i = 0; i < n; i++) {
                if (table[i].unprivileged_only && root)
                        continue;
                for (unsigned w = 0; w < table[i].weight; w++) {
                        const CallKind **k = realloc(l->kinds, (l->n_kinds + 1) * sizeof *k);

                        if (!k)
                                return -ENOMEM;
                        l->kinds = k;
                        l->kinds[l->n_kinds++] = &table[i];
                }
        }
        return 0;
}

static void print_latency(const char *what, Samples *s) {
        qsort(s->usec, s->n, sizeof *s->usec, cmp_u32);
        printf("%-8s %7zu calls  p50 %.2f  p90 %.2f  p99 %.2f  max %.2f ms\n", what, s->n, percentile_ms(s, 0.50),
               percentile_ms(s, 0.90), percentile_ms(s, 0.99), percentile_ms(s, 1.0));
}

static int cmp_errors(const void *a, const void *b) {
        const ErrorCount *x = a, *y = b;
        return x->count > y->count ? -1 : x->count < y->count;
}

static void print_summary(Load *l, bool mixed, double seconds) {
        printf("bus-load: %s, %u clients%s, %lu calls in %.1f s (%.0f calls/s)\n", mixed ? "mixed" : "read",
               l->n_clients, l->interval_usec ? " paced" : " back to back", l->issued, seconds,
               seconds > 0 ? l->issued / seconds : 0.0);
        printf("answered as expected %lu, answered otherwise %lu, no reply %lu\n", l->outcomes[OUT_EXPECTED],
               l->outcomes[OUT_UNEXPECTED], l->outcomes[OUT_NO_REPLY]);
        print_latency("all", &l->all);
        for (int c = 0; c < _CAT_MAX; c++)
                if (l->by_category[c].n > 0 && (mixed || c != CAT_READ))
                        print_latency(category_names[c], &l->by_category[c]);
        printf("Mode replies: host %lu, vfio %lu, mixed %lu, switching %lu, other %lu\n", l->modes[0], l->modes[1],
               l->modes[2], l->modes[3], l->modes[4]);
        if (l->n_errors > 0)    /* qsort() of NULL is undefined, even for none */
                qsort(l->errors, l->n_errors, sizeof *l->errors, cmp_errors);
        for (size_t i = 0; i < l->n_errors; i++)
                printf("error %s %u\n", l->errors[i].name, l->errors[i].count);
}

/* --first-reply: the connection made first, then one call timed alone:
 * with the service not running, its activation until it answers. */
static int first_reply(const char *dest, double timeout) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        sd_bus *bus = NULL;
        uint64_t start;
        int r;

        r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_set_method_call_timeout(bus, (uint64_t) (timeout * 1e6));
        if (r < 0) {
                fprintf(stderr, "bus-load: connecting to the system bus: %s\n", strerror(-r));
                sd_bus_unref(bus);
                return 1;
        }
        start = now_usec();
        r = sd_bus_call_method(bus, dest, MANAGER_PATH, PROPS_IFACE, "Get", &error, &reply, "ss", MANAGER_IFACE,
                               "Version");
        if (r >= 0)
                printf("first reply %.2f ms\n", (now_usec() - start) / 1000.0);
        else
                fprintf(stderr, "bus-load: Get Version from %s: %s\n", dest, error.message ? error.message : strerror(-r));
        sd_bus_error_free(&error);
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(bus);
        return r < 0 ? 1 : 0;
}

static void help(void) {
        printf("bus-load [--read|--mixed] [OPTIONS...]\n\n"
               "Calls gpuswitchd from many clients at once and prints reply times.\n\n"
               "  --read            Property reads, ListGpus, GetGpu (default)\n"
               "  --mixed           Reads and calls that must be refused\n"
               "  -n --clients=N    Clients, each its own bus connection (default 50)\n"
               "  -c --calls=N      Calls in all (default 10000)\n"
               "  -d --duration=SEC Call for this long instead of a count\n"
               "  -g --gpu=GPU      The GPU (default \"\": the only one)\n"
               "     --dest=NAME    The service (default " GPUSWITCH_BUS_NAME ")\n"
               "     --rate=N       N calls a second from all clients together, each\n"
               "                    client paced (default: each as fast as answered)\n"
               "  -t --timeout=SEC  A call without reply after this is counted as none (default 30)\n"
               "     --seed=N       The call sequence (default 1)\n"
               "     --first-reply  Time one call alone, the connection made first\n"
               "                    (with the service not running: its activation)\n");
}

static void load_free(Load *l) {
        for (unsigned i = 0; l->clients && i < l->n_clients; i++) {
                sd_event_source_unref(l->clients[i].timer);
                sd_bus_flush_close_unref(l->clients[i].bus);
        }
        free(l->clients);
        free(l->kinds);
        free(l->all.usec);
        for (int c = 0; c < _CAT_MAX; c++)
                free(l->by_category[c].usec);
        for (size_t i = 0; i < l->n_errors; i++)
                free(l->errors[i].name);
        free(l->errors);
        sd_event_unref(l->event);
}

int main(int argc, char *argv[]) {
        enum { ARG_READ = 0x100, ARG_MIXED, ARG_DEST, ARG_SEED, ARG_RATE, ARG_FIRST_REPLY };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "read", no_argument, NULL, ARG_READ },
                { "mixed", no_argument, NULL, ARG_MIXED },
                { "clients", required_argument, NULL, 'n' },
                { "calls", required_argument, NULL, 'c' },
                { "duration", required_argument, NULL, 'd' },
                { "gpu", required_argument, NULL, 'g' },
                { "dest", required_argument, NULL, ARG_DEST },
                { "timeout", required_argument, NULL, 't' },
                { "seed", required_argument, NULL, ARG_SEED },
                { "rate", required_argument, NULL, ARG_RATE },
                { "first-reply", no_argument, NULL, ARG_FIRST_REPLY },
                {}
        };
        Load l = { .dest = GPUSWITCH_BUS_NAME, .n_clients = 50, .max_calls = 10000, .rng = 1 };
        double duration = 0, timeout = 30, rate = 0;
        const char *gpu = "";
        bool mixed = false, once = false;
        uint64_t start;
        char *end;
        int opt, r;

        while ((opt = getopt_long(argc, argv, "hn:c:d:g:t:", options, NULL)) >= 0) {
                errno = 0;
                switch (opt) {
                case 'h':
                        help();
                        return 0;
                case ARG_READ:
                        mixed = false;
                        break;
                case ARG_MIXED:
                        mixed = true;
                        break;
                case 'n':
                        l.n_clients = (unsigned) strtoul(optarg, &end, 10);
                        if (errno || *end || l.n_clients < 1 || l.n_clients > 1000)
                                return fprintf(stderr, "bus-load: --clients takes 1 to 1000\n"), 2;
                        break;
                case 'c':
                        l.max_calls = strtoul(optarg, &end, 10);
                        if (errno || *end || l.max_calls < 1)
                                return fprintf(stderr, "bus-load: --calls takes a positive number\n"), 2;
                        break;
                case 'd':
                        duration = strtod(optarg, &end);
                        if (errno || *end || duration <= 0)
                                return fprintf(stderr, "bus-load: --duration takes seconds\n"), 2;
                        break;
                case 'g':
                        gpu = optarg;
                        break;
                case ARG_DEST:
                        l.dest = optarg;
                        break;
                case 't':
                        timeout = strtod(optarg, &end);
                        if (errno || *end || timeout <= 0)
                                return fprintf(stderr, "bus-load: --timeout takes seconds\n"), 2;
                        break;
                case ARG_FIRST_REPLY:
                        once = true;
                        break;
                case ARG_RATE:
                        rate = strtod(optarg, &end);
                        if (errno || *end || rate <= 0)
                                return fprintf(stderr, "bus-load: --rate takes calls per second\n"), 2;
                        break;
                case ARG_SEED:
                        l.rng = strtoull(optarg, &end, 10);
                        if (errno || *end || l.rng == 0)
                                return fprintf(stderr, "bus-load: --seed takes a positive number\n"), 2;
                        break;
                default:
                        return 2;
                }
        }
        if (optind < argc)
                return fprintf(stderr, "bus-load: unexpected argument '%s'\n", argv[optind]), 2;
        if (once)
                return first_reply(l.dest, timeout);
        if (duration > 0)
                l.max_calls = ULONG_MAX;
        l.timeout_usec = (uint64_t) (timeout * 1e6);
        memset(l.long_arg, 'a', sizeof l.long_arg - 1);

        r = add_kinds(&l, read_calls, sizeof read_calls / sizeof *read_calls);
        if (r >= 0 && mixed)
                r = add_kinds(&l, mixed_calls, sizeof mixed_calls / sizeof *mixed_calls);
        if (r >= 0)
                r = find_gpu(&l, gpu);
        if (r >= 0)
                r = sd_event_default(&l.event);
        if (r >= 0) {
                l.clients = calloc(l.n_clients, sizeof *l.clients);
                if (!l.clients)
                        r = -ENOMEM;
        }
        for (unsigned i = 0; r >= 0 && i < l.n_clients; i++) {
                l.clients[i].load = &l;
                r = sd_bus_open_system(&l.clients[i].bus);
                if (r >= 0)
                        r = sd_bus_attach_event(l.clients[i].bus, l.event, 0);
                if (r < 0)
                        fprintf(stderr, "bus-load: client %u: connecting to the system bus: %s\n", i, strerror(-r));
        }
        if (r < 0) {
                load_free(&l);
                return 1;
        }

        start = now_usec();
        if (duration > 0)
                l.end_usec = start + (uint64_t) (duration * 1e6);
        l.interval_usec = rate > 0 ? (uint64_t) (l.n_clients * 1e6 / rate) : 0;
        for (unsigned i = 0; i < l.n_clients; i++) {
                /* paced clients spread over one interval */
                l.clients[i].due_usec = start + i * l.interval_usec / l.n_clients - l.interval_usec;
                (void) client_next(&l.clients[i]);
        }
        if (l.in_flight > 0 || l.waiting > 0) {
                r = sd_event_loop(l.event);
                if (r < 0)
                        fprintf(stderr, "bus-load: event loop: %s\n", strerror(-r));
        }
        print_summary(&l, mixed, (now_usec() - start) / 1e6);

        r = l.failure < 0 || r < 0 || l.outcomes[OUT_NO_REPLY] > 0 ? 1 : l.outcomes[OUT_UNEXPECTED] > 0 ? 3 : 0;
        load_free(&l);
        return r;
}
