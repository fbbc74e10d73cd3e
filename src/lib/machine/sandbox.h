/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The namespace runner: runs a command (or a callback) in a root built from
 * a mount plan, inside new mount and pid namespaces (and uts, ipc, net when
 * asked), as bubblewrap does:
 *
 *   parent                     child = PID 1 of the new pid namespace
 *   clone3(NEWNS|NEWPID|..) -> make every mount private (nothing propagates
 *                              back to the host)
 *                              tmpfs staging root, pivot_root into it: the
 *                              host's root is now /oldroot
 *                              apply the plan onto /newroot, sources under
 *                              /oldroot (mount_plan_apply's host_prefix)
 *                              pivot_root into /newroot, detach the old root
 *                              sethostname, fork the main child:
 *                                  exec argv (or call the callback)
 *                              reap every process until the main child exits,
 *                              forwarding SIGTERM/SIGINT/SIGHUP to it; then
 *                              SIGKILL everything left in the namespace,
 *                              reap until ECHILD, exit with the main status
 *   waits (pidfd), forwards
 *   SIGTERM/SIGINT/SIGHUP to
 *   PID 1, enforces the timeout
 *   (SIGKILL of PID 1 kills the
 *   whole namespace)
 *
 * When the namespace's PID 1 exits the kernel kills whatever is left and
 * every mount of the namespace goes with it: the host's mount table is the
 * same before and after, even when the command leaves a daemon behind, times
 * out, or setup fails halfway.
 *
 * Exit status: the command's own; 128+N when it was killed by signal N;
 * SANDBOX_EXIT_TIMEOUT (124) on timeout; 127 when argv[0] cannot be
 * executed (reported as an error too, see sandbox_run).
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mountplan.h"

#define SANDBOX_EXIT_TIMEOUT 124
#define SANDBOX_EXIT_EXEC    127

enum {
        SANDBOX_UTS = 1 << 0, /* new uts namespace (hostname) */
        SANDBOX_IPC = 1 << 1, /* new ipc namespace */
        SANDBOX_NET = 1 << 2, /* new net namespace: only a loopback, brought up */
};

struct sandbox_config {
        unsigned flags; /* SANDBOX_*; new mount and pid namespaces always */
        /* The root: applied onto an empty tmpfs (so a plan without an op on
         * "/" gets a tmpfs root). NULL: keep the host's root (only the
         * namespaces are new; mounts made inside stay inside). */
        const struct mount_plan *plan;
        const char *hostname; /* needs SANDBOX_UTS; NULL: unchanged */

        /* What runs: argv (PATH is searched inside the new root) or, when
         * argv is NULL, callback(userdata) whose return value is the exit
         * status (0..255). Both run as pid 2 of the namespace. */
        char *const *argv;
        char *const *envp; /* NULL: the caller's environment */
        int (*callback)(void *userdata);
        void *userdata;
        const char *cwd; /* inside the new root; NULL: "/" */

        /* Installed as fd 0, 1, 2 of the command; 0 (the default) for any
         * of them means inherit. Use them to capture a log through a pipe. */
        int stdin_fd, stdout_fd, stderr_fd;

        uint64_t timeout_usec; /* 0: none; else SIGKILL of the namespace, 124 */

        /* fds of the caller that every process of the sandbox closes before
         * it does anything else (even those that never exec, which
         * O_CLOEXEC does not cover): a lock the caller holds then dies with
         * the caller, not with the last process of the sandbox. */
        const int *close_fds;
        size_t n_close_fds;

        /* When not NULL: set to the last signal forwarded to the command (0
         * if none), so a caller can tell "the user interrupted it" from a
         * command that failed. */
        int *ret_forwarded_signal;

        /* Called in the caller once the namespace's init runs, with its pid
         * (as the caller sees it), e.g. to record it. May be NULL. */
        void (*started)(pid_t init_pid, void *userdata);
        /* Called in the namespace's init after the command exited and
         * every other process of the namespace was killed and reaped, in
         * the new root, before the init exits (e.g. to unmount in order and
         * report how it went). Not called on timeout (the init is killed).
         * May be NULL. */
        void (*teardown)(void *userdata);
        /* Called in the caller (from sandbox_run) once the namespace is down
         * to its init: the command exited, what it left was killed and
         * reaped (and teardown ran). What the command wrote is all written
         * then, while the init's exit still takes the namespace's mounts
         * down (for an overlay, the kernel frees a dentry and an inode per
         * path it looked at); the caller can read it in the meantime. The
         * timeout no longer counts from then. Not called when the init dies
         * before (timeout, setup failure, a signal). May be NULL. */
        void (*emptied)(void *userdata);
};

/*
 * Runs the sandbox described by c and waits for it. While it waits,
 * SIGTERM, SIGINT and SIGHUP sent to the caller are forwarded to the
 * command (the caller's signal mask is restored on return). The mask is
 * the calling thread's: other threads of the caller must block them too,
 * or the kernel may deliver them there.
 *
 * Returns 0 with *ret_status set (see the exit status above) once the
 * command ran, whatever its status. Returns -errno when the sandbox could
 * not be set up or the command could not be executed; then *ret_error (may
 * be NULL; caller frees) says which step and path failed, without the
 * cause, for log_error_errno(r, "cannot %s: %m", error), e.g.
 *   "mount overlay on '/' (step 1 of 12)"  or  "execute 'foo'".
 */
int sandbox_run(const struct sandbox_config *c, int *ret_status, char **ret_error);

/*
 * The in-place half, for a process that already is where the machine runs
 * (overlayfs-init as the real PID 1, or a child in its own namespaces):
 * makes every mount private, builds the root from plan through a tmpfs
 * staging root, pivots into it and detaches the old root. cwd is "/"
 * afterwards. On failure the process is left in a partially built mount
 * namespace: only call it where that namespace dies with the caller, or
 * where the caller is PID 1 and gives up. ret_error as for sandbox_run.
 */
int sandbox_enter_root(const struct mount_plan *plan, char **ret_error);

/*
 * PID 1's duty, for a process that is the init of its pid namespace (or of
 * the machine): reaps every child until main_pid exits, forwarding SIGTERM,
 * SIGINT and SIGHUP to main_pid; then sends SIGKILL to every process left
 * (kill(-1)), reaps them, and returns main_pid's exit status (128+N for a
 * signal). The caller must have blocked SIGCHLD, SIGTERM, SIGINT and SIGHUP
 * before forking main_pid (so no signal is lost) and the child unblocks
 * them (sandbox_spawn does both). Returns the status or -errno.
 */
int sandbox_reap(pid_t main_pid);

/*
 * Starts argv (PATH searched) with envp (NULL: environ) in cwd (NULL:
 * unchanged), blocking SIGCHLD/SIGTERM/SIGINT/SIGHUP in the caller (for
 * sandbox_reap) and giving the child an empty mask and default handlers.
 * Returns the child's pid, or -errno when it cannot be executed (-ENOENT,
 * -EACCES...), in which case no child is left and, when err_fd >= 0, the
 * errno is also written to err_fd as an int.
 */
pid_t sandbox_spawn(char *const *argv, char *const *envp, const char *cwd, int err_fd);
