/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "macro.h"
#include "vm.h"
#include "vmrun.h"

#define POLL_MS 50

int64_t vm_now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int bind_loopback(uint16_t port, uint16_t *ret)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        socklen_t len = sizeof(a);
        _cleanup_close_ int fd = -1;

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
                return -errno;
        if (ret) {
                if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
                        return -errno;
                *ret = ntohs(a.sin_port);
        }
        return 0;
}

int vm_free_port(uint16_t *ret)
{
        return bind_loopback(0, ret);
}

bool vm_port_free(uint16_t port)
{
        return bind_loopback(port, NULL) == 0;
}

int vm_spawn(char *const *argv, const char *log, int keep_fd, bool die_with_parent, pid_t *ret_pid)
{
        pid_t parent = getpid(), pid;
        int errpipe[2];
        ssize_t n;
        int child_errno = 0;

        if (pipe2(errpipe, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(errpipe[0]);
                close(errpipe[1]);
                return r;
        }
        if (pid == 0) {
                int fd, e;

                close(errpipe[0]);
                if (die_with_parent) {
                        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                        if (getppid() != parent)
                                _exit(127);
                }
                /* Not in the caller's terminal process group's way: Ctrl-C
                 * reaches the caller, which kills the guest itself. */
                (void)setpgid(0, 0);
                fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
                        goto fail;
                if (log) {
                        fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
                                goto fail;
                }
                if (keep_fd >= 0) {
                        int flags = fcntl(keep_fd, F_GETFD);
                        if (flags < 0 || fcntl(keep_fd, F_SETFD, flags & ~FD_CLOEXEC) < 0)
                                goto fail;
                }
                signal(SIGPIPE, SIG_DFL);
                execvp(argv[0], argv);
        fail:
                e = errno;
                (void)!write(errpipe[1], &e, sizeof(e));
                _exit(127);
        }
        close(errpipe[1]);
        do
                n = read(errpipe[0], &child_errno, sizeof(child_errno));
        while (n < 0 && errno == EINTR);
        close(errpipe[0]);
        if (n == (ssize_t)sizeof(child_errno)) {
                (void)waitpid(pid, NULL, 0);
                return -child_errno;
        }
        *ret_pid = pid;
        return 0;
}

void vm_kill(pid_t pid)
{
        if (pid <= 0)
                return;
        if (kill(pid, SIGKILL) < 0 && errno == ESRCH)
                return;
        /* Reap it when it is ours; ECHILD otherwise. */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

bool vm_pid_wait_gone(pid_t pid, int64_t timeout_ms)
{
        int64_t end = vm_now_usec() + timeout_ms * 1000;

        for (;;) {
                (void)waitpid(pid, NULL, WNOHANG);
                if (kill(pid, 0) < 0 && errno == ESRCH)
                        return true;
                if (vm_now_usec() >= end)
                        return false;
                poll(NULL, 0, POLL_MS);
        }
}

/* Copies what was appended to path since *off to fd. */
static int copy_new(const char *path, off_t *off, int fd)
{
        _cleanup_close_ int in = -1;
        char buf[65536];
        ssize_t n;

        if (!path || fd < 0)
                return 0;
        in = open(path, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return errno == ENOENT ? 0 : -errno;
        while ((n = pread(in, buf, sizeof(buf), *off)) > 0) {
                for (ssize_t done = 0; done < n;) {
                        ssize_t w = write(fd, buf + done, (size_t)(n - done));
                        if (w < 0) {
                                if (errno == EINTR)
                                        continue;
                                /* A closed stdout must not stop the guest. */
                                break;
                        }
                        done += w;
                }
                *off += n;
        }
        return n < 0 ? -errno : 0;
}

/* Looks for the ready marker in what the console got since *off (with
 * an overlap, so a marker split across two polls is found). */
static int console_has_marker(const char *path, off_t *off)
{
        _cleanup_close_ int in = -1;
        _cleanup_free_ char *buf = NULL;
        size_t ml = strlen(VM_READY_MARKER);
        off_t from = *off > (off_t)ml ? *off - (off_t)ml : 0;
        struct stat st;
        ssize_t n;
        size_t len;

        in = open(path, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return errno == ENOENT ? 0 : -errno;
        if (fstat(in, &st) < 0)
                return -errno;
        if (st.st_size <= from)
                return 0;
        len = (size_t)(st.st_size - from);
        buf = malloc(len + 1);
        if (!buf)
                return -ENOMEM;
        n = pread(in, buf, len, from);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        *off = from + n;
        return memmem(buf, (size_t)n, VM_READY_MARKER, ml) != NULL;
}

/* Whether the result port's file holds a complete status line. */
static bool has_result(const char *path)
{
        _cleanup_free_ char *text = NULL;
        struct stat st;
        size_t len = 0;
        int s;

        if (!path || stat(path, &st) < 0 || st.st_size == 0)
                return false;
        return vm_read_tail(path, 4096, &text, &len) == 0 && vm_result_parse(text, len, &s) == 0;
}

static void copy_ports(struct vm_watch *w)
{
        (void)copy_new(w->out, &w->out_off, w->out_fd);
        (void)copy_new(w->err, &w->err_off, w->err_fd);
}

/* A pidfd of pid (readable once it exits), or -1 where the kernel has
 * none: the watcher then just sleeps between its polls. */
static int pidfd_of(pid_t pid)
{
#ifdef SYS_pidfd_open
        return (int)syscall(SYS_pidfd_open, pid, 0);
#else
        return -1;
#endif
}

/* Whether the process of pidfd has exited (a zombie not reaped yet too). */
static bool pidfd_exited(int pidfd)
{
        struct pollfd p = {.fd = pidfd, .events = POLLIN};

        return pidfd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

int vm_watch_run(struct vm_watch *w, enum vm_wait_for what, int64_t deadline_usec,
                 volatile sig_atomic_t *stop)
{
        /* QEMU's exit ends the wait at once, not at the next poll. */
        _cleanup_close_ int pidfd = w->pid > 0 ? pidfd_of(w->pid) : -1;

        for (;;) {
                struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
                int st, r;

                copy_ports(w);
                if (what == VM_WAIT_EXIT && has_result(w->result)) {
                        copy_ports(w);
                        return VM_EVENT_RESULT;
                }
                if (what == VM_WAIT_READY && w->console) {
                        r = console_has_marker(w->console, &w->console_off);
                        if (r < 0)
                                return r;
                        if (r > 0)
                                return VM_EVENT_READY;
                }
                if (w->child) {
                        pid_t p = waitpid(w->pid, &st, WNOHANG);
                        if (p < 0 && errno != EINTR)
                                return -errno;
                        if (p == w->pid) {
                                w->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                                w->pid = 0;
                                copy_ports(w);
                                return VM_EVENT_EXITED;
                        }
                } else if ((kill(w->pid, 0) < 0 && errno == ESRCH) || pidfd_exited(pidfd)) {
                        w->status = 0;
                        copy_ports(w);
                        return VM_EVENT_EXITED;
                }
                if (stop && *stop)
                        return VM_EVENT_INTERRUPTED;
                if (deadline_usec > 0 && vm_now_usec() >= deadline_usec)
                        return VM_EVENT_TIMEOUT;
                if (pidfd >= 0)
                        (void)poll(&pfd, 1, POLL_MS);
                else
                        (void)poll(NULL, 0, POLL_MS);
        }
}

int vm_read_tail(const char *path, size_t max, char **ret, size_t *ret_len)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        off_t from = 0;
        ssize_t n;
        size_t len;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if ((size_t)st.st_size > max)
                from = st.st_size - (off_t)max;
        len = (size_t)(st.st_size - from);
        buf = malloc(len + 1);
        if (!buf)
                return -ENOMEM;
        n = pread(fd, buf, len, from);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        if (ret_len)
                *ret_len = (size_t)n;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* Reads one JSON line (QMP sends one message a line) within the deadline. */
static int qmp_read_line(int fd, char *buf, size_t size, int64_t deadline)
{
        size_t len = 0;

        while (len + 1 < size) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                int64_t left = (deadline - vm_now_usec()) / 1000;
                ssize_t n;

                if (left <= 0)
                        return -ETIMEDOUT;
                if (poll(&p, 1, (int)left) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (!(p.revents & (POLLIN | POLLHUP)))
                        continue;
                n = read(fd, buf + len, 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -ECONNRESET;
                if (buf[len] == '\n') {
                        buf[len] = 0;
                        return 0;
                }
                len++;
        }
        return -EMSGSIZE;
}

/* Reads until the answer to a command: events ({"event": ...}) are skipped. */
static int qmp_answer(int fd, int64_t deadline)
{
        char line[8192];

        for (;;) {
                int r = qmp_read_line(fd, line, sizeof(line), deadline);
                if (r < 0)
                        return r;
                if (strstr(line, "\"return\""))
                        return 0;
                if (strstr(line, "\"error\""))
                        return -EPROTO;
        }
}

int vm_qmp_execute(const char *path, const char *command, int64_t timeout_ms)
{
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        int64_t deadline = vm_now_usec() + timeout_ms * 1000;
        _cleanup_close_ int fd = -1;
        char line[8192], msg[256];
        int r;

        if (strlen(path) >= sizeof(a.sun_path))
                return -ENAMETOOLONG;
        strcpy(a.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
                return -errno;
        /* The greeting, then capabilities negotiation, then the command. */
        r = qmp_read_line(fd, line, sizeof(line), deadline);
        if (r < 0)
                return r;
        if (!strstr(line, "\"QMP\""))
                return -EPROTO;
        static const char caps[] = "{\"execute\": \"qmp_capabilities\"}\n";
        if (write(fd, caps, sizeof(caps) - 1) != (ssize_t)(sizeof(caps) - 1))
                return -EIO;
        r = qmp_answer(fd, deadline);
        if (r < 0)
                return r;
        snprintf(msg, sizeof(msg), "{\"execute\": \"%s\"}\n", command);
        if (write(fd, msg, strlen(msg)) != (ssize_t)strlen(msg))
                return -EIO;
        r = qmp_answer(fd, deadline);
        /* "quit" may close the socket before it answers. */
        if (r == -ECONNRESET && streq(command, "quit"))
                return 0;
        return r;
}
