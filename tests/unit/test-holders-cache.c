/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A GPU's holder scans (daemon/holders-cache.c) on the worker pool, with a
 * stand-in scan: callers that arrive during a scan share it; a result is
 * handed out again within its age, not after it, not after an
 * invalidation, not for another key; another key waits for a scan of its
 * own after the running one; a failure is not kept; a cancelled caller
 * hears nothing; two GPUs scan each on their own; the pool's bound comes
 * back as -EBUSY; freeing tells the callers still waiting. */
#include <unistd.h>

#include <systemd/sd-event.h>

#include "holders-stub.h"
#include "testlib.h"
#include "util.h"
#include "worker.h"

static sd_event *event;

typedef struct Got {
        int calls;
        int result;
        size_t n;
        pid_t first;
} Got;

static void on_ready(int result, const Holder *h, size_t n, void *userdata) {
        Got *g = userdata;

        g->calls++;
        g->result = result;
        g->n = n;
        g->first = n > 0 ? h[0].pid : 0;
}

/* runs the loop until every got has calls, or ms */
static void spin_until_got(Got *got, size_t n, unsigned ms) {
        for (unsigned i = 0; i < ms / 10; i++) {
                bool all = true;

                for (size_t k = 0; k < n; k++)
                        all = all && got[k].calls > 0;
                if (all)
                        return;
                (void) sd_event_run(event, 10 * 1000);
        }
}

static void spin_until_running(StubScan *s, unsigned want, unsigned ms) {
        for (unsigned i = 0; i < ms / 10 && stub_running(s) < want; i++)
                (void) sd_event_run(event, 10 * 1000);
}

