/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gpuswitchctl: asks gpuswitchd to move a GPU between its host drivers and
 * vfio-pci, and shows what it manages.
 *
 * --json output has a stable schema (fields are only ever added): it is
 * documented once, in man/gpuswitchctl.1.scd under JSON OUTPUT, which
 * tests/unit/test-docs-coverage.sh keeps in step with the verbs.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus-connect.h"
#include "bus-users.h"
#include "doctor.h"
#include "errors.h"
#include "gpu-arg.h"
#include "gpu-info.h"
#include "gpuswitch-bus.h"
#include "holders-out.h"
#include "json-out.h"
#include "output.h"
#include "monitor.h"
#include "polkit-agent.h"
#include "switch-call.h"
#include "util.h"

#define USEC_PER_SEC UINT64_C(1000000)

static bool arg_json;
static bool arg_force;
static bool arg_keep_holders;
static bool arg_ask_password = true;
static bool arg_quiet;
static unsigned arg_timeout_sec = 120;
static BusTransport arg_transport = BUS_TRANSPORT_LOCAL;
static const char *arg_host;      /* -H's or -M's argument */
static char *arg_where;           /* the bus, the host or the container, for messages */

/* Prints an error of the daemon or the bus in one line and returns the
 * exit code the table gives it. */
static int fail_bus(const char *what, const sd_bus_error *e, int r) {
        const char *name = sd_bus_error_is_set(e) ? e->name : NULL;
        const char *msg = sd_bus_error_is_set(e) && e->message ? e->message : strerror(r < 0 ? -r : r);
        g_autoptr(JsonOut) j = arg_json ? json_out_new() : NULL;
        int code;

        json_out_begin_object(j);
        json_out_member(j, "error");
        json_out_string(j, name ? name : "org.freedesktop.DBus.Error.Failed");
        json_out_member(j, "message");
        json_out_string(j, msg);
        json_out_end_object(j);
        json_out_print(j, stdout, true);

        if (name && (streq(name, SD_BUS_ERROR_SERVICE_UNKNOWN) || streq(name, SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
                     streq(name, SD_BUS_ERROR_DISCONNECTED) ||
                     streq(name, "org.freedesktop.DBus.Error.Spawn.ChildExited") ||
                     streq(name, "org.freedesktop.DBus.Error.Spawn.Failed"))) {
                fprintf(stderr, "gpuswitchctl: cannot reach gpuswitchd on %s: %s\n", arg_where, msg);
                return GS_EXIT_FAILURE;
        }
        if (name && (streq(name, SD_BUS_ERROR_NO_REPLY) || streq(name, SD_BUS_ERROR_TIMEOUT))) {
                fprintf(stderr, "gpuswitchctl: %s: no answer within %u s; see 'gpuswitchctl status'\n", what,
                        arg_timeout_sec);
                return GS_EXIT_FAILURE;
        }
        code = gs_error_exit_code(name);
        if (code == GS_EXIT_NOT_AUTHORIZED) {
                fprintf(stderr, "gpuswitchctl: %s: not authorized: %s\n", what, msg);
                /* no agent of ours can answer polkit on another machine */
                if (arg_transport != BUS_TRANSPORT_LOCAL && streq(name, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED))
                        fprintf(stderr, "gpuswitchctl: a password cannot be asked over --%s: authorize the user "
                                "with a polkit rule on %s, or run gpuswitchctl there\n",
                                arg_transport == BUS_TRANSPORT_REMOTE ? "host" : "machine", arg_where);
        } else if (name && g_str_has_prefix(name, GPUSWITCH_ERROR_PREFIX))
                /* the daemon's own errors say what failed and where */
                fprintf(stderr, "gpuswitchctl: %s\n", msg);
        else
                fprintf(stderr, "gpuswitchctl: %s: %s\n", what, msg);
        return code;
}

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...) {
        va_list ap;

        fputs("gpuswitchctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\nTry 'gpuswitchctl --help'.\n", stderr);
        return GS_EXIT_USAGE;
}

