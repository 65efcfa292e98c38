/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <systemd/sd-bus.h>

#include "config.h"
#include "gpu-info.h"
#include "gpu.h"
#include "json-out.h"

/* gpuswitchctl doctor: checks of the machine's setup, each with a verdict
 * and, when something is wrong, one line saying what to do about it. */

typedef enum Verdict {
        VERDICT_OK,
        VERDICT_WARNING,
        VERDICT_FAIL,
        VERDICT_SKIPPED,
} Verdict;

typedef struct Check {
        char *id;       /* "iommu", "vfio-pci", ...: stable, for --json */
        char *title;
        Verdict verdict;
        char *detail;
        char *fix;      /* NULL when there is nothing to do */
} Check;

void check_free(Check *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Check, check_free)
const char *verdict_to_json(Verdict v);   /* "ok", "warning", "fail", "skipped" */
/* A check that could not run, and why. */
Check *doctor_check_skipped(const char *id, const char *title, const char *reason);

/* The checks that read files: every path is taken below root ("/" on a real
 * machine, a fake tree in the unit tests).  What the daemon decides, they
 * decide with its own code (gpuswitch-rules): its config parser, its IOMMU
 * group check, its reading of nvidia_drm's modeset, its StopServices=
 * default and Gpus=auto. */
Check *doctor_check_iommu(const char *root);
/* kernel_release: the `uname -r` whose module tree to look in. */
Check *doctor_check_vfio_pci(const char *root, const char *kernel_release);
/* The config file, parsed as gpuswitchd parses it: a mistake fails with
 * the daemon's own message.  *ret: the config, NULL when it does not parse
 * or cannot be read. */
Check *doctor_check_config(const char *root, Config **ret);

/* A GPU as the daemon sees it: read from sysfs below root, each function's
 * host driver the daemon's (info, from the bus) or, without the daemon
 * (info NULL), what HostDriver= and the bound driver tell. */
int doctor_gpu_read(const char *root, const char *address, const Config *config, const GpuInfo *info, Gpu **ret);
/* Without the daemon: the GPUs it would manage (Gpus=, or Gpus=auto's
 * discovery), appended to ret as Gpu. */
int doctor_find_gpus(const char *root, const Config *config, GPtrArray *ret);

/* config NULL: the config does not parse. */
Check *doctor_check_group(const char *root, const Gpu *gpu);
Check *doctor_check_boot_vga(const Config *config, const Gpu *gpu);
Check *doctor_check_nvidia(const char *root, const Gpu *gpu);
Check *doctor_check_egl_vendor(const char *root);
/* home: the user's home folder (below root too). */
Check *doctor_check_flatpak(const char *root, const char *home);

/* A process holding one of a GPU's nodes, as ListHolders tells it. */
typedef struct DoctorHolder {
        uint32_t pid;
        char *comm;
        char *node;
} DoctorHolder;
void doctor_holder_done(DoctorHolder *h);

/* The DRM cards below root's /sys/class/drm that are of none of gpus, the
 * ones a desktop should use: "/dev/dri/card0:/dev/dri/card2", in the
 * colon-separated form KWIN_DRM_DEVICES, WLR_DRM_DEVICES and AQ_DRM_DEVICES
 * take; NULL when there is none. */
char *doctor_other_cards(const char *root, Gpu *const *gpus, size_t n_gpus);
/* Appends to checks one "compositor" check for each desktop compositor or
 * X server among the holders of gpu, with the fix for that one (the cards
 * to use: those of none of gpus, the GPUs managed), or one that is ok when
 * there is none.  reason set: the holders are not known, skipped for it.
 * config NULL: it does not parse. */
void doctor_check_compositors(const char *root, const Config *config, const Gpu *gpu, Gpu *const *gpus,
                              size_t n_gpus, const DoctorHolder *holders, size_t n_holders, const char *reason,
                              GPtrArray *checks);

/* The NVIDIA services that keep GPUs open and whether gpuswitchd stops them
 * (StopServices=, by default for a GPU on nvidia).  active_states[i] is
 * systemd's ActiveState of nvidia_services[i] (daemon/nvidia.h), "" when
 * the unit is not loaded; NULL when systemd could not be asked (reason
 * says why).  gpus is NULL when the GPUs are not known, config NULL when it
 * does not parse. */
Check *doctor_check_services(const Config *config, const char *const *active_states, const char *reason,
                             Gpu *const *gpus, size_t n_gpus);

/* The daemon: its Version, or the error of asking for it (bus_error NULL
 * when there is no system bus at all). */
Check *doctor_check_daemon(const char *version, const char *error_name, const char *error_message);

typedef enum AuthAnswer {
        AUTH_ROOT,              /* the daemon authorizes root itself */
        AUTH_YES,
        AUTH_CHALLENGE,         /* after authentication */
        AUTH_NO,
        AUTH_UNKNOWN,           /* polkit could not be asked: reason */
} AuthAnswer;
Check *doctor_check_authorization(AuthAnswer answer, const char *user, const char *reason);

/* Output: the aligned human list with a summary line, or the --json object. */
void doctor_print(GPtrArray *checks, FILE *f);
void doctor_to_json(GPtrArray *checks, JsonOut *o);   /* nothing when o is NULL */
size_t doctor_count(GPtrArray *checks, Verdict v);

/* The verb: runs every check it can (bus may be NULL: no system bus) and
 * prints them; gpu is a slot or "" for every managed GPU.  Returns the exit
 * code: 0 when nothing failed, 1 when a check failed, 5 when the daemon does
 * not manage gpu. */
int doctor_run(sd_bus *bus, const char *gpu, bool json);
