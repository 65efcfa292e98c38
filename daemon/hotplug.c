/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GPUs that come and go while the daemon runs: a Thunderbolt eGPU, a card
 * removed and found again by a rescan (`echo 1 > .../remove`, then
 * `echo 1 > /sys/bus/pci/rescan`), a GPU powered on after boot.  The same
 * rules as at start decide which slots are managed (gpus_to_manage()). */
#include <stdio.h>
#include <unistd.h>

#include "gpu-rules.h"
#include "manager.h"
#include "util.h"
#include "worker.h"

/* The first read of a GPU that appeared: on a worker, since the kernel
 * probes its functions' drivers right after adding them and holds each
 * one's device lock meanwhile (nvidia's probe takes a second or more),
 * which reading driver_override waits for. */
typedef struct AppearingRead {
        Manager *manager;
        PciAddress slot;
        Gpu *state;
} AppearingRead;

/* Whether any function of the slot is in sysfs.  A directory lookup: it
 * takes no device lock, so it is made on the loop. */
bool manager_slot_present(const Manager *m, const PciAddress *slot) {
        const Sysfs *s = &m->sysfs;

        for (int fn = 0; fn < 8; fn++) {
                _cleanup_free_ char *path = NULL;

                if (asprintf(&path, "%s/bus/pci/devices/%04x:%02x:%02x.%d", s->root, slot->domain, slot->bus,
                             slot->slot, fn) < 0)
                        return true;      /* out of memory: keep what is there */
                if (access(path, F_OK) == 0)
                        return true;
        }
        return false;
}

static bool switch_of_gone(const Manager *m, const PciAddress *slot) {
        for (size_t i = 0; i < m->n_gone; i++)
                if (m->gone[i]->job && pci_address_same_slot(&m->gone[i]->slot, slot))
                        return true;
        return false;
}

bool manager_manages_slot(const Manager *m, const PciAddress *slot) {
        for (size_t i = 0; i < m->n_gpus; i++)
                if (pci_address_same_slot(&m->gpus[i]->slot, slot))
                        return true;
        return false;
}

static bool appearing(const Manager *m, const PciAddress *slot) {
        for (size_t i = 0; i < m->n_appearing; i++)
                if (pci_address_same_slot(&m->appearing[i], slot))
                        return true;
        return false;
}

static void appearing_remove(Manager *m, const PciAddress *slot) {
        for (size_t i = 0; i < m->n_appearing; i++)
                if (pci_address_same_slot(&m->appearing[i], slot)) {
                        m->appearing[i] = m->appearing[--m->n_appearing];
                        return;
                }
}

static int appearing_read(void *userdata) {
        AppearingRead *a = userdata;

        return manager_read_gpu(a->manager, &a->slot, &a->state);
}

static void appearing_read_done(int result, void *userdata) {
        AppearingRead *a = userdata;
        Manager *m = a->manager;
        char address[PCI_SLOT_STRLEN];
        int r;

        pci_address_format_slot(&a->slot, address);
        appearing_remove(m, &a->slot);
        if (m->stopping || result == -ECANCELED)
                ;
        else if (result == -ENODEV || (result >= 0 && !manager_slot_present(m, &a->slot)))
                log_info("%s: gone again before it was read", address);
        else if (result < 0)
                log_error_errno(result, "%s: reading its functions", address);
        else if (!manager_manages_slot(m, &a->slot)) {
                r = manager_publish_gpu(m, &a->slot, TAKE_PTR(a->state));
                if (r < 0)
                        log_error_errno(r, "%s: cannot manage it", address);
        }
        gpu_free(a->state);
        free(a);
}

/* Reads the slot on a worker and manages it when the read is delivered. */
static int appearing_start(Manager *m, const PciAddress *slot) {
        PciAddress *grown;
        AppearingRead *a;
        int r;

        grown = realloc(m->appearing, (m->n_appearing + 1) * sizeof *grown);
        if (!grown)
                return -ENOMEM;
        m->appearing = grown;
        a = calloc(1, sizeof *a);
        if (!a)
                return -ENOMEM;
        *a = (AppearingRead) { .manager = m, .slot = *slot };
        r = worker_start(m->workers, WORK_READ, appearing_read, appearing_read_done, a);
        if (r < 0) {
                free(a);
                return r;
        }
        m->appearing[m->n_appearing++] = *slot;
        return 0;
}

int manager_hotplug(Manager *m) {
        _cleanup_free_ PciAddress *slots = NULL;
        _cleanup_free_ char *error = NULL;
        int companions = 0;       /* gpus_check_companions(): 1 ok, -1 not, 0 not asked yet */
        size_t n = 0;
        int r;

        /* last first: a removal moves the ones after it */
        for (size_t i = m->n_gpus; i-- > 0;)
                if (!manager_slot_present(m, &m->gpus[i]->slot))
                        manager_remove_gpu(m, m->gpus[i]);

        r = gpus_to_manage(&m->sysfs, m->config, &slots, &n);
        if (r < 0)
                return log_warning_errno(r, "finding the GPUs to manage");
        for (size_t i = 0; i < n; i++) {
                char address[PCI_SLOT_STRLEN];

                if (manager_manages_slot(m, &slots[i]) || appearing(m, &slots[i]) || !manager_slot_present(m, &slots[i]))
                        continue;
                pci_address_format_slot(&slots[i], address);
                if (switch_of_gone(m, &slots[i])) {
                        log_info("%s: back on the PCI bus; managed once the switch of its previous device has ended",
                                 address);
                        continue;
                }
                /* what made the start fail (a bridge named in Companions=)
                 * leaves the new GPU unmanaged, and the others as they are */
                if (companions == 0)
                        companions = gpus_check_companions(&m->sysfs, m->config, slots, n, &error) < 0 ? -1 : 1;
                if (companions < 0) {
                        log_error("%s: not managed: %s", address, strempty(error));
                        continue;
                }
                log_info("%s: appeared on the PCI bus", address);
                r = appearing_start(m, &slots[i]);
                if (r == -EBUSY)
                        log_warning("%s: not read yet, too many reads under way: at the next uevent", address);
                else if (r < 0)
                        log_error_errno(r, "%s: cannot read it", address);
        }
        return 0;
}
