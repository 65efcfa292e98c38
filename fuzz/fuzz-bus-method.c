/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's bus methods on any arguments: its real vtables served on a
 * direct connection (a socketpair, no dbus-daemon) over the simulated kernel
 * of tests/unit/fake-sysfs.c, one fresh daemon and kernel per input.
 *
 * An input is up to MAX_LINES lines, each a method call sent at once
 * (they run concurrently, as a busy bus would have them):
 *     PATH|INTERFACE|MEMBER|SIGNATURE|ARG|ARG...
 * or "-": wait for the replies to every call so far before the next.
 * A first or second line "polkit:ANSWER" makes the caller an ordinary user (uid
 * 65534) and has polkit's CheckAuthorization, which the daemon sends to the
 * caller's end of the direct connection, answered with ANSWER: yes, no,
 * challenge, error (an error reply) or garbage (a reply of the wrong type);
 * the bus daemon's GetConnectionUnixUser, on the same end, says 65534, or
 * 0 for ANSWER "root".
 * Without it the caller is root, whom the daemon does not ask polkit for.
 * A first or second line "config:TEXT" adds TEXT (C escapes such as \n
 * undone) to the GPU's [Gpu 0000:01:00] section of the daemon's config
 * file: HostDriver=, StopServices=, AllowBootVga= and the like; an input
 * whose config the daemon would refuse, or that manages another slot than
 * 0000:01:00, is not run.
 * PATH "" is /org/gpuswitch1, INTERFACE "" is none; each ARG is read as the
 * signature's next type says (s o g: the text; y n q i u x t: a number;
 * b: "1"/"true"; d: a float); missing ones are empty; a signature with a
 * container or a file descriptor is not sent.  The signature may
 * be any, wrong ones included; a call that libsystemd refuses to build
 * (a bad name, text that is not UTF-8) is not sent, as dbus-daemon would
 * not pass it on.
 *
 * It aborts when:
 * - a call gets no reply (the daemon hung, crashed its connection or lost
 *   the request), or an error reply without a name;
 * - any write to sysfs is not one of the kernel sequence's writes for a
 *   function of the managed GPU (driver_override of the function itself,
 *   drivers/NAME/{bind,unbind} or drivers_probe with the function's own
 *   address as the value, NAME a plain driver name);
 * - any file is made or changed outside the fake tree, the config file's
 *   folder and the state folder (fuzz-guard.c), or a path there has "..";
 * - the GPU is left half-switched (some functions on vfio-pci or with an
 *   override, others not), the NIC or the root port moved, or the config
 *   file left unreadable. */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "errors.h"
#include "fake-sysfs.h"
#include "fuzz-guard.h"
#include "bus.h"
#include "manager.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINES 12
#define MAX_ARGS 8
#define REPLY_DEADLINE_USEC (10ULL * 1000 * 1000)

#define FAIL(...) do {                                                          \
        guard_arm(false);                                                       \
        fprintf(stderr, "fuzz-bus-method: " __VA_ARGS__);                       \
        fputc('\n', stderr);                                                    \
        abort();                                                                \
} while (0)

static const char *const gpu_functions[] = { "0000:01:00.0", "0000:01:00.1", "0000:01:00.2" };
static const char config_text[] =
        "# the fuzzer's daemon\n[Daemon]\nGpus=0000:01:00\n\n[Gpu 0000:01:00]\nDefaultMode=host\n";

static char *base, *etc_dir, *state_dir, *config_path;

typedef enum PolkitAnswer {
        POLKIT_NOT_ASKED,       /* the caller is root */
        POLKIT_YES,
        POLKIT_NO,
        POLKIT_CHALLENGE,
        POLKIT_ERROR,
        POLKIT_GARBAGE,
        POLKIT_ROOT,            /* the bus daemon says the caller is uid 0 */
} PolkitAnswer;

static PolkitAnswer polkit_answer_from_line(const char *line) {
        static const char *const names[] = {
                [POLKIT_YES] = "yes", [POLKIT_NO] = "no", [POLKIT_CHALLENGE] = "challenge",
                [POLKIT_ERROR] = "error", [POLKIT_GARBAGE] = "garbage", [POLKIT_ROOT] = "root",
        };

        if (!line || !g_str_has_prefix(line, "polkit:"))
                return POLKIT_NOT_ASKED;
        for (size_t i = POLKIT_YES; i < ELEMENTSOF(names); i++)
                if (streq(line + strlen("polkit:"), names[i]))
                        return (PolkitAnswer) i;
        return POLKIT_NO;
}

