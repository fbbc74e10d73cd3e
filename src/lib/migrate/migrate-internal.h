/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What the files of the migration engine share (not installed, not for the
 * front-ends): struct migrate and the helpers every command uses. One file
 * per command: migrate.c (open and the shared helpers), migrate-up.c
 * (apply, in named steps), migrate-verify.c (verify, repair, gc),
 * migrate-squash.c, migrate-rollback.c, migrate-status.c (status, diff),
 * migrate-new.c (new, install).
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "audit.h"
#include "layerstore.h"
#include "migrate.h"
#include "migration.h"

#define SCRIPT_MAX    (16 * 1024 * 1024)
#define CHANGES_MAX   (512 * 1024 * 1024)
#define OLD_PREFIX    ".old-"
#define TMP_PREFIX    ".tmp-"
#define PENDING_STATE "state-pending"
/* The marker of a layer dir or record that the crash protocol made and no
 * metadata commit has adopted yet: only such dirs (and .tmp-*) are ever
 * removed as leftovers. */
#define UNCOMMITTED "uncommitted"
/* up --audit: the rules' key prefix, the record's list, and the pid and
 * start time of an auditd up started (removed when up stops it). */
#define MIGRATE_AUDIT_PREFIX "strata-"
#define MIGRATE_AUDIT_LIST   "audit.list"
#define MIGRATE_AUDIT_DAEMON "system/audit-daemon"

struct migrate {
        struct migrate_options o;
        char *data_dir;
        char *base;
        char *migrations_dir;
        int data_fd;
        int layers_fd;
        int records_fd;
        int lock_fd;
        int machine_lock_fd; /* held by commands that move or remove layer dirs */
        bool no_failed_log;  /* install: a failed migration keeps no failed-*.log */
        struct layer_metadata md;
        struct clock_source *clock;
        unsigned problems;             /* what the repair in migrate_open could not repair */
        unsigned run_index, run_total; /* up: the migration being applied (1-based), of how many */
        struct audit_daemon *audit;    /* up --audit: the daemon used (started or found) */
};

/* Calls the caller's event hook, if any. */
void migrate_emit(struct migrate *m, enum migrate_event_type type, const char *id,
                  const char *detail, int64_t duration_ms, const unsigned *changes);

/* A deep copy of m, so a change is made on the copy and only becomes real
 * when it is saved. */
int migrate_metadata_copy(const struct layer_metadata *m, struct layer_metadata *ret);
void migrate_layer_entry_free(struct layer_entry *e);
/* Removes every copy of s from the NULL-terminated list l (in place). */
void migrate_strv_remove(char **l, const char *s);
bool migrate_is_applied(const struct layer_metadata *md, const char *id);

/* Saves md as the new truth (the commit point) and adopts it (md is
 * emptied). */
int migrate_commit(struct migrate *m, struct layer_metadata *md, char **ret_error);

/* openat(O_DIRECTORY): the fd or -errno. */
int migrate_open_dir_at(int dirfd, const char *path);

/* Takes the machine lock (MACHINE_LOCK) for what, a command that moves or
 * removes layer dirs: -EWOULDBLOCK with a message naming the running
 * machine while one of the data dir runs (its live root mounts them). */
int migrate_lock_machine(struct migrate *m, const char *what, char **ret_error);

/* Names what runs now in the lock file, for the "busy" message. */
void migrate_lock_describe(struct migrate *m, const char *what);

/* Loads m's migrations dir; -ENOENT when it does not exist, -EINVAL when
 * it is malformed (the message says where). */
int migrate_load_migrations(struct migrate *m, struct migration_set *ret, char **ret_error);

/* A layer dir name never used before in this store: id, or id~N. */
int migrate_layer_dir_name(struct migrate *m, const char *id, char **ret);

/* RFC 3339 UTC of a CLOCK_REALTIME usec value. */
void migrate_format_time(int64_t usec, char buf[64]);

/* The lower dirs of a part of the stack, open. */
struct migrate_lowers {
        char **paths;
        int *fds;
        size_t n;
};
void migrate_lowers_done(struct migrate_lowers *l);
/* Opens the lower dirs of layers [0, below) (newest first) and the base. */
int migrate_lowers_open(struct migrate *m, size_t below, struct migrate_lowers *ret,
                        char **ret_error);

