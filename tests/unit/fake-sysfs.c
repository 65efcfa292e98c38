/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "fake-sysfs.h"

#include <errno.h>
#include <pthread.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pci-address.h"
#include "util.h"

static void die(const char *what) {
        perror(what);
        abort();
}

static void pathf(FakeKernel *k, char *buf, size_t len, const char *fmt, ...) _printf_(4, 5);
static void pathf(FakeKernel *k, char *buf, size_t len, const char *fmt, ...) {
        va_list ap;
        int n = snprintf(buf, len, "%s/", k->root);

        va_start(ap, fmt);
        vsnprintf(buf + n, len - (size_t) n, fmt, ap);
        va_end(ap);
}

static void mkdir_p(const char *p) {
        char tmp[PATH_MAX];

        snprintf(tmp, sizeof tmp, "%s", p);
        for (char *s = tmp + 1; *s; s++)
                if (*s == '/') {
                        *s = 0;
                        (void) mkdir(tmp, 0755);
                        *s = '/';
                }
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
                die(tmp);
}

static void put(const char *path, const char *value) {
        FILE *f = fopen(path, "we");

        if (!f)
                die(path);
        fputs(value, f);
        fclose(f);
}

static int get(const char *path, char *buf, size_t len) {
        FILE *f = fopen(path, "re");

        if (!f)
                return -errno;
        if (!fgets(buf, (int) len, f))
                buf[0] = 0;
        fclose(f);
        buf[strcspn(buf, "\n")] = 0;
        return 0;
}

void fake_add_driver(FakeKernel *k, const char *driver) {
        char p[PATH_MAX];

        pathf(k, p, sizeof p, "bus/pci/drivers/%s", driver);
        mkdir_p(p);
        pathf(k, p, sizeof p, "bus/pci/drivers/%s/bind", driver);
        put(p, "");
        pathf(k, p, sizeof p, "bus/pci/drivers/%s/unbind", driver);
        put(p, "");
}

static bool have_driver(FakeKernel *k, const char *driver) {
        char p[PATH_MAX];

        pathf(k, p, sizeof p, "bus/pci/drivers/%s", driver);
        return access(p, F_OK) == 0;
}

/* A driver's own runtime PM policy, where the function has it. */
static void set_control(FakeKernel *k, const char *addr, const char *value) {
        char p[PATH_MAX];

        pathf(k, p, sizeof p, "devices/pci0000:00/%s/power/control", addr);
        if (access(p, F_OK) == 0)
                put(p, value);
}

static int link_driver(FakeKernel *k, const char *addr, const char *driver) {
        char p[PATH_MAX], target[PATH_MAX];

        if (!have_driver(k, driver))
                return -ENODEV;
        if (streq(k->refuse_driver, driver) && (!k->refuse_device[0] || streq(k->refuse_device, addr)))
                return 0;       /* its probe() failed: the device stays unbound */
        if (k->flaky_probes > 0 && streq(k->flaky_device, addr) && !streq(driver, "vfio-pci")) {
                k->flaky_probes--;
                fake_kmsg(k, "%s %s: probe with driver %s failed with error -5", driver, addr, driver);
                return 0;
        }
        pathf(k, p, sizeof p, "devices/pci0000:00/%s/driver", addr);
        snprintf(target, sizeof target, "../../../bus/pci/drivers/%s", driver);
        if (symlink(target, p) < 0)
                die(p);
        /* as vfio-pci's probe: pm_runtime_allow() */
        if (streq(driver, "vfio-pci"))
                set_control(k, addr, "auto");
        return 0;
}

void fake_set_group(FakeKernel *k, const char *addr, int group) {
        char p[PATH_MAX], target[PATH_MAX];

        pathf(k, p, sizeof p, "devices/pci0000:00/%s/iommu_group", addr);
        (void) unlink(p);
        snprintf(target, sizeof target, "../../../kernel/iommu_groups/%d", group);
        if (symlink(target, p) < 0)
                die(p);
        pathf(k, p, sizeof p, "kernel/iommu_groups/%d/devices", group);
        mkdir_p(p);
        pathf(k, p, sizeof p, "kernel/iommu_groups/%d/devices/%s", group, addr);
        snprintf(target, sizeof target, "../../../../devices/pci0000:00/%s", addr);
        if (symlink(target, p) < 0)
                die(p);
}

