/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A persisted set of names, kept sorted: the containers a user stopped
 * (which the health monitor and crash recovery leave alone).
 *
 *   { "version": 1, "names": [ "electrs", "lnd" ] }
 */

#include <stdbool.h>
#include <stddef.h>

#include "clock.h"

struct nameset {
        char **names;
        size_t n;
};

void nameset_done(struct nameset *s);
bool nameset_contains(const struct nameset *s, const char *name);
/* Returns 1 if added, 0 if it was there. */
int nameset_add(struct nameset *s, const char *name);
/* Returns 1 if removed, 0 if it was not there. */
int nameset_remove(struct nameset *s, const char *name);

/* Like tracker_load_at(): missing is empty; a corrupt file is moved aside
 * (*ret_aside) and replaced by an empty set. */
int nameset_load_at(int dirfd, const char *path, usec_t now, struct nameset *ret, char **ret_aside);
int nameset_save_at(int dirfd, const char *path, const struct nameset *s);
