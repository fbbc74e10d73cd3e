/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Running and watching the QEMU process of a lab guest.
 *
 *     r = vm_spawn(argv, log, -1, true, &pid);        // qemu runs
 *     struct vm_watch w = { .pid = pid, .console = ".../console.log", ... };
 *     ev = vm_watch_run(&w, VM_WAIT_EXIT, deadline, &stop);
 *     ...
 *     vm_kill(pid);                                  // on every error path
 *
 * The guest's serial console and its stdout/stderr ports are plain files
 * QEMU appends to; the watcher polls them (50 ms), copies the ports to the
 * host's fds as they grow and looks for the ready marker on the console.
 */

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Microseconds on CLOCK_MONOTONIC. */
int64_t vm_now_usec(void);

/* A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0). */
int vm_free_port(uint16_t *ret);

/* Whether a TCP port on 127.0.0.1 can be bound now. */
bool vm_port_free(uint16_t port);

/* Starts argv with stdin from /dev/null and stdout+stderr appended to
 * log (NULL: inherited). keep_fd (>= 0) stays open across exec (a lock
 * the process then holds as long as it lives). die_with_parent: SIGKILL
 * when the caller dies. 0 or -errno; on success *ret_pid is the child. */
int vm_spawn(char *const *argv, const char *log, int keep_fd, bool die_with_parent, pid_t *ret_pid);

/* SIGKILLs pid and, when it is our child, reaps it. Ignores ESRCH. */
void vm_kill(pid_t pid);

/* Waits up to timeout_ms for a non-child process to disappear. true when
 * it did. */
bool vm_pid_wait_gone(pid_t pid, int64_t timeout_ms);

enum vm_wait_for {
        VM_WAIT_EXIT,  /* until QEMU exits */
        VM_WAIT_READY, /* until the ready marker is on the console (or QEMU exits) */
};

enum vm_event {
        VM_EVENT_EXITED,      /* w->status holds QEMU's exit status */
        VM_EVENT_READY,       /* the marker was printed */
        VM_EVENT_TIMEOUT,     /* the deadline passed */
        VM_EVENT_INTERRUPTED, /* *stop became non-zero */
        VM_EVENT_RESULT,      /* the result port holds a status (w->result) */
};

struct vm_watch {
        pid_t pid;           /* our child (VM_WAIT_EXIT) or any process */
        bool child;          /* pid is our child: waitpid() it */
        const char *console; /* file QEMU writes the serial console to */
        const char *out;     /* the stdout port's file, copied to out_fd */
        const char *err;     /* the stderr port's file, copied to err_fd */
        int out_fd, err_fd;  /* -1: not copied */
        /* with VM_WAIT_EXIT: the result port's file; once it holds a status
         * line the wait ends (VM_EVENT_RESULT), the ports copied: the guest
         * writes its command's output before its status. NULL: until
         * QEMU exits. */
        const char *result;
        /* state */
        off_t out_off, err_off, console_off;
        int status; /* QEMU's exit status (128+N for a signal) */
};

/* Watches until what happens, the deadline (vm_now_usec() value; 0: none)
 * passes, or *stop (may be NULL) becomes non-zero. Returns a vm_event or
 * -errno. */
int vm_watch_run(struct vm_watch *w, enum vm_wait_for what, int64_t deadline_usec,
                 volatile sig_atomic_t *stop);

/* Reads a whole file (at most max bytes from its end when it is longer).
 * *ret is NUL-terminated. 0 or -errno. */
int vm_read_tail(const char *path, size_t max, char **ret, size_t *ret_len);

/* Sends one command ("system_powerdown", "quit") through the QMP socket
 * at path, waiting at most timeout_ms for its answer. 0, -errno, or
 * -EPROTO when QEMU answers with an error. */
int vm_qmp_execute(const char *path, const char *command, int64_t timeout_ms);