int main(void) {
        static const Holder rows[] = {
                { .pid = 100, .uid = 0, .comm = "Xorg", .node = "card0" },
                { .pid = 101, .uid = 65534, .comm = "cuda", .node = "renderD128" },
        };
        WorkerPool *pool = NULL;
        HoldersCache *c = NULL;
        StubScan s;
        Got got[10] = {}, one = {}, a = {}, b = {};

        CHECK_INT(sd_event_new(&event), 0);
        CHECK_INT(worker_pool_new(event, &pool), 0);
        stub_init(&s, rows, ELEMENTSOF(rows));
        CHECK_INT(holders_cache_new(pool, &stub_ops, &s, 300 * 1000, &c), 0);

        /* ten callers while a scan runs: one scan, ten answers */
        stub_gate(&s, false);
        for (size_t i = 0; i < ELEMENTSOF(got); i++)
                CHECK_INT(holders_cache_get(c, 1, on_ready, &got[i]), 0);
        spin_until_running(&s, 1, 1000);
        CHECK_INT(stub_running(&s), 1);
        CHECK_INT(got[0].calls, 0);
        stub_gate(&s, true);
        spin_until_got(got, ELEMENTSOF(got), 2000);
        for (size_t i = 0; i < ELEMENTSOF(got); i++) {
                CHECK_INT(got[i].calls, 1);
                CHECK_INT(got[i].result, 0);
                CHECK_INT(got[i].n, 2);
                CHECK_INT(got[i].first, 100);
        }
        CHECK_INT(stub_runs(&s), 1);
        CHECK_INT(holders_cache_scans(c), 1);

        /* within its age: at once, no scan */
        CHECK_INT(holders_cache_get(c, 1, on_ready, &one), 1);
        CHECK_INT(one.calls, 1);
        CHECK_INT(one.n, 2);
        CHECK_INT(stub_runs(&s), 1);

        /* after it: a new scan */
        usleep(350 * 1000);
        one = (Got) {};
        CHECK_INT(holders_cache_get(c, 1, on_ready, &one), 0);
        spin_until_got(&one, 1, 2000);
        CHECK_INT(one.calls, 1);
        CHECK_INT(stub_runs(&s), 2);

        /* invalidated: a new scan */
        one = (Got) {};
        CHECK_INT(holders_cache_get(c, 1, on_ready, &one), 1);
        holders_cache_invalidate(c);
        one = (Got) {};
        CHECK_INT(holders_cache_get(c, 1, on_ready, &one), 0);
        spin_until_got(&one, 1, 2000);
        CHECK_INT(stub_runs(&s), 3);

        /* another key (the GPU read again): a new scan */
        one = (Got) {};
        CHECK_INT(holders_cache_get(c, 2, on_ready, &one), 0);
        spin_until_got(&one, 1, 2000);
        CHECK_INT(one.result, 0);
        CHECK_INT(stub_runs(&s), 4);

        /* a key that comes during a scan of another waits for a scan of
         * its own, after: one at a time */
        stub_gate(&s, false);
        holders_cache_invalidate(c);
        CHECK_INT(holders_cache_get(c, 2, on_ready, &a), 0);
        CHECK_INT(holders_cache_get(c, 3, on_ready, &b), 0);
        spin_until_running(&s, 1, 1000);
        for (int i = 0; i < 20; i++)
                (void) sd_event_run(event, 10 * 1000);
        CHECK_INT(stub_running(&s), 1);
        CHECK_INT(stub_runs(&s), 5);
        stub_gate(&s, true);
        spin_until_got(&a, 1, 2000);
        spin_until_got(&b, 1, 2000);
        CHECK_INT(a.calls, 1);
        CHECK_INT(b.calls, 1);
        CHECK_INT(b.result, 0);
        CHECK_INT(stub_runs(&s), 6);
        /* and its result is the one kept */
        one = (Got) {};
        CHECK_INT(holders_cache_get(c, 3, on_ready, &one), 1);

        /* a cancelled caller hears nothing; the other does */
        stub_gate(&s, false);
        holders_cache_invalidate(c);
        a = b = (Got) {};
        CHECK_INT(holders_cache_get(c, 3, on_ready, &a), 0);
        CHECK_INT(holders_cache_get(c, 3, on_ready, &b), 0);
        holders_cache_cancel(c, on_ready, &b);
        stub_gate(&s, true);
        spin_until_got(&a, 1, 2000);
        for (int i = 0; i < 10; i++)
                (void) sd_event_run(event, 10 * 1000);
        CHECK_INT(a.calls, 1);
        CHECK_INT(b.calls, 0);

        /* a failed scan is told, and not kept */
        holders_cache_invalidate(c);
        s.result = -EIO;
        one = (Got) {};
        CHECK_INT(holders_cache_get(c, 3, on_ready, &one), 0);
        spin_until_got(&one, 1, 2000);
        CHECK_INT(one.result, -EIO);
        s.result = 0;
        one = (Got) {};
        CHECK_INT(holders_cache_get(c, 3, on_ready, &one), 0);
        spin_until_got(&one, 1, 2000);
        CHECK_INT(one.result, 0);
        CHECK_INT(one.n, 2);

        /* freed with a caller waiting: it is told; the scan, back later,
         * finds no cache */
        stub_gate(&s, false);
        holders_cache_invalidate(c);
        one = (Got) {};
        CHECK_INT(holders_cache_get(c, 3, on_ready, &one), 0);
        spin_until_running(&s, 1, 1000);
        holders_cache_free(c);
        CHECK_INT(one.calls, 1);
        CHECK_INT(one.result, -ECANCELED);
        stub_gate(&s, true);
        for (int i = 0; i < 20; i++)
                (void) sd_event_run(event, 10 * 1000);
        worker_pool_free(pool);

        /* two GPUs: a scan each at the same time; the pool's bound is -EBUSY */
        {
                StubScan s1, s2;
                HoldersCache *c1 = NULL, *c2 = NULL, *c3 = NULL;
                Got g1 = {}, g2 = {};

                CHECK_INT(worker_pool_new(event, &pool), 0);
                CHECK_INT(worker_pool_set_limits(pool, WORK_SCAN, 2, 2), 0);
                stub_init(&s1, rows, 1);
                stub_init(&s2, rows, 2);
                stub_gate(&s1, false);
                stub_gate(&s2, false);
                CHECK_INT(holders_cache_new(pool, &stub_ops, &s1, HOLDERS_CACHE_MAX_AGE_USEC, &c1), 0);
                CHECK_INT(holders_cache_new(pool, &stub_ops, &s2, HOLDERS_CACHE_MAX_AGE_USEC, &c2), 0);
                CHECK_INT(holders_cache_new(pool, &stub_ops, &s2, HOLDERS_CACHE_MAX_AGE_USEC, &c3), 0);
                CHECK_INT(holders_cache_get(c1, 1, on_ready, &g1), 0);
                CHECK_INT(holders_cache_get(c2, 1, on_ready, &g2), 0);
                CHECK_INT(holders_cache_get(c3, 1, on_ready, &one), -EBUSY);
                spin_until_running(&s1, 1, 1000);
                spin_until_running(&s2, 1, 1000);
                CHECK_INT(stub_running(&s1), 1);
                CHECK_INT(stub_running(&s2), 1);
                stub_gate(&s1, true);
                stub_gate(&s2, true);
                spin_until_got(&g1, 1, 2000);
                spin_until_got(&g2, 1, 2000);
                CHECK_INT(g1.n, 1);
                CHECK_INT(g2.n, 2);
                worker_join_all(pool);
                holders_cache_free(c1);
                holders_cache_free(c2);
                holders_cache_free(c3);
                worker_pool_free(pool);
        }

        sd_event_unref(event);
        TEST_MAIN_END();
}
