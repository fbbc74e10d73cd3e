/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A pool: N workers at once over a list of jobs (each an argv). Each job
 * runs in a process of its own (forked from the caller) that takes the
 * lowest free slot and calls worker_run; the next job starts as soon as
 * one ends. SIGTERM, SIGINT and SIGHUP sent to the caller while the pool
 * runs are passed on to every running job (whose worker passes them on to
 * its command).
 */

#include <stddef.h>
#include <stdint.h>

#include "worker.h"

struct worker_job_result {
        size_t job; /* index in the job list */
        int slot;
        int status;        /* the job's exit status (CMD's, or a WORKER_EXIT_*, 75) */
        int error;         /* 0, or the -errno of worker_run */
        char message[512]; /* worker_run's error, when error */
        unsigned detached; /* mounts that had to be detached at teardown */
        uint64_t usec;
};

struct worker_pool_options {
        /* root, plan_file, binds, timeout_usec and the fds are used; slot
         * and argv are not. */
        const struct worker_options *worker;
        unsigned workers; /* at most this many jobs at once (>= 1) */
        char **const *jobs;
        size_t n_jobs;
        /* Called in the caller as each job ends. May be NULL. */
        void (*done)(const struct worker_job_result *r, void *userdata);
        void *userdata;
};

/* Runs every job; results (n_jobs entries, by job index) are filled in.
 * Returns the number of jobs whose status was not 0, or -errno when the
 * pool itself failed (jobs already started are waited for). */
int worker_pool_run(const struct worker_pool_options *o, struct worker_job_result *results);
