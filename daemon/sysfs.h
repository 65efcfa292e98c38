/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* Where the engine reads and writes the kernel's PCI state.  In the daemon
 * this is /sys with plain writes; the unit tests point it at a tree of
 * their own and put a simulated kernel behind write(). */
typedef struct Sysfs Sysfs;
typedef int (*SysfsWriteFunc)(Sysfs *s, const char *path, const char *value);
typedef int (*SysfsLoadFunc)(Sysfs *s, const char *module);
/* Told before each write, on the writing thread: which function, which step. */
typedef void (*SysfsProgressFunc)(const char *function, const char *step, const char *path, void *userdata);

struct Sysfs {
        const char *root;          /* "/sys" */
        const char *proc_root;     /* "/proc", for /proc/driver/nvidia and /proc/devices */
        SysfsWriteFunc write;      /* NULL: write the file */
        SysfsLoadFunc load_module; /* NULL: module_load() */
        void *userdata;
        SysfsProgressFunc progress;
        void *progress_userdata;
        const char *kmsg;          /* "/dev/kmsg", what the kernel logged during a switch; NULL: not read */
        bool kmsg_journal;         /* where kmsg cannot be read: the journal's kernel lines */
};

/* The daemon's view: /sys, /proc and /dev/kmsg with plain writes.  It has
 * no other: a simulated kernel (the unit tests, bench/) sets up a Sysfs of
 * its own, with its write hook. */
void sysfs_init(Sysfs *s);

/* "a/b/c/d" into a new string; b, c, d may be NULL. */
char *sysfs_path_join(const char *a, const char *b, const char *c, const char *d);
/* "<root>/bus/pci/devices/<function>/<attr>" into a new string. */
char *sysfs_function_path(const Sysfs *s, const char *function, const char *attr);

/* Reads an attribute of a function, newline stripped. */
int sysfs_read_attr(const Sysfs *s, const char *function, const char *attr, char **ret);
int sysfs_read_hex(const Sysfs *s, const char *function, const char *attr, unsigned long *ret);
/* The driver a function is bound to, or NULL (return 0) when unbound. */
int sysfs_read_driver(const Sysfs *s, const char *function, char **ret);
/* The function's IOMMU group number, or -ENOENT without an IOMMU. */
int sysfs_read_iommu_group(const Sysfs *s, const char *function, unsigned *ret);

/* The writes of the kernel sequence (sysfs-bus-pci ABI).  Each one
 * returns 0 or -errno; the caller verifies the outcome. */
int sysfs_set_driver_override(Sysfs *s, const char *function, const char *driver);
int sysfs_unbind(Sysfs *s, const char *function, const char *driver);
int sysfs_drivers_probe(Sysfs *s, const char *function);
/* Binds to one named driver: drivers/DRIVER/bind. */
int sysfs_bind(Sysfs *s, const char *function, const char *driver);
/* Any other attribute of a function ("power/control", "reset"), through
 * the same write hook. */
int sysfs_write_attr(Sysfs *s, const char *function, const char *attr, const char *value);
/* Any other file of the kernel's that belongs to a function (a driver's
 * /proc entry): step names it for the progress hook. */
int sysfs_write_path(Sysfs *s, const char *function, const char *step, const char *path, const char *value);

/* Whether DRIVER is registered with the PCI bus (its module is loaded). */
bool sysfs_have_driver(const Sysfs *s, const char *driver);
/* Loads a module by PCI driver name or modalias, through load_module or
 * module_load() (module-load.h: systemd's modprobe@.service, or libkmod). */
int sysfs_load_module(Sysfs *s, const char *module);
