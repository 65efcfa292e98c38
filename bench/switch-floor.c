/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* switch-floor: the bare kernel sequence of a switch (DESIGN.md), nothing
 * else: the floor that the switch benchmark measures gpuswitchctl against.
 *
 *   switch-floor vfio SLOT    every function of SLOT to vfio-pci
 *   switch-floor host SLOT    every function back to its default driver
 *
 * Per function, to vfio: driver_override=vfio-pci, unbind, drivers_probe,
 * the driver link must be vfio-pci.  Back: driver_override cleared with a
 * newline, unbind, drivers_probe, the link must be some other driver.
 * No holder check, no rollback, no bus: it runs only inside the QEMU guest
 * (bench/vm/switch-latency.sh), whose kernel command line has TESTVM_MARKER
 * (tests/vm/testvm-guard.sh); anywhere else it refuses before it opens
 * anything in sysfs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEVICES "/sys/bus/pci/devices"

static int write_attr(const char *path, const char *value) {
        size_t len = strlen(value);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = write(fd, value, len);
        n = n < 0 ? -errno : (size_t) n == len ? 0 : -EIO;
        close(fd);
        return (int) n;
}

/* The name of the driver bound to FN, or "" when none. */
static int driver_of(const char *fn, char buf[static PATH_MAX]) {
        char path[PATH_MAX], *slash;
        ssize_t n;

        snprintf(path, sizeof path, DEVICES "/%s/driver", fn);
        n = readlink(path, buf, PATH_MAX - 1);
        if (n < 0) {
                buf[0] = 0;
                return errno == ENOENT ? 0 : -errno;
        }
        buf[n] = 0;
        slash = strrchr(buf, '/');
        if (slash)
                memmove(buf, slash + 1, strlen(slash + 1) + 1);
        return 0;
}

static int fail(const char *fn, const char *step, int r) {
        fprintf(stderr, "switch-floor: %s: %s: %s\n", fn, step, strerror(-r));
        return r;
}

static int move(const char *fn, int to_vfio) {
        char path[PATH_MAX], now[PATH_MAX];
        int r;

        snprintf(path, sizeof path, DEVICES "/%s/driver_override", fn);
        r = write_attr(path, to_vfio ? "vfio-pci" : "\n");
        if (r < 0)
                return fail(fn, "driver_override", r);
        snprintf(path, sizeof path, DEVICES "/%s/driver/unbind", fn);
        r = write_attr(path, fn);
        if (r < 0 && r != -ENOENT)
                return fail(fn, "unbind", r);
        r = write_attr("/sys/bus/pci/drivers_probe", fn);
        if (r < 0)
                return fail(fn, "drivers_probe", r);
        r = driver_of(fn, now);
        if (r < 0)
                return fail(fn, "reading the driver link", r);
        if (to_vfio ? strcmp(now, "vfio-pci") != 0 : (!*now || strcmp(now, "vfio-pci") == 0)) {
                fprintf(stderr, "switch-floor: %s: on %s after drivers_probe\n", fn, *now ? now : "no driver");
                return -EIO;
        }
        return 0;
}

/* Whether the kernel command line has TESTVM_MARKER as one of its words. */
static int in_test_vm(void) {
        char line[4096], *word, *save = NULL;
        FILE *f = fopen("/proc/cmdline", "re");
        int found = 0;

        if (!f)
                return 0;
        if (fgets(line, sizeof line, f))
                for (word = strtok_r(line, " \n", &save); word && !found; word = strtok_r(NULL, " \n", &save))
                        found = strcmp(word, TESTVM_MARKER) == 0;
        fclose(f);
        return found;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
        return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char *argv[]) {
        struct dirent **list;
        size_t slot_len;
        int to_vfio, n, moved = 0, ret = 0;

        if (argc != 3 || (strcmp(argv[1], "vfio") != 0 && strcmp(argv[1], "host") != 0) ||
            strlen(argv[2]) != 10 || strchr(argv[2], '/')) {
                fprintf(stderr, "usage: switch-floor vfio|host SLOT (such as 0000:0a:00)\n");
                return 2;
        }
        if (!in_test_vm()) {
                fprintf(stderr, "switch-floor: refusing to run: this is not the gpuswitch test VM (" TESTVM_MARKER
                                " is not on the kernel command line), and switch-floor writes PCI sysfs;"
                                " run it in the guest of tests/vm/run-vm-test.sh\n");
                return 77;
        }
        to_vfio = strcmp(argv[1], "vfio") == 0;
        slot_len = strlen(argv[2]);
        /* drivers_probe finds vfio-pci only when it is loaded. */
        if (to_vfio && access("/sys/bus/pci/drivers/vfio-pci", F_OK) < 0 && system("modprobe -q vfio-pci") != 0) {
                fprintf(stderr, "switch-floor: cannot load vfio-pci\n");
                return 1;
        }

        n = scandir(DEVICES, &list, NULL, by_name);
        if (n < 0) {
                fprintf(stderr, "switch-floor: " DEVICES ": %s\n", strerror(errno));
                return 1;
        }
        for (int i = 0; i < n; i++) {
                const char *fn = list[i]->d_name;

                if (ret == 0 && strncmp(fn, argv[2], slot_len) == 0 && fn[slot_len] == '.') {
                        if (move(fn, to_vfio) < 0)
                                ret = 1;
                        moved++;
                }
                free(list[i]);
        }
        free(list);
        if (moved == 0) {
                fprintf(stderr, "switch-floor: no function on slot %s\n", argv[2]);
                return 1;
        }
        return ret;
}
