/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "fake-hotplug.h"

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "uevent.h"
#include "util.h"

int fake_hotplug_command(FakeKernel *k, Manager *m, const char *command, FakeHotplugAdded added) {
        char msgs[3][512];
        size_t lens[3], n;

        if (streq(command, "remove"))
                fake_gpu_remove(k);
        else if (streq(command, "add")) {
                fake_gpu_add(k);
                if (added)
                        added(k);
        } else
                return -EINVAL;
        n = fake_gpu_uevents(command, msgs, lens);
        for (size_t i = 0; i < n; i++)
                uevent_handle(m, msgs[i], lens[i]);
        return 0;
}

typedef struct Watch {
        FakeKernel *kernel;
        Manager *manager;
        FakeHotplugAdded added;
        char line[256];
        size_t len;
} Watch;

static void run_line(Watch *w) {
        w->line[w->len] = 0;
        w->len = 0;
        if (isempty(w->line))
                return;
        if (fake_hotplug_command(w->kernel, w->manager, w->line, w->added) < 0)
                log_warning("unknown command '%s': expected add or remove", w->line);
        else
                log_info("simulated kernel: %s of 0000:01:00", w->line);
}

static int on_input(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Watch *w = userdata;
        char buf[256];
        ssize_t n = read(fd, buf, sizeof buf);

        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (n == 0) {
                if (w->len > 0)
                        run_line(w);
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        }
        for (ssize_t i = 0; i < n; i++) {
                if (buf[i] == '\n')
                        run_line(w);
                else if (w->len < sizeof w->line - 1)
                        w->line[w->len++] = buf[i];
        }
        return 0;
}

int fake_hotplug_watch(FakeKernel *k, Manager *m, int fd, FakeHotplugAdded added) {
        sd_event_source *s = NULL;
        Watch *w = calloc(1, sizeof *w);
        int r;

        if (!w)
                return -ENOMEM;
        *w = (Watch) { .kernel = k, .manager = m, .added = added };
        r = sd_event_add_io(m->event, &s, fd, EPOLLIN, on_input, w);
        if (r < 0) {
                free(w);
                return r;
        }
        /* the source lives as long as the loop; w with it */
        (void) sd_event_source_set_destroy_callback(s, free);
        (void) sd_event_source_set_floating(s, true);
        sd_event_source_unref(s);
        return 0;
}