void fake_add_function(FakeKernel *k, const char *addr, unsigned class_code, unsigned vendor, unsigned device,
                       const char *native, int iommu_group, bool boot_vga) {
        char p[PATH_MAX], v[128], target[PATH_MAX];

        pathf(k, p, sizeof p, "devices/pci0000:00/%s", addr);
        mkdir_p(p);
#define ATTR(name, ...) do {                                                    \
                pathf(k, p, sizeof p, "devices/pci0000:00/%s/" name, addr);     \
                snprintf(v, sizeof v, __VA_ARGS__);                             \
                put(p, v);                                                      \
        } while (0)
        ATTR("class", "0x%06x\n", class_code);
        ATTR("vendor", "0x%04x\n", vendor);
        ATTR("device", "0x%04x\n", device);
        ATTR("modalias", "pci:v%08Xd%08Xsv00000000sd00000000bc%02Xsc%02Xi%02X\n", vendor, device,
             (class_code >> 16) & 0xff, (class_code >> 8) & 0xff, class_code & 0xff);
        ATTR("driver_override", "(null)\n");
        ATTR("native_driver", "%s\n", native ? native : "");
        if ((class_code >> 16) == 0x03)
                ATTR("boot_vga", "%d\n", boot_vga ? 1 : 0);
        ATTR("power_state", "D0\n");
        ATTR("reset_method", "flr\n");
        ATTR("reset", "%s", "");
        pathf(k, p, sizeof p, "devices/pci0000:00/%s/power", addr);
        mkdir_p(p);
        ATTR("power/control", "auto\n");
#undef ATTR
        pathf(k, p, sizeof p, "bus/pci/devices");
        mkdir_p(p);
        pathf(k, p, sizeof p, "bus/pci/devices/%s", addr);
        snprintf(target, sizeof target, "../../../devices/pci0000:00/%s", addr);
        if (symlink(target, p) < 0)
                die(p);
        if (iommu_group >= 0)
                fake_set_group(k, addr, iommu_group);
        if (native) {
                fake_add_driver(k, native);
                if (link_driver(k, addr, native) < 0)
                        die("bind");
        }
}

static void add_module(FakeKernel *k, const char *module, const char *driver) {
        char p[PATH_MAX];

        pathf(k, p, sizeof p, "module/%s/drivers/pci:%s", module, driver);
        mkdir_p(p);
}

void fake_put_attr(FakeKernel *k, const char *addr, const char *attr, const char *value) {
        char p[PATH_MAX];

        pathf(k, p, sizeof p, "devices/pci0000:00/%s/%s", addr, attr);
        put(p, value);
}

const char *fake_attr(FakeKernel *k, const char *addr, const char *attr) {
        static char buf[4][64];
        static int i;
        char p[PATH_MAX];
        char *b = buf[i++ % 4];

        pathf(k, p, sizeof p, "devices/pci0000:00/%s/%s", addr, attr);
        if (get(p, b, 64) < 0)
                return "?";
        return b;
}

void fake_remove_attr(FakeKernel *k, const char *addr, const char *attr) {
        char p[PATH_MAX];

        pathf(k, p, sizeof p, "devices/pci0000:00/%s/%s", addr, attr);
        if (unlink(p) < 0)
                die(p);
}

void fake_kmsg(FakeKernel *k, const char *fmt, ...) {
        char p[PATH_MAX], text[512];
        va_list ap;
        FILE *f;

        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        pathf(k, p, sizeof p, "kmsg");
        f = fopen(p, "ae");
        if (!f)
                die(p);
        fprintf(f, "3,%d,%d,-;%s\n SUBSYSTEM=pci\n", k->n_kmsg, k->n_kmsg * 1000, text);
        k->n_kmsg++;
        fclose(f);
}

