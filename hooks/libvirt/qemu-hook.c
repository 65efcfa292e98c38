/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gpuswitch's libvirt qemu hook: moves the GPUs a domain passes through to
 * vfio-pci before it starts, and back to their host drivers after it stops.
 *
 * libvirtd (6.5 and later) runs every executable in /etc/libvirt/hooks/qemu.d/
 * as root: DOMAIN OPERATION SUB-OPERATION EXTRA, the domain XML on stdin.
 *   prepare begin  every PCI hostdev's slot that gpuswitchd manages goes to
 *                  vfio (gpuswitchctl vfio SLOT); a failure stops the domain
 *                  from starting (libvirt shows our stderr line), and the
 *                  GPUs this call had switched are put back.  libvirt runs
 *                  this before it prepares the hostdevs itself, so with
 *                  managed='yes' its own detach finds every function on
 *                  vfio-pci already and the IOMMU group viable.
 *   release end    the same slots back to their host drivers.  libvirt runs
 *                  it after every stop (QEMU killed or crashed too, and after
 *                  a failed start) and after its own reattach of managed='yes'
 *                  functions, so the GPU may be mixed by then.
 *   anything else  nothing, stdin unread (migrate and restore filter the XML:
 *                  no output means the XML is unchanged).
 * Slots gpuswitchd does not manage are left to libvirt.  When gpuswitchd
 * cannot be asked (not running, a broken config), only a domain with a slot
 * it may manage is stopped, with the daemon's message; a domain with a NIC
 * starts.  Hostdevs attached to a running domain are not seen: libvirt calls
 * no hook for them.
 *
 * The switching itself is gpuswitchctl's (the same calls, waits and
 * messages as a user's); GPUSWITCHCTL names another client (tests).
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "domain-xml.h"
#include "errors.h"
#include "hook-rules.h"
#include "qemu-hook.h"
#include "sysfs.h"
#include "util.h"

extern char **environ;

/* A domain XML is a few KiB; libvirt's own limit for one is 10 MiB. */
#define DOMAIN_XML_MAX (16u << 20)

static const char *domain = "";

static void say(const char *fmt, ...) _printf_(1, 2);
static void say(const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "gpuswitch hook: domain %s: ", domain);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* gpuswitchctl's stderr in one line: its name dropped, lines trimmed and
 * joined ("in use:" runs on into the holders). */
static char *one_line(const char *text) {
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        GString *out = g_string_new(NULL);

        for (char **l = lines; *l; l++) {
                char *s = g_strstrip(*l);

                if (g_str_has_prefix(s, "gpuswitchctl: "))
                        s = g_strstrip(s + strlen("gpuswitchctl: "));
                if (!*s)
                        continue;
                if (out->len > 0)
                        g_string_append(out, out->str[out->len - 1] == ':' ? " " : "; ");
                g_string_append(out, s);
        }
        return g_string_free(out, false);
}

typedef struct CtlResult {
        int rc;          /* gpuswitchctl's exit status */
        char *message;   /* its stderr in one line, or what went wrong running it */
} CtlResult;

static void ctl_result_done(CtlResult *r) { g_free(r->message); }

/* Runs gpuswitchctl ARGS: its stdout dropped (ours is the XML filter's
 * output to libvirt), its stderr read. */
static void run_ctl(const char *ctl, const char *const *args, CtlResult *ret) {
        _cleanup_close_ int devnull = -1;
        int pipefd[2] = { -1, -1 };
        posix_spawn_file_actions_t actions;
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_autoptr(GString) err = g_string_new(NULL);
        char buf[4096];
        ssize_t n;
        pid_t pid;
        int status, r;

        *ret = (CtlResult) { .rc = 1 };
        g_ptr_array_add(argv, (char *) ctl);
        for (const char *const *a = args; *a; a++)
                g_ptr_array_add(argv, (char *) *a);
        g_ptr_array_add(argv, NULL);

        devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
                ret->message = g_strdup_printf("cannot run %s: %s", ctl, strerror(errno));
                return;
        }
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, devnull, STDIN_FILENO);
        posix_spawn_file_actions_adddup2(&actions, devnull, STDOUT_FILENO);
        posix_spawn_file_actions_adddup2(&actions, pipefd[1], STDERR_FILENO);
        r = (strchr(ctl, '/') ? posix_spawn : posix_spawnp)(&pid, ctl, &actions, NULL, (char **) argv->pdata, environ);
        posix_spawn_file_actions_destroy(&actions);
        close(pipefd[1]);
        if (r != 0) {
                close(pipefd[0]);
                ret->message = g_strdup_printf("cannot run %s: %s", ctl, strerror(r));
                return;
        }
        while ((n = read(pipefd[0], buf, sizeof buf)) != 0) {
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        break;
                if (err->len < 64 * 1024)
                        g_string_append_len(err, buf, n);
        }
        close(pipefd[0]);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        ret->rc = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
        ret->message = one_line(err->str);
        if (!*ret->message && ret->rc != 0) {
                g_free(ret->message);
                ret->message = g_strdup_printf("%s exited with status %d", ctl, ret->rc);
        }
}

