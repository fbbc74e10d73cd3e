/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Exclusive locks on a file with flock(). The holder writes who it is (pid,
 * purpose, since) into the lock file for humans and for the "busy" message;
 * flock itself is the truth, so a lock left by a dead process never blocks.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct lock_holder {
        pid_t pid;
        char purpose[256];
        int64_t since; /* seconds since the epoch */
        /* The recorded holder is dead: what holds the lock is a process it
         * left behind (a child that inherited the lock's file). */
        bool gone;
};

enum {
        LOCK_NONBLOCK = 1 << 0, /* fail with -EWOULDBLOCK instead of waiting */
};

/* How long a LOCK_NONBLOCK caller waits when the recorded holder is dead. */
#define LOCK_GONE_HOLDER_WAIT_MSEC 2000

/* Creates (if needed) and locks path. On success *ret_fd is the lock; close
 * it (or lock_release) to release. Busy with LOCK_NONBLOCK: -EWOULDBLOCK,
 * and *ret_holder (may be NULL) is filled from the file when readable;
 * when the recorded holder is dead, the lock is retried for up to
 * LOCK_GONE_HOLDER_WAIT_MSEC first (whatever it left is exiting too) and
 * ret_holder->gone is set if it stays busy. */
int lock_acquire_at(int dirfd, const char *path, const char *purpose, unsigned flags, int *ret_fd,
                    struct lock_holder *ret_holder);

/* Clears the holder info and releases the lock. Returns -1 for fd = ...; */
int lock_release(int fd);

/* Reads the holder info written in path. -ENODATA if there is none. */
int lock_read_holder_at(int dirfd, const char *path, struct lock_holder *ret);