const char *fake_driver(FakeKernel *k, const char *addr) {
        static char buf[4][64];
        static int i;
        char p[PATH_MAX], target[PATH_MAX];
        char *b = buf[i++ % 4];
        ssize_t n;

        pathf(k, p, sizeof p, "devices/pci0000:00/%s/driver", addr);
        n = readlink(p, target, sizeof target - 1);
        if (n < 0)
                return "";
        target[n] = 0;
        snprintf(b, 64, "%s", strrchr(target, '/') + 1);
        return b;
}

const char *fake_override(FakeKernel *k, const char *addr) {
        static char buf[4][64];
        static int i;
        char p[PATH_MAX];
        char *b = buf[i++ % 4];

        pathf(k, p, sizeof p, "devices/pci0000:00/%s/driver_override", addr);
        if (get(p, b, 64) < 0)
                return "?";
        return b;
}

const char *fake_state(FakeKernel *k) {
        static char buf[256];
        static const char *fns[] = { "0000:01:00.0", "0000:01:00.1", "0000:01:00.2" };
        size_t n = 0;

        for (size_t i = 0; i < 3; i++)
                n += (size_t) snprintf(buf + n, sizeof buf - n, "%s%s[%s]", i ? " " : "", fake_driver(k, fns[i]),
                                       fake_override(k, fns[i]));
        return buf;
}

/* rel is PREFIX<name>SUFFIX, with no '/' in name: name into buf. */
static bool match(const char *rel, const char *prefix, const char *suffix, char *buf, size_t len) {
        size_t lp = strlen(prefix), ls = strlen(suffix), lr = strlen(rel), ln;

        if (lr <= lp + ls || strncmp(rel, prefix, lp) != 0 || strcmp(rel + lr - ls, suffix) != 0)
                return false;
        ln = lr - lp - ls;
        if (ln >= len || memchr(rel + lp, '/', ln))
                return false;
        memcpy(buf, rel + lp, ln);
        buf[ln] = 0;
        return true;
}

/* A function that could be runtime-suspended while the kernel works on it. */
static void suspendable_check(FakeKernel *k, const char *addr) {
        if (!streq(fake_attr(k, addr, "power/control"), "on"))
                k->n_while_suspendable++;
}

/* k->fail_at names this write: "ADDR/STEP". */
static bool fail_at(FakeKernel *k, const char *rel, const char *value) {
        char addr[64], drv[64], want[128];
        const char *fn = value, *step;

        if (!k->fail_at[0])
                return false;
        if (match(rel, "bus/pci/devices/", "/driver_override", addr, sizeof addr)) {
                fn = addr;
                step = "override";
        } else if (match(rel, "bus/pci/drivers/", "/unbind", drv, sizeof drv))
                step = "unbind";
        else if (match(rel, "bus/pci/drivers/", "/bind", drv, sizeof drv))
                step = "bind";
        else if (streq(rel, "bus/pci/drivers_probe"))
                step = "probe";
        else
                return false;
        snprintf(want, sizeof want, "%s/%s", fn, step);
        return streq(want, k->fail_at);
}

/* The simulated kernel: paths are taken apart relative to the root. */
/* Whether the function a write is about was removed: a kernel write to a
 * device that has gone (its open attribute, or an address that names no
 * device any more) gives ENODEV. */
static bool function_gone(FakeKernel *k, const char *rel, const char *value) {
        char addr[64], p[PATH_MAX];
        PciAddress a;

        if (strncmp(rel, "bus/pci/devices/", 16) == 0)
                snprintf(addr, sizeof addr, "%.*s", (int) strcspn(rel + 16, "/"), rel + 16);
        else if (strstr(rel, "/unbind") || strstr(rel, "/bind") || streq(rel, "bus/pci/drivers_probe"))
                snprintf(addr, sizeof addr, "%s", value);
        else
                return false;
        if (pci_address_parse(addr, &a) < 0 || a.function < 0)
                return false;
        pathf(k, p, sizeof p, "devices/pci0000:00/%s", addr);
        return access(p, F_OK) < 0;
}

