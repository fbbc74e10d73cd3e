/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Worker slots: ROOT/slots/N/worker.json is the marker of slot N. A running
 * worker holds a POSIX record lock (fcntl F_SETLK) on it and writes who it
 * is into it (its pid, the pid of the worker's init and that init's start
 * time, when it started, the plan). A marker whose lock nobody holds was
 * left by a strata that was killed; `worker clean` finds slots only through
 * markers, never by guessing from paths.
 *
 *     {"strata-worker": 1, "slot": 3, "pid": 812, "init": 815,
 *      "init-start": 123456, "started": 1764640000, "plan": "(default)"}
 *
 * A POSIX lock, not flock(): it belongs to the strata process alone, so the
 * worker's init (a forked child) does not keep it after strata is killed.
 * Within one process the slots it holds are kept in a table, so that it
 * never locks one twice nor opens and closes one's marker (which would drop
 * the lock); they show as in use and clean leaves them alone.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cleanup.h"

#define WORKER_SLOT_MAX 1024

struct worker_slot {
        int slot;
        int fd; /* the marker, locked */
        char *dir;
        char *marker;
        char *free_dir; /* ROOT/free-slots/N, where it goes when released */
        char *plan;
        int64_t started;
};

/* Takes slot (or, with slot < 0, the lowest free one) under root, creating
 * ROOT/slots/N (or renaming ROOT/free-slots/N back), and writes the marker.
 * -EBUSY when that slot is in use (or all are), -EINVAL for a slot out of
 * range. */
int worker_slot_acquire(const char *root, int slot, const char *plan, struct worker_slot **ret);

/* Records the pid of the worker's init (and its start time) in the marker. */
int worker_slot_set_init(struct worker_slot *s, pid_t init);

/* Renames the slot dir to ROOT/free-slots/N (while still holding the
 * marker's lock), or where that cannot be done removes the marker, then
 * the slot dir when empty; frees s. Accepts NULL, returns NULL. */
struct worker_slot *worker_slot_release(struct worker_slot *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct worker_slot *, worker_slot_release)

struct worker_slot_info {
        int slot;
        bool in_use;        /* its lock is held: a live strata runs it */
        bool valid;         /* the marker parses */
        pid_t pid;          /* the strata that holds it */
        pid_t init;         /* the worker's init; 0: not started yet */
        bool init_alive;    /* that pid runs and has the recorded start time */
        unsigned mounts;    /* in the worker's mount namespace (init alive) */
        unsigned processes; /* in the worker's pid namespace (init alive) */
        int64_t started;
        char *plan;
        char *dir;
};

/* The slots that have a marker under root, by slot number. A root that
 * does not exist has none. */
int worker_slots_list(const char *root, struct worker_slot_info **ret, size_t *ret_n);
void worker_slot_infos_free(struct worker_slot_info *l, size_t n);

enum {
        WORKER_CLEAN_ALL = 1 << 0, /* also slots in use: their worker is killed */
};

struct worker_clean_result {
        bool skipped_in_use;          /* in use and not WORKER_CLEAN_ALL: left alone */
        bool killed;                  /* its init was alive and was killed */
        unsigned unmounted, detached; /* host mounts found under the slot dir */
};

/* Cleans slot `slot` under root: waits for (or, with WORKER_CLEAN_ALL,
 * kills) its worker, unmounts anything still mounted under its dir, removes
 * the marker and the dir when empty. -ENOENT when it has no marker. */
int worker_slot_clean(const char *root, int slot, unsigned flags, struct worker_clean_result *ret);

/* The start time of pid (/proc/PID/stat field 22, clock ticks), or -errno
 * (-ESRCH for a zombie too). */
int64_t worker_proc_start_time(pid_t pid);
