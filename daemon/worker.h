/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

/* Work that may take long (kernel writes that wait for a driver's
 * remove(), holder scans over every process) runs on a thread of its own;
 * its completion is delivered on the event loop through an eventfd, so the
 * bus keeps being answered meanwhile. */
typedef struct Worker Worker;

typedef int (*WorkFunc)(void *userdata);                   /* on the thread */
typedef void (*WorkDoneFunc)(int result, void *userdata);  /* on the loop, after the thread ended */

/* Starts work(userdata) on a thread; done(result, userdata) follows on e.
 * The list links the workers that have not finished, so the owner can
 * wait for them all at exit. */
int worker_start(sd_event *e, Worker **list, WorkFunc work, WorkDoneFunc done, void *userdata);

/* Waits for every unfinished worker of the list (done is not called). */
void worker_join_all(Worker **list);
