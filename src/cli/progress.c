/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "progress.h"

#define REDRAW_NSEC (200 * 1000 * 1000L)

static struct {
        pthread_mutex_t lock;
        pthread_t thread;
        bool enabled, running, shown, stop;
        bool started;                   /* the first step was taken: the elapsed time runs */
        bool pending;                   /* a line to show again once the output's line is done */
        bool mid_line;                  /* the output relayed last did not end a line */
        int out_fd, pipe_fd, pipe_fd_w; /* progress_output(): where to, the pipe's ends */
        const char *prog;
        char line[512]; /* the line without the elapsed time */
        struct timespec start;
} p = {.lock = PTHREAD_MUTEX_INITIALIZER, .out_fd = -1, .pipe_fd = -1, .pipe_fd_w = -1};

static double elapsed(void)
{
        struct timespec now;

        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double)(now.tv_sec - p.start.tv_sec) +
               (double)(now.tv_nsec - p.start.tv_nsec) / 1e9;
}

/* Under the lock. */
static void wipe(void)
{
        if (p.shown)
                fputs("\r\033[K", stderr);
        p.shown = false;
}

/* Under the lock: the line again, cut to the terminal's width so that it
 * never wraps (a wrapped line cannot be redrawn in place). */
static void draw(void)
{
        char buf[600];
        size_t width = 80;
        const char *cols = getenv("COLUMNS");
        struct winsize ws;
        int n;

        if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10)
                width = ws.ws_col;
        else if (cols && atoi(cols) > 10)
                width = (size_t)atoi(cols);
        n = snprintf(buf, sizeof(buf), "%s (%.1f s)", p.line, elapsed());
        if (n < 0)
                return;
        if ((size_t)n >= width)
                buf[width - 1] = '\0';
        fprintf(stderr, "\r\033[K%s", buf);
        fflush(stderr);
        p.shown = true;
}

static void log_above(int level, const char *message, void *userdata);

/* Under the lock: what the pipe holds, to out_fd above the line. */
static void relay(void)
{
        char buf[4096];
        ssize_t n;

        while ((n = read(p.pipe_fd, buf, sizeof(buf))) > 0) {
                bool was = p.shown;

                wipe();
                fflush(stderr);
                for (ssize_t off = 0, w; off < n; off += w) {
                        w = write(p.out_fd, buf + off, (size_t)(n - off));
                        if (w <= 0)
                                break;
                }
                p.mid_line = buf[n - 1] != '\n';
                if (was && !p.mid_line)
                        draw();
        }
}

static void *redraw(void *unused)
{
        pthread_mutex_lock(&p.lock);
        while (!p.stop) {
                struct pollfd pfd = {.fd = p.pipe_fd, .events = POLLIN};

                pthread_mutex_unlock(&p.lock);
                (void)poll(&pfd, p.pipe_fd >= 0 ? 1 : 0, (int)(REDRAW_NSEC / 1000000));
                pthread_mutex_lock(&p.lock);
                if (p.pipe_fd >= 0)
                        relay();
                if (!p.stop && p.pending && !p.mid_line)
                        draw();
        }
        if (p.pipe_fd >= 0)
                relay();
        pthread_mutex_unlock(&p.lock);
        return NULL;
}

/* Under the lock: the redraw thread, with every signal blocked (they stay
 * the main thread's, whose waits see EINTR). */
static void start_thread(void)
{
        sigset_t all, old;

        if (p.running)
                return;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        p.stop = false;
        if (pthread_create(&p.thread, NULL, redraw, NULL) == 0) {
                p.running = true;
                log_set_sink(log_above, NULL);
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Log messages while the line is up: above it, then the line again. */
static void log_above(int level, const char *message, void *userdata)
{
        pthread_mutex_lock(&p.lock);
        bool was = p.shown;

        wipe();
        fprintf(stderr, "%s%s: %s\n", p.mid_line ? "\n" : "", p.prog, message);
        p.mid_line = false;
        if (was || p.pending)
                draw();
        pthread_mutex_unlock(&p.lock);
}

/* A child forked while the line is up (the sandbox's processes) must not
 * find the lock held by a thread it does not have, nor draw: it logs as
 * usual. */
static void before_fork(void)
{
        pthread_mutex_lock(&p.lock);
}

static void after_fork_parent(void)
{
        pthread_mutex_unlock(&p.lock);
}

static void after_fork_child(void)
{
        pthread_mutex_unlock(&p.lock);
        p.enabled = p.running = p.shown = false;
        log_set_sink(NULL, NULL);
}

void progress_init(const char *prog, bool json)
{
        const char *term = getenv("TERM");

        p.prog = prog;
        p.enabled = !json && isatty(STDERR_FILENO) && log_get_max_level() >= LOG_NOTICE &&
                    !(term && streq(term, "dumb"));
        if (p.enabled && pthread_atfork(before_fork, after_fork_parent, after_fork_child) != 0)
                p.enabled = false;
}

int progress_output(int fd)
{
        int pfd[2];

        if (!p.enabled || p.pipe_fd >= 0)
                return p.pipe_fd >= 0 ? p.pipe_fd_w : fd;
        if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0)
                return fd;
        /* the writer blocks when the pipe is full, like a terminal would */
        fcntl(pfd[1], F_SETFL, 0);
        pthread_mutex_lock(&p.lock);
        p.out_fd = fd;
        p.pipe_fd = pfd[0];
        p.pipe_fd_w = pfd[1];
        start_thread();
        pthread_mutex_unlock(&p.lock);
        return pfd[1];
}

bool progress_drawn(void)
{
        return p.enabled;
}

void progress_step(const char *stage, unsigned n, unsigned total, const char *detail)
{
        char count[32] = "";

        if (!p.enabled) {
                log_notice("%s%s%s", stage, detail ? " " : "", detail ?: "");
                return;
        }
        if (total > 0)
                snprintf(count, sizeof(count), " [%u/%u]", n, total);
        pthread_mutex_lock(&p.lock);
        start_thread();
        if (!p.started) {
                clock_gettime(CLOCK_MONOTONIC, &p.start);
                p.started = true;
        }
        snprintf(p.line, sizeof(p.line), "%s: %s%s%s%s", p.prog, stage, count, detail ? " " : "",
                 detail ?: "");
        p.pending = true;
        if (!p.mid_line)
                draw();
        pthread_mutex_unlock(&p.lock);
}

/* The line off until the next step; with stop, the redraws end too. */
static void hide(bool stop)
{
        pthread_mutex_lock(&p.lock);
        p.pending = false;
        wipe();
        fflush(stderr);
        p.stop = p.stop || stop;
        pthread_mutex_unlock(&p.lock);
}

void progress_hide(void)
{
        if (p.enabled)
                hide(false);
}

void progress_end(void)
{
        if (!p.enabled)
                return;
        hide(true);
        if (p.running) {
                pthread_join(p.thread, NULL);
                p.running = false;
                log_set_sink(NULL, NULL);
        }
        if (p.pipe_fd_w >= 0)
                close(p.pipe_fd_w);
        if (p.pipe_fd >= 0)
                close(p.pipe_fd);
        p.pipe_fd = p.pipe_fd_w = -1;
}