static int fake_write_locked(FakeKernel *k, const char *path, const char *value) {
        size_t rl = strlen(k->root);
        const char *rel;
        char addr[64], drv[64], p[PATH_MAX], override[64];

        if (strncmp(path, k->root, rl) != 0 || path[rl] != '/')
                abort();        /* a write outside the fake tree: never */
        rel = path + rl + 1;

        if (function_gone(k, rel, value)) {
                k->n_gone_writes++;
                return -ENODEV;
        }
        if (match(rel, "bus/pci/devices/", "/power/control", addr, sizeof addr)) {
                k->n_power_writes++;
                if (k->power_write_fails)
                        return -EIO;
                if (!streq(value, "on") && !streq(value, "auto"))
                        return -EINVAL;
                fake_put_attr(k, addr, "power/control", value);
                return 0;
        }
        if (match(rel, "bus/pci/devices/", "/reset", addr, sizeof addr)) {
                suspendable_check(k, addr);
                k->n_resets++;
                if (!streq(value, "1"))
                        return -EINVAL;
                /* a reset brings the function to D0 */
                fake_put_attr(k, addr, "power_state", "D0\n");
                fake_kmsg(k, "pci %s: resetting", addr);
                return 0;
        }

        /* nvidia's unbindLock: taken only with no client left */
        if (match(rel, "proc/driver/nvidia/gpus/", "/unbindLock", addr, sizeof addr)) {
                if (k->n_log < ELEMENTSOF(k->log))
                        snprintf(k->log[k->n_log++], sizeof k->log[0], "%s %s", rel, value);
                if (!streq(value, "1") && !streq(value, "0"))
                        return -EINVAL;
                put(path, streq(value, "1") && k->nvidia_clients == 0 ? "1" : "0");
                return 0;
        }

        k->n_writes++;
        if (k->n_log < ELEMENTSOF(k->log))
                snprintf(k->log[k->n_log++], sizeof k->log[0], "%s %s", rel, value);
        if (k->fail_write && k->n_writes == k->fail_write)
                return -k->fail_errno;
        if (fail_at(k, rel, value))
                return -EIO;
        if (k->write_delay_ms > 0 && !strstr(rel, "/driver_override")) {
                struct timespec t = { k->write_delay_ms / 1000, (long) (k->write_delay_ms % 1000) * 1000000L };

                (void) nanosleep(&t, NULL);
        }

        if (match(rel, "bus/pci/devices/", "/driver_override", addr, sizeof addr)) {
                char v[64];

                snprintf(v, sizeof v, "%s", value);
                v[strcspn(v, "\n")] = 0;
                pathf(k, p, sizeof p, "devices/pci0000:00/%s/driver_override", addr);
                if (access(p, F_OK) < 0)
                        return -ENOENT;
                put(p, v[0] ? v : "(null)");
                return 0;
        }
        if (match(rel, "bus/pci/drivers/", "/unbind", drv, sizeof drv)) {
                suspendable_check(k, value);
                if (!streq(fake_driver(k, value), drv))
                        return -ENODEV;
                pathf(k, p, sizeof p, "devices/pci0000:00/%s/driver", value);
                if (unlink(p) < 0)
                        return -errno;
                /* nvidia's /proc entry goes with the device */
                if (streq(drv, "nvidia")) {
                        pathf(k, p, sizeof p, "proc/driver/nvidia/gpus/%s/unbindLock", value);
                        (void) unlink(p);
                }
                /* as vfio-pci's remove: pm_runtime_forbid() */
                if (streq(drv, "vfio-pci"))
                        set_control(k, value, "on");
                return 0;
        }
        if (match(rel, "bus/pci/drivers/", "/bind", drv, sizeof drv)) {
                suspendable_check(k, value);
                if (*fake_driver(k, value))
                        return -EBUSY;
                snprintf(override, sizeof override, "%s", fake_override(k, value));
                if (!streq(override, "(null)") && !streq(override, drv))
                        return -ENODEV;
                if (link_driver(k, value, drv) < 0 || !*fake_driver(k, value))
                        return -ENODEV;
                return 0;
        }
        if (streq(rel, "bus/pci/drivers_probe")) {
                char native[64];

                pathf(k, p, sizeof p, "devices/pci0000:00/%s/native_driver", value);
                if (get(p, native, sizeof native) < 0)
                        return -ENODEV;
                suspendable_check(k, value);
                if (*fake_driver(k, value))
                        return 0;
                snprintf(override, sizeof override, "%s", fake_override(k, value));
                if (!streq(override, "(null)"))
                        (void) link_driver(k, value, override);
                else if (native[0])
                        (void) link_driver(k, value, native);
                return 0;
        }
        return -EACCES;
}

