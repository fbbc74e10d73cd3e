/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The entries of an export's directories recently created or looked up:
 * (directory handle, name) -> the wire handle of what the name named and
 * an O_PATH fd of it. A client that creates a file looks it up right after,
 * and path walks look up the same directories again and again; a hit
 * answers LOOKUP with one statx() of the name instead of an open, a
 * name_to_handle_at(), a stat and a close.
 *
 * A hit is a verdict only when the name, stat()ed now (not following a
 * symlink, as the caller, so with the same search permission checks as an
 * open), still names the cached object on the export's mount: same device,
 * inode number and mount id. The cached fd keeps the object alive, so its
 * inode number cannot have gone to another object meanwhile. The
 * attributes a hit returns are those of that statx().
 *
 * Held fds keep removed objects allocated: an entry is dropped when
 * REMOVE, RMDIR or RENAME names it (childcache_forget()), and closed once
 * unused for CHILDCACHE_IDLE_MS (childcache_expire(), from the transport's
 * tick). Names longer than CHILDCACHE_NAME_MAX are not cached.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "fhandle.h"

#define CHILDCACHE_SIZE     32
#define CHILDCACHE_NAME_MAX 63
#define CHILDCACHE_IDLE_MS  2000

struct childcache;

/* A new, empty cache; NULL when out of memory. */
struct childcache *childcache_new(void);
/* Closes every fd; accepts NULL, returns NULL. */
struct childcache *childcache_free(struct childcache *c);

/* The entry name of the directory dirfd (whose handle is dir), looked up
 * through the cache: on a hit (see above) returns the length of the wire
 * handle copied to ret_handle and fills *ret_st; 0 on a miss (not cached,
 * or no longer the same object: the entry is dropped). Nothing is opened
 * on a miss: the caller looks the name up as usual. */
int childcache_lookup(struct childcache *c, const struct fhandle *dir, int dirfd, const char *name,
                      int mount_id, uint8_t ret_handle[FHANDLE_MAX], struct stat *ret_st);

/* Records that name in dir is the object fd (O_PATH, stat st) with wire
 * handle handle[len]. Takes over fd in every case (closed when it cannot
 * be kept). */
void childcache_add(struct childcache *c, const struct fhandle *dir, const char *name, int fd,
                    const struct stat *st, const uint8_t *handle, size_t len);

/* Drops the entry of name in dir, if any (its fd closed once unused). */
void childcache_forget(struct childcache *c, const struct fhandle *dir, const char *name);

/* Closes the entries unused for more than idle_ms. */
void childcache_expire(struct childcache *c, int64_t idle_ms);
