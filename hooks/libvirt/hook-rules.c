/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "hook-rules.h"

#include "config.h"
#include "gpu.h"
#include "gpu-rules.h"
#include "util.h"

static bool slot_is_display(const Sysfs *s, const PciAddress *slot) {
        PciAddress f = *slot;
        char function[PCI_FUNCTION_STRLEN];
        unsigned long class;

        f.function = 0;
        pci_address_format_function(&f, function);
        return sysfs_read_hex(s, function, "class", &class) >= 0 && (class >> 16) == PCI_CLASS_DISPLAY;
}

bool hook_slot_may_be_managed(const Sysfs *s, const char *config_path, const PciAddress *slot) {
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_free_ char *error_message = NULL;
        _cleanup_free_ PciAddress *gpus = NULL;
        size_t n_gpus = 0;

        if (config_load(config_path, &config, &error_message) < 0)
                return slot_is_display(s, slot);
        /* Gpus=auto that cannot read sysfs: as unknowable as a broken config */
        if (gpus_to_manage(s, config, &gpus, &n_gpus) < 0)
                return slot_is_display(s, slot);
        for (size_t i = 0; i < n_gpus; i++)
                if (pci_address_same_slot(&gpus[i], slot))
                        return true;
        for (size_t i = 0; i < n_gpus; i++) {
                const GpuConfig *gc = config_find_gpu(config, &gpus[i]);

                for (size_t j = 0; gc && j < gc->n_companions; j++)
                        if (pci_address_same_slot(&gc->companions[j], slot))
                                return true;
        }
        return false;
}
