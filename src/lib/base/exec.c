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

static int real_run(struct executor *e, const struct exec_request *req, struct exec_result *ret)
{
        int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
        int report[2] = {-1, -1};
        _cleanup_close_ int pidfd = -1;
        struct buffer out = {.max = req->max_output ?: EXEC_OUTPUT_MAX_DEFAULT};
        struct buffer err = {.max = req->max_output ?: EXEC_OUTPUT_MAX_DEFAULT};
        const char *in_data = req->stdin_data;
        size_t in_left = req->stdin_len;
        int64_t deadline = -1, kill_at = -1;
        bool timed_out = false, exited = false, sigpipe_was_pending;
        sigset_t pipe_set, old_mask, pending;
        int r, st = 0, child_errno = 0;
        pid_t pid;

        if (!req->argv || !req->argv[0])
                return -EINVAL;

        r = pipe_prepared(out_pipe, true, false);
        if (r < 0)
                goto finish;
        r = pipe_prepared(err_pipe, true, false);
        if (r < 0)
                goto finish;
        r = pipe_prepared(report, false, false);
        if (r < 0)
                goto finish;
        if (req->stdin_data) {
                r = pipe_prepared(in_pipe, false, true);
                if (r < 0)
                        goto finish;
        }

        /* A child that closes its stdin early must give us EPIPE, not kill
         * us with SIGPIPE: block it here and swallow what we caused. */
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        sigpending(&pending);
        sigpipe_was_pending = sigismember(&pending, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);

        pid = fork();
        if (pid < 0) {
                r = negative_errno();
                pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
                goto finish;
        }
        if (pid == 0)
                child_exec(req, in_pipe[0], out_pipe[1], err_pipe[1], report[1]);

        (void)setpgid(pid, pid); /* also here: no race with an early kill */
        in_pipe[0] = safe_close(in_pipe[0]);
        out_pipe[1] = safe_close(out_pipe[1]);
        err_pipe[1] = safe_close(err_pipe[1]);
        report[1] = safe_close(report[1]);

        /* The report pipe closes on a successful exec (O_CLOEXEC) or
         * carries the errno of the failed one. */
        if (RETRY_EINTR(read(report[0], &child_errno, sizeof(child_errno))) !=
            (ssize_t)sizeof(child_errno))
                child_errno = 0;
        report[0] = safe_close(report[0]);

        pidfd = pidfd_open_(pid);
        if (req->timeout_ms > 0)
                deadline = now_ms() + req->timeout_ms;
        if (in_pipe[1] >= 0 && in_left == 0)
                in_pipe[1] = safe_close(in_pipe[1]);

        while (!exited && (out_pipe[0] >= 0 || err_pipe[0] >= 0 || pidfd >= 0)) {
                struct pollfd p[4];
                int n = 0, i_in = -1, i_out = -1, i_err = -1, i_pid = -1, timeout = -1;
                int64_t now = now_ms();

                if (deadline >= 0 && !timed_out && now >= deadline) {
                        timed_out = true;
                        (void)kill(-pid, SIGTERM);
                        (void)kill(pid, SIGTERM);
                        kill_at = now + (req->kill_grace_ms > 0 ? req->kill_grace_ms
                                                                : EXEC_KILL_GRACE_MS_DEFAULT);
                }
                if (kill_at >= 0 && now >= kill_at) {
                        (void)kill(-pid, SIGKILL);
                        (void)kill(pid, SIGKILL);
                        kill_at = -1;
                }
                if (!timed_out && deadline >= 0)
                        timeout = (int)(deadline - now);
                else if (kill_at >= 0)
                        timeout = (int)(kill_at - now);
                if (pidfd < 0) /* no pidfd: poll waitpid now and then */
                        timeout = timeout < 0 ? 50 : MIN(timeout, 50);

                if (in_pipe[1] >= 0) {
                        i_in = n;
                        p[n++] = (struct pollfd){.fd = in_pipe[1], .events = POLLOUT};
                }
                if (out_pipe[0] >= 0) {
                        i_out = n;
                        p[n++] = (struct pollfd){.fd = out_pipe[0], .events = POLLIN};
                }
                if (err_pipe[0] >= 0) {
                        i_err = n;
                        p[n++] = (struct pollfd){.fd = err_pipe[0], .events = POLLIN};
                }
                if (pidfd >= 0) {
                        i_pid = n;
                        p[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
                }

                if (poll(p, n, timeout) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        break;
                }

                if (i_in >= 0 && p[i_in].revents) {
                        ssize_t w = write(in_pipe[1], in_data, MIN(in_left, (size_t)65536));
                        if (w > 0) {
                                in_data += w;
                                in_left -= (size_t)w;
                        }
                        if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_left == 0)
                                in_pipe[1] = safe_close(in_pipe[1]);
                }
                if (i_out >= 0 && p[i_out].revents && (r = read_some(&out_pipe[0], &out)) < 0)
                        break;
                if (i_err >= 0 && p[i_err].revents && (r = read_some(&err_pipe[0], &err)) < 0)
                        break;
                if (i_pid >= 0 && p[i_pid].revents)
                        exited = true;
                else if (pidfd < 0) {
                        siginfo_t si = {};
                        /* peek without reaping; the waitpid() below reaps */
                        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                            si.si_pid == pid)
                                exited = true;
                }
        }

        if (r >= 0) {
                /* The child is gone: take what it left in the pipes (a
                 * grandchild holding them open does not keep us here). */
                if (out_pipe[0] >= 0)
                        r = read_some(&out_pipe[0], &out);
                if (r >= 0 && err_pipe[0] >= 0)
                        r = read_some(&err_pipe[0], &err);
        } else {
                (void)kill(-pid, SIGKILL);
                (void)kill(pid, SIGKILL);
        }
        if (RETRY_EINTR(waitpid(pid, &st, 0)) < 0 && r >= 0)
                r = negative_errno();

        if (!sigpipe_was_pending) {
                struct timespec zero = {};
                sigpending(&pending);
                if (sigismember(&pending, SIGPIPE))
                        (void)sigtimedwait(&pipe_set, NULL, &zero);
        }
        pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
        if (r < 0)
                goto finish;

        if (child_errno != 0) {
                char msg[512];
                snprintf(msg, sizeof(msg), "cannot execute '%s': %s\n", req->argv[0],
                         strerror(child_errno));
                free(err.data);
                err = (struct buffer){.max = SIZE_MAX};
                r = buffer_append(&err, msg, strlen(msg));
                if (r < 0)
                        goto finish;
        }

        {
                struct exec_result res = {
                    .status = child_errno ? (child_errno == ENOENT ? EXEC_STATUS_NOT_FOUND
                                                                   : EXEC_STATUS_NOT_EXECUTABLE)
                                          : status_from_wait(st),
                    .timed_out = timed_out,
                    .truncated = out.truncated || err.truncated,
                };
                r = buffer_finish(&out, &res.out, &res.out_len);
                if (r >= 0)
                        r = buffer_finish(&err, &res.err, &res.err_len);
                if (r < 0) {
                        exec_result_done(&res);
                        goto finish;
                }
                log_debug("'%s' exited with status %d%s", req->argv[0], res.status,
                          timed_out ? " (timed out)" : "");
                *ret = res;
                r = 0;
        }

finish:
        safe_close(in_pipe[0]);
        safe_close(in_pipe[1]);
        safe_close(out_pipe[0]);
        safe_close(out_pipe[1]);
        safe_close(err_pipe[0]);
        safe_close(err_pipe[1]);
        safe_close(report[0]);
        safe_close(report[1]);
        free(out.data);
        free(err.data);
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
