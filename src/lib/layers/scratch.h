/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The machine's scratch upper (<data>/system/upper): the writable layer a
 * running machine writes its runtime edits to, above every layer. What it
 * holds hides the layers' versions of the same paths, a later migration's
 * included: `up` lists the paths of a new layer that the scratch upper
 * overrides, and `status` says how many paths it holds.
 */

#include <stddef.h>
#include <stdint.h>

#include "changes.h"

#define SCRATCH_UPPER "system/upper"

/* The number of entries (files, dirs, links, whiteouts) below the upper
 * dir (dirfd, upper); 0 when it is missing. */
int scratch_count_at(int dirfd, const char *upper, uint64_t *ret);

/*
 * Which of a layer's changes l (sorted, as captured; state changes are
 * skipped) the scratch upper (dirfd, upper) overrides: a path where it
 * holds a non-directory, a whiteout or an opaque dir (which hides that
 * path and everything below it), or a plain directory over a layer entry
 * that is not one (layer_fd, layer: the layer's fs/, for that check).
 * Returns the number of such paths; the first max of them, sorted, in
 * *ret (NULL when none).
 */
int scratch_overrides_at(int dirfd, const char *upper, int layer_fd, const char *layer,
                         const struct change_list *l, size_t max, char ***ret);