/* The object path of the GPU argument ("" = the only one). */
static int get_gpu_object(sd_bus *bus, const char *gpu, char **ret, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        int r;

        r = sd_bus_call_method(bus, GPUSWITCH_BUS_NAME, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE, "GetGpu", error, &reply, "s", gpu);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;
        *ret = strdup(path);
        return *ret ? 0 : -ENOMEM;
}

static int verb_status(sd_bus *bus, int argc, char **argv, const char *gpu) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(JsonOut) j = arg_json ? json_out_new() : NULL;
        g_autoptr(GPtrArray) objects = g_ptr_array_new_with_free_func(free);
        const char *object, *address, *name, *mode;
        int r;

        if (*gpu) {
                char *o = NULL;

                r = get_gpu_object(bus, gpu, &o, &error);
                if (r < 0)
                        return fail_bus("status", &error, r);
                g_ptr_array_add(objects, o);
        } else {
                r = sd_bus_call_method(bus, GPUSWITCH_BUS_NAME, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE, "ListGpus", &error, &reply, NULL);
                if (r < 0)
                        return fail_bus("status", &error, r);
                r = sd_bus_message_enter_container(reply, 'a', "(osss)");
                while (r >= 0 && (r = sd_bus_message_read(reply, "(osss)", &object, &address, &name, &mode)) > 0)
                        g_ptr_array_add(objects, strdup(object));
                if (r < 0)
                        return fail_bus("status", &error, r);
        }

        json_out_begin_object(j);
        json_out_member(j, "gpus");
        json_out_begin_array(j);
        for (size_t i = 0; i < objects->len; i++) {
                g_autoptr(GpuInfo) info = NULL;

                r = gpu_info_get(bus, g_ptr_array_index(objects, i), &info, &error);
                if (r < 0)
                        return fail_bus("status", &error, r);
                if (arg_json)
                        gpu_info_to_json(info, j);
                else {
                        if (i > 0)
                                putchar('\n');
                        gpu_info_print(info);
                }
        }
        json_out_end_array(j);
        json_out_end_object(j);

        if (arg_json)
                json_out_print(j, stdout, true);
        else if (objects->len == 0)
                printf("No GPU is managed (see Gpus= in /etc/gpuswitch/gpuswitch.conf).\n");
        return 0;
}

/* nvidia = host, where the display function's host driver is nvidia:
 * checked before anything moves. */
static int check_nvidia(sd_bus *bus, const char *gpu) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *object = NULL;
        g_autoptr(GpuInfo) info = NULL;
        int r;

        r = get_gpu_object(bus, gpu, &object, &error);
        if (r >= 0)
                r = gpu_info_get(bus, object, &info, &error);
        if (r < 0)
                return fail_bus("nvidia", &error, r);
        for (size_t i = 0; i < info->n_functions; i++) {
                const FunctionInfo *f = &info->functions[i];
                unsigned long class_code;

                if (pci_class_parse(f->class_code, &class_code) < 0 || (class_code >> 16) != 0x03)
                        continue;
                if (!f->host_driver || !streq(f->host_driver, "nvidia")) {
                        g_autofree char *msg = g_strdup_printf(
                                "the host driver of %s is %s, not nvidia; use 'gpuswitchctl host' "
                                "(or set HostDriver=nvidia)", f->address,
                                f->host_driver && *f->host_driver ? f->host_driver : "none");

                        sd_bus_error_set(&error, SD_BUS_ERROR_FAILED, msg);
                        return fail_bus("nvidia", &error, -EINVAL);
                }
        }
        return 0;
}

/* --force: the processes about to be ended, named before the daemon ends
 * them, those of other users and of system accounts marked. */
