/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "macro.h"
#include "sandbox.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

extern char **environ;

/* Where the host's root sits while the new root is built. */
#define OLDROOT "/oldroot"
#define NEWROOT "/newroot"

static void forwarded_signals(sigset_t *s)
{
        sigemptyset(s);
        sigaddset(s, SIGCHLD);
        sigaddset(s, SIGTERM);
        sigaddset(s, SIGINT);
        sigaddset(s, SIGHUP);
}

_printf_(2, 3) static int set_error(char **ret_error, const char *fmt, ...)
{
        va_list ap;

        if (!ret_error)
                return 0;
        va_start(ap, fmt);
        if (vasprintf(ret_error, fmt, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return 0;
}

/* True if the first operation on the new root is a mount on "/" that
 * cannot be skipped. */
static bool plan_mounts_root(const struct mount_plan *plan)
{
        for (size_t i = 0; plan && i < plan->n_ops; i++) {
                const struct mount_op *op = &plan->ops[i];

                if (op->flags & MOUNT_PLAN_HOST)
                        continue;
                return streq(op->dest, "/") && !(op->flags & MOUNT_PLAN_OPTIONAL) &&
                       (op->type == MOUNT_OP_TMPFS || op->type == MOUNT_OP_OVERLAY ||
                        op->type == MOUNT_OP_BIND);
        }
        return false;
}

int sandbox_enter_root(const struct mount_plan *plan, char **ret_error)
{
        static const char *const staging_dirs[] = {"/tmp", "/run", "/mnt", "/var/tmp"};
        const char *staging = NULL;
        int r;

        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
                r = -errno;
                set_error(ret_error, "make the mounts under '%s' private", "/");
                return r;
        }

        /* A tmpfs that becomes "/" for a moment, with the host's root at
         * /oldroot: then no mount of the plan can hide one of its sources. */
        for (size_t i = 0; i < ELEMENTSOF(staging_dirs) && !staging; i++) {
                struct stat st;
                if (stat(staging_dirs[i], &st) == 0 && S_ISDIR(st.st_mode))
                        staging = staging_dirs[i];
        }
        if (!staging) {
                set_error(ret_error, "find a directory for the staging root (%s)",
                          "/tmp, /run, /mnt or /var/tmp");
                return -ENOENT;
        }
        if (mount("strata-staging", staging, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0) {
                r = -errno;
                set_error(ret_error, "mount the staging tmpfs on '%s'", staging);
                return r;
        }
        if (chdir(staging) < 0 || mkdir("oldroot", 0755) < 0 || mkdir("newroot", 0755) < 0) {
                r = -errno;
                set_error(ret_error, "create the staging dirs in '%s'", staging);
                return r;
        }
        if (syscall(SYS_pivot_root, ".", "oldroot") < 0) {
                r = -errno;
                set_error(ret_error, "pivot_root into the staging tmpfs on '%s'", staging);
                return r;
        }
        if (chdir("/") < 0)
                return -errno;
        /* The new root must be a mount of its own (pivot_root needs one):
         * a tmpfs, unless the plan mounts something there anyway. */
        if (!plan_mounts_root(plan) &&
            mount("strata-root", NEWROOT, "tmpfs", MS_NOSUID, "mode=0755") < 0) {
                r = -errno;
                set_error(ret_error, "mount the root tmpfs on '%s'", NEWROOT);
                return r;
        }

        if (plan) {
                r = mount_plan_apply(plan, NEWROOT, OLDROOT, ret_error);
                if (r < 0)
                        return r;
        }

        /* Stack the old root on top of the new one and drop it. */
        if (chdir(NEWROOT) < 0 || syscall(SYS_pivot_root, ".", ".") < 0) {
                r = -errno;
                set_error(ret_error, "pivot_root into the new root");
                return r;
        }
        if (umount2(".", MNT_DETACH) < 0) {
                r = -errno;
                set_error(ret_error, "detach the old root");
                return r;
        }
        if (chdir("/") < 0)
                return -errno;
        return 0;
}

/* execvp()'s search, without its cost: execve() of a missing file still
 * sets up a whole new program image before it fails, so each PATH entry is
 * first checked with a plain lookup. */
static int find_executable(const char *name, char **ret)
{
        const char *path = getenv("PATH"), *p;
        int last = -ENOENT;

        if (strchr(name, '/')) {
                *ret = strdup(name);
                return *ret ? 0 : -ENOMEM;
        }
        if (!path)
                path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        for (p = path;; p++) {
                const char *e = strchrnul(p, ':');
                _cleanup_free_ char *f = NULL;
                struct stat st;

                /* An empty entry is the current directory. */
                if (asprintf(&f, "%.*s/%s", e == p ? 1 : (int)(e - p), e == p ? "." : p, name) < 0)
                        return -ENOMEM;
                if (stat(f, &st) == 0 && S_ISREG(st.st_mode)) {
                        if (access(f, X_OK) == 0) {
                                *ret = TAKE_PTR(f);
                                return 0;
                        }
                        last = -EACCES;
                }
                if (*e == '\0')
                        break;
                p = e;
        }
        return last;
}

pid_t sandbox_spawn(char *const *argv, char *const *envp, const char *cwd, int err_fd)
{
        _cleanup_free_ char *exe = NULL;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t mask, empty;
        pid_t pid;
        int r;

        forwarded_signals(&mask);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        sigemptyset(&empty);
        sigaddset(&mask, SIGPIPE);

        /* posix_spawn: vfork-like, no copy of the page tables, and exec
         * failures come back as its return value. */
        r = posix_spawnattr_init(&attr);
        if (r != 0)
                return -r;
        r = posix_spawn_file_actions_init(&fa);
        if (r != 0) {
                posix_spawnattr_destroy(&attr);
                return -r;
        }
        r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (r == 0)
                r = posix_spawnattr_setsigmask(&attr, &empty);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(&attr, &mask);
        if (r == 0 && cwd)
                r = posix_spawn_file_actions_addchdir_np(&fa, cwd);
        if (r == 0) {
                r = -find_executable(argv[0], &exe);
                if (r == 0)
                        r = posix_spawn(&pid, exe, &fa, &attr, argv, envp ? envp : environ);
        }
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (r != 0) {
                if (err_fd >= 0)
                        (void)!write(err_fd, &r, sizeof(r));
                return -r;
        }
        return pid;
}

static int status_of(int st)
{
        if (WIFEXITED(st))
                return WEXITSTATUS(st);
        if (WIFSIGNALED(st))
                return 128 + WTERMSIG(st);
        return 255;
}

static void nop_handler(int sig)
{
}

int sandbox_reap(pid_t main_pid)
{
        static const int handled[] = {SIGTERM, SIGINT, SIGHUP};
        struct sigaction sa = {.sa_handler = nop_handler};
        _cleanup_close_ int sfd = -1;
        sigset_t mask;
        int status = -1;

        /* The init of a pid namespace only gets the signals it handles. */
        for (size_t i = 0; i < ELEMENTSOF(handled); i++)
                (void)sigaction(handled[i], &sa, NULL);
        forwarded_signals(&mask);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        sfd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (sfd < 0)
                return -errno;

        while (status < 0) {
                struct signalfd_siginfo si;
                ssize_t n;
                pid_t pid;
                int st;

                /* Reap first: a SIGCHLD may have come before the signalfd. */
                while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
                        if (pid == main_pid)
                                status = status_of(st);
                if (pid < 0 && errno == ECHILD && status < 0)
                        return -ECHILD;
                if (status >= 0)
                        break;

                n = read(sfd, &si, sizeof(si));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (si.ssi_signo != SIGCHLD)
                        kill(main_pid, (int)si.ssi_signo);
        }

        /* Only the init of a pid namespace may sweep it clean. Every process
         * of the namespace descends from it (orphans are reparented to it),
         * so with no child left there is nothing to kill; kill(-1) walks
         * every process of the system. */
        if (getpid() == 1 && waitpid(-1, NULL, WNOHANG) == 0)
                kill(-1, SIGKILL);
        for (;;) {
                pid_t pid = waitpid(-1, NULL, getpid() == 1 ? 0 : WNOHANG);
                if (pid > 0)
                        continue;
                if (pid < 0 && errno == EINTR)
                        continue;
                break;
        }
        return status;
}

static void loopback_up(void)
{
        struct ifreq ifr = {};
        _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return;
        strncpy(ifr.ifr_name, "lo", sizeof(ifr.ifr_name) - 1);
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
                return;
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        (void)ioctl(fd, SIOCSIFFLAGS, &ifr);
}

/* Writes a setup error for the parent: errno, then the step. */
static void report(int fd, int r, const char *what)
{
        int e = -r;
        struct iovec iov[2] = {{&e, sizeof(e)},
                               {(void *)(what ? what : ""), what ? strlen(what) : 0}};
        (void)!writev(fd, iov, 2);
}

static int dup_stdio(const struct sandbox_config *c)
{
        int fds[3] = {c->stdin_fd, c->stdout_fd, c->stderr_fd};

        for (int i = 0; i < 3; i++)
                if (fds[i] > 0 && fds[i] != i && dup2(fds[i], i) < 0)
                        return -errno;
        return 0;
}

_noreturn_ static void child_main(const struct sandbox_config *c, int err_fd, int empty_fd)
{
        _cleanup_free_ char *error = NULL;
        pid_t main_pid;
        int r;

        /* The namespace must not outlive the caller. */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);

        if (c->flags & SANDBOX_NET)
                loopback_up();
        if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0) {
                report(err_fd, -errno, "set the hostname");
                _exit(SANDBOX_EXIT_EXEC);
        }

        if (c->plan) {
                r = sandbox_enter_root(c->plan, &error);
        } else {
                r = mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ? -errno : 0;
                if (r < 0)
                        error = strdup("make the mounts under '/' private");
        }
        if (r < 0) {
                report(err_fd, r, error ? error : "set up the root");
                _exit(SANDBOX_EXIT_EXEC);
        }
        if (c->cwd && chdir(c->cwd) < 0) {
                _cleanup_free_ char *m = NULL;
                r = -errno;
                if (asprintf(&m, "change to directory '%s'", c->cwd) < 0)
                        m = NULL;
                report(err_fd, r, m);
                _exit(SANDBOX_EXIT_EXEC);
        }

        if (c->argv) {
                r = dup_stdio(c);
                if (r < 0) {
                        report(err_fd, r, "set up the standard fds");
                        _exit(SANDBOX_EXIT_EXEC);
                }
                /* On failure an errno alone goes to the parent: the command
                 * cannot be executed. */
                main_pid = sandbox_spawn(c->argv, c->envp, NULL, err_fd);
                if (main_pid < 0)
                        _exit(SANDBOX_EXIT_EXEC);
        } else {
                sigset_t mask;
                forwarded_signals(&mask);
                sigprocmask(SIG_BLOCK, &mask, NULL);
                main_pid = fork();
                if (main_pid == 0) {
                        sigemptyset(&mask);
                        sigprocmask(SIG_SETMASK, &mask, NULL);
                        close(err_fd);
                        if (dup_stdio(c) < 0)
                                _exit(SANDBOX_EXIT_EXEC);
                        _exit(c->callback(c->userdata) & 0xff);
                }
        }
        if (main_pid < 0) {
                report(err_fd, main_pid, "fork the command");
                _exit(SANDBOX_EXIT_EXEC);
        }
        close(err_fd);
        r = sandbox_reap(main_pid);
        if (c->teardown)
                c->teardown(c->userdata);
        /* only the init is left: tell the caller before the exit that
         * takes the mounts down */
        if (empty_fd >= 0)
                (void)!write(empty_fd, "", 1);
        _exit(r < 0 ? 255 : r);
}

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

