/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Kernel uevents on the PCI bus: someone else (a script, libvirt, a udev
 * rule) may bind or unbind a managed function, and the Mode and Functions
 * properties have to follow.  The kernel's own netlink group is read, not
 * udev's: it works without udevd (initramfs, the test VM) and carries the
 * bind/unbind events as they happen. */
#include "uevent.h"

#include "manager.h"
#include "util.h"

#define UEVENT_KERNEL_GROUP 1
/* A rebind comes as a burst of events (unbind, bind, for each function):
 * the GPUs are read again once, this long after the first event of a
 * burst, not once per event.  A script's or libvirt's switch then costs
 * the daemon a read or two instead of one per event. */
#define UEVENT_REFRESH_DELAY_USEC (20 * 1000)

static void refresh_all(Manager *m, bool whole) {
        for (size_t i = 0; i < m->n_gpus; i++)
                managed_gpu_refresh(m->gpus[i], whole);
}

static int on_refresh(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        bool whole = m->uevent_refresh_whole;

        m->uevent_refresh_whole = false;
        /* first: a GPU that went is not read, one that came is read whole */
        if (m->uevent_hotplug) {
                m->uevent_hotplug = false;
                (void) manager_hotplug(m);
        }
        /* a burst of other devices' add events only */
        if (m->uevent_refresh_gpus) {
                m->uevent_refresh_gpus = false;
                refresh_all(m, whole);
        }
        return 0;
}

/* A bind or unbind changes a function's driver (and the writer its
 * driver_override) only; anything else (add, remove, change) may change
 * what else the daemon keeps of it. */
static void refresh_soon(Manager *m, bool gpus, bool whole) {
        int enabled = SD_EVENT_OFF, r;

        m->uevent_refresh_gpus = m->uevent_refresh_gpus || gpus;
        m->uevent_refresh_whole = m->uevent_refresh_whole || whole;

        if (m->uevent_refresh) {
                (void) sd_event_source_get_enabled(m->uevent_refresh, &enabled);
                if (enabled != SD_EVENT_OFF)
                        return;          /* one is due already */
                r = sd_event_source_set_time_relative(m->uevent_refresh, UEVENT_REFRESH_DELAY_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(m->uevent_refresh, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time_relative(m->event, &m->uevent_refresh, CLOCK_MONOTONIC,
                                               UEVENT_REFRESH_DELAY_USEC, 0, on_refresh, m);
        if (r < 0)
                (void) on_refresh(NULL, 0, m);
}

void uevent_handle(Manager *m, const char *buf, size_t len) {
        const char *subsystem = NULL, *slot_name = NULL;
        bool hotplug = strncmp(buf, "add@", 4) == 0 || strncmp(buf, "remove@", 7) == 0;

        /* "ACTION@DEVPATH\0KEY=VALUE\0KEY=VALUE\0..." */
        for (size_t i = strnlen(buf, len) + 1; i < len; i += strnlen(buf + i, len - i) + 1) {
                const char *kv = buf + i;

                if (strncmp(kv, "SUBSYSTEM=", 10) == 0)
                        subsystem = kv + 10;
                else if (strncmp(kv, "PCI_SLOT_NAME=", 14) == 0)
                        slot_name = kv + 14;
        }
        if (!subsystem || !streq(subsystem, "pci") || !slot_name)
                return;

        PciAddress a;
        if (pci_address_parse(slot_name, &a) < 0)
                return;
        for (size_t i = 0; i < m->n_gpus; i++)
                if (gpu_has_address(m->gpus[i]->state, &a)) {
                        log_debug("%s: uevent %s", slot_name, buf);
                        refresh_soon(m, true, strncmp(buf, "bind@", 5) != 0 && strncmp(buf, "unbind@", 7) != 0);
                }
        /* Any function added (it may make a slot to manage: the kernel adds
         * function 0 first and the others right after, so the slot is read
         * once the burst is over), or a managed one removed (its GPU may be
         * gone).  A companion's removal is only the refresh above. */
        if (hotplug && (buf[0] == 'a' || manager_manages_slot(m, &a))) {
                bool ours = manager_manages_slot(m, &a);

                log_debug("%s: uevent %s", slot_name, buf);
                m->uevent_hotplug = true;
                refresh_soon(m, ours, ours);
        }
}

bool uevent_sender_is_kernel(const struct sockaddr_nl *sender, socklen_t len) {
        return len >= (socklen_t) sizeof *sender && sender->nl_family == AF_NETLINK && sender->nl_pid == 0;
}

ssize_t uevent_receive(int fd, char *buf, size_t size) {
        struct sockaddr_nl sender = {};
        struct iovec iov = { .iov_base = buf, .iov_len = size - 1 };
        struct msghdr msg = { .msg_name = &sender, .msg_namelen = sizeof sender, .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n;

        n = recvmsg(fd, &msg, MSG_DONTWAIT);
        if (n < 0)
                return -errno;
        if (!uevent_sender_is_kernel(&sender, msg.msg_namelen)) {
                log_debug("uevent from port %u, not the kernel: ignored", (unsigned) sender.nl_pid);
                return 0;
        }
        buf[n] = 0;
        return n;
}

static int on_uevent(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        char buf[8192];

        for (;;) {
                ssize_t n = uevent_receive(fd, buf, sizeof buf);

                if (n == -EAGAIN || n == -EINTR)
                        return 0;
                /* ENOBUFS: events were lost; refresh everything. */
                if (n == -ENOBUFS) {
                        Manager *m = userdata;

                        m->uevent_hotplug = true;
                        refresh_soon(m, true, true);
                        continue;
                }
                if (n < 0)
                        return log_warning_errno((int) n, "reading uevents");
                if (n > 0)
                        uevent_handle(userdata, buf, (size_t) n);
        }
}

int uevent_monitor_start(Manager *m) {
        struct sockaddr_nl sa = {
                .nl_family = AF_NETLINK,
                .nl_groups = UEVENT_KERNEL_GROUP,
        };
        _cleanup_close_ int fd = -1;
        int r;

        fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
        if (fd < 0)
                return log_warning_errno(errno, "opening the uevent socket");
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return log_warning_errno(errno, "binding the uevent socket");
        r = sd_event_add_io(m->event, &m->uevent_source, fd, EPOLLIN, on_uevent, m);
        if (r < 0)
                return log_warning_errno(r, "watching uevents");
        r = sd_event_source_set_io_fd_own(m->uevent_source, 1);
        if (r < 0)
                return r;
        TAKE_FD(fd);
        /* what came or went since the GPUs were found (the boot's
         * DefaultMode= switches may have taken seconds) */
        return manager_hotplug(m);
}