/* polkitd, on the caller's end of the connection: whatever the call's
 * arguments, it answers as told (a plain object callback, not a vtable,
 * so that a reply of the wrong type goes out too). */
/* The bus daemon, asked who the caller is: uid 65534, or 0 for "root". */
static int bus_driver(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        if (!sd_bus_message_is_method_call(m, "org.freedesktop.DBus", "GetConnectionUnixUser"))
                return 0;
        return sd_bus_reply_method_return(m, "u", *(PolkitAnswer *) userdata == POLKIT_ROOT ? 0u : 65534u);
}

static int polkit_authority(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        if (!sd_bus_message_is_method_call(m, "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization"))
                return 0;
        switch (*(PolkitAnswer *) userdata) {
        case POLKIT_YES:
                return sd_bus_reply_method_return(m, "(bba{ss})", 1, 0, 0);
        case POLKIT_CHALLENGE:
                return sd_bus_reply_method_return(m, "(bba{ss})", 0, 1, 0);
        case POLKIT_ERROR:
                return sd_bus_reply_method_errorf(m, "org.freedesktop.PolicyKit1.Error.Failed", "fuzzed failure");
        case POLKIT_GARBAGE:
                return sd_bus_reply_method_return(m, "s", "yes");
        default:
                return sd_bus_reply_method_return(m, "(bba{ss})", 0, 0, 0);
        }
}

/* Both ends of a socketpair carry the euid of the thread that made it as
 * their peer's (SO_PEERCRED): made as uid 65534 for an ordinary caller.
 * The raw syscall changes this thread only, and back.  Run by an ordinary
 * user, the fuzzer is one already: the daemon asks polkit for every
 * caller, and without a "polkit:" line nobody answers it but sd-bus. */
static void make_socketpair(bool as_user, int pair[2]) {
        bool setuid = as_user && geteuid() == 0;

        if (setuid && syscall(SYS_setresuid, -1, 65534, -1) < 0)
                FAIL("cannot take uid 65534 for an ordinary caller: %m");
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
                abort();
        if (setuid && syscall(SYS_setresuid, -1, 0, -1) < 0)
                abort();
}

typedef struct Call {
        int index;
        bool answered;
        bool error;
        char *text;
} Call;

static bool is_gpu_function(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(gpu_functions); i++)
                if (streq(s, gpu_functions[i]))
                        return true;
        return false;
}

/* "PREFIX<name>SUFFIX" with a non-empty name and no '/' in it */
static bool split_name(const char *rel, const char *prefix, const char *suffix, char *name, size_t len) {
        size_t lp = strlen(prefix), ls = strlen(suffix), lr = strlen(rel);

        if (lr <= lp + ls || strncmp(rel, prefix, lp) != 0 || !streq(rel + lr - ls, suffix) ||
            lr - lp - ls >= len)
                return false;
        memcpy(name, rel + lp, lr - lp - ls);
        name[lr - lp - ls] = 0;
        return !strchr(name, '/');
}

static SysfsWriteFunc kernel_write;
static SysfsLoadFunc kernel_load;

/* Every sysfs write the daemon makes: only the kernel sequence (with the
 * power hold and the reset), only on the GPU's own functions. */
static int checked_write(Sysfs *s, const char *path, const char *value) {
        size_t rl = strlen(s->root);
        const char *rel = path + rl + 1;
        char name[256];
        bool ok = false;

        if (strncmp(path, s->root, rl) != 0 || path[rl] != '/')
                FAIL("sysfs write outside the tree: %s <- '%s'", path, value);
        if (split_name(rel, "bus/pci/devices/", "/driver_override", name, sizeof name))
                ok = is_gpu_function(name) && (streq(value, "\n") || pci_driver_name_is_valid(value));
        else if (split_name(rel, "bus/pci/drivers/", "/unbind", name, sizeof name) ||
                 split_name(rel, "bus/pci/drivers/", "/bind", name, sizeof name))
                ok = pci_driver_name_is_valid(name) && is_gpu_function(value);
        else if (streq(rel, "bus/pci/drivers_probe"))
                ok = is_gpu_function(value);
        else if (split_name(rel, "bus/pci/devices/", "/power/control", name, sizeof name))
                ok = is_gpu_function(name) && (streq(value, "on") || streq(value, "auto"));
        else if (split_name(rel, "bus/pci/devices/", "/reset", name, sizeof name))
                ok = is_gpu_function(name) && streq(value, "1");
        if (!ok)
                FAIL("a sysfs write that is not the GPU's: %s <- '%s'", rel, value);
        return kernel_write(s, path, value);
}