static int pidfd_signal(int pidfd, int sig)
{
        return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* Starts the namespace's init: a child of ours in a new pid namespace that
 * makes the other namespaces and runs child_main(). On success *ret_pidfd
 * refers to it and *ret_err_fd is the read end of its error pipe; the
 * forwarded signals stay blocked (old has the mask to restore). */
static int start_init(const struct sandbox_config *c, int *ret_pidfd, int *ret_err_fd,
                      int *ret_empty_fd, char **ret_error)
{
        _cleanup_close_ int pidns = -1;
        unsigned long ns_flags = CLONE_NEWNS;
        int errpipe[2], emptypipe[2] = {-1, -1}, pidfd = -1, r;
        pid_t pid;

        if (c->flags & SANDBOX_UTS)
                ns_flags |= CLONE_NEWUTS;
        if (c->flags & SANDBOX_IPC)
                ns_flags |= CLONE_NEWIPC;
        if (c->flags & SANDBOX_NET)
                ns_flags |= CLONE_NEWNET;

        if (pipe2(errpipe, O_CLOEXEC) < 0)
                return -errno;
        if (c->emptied && pipe2(emptypipe, O_CLOEXEC | O_NONBLOCK) < 0) {
                r = -errno;
                close(errpipe[0]);
                close(errpipe[1]);
                return r;
        }

        /* glibc's fork(), not a raw clone: the caller may have threads, and
         * only fork() makes malloc and stdio safe to use in the child. The
         * new pid namespace is set for our children by unshare() and our
         * own is restored right after; the child makes the other
         * namespaces itself. */
        pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
        if (pidns < 0 || unshare(CLONE_NEWPID) < 0) {
                r = -errno;
                close(errpipe[0]);
                close(errpipe[1]);
                safe_close(emptypipe[0]);
                safe_close(emptypipe[1]);
                set_error(ret_error, "create a pid namespace");
                return r;
        }
        pid = fork();
        if (pid == 0) {
                /* first: what only the caller may hold (its locks) */
                for (size_t i = 0; i < c->n_close_fds; i++)
                        if (c->close_fds[i] >= 0 && c->close_fds[i] != errpipe[1] &&
                            c->close_fds[i] != emptypipe[1])
                                (void)close(c->close_fds[i]);
                close(errpipe[0]);
                safe_close(emptypipe[0]);
                if (unshare((int)ns_flags) < 0) {
                        report(errpipe[1], -errno, "create the namespaces");
                        _exit(SANDBOX_EXIT_EXEC);
                }
                child_main(c, errpipe[1], emptypipe[1]);
        }
        r = pid < 0 ? -errno : 0;
        if (setns(pidns, CLONE_NEWPID) < 0 && r >= 0)
                r = -errno;
        close(errpipe[1]);
        safe_close(emptypipe[1]);
        if (r >= 0) {
                pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
                if (pidfd < 0)
                        r = -errno;
        }
        if (r < 0) {
                if (pid > 0) {
                        kill(pid, SIGKILL);
                        (void)waitpid(pid, NULL, 0);
                }
                close(errpipe[0]);
                safe_close(emptypipe[0]);
                set_error(ret_error, "start the namespace's init");
                return r;
        }
        if (c->started)
                c->started(pid, c->userdata);
        *ret_pidfd = pidfd;
        *ret_err_fd = errpipe[0];
        *ret_empty_fd = emptypipe[0];
        return 0;
}

/* Waits for the namespace's init to exit, forwarding the signals of mask
 * to it and killing it at the timeout (counted from now). Returns its exit
 * status (128+N for a signal, SANDBOX_EXIT_TIMEOUT) or -errno. */
static int wait_init(const struct sandbox_config *c, int pidfd, int empty_fd, const sigset_t *mask)
{
        _cleanup_close_ int sfd = -1;
        uint64_t deadline = 0;

        if (c->timeout_usec > 0)
                deadline = now_usec() + c->timeout_usec;

        sfd = signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);

        for (;;) {
                struct pollfd p[3] = {{pidfd, POLLIN, 0}, {sfd, POLLIN, 0}, {empty_fd, POLLIN, 0}};
                int timeout = -1, k;

                if (deadline) {
                        uint64_t t = now_usec();
                        timeout = t >= deadline ? 0 : (int)((deadline - t + 999) / 1000);
                }
                k = poll(p, 3, timeout);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k == 0) {
                        /* Timeout: PID 1 dies, the kernel kills the rest. */
                        pidfd_signal(pidfd, SIGKILL);
                        (void)waitid(P_PIDFD, (id_t)pidfd, NULL, WEXITED);
                        return SANDBOX_EXIT_TIMEOUT;
                }
                if (sfd >= 0 && (p[1].revents & POLLIN)) {
                        struct signalfd_siginfo si;
                        while (read(sfd, &si, sizeof(si)) == sizeof(si))
                                if (si.ssi_signo != SIGCHLD) {
                                        pidfd_signal(pidfd, (int)si.ssi_signo);
                                        if (c->ret_forwarded_signal)
                                                *c->ret_forwarded_signal = (int)si.ssi_signo;
                                }
                }
                if (empty_fd >= 0 && p[2].revents) {
                        char b;

                        /* a byte: down to the init; hangup alone: it died
                         * before (the pidfd says how) */
                        if (read(empty_fd, &b, 1) == 1) {
                                deadline = 0;
                                c->emptied(c->userdata);
                        }
                        empty_fd = -1;
                        continue;
                }
                if (p[0].revents & POLLIN) {
                        siginfo_t info = {};
                        if (waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED) < 0) {
                                if (errno == EINTR)
                                        continue;
                                return -errno;
                        }
                        return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
                }
        }
}