static void announce_holders(sd_bus *bus, const char *gpu) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *comm, *node;
        uint32_t pid, uid;
        unsigned hidden = 0;
        bool first = true;
        BusUsers users;
        int r;

        (void) bus_users_init(bus, arg_transport, &users);
        r = sd_bus_call_method(bus, GPUSWITCH_BUS_NAME, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE, "ListHolders", &error, &reply, "s", gpu);
        if (r < 0)
                return;
        r = sd_bus_message_enter_container(reply, 'a', "(uuss)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(uuss)", &pid, &uid, &comm, &node)) > 0) {
                char user[BUS_USER_NAME_MAX];

                if (HOLDER_IS_HIDDEN(pid, uid)) {
                        hidden++;
                        continue;
                }
                if (first)
                        fprintf(stderr, "gpuswitchctl: --force ends %s %s%s:\n",
                                arg_keep_holders ? "those that block the unbind of what holds" : "what holds",
                                *gpu ? gpu : "the GPU", arg_keep_holders ? " (the others keep running)" : "");
                first = false;
                fprintf(stderr, "  %u %s (%s) holds %s%s\n", pid, comm, bus_users_name(&users, uid, user), node,
                        uid == users.self || users.self == BUS_USERS_SELF_UNKNOWN ? ""
                                : uid < 1000 ? "  [a system account]" : "  [another user]");
        }
        if (hidden > 0)
                fprintf(stderr, "gpuswitchctl: --force ends %s%u process%s of other users that you may not see\n",
                        first ? "" : "also ", hidden, hidden == 1 ? "" : "es");
}

static int do_switch(sd_bus *bus, const char *gpu, const char *mode, const char *verb) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        g_autoptr(GpuInfo) before = NULL, now = NULL;
        const GpuInfo *info;
        char what[64];
        int r;

        snprintf(what, sizeof what, "switching %s to %s", *gpu ? gpu : "the GPU", mode);
        if (arg_force && !arg_quiet)
                announce_holders(bus, gpu);
        r = sd_bus_message_new_method_call(bus, &m, GPUSWITCH_BUS_NAME, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE, "Switch");
        if (r >= 0)
                r = sd_bus_message_append(m, "sst", gpu, mode, switch_flags_from_options(arg_force, arg_keep_holders));
        if (r < 0)
                return fail_bus(what, &error, r);
        /* Not the bus's default 25 s: a GPU may take longer to let go. */
        r = switch_call(bus, gpu, what, m, (uint64_t) arg_timeout_sec * USEC_PER_SEC, !arg_quiet && !arg_json,
                        arg_quiet && !arg_json ? NULL : &before, &error);
        if (r < 0)
                return fail_bus(what, &error, r);
        if (arg_quiet && !arg_json)
                return 0;

        /* The result line needs nothing new: the daemon answers a switch
         * only once it has read every function's driver link back.  JSON
         * shows the drivers themselves, so it asks again. */
        if (!before || arg_json) {
                _cleanup_free_ char *object = NULL;

                r = before ? 0 : get_gpu_object(bus, gpu, &object, &error);
                if (r >= 0)
                        r = gpu_info_get(bus, before ? before->object : object, &now, &error);
                if (r < 0)
                        return fail_bus(verb, &error, r);
        }
        if (arg_json) {
                g_autoptr(JsonOut) j = json_out_new();

                gpu_info_to_json(now, j);
                json_out_print(j, stdout, true);
                return 0;
        }
        info = before ? before : now;
        printf("%s: %s (%zu of %zu functions on %s)\n", info->address, mode, info->n_functions, info->n_functions,
               streq(mode, "vfio") ? "vfio-pci" : "their host drivers");
        return 0;
}

static int verb_vfio(sd_bus *bus, int argc, char **argv, const char *gpu) {
        return do_switch(bus, gpu, "vfio", "vfio");
}

static int verb_host(sd_bus *bus, int argc, char **argv, const char *gpu) {
        return do_switch(bus, gpu, "host", "host");
}

