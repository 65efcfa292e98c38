/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "worker.h"

#include <stdlib.h>
#include <sys/eventfd.h>

#include "util.h"

struct Worker {
        Worker **list, *next, *prev;
        WorkFunc work;
        WorkDoneFunc done;
        void *userdata;
        int result;
        int fd;
        sd_event_source *source;
        pthread_t thread;
};

static void worker_unlink_free(Worker *w) {
        pthread_join(w->thread, NULL);
        if (w->prev)
                w->prev->next = w->next;
        else
                *w->list = w->next;
        if (w->next)
                w->next->prev = w->prev;
        sd_event_source_disable_unref(w->source);
        closep(&w->fd);
        free(w);
}

static void *worker_thread(void *p) {
        Worker *w = p;

        w->result = w->work(w->userdata);
        (void) eventfd_write(w->fd, 1);
        return NULL;
}

static int on_worker_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Worker *w = userdata;
        WorkDoneFunc done = w->done;
        void *data = w->userdata;
        int result = w->result;

        worker_unlink_free(w);
        done(result, data);
        return 0;
}

int worker_start(sd_event *e, Worker **list, WorkFunc work, WorkDoneFunc done, void *userdata) {
        _cleanup_free_ Worker *w = calloc(1, sizeof *w);
        int r;

        if (!w)
                return -ENOMEM;
        *w = (Worker) { .list = list, .work = work, .done = done, .userdata = userdata };
        w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->fd < 0)
                return -errno;
        r = sd_event_add_io(e, &w->source, w->fd, EPOLLIN, on_worker_done, w);
        if (r < 0) {
                closep(&w->fd);
                return r;
        }
        r = -pthread_create(&w->thread, NULL, worker_thread, w);
        if (r < 0) {
                sd_event_source_disable_unref(w->source);
                closep(&w->fd);
                return r;
        }
        w->next = *list;
        if (*list)
                (*list)->prev = w;
        *list = TAKE_PTR(w);
        return 0;
}

void worker_join_all(Worker **list) {
        while (*list)
                worker_unlink_free(*list);
}
