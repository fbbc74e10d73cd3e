/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Merging consecutive overlay upper dirs into one, so that
 * overlay(merged, below...) shows exactly what overlay(newer, ..., older,
 * below...) shows: content, modes, owners, times, xattrs, symlinks and
 * deletions.
 */

/* Copies the upper dir (src_fd, src) to the new directory (dst_fd, dst):
 * the start of a merge (the oldest layer). */
int squash_start_at(int src_fd, const char *src, int dst_fd, const char *dst);

/*
 * Applies the upper dir of a newer layer (src_fd, src) onto the merge of
 * the layers below it (dst_fd, dst):
 *   - a whiteout replaces whatever the merge has at its path (and stays a
 *     whiteout, for the layers below the merged range);
 *   - an opaque dir replaces the merge's entry wholesale;
 *   - a plain dir over a merged dir merges recursively and then takes the
 *     newer dir's mode, owner, xattrs and times; over a non-dir it
 *     replaces it and becomes opaque (the non-dir hid what was below);
 *   - anything else replaces the merge's entry.
 * Whiteouts in the xattr form become char device 0/0 whiteouts.
 */
int squash_apply_at(int src_fd, const char *src, int dst_fd, const char *dst);
