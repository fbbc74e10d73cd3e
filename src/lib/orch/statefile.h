/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * JSON state files that must survive crashes and bad input: written
 * atomically (json_save_at: temp file, fsync, rename), and when one does not
 * parse (or has the wrong shape) it is moved aside as
 * "<path>.corrupt-<unix seconds>" for a human to look at, never silently
 * overwritten.
 */

#include <jansson.h>

#include "clock.h"

/* Loads path into *ret. Returns 0, -ENOENT when it does not exist, or
 * -EBADMSG when it does not parse, after moving it aside: *ret_aside is then
 * the new path (owned by the caller). Other read errors are -errno and the
 * file is left alone. */
int statefile_load_at(int dirfd, const char *path, usec_t now, json_t **ret, char **ret_aside);

/* Loads the state file path into obj, which the caller passes empty:
 * from_json fills it from the document (-EBADMSG when the document has
 * the wrong shape; obj is left empty on failure). A missing file leaves
 * obj empty. One that does not parse or has the wrong shape is moved aside
 * (*ret_aside, may be NULL, gets the new path) and replaced by the empty
 * obj, which save_clean saves (and may change first). Returns 0, or the
 * -errno of a read, a move or the save; obj is then empty. */
int statefile_load_typed_at(int dirfd, const char *path, usec_t now,
                            int (*from_json)(const json_t *j, void *obj),
                            int (*save_clean)(int dirfd, const char *path, usec_t now, void *obj),
                            void *obj, char **ret_aside);

/* Moves path aside as path.corrupt-<seconds>[-N]; *ret_aside (may be NULL)
 * is the new path. */
int statefile_set_aside_at(int dirfd, const char *path, usec_t now, char **ret_aside);

/* Saves j atomically with mode 0644. */
int statefile_save_at(int dirfd, const char *path, const json_t *j);
