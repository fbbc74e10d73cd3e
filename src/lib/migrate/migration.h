/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Migrations on disk, the source of every layer:
 *
 *   migrations/
 *     20260206-001_add_postgresql/     id: ^[0-9]{8}-[0-9]{3}_[a-z0-9_]+$
 *       install_script.sh              required
 *       state                          optional: absolute paths, one a line
 *       services/<name>/               optional: s6 service directories
 *
 * Order is the id's lexical order. A directory whose name is not an id (or
 * whose date is not one), that lacks install_script.sh, or that shares its
 * date and number with another is an error naming it; plain files (a
 * README) and entries starting with '.' (.git, .vscode) are ignored.
 */

#include <stdbool.h>
#include <stddef.h>

#define MIGRATION_SCRIPT     "install_script.sh"
#define MIGRATION_ID_PATTERN "^[0-9]{8}-[0-9]{3}_[a-z0-9_]+$"
/* The longest label: the longest name strata derives from an id
 * (".tmp-<id>", ".old-<id>") stays far under NAME_MAX, and the layer paths
 * an overlay is given (<data>/system/layers/.tmp-<id>/work) under the 256
 * bytes the kernel takes for one mount option (fsconfig) with a data dir of
 * up to 70 characters. `install` labels are cut to this length. */
#define MIGRATION_LABEL_MAX 120

struct migration {
        char *id;
        char *path;      /* the migration's directory */
        char **state;    /* normalized absolute paths from its state file, or NULL */
        char **services; /* names of its services/ subdirs, sorted, or NULL */
};

struct migration_set {
        struct migration *items; /* sorted by id */
        size_t n;
};

/* Whether id matches MIGRATION_ID_PATTERN and its first 8 digits are a
 * date of the calendar (YYYYMMDD: month 01-12, a day the month has). */
bool migration_id_valid(const char *id);
/* Whether the first 8 characters of date are a calendar date YYYYMMDD. */
bool migration_date_valid(const char *date);
/* Whether label is a valid id suffix ([a-z0-9_]+, 1 to MIGRATION_LABEL_MAX). */
bool migration_label_valid(const char *label);
/* Whether name is a valid service name (what s6 accepts as a directory
 * name under a scan dir: no '/', not starting with '.', at most 255). */
bool migration_service_name_valid(const char *name);

/* Loads the migration in directory path (its basename is the id). Errors:
 * -EINVAL with a message naming the directory or file in *ret_error. */
int migration_load_at(int dirfd, const char *path, struct migration *ret, char **ret_error);
void migration_done(struct migration *m);

/* Loads every migration in dir, sorted, skipping dot-entries. -EINVAL
 * with *ret_error naming the offending entry (both, for two migrations with
 * one YYYYMMDD-NNN); -errno if dir cannot be read. */
int migration_set_load_at(int dirfd, const char *dir, struct migration_set *ret, char **ret_error);
void migration_set_done(struct migration_set *s);
/* Index of id in s, or -ENOENT. */
int migration_set_find(const struct migration_set *s, const char *id);

/* Next id for date (YYYYMMDD) and label: NNN is one more than the highest
 * one used on that date among the directory names in ids (NULL-terminated,
 * may be NULL). -EINVAL for a bad label or date, -ERANGE past 999. */
int migration_next_id(char *const *ids, const char *date, const char *label, char **ret);

/* Validates the s6 service directory at (dirfd, path): a plain s6 service
 * (s6-svscan runs them; s6-rc's oneshots, bundles, `up` and `contents` are
 * refused), an executable `run`, known file names only, a `log/` subdir
 * validated the same way. -EINVAL with *ret_error naming the file. */
int migration_service_validate_at(int dirfd, const char *path, char **ret_error);
