/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "macro.h"
#include "pool.h"

struct running {
        pid_t pid;
        int fd; /* read end of the job's result pipe */
        size_t job;
};

/* For the signal handler: the jobs running now. */
static struct running *volatile pool_running;
static volatile size_t pool_n;

static void forward(int sig)
{
        int saved = errno;
        for (size_t i = 0; i < pool_n; i++)
                if (pool_running[i].pid > 0)
                        kill(pool_running[i].pid, sig);
        errno = saved;
}

_noreturn_ static void job_main(const struct worker_pool_options *o, size_t job, int fd)
{
        struct worker_options w = *o->worker;
        struct worker_job_result res = {.job = job, .slot = -1};
        struct worker_result wr;
        _cleanup_free_ char *error = NULL;
        int r;

        w.slot = -1;
        w.argv = o->jobs[job];
        r = worker_run(&w, &wr, &error);
        res.slot = wr.slot;
        res.usec = wr.usec;
        res.detached = wr.teardown.detached;
        if (r < 0) {
                res.error = r;
                res.status = worker_status_of_error(r, wr.status == WORKER_EXIT_EXEC);
                snprintf(res.message, sizeof(res.message), "%s", error ? error : "");
        } else {
                res.status = wr.status;
        }
        (void)!write(fd, &res, sizeof(res));
        _exit(0);
}

int worker_pool_run(const struct worker_pool_options *o, struct worker_job_result *results)
{
        static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
        struct sigaction sa = {.sa_handler = forward}, old[ELEMENTSOF(sigs)];
        _cleanup_free_ struct running *run = NULL;
        size_t next = 0, n_run = 0;
        unsigned workers = o->workers ? o->workers : 1;
        int r = 0, failed = 0;

        run = calloc(workers, sizeof(*run));
        if (!run)
                return -ENOMEM;
        for (size_t i = 0; i < o->n_jobs; i++)
                results[i] = (struct worker_job_result){.job = i, .slot = -1, .status = -1};
        pool_running = run;
        pool_n = workers;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                sigaction(sigs[i], &sa, &old[i]);

        while (next < o->n_jobs || n_run > 0) {
                /* Start jobs while there is room. */
                while (r >= 0 && next < o->n_jobs && n_run < workers) {
                        int p[2];
                        size_t k;
                        pid_t pid;

                        if (pipe2(p, O_CLOEXEC) < 0) {
                                r = -errno;
                                break;
                        }
                        fflush(NULL);
                        pid = fork();
                        if (pid < 0) {
                                r = -errno;
                                close(p[0]);
                                close(p[1]);
                                break;
                        }
                        if (pid == 0) {
                                close(p[0]);
                                for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                                        sigaction(sigs[i], &old[i], NULL);
                                job_main(o, next, p[1]);
                        }
                        close(p[1]);
                        for (k = 0; run[k].pid > 0; k++)
                                ;
                        run[k] = (struct running){.pid = pid, .fd = p[0], .job = next};
                        n_run++;
                        next++;
                }
                if (n_run == 0)
                        break;

                int st;
                pid_t pid = waitpid(-1, &st, 0);
                if (pid < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                for (size_t k = 0; k < workers; k++) {
                        struct worker_job_result res;
                        if (run[k].pid != pid)
                                continue;
                        if (read(run[k].fd, &res, sizeof(res)) == (ssize_t)sizeof(res)) {
                                results[run[k].job] = res;
                        } else {
                                /* The job's process died before it could say. */
                                results[run[k].job].status =
                                    WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WORKER_EXIT_SETUP;
                                results[run[k].job].error = -EIO;
                                snprintf(results[run[k].job].message,
                                         sizeof(results[run[k].job].message),
                                         "run the job (its process ended without a result)");
                        }
                        close(run[k].fd);
                        if (results[run[k].job].status != 0)
                                failed++;
                        if (o->done)
                                o->done(&results[run[k].job], o->userdata);
                        run[k].pid = 0;
                        n_run--;
                        break;
                }
        }
        /* On a pool error: the jobs already running are waited for. */
        while (n_run > 0) {
                pid_t pid = waitpid(-1, NULL, 0);
                if (pid < 0 && errno != EINTR)
                        break;
                for (size_t k = 0; pid > 0 && k < workers; k++)
                        if (run[k].pid == pid) {
                                close(run[k].fd);
                                run[k].pid = 0;
                                n_run--;
                        }
        }
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                sigaction(sigs[i], &old[i], NULL);
        pool_n = 0;
        pool_running = NULL;
        return r < 0 ? r : failed;
}
