/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Which directories of an export are known to lie below its root, and at
 * what depth: the verdicts of earlier ".." walks (fsobj.c), keyed by kernel
 * handle, so resolving a directory handle costs the same at any depth.
 *
 * The cache stays exact through a fanotify mark on the export's file
 * system: every directory moved on it is reported (FAN_MOVE_SELF |
 * FAN_ONDIR), and the events are read before any verdict is used, so a
 * move that returned before a request arrived is always seen. A cached
 * directory that moved empties the cache; the ancestors of every cached
 * directory are cached too (a chain is inserted whole, and a full cache is
 * emptied rather than trimmed), so a move of an uncached directory changes
 * no cached verdict. Any move while a walk runs keeps that walk's chain out
 * of the cache. Handles carry the inode generation, so a removed
 * directory's entry never matches a new one.
 *
 * Without fanotify (no CAP_SYS_ADMIN, a file system that cannot report
 * handles), ancestry_new() fails and every resolve walks.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fhandle.h"

struct ancestry;

/* A cache for the export rooted at path, marking the file system path is
 * on. Returns 0 or -errno (fanotify unavailable, -ENOMEM). */
int ancestry_new(const char *path, struct ancestry **ret);
struct ancestry *ancestry_free(struct ancestry *a);

/* Reads pending events, then looks up h (only type, len and bytes count).
 * Returns its depth below the export root, or -ENOENT. *ret_epoch gets
 * the epoch a walk that starts now passes to ancestry_put(). */
int ancestry_get(struct ancestry *a, const struct fhandle *h, uint64_t *ret_epoch);

/* Looks up h without reading events first: a hit is a verdict only once
 * ancestry_current() confirms nothing moved since the epoch. */
int ancestry_peek(struct ancestry *a, const struct fhandle *h);

/* Reads pending events; whether no directory moved since epoch. */
bool ancestry_current(struct ancestry *a, uint64_t epoch);

/* Records a walked chain: chain[0] is a directory at depth depth0,
 * chain[i] its ancestor at depth0 - i, chain[n-1]'s parent the export
 * root or a directory cached at depth depth0 - n. Nothing is recorded when
 * a directory moved since epoch. */
void ancestry_put(struct ancestry *a, uint64_t epoch, const struct fhandle *chain, size_t n,
                  unsigned depth0);
