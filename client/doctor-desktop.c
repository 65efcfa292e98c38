/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* doctor's compositor check: a desktop compositor (or X server) among the
 * processes holding a managed GPU, and the way to keep that one off it:
 * the udev tag of DesktopAccess=no for GNOME (mutter), the cards to use in
 * KWIN_DRM_DEVICES (KWin), WLR_DRM_DEVICES (wlroots) or AQ_DRM_DEVICES
 * (Hyprland's aquamarine), all three colon-separated with the primary GPU
 * first. */
#include "doctor.h"

#include <string.h>

#include "util.h"

typedef enum Desktop {
        DESKTOP_MUTTER,
        DESKTOP_KWIN,
        DESKTOP_WLROOTS,
        DESKTOP_HYPRLAND,
        DESKTOP_XWAYLAND,
        DESKTOP_XORG,
} Desktop;

/* By the kernel's comm: the executable's name, cut to 15 characters. */
static const struct {
        const char *comm;
        Desktop desktop;
        const char *name;
} compositors[] = {
        { "gnome-shell",  DESKTOP_MUTTER,   "GNOME Shell" },
        { "mutter",       DESKTOP_MUTTER,   "mutter" },
        { "gnome-kiosk",  DESKTOP_MUTTER,   "GNOME Kiosk" },
        { "kwin_wayland", DESKTOP_KWIN,     "KWin" },
        { "kwin_x11",     DESKTOP_XORG,     "KWin on X11" },
        { "sway",         DESKTOP_WLROOTS,  "sway" },
        { "labwc",        DESKTOP_WLROOTS,  "labwc" },
        { "river",        DESKTOP_WLROOTS,  "river" },
        { "wayfire",      DESKTOP_WLROOTS,  "Wayfire" },
        { "cage",         DESKTOP_WLROOTS,  "cage" },
        { "cagebreak",    DESKTOP_WLROOTS,  "Cagebreak" },
        { "dwl",          DESKTOP_WLROOTS,  "dwl" },
        { "hikari",       DESKTOP_WLROOTS,  "hikari" },
        { "phoc",         DESKTOP_WLROOTS,  "phoc" },
        { "Hyprland",     DESKTOP_HYPRLAND, "Hyprland" },
        { "Xwayland",     DESKTOP_XWAYLAND, "Xwayland" },
        { "Xorg",         DESKTOP_XORG,     "Xorg" },
        { "X",            DESKTOP_XORG,     "Xorg" },
};

void doctor_holder_done(DoctorHolder *h) {
        g_free(h->comm);
        g_free(h->node);
}

static int compare_uint(const void *a, const void *b) {
        unsigned x = *(const unsigned *) a, y = *(const unsigned *) b;

        return x < y ? -1 : x > y;
}

char *doctor_other_cards(const char *root, Gpu *const *gpus, size_t n_gpus) {
        g_autofree char *dir = g_strconcat(streq(root, "/") ? "" : root, "/sys/class/drm", NULL);
        g_autoptr(GArray) cards = g_array_new(FALSE, FALSE, sizeof(unsigned));
        g_autoptr(GString) list = NULL;
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        const char *name;

        while (d && (name = g_dir_read_name(d))) {
                _cleanup_free_ char *device = NULL;
                g_autofree char *link = NULL;
                const char *digits = name + strlen("card");
                unsigned n;
                PciAddress a;
                bool managed = false;

                /* cardN, not its connectors (cardN-DP-1) */
                if (!g_str_has_prefix(name, "card") || !*digits || strspn(digits, "0123456789") != strlen(digits))
                        continue;
                link = g_build_filename(dir, name, "device", NULL);
                if (readlink_basename(link, &device) >= 0 && pci_address_parse(device, &a) >= 0)
                        for (size_t i = 0; i < n_gpus; i++)
                                managed = managed || gpu_has_address(gpus[i], &a);
                if (managed)
                        continue;
                n = (unsigned) strtoul(digits, NULL, 10);
                g_array_append_val(cards, n);
        }
        if (cards->len == 0)
                return NULL;
        g_array_sort(cards, compare_uint);
        list = g_string_new(NULL);
        for (unsigned i = 0; i < cards->len; i++)
                g_string_append_printf(list, "%s/dev/dri/card%u", i ? ":" : "", g_array_index(cards, unsigned, i));
        return g_string_free(g_steal_pointer(&list), FALSE);
}

static char *fix_for(Desktop desktop, const char *name, const Config *config, const Gpu *gpu, const char *cards) {
        const GpuConfig *gc = NULL;
        const char *variable = NULL;
        PciAddress slot;

        if (config && pci_address_parse(gpu->address, &slot) >= 0)
                gc = config_find_gpu(config, &slot);
        switch (desktop) {
        case DESKTOP_MUTTER:
                if (gc && !gc->desktop_access)
                        return g_strdup_printf("DesktopAccess=no is set: the udev tag mutter-device-ignore keeps "
                                               "GNOME off %s from its next start; log out and in again (or restart "
                                               "the display manager)", gpu->address);
                return g_strdup_printf("DesktopAccess=no in [Gpu %s] of " GPUSWITCH_CONFIG_FILE ": the udev tag "
                                       "mutter-device-ignore keeps GNOME off the GPU; restart gpuswitchd, then log "
                                       "out and in again", gpu->address);
        case DESKTOP_KWIN:
                variable = "KWIN_DRM_DEVICES";
                break;
        case DESKTOP_WLROOTS:
                variable = "WLR_DRM_DEVICES";
                break;
        case DESKTOP_HYPRLAND:
                variable = "AQ_DRM_DEVICES";
                break;
        case DESKTOP_XWAYLAND:
                return g_strdup("Xwayland renders on the GPU its compositor and glvnd give it: keep the compositor "
                                "off the GPU (its own line here) and glvnd's NVIDIA EGL vendor away (egl-vendor)");
        case DESKTOP_XORG:
                if (!cards)
                        return g_strdup("an X server opens every GPU it finds: the desktop needs another GPU with a "
                                        "DRM card, and none is there");
                return g_strdup_printf("an X server opens every GPU it finds: in /etc/X11/xorg.conf.d, "
                                       "Option \"AutoAddGPU\" \"false\" in a ServerFlags section and a Device "
                                       "section with the BusID of the GPU to use (%s), then restart the X session",
                                       cards);
        }
        if (!cards)
                return g_strdup_printf("%s names the cards %s may open, and no other GPU has a DRM card here: the "
                                       "desktop needs one", variable, name);
        return g_strdup_printf("start %s with %s=%s (e.g. in ~/.config/environment.d/gpuswitch.conf, and for the "
                               "login screen in the display manager's), then log out and in again%s", name, variable,
                               cards, desktop == DESKTOP_HYPRLAND ? "; before Hyprland 0.42, WLR_DRM_DEVICES" : "");
}

void doctor_check_compositors(const char *root, const Config *config, const Gpu *gpu, Gpu *const *gpus,
                              size_t n_gpus, const DoctorHolder *holders, size_t n_holders, const char *reason,
                              GPtrArray *checks) {
        g_autofree char *cards = NULL;
        size_t found = 0;

        if (reason) {
                g_ptr_array_add(checks, doctor_check_skipped("compositor", "Desktop compositor", reason));
                return;
        }
        cards = doctor_other_cards(root, gpus, n_gpus);
        for (size_t i = 0; i < n_holders; i++) {
                g_autoptr(GString) nodes = NULL;
                Check *c;
                size_t k;
                bool seen = false;

                for (k = 0; k < ELEMENTSOF(compositors); k++)
                        if (streq(holders[i].comm, compositors[k].comm))
                                break;
                if (k == ELEMENTSOF(compositors))
                        continue;
                /* one line a process, with every node it holds */
                for (size_t j = 0; j < i; j++)
                        seen = seen || holders[j].pid == holders[i].pid;
                if (seen)
                        continue;
                nodes = g_string_new(holders[i].node);
                for (size_t j = i + 1; j < n_holders; j++)
                        if (holders[j].pid == holders[i].pid)
                                g_string_append_printf(nodes, ", %s", holders[j].node);

                c = doctor_check_skipped("compositor", "Desktop compositor", NULL);
                c->verdict = VERDICT_WARNING;
                c->detail = g_strdup_printf("%s (%s, PID %u) holds %s of %s: a switch to vfio would fail, or end "
                                            "it with --force", compositors[k].name, holders[i].comm, holders[i].pid,
                                            nodes->str, gpu->address);
                c->fix = fix_for(compositors[k].desktop, compositors[k].name, config, gpu, cards);
                g_ptr_array_add(checks, c);
                found++;
        }
        if (found == 0) {
                Check *c = doctor_check_skipped("compositor", "Desktop compositor", NULL);

                c->verdict = VERDICT_OK;
                c->detail = g_strdup_printf("no desktop compositor or X server holds %s", gpu->address);
                g_ptr_array_add(checks, c);
        }
}
