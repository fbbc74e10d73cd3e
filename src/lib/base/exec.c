/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "exec.h"
#include "log.h"
#include "macro.h"

extern char **environ;

void exec_result_done(struct exec_result *r)
{
        if (!r)
                return;
        free(r->out);
        free(r->err);
        *r = (struct exec_result){};
}

struct buffer {
        char *data;
        size_t len, cap, max;
        bool truncated;
};

static int buffer_append(struct buffer *b, const char *p, size_t n)
{
        if (b->len + n > b->max) {
                b->truncated = true;
                n = b->max > b->len ? b->max - b->len : 0;
        }
        if (b->len + n + 1 > b->cap) {
                size_t cap = MAX(b->cap * 2, b->len + n + 1);
                char *d = realloc(b->data, MAX(cap, (size_t)4096));

                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->cap = MAX(cap, (size_t)4096);
        }
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

static int buffer_finish(struct buffer *b, char **ret, size_t *ret_len)
{
        if (!b->data) {
                b->data = strdup("");
                if (!b->data)
                        return -ENOMEM;
        }
        *ret_len = b->len;
        *ret = TAKE_PTR(b->data);
        return 0;
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int pidfd_open_(pid_t pid)
{
#ifdef SYS_pidfd_open
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (fd >= 0)
                (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        return fd;
#else
        errno = ENOSYS;
        return -1;
#endif
}

/* Moves fd above 2 (so dup2() onto 0..2 in the child never clobbers
 * another pipe end), close-on-exec and optionally non-blocking. */
static int fd_prepare(int fd, bool nonblock)
{
        if (fd <= 2) {
                int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                if (n < 0)
                        return negative_errno();
                close(fd);
                fd = n;
        }
        if (nonblock && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
                return negative_errno();
        return fd;
}

static int pipe_prepared(int p[2], bool nonblock_read, bool nonblock_write)
{
        int r;

        if (pipe2(p, O_CLOEXEC) < 0)
                return negative_errno();
        r = fd_prepare(p[0], nonblock_read);
        if (r < 0)
                goto fail;
        p[0] = r;
        r = fd_prepare(p[1], nonblock_write);
        if (r < 0)
                goto fail;
        p[1] = r;
        return 0;
fail:
        safe_close(p[0]);
        safe_close(p[1]);
        p[0] = p[1] = -1;
        return r;
}

static _noreturn_ void child_exec(const struct exec_request *req, int in_fd, int out_fd, int err_fd,
                                  int report_fd)
{
        sigset_t all;
        int e;

        /* Leave the parent's signal setup behind: default dispositions and
         * an empty mask, in a process group of its own so a timeout kill
         * reaches its children too. */
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void)signal(sig, SIG_DFL);
        sigemptyset(&all);
        (void)sigprocmask(SIG_SETMASK, &all, NULL);
        (void)setpgid(0, 0);

        if (in_fd < 0)
                in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (in_fd < 0 || dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
            dup2(err_fd, STDERR_FILENO) < 0)
                goto fail;
        if (req->cwd && chdir(req->cwd) < 0)
                goto fail;
        execvpe(req->argv[0], (char *const *)req->argv,
                req->envp ? (char *const *)req->envp : environ);
fail:
        e = errno;
        (void)!write(report_fd, &e, sizeof(e));
        _exit(e == ENOENT ? EXEC_STATUS_NOT_FOUND : EXEC_STATUS_NOT_EXECUTABLE);
}

static int status_from_wait(int st)
{
        if (WIFEXITED(st))
                return WEXITSTATUS(st);
        if (WIFSIGNALED(st))
                return 128 + WTERMSIG(st);
        return 255;
}

static int read_some(int *fd, struct buffer *b)
{
        char chunk[65536];

        for (;;) {
                ssize_t n = read(*fd, chunk, sizeof(chunk));
                if (n > 0) {
                        int r = buffer_append(b, chunk, (size_t)n);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (n == 0) {
                        *fd = safe_close(*fd);
                        return 0;
                }
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN)
                        return 0;
                *fd = safe_close(*fd);
                return 0;
        }
}

/* One run of executor_real: the pipes, the child and its timing. */
struct run {
        const struct exec_request *req;
        int in_pipe[2], out_pipe[2], err_pipe[2], report[2];
        int pidfd;
        pid_t pid;
        struct buffer out, err;
        const char *in_data;
        size_t in_left;
        int64_t deadline, kill_at;
        bool timed_out;
        int child_errno;
        sigset_t pipe_set, old_mask;
        bool sigpipe_was_pending;
};

static void run_done(struct run *run)
{
        safe_close(run->in_pipe[0]);
        safe_close(run->in_pipe[1]);
        safe_close(run->out_pipe[0]);
        safe_close(run->out_pipe[1]);
        safe_close(run->err_pipe[0]);
        safe_close(run->err_pipe[1]);
        safe_close(run->report[0]);
        safe_close(run->report[1]);
        safe_close(run->pidfd);
        free(run->out.data);
        free(run->err.data);
}

/* Creates the pipes, blocks SIGPIPE (a child that closes its stdin early
 * must give us EPIPE, not kill us) and forks the child. On success the
 * child runs (or has reported why its exec failed, in child_errno) and
 * SIGPIPE stays blocked until run_restore_sigpipe(). */
static int run_spawn(struct run *run)
{
        const struct exec_request *req = run->req;
        sigset_t pending;
        int r;

        r = pipe_prepared(run->out_pipe, true, false);
        if (r >= 0)
                r = pipe_prepared(run->err_pipe, true, false);
        if (r >= 0)
                r = pipe_prepared(run->report, false, false);
        if (r >= 0 && req->stdin_data)
                r = pipe_prepared(run->in_pipe, false, true);
        if (r < 0)
                return r;

        sigemptyset(&run->pipe_set);
        sigaddset(&run->pipe_set, SIGPIPE);
        sigpending(&pending);
        run->sigpipe_was_pending = sigismember(&pending, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &run->pipe_set, &run->old_mask);

        run->pid = fork();
        if (run->pid < 0) {
                r = negative_errno();
                pthread_sigmask(SIG_SETMASK, &run->old_mask, NULL);
                return r;
        }
        if (run->pid == 0)
                child_exec(req, run->in_pipe[0], run->out_pipe[1], run->err_pipe[1],
                           run->report[1]);

        (void)setpgid(run->pid, run->pid); /* also here: no race with an early kill */
        run->in_pipe[0] = safe_close(run->in_pipe[0]);
        run->out_pipe[1] = safe_close(run->out_pipe[1]);
        run->err_pipe[1] = safe_close(run->err_pipe[1]);
        run->report[1] = safe_close(run->report[1]);

        /* The report pipe closes on a successful exec (O_CLOEXEC) or
         * carries the errno of the failed one. */
        if (RETRY_EINTR(read(run->report[0], &run->child_errno, sizeof(run->child_errno))) !=
            (ssize_t)sizeof(run->child_errno))
                run->child_errno = 0;
        run->report[0] = safe_close(run->report[0]);

        run->pidfd = pidfd_open_(run->pid);
        if (req->timeout_ms > 0)
                run->deadline = now_ms() + req->timeout_ms;
        if (run->in_pipe[1] >= 0 && run->in_left == 0)
                run->in_pipe[1] = safe_close(run->in_pipe[1]);
        return 0;
}

/* Sends the timeout's TERM when the deadline passes and its KILL after the
 * grace period; returns the poll timeout until the next of them (-1: none). */
static int run_timeout_step(struct run *run)
{
        const struct exec_request *req = run->req;
        int64_t now = now_ms();
        int timeout = -1;

        if (run->deadline >= 0 && !run->timed_out && now >= run->deadline) {
                run->timed_out = true;
                (void)kill(-run->pid, SIGTERM);
                (void)kill(run->pid, SIGTERM);
                run->kill_at = now + (req->kill_grace_ms > 0 ? req->kill_grace_ms
                                                             : EXEC_KILL_GRACE_MS_DEFAULT);
        }
        if (run->kill_at >= 0 && now >= run->kill_at) {
                (void)kill(-run->pid, SIGKILL);
                (void)kill(run->pid, SIGKILL);
                run->kill_at = -1;
        }
        if (!run->timed_out && run->deadline >= 0)
                timeout = (int)(run->deadline - now);
        else if (run->kill_at >= 0)
                timeout = (int)(run->kill_at - now);
        if (run->pidfd < 0) /* no pidfd: poll waitpid now and then */
                timeout = timeout < 0 ? 50 : MIN(timeout, 50);
        return timeout;
}

/* Feeds stdin, collects stdout and stderr and enforces the timeout until
 * the child exits (or until both output pipes and the pidfd are closed).
 * Returns 0, or -errno of a failed poll or buffer. */
static int run_pump(struct run *run)
{
        bool exited = false;
        int r = 0;

        while (!exited && (run->out_pipe[0] >= 0 || run->err_pipe[0] >= 0 || run->pidfd >= 0)) {
                struct pollfd p[4];
                int n = 0, i_in = -1, i_out = -1, i_err = -1, i_pid = -1;
                int timeout = run_timeout_step(run);

                if (run->in_pipe[1] >= 0) {
                        i_in = n;
                        p[n++] = (struct pollfd){.fd = run->in_pipe[1], .events = POLLOUT};
                }
                if (run->out_pipe[0] >= 0) {
                        i_out = n;
                        p[n++] = (struct pollfd){.fd = run->out_pipe[0], .events = POLLIN};
                }
                if (run->err_pipe[0] >= 0) {
                        i_err = n;
                        p[n++] = (struct pollfd){.fd = run->err_pipe[0], .events = POLLIN};
                }
                if (run->pidfd >= 0) {
                        i_pid = n;
                        p[n++] = (struct pollfd){.fd = run->pidfd, .events = POLLIN};
                }

                if (poll(p, n, timeout) < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }

                if (i_in >= 0 && p[i_in].revents) {
                        ssize_t w =
                            write(run->in_pipe[1], run->in_data, MIN(run->in_left, (size_t)65536));
                        if (w > 0) {
                                run->in_data += w;
                                run->in_left -= (size_t)w;
                        }
                        if ((w < 0 && errno != EAGAIN && errno != EINTR) || run->in_left == 0)
                                run->in_pipe[1] = safe_close(run->in_pipe[1]);
                }
                if (i_out >= 0 && p[i_out].revents &&
                    (r = read_some(&run->out_pipe[0], &run->out)) < 0)
                        return r;
                if (i_err >= 0 && p[i_err].revents &&
                    (r = read_some(&run->err_pipe[0], &run->err)) < 0)
                        return r;
                if (i_pid >= 0 && p[i_pid].revents)
                        exited = true;
                else if (run->pidfd < 0) {
                        siginfo_t si = {};
                        /* peek without reaping; the waitpid() below reaps */
                        if (waitid(P_PID, (id_t)run->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                            si.si_pid == run->pid)
                                exited = true;
                }
        }
        return 0;
}

/* After run_pump (r its result): takes what the child left in the pipes (a
 * grandchild holding them open does not keep us here), or kills the group
 * when pumping failed; reaps the child into *ret_wait_status and restores
 * the SIGPIPE setup run_spawn changed, swallowing a SIGPIPE we caused. */
static int run_reap(struct run *run, int r, int *ret_wait_status)
{
        sigset_t pending;

        if (r >= 0) {
                if (run->out_pipe[0] >= 0)
                        r = read_some(&run->out_pipe[0], &run->out);
                if (r >= 0 && run->err_pipe[0] >= 0)
                        r = read_some(&run->err_pipe[0], &run->err);
        } else {
                (void)kill(-run->pid, SIGKILL);
                (void)kill(run->pid, SIGKILL);
        }
        if (RETRY_EINTR(waitpid(run->pid, ret_wait_status, 0)) < 0 && r >= 0)
                r = negative_errno();

        if (!run->sigpipe_was_pending) {
                struct timespec zero = {};
                sigpending(&pending);
                if (sigismember(&pending, SIGPIPE))
                        (void)sigtimedwait(&run->pipe_set, NULL, &zero);
        }
        pthread_sigmask(SIG_SETMASK, &run->old_mask, NULL);
        return r;
}

/* Builds the exec_result of a reaped child into *ret (owned by the caller). */
static int run_result(struct run *run, int wait_status, struct exec_result *ret)
{
        const struct exec_request *req = run->req;
        int r;

        if (run->child_errno != 0) {
                char msg[512];
                snprintf(msg, sizeof(msg), "cannot execute '%s': %s\n", req->argv[0],
                         strerror(run->child_errno));
                free(run->err.data);
                run->err = (struct buffer){.max = SIZE_MAX};
                r = buffer_append(&run->err, msg, strlen(msg));
                if (r < 0)
                        return r;
        }

        struct exec_result res = {
            .status = run->child_errno ? (run->child_errno == ENOENT ? EXEC_STATUS_NOT_FOUND
                                                                     : EXEC_STATUS_NOT_EXECUTABLE)
                                       : status_from_wait(wait_status),
            .timed_out = run->timed_out,
            .truncated = run->out.truncated || run->err.truncated,
        };
        r = buffer_finish(&run->out, &res.out, &res.out_len);
        if (r >= 0)
                r = buffer_finish(&run->err, &res.err, &res.err_len);
        if (r < 0) {
                exec_result_done(&res);
                return r;
        }
        log_debug("'%s' exited with status %d%s", req->argv[0], res.status,
                  run->timed_out ? " (timed out)" : "");
        *ret = res;
        return 0;
}

static int real_run(struct executor *e, const struct exec_request *req, struct exec_result *ret)
{
        struct run run = {
            .req = req,
            .in_pipe = {-1, -1},
            .out_pipe = {-1, -1},
            .err_pipe = {-1, -1},
            .report = {-1, -1},
            .pidfd = -1,
            .out = {.max = req->max_output ?: EXEC_OUTPUT_MAX_DEFAULT},
            .err = {.max = req->max_output ?: EXEC_OUTPUT_MAX_DEFAULT},
            .in_data = req->stdin_data,
            .in_left = req->stdin_len,
            .deadline = -1,
            .kill_at = -1,
        };
        int r, st = 0;

        if (!req->argv || !req->argv[0])
                return -EINVAL;

        r = run_spawn(&run);
        if (r >= 0) {
                r = run_reap(&run, run_pump(&run), &st);
                if (r >= 0)
                        r = run_result(&run, st, ret);
        }
        run_done(&run);
        return r;
}

struct executor *executor_real(void)
{
        static struct executor real = {.run = real_run};
        return &real;
}

static bool needs_quoting(const char *s)
{
        if (!*s)
                return true;
        for (; *s; s++)
                if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') ||
                      ('0' <= *s && *s <= '9') || strchr("-_./=:,+@%", *s)))
                        return true;
        return false;
}

char *exec_argv_to_string(const char *const *argv)
{
        size_t len = 1;
        char *s, *p;

        for (const char *const *a = argv; a && *a; a++)
                len += strlen(*a) * 4 + 3;
        s = p = malloc(len);
        if (!s)
                return NULL;
        *p = '\0';
        for (const char *const *a = argv; a && *a; a++) {
                if (a != argv)
                        *p++ = ' ';
                if (!needs_quoting(*a)) {
                        p = stpcpy(p, *a);
                        continue;
                }
                *p++ = '\'';
                for (const char *c = *a; *c; c++) {
                        if (*c == '\'')
                                p = stpcpy(p, "'\\''");
                        else
                                *p++ = *c;
                }
                *p++ = '\'';
                *p = '\0';
        }
        return s;
}

static bool argv_has_prefix(const char *const *argv, const char *const *prefix)
{
        for (; prefix && *prefix; prefix++, argv++)
                if (!*argv || !streq(*argv, *prefix))
                        return false;
        return true;
}

static char **strv_copy(const char *const *l)
{
        size_t n = 0;
        char **c;

        while (l[n])
                n++;
        c = calloc(n + 1, sizeof(char *));
        if (!c)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                c[i] = strdup(l[i]);
                if (!c[i]) {
                        strv_free(c);
                        return NULL;
                }
        }
        return c;
}

static int script_run(struct executor *e, const struct exec_request *req, struct exec_result *ret)
{
        struct exec_script *s = (struct exec_script *)e;
        struct exec_result res = {.status = EXEC_STATUS_NOT_FOUND};
        char ***calls;
        const char *out = "", *err = "no scripted answer\n";

        if (!req->argv || !req->argv[0])
                return -EINVAL;
        calls = realloc(s->calls, (s->n_calls + 1) * sizeof(char **));
        if (!calls)
                return -ENOMEM;
        s->calls = calls;
        s->calls[s->n_calls] = strv_copy(req->argv);
        if (!s->calls[s->n_calls])
                return -ENOMEM;
        s->n_calls++;

        for (size_t i = 0; i < s->n_rules; i++) {
                const struct exec_script_rule *rule = &s->rules[i];
                if (rule->uses > 0 && s->used[i] >= rule->uses)
                        continue;
                if (!argv_has_prefix(req->argv, rule->argv_prefix))
                        continue;
                s->used[i]++;
                res.status = rule->status;
                out = rule->out ?: "";
                err = rule->err ?: "";
                break;
        }
        res.out = strdup(out);
        res.err = strdup(err);
        if (!res.out || !res.err) {
                exec_result_done(&res);
                return -ENOMEM;
        }
        res.out_len = strlen(res.out);
        res.err_len = strlen(res.err);
        *ret = res;
        return 0;
}

int exec_script_init(struct exec_script *s, struct exec_script_rule *rules, size_t n_rules)
{
        *s = (struct exec_script){
            .executor = {.run = script_run},
            .rules = rules,
            .n_rules = n_rules,
        };
        s->used = calloc(n_rules + 1, sizeof(unsigned));
        return s->used ? 0 : -ENOMEM;
}

void exec_script_done(struct exec_script *s)
{
        for (size_t i = 0; i < s->n_calls; i++)
                strv_free(s->calls[i]);
        free(s->calls);
        free(s->used);
        *s = (struct exec_script){};
}

char *exec_script_call_string(const struct exec_script *s, size_t i)
{
        if (i >= s->n_calls)
                return NULL;
        return exec_argv_to_string((const char *const *)s->calls[i]);
}