/* The client: GPUSWITCHCTL, else gpuswitchctl from PATH, else where the
 * package puts it (libvirtd's PATH may be short). */
static const char *find_ctl(void) {
        const char *ctl = getenv("GPUSWITCHCTL");
        g_autofree char *found = NULL;

        if (!isempty(ctl))
                return ctl;
        found = g_find_program_in_path("gpuswitchctl");
        return found ? "gpuswitchctl" : "/usr/bin/gpuswitchctl";
}

static int read_stdin(char **ret, size_t *ret_len) {
        g_autoptr(GString) s = g_string_new(NULL);
        char buf[65536];
        ssize_t n;

        while ((n = read(STDIN_FILENO, buf, sizeof buf)) != 0) {
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (s->len + (size_t) n > DOMAIN_XML_MAX)
                        return -EFBIG;
                g_string_append_len(s, buf, n);
        }
        *ret_len = s->len;
        *ret = g_string_free(TAKE_PTR(s), false);
        return 0;
}

static int prepare(const char *ctl, char **slots, size_t n) {
        for (size_t i = 0; i < n; i++) {
                const char *args[] = { "-q", "--no-ask-password", "vfio", slots[i], NULL };
                _cleanup_(ctl_result_done) CtlResult res = {};

                run_ctl(ctl, args, &res);
                if (res.rc == 0)
                        continue;
                say("cannot switch GPU %s to vfio-pci: %s", slots[i], res.message);
                for (size_t j = 0; j < i; j++) {
                        const char *back[] = { "-q", "--no-ask-password", "host", slots[j], NULL };
                        _cleanup_(ctl_result_done) CtlResult b = {};

                        run_ctl(ctl, back, &b);
                        if (b.rc != 0)
                                say("cannot put GPU %s back on its host drivers: %s", slots[j], b.message);
                }
                return res.rc;
        }
        return 0;
}

/* Every GPU is tried; the first failure's exit status is returned. */
static int release(const char *ctl, char **slots, size_t n) {
        int failed = 0;

        for (size_t i = 0; i < n; i++) {
                const char *args[] = { "-q", "--no-ask-password", "host", slots[i], NULL };
                _cleanup_(ctl_result_done) CtlResult res = {};

                run_ctl(ctl, args, &res);
                if (res.rc == 0)
                        continue;
                say("cannot switch GPU %s back to its host drivers: %s", slots[i], res.message);
                if (failed == 0)
                        failed = res.rc;
        }
        return failed;
}

int qemu_hook_main(int argc, char *argv[], const char *sysfs_root, const char *config_path) {
        g_autofree char *xml = NULL;
        g_autofree char *error_message = NULL;
        g_autofree PciAddress *xml_slots = NULL;
        g_autoptr(GPtrArray) managed = g_ptr_array_new_with_free_func(g_free);
        size_t len = 0, n_xml_slots = 0;
        const char *op, *subop, *ctl;
        bool to_vfio;
        Sysfs sysfs = { .root = sysfs_root };
        int r;

        if (argc < 4) {
                fprintf(stderr, "usage: %s DOMAIN OPERATION SUB-OPERATION [EXTRA] < DOMAIN-XML\n"
                                "(libvirtd runs it from /etc/libvirt/hooks/qemu.d/)\n", argv[0]);
                return GS_EXIT_USAGE;
        }
        /* The daemon's rules log what they skip for the daemon's journal; our
         * stderr is libvirt's one-line error message. */
        gs_log_max_level = LOG_LEVEL_ERR - 1;
        domain = argv[1];
        op = argv[2];
        subop = argv[3];
        if (streq(op, "prepare") && streq(subop, "begin"))
                to_vfio = true;
        else if (streq(op, "release") && streq(subop, "end"))
                to_vfio = false;
        else
                return 0;

        r = read_stdin(&xml, &len);
        if (r < 0) {
                say("cannot read the domain XML: %s", strerror(-r));
                return 1;
        }
        if (domain_pci_hostdev_slots(xml, len, &xml_slots, &n_xml_slots, &error_message) < 0) {
                say("cannot read the domain XML: %s", error_message);
                return 1;
        }

        ctl = find_ctl();
        /* Which slots gpuswitchd manages, asked before anything moves. */
        for (size_t i = 0; i < n_xml_slots; i++) {
                char slot[PCI_SLOT_STRLEN];
                const char *args[] = { "-q", "status", slot, NULL };
                _cleanup_(ctl_result_done) CtlResult res = {};

                pci_address_format_slot(&xml_slots[i], slot);
                run_ctl(ctl, args, &res);
                if (res.rc == 0)
                        g_ptr_array_add(managed, g_strdup(slot));
                else if (res.rc == GS_EXIT_NO_SUCH_GPU)
                        continue;
                else if (hook_slot_may_be_managed(&sysfs, config_path, &xml_slots[i])) {
                        say("cannot ask gpuswitchd about GPU %s: %s", slot, res.message);
                        return res.rc;
                }
        }

        return to_vfio ? prepare(ctl, (char **) managed->pdata, managed->len)
                       : release(ctl, (char **) managed->pdata, managed->len);
}
