/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The layer store of a data dir (see specs/overview.md):
 *
 *   <data>/state/                       mutable state, never in a layer
 *   <data>/system/layers/<dir>/         fs/ (overlay upper content), layer.json,
 *                                       changes.list
 *   <data>/system/migrations/<id>/      applied migration records
 *   <data>/system/migrations/metadata.json   the commit point
 *   <data>/system/upper/, work/         scratch writable layer of the machine
 *   <data>/system/lock/migrate.lock
 *
 * metadata.json (written only through layer_metadata_save, atomically):
 *
 *   { "version": 1,
 *     "layers": [ { "id": "20260206-001_add_pg", "dir": "20260206-001_add_pg",
 *                   "migrations": ["20260206-001_add_pg"],
 *                   "applied_at": 1795300000000000, "duration_ms": 41,
 *                   "changes": { "A": 3, "M": 1, "D": 0, "R": 0 } }, ... ],
 *     "state_paths": [ "/var/lib/pg" ],
 *     "rolled_back": [ "20260207-001_x" ] }
 *
 * "layers" lists the active layers oldest first; "dir" names the directory
 * under system/layers/ (a squashed layer holds several migrations).
 * "state_paths" are bound from <data>/state/<path> over <path> at boot.
 * "rolled_back" names migrations that were rolled back (pending again).
 */

#include <stddef.h>
#include <stdint.h>

#define LAYERSTORE_METADATA "system/migrations/metadata.json"

struct layer_entry {
        char *id;
        char *dir;
        char **migrations;  /* NULL-terminated */
        int64_t applied_at; /* usec since the epoch */
        int64_t duration_ms;
        unsigned changes[4]; /* A, M, D, R */
};

struct layer_metadata {
        struct layer_entry *layers; /* active, oldest first */
        size_t n_layers;
        char **state_paths; /* NULL-terminated, may be NULL */
        char **rolled_back; /* NULL-terminated, may be NULL */
};

/* Creates the directories of the layout under the data dir (state/,
 * system/{layers,migrations,upper,work,lock}); existing ones are kept. */
int layerstore_ensure_layout(int data_fd);

/* Loads metadata.json of the data dir. A missing file is an empty store
 * (0); a malformed one is -EBADMSG, with a message naming the file, the
 * line and the cause logged at debug level and copied to *ret_error when
 * ret_error is not NULL (caller frees). */
int layer_metadata_load(int data_fd, struct layer_metadata *ret, char **ret_error);

/* Writes metadata.json atomically (temp + fsync + rename + fsync of the
 * dir): the commit point of every change to the store. */
int layer_metadata_save(int data_fd, const struct layer_metadata *m);

void layer_metadata_done(struct layer_metadata *m);

/* Returns the lower dirs of the active layers, newest first, as absolute
 * paths "<data_dir>/system/layers/<dir>/fs", followed by base when base is
 * not NULL. NULL-terminated, owned by the caller (strv_free). */
int layer_metadata_lowerdirs(const struct layer_metadata *m, const char *data_dir, const char *base,
                             char ***ret);

/* Finds the active layer holding migration id; returns its index or
 * -ENOENT. */
int layer_metadata_find_migration(const struct layer_metadata *m, const char *id);
