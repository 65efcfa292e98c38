/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* simulated-gpuswitchd: gpuswitchd's own Manager (its vtables, polkit
 * check, jobs, worker threads and signals) on the bus, over the simulated
 * kernel of tests/unit/fake-sysfs.c instead of /sys.  It lets
 * bench/bus-host.sh measure the daemon's bus loop on this machine, at its
 * real speed, while switches run: the real GPU switch happens only in the
 * QEMU guest, whose emulated CPU is ten to fifty times slower.
 *
 *   simulated-gpuswitchd [WRITE_DELAY_MS]
 *
 * Serves org.gpuswitch1 on the bus that DBUS_SYSTEM_BUS_ADDRESS names (a
 * private dbus-daemon of the benchmark's) until SIGTERM.  The GPU is the
 * fake kernel's 0000:01:00 (VGA, HD audio, USB); each unbind, bind and
 * drivers_probe sleeps WRITE_DELAY_MS (default 20, what the guest's
 * kernel takes per write) on the switch's thread.  The fake tree is made
 * in $TMPDIR; state and config go to $GPUSWITCH_STATE_DIR and
 * $GPUSWITCH_RUNTIME_DIR, which must be set; nothing else is written.
 * Its VGA function has a DRM node, card0 (226:0): ListHolders scans this
 * machine's /proc for it.
 * $GPUSWITCH_TEST_FAIL_AT=FUNCTION/STEP (steps override, unbind, probe,
 * bind) makes that write of the simulated kernel fail with EIO.
 * $GPUSWITCH_TEST_CONFIG names a gpuswitch.conf to use instead of the
 * built-in one (StepTimeoutSec=, or Gpus= naming a slot the simulated
 * kernel lacks: no GPU managed).
 *
 * The GPU comes and goes as on a real machine (tests/unit/fake-hotplug.h):
 * each line on stdin is a command to the simulated kernel, and the
 * daemon's uevent handler is fed the messages the kernel's netlink group
 * would carry for it, ACTION@DEVPATH, then KEY=VALUE with SUBSYSTEM=pci and
 * PCI_SLOT_NAME=, NUL-separated:
 *   remove   the three functions of 0000:01:00 leave the tree (after the
 *            kernel write under way), remove@/devices/pci0000:00/0000:01:00.N
 *   add      they are back on their host drivers, with card0, then add@
 * An end of stdin (</dev/null, or stdin a file) leaves it serving as before.
 * $GPUSWITCH_TEST_SLOT_ABSENT=1 starts it with the slot not in the tree:
 * with Gpus=0000:01:00 (the built-in config) no GPU is managed until "add". */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <glib.h>

#include "config.h"
#include "errors.h"
#include "fake-hotplug.h"
#include "fake-sysfs.h"
#include "bus.h"
#include "manager.h"
#include "util.h"

static const char config_text[] = "[Daemon]\nGpus=0000:01:00\n\n[Gpu 0000:01:00]\nDefaultMode=keep\n";

static void fake_kernel_freep(FakeKernel **k) {
        if (*k)
                fake_kernel_free(*k);
}

/* a DRM card node, so that ListHolders scans this machine's /proc for its
 * device number as on a real GPU (a scan for no node ends at once) */
static void add_drm_node(FakeKernel *k) {
        g_autofree char *drm = g_build_filename(k->root, "devices/pci0000:00/0000:01:00.0/drm/card0", NULL);

        if (g_mkdir_with_parents(drm, 0755) < 0) {
                log_error_errno(errno, "making the simulated DRM node");
                return;
        }
        fake_put_attr(k, "0000:01:00.0", "drm/card0/dev", "226:0\n");
}

static int run(unsigned delay_ms, const char *state_dir) {
        /* Declared first, freed last: the Manager waits for a switch under
         * way, which writes to the fake tree. */
        _cleanup_(fake_kernel_freep) FakeKernel *k = fake_kernel_new();
        _cleanup_(manager_freep) Manager *m = NULL;
        g_autofree char *err = NULL;
        int r;

        k->write_delay_ms = delay_ms;
        /* the fault injection the installed daemon does not have */
        if (!isempty(getenv("GPUSWITCH_TEST_FAIL_AT")))
                snprintf(k->fail_at, sizeof k->fail_at, "%s", getenv("GPUSWITCH_TEST_FAIL_AT"));
        if (streq_ptr(getenv("GPUSWITCH_TEST_SLOT_ABSENT"), "1"))
                fake_gpu_remove(k);
        else
                add_drm_node(k);
        r = manager_new(&m);
        if (r < 0)
                return log_error_errno(r, "setting up");
        if (!isempty(getenv("GPUSWITCH_TEST_CONFIG"))) {
                g_autoptr(GError) e = NULL;
                g_autofree char *text = NULL;
                size_t len;

                if (!g_file_get_contents(getenv("GPUSWITCH_TEST_CONFIG"), &text, &len, &e)) {
                        log_error("%s", e->message);
                        return -EIO;
                }
                r = config_parse(text, len, getenv("GPUSWITCH_TEST_CONFIG"), &m->config, &err);
        } else
                r = config_parse(config_text, strlen(config_text), "simulated", &m->config, &err);
        if (r < 0) {
                log_error("%s", strempty(err));
                return r;
        }
        free(m->config_path);
        m->config_path = g_build_filename(state_dir, "gpuswitch.conf", NULL);
        m->sysfs = k->sysfs;    /* never the real /sys */

        r = manager_discover(m, NULL);
        if (r < 0)
                return log_error_errno(r, "finding the simulated GPU");
        if (m->n_gpus > 1)
                return log_error_errno(EINVAL, "the simulated kernel has one GPU, %zu found", m->n_gpus);

        r = manager_exit_on_signals(m);
        (void) gs_errors_register();
        if (r >= 0)
                r = sd_bus_open_system(&m->bus);
        if (r >= 0)
                r = bus_attach(m);
        if (r >= 0)
                r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_bus_request_name(m->bus, GPUSWITCH_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "serving on the bus");
        r = fake_hotplug_watch(k, m, STDIN_FILENO, add_drm_node);
        if (r < 0 && r != -EPERM)
                return log_error_errno(r, "reading commands on stdin");
        log_info("simulated-gpuswitchd: serving, %u ms a write", delay_ms);
        return sd_event_loop(m->event);
}

int main(int argc, char *argv[]) {
        const char *state_dir = getenv("GPUSWITCH_STATE_DIR");
        unsigned delay_ms = 20;
        char *end;

        if (argc > 2 || (argc == 2 && (delay_ms = (unsigned) strtoul(argv[1], &end, 10), *end || !*argv[1]))) {
                fprintf(stderr, "usage: simulated-gpuswitchd [WRITE_DELAY_MS]\n");
                return 2;
        }
        /* The switch record, the runtime state and the config file go
         * there, never to /var/lib/gpuswitch or /etc. */
        if (isempty(state_dir) || !getenv("GPUSWITCH_RUNTIME_DIR")) {
                fprintf(stderr, "simulated-gpuswitchd: GPUSWITCH_STATE_DIR and GPUSWITCH_RUNTIME_DIR must name "
                                "the benchmark's folder\n");
                return 2;
        }
        return run(delay_ms, state_dir) < 0 ? 1 : 0;
}
