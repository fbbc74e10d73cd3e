/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * SHA-256 (FIPS 180-4), for the script digests recorded in layer.json.
 */

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32
#define SHA256_HEX_SIZE    (SHA256_DIGEST_SIZE * 2 + 1)

struct sha256_ctx {
        uint32_t h[8];
        uint64_t length; /* bytes hashed so far */
        uint8_t buf[64];
        size_t buf_len;
};

void sha256_init(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *data, size_t len);
void sha256_final(struct sha256_ctx *c, uint8_t ret[SHA256_DIGEST_SIZE]);

/* Digest of a buffer as lowercase hex (NUL-terminated). */
void sha256_hex(const void *data, size_t len, char ret[SHA256_HEX_SIZE]);

/* Digest of what fd reads up to its end, as lowercase hex. size (the
 * file's st_size, or -1 when unknown) lets a regular file shorter than the
 * buffer be read in one call (a short read past size is its end; the file
 * must not grow meanwhile). 0 or -errno. */
int sha256_fd_hex(int fd, int64_t size, char ret[SHA256_HEX_SIZE]);

/* Digest of the file at (dirfd, path) as lowercase hex. 0 or -errno. */
int sha256_file_hex_at(int dirfd, const char *path, char ret[SHA256_HEX_SIZE]);
