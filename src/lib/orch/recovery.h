/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Crash recovery. The manager keeps a PID file while it runs and a snapshot
 * of which managed containers were running. At start, a PID file whose
 * process is gone means the manager crashed: the snapshot's containers are
 * restarted in tier order, skipping the ones the user stopped.
 *
 *   manager.pid:   "PID STARTTIME\n" (STARTTIME from /proc/PID/stat, so a
 *                  reused PID is not mistaken for the manager)
 *   snapshot.json: { "version": 1, "taken_usec": ...,
 *                    "running": [ { "name": "db", "tier": "database" } ] }
 */

#include <stdbool.h>

#include "clock.h"
#include "nameset.h"
#include "podman.h"

struct snapshot_entry {
        char *name;
        int tier;
};

struct snapshot {
        struct snapshot_entry *entries;
        size_t n;
        usec_t taken_at;
};

void snapshot_done(struct snapshot *s);
/* The managed, running containers of l. */
int snapshot_from_containers(const struct container_list *l, usec_t now, struct snapshot *ret);
int snapshot_save_at(int dirfd, const char *path, const struct snapshot *s);
/* Like tracker_load_at(): missing is empty; a corrupt file is moved aside
 * (*ret_aside) and replaced by an empty snapshot. */
int snapshot_load_at(int dirfd, const char *path, usec_t now, struct snapshot *ret,
                     char **ret_aside);

struct recovery_step {
        char *name;
        int tier;
        bool skip;
        const char *reason; /* static */
        int error;          /* set by whoever carries the plan out: 0 or -errno */
};

struct recovery_plan {
        struct recovery_step *steps;
        size_t n;
};

void recovery_plan_done(struct recovery_plan *p);
/* Pure: the snapshot's containers in tier order (stable within a tier),
 * the user-stopped ones marked skip. */
int recovery_plan(const struct snapshot *s, const struct nameset *user_stopped,
                  struct recovery_plan *ret);

/* Reads the PID file: 1 if it names a process that is gone (a crash), 0 if
 * there is none, -EBUSY if it names a live manager (*ret_pid then set, may
 * be NULL). A PID file that cannot be parsed counts as a crash. */
int recovery_pidfile_check_at(int dirfd, const char *path, pid_t *ret_pid);
/* Writes the PID file for pid (atomically). */
int recovery_pidfile_write_at(int dirfd, const char *path, pid_t pid);
/* Removes the PID file (a clean shutdown); missing is fine. */
int recovery_pidfile_remove_at(int dirfd, const char *path);
