/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gpuswitchd: owns the PCI rebinding of the managed GPUs and offers it on
 * the system bus as org.gpuswitch1. */
#include <getopt.h>
#include <malloc.h>

#include "config.h"
#include "desktop-rule.h"
#include "gpu-rules.h"
#include "errors.h"
#include "instance-lock.h"
#include "bus.h"
#include "manager.h"
#include "uevent.h"
#include "util.h"

static const char *arg_config = GPUSWITCH_CONFIG_FILE;

static void help(void) {
        printf("gpuswitchd [OPTIONS...]\n\n"
               "Moves GPUs between their host drivers and vfio-pci for the callers\n"
               "that polkit allows, on the system bus as " GPUSWITCH_BUS_NAME ".\n\n"
               "  -h --help            Show this help\n"
               "     --version         Show the version\n"
               "  -c --config=FILE     Configuration file (default " GPUSWITCH_CONFIG_FILE ")\n"
               "     --check-config    Parse the configuration, report and exit\n"
               "  -d --debug           Log debug messages\n");
}

static int parse_argv(int argc, char *argv[], bool *check_only) {
        enum { ARG_VERSION = 0x100, ARG_CHECK_CONFIG };
        static const struct option options[] = {
                { "help",         no_argument,       NULL, 'h' },
                { "version",      no_argument,       NULL, ARG_VERSION },
                { "config",       required_argument, NULL, 'c' },
                { "check-config", no_argument,       NULL, ARG_CHECK_CONFIG },
                { "debug",        no_argument,       NULL, 'd' },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "hc:d", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        puts(GPUSWITCH_VERSION);
                        return 0;
                case 'c':
                        arg_config = optarg;
                        break;
                case ARG_CHECK_CONFIG:
                        *check_only = true;
                        break;
                case 'd':
                        gs_log_max_level = LOG_LEVEL_DEBUG;
                        break;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                log_error("unexpected argument '%s'", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static int run(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_free_ char *config_error = NULL;
        bool check_only = false;
        pid_t holder;
        int r;

        r = parse_argv(argc, argv, &check_only);
        if (r <= 0)
                return r;

        r = manager_new(&m);
        if (r < 0)
                return log_error_errno(r, "setting up");
        free(m->config_path);
        m->config_path = strdup(arg_config);
        if (!m->config_path)
                return log_error_errno(-ENOMEM, "setting up");
        r = config_load(arg_config, &m->config, &config_error);
        if (check_only && r >= 0) {
                _cleanup_free_ PciAddress *slots = NULL;
                size_t n = 0;

                /* the rules that need sysfs too, as at a start */
                r = gpus_to_manage(&m->sysfs, m->config, &slots, &n);
                if (r >= 0)
                        r = gpus_check_companions(&m->sysfs, m->config, slots, n, &config_error);
        }
        if (check_only) {
                if (r < 0) {
                        log_error("%s", config_error ? config_error : "reading the configuration failed");
                        return r;
                }
                printf("%s: ok\n", arg_config);
                return 0;
        }

        /* Before the switch records are read or sysfs is touched.  A daemon
         * that is ending gives its bus name up a moment before its lock, and
         * the bus may start us in between: a few seconds' grace for it. */
        for (int tries = 0; (r = instance_lock(runtime_dir(), &m->lock_fd, &holder)) == -EBUSY && tries < 50; tries++)
                (void) usleep(100 * 1000);
        if (r == -EBUSY) {
                log_error("another gpuswitchd (PID %d) is running and manages the GPUs: this one changes "
                          "nothing and exits", (int) holder);
                return r;
        }
        if (r < 0)
                return log_error_errno(r, "taking the lock %s/gpuswitchd.lock", runtime_dir());

        /* Whatever the config says: a GPU left halfway by a daemon that was
         * stopped mid-switch goes back first. */
        (void) manager_recover(m);

        if (!config_error) {
                r = manager_discover(m, &config_error);
                if (r < 0 && !config_error)
                        return log_error_errno(r, "finding the GPUs to manage");
        }
        if (!config_error) {
                /* before the boot switches, and so before the display manager */
                (void) desktop_rule_apply(m->config, DESKTOP_RULE_DIR, &m->sysfs, "udevadm");
                if (m->n_gpus == 0)
                        log_notice("no GPU to manage (Gpus=%s in %s)", m->config->gpus_auto ? "auto" : "list",
                                   arg_config);
                (void) manager_apply_default_modes(m);
        } else
                log_error("%s; answering every call with this error until the file is fixed", config_error);
        if (manager_stop_requested()) {
                log_info("gpuswitchd stopping, as asked during its start-up switches");
                return 0;
        }

        r = manager_exit_on_signals(m);
        if (r < 0)
                return log_error_errno(r, "watching signals");

        (void) gs_errors_register();
        r = sd_bus_open_system(&m->bus);
        if (r < 0)
                return log_error_errno(r, "connecting to the system bus");
        /* Without its bus the daemon serves nobody: the next call starts a new one. */
        r = sd_bus_set_exit_on_disconnect(m->bus, true);
        if (r < 0)
                return log_error_errno(r, "setting up the bus connection");
        if (config_error)
                r = manager_serve_config_error(m, config_error);
        else {
                r = bus_attach(m);
                if (r >= 0)
                        (void) uevent_monitor_start(m);
        }
        if (r < 0)
                return r;
        r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "attaching the bus to the event loop");
        /* The name last: callers see the objects complete or not at all. */
        r = sd_bus_request_name(m->bus, GPUSWITCH_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "taking the bus name " GPUSWITCH_BUS_NAME);

        log_info("gpuswitchd " GPUSWITCH_VERSION " running, %zu GPU(s)", m->n_gpus);
        r = sd_event_loop(m->event);
        if (r < 0)
                return log_error_errno(r, "event loop");
        log_info("gpuswitchd stopping");
        return 0;
}

int main(int argc, char *argv[]) {
        /* The worker threads (a switch, a ListHolders scan) would each get
         * a malloc arena of their own while another thread holds one, up to
         * eight a core, and every arena keeps what it once touched: under
         * 50 clients' calls the daemon's memory rose by a step of 2 MiB in one run.
         * They allocate little; one arena keeps the footprint flat. */
        (void) mallopt(M_ARENA_MAX, 1);
        /* From the first line: a stop that comes during the start-up
         * switches waits for the one under way (manager.h). */
        manager_block_stop_signals();
        return run(argc, argv) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