/* Writes a file inside a .tmp-* dir, without an fsync of its own. */
int migrate_write_plain_at(int dirfd, const char *path, const char *data, size_t len, mode_t mode);

/* Writes changes.list and layer.json into the layer dir dir_fd. */
int migrate_write_layer_files(struct migrate *m, int dir_fd, const char *id, const char *parent,
                              char *const *migrations, const char *script_sha256,
                              const struct change_list *changes, char *const *services,
                              char *const *state_paths, char **ret_error);

/* After the commit point: moves the layer's state-pending/ to <data>/state
 * and writes the service markers. Idempotent, so verify can finish it. */
int migrate_finish_layer(struct migrate *m, const struct layer_entry *e, char **ret_error);

/* Whether the layer dir (in system/layers) or the record of id (in
 * system/migrations) carries the UNCOMMITTED marker. */
bool migrate_layer_uncommitted(struct migrate *m, const char *dir);
bool migrate_record_uncommitted(struct migrate *m, const char *id);
/* The state paths the layer's layer.json declares (NULL when none). */
int migrate_layer_state_paths(struct migrate *m, const struct layer_entry *e, char ***ret);

/* Writes the UNCOMMITTED marker into (dirfd, dir), no fsync. */
int migrate_write_uncommitted(int dirfd, const char *dir);

/* Renames the dirs of active layers [from, end) to OLD_PREFIX<dir> and
 * syncs the layers dir, before a squash or rollback commits. */
int migrate_move_layers_aside(struct migrate *m, size_t from, size_t end, char **ret_error);

/* Merges active layers [from, to] into one (migrate-squash.c). */
int migrate_squash_range(struct migrate *m, size_t from, size_t to, char **ret_error);
/* Squashes the oldest layers when one more would not fit the stack. */
int migrate_auto_squash(struct migrate *m, char **ret_error);

/* migrate-state.c: a migration's changes to existing state. */
/* Writes the state.list line of the state change c (M D R; nothing for
 * A) to f; upper (in dirfd) holds the new content of an M. */
void migrate_state_list_line(FILE *f, const struct change *c, int dirfd, const char *upper);
/* After the commit: applies the state.list of the record of id to
 * <data>/state (sfd) from the layer's state-pending (pfd), keeping the
 * pre-images in the record's state-before/. Idempotent. */
int migrate_state_apply(struct migrate *m, const char *id, int sfd, int pfd, char **ret_error);
/* rollback --state: puts the pre-images of id back, newest change first,
 * where the state has not changed since (else the pre-image moves to
 * system/state-kept/<id>/ and a PROBLEM event says so). Returns how many
 * entries were put back. */
int migrate_state_restore(struct migrate *m, const char *id, char **ret_error);
/* Seeds a newly declared state path from the layers below: when
 * <data>/state<path> is missing or empty and the stack lower_fds (newest
 * first, base last) shows a directory at path, (dst_fd, dst) becomes that
 * directory's merged content (modes, owners, xattrs kept; whiteouts and
 * overlay marks dropped). Returns 1 when it seeded something, else 0. */
int migrate_state_seed(struct migrate *m, const int *lower_fds, size_t n_lowers, const char *path,
                       int dst_fd, const char *dst, char **ret_error);

/* migrate-audit.c: up --audit. Finds or starts auditd (recording one it
 * starts in MIGRATE_AUDIT_DAEMON); migrate_audit_stop stops it again. */
int migrate_audit_start(struct migrate *m, char **ret_error);
void migrate_audit_stop(struct migrate *m);
/* The rules of one migration's session, keyed MIGRATE_AUDIT_PREFIX<id>. */
int migrate_audit_begin(struct migrate *m, const char *id, struct audit_session *ret,
                        char **ret_error);
/* Ends the session and writes record/audit.list into the layer's tmp dir
 * tfd: the events of every process of the session but ours (this process
 * and the sandbox's init), paths under state_paths marked as state; names
 * relative to a directory fd are placed through the inodes of the trees
 * the sandbox's root was made of (upper, the layers, the base). */
int migrate_audit_finish(struct migrate *m, struct audit_session *s, pid_t init_pid,
                         char *const *state_paths, const char *upper, int tfd, const char *tmp_abs,
                         char **ret_error);
/* verify's repair: rules of runs that are gone, and an auditd such a run
 * started (REPAIRED events). */
int migrate_audit_repair(struct migrate *m);