static int checked_load(Sysfs *s, const char *module) {
        if (!pci_driver_name_is_valid(module) && strncmp(module, "pci:", 4) != 0)
                FAIL("loading a module by a name that is no name: '%s'", module);
        return kernel_load(s, module);
}

static void cleanup(void) {
        guard_remove_tree(base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        gs_log_max_level = getenv("FUZZ_VERBOSE") ? LOG_LEVEL_DEBUG : -1;
        base = guard_make_temp_dir("gpuswitch-fuzz-bus");
        etc_dir = g_build_filename(base, "etc", NULL);
        state_dir = g_build_filename(base, "state", NULL);
        config_path = g_build_filename(etc_dir, "gpuswitch.conf", NULL);
        if (g_mkdir_with_parents(etc_dir, 0755) < 0 || g_mkdir_with_parents(state_dir, 0755) < 0)
                abort();
        /* the fake trees go under base; nothing may reach a real system bus
         * (systemd's StopUnit) or the real state and runtime folders */
        setenv("TMPDIR", base, 1);
        setenv("GPUSWITCH_STATE_DIR", state_dir, 1);
        setenv("GPUSWITCH_RUNTIME_DIR", state_dir, 1);
        setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/gpuswitch-fuzz", 1);
        (void) gs_errors_register();
        atexit(cleanup);
        return 0;
}

/* The config with the input's additions, when the daemon would run on it
 * managing just the GPU. */
static bool put_config(const char *extra) {
        _cleanup_(config_freep) Config *c = NULL;
        g_autofree char *text = g_strconcat(config_text, strempty(extra), NULL);
        PciAddress gpu = { .bus = 1, .function = -1 };

        if (config_parse(text, strlen(text), "fuzz", &c, NULL) < 0 || c->gpus_auto || c->n_gpus != 1 ||
            !pci_address_same_slot(&c->gpus[0], &gpu))
                return false;
        if (!g_file_set_contents(config_path, text, -1, NULL))
                abort();
        return true;
}

/* "1", "-3", "0x10": as strtoull/strtod read it, 0 otherwise. */
static uint64_t number(const char *s) {
        return strtoull(s, NULL, 0);
}

static int append_args(sd_bus_message *m, const char *sig, char **args, size_t n_args) {
        size_t i = 0;
        int r = 0;

        for (const char *t = sig; *t && r >= 0; t++, i++) {
                const char *a = i < n_args ? args[i] : "";

                switch (*t) {
                case 's': case 'o': case 'g':
                        r = sd_bus_message_append_basic(m, *t, a);
                        break;
                case 'b': {
                        int b = streq(a, "1") || streq(a, "true");
                        r = sd_bus_message_append_basic(m, 'b', &b);
                        break;
                }
                case 'y': { uint8_t v = (uint8_t) number(a); r = sd_bus_message_append_basic(m, 'y', &v); break; }
                case 'n': { int16_t v = (int16_t) number(a); r = sd_bus_message_append_basic(m, 'n', &v); break; }
                case 'q': { uint16_t v = (uint16_t) number(a); r = sd_bus_message_append_basic(m, 'q', &v); break; }
                case 'i': { int32_t v = (int32_t) number(a); r = sd_bus_message_append_basic(m, 'i', &v); break; }
                case 'u': { uint32_t v = (uint32_t) number(a); r = sd_bus_message_append_basic(m, 'u', &v); break; }
                case 'x': { int64_t v = (int64_t) number(a); r = sd_bus_message_append_basic(m, 'x', &v); break; }
                case 't': { uint64_t v = number(a); r = sd_bus_message_append_basic(m, 't', &v); break; }
                case 'd': { double v = strtod(a, NULL); r = sd_bus_message_append_basic(m, 'd', &v); break; }
                default:
                        return -EINVAL;     /* containers, fds: not made from text */
                }
        }
        return r;
}

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        if (c->answered)
                FAIL("call %d answered twice: %s", c->index, c->text);
        c->answered = true;
        if (getenv("FUZZ_VERBOSE"))
                fprintf(stderr, "call %d: %s%s%s\n", c->index, e ? e->name : "reply", e ? ": " : "",
                        e ? strempty(e->message) : "");
        if (!e)
                return 0;
        c->error = true;
        if (isempty(e->name))
                FAIL("call %d: an error reply without a name: %s", c->index, c->text);
        /* made by libsystemd on our side: the daemon did not answer */
        if (streq(e->name, SD_BUS_ERROR_NO_REPLY) || streq(e->name, SD_BUS_ERROR_TIMEOUT) ||
            streq(e->name, SD_BUS_ERROR_DISCONNECTED))
                FAIL("call %d not answered (%s: %s): %s", c->index, e->name, strempty(e->message), c->text);
        return 0;
}

