/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * JSON files over jansson. Load errors carry the file, line and column:
 *
 *     json_error_t e;
 *     r = json_load_at(AT_FDCWD, path, &j, &e);
 *     if (r < 0)
 *             return log_error_errno(r, "%s", json_error_string(&e));
 *
 * renders "'/data/x.json' line 3 column 7: unexpected newline" (or the
 * errno's text for a file that cannot be read).
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Loads the JSON document at path into *ret (a new reference). Returns 0,
 * -errno when the file cannot be read, -EBADMSG when it does not parse; e
 * (may be NULL) says where and why in both cases. */
int json_load_at(int dirfd, const char *path, json_t **ret, json_error_t *e);

/* Parses a buffer the same way; name is used in messages. */
int json_load_buffer(const char *name, const char *data, size_t len, json_t **ret, json_error_t *e);

/* Saves j at path atomically (write_file_atomic_at), indented, with a final
 * newline. */
int json_save_at(int dirfd, const char *path, const json_t *j, mode_t mode);

/* "'PATH' line L column C: TEXT", or "'PATH': TEXT" when there is no
 * position. Points into e or a static buffer: use it before the next call. */
const char *json_error_string(const json_error_t *e);

/* Typed getters: 0 on success, -ENOENT if key is absent, -EBADMSG if the
 * value has the wrong type. Strings point into the object. */
int json_get_string(const json_t *o, const char *key, const char **ret);
int json_get_int(const json_t *o, const char *key, int64_t *ret);
int json_get_bool(const json_t *o, const char *key, bool *ret);
