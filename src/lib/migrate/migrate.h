/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The migration engine behind system-migrate (specs/migrate.md): applies
 * migrations as overlay layers of a data dir (layerstore.h), under the
 * lock, in a sandbox built from the machine's root mount plan; lists,
 * diffs, rolls back, squashes, verifies and collects them.
 *
 * Every function returns 0 or -errno; *ret_error (may be NULL; the caller
 * frees) then holds a complete message naming what failed, on which path,
 * without the errno text ("cannot mount overlay on '/' (step 1 of 9)") so
 * the caller logs it once with ": %m". Special errors:
 *   -EWOULDBLOCK  another process holds the lock (the message names it), or
 *                 a machine of the data dir runs (MACHINE_LOCK) and the
 *                 command would move or remove layer dirs (rollback, squash,
 *                 gc, auto-squash)
 *   -EPROTO       a migration failed and was rolled back (message says how)
 *   -EINVAL       bad input: a malformed migrations dir, an unknown id
 *   -ENOENT       an id that is not applied / not known
 *   -EMEDIUMTYPE  up over a base other than the one the layers were built
 *                 over (baseid.h), without o.force
 *   -EUCLEAN      the data dir holds committed layers or records that
 *                 metadata.json does not list (missing or older metadata):
 *                 nothing was removed; migrate_rebuild can rebuild it
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "auditlog.h"
#include "changes.h"
#include "cleanup.h"
#include "clock.h"
#include "layerstore.h"
#include "migration.h"

#define MIGRATE_LOCK      "system/lock/migrate.lock"
#define MIGRATE_LAYERS    "system/layers"
#define MIGRATE_RECORDS   "system/migrations"
#define MIGRATE_MOUNT_DIR "/run/strata-migration"
/* Lower dirs an overlay can stack, minus the base. */
#define MIGRATE_MAX_LAYERS 499

enum migrate_event_type {
        MIGRATE_EVENT_APPLYING,    /* id starts */
        MIGRATE_EVENT_APPLIED,     /* id committed: duration_ms, changes */
        MIGRATE_EVENT_FAILED,      /* id failed and was rolled back: detail */
        MIGRATE_EVENT_WOULD_APPLY, /* dry run */
        MIGRATE_EVENT_SQUASHED,    /* detail: the new layer's id */
        MIGRATE_EVENT_REPAIRED,    /* detail: what verify repaired */
        MIGRATE_EVENT_PROBLEM,     /* detail: what verify cannot repair */
        MIGRATE_EVENT_NOTICE,      /* detail: something the user should know (seeded state) */
};

struct migrate_event {
        enum migrate_event_type type;
        const char *id;
        const char *detail;
        int64_t duration_ms;
        const unsigned *changes;       /* [4]: A, M, D, R */
        const unsigned *state_changes; /* APPLIED: [4] changes to existing state, or NULL */
        unsigned index, total;         /* up: this migration is the index-th (1-based) of total to
                                        * apply in this run; 0 outside up */
};

struct migrate_options {
        const char *data_dir;       /* absolute; created when missing */
        const char *base;           /* absolute; NULL: "/" */
        const char *migrations_dir; /* NULL: "./migrations" */
        uint64_t timeout_usec;      /* per migration; 0: none */
        size_t max_layers;          /* auto-squash threshold; 0: MIGRATE_MAX_LAYERS */
        int output_fd;              /* the scripts' output is copied here; -1: log only */
        struct clock_source *clock; /* NULL: the real clock */
        void (*event)(const struct migrate_event *e, void *userdata);
        void *userdata;
        bool no_repair;           /* migrate_open with lock: do not repair (for migrate_rebuild) */
        bool restore_state;       /* migrate_rollback: put back the state the migrations changed */
        const char *base_id;      /* up: the base's id instead of the computed one (baseid.h) */
        bool force;               /* up: apply over a base other than the recorded one */
        bool out_of_order;        /* up: apply pending migrations older than the newest applied */
        bool audit;               /* up: attribute each change to its program (audit.list) */
        const char *audit_config; /* up --audit: auditd's config dir when it must be started */
};

struct migrate;

/* Opens the data dir of o (creating its layout). With lock, takes the
 * migrate lock (-EWOULDBLOCK when busy) and repairs what an interrupted
 * run left (as migrate_verify). */
int migrate_open(const struct migrate_options *o, bool lock, struct migrate **ret,
                 char **ret_error);
struct migrate *migrate_free(struct migrate *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct migrate *, migrate_free)

/* Applies the pending migrations in id order, up to and including to
 * (NULL: all), one layer each, stopping at the first failure (-EPROTO). A
 * dry run only reports what would run. Returns how many ran (or would). */
int migrate_up(struct migrate *m, const char *to, bool dry_run, char **ret_error);

/* {"applied":[{"id","applied_at","duration_ms","changes":{...},"layer"}],
 *  "pending":[{"id"}],"rolled_back":[{"id"}]}; applied_at is RFC 3339 UTC. */
int migrate_status(struct migrate *m, json_t **ret, char **ret_error);

/* up --audit: the audit.list of each migration (in its record,
 * system/migrations/<id>/audit.list, auditlog.h) of the layer holding id,
 * in order. -EOPNOTSUPP when none of them was applied with --audit. */
int migrate_audit_list(struct migrate *m, const char *id, struct audit_list *ret, char **ret_error);

/* The change list of the layer holding migration id. */
int migrate_diff(struct migrate *m, const char *id, struct change_list *ret, char **ret_error);