/* Under the lock a hot unplug takes too (fake_gpu_remove()): as the
 * kernel's device lock, a removal waits for the write under way. */
static int fake_write(Sysfs *s, const char *path, const char *value) {
        FakeKernel *k = s->userdata;
        int r;

        pthread_mutex_lock(&k->lock);
        r = fake_write_locked(k, path, value);
        pthread_mutex_unlock(&k->lock);
        return r;
}

static int fake_load_module(Sysfs *s, const char *module) {
        FakeKernel *k = s->userdata;

        k->n_loads++;
        if (k->load_fails)
                return -ENOENT;
        if (strncmp(module, "pci:", 4) == 0)
                return 0;
        fake_add_driver(k, module);
        return 0;
}

static const char *const gpu_functions[] = { "0000:01:00.0", "0000:01:00.1", "0000:01:00.2" };

static void add_gpu(FakeKernel *k) {
        fake_add_function(k, gpu_functions[0], 0x030000, 0x1234, 0x1111, "bochs-drm", 5, false);
        fake_add_function(k, gpu_functions[1], 0x040300, 0x8086, 0x293e, "snd_hda_intel", 5, false);
        fake_add_function(k, gpu_functions[2], 0x0c0330, 0x1b36, 0x000d, "xhci_hcd", 5, false);
}

size_t fake_uevent(const char *action, const char *function, char *buf, size_t size) {
        static unsigned seqnum = 1000;
        int n;

        /* as lib/kobject_uevent.c fills it, with pci_uevent()'s PCI_SLOT_NAME
         * (its PCI_CLASS, PCI_ID and MODALIAS are not read) */
        n = snprintf(buf, size,
                     "%s@/devices/pci0000:00/%s%cACTION=%s%cDEVPATH=/devices/pci0000:00/%s%cSUBSYSTEM=pci%c"
                     "PCI_SLOT_NAME=%s%cSEQNUM=%u",
                     action, function, 0, action, 0, function, 0, 0, function, 0, seqnum++);
        if (n < 0 || (size_t) n >= size)
                abort();
        return (size_t) n + 1;
}

size_t fake_gpu_uevents(const char *action, char msgs[3][512], size_t lens[3]) {
        for (size_t i = 0; i < ELEMENTSOF(gpu_functions); i++)
                lens[i] = fake_uevent(action, gpu_functions[i], msgs[i], sizeof msgs[i]);
        return ELEMENTSOF(gpu_functions);
}

void fake_gpu_remove(FakeKernel *k) {
        pthread_mutex_lock(&k->lock);
        for (size_t i = 0; i < ELEMENTSOF(gpu_functions); i++)
                fake_remove_function(k, gpu_functions[i]);
        pthread_mutex_unlock(&k->lock);
}

void fake_gpu_add(FakeKernel *k) {
        pthread_mutex_lock(&k->lock);
        add_gpu(k);
        pthread_mutex_unlock(&k->lock);
}

