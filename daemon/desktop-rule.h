/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "config.h"
#include "sysfs.h"

/* DesktopAccess=no: a udev rule that tags the GPU's DRM nodes
 * mutter-device-ignore, the tag GNOME's mutter (40.1 and later) reads when
 * a DRM card appears (src/backends/meta-udev.c) and then leaves the card
 * alone.  KWin, wlroots and Hyprland have no tag: their users name the
 * cards to use in an environment variable (gpuswitch.conf(5), doctor). */

#define DESKTOP_RULE_DIR "/run/udev/rules.d"
#define DESKTOP_RULE_FILE "70-gpuswitch-desktop.rules"
#define MUTTER_IGNORE_TAG "mutter-device-ignore"

/* The rule file's text for the sections with DesktopAccess=no, one line a
 * GPU; *ret NULL when no GPU asks for it. */
int desktop_rule_text(const Config *c, char **ret);

/* Makes dir/DESKTOP_RULE_FILE say what the config asks (written whole
 * through a rename, or removed), and when that changed it: has udevd
 * reload its rules (`UDEVADM control --reload`), makes udevd run them
 * again on the DRM nodes there are of the GPUs to tag (a "change" written
 * to each node's uevent, through sysfs), and waits for it
 * (`UDEVADM settle`), so that a display manager started after this finds
 * the tag.  udevadm NULL: no udevd to ask (the unit tests).  Returns 1
 * when the file changed, 0 when it was right already, or -errno, logged. */
int desktop_rule_apply(const Config *c, const char *dir, Sysfs *sysfs, const char *udevadm);
