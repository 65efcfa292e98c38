/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "holders-cache.h"

#include <stdlib.h>
#include <time.h>

#include "util.h"

typedef struct Waiter Waiter;
struct Waiter {
        Waiter *next;
        uint64_t key;
        HoldersReadyFunc ready;
        void *userdata;
};

typedef struct WaiterList {
        Waiter *head, *tail;
} WaiterList;

/* A scan on its way through the pool: the cache may be gone when it
 * comes back (then cache is NULL). */
typedef struct Scan {
        HoldersCache *cache;      /* read and written on the loop only */
        HoldersCacheOps ops;
        void *input;
        uint64_t key;
        Holder *holders;
        size_t n;
} Scan;

struct HoldersCache {
        WorkerPool *pool;
        HoldersCacheOps ops;
        void *userdata;
        uint64_t max_age_usec;

        /* the last result, for callers of its key until made_usec + max_age */
        Holder *holders;
        size_t n;
        uint64_t key;
        uint64_t made_usec;
        bool valid;

        Scan *running;
        WaiterList waiting;       /* for the scan under way (its key) */
        WaiterList later;         /* other keys: a scan of their own after it */
        unsigned n_scans;
};

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

static void list_push(WaiterList *l, Waiter *w) {
        w->next = NULL;
        if (l->tail)
                l->tail->next = w;
        else
                l->head = w;
        l->tail = w;
}

static WaiterList list_take(WaiterList *l) {
        WaiterList t = *l;

        *l = (WaiterList) {};
        return t;
}

int holders_cache_new(WorkerPool *pool, const HoldersCacheOps *ops, void *userdata, uint64_t max_age_usec,
                      HoldersCache **ret) {
        HoldersCache *c = calloc(1, sizeof *c);

        if (!c)
                return -ENOMEM;
        *c = (HoldersCache) { .pool = pool, .ops = *ops, .userdata = userdata, .max_age_usec = max_age_usec };
        *ret = c;
        return 0;
}

static void scan_free(Scan *s) {
        if (s->input)
                s->ops.input_free(s->input);
        holders_free(s->holders, s->n);
        free(s);
}

static void deliver(WaiterList *l, int result, const Holder *h, size_t n) {
        Waiter *w;

        while ((w = l->head)) {
                l->head = w->next;
                w->ready(result, h, n, w->userdata);
                free(w);
        }
        l->tail = NULL;
}

void holders_cache_free(HoldersCache *c) {
        if (!c)
                return;
        /* the pool delivers it later (the daemon frees us after
         * worker_join_all(), tests may not): it must not find us */
        if (c->running)
                c->running->cache = NULL;
        deliver(&c->waiting, -ECANCELED, NULL, 0);
        deliver(&c->later, -ECANCELED, NULL, 0);
        holders_free(c->holders, c->n);
        free(c);
}

static int scan_work(void *userdata) {
        Scan *s = userdata;

        return s->ops.scan(s->input, &s->holders, &s->n);
}

static void scan_done(int result, void *userdata);

static int scan_start(HoldersCache *c, uint64_t key) {
        Scan *s = calloc(1, sizeof *s);
        int r;

        if (!s)
                return -ENOMEM;
        s->cache = c;
        s->ops = c->ops;
        s->key = key;
        r = c->ops.prepare(c->userdata, &s->input);
        if (r >= 0)
                r = worker_start(c->pool, WORK_SCAN, scan_work, scan_done, s);
        if (r < 0) {
                scan_free(s);
                return r;
        }
        c->running = s;
        c->n_scans++;
        return 0;
}

/* w gets the result for its key: now, from the scan under way, or from
 * one started for it. */
static int request(HoldersCache *c, Waiter *w) {
        int r;

        if (c->valid && c->key == w->key && now_usec() - c->made_usec < c->max_age_usec) {
                w->ready(0, c->holders, c->n, w->userdata);
                free(w);
                return 1;
        }
        if (c->running) {
                list_push(c->running->key == w->key ? &c->waiting : &c->later, w);
                return 0;
        }
        r = scan_start(c, w->key);
        if (r < 0)
                return r;
        list_push(&c->waiting, w);
        return 0;
}

static void scan_done(int result, void *userdata) {
        Scan *s = userdata;
        HoldersCache *c = s->cache;
        WaiterList waiting, later;
        Waiter *w;

        if (!c) {
                scan_free(s);
                return;
        }
        c->running = NULL;
        c->valid = false;
        if (result >= 0) {
                holders_free(c->holders, c->n);
                c->holders = TAKE_PTR(s->holders);
                c->n = s->n;
                s->n = 0;
                c->key = s->key;
                c->made_usec = now_usec();
                c->valid = true;
                if (c->ops.scanned)
                        c->ops.scanned(c->userdata, c->holders, c->n);
        }
        scan_free(s);

        /* a caller's ready may ask again (and start the next scan) */
        waiting = list_take(&c->waiting);
        later = list_take(&c->later);
        if (result >= 0) {
                /* c->holders stays: only a scan's end replaces it */
                deliver(&waiting, 0, c->holders, c->n);
        } else
                deliver(&waiting, result, NULL, 0);

        while ((w = later.head)) {
                int r;

                later.head = w->next;
                r = request(c, w);
                if (r < 0) {
                        w->ready(r, NULL, 0, w->userdata);
                        free(w);
                }
        }
}

int holders_cache_get(HoldersCache *c, uint64_t key, HoldersReadyFunc ready, void *userdata) {
        Waiter *w = calloc(1, sizeof *w);
        int r;

        if (!w)
                return -ENOMEM;
        *w = (Waiter) { .key = key, .ready = ready, .userdata = userdata };
        r = request(c, w);
        if (r < 0)
                free(w);
        return r;
}

static void list_cancel(WaiterList *l, HoldersReadyFunc ready, void *userdata) {
        Waiter *prev = NULL;

        for (Waiter *w = l->head; w; prev = w, w = w->next) {
                if (w->ready != ready || w->userdata != userdata)
                        continue;
                if (prev)
                        prev->next = w->next;
                else
                        l->head = w->next;
                if (l->tail == w)
                        l->tail = prev;
                free(w);
                return;
        }
}

void holders_cache_cancel(HoldersCache *c, HoldersReadyFunc ready, void *userdata) {
        list_cancel(&c->waiting, ready, userdata);
        list_cancel(&c->later, ready, userdata);
}

void holders_cache_invalidate(HoldersCache *c) {
        c->valid = false;
}

unsigned holders_cache_scans(const HoldersCache *c) {
        return c->n_scans;
}