/* One line: the call to send, or 0 when it cannot be made. */
static int make_call(sd_bus *client, const char *line, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        g_auto(GStrv) f = g_strsplit(line, "|", 4 + MAX_ARGS);
        size_t n = g_strv_length(f);
        const char *path = n > 0 && *f[0] ? f[0] : GPUSWITCH_MANAGER_PATH;
        const char *iface = n > 1 && *f[1] ? f[1] : NULL;
        const char *member = n > 2 ? f[2] : "";
        const char *sig = n > 3 ? f[3] : "";
        int r;

        r = sd_bus_message_new_method_call(client, &m, GPUSWITCH_BUS_NAME, path, iface, member);
        if (r < 0)
                return 0;
        r = append_args(m, sig, n > 4 ? f + 4 : NULL, n > 4 ? n - 4 : 0);
        if (r < 0)
                return 0;
        *ret = TAKE_PTR(m);
        return 1;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static void check_after(FakeKernel *k) {
        _cleanup_(config_freep) Config *c = NULL;
        g_autofree char *err = NULL;
        size_t on_vfio = 0, on_host = 0;

        /* all on vfio-pci, or all on host drivers (HostDriver= may name any) */
        for (size_t i = 0; i < ELEMENTSOF(gpu_functions); i++) {
                const char *driver = fake_driver(k, gpu_functions[i]), *override = fake_override(k, gpu_functions[i]);

                on_vfio += streq(driver, "vfio-pci") && streq(override, "vfio-pci");
                on_host += !streq(driver, "vfio-pci") && streq(override, "(null)");
        }
        if (on_vfio != ELEMENTSOF(gpu_functions) && on_host != ELEMENTSOF(gpu_functions))
                FAIL("the GPU is left half-switched: %s", fake_state(k));
        if (!streq(fake_driver(k, "0000:02:00.0"), "e1000e") || !streq(fake_override(k, "0000:02:00.0"), "(null)"))
                FAIL("the NIC moved: %s [%s]", fake_driver(k, "0000:02:00.0"), fake_override(k, "0000:02:00.0"));
        if (!streq(fake_driver(k, "0000:00:05.0"), "pcieport"))
                FAIL("the root port moved: %s", fake_driver(k, "0000:00:05.0"));
        if (config_load(config_path, &c, &err) < 0)
                FAIL("the config file is left unreadable: %s", err);
}

static int setup_server(FakeKernel *k, int fd, bool anonymous, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        g_autofree char *err = NULL, *config_error = NULL;
        sd_id128_t id;
        int r;

        r = manager_new(&m);
        if (r < 0)
                return r;
        free(m->config_path);
        m->config_path = strdup(config_path);
        if (!m->config_path)
                return -ENOMEM;
        r = config_load(m->config_path, &m->config, &err);
        if (r < 0)
                return r;
        m->sysfs = k->sysfs;               /* never the real /sys */
        m->sysfs.write = checked_write;
        m->sysfs.load_module = checked_load;
        r = manager_discover(m, &config_error);
        if (r < 0)
                return r;
        if (m->n_gpus != 1)
                return -ENODEV;
        r = sd_bus_new(&m->bus);
        if (r >= 0)
                r = sd_bus_set_fd(m->bus, fd, fd);
        if (r >= 0)
                r = sd_id128_randomize(&id);
        if (r >= 0)
                r = sd_bus_set_server(m->bus, 1, id);
        if (r >= 0)
                /* the caller's EXTERNAL uid would be root's, not the socket's */
                r = sd_bus_set_anonymous(m->bus, anonymous);
        if (r >= 0)
                r = sd_bus_start(m->bus);
        if (r >= 0)
                r = bus_attach(m);
        if (r >= 0)
                r = sd_bus_attach_event(m->bus, m->event, 0);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

static void wait_for_replies(Manager *m, Call *calls, size_t n_calls) {
        uint64_t deadline = now_usec() + REPLY_DEADLINE_USEC;

        for (;;) {
                size_t open_calls = 0;
                int r;

                for (size_t i = 0; i < n_calls; i++)
                        open_calls += !calls[i].answered;
                if (open_calls == 0)
                        return;
                if (now_usec() > deadline)
                        for (size_t i = 0; i < n_calls; i++)
                                if (!calls[i].answered)
                                        FAIL("call %d not answered within %llu s: %s", calls[i].index,
                                             REPLY_DEADLINE_USEC / 1000000, calls[i].text);
                r = sd_event_run(m->event, 100 * 1000);
                if (r < 0)
                        FAIL("the daemon's event loop failed: %s", strerror(-r));
        }
}

static void run(FakeKernel *k, const char *text) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(sd_bus_close_unrefp) sd_bus *client = NULL;
        g_auto(GStrv) lines = g_strsplit(text, "\n", MAX_LINES + 1);
        PolkitAnswer polkit = POLKIT_NOT_ASKED;
        g_autofree char *config_extra = NULL;
        Call calls[MAX_LINES] = {};
        size_t n_calls = 0, first = 0;
        uint64_t deadline;
        bool as_user;
        int pair[2], r;

        for (; first < 2 && lines[first]; first++)
                if (g_str_has_prefix(lines[first], "polkit:") && polkit == POLKIT_NOT_ASKED)
                        polkit = polkit_answer_from_line(lines[first]);
                else if (g_str_has_prefix(lines[first], "config:") && !config_extra)
                        config_extra = g_strcompress(lines[first] + strlen("config:"));
                else
                        break;
        as_user = polkit != POLKIT_NOT_ASKED;
        kernel_write = k->sysfs.write;
        kernel_load = k->sysfs.load_module;
        if (!put_config(config_extra))
                return;
        make_socketpair(as_user, pair);
        r = setup_server(k, pair[0], as_user, &m);
        if (r < 0)
                FAIL("the daemon did not start on the fake kernel: %s", strerror(-r));
        if (sd_bus_new(&client) < 0 || sd_bus_set_fd(client, pair[1], pair[1]) < 0 ||
            sd_bus_set_anonymous(client, as_user) < 0 ||
            /* a sender name on each call, for the daemon to ask polkit about */
            (as_user && sd_bus_set_sender(client, ":1.42") < 0) ||
            (as_user && sd_bus_add_object(client, NULL, "/org/freedesktop/PolicyKit1/Authority", polkit_authority,
                                          &polkit) < 0) ||
            (as_user && sd_bus_add_object(client, NULL, "/org/freedesktop/DBus", bus_driver, &polkit) < 0) ||
            sd_bus_start(client) < 0 || sd_bus_attach_event(client, m->event, 0) < 0)
                abort();
        /* the authentication, both ways, before any call */
        deadline = now_usec() + REPLY_DEADLINE_USEC;
        while (sd_bus_is_ready(client) <= 0 || sd_bus_is_ready(m->bus) <= 0) {
                if (now_usec() > deadline)
                        FAIL("the direct connection did not come up");
                if (sd_event_run(m->event, 100 * 1000) < 0)
                        abort();
        }

        guard_allow(k->root);
        guard_allow(etc_dir);
        guard_allow(state_dir);
        guard_arm(true);

        for (size_t i = first; lines[i] && i < MAX_LINES; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
                Call *c = &calls[n_calls];

                if (streq(lines[i], "-")) {
                        wait_for_replies(m, calls, n_calls);
                        continue;
                }
                if (!make_call(client, lines[i], &msg))
                        continue;
                *c = (Call) { .index = (int) i, .text = lines[i] };
                r = sd_bus_call_async(client, NULL, msg, on_reply, c, 0);
                if (r < 0)
                        continue;   /* refused by libsystemd on sending (e.g. too long) */
                n_calls++;
        }
        wait_for_replies(m, calls, n_calls);

        guard_arm(false);
        guard_forget();
        check_after(k);
        /* the client first: it is attached to the daemon's event loop */
        client = sd_bus_close_unref(client);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        g_autofree char *text = g_strndup((const char *) data, size);   /* up to a NUL, as on the bus */
        FakeKernel *k = fake_kernel_new();

        run(k, text);
        guard_remove_tree(k->root);
        free(k);
        return 0;
}