/* Deactivates the layers above the one holding to (NULL: the last layer
 * only). Their migrations become pending again; the dirs are kept aside
 * until migrate_gc. With o.restore_state, what they changed in existing
 * state is put back from their records' pre-images where it has not
 * changed since (each entry reported as an event; one not put back is a
 * PROBLEM and its pre-image moves to system/state-kept/<id>/). Returns
 * the number of layers deactivated. */
int migrate_rollback(struct migrate *m, const char *to, char **ret_error);
/* The same down to the empty stack: every layer is deactivated (the base
 * alone is the root again). -ENOENT when nothing is applied. */
int migrate_rollback_all(struct migrate *m, char **ret_error);

/* One migration: its status entry (as in migrate_status) with "status"
 * (applied, pending or rolled back), "squashed_into" for a migration in a
 * squashed layer, and for an applied one "record" (the record dir) and
 * "log" (what the script printed, or null). -ENOENT for an unknown id. */
int migrate_show(struct migrate *m, const char *id, json_t **ret, char **ret_error);

/* Merges the layers holding from .. to (consecutive, active) into one. */
int migrate_squash(struct migrate *m, const char *from, const char *to, char **ret_error);

/* Checks metadata against the layer dirs; with repair, removes leftovers
 * of interrupted runs and finishes interrupted state moves. Reports each
 * finding as an event. Returns the number of problems left unrepaired. */
int migrate_verify(struct migrate *m, bool repair, char **ret_error);

/* verify --content: checks every active layer's fs/ against the manifest
 * written at its commit (manifest.h): each difference (a tampered file,
 * with its path) is a PROBLEM event; a layer without a manifest is a
 * NOTICE. Returns the number of differences. */
int migrate_verify_content(struct migrate *m, char **ret_error);

/* Rebuilds metadata.json from the layer.json of every committed layer dir
 * (id, parent, order: the chain from the layer without a parent), keeping
 * the rolled-back list; -EUCLEAN (message) when the dirs do not form one
 * chain. Reports each layer it writes as a REPAIRED event; with dry_run
 * writes nothing. Open with no_repair. Returns the number of layers. */
int migrate_rebuild(struct migrate *m, bool dry_run, char **ret_error);

/* Deletes rolled-back and squashed-away layer dirs; returns how many. */
int migrate_gc(struct migrate *m, char **ret_error);

/* Scaffolds the next migration for today named label in o's migrations
 * dir (created when missing); *ret_path is its directory. */
int migrate_new(const struct migrate_options *o, const char *label, const char *script,
                char **ret_path, char **ret_error);

/* Creates "<date>-<n>_install_<pkg>" with the base's package manager and
 * applies the pending migrations up to it. */
int migrate_install(struct migrate *m, char *const *packages, char **ret_error);

/* The install_script.sh that installs packages with the package manager
 * found in base (apt-get, apk or dnf); -EOPNOTSUPP when there is none. */
int migrate_install_script(const char *base, char *const *packages, char **ret);

/* Asks the running up or install to stop: async-signal-safe, for a
 * SIGINT/SIGTERM handler. The migration being applied is thrown away (its
 * script, if running, gets the signal from the sandbox) and the call fails
 * with -EINTR. migrate_interrupted() returns the signal, or 0. */
void migrate_interrupt(int sig);
int migrate_interrupted(void);

/* Test hooks, built only with -Dtest_hooks=true (a no-op otherwise): when
 * $STRATA_TEST_KILL_AT equals step, raise SIGKILL; when
 * $STRATA_TEST_STOP_AT does, raise SIGSTOP (the lock stays held). Steps of
 * up: locked prepared ran captured written synced recorded renamed
 * committed finished; squash-renamed; rollback-renamed. */
void migrate_test_kill_point(const char *step);

/* The ids of the active layers, oldest first (NULL-terminated; the
 * strings point into m and live until its next change). */
int migrate_layer_ids(struct migrate *m, char ***ret);

/* One layer to adopt into the store (strata layer import and pull). */
struct migrate_adopt_layer {
        const char *id;
        char *const *migrations;  /* NULL-terminated, at least one */
        const json_t *layer_json; /* written as the layer's layer.json; NULL: made from the rest */
        const char *changes;      /* its changes.list text (may be NULL: none) */
};

struct migrate_adopt {
        const struct migrate_adopt_layer *layers;
        size_t n_layers;
        const char *parent;       /* the active layer the first sits on (NULL: the base) */
        char *const *state_paths; /* merged into metadata's state paths */
        const char *base_json;    /* the base.json text the layers were built over, or NULL */
        const char *origin;       /* where they come from, written into each record */
        /* Fills (dirfd, tree), an empty directory, with layer i's files. */
        int (*fill)(size_t i, int dirfd, const char *tree, void *userdata, char **ret_error);
        void *userdata;
};

/* Adds layers made elsewhere on top of the active stack through the same
 * crash protocol and commit point as up: each is staged in .tmp-<id>
 * (filled, layer.json, changes.list, manifest, records), synced, renamed
 * with its uncommitted markers, and metadata.json gains them all in one
 * commit, so an interruption at any point leaves the stack as it was (what
 * it left, verify removes). -EUCLEAN when parent is not the top of the
 * stack, when a migration is already applied, or when the stack is broken;
 * -EMEDIUMTYPE when the data dir's recorded base is not base_json's
 * (unless o.force). Returns the number of layers added. */
int migrate_adopt(struct migrate *m, const struct migrate_adopt *a, char **ret_error);