static int verb_nvidia(sd_bus *bus, int argc, char **argv, const char *gpu) {
        int r = check_nvidia(bus, gpu);

        return r != 0 ? r : do_switch(bus, gpu, "host", "nvidia");
}

static int verb_plan(sd_bus *bus, int argc, char **argv, const char *gpu) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(Table) t = table_new(5, "FUNCTION", "CLASS", "NOW", "TARGET", "ACTION");
        g_autoptr(JsonOut) j = arg_json ? json_out_new() : NULL;
        const char *mode = argv[1], *fn, *cls, *from, *to, *action;
        _cleanup_free_ char *object = NULL;
        g_autoptr(GpuInfo) info = NULL;
        size_t moves = 0;
        char what[64];
        int r;

        snprintf(what, sizeof what, "planning %s", mode);
        r = get_gpu_object(bus, gpu, &object, &error);
        if (r >= 0)
                r = gpu_info_get(bus, object, &info, &error);
        if (r >= 0)
                r = sd_bus_call_method(bus, GPUSWITCH_BUS_NAME, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE, "Plan", &error, &reply, "ss",
                                       info->address, mode);
        if (r < 0)
                return fail_bus(what, &error, r);

        json_out_begin_object(j);
        json_out_member(j, "gpu");
        json_out_string(j, info->address);
        json_out_member(j, "mode");
        json_out_string(j, mode);
        json_out_member(j, "steps");
        json_out_begin_array(j);
        r = sd_bus_message_enter_container(reply, 'a', "(sssss)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sssss)", &fn, &cls, &from, &to, &action)) > 0) {
                unsigned long class_code;

                json_out_begin_object(j);
                json_out_member(j, "function");
                json_out_string(j, fn);
                json_out_member(j, "class");
                json_out_string(j, cls);
                json_out_member(j, "from");
                json_out_string(j, *from ? from : NULL);
                json_out_member(j, "to");
                json_out_string(j, *to ? to : NULL);
                json_out_member(j, "action");
                json_out_string(j, action);
                json_out_end_object(j);
                table_add_row(t, fn, pci_class_parse(cls, &class_code) >= 0 ? pci_class_name(class_code) : cls,
                              from, to, action);
                moves += streq(action, "move");
        }
        if (r < 0)
                return fail_bus(what, &error, r);
        json_out_end_array(j);
        json_out_end_object(j);

        if (arg_json)
                json_out_print(j, stdout, true);
        else if (moves == 0)
                printf("%s is in %s mode already: nothing to do.\n", info->address, mode);
        else {
                printf("Switching %s to %s would move %zu function%s:\n\n", info->address, mode, moves,
                       moves == 1 ? "" : "s");
                table_print(t, stdout);
        }
        return 0;
}

static int verb_holders(sd_bus *bus, int argc, char **argv, const char *gpu) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(JsonOut) j = arg_json ? json_out_new() : NULL;
        _cleanup_free_ char *object = NULL;
        g_autoptr(GpuInfo) info = NULL;
        BusUsers users;
        int r;

        (void) bus_users_init(bus, arg_transport, &users);
        r = get_gpu_object(bus, gpu, &object, &error);
        if (r >= 0)
                r = gpu_info_get(bus, object, &info, &error);
        if (r >= 0)
                r = sd_bus_call_method(bus, GPUSWITCH_BUS_NAME, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE, "ListHolders", &error, &reply,
                                       "s", info->address);
        if (r >= 0)
                r = holders_out(reply, info->address, &users, j, stdout);
        if (r < 0)
                return fail_bus("holders", &error, r);
        return 0;
}