FakeKernel *fake_kernel_new(void) {
        FakeKernel *k = calloc(1, sizeof *k);
        char p[PATH_MAX];

        if (!k)
                abort();
        snprintf(k->root, sizeof k->root, "%s/gpuswitch-test-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(k->root))
                die("mkdtemp");
        snprintf(k->kmsg, sizeof k->kmsg, "%s/kmsg", k->root);
        k->sysfs = (Sysfs) {
                .root = k->root,
                .kmsg = k->kmsg,
                .write = fake_write,
                .load_module = fake_load_module,
                .userdata = k,
        };
        k->fail_errno = EIO;
        k->opens_fd = -1;
        pthread_mutex_init(&k->lock, NULL);

        pathf(k, p, sizeof p, "bus/pci/drivers_probe");
        mkdir_p(k->root);
        {
                char d[PATH_MAX];
                pathf(k, d, sizeof d, "bus/pci");
                mkdir_p(d);
        }
        put(p, "");
        put(k->kmsg, "");

        fake_add_function(k, "0000:00:05.0", 0x060400, 0x1b36, 0x000c, "pcieport", 5, false);
        add_gpu(k);
        fake_add_function(k, "0000:02:00.0", 0x020000, 0x8086, 0x10d3, "e1000e", 6, false);
        add_module(k, "bochs", "bochs-drm");
        add_module(k, "snd_hda_intel", "snd_hda_intel");
        add_module(k, "xhci_pci", "xhci_hcd");
        add_module(k, "e1000e", "e1000e");
        return k;
}

void fake_kernel_free(FakeKernel *k) {
        char cmd[PATH_MAX + 16];

        if (!k)
                return;
        closep(&k->opens_fd);
        /* only ever our own mkdtemp folder */
        if (strstr(k->root, "/gpuswitch-test-")) {
                snprintf(cmd, sizeof cmd, "rm -rf '%s'", k->root);
                if (system(cmd) != 0)
                        fprintf(stderr, "could not remove %s\n", k->root);
        }
        free(k);
}

void fake_remove_function(FakeKernel *k, const char *addr) {
        char p[PATH_MAX], cmd[PATH_MAX + 16];

        char group[PATH_MAX];
        ssize_t n;

        pathf(k, p, sizeof p, "bus/pci/devices/%s", addr);
        if (unlink(p) < 0)
                die(p);
        /* out of its IOMMU group too, as iommu_release_device() does */
        pathf(k, p, sizeof p, "devices/pci0000:00/%s/iommu_group", addr);
        n = readlink(p, group, sizeof group - 1);
        if (n > 0) {
                group[n] = 0;
                pathf(k, p, sizeof p, "kernel/iommu_groups/%s/devices/%s", strrchr(group, '/') + 1, addr);
                (void) unlink(p);
        }
        pathf(k, p, sizeof p, "devices/pci0000:00/%s", addr);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
        if (system(cmd) != 0)
                die(cmd);
}

void fake_opens_start(FakeKernel *k) {
        static const char *fns[] = { "0000:01:00.0", "0000:01:00.1", "0000:01:00.2" };
        char p[PATH_MAX];

        closep(&k->opens_fd);
        k->n_open_names = 0;
        k->opens_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (k->opens_fd < 0)
                die("inotify_init1");
        for (size_t i = 0; i < 3; i++) {
                pathf(k, p, sizeof p, "devices/pci0000:00/%s", fns[i]);
                if (inotify_add_watch(k->opens_fd, p, IN_OPEN) < 0)
                        die(p);
        }
}

static void opens_drain(FakeKernel *k) {
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t n;

        while ((n = read(k->opens_fd, buf, sizeof buf)) > 0)
                for (char *e = buf; e < buf + n;) {
                        const struct inotify_event *ev = (const struct inotify_event *) e;
                        size_t i;

                        e += sizeof *ev + ev->len;
                        if (ev->len == 0)
                                continue;       /* the folder itself */
                        for (i = 0; i < k->n_open_names && !streq(k->open_names[i], ev->name); i++)
                                ;
                        if (i == k->n_open_names) {
                                if (i == 32)
                                        continue;
                                snprintf(k->open_names[i], sizeof k->open_names[i], "%s", ev->name);
                                k->open_counts[i] = 0;
                                k->n_open_names++;
                        }
                        k->open_counts[i]++;
                }
}

int fake_opens(FakeKernel *k, const char *attr) {
        int n = 0;

        if (k->opens_fd < 0)
                return -1;
        opens_drain(k);
        for (size_t i = 0; i < k->n_open_names; i++)
                if (!attr || streq(k->open_names[i], attr))
                        n += k->open_counts[i];
        return n;
}
