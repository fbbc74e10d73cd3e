/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A strata layer's fs/ as an OCI image layer tar and back (the mapping is
 * ocimap.h's), through libarchive: POSIX pax format, uncompressed, so the
 * digest of the tar is also the layer's diff id.
 */

#include <stdint.h>

#include "sha256.h"

struct oci_blob_info {
        char digest[7 + SHA256_HEX_SIZE]; /* "sha256:<hex>" */
        uint64_t size;
};

/* Writes the tree (dirfd, tree) as a layer tar to out_fd and returns its
 * digest and size. -EINVAL (message in *ret_error, naming the path) for a
 * file the format cannot carry: a name starting with ".wh.", a socket.
 * The xattrs of every entry are carried, a symlink's own included (not
 * those of its target). */
int oci_tar_write_at(int dirfd, const char *tree, int out_fd, struct oci_blob_info *ret,
                     char **ret_error);

/* Unpacks the layer tar read from in_fd (uncompressed or gzip) into the
 * directory (dirfd, tree), which must exist and be empty: ".wh.NAME"
 * becomes a whiteout (char 0/0), ".wh..wh..opq" makes its directory
 * opaque (trusted.overlay.opaque "y"); owners, modes, times, xattrs
 * (a symlink's own too), symlinks and hard links are kept. Every byte read is hashed: when
 * expected_digest is not NULL and differs, -EBADMSG with *ret_error naming
 * both digests (the caller throws the tree away). Entries leaving the tree
 * ("..", links through symlinks) are -EINVAL. The tree is not synced. */
int oci_tar_extract_at(int in_fd, int dirfd, const char *tree, const char *expected_digest,
                       struct oci_blob_info *ret, char **ret_error);
