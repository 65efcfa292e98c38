/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The worker pool (daemon/worker.c): completions on the loop in the order
 * the work ended, a blocked item not holding up the others of its kind or
 * of another, threads kept from one item to the next, the pending bound,
 * and worker_join_all() at exit: the work under way waited for, the work
 * not started never run and told -ECANCELED. */
#include <pthread.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "util.h"
#include "worker.h"

/* A gate a work item waits at until the test opens it. */
typedef struct Gate {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool open, entered;
} Gate;

static void gate_init(Gate *g) {
        *g = (Gate) {};
        pthread_mutex_init(&g->lock, NULL);
        pthread_cond_init(&g->cond, NULL);
}

static void gate_open(Gate *g) {
        pthread_mutex_lock(&g->lock);
        g->open = true;
        pthread_cond_broadcast(&g->cond);
        pthread_mutex_unlock(&g->lock);
}

static bool gate_entered(Gate *g) {
        bool e;

        pthread_mutex_lock(&g->lock);
        e = g->entered;
        pthread_mutex_unlock(&g->lock);
        return e;
}

typedef struct Item {
        const char *name;
        Gate *gate;               /* NULL: returns at once */
        int result;
        unsigned delay_ms;        /* after the gate, before returning */
        bool ran, ended, delivered, delivered_on_loop;
        int delivered_result;
        char *order;              /* the names in delivery order, appended to */
} Item;

static pthread_t loop_thread;

static int item_work(void *userdata) {
        Item *it = userdata;

        it->ran = true;
        if (it->gate) {
                pthread_mutex_lock(&it->gate->lock);
                it->gate->entered = true;
                pthread_cond_broadcast(&it->gate->cond);
                while (!it->gate->open)
                        pthread_cond_wait(&it->gate->cond, &it->gate->lock);
                pthread_mutex_unlock(&it->gate->lock);
        }
        if (it->delay_ms)
                usleep(it->delay_ms * 1000);
        it->ended = true;
        return it->result;
}

static void item_done(int result, void *userdata) {
        Item *it = userdata;

        it->delivered = true;
        it->delivered_result = result;
        it->delivered_on_loop = pthread_equal(pthread_self(), loop_thread);
        if (it->order) {
                strcat(it->order, it->name);
                strcat(it->order, " ");
        }
}

/* Runs the loop until cond(data) or about 5 s. */
static bool run_until(sd_event *e, bool (*cond)(void *), void *data) {
        for (int i = 0; i < 500 && !cond(data); i++)
                (void) sd_event_run(e, 10 * 1000);
        return cond(data);
}

static bool delivered(void *p) { return ((Item *) p)->delivered; }
static bool entered(void *p) { return gate_entered(p); }

static void test_order(sd_event *e) {
        _cleanup_(worker_pool_freep) WorkerPool *p = NULL;
        char order[128] = "";
        Item items[3] = {
                { .name = "a", .result = 1, .order = order },
                { .name = "b", .result = -EIO, .order = order },
                { .name = "c", .result = 3, .order = order },
        };

        /* One thread: the items run and end in the order they came. */
        CHECK_INT(worker_pool_new(e, &p), 0);
        CHECK_INT(worker_pool_set_limits(p, WORK_SCAN, 1, 8), 0);
        for (int i = 0; i < 3; i++)
                CHECK_INT(worker_start(p, WORK_SCAN, item_work, item_done, &items[i]), 0);
        CHECK(!items[0].delivered);   /* never before the loop runs */
        CHECK(run_until(e, delivered, &items[2]));
        CHECK_STR(order, "a b c ");
        CHECK_INT(items[0].delivered_result, 1);
        CHECK_INT(items[1].delivered_result, -EIO);
        CHECK_INT(items[2].delivered_result, 3);
        for (int i = 0; i < 3; i++)
                CHECK(items[i].delivered_on_loop && items[i].ended);
        /* the one thread, kept */
        CHECK_INT(worker_pool_threads(p, WORK_SCAN), 1);
        CHECK_INT(worker_pool_threads(p, WORK_SWITCH), 0);
}

/* On two threads, the completions come in the order the work ended, not
 * the order it was queued. */
static void test_order_of_ending(sd_event *e) {
        _cleanup_(worker_pool_freep) WorkerPool *p = NULL;
        char order[128] = "";
        Gate first;
        Item slow = { .name = "slow", .order = order }, quick = { .name = "quick", .order = order };

        gate_init(&first);
        slow.gate = &first;
        CHECK_INT(worker_pool_new(e, &p), 0);
        CHECK_INT(worker_start(p, WORK_SWITCH, item_work, item_done, &slow), 0);
        CHECK(run_until(e, entered, &first));
        CHECK_INT(worker_start(p, WORK_SWITCH, item_work, item_done, &quick), 0);
        CHECK(run_until(e, delivered, &quick));
        CHECK(!slow.delivered);
        gate_open(&first);
        CHECK(run_until(e, delivered, &slow));
        CHECK_STR(order, "quick slow ");
        CHECK_INT(worker_pool_threads(p, WORK_SWITCH), 2);
}