static int verb_set_default(sd_bus *bus, int argc, char **argv, const char *gpu) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *object = NULL;
        g_autoptr(GpuInfo) info = NULL;
        const char *mode = argv[1];
        char what[64];
        int r;

        snprintf(what, sizeof what, "setting the default mode of %s", *gpu ? gpu : "the GPU");
        r = sd_bus_call_method(bus, GPUSWITCH_BUS_NAME, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE, "SetDefaultMode", &error, NULL, "ss",
                               gpu, mode);
        if (r >= 0)
                r = get_gpu_object(bus, gpu, &object, &error);
        if (r >= 0)
                r = gpu_info_get(bus, object, &info, &error);
        if (r < 0)
                return fail_bus(what, &error, r);
        if (arg_json) {
                g_autoptr(JsonOut) j = json_out_new();

                gpu_info_to_json(info, j);
                json_out_print(j, stdout, true);
        } else if (!arg_quiet)
                printf("%s: default mode %s (%s)\n", info->address, info->default_mode,
                       streq(mode, "keep") ? "left as it is when gpuswitchd starts"
                                           : "applied when gpuswitchd starts at boot");
        return 0;
}

static int verb_monitor(sd_bus *bus, int argc, char **argv, const char *gpu) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *object = NULL;
        int r;

        if (*gpu) {
                r = get_gpu_object(bus, gpu, &object, &error);
                if (r < 0)
                        return fail_bus("monitor", &error, r);
        }
        r = monitor_run(bus, object, arg_json, &error);
        return r < 0 ? fail_bus("monitor", &error, r) : 0;
}

/* bus is NULL when there is no system bus: doctor says so itself. */
static int verb_doctor(sd_bus *bus, int argc, char **argv, const char *gpu) {
        return doctor_run(bus, gpu, arg_json);
}

typedef int (*VerbFunc)(sd_bus *bus, int argc, char **argv, const char *gpu);

/* argv[0] is the verb; min/max count it.  The GPU is the last argument
 * when there is one past the verb's own. */
typedef struct Verb {
        const char *name;
        int min_args, max_args;
        const char *modes;   /* argv[1] is one of these MODEs, or NULL */
        bool changes;        /* may ask polkit: start an agent */
        VerbFunc run;
} Verb;

static const Verb verbs[] = {
        { "status",      1, 2, NULL,             false, verb_status },
        { "vfio",        1, 2, NULL,             true,  verb_vfio },
        { "host",        1, 2, NULL,             true,  verb_host },
        { "nvidia",      1, 2, NULL,             true,  verb_nvidia },
        { "plan",        2, 3, "vfio host",      false, verb_plan },
        { "holders",     1, 2, NULL,             false, verb_holders },
        { "doctor",      1, 2, NULL,             false, verb_doctor },
        { "monitor",     1, 2, NULL,             false, verb_monitor },
        { "set-default", 2, 3, "host vfio keep", true,  verb_set_default },
};

