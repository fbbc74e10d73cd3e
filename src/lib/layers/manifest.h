/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A layer's manifest: what its fs/ held when it was committed, so that
 * `verify --content` can tell a tampered or damaged layer (the way
 * `ostree fsck` checks its objects). One line per entry, sorted by path:
 *
 *   TYPE MODE UID GID SIZE SHA256 PATH
 *
 * TYPE one of f d l c b p s; MODE octal (permission and set-id bits);
 * SIZE in bytes (0 for dirs and nodes); SHA256 of a file's content or of a
 * symlink's target, "-" otherwise; PATH absolute as seen in the machine
 * (a newline or backslash written as "\n" or "\\"). The xattrs are not
 * listed.
 */

#include <sys/stat.h>

#define MANIFEST_FILE "manifest"

/* Writes the manifest of the tree (dirfd, tree) to (out_fd, out), without
 * an fsync (the caller syncs the layer once). */
int manifest_write_at(int dirfd, const char *tree, int out_fd, const char *out);

/* A manifest being built entry by entry (by a walk that visits the tree
 * anyway: changes_capture_visit_at), then saved. */
struct manifest;

struct manifest *manifest_new(void);
struct manifest *manifest_free(struct manifest *mf);
static inline void manifest_freep(struct manifest **mf)
{
        *mf = manifest_free(*mf);
}

/* Adds the entry name of the open dir dirfd, at path (absolute, as in the
 * machine) with its lstat st; userdata is the struct manifest. Reads a
 * regular file to hash it. */
int manifest_add_at(int dirfd, const char *name, const char *path, const struct stat *st,
                    void *userdata);
/* manifest_add_at as a changes_visit_fn: a regular file is hashed from fd
 * (opened by the walk) when it is not -1. */
int manifest_visit(int dirfd, const char *name, int fd, const char *path, const struct stat *st,
                   void *userdata);

/* Drops path and everything below it (a subtree moved out of the tree
 * after it was visited). */
int manifest_drop(struct manifest *mf, const char *path);

/* Replaces path and everything below it with what (dirfd, rel) holds now
 * (nothing when it is gone): a subtree that changed after it was visited. */
int manifest_rescan_at(struct manifest *mf, int dirfd, const char *rel, const char *path);

/* Writes the entries, sorted by path, to (out_fd, out), without an fsync. */
int manifest_save_at(struct manifest *mf, int out_fd, const char *out);

/* Compares the tree with the manifest (mfd, manifest): calls report once
 * for each difference (path, and what differs: "is missing", "was added",
 * "changed content (sha256 differs)", "changed mode", ...). Returns the number of
 * differences, -ENOENT without a manifest. */
int manifest_verify_at(int dirfd, const char *tree, int mfd, const char *manifest,
                       void (*report)(const char *path, const char *what, void *userdata),
                       void *userdata);
