/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A stand-in scan for HoldersCache (daemon/holders-cache.h): it returns
 * the rows the test sets, counts its runs, and waits at a gate the test
 * opens, so that callers can be made to arrive while it runs. */
#pragma once

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "holders-cache.h"

typedef struct StubScan {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool open;                /* the gate: scans return only once it is */
        unsigned running;         /* scans at the gate */
        unsigned runs;            /* scans that ran, ever */
        int result;               /* < 0: the scans fail */
        const Holder *rows;
        size_t n_rows;
} StubScan;

static inline void stub_init(StubScan *s, const Holder *rows, size_t n) {
        *s = (StubScan) { .open = true, .rows = rows, .n_rows = n };
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
}

static inline void stub_gate(StubScan *s, bool open) {
        pthread_mutex_lock(&s->lock);
        s->open = open;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
}

static inline unsigned stub_running(StubScan *s) {
        unsigned n;

        pthread_mutex_lock(&s->lock);
        n = s->running;
        pthread_mutex_unlock(&s->lock);
        return n;
}

static inline unsigned stub_runs(StubScan *s) {
        unsigned n;

        pthread_mutex_lock(&s->lock);
        n = s->runs;
        pthread_mutex_unlock(&s->lock);
        return n;
}

static inline int stub_prepare(void *userdata, void **ret_input) {
        *ret_input = userdata;
        return 0;
}

static inline void stub_input_free(void *input) {
}

static inline int stub_scan(void *input, Holder **ret, size_t *ret_n) {
        StubScan *s = input;
        Holder *h;
        int result;

        pthread_mutex_lock(&s->lock);
        s->runs++;
        s->running++;
        while (!s->open)
                pthread_cond_wait(&s->cond, &s->lock);
        s->running--;
        result = s->result;
        pthread_mutex_unlock(&s->lock);
        if (result < 0)
                return result;
        h = calloc(s->n_rows ?: 1, sizeof *h);
        if (!h)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_rows; i++) {
                h[i] = s->rows[i];
                h[i].pidfd = -1;
        }
        *ret = h;
        *ret_n = s->n_rows;
        return 0;
}

static const HoldersCacheOps stub_ops = {
        .prepare = stub_prepare,
        .scan = stub_scan,
        .input_free = stub_input_free,
};