static void help(void) {
        printf("gpuswitchctl [OPTIONS...] COMMAND [GPU]\n\n"
               "Move a GPU between its host drivers and vfio-pci.\n\n"
               "Commands:\n"
               "  status [GPU]       Show the managed GPUs (the default)\n"
               "  vfio [GPU]         Move every function of the GPU to vfio-pci\n"
               "  host [GPU]         Move every function back to its host driver\n"
               "  nvidia [GPU]       Like host, checking that the host driver is nvidia\n"
               "  plan MODE [GPU]    Show what switching to MODE (vfio, host) would do\n"
               "  holders [GPU]      Show the processes that hold the GPU\n"
               "  doctor [GPU]       Check the setup: IOMMU, vfio-pci, the GPU's group, NVIDIA, polkit\n"
               "                     (exit status 1 when a check fails)\n"
               "  monitor [GPU]      Follow mode changes and switches as they happen\n"
               "  set-default MODE [GPU]\n"
               "                     The mode applied at boot: host, vfio or keep\n\n"
               "GPU is 0000:0a:00, 0a:00 or a function such as 0000:0a:00.1; it may be\n"
               "left out when one GPU is managed.\n\n"
               "Options:\n"
               "  -h --help           Show this help\n"
               "     --version        Show the version\n"
               "     --json           Machine-readable output\n"
               "     --force          End the processes holding the GPU, then switch\n"
               "     --keep-holders   Switch while processes hold the GPU, if none of them\n"
               "                      blocks the unbind: they stay running and lose it\n"
               "     --no-ask-password  Do not ask for a password (polkit)\n"
               "     --timeout=SEC    Give up waiting for a switch after SEC seconds (120)\n"
               "  -q --quiet          Print nothing on success\n"
               "  -H --host=[USER@]HOST[:PORT]\n"
               "                      Switch the GPUs of HOST, over ssh (no password asked)\n"
               "  -M --machine=CONTAINER\n"
               "                      Switch the GPUs of a local container\n\n"
               "Exit status: 0 ok, 1 failure, 2 usage, 3 GPU in use, 4 not authorized,\n"
               "5 no such GPU, 6 busy.\n");
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_JSON, ARG_FORCE, ARG_KEEP_HOLDERS, ARG_NO_ASK_PASSWORD, ARG_TIMEOUT };
        static const struct option options[] = {
                { "help",            no_argument,       NULL, 'h' },
                { "version",         no_argument,       NULL, ARG_VERSION },
                { "json",            no_argument,       NULL, ARG_JSON },
                { "force",           no_argument,       NULL, ARG_FORCE },
                { "keep-holders",    no_argument,       NULL, ARG_KEEP_HOLDERS },
                { "no-ask-password", no_argument,       NULL, ARG_NO_ASK_PASSWORD },
                { "timeout",         required_argument, NULL, ARG_TIMEOUT },
                { "quiet",           no_argument,       NULL, 'q' },
                { "host",            required_argument, NULL, 'H' },
                { "machine",         required_argument, NULL, 'M' },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "hqH:M:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        puts(GPUSWITCH_VERSION);
                        return 0;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_FORCE:
                        arg_force = true;
                        break;
                case ARG_KEEP_HOLDERS:
                        arg_keep_holders = true;
                        break;
                case ARG_NO_ASK_PASSWORD:
                        arg_ask_password = false;
                        break;
                case ARG_TIMEOUT:
                        if (timeout_arg_parse(optarg, &arg_timeout_sec) < 0)
                                return -usage_error("--timeout=%s: expected a number of seconds (1..86400)", optarg);
                        break;
                case 'q':
                        arg_quiet = true;
                        break;
                case 'H': {
                        _cleanup_free_ char *address = NULL;

                        if (bus_remote_address(optarg, &address) < 0)
                                return -usage_error("--host=%s: expected [USER@]HOST[:PORT] (an IPv6 address in brackets)",
                                                    optarg);
                        if (arg_transport == BUS_TRANSPORT_MACHINE)
                                return -usage_error("--host and --machine exclude each other");
                        arg_transport = BUS_TRANSPORT_REMOTE;
                        arg_host = optarg;
                        break;
                }
                case 'M':
                        if (!bus_machine_name_is_valid(optarg))
                                return -usage_error("--machine=%s: not a container name", optarg);
                        if (arg_transport == BUS_TRANSPORT_REMOTE)
                                return -usage_error("--host and --machine exclude each other");
                        arg_transport = BUS_TRANSPORT_MACHINE;
                        arg_host = optarg;
                        break;
                default:
                        return -GS_EXIT_USAGE;
                }
        return 1;
}

static bool have_controlling_tty(void) {
        int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);

        if (fd < 0)
                return false;
        close(fd);
        return true;
}

/* With several GPUs managed and none named, the daemon's error lists them
 * (address, mode, name); the command again with the first one's address
 * goes under it, as an example of what to type. */
static void hint_name_gpu(sd_bus *bus, int n_args, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *object, *address, *name, *mode;

        if (sd_bus_call_method(bus, GPUSWITCH_BUS_NAME, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE,
                               "ListGpus", &error, &reply, NULL) < 0 ||
            sd_bus_message_enter_container(reply, 'a', "(osss)") < 0 ||
            sd_bus_message_read(reply, "(osss)", &object, &address, &name, &mode) <= 0)
                return;
        fputs("For example: gpuswitchctl", stderr);
        for (int i = 0; i < n_args; i++)
                fprintf(stderr, " %s", args[i]);
        fprintf(stderr, " %s\n", address);
}