/* A switch blocked in the kernel (here, at a gate) holds its thread only:
 * a holder scan and another GPU's switch run and are delivered meanwhile. */
static void test_blocked_does_not_block(sd_event *e) {
        _cleanup_(worker_pool_freep) WorkerPool *p = NULL;
        Gate stuck;
        Item blocked = { .name = "blocked" }, scan = { .name = "scan", .result = 7 },
             other = { .name = "other-gpu", .result = 9 };

        gate_init(&stuck);
        blocked.gate = &stuck;
        CHECK_INT(worker_pool_new(e, &p), 0);
        CHECK_INT(worker_start(p, WORK_SWITCH, item_work, item_done, &blocked), 0);
        CHECK(run_until(e, entered, &stuck));
        CHECK_INT(worker_start(p, WORK_SCAN, item_work, item_done, &scan), 0);
        CHECK_INT(worker_start(p, WORK_SWITCH, item_work, item_done, &other), 0);
        CHECK(run_until(e, delivered, &scan));
        CHECK(run_until(e, delivered, &other));
        CHECK_INT(scan.delivered_result, 7);
        CHECK_INT(other.delivered_result, 9);
        CHECK(!blocked.ended && !blocked.delivered);
        gate_open(&stuck);
        CHECK(run_until(e, delivered, &blocked));
}

/* Past max_pending, work is refused; once delivered, taken again. */
static void test_pending_bound(sd_event *e) {
        _cleanup_(worker_pool_freep) WorkerPool *p = NULL;
        Gate hold;
        Item first = { .name = "first" }, second = { .name = "second" }, third = { .name = "third" },
             later = { .name = "later" };

        gate_init(&hold);
        first.gate = &hold;
        CHECK_INT(worker_pool_new(e, &p), 0);
        CHECK_INT(worker_pool_set_limits(p, WORK_SCAN, 1, 2), 0);
        CHECK_INT(worker_pool_set_limits(p, WORK_SCAN, 0, 2), -EINVAL);
        CHECK_INT(worker_start(p, WORK_SCAN, item_work, item_done, &first), 0);
        CHECK_INT(worker_start(p, WORK_SCAN, item_work, item_done, &second), 0);   /* queued */
        CHECK_INT(worker_start(p, WORK_SCAN, item_work, item_done, &third), -EBUSY);
        CHECK(!third.ran);
        /* the bound is the kind's: a switch is still taken */
        CHECK_INT(worker_start(p, WORK_SWITCH, item_work, item_done, &later), 0);
        CHECK(run_until(e, delivered, &later));
        gate_open(&hold);
        CHECK(run_until(e, delivered, &second));
        CHECK_INT(worker_start(p, WORK_SCAN, item_work, item_done, &third), 0);
        CHECK(run_until(e, delivered, &third));
        CHECK_INT(worker_pool_threads(p, WORK_SCAN), 1);
}

static void *open_later(void *p) {
        usleep(200 * 1000);
        gate_open(p);
        return NULL;
}

/* At exit the work under way is waited for and delivered with its result;
 * the work still queued never runs and is told -ECANCELED; nothing more is
 * taken. */
static void test_join_at_exit(sd_event *e) {
        _cleanup_(worker_pool_freep) WorkerPool *p = NULL;
        Gate writing;
        pthread_t opener;
        Item running = { .name = "running", .result = 5 }, queued = { .name = "queued", .result = 6 },
             after = { .name = "after" };

        gate_init(&writing);
        running.gate = &writing;
        CHECK_INT(worker_pool_new(e, &p), 0);
        CHECK_INT(worker_pool_set_limits(p, WORK_SWITCH, 1, 4), 0);
        CHECK_INT(worker_start(p, WORK_SWITCH, item_work, item_done, &running), 0);
        CHECK_INT(worker_start(p, WORK_SWITCH, item_work, item_done, &queued), 0);
        CHECK(run_until(e, entered, &writing));
        CHECK_INT(pthread_create(&opener, NULL, open_later, &writing), 0);

        worker_join_all(p);
        CHECK(running.ended);
        CHECK(running.delivered && running.delivered_on_loop);
        CHECK_INT(running.delivered_result, 5);
        CHECK(!queued.ran);
        CHECK(queued.delivered);
        CHECK_INT(queued.delivered_result, -ECANCELED);
        CHECK_INT(worker_pool_threads(p, WORK_SWITCH), 0);
        CHECK_INT(worker_start(p, WORK_SWITCH, item_work, item_done, &after), -ESHUTDOWN);
        pthread_join(opener, NULL);

        /* joined twice (manager_free(), then worker_pool_free()): nothing more */
        worker_join_all(p);
        CHECK(!after.ran && !after.delivered);
}

int main(void) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;

        loop_thread = pthread_self();
        CHECK_INT(sd_event_new(&e), 0);
        test_order(e);
        test_order_of_ending(e);
        test_blocked_does_not_block(e);
        test_pending_bound(e);
        test_join_at_exit(e);
        TEST_MAIN_END();
}
