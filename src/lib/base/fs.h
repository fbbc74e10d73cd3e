/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Filesystem helpers. Every function takes a (dirfd, path) pair the way
 * openat() does: an absolute path ignores dirfd; AT_FDCWD means the cwd.
 * All return 0 (or a count) on success and -errno on failure.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Creates path and its missing parents with mode (existing dirs are fine,
 * an existing non-directory is -ENOTDIR). */
int mkdir_p_at(int dirfd, const char *path, mode_t mode);

/* Creates the parents of path (not path itself). */
int mkdir_parents_at(int dirfd, const char *path, mode_t mode);

/* Writes data to path atomically: a temp file in the same dir, fsync,
 * rename over path, fsync of the dir. Readers see the old or the new
 * content, never a mix, even across a crash. Where the filesystem has
 * O_TMPFILE the temp file has no name while it is written, so a killed
 * writer leaves nothing partial behind; one killed between naming the
 * finished temp file (".#<name>.<random>") and the rename leaves that file,
 * holding the whole new content. */
int write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode);

/* Reads a whole regular file (at most max bytes, -EFBIG beyond). *ret is
 * NUL-terminated and owned by the caller; *ret_len may be NULL. */
int read_file_at(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len);

/* The names in the open directory dirfd ("." and ".." left out), in
 * strcmp order, NULL-terminated (NULL for an empty dir); dirfd's offset
 * is not moved. */
int dir_list_fd(int dirfd, char ***ret);

/* fsync()s the directory at path. */
int fsync_dir_at(int dirfd, const char *path);

enum {
        RM_ROOT = 1 << 0,      /* remove path itself, not only its contents */
        RM_MISSING_OK = 1 << 1 /* a missing path is success */
};

/* Removes the tree at path. Never descends into another mount (a directory
 * on a different mount is left alone and reported as -EXDEV at the end,
 * after everything else is removed); never follows symlinks. */
int rm_rf_at(int dirfd, const char *path, unsigned flags);

enum {
        COPY_XATTRS = 1 << 0,    /* copy every xattr, trusted.* included */
        COPY_OWNERS = 1 << 1,    /* chown to the source's uid/gid */
        COPY_MERGE = 1 << 2,     /* dst may exist: merge into it, replacing files */
        COPY_SAME_MOUNT = 1 << 3 /* do not descend into mounts below src */
};
#define COPY_ALL (COPY_XATTRS | COPY_OWNERS)

/* Copies the tree at src to dst preserving modes, owners, times (atime and
 * mtime, nanoseconds), symlinks (not followed), hardlinks within the tree,
 * device nodes (including overlay whiteouts, char 0/0), fifos, sockets
 * and xattrs. dst must not exist unless COPY_MERGE. */
int copy_tree_at(int src_dirfd, const char *src, int dst_dirfd, const char *dst, unsigned flags);

/* Copies every xattr (trusted.* included, which needs CAP_SYS_ADMIN) of the
 * object open at fd_src to the one at fd_dst, through /proc/self/fd (so
 * /proc must be mounted; copy_tree_at needs it for xattrs too). */
int copy_xattrs_fd(int fd_src, int fd_dst);

/* Creates a directory under $TMPDIR (or /tmp) named prefix-XXXXXX and
 * returns its path, owned by the caller. */
int mkdtemp_malloc(const char *prefix, char **ret);