static int run(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        char gpu[PCI_SLOT_STRLEN];
        const char *verb_name, *gpu_arg = NULL;
        const Verb *verb = NULL;
        int r, n_args;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return -r;

        verb_name = optind < argc ? argv[optind] : "status";
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, verb_name))
                        verb = &verbs[i];
        if (!verb)
                return usage_error("unknown command '%s'", verb_name);

        n_args = optind < argc ? argc - optind : 1;
        if (n_args < verb->min_args || n_args > verb->max_args)
                return usage_error("%s: %s", verb_name, n_args < verb->min_args ? "missing argument" : "too many arguments");
        if (verb->modes && !mode_arg_in(argv[optind + 1], verb->modes))
                return usage_error("%s: unknown mode '%s': expected one of: %s", verb_name, argv[optind + 1],
                                   verb->modes);
        if (n_args == verb->max_args)
                gpu_arg = argv[argc - 1];
        if (gpu_arg_normalize(gpu_arg, gpu) < 0)
                return usage_error("'%s' is not a PCI address such as 0000:0a:00, 0a:00 or 0000:0a:00.1", gpu_arg);
        if (arg_json) {
                const char *why = NULL;

                /* before the daemon is asked anything: a switch must not
                 * happen without the output asked for */
                if (json_out_load(&why) < 0) {
                        fprintf(stderr, "gpuswitchctl: --json needs json-glib (libjson-glib-1.0.so.0), "
                                "which could not be loaded: %s\n", why);
                        return GS_EXIT_FAILURE;
                }
        }

        /* doctor reads this machine's sysfs, modules and config, not the
         * remote one's (as systemctl -H refuses cat and edit) */
        if (arg_transport != BUS_TRANSPORT_LOCAL && verb->run == verb_doctor)
                return usage_error("doctor checks this machine and cannot run with --%s: run 'gpuswitchctl doctor' on %s",
                                   arg_transport == BUS_TRANSPORT_REMOTE ? "host" : "machine", arg_host);

        (void) gs_errors_register();
        arg_where = bus_transport_describe(arg_transport, arg_host);
        r = bus_transport_connect(arg_transport, arg_host, &bus);
        if (r < 0 && verb->run != verb_doctor) {
                /* ssh said why on stderr already */
                fprintf(stderr, "gpuswitchctl: cannot reach gpuswitchd on %s: %s%s\n", arg_where, strerror(-r),
                        arg_transport == BUS_TRANSPORT_REMOTE && (r == -ENOTCONN || r == -ECONNRESET || r == -EPIPE)
                                ? " (ssh or systemd-stdio-bridge there ended)" : "");
                return GS_EXIT_FAILURE;
        }
        /* A password can only be asked on a terminal we control; root is
         * authorized by the daemon without polkit.  Over -H/-M the caller
         * polkit judges is on the other side, where our agent cannot
         * answer: nothing is asked, as with --no-ask-password. */
        if (verb->changes && arg_ask_password && arg_transport == BUS_TRANSPORT_LOCAL && geteuid() != 0 &&
            isatty(STDIN_FILENO) && have_controlling_tty()) {
                (void) sd_bus_set_allow_interactive_authorization(bus, 1);
                (void) polkit_agent_open();
        }
        r = verb->run(bus, n_args, argv + (optind < argc ? optind : argc - 1), gpu);
        polkit_agent_close();
        if (r == GS_EXIT_NO_SUCH_GPU && !*gpu && !arg_json && !arg_quiet && optind < argc)
                hint_name_gpu(bus, n_args, argv + optind);
        return r;
}

int main(int argc, char *argv[]) {
        int r = run(argc, argv);

        g_free(arg_where);
        return r;
}
