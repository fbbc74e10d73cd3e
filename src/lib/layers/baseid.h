/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The identity of the base a data dir's layers were built over, recorded
 * at the first `up` in <data>/system/base.json:
 *
 *   { "id": "debian-12-3f2a...", "os_release": "Debian GNU/Linux 12 (bookworm)",
 *     "digest": "3f2a..." }
 *
 * The digest is the sha256 of a few files that define the base
 * (etc/os-release or usr/lib/os-release, etc/debian_version,
 * etc/alpine-release, etc/redhat-release, whichever exist); the id is
 * "<ID>-<VERSION_ID>-<first 12 hex of the digest>", or what the user gave
 * (--base-id). Layers are only valid over the base they were built over:
 * a migration or a boot over another base is refused unless forced.
 */

#include <stdbool.h>

#define BASE_ID_FILE "system/base.json"

struct base_identity {
        char *id;
        char *os_release; /* PRETTY_NAME, or "unknown" */
        char *digest;     /* hex */
};

void base_identity_done(struct base_identity *b);

/* Computes the identity of the base root at base_fd; id_override (may be
 * NULL) replaces the computed id. */
int base_identity_compute(int base_fd, const char *id_override, struct base_identity *ret);

/* Loads the recorded identity of the data dir; -ENOENT when none. */
int base_identity_load(int data_fd, struct base_identity *ret);

/* Records b in the data dir (atomically). */
int base_identity_save(int data_fd, const struct base_identity *b);

/*
 * Checks that the base at base_fd is the one recorded in the data dir:
 * 0 when it is (or nothing is recorded yet), -EMEDIUMTYPE when it is not,
 * with *ret_error saying which base the layers were built over and which
 * one this is. With id_override, the ids are compared instead of digests.
 */
int base_identity_check(int data_fd, int base_fd, const char *id_override, char **ret_error);
