/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "worker.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>

#include "util.h"

typedef struct Work Work;
struct Work {
        Work *next;
        WorkFunc work;
        WorkDoneFunc done;
        void *userdata;
        WorkKind kind;
        int result;
};

typedef struct WorkQueue {
        Work *head, *tail;
} WorkQueue;

static void queue_push(WorkQueue *q, Work *w) {
        w->next = NULL;
        if (q->tail)
                q->tail->next = w;
        else
                q->head = w;
        q->tail = w;
}

static Work *queue_pop(WorkQueue *q) {
        Work *w = q->head;

        if (w) {
                q->head = w->next;
                if (!q->head)
                        q->tail = NULL;
                w->next = NULL;
        }
        return w;
}

static void queue_append(WorkQueue *q, WorkQueue *from) {
        Work *w;

        while ((w = queue_pop(from)))
                queue_push(q, w);
}

typedef struct KindThreads {
        WorkerPool *pool;
        WorkKind kind;
        unsigned max_threads, max_pending;
        unsigned n_pending;       /* queued, running or finished and not yet delivered */
        unsigned n_queued, n_idle;
        WorkQueue queue;
        pthread_cond_t wake;      /* work queued, or the pool is exiting */
        pthread_t threads[WORKER_MAX_THREADS];
        unsigned n_threads;
} KindThreads;

struct WorkerPool {
        pthread_mutex_t lock;
        pthread_cond_t ended;     /* a work item ended (worker_join_all() waits on it) */
        KindThreads kinds[_WORK_KIND_MAX];
        WorkQueue finished;       /* for the loop, in the order they ended */
        unsigned n_running;
        bool exiting;
        int fd;                   /* eventfd: finished has work for the loop */
        sd_event_source *source;
};

static void *worker_thread(void *p) {
        KindThreads *k = p;
        WorkerPool *pool = k->pool;

        pthread_mutex_lock(&pool->lock);
        for (;;) {
                Work *w;

                while (!pool->exiting && !k->queue.head) {
                        k->n_idle++;
                        pthread_cond_wait(&k->wake, &pool->lock);
                        k->n_idle--;
                }
                if (pool->exiting)
                        break;
                w = queue_pop(&k->queue);
                k->n_queued--;
                pool->n_running++;
                pthread_mutex_unlock(&pool->lock);

                w->result = w->work(w->userdata);

                pthread_mutex_lock(&pool->lock);
                pool->n_running--;
                queue_push(&pool->finished, w);
                pthread_cond_broadcast(&pool->ended);
                (void) eventfd_write(pool->fd, 1);
        }
        pthread_mutex_unlock(&pool->lock);
        return NULL;
}

/* The callbacks of the work items taken off the pool, in order. */
static void deliver(WorkerPool *p, WorkQueue *q) {
        Work *w;

        while ((w = queue_pop(q))) {
                pthread_mutex_lock(&p->lock);
                p->kinds[w->kind].n_pending--;
                pthread_mutex_unlock(&p->lock);
                w->done(w->result, w->userdata);
                free(w);
        }
}

static int on_finished(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        WorkerPool *p = userdata;
        WorkQueue q = {};
        eventfd_t n;

        (void) eventfd_read(fd, &n);
        pthread_mutex_lock(&p->lock);
        queue_append(&q, &p->finished);
        pthread_mutex_unlock(&p->lock);
        deliver(p, &q);
        return 0;
}

