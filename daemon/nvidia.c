/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "nvidia.h"

#include <stdio.h>

#include "util.h"

const char *const nvidia_services[] = { "nvidia-persistenced.service", "nvidia-powerd.service", NULL };

bool nvidia_drm_modeset(const Sysfs *s) {
        _cleanup_free_ char *p = NULL, *v = NULL;

        if (asprintf(&p, "%s/module/nvidia_drm/parameters/modeset", s->root) < 0)
                return false;
        return read_one_line_file(p, &v) >= 0 && (streq(v, "Y") || streq(v, "1"));
}

const char *nvidia_modeset_note(const Sysfs *s, const Gpu *g) {
        bool on_nvidia = false;

        for (size_t i = 0; i < g->n_functions; i++)
                on_nvidia = on_nvidia || streq_ptr(g->functions[i].driver, "nvidia");
        if (!on_nvidia || !nvidia_drm_modeset(s))
                return "";
        /* With modeset=1 nvidia-drm is a KMS driver: the console's fbdev and
         * every KMS client (a compositor, even on the other GPU's outputs)
         * keep a reference, and nvidia's remove() waits for all of them. */
        return "\nnvidia_drm is loaded with modeset=1: the kernel console and KMS clients keep this GPU and "
               "the nvidia unbind waits for them; for a GPU you switch, set 'options nvidia-drm modeset=0' "
               "in /etc/modprobe.d and rebuild the initramfs";
}