/* Reads what the namespace wrote to its error pipe before it died (every
 * writer is gone or going: EOF comes; an error fits in the pipe buffer, so
 * no writer ever waited for us). Returns 0 when it wrote nothing, else the
 * negative errno it reported, with the failed step in *ret_error. */
static int read_setup_error(const struct sandbox_config *c, int err_fd, char **ret_error)
{
        char buf[sizeof(int) + 1024];
        size_t got = 0;
        int e;

        while (got < sizeof(buf) - 1) {
                ssize_t n = read(err_fd, buf + got, sizeof(buf) - 1 - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                got += (size_t)n;
        }
        if (got < sizeof(int))
                return 0;
        memcpy(&e, buf, sizeof(e));
        buf[got] = '\0';
        if (got > sizeof(int))
                set_error(ret_error, "%s", buf + sizeof(int));
        else
                set_error(ret_error, "execute '%s'", c->argv ? c->argv[0] : "?");
        return e > 0 ? -e : -EIO;
}

int sandbox_run(const struct sandbox_config *c, int *ret_status, char **ret_error)
{
        _cleanup_close_ int pidfd = -1, err_fd = -1, empty_fd = -1;
        sigset_t mask, old;
        int r, status;

        if (!c->argv && !c->callback)
                return -EINVAL;
        if (c->argv && !c->argv[0])
                return -EINVAL;

        if (c->ret_forwarded_signal)
                *c->ret_forwarded_signal = 0;
        forwarded_signals(&mask);
        if (sigprocmask(SIG_BLOCK, &mask, &old) < 0)
                return -errno;
        r = start_init(c, &pidfd, &err_fd, &empty_fd, ret_error);
        if (r < 0) {
                sigprocmask(SIG_SETMASK, &old, NULL);
                return r;
        }
        /* Setup and exec errors go to the pipe, then the namespace's init
         * exits: the pipe is read once it is gone (we are woken once). The
         * timeout and the signals count from the start. */
        status = wait_init(c, pidfd, empty_fd, &mask);
        sigprocmask(SIG_SETMASK, &old, NULL);

        r = read_setup_error(c, err_fd, ret_error);
        if (r < 0)
                return r;
        if (status < 0)
                return status;
        *ret_status = status;
        return 0;
}