int worker_pool_new(sd_event *e, WorkerPool **ret) {
        static const unsigned limits[_WORK_KIND_MAX][2] = {
                [WORK_SWITCH] = { WORKER_SWITCH_THREADS, WORKER_SWITCH_PENDING },
                [WORK_SCAN] = { WORKER_SCAN_THREADS, WORKER_SCAN_PENDING },
                [WORK_READ] = { WORKER_READ_THREADS, WORKER_READ_PENDING },
        };
        WorkerPool *p = calloc(1, sizeof *p);
        int r;

        if (!p)
                return -ENOMEM;
        p->fd = -1;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->ended, NULL);
        for (WorkKind k = 0; k < _WORK_KIND_MAX; k++) {
                p->kinds[k] = (KindThreads) {
                        .pool = p,
                        .kind = k,
                        .max_threads = limits[k][0],
                        .max_pending = limits[k][1],
                };
                pthread_cond_init(&p->kinds[k].wake, NULL);
        }
        p->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (p->fd < 0) {
                r = -errno;
                worker_pool_free(p);
                return r;
        }
        r = sd_event_add_io(e, &p->source, p->fd, EPOLLIN, on_finished, p);
        if (r < 0) {
                worker_pool_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

int worker_pool_set_limits(WorkerPool *p, WorkKind kind, unsigned max_threads, unsigned max_pending) {
        if (kind >= _WORK_KIND_MAX || max_threads < 1 || max_threads > WORKER_MAX_THREADS || max_pending < 1)
                return -EINVAL;
        pthread_mutex_lock(&p->lock);
        p->kinds[kind].max_threads = max_threads;
        p->kinds[kind].max_pending = max_pending;
        pthread_mutex_unlock(&p->lock);
        return 0;
}

/* Under the lock.  Signals stay with the loop's thread. */
static int kind_add_thread(KindThreads *k) {
        sigset_t all, old;
        int r;

        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = -pthread_create(&k->threads[k->n_threads], NULL, worker_thread, k);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                return r;
        k->n_threads++;
        return 0;
}

int worker_start(WorkerPool *p, WorkKind kind, WorkFunc work, WorkDoneFunc done, void *userdata) {
        _cleanup_free_ Work *w = NULL;
        KindThreads *k;
        int r = 0;

        if (kind >= _WORK_KIND_MAX)
                return -EINVAL;
        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        *w = (Work) { .work = work, .done = done, .userdata = userdata, .kind = kind };

        pthread_mutex_lock(&p->lock);
        k = &p->kinds[kind];
        if (p->exiting)
                r = -ESHUTDOWN;
        else if (k->n_pending >= k->max_pending)
                r = -EBUSY;
        else if (k->n_queued + 1 > k->n_idle && k->n_threads < k->max_threads) {
                /* Every thread of the kind is busy (or about to take queued
                 * work): one more.  Without one (TasksMax= reached), the work
                 * waits for a thread of the kind to be free, if there is any. */
                r = kind_add_thread(k);
                if (r < 0 && k->n_threads > 0) {
                        log_debug_errno(r, "worker pool: no new thread, the work waits for one of %u",
                                        k->n_threads);
                        r = 0;
                }
        }
        if (r >= 0) {
                queue_push(&k->queue, TAKE_PTR(w));
                k->n_queued++;
                k->n_pending++;
                pthread_cond_signal(&k->wake);
        }
        pthread_mutex_unlock(&p->lock);
        return r;
}

void worker_join_all(WorkerPool *p) {
        WorkQueue owed = {};

        if (!p)
                return;
        pthread_mutex_lock(&p->lock);
        p->exiting = true;
        for (WorkKind k = 0; k < _WORK_KIND_MAX; k++)
                pthread_cond_broadcast(&p->kinds[k].wake);
        while (p->n_running > 0)
                pthread_cond_wait(&p->ended, &p->lock);
        queue_append(&owed, &p->finished);
        for (WorkKind k = 0; k < _WORK_KIND_MAX; k++) {
                for (Work *w = p->kinds[k].queue.head; w; w = w->next)
                        w->result = -ECANCELED;
                queue_append(&owed, &p->kinds[k].queue);
                p->kinds[k].n_queued = 0;
        }
        pthread_mutex_unlock(&p->lock);

        for (WorkKind k = 0; k < _WORK_KIND_MAX; k++) {
                KindThreads *kt = &p->kinds[k];

                for (unsigned i = 0; i < kt->n_threads; i++)
                        pthread_join(kt->threads[i], NULL);
                kt->n_threads = 0;
        }
        deliver(p, &owed);
}

unsigned worker_pool_threads(WorkerPool *p, WorkKind kind) {
        unsigned n;

        pthread_mutex_lock(&p->lock);
        n = kind < _WORK_KIND_MAX ? p->kinds[kind].n_threads : 0;
        pthread_mutex_unlock(&p->lock);
        return n;
}

void worker_pool_free(WorkerPool *p) {
        if (!p)
                return;
        worker_join_all(p);
        sd_event_source_disable_unref(p->source);
        closep(&p->fd);
        for (WorkKind k = 0; k < _WORK_KIND_MAX; k++)
                pthread_cond_destroy(&p->kinds[k].wake);
        pthread_cond_destroy(&p->ended);
        pthread_mutex_destroy(&p->lock);
        free(p);
}
