/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * NFS file handles: a kernel file handle (name_to_handle_at) plus the id of
 * the export it belongs to, authenticated with HMAC-SHA256 under a
 * per-server secret. A handle survives a server restart (same secret, same
 * kernel handle) and cannot be forged or altered without the secret.
 *
 * Layout (at most NFS3_FHSIZE = 64 bytes):
 *   [0]      format version (1)
 *   [1]      length L of the kernel handle bytes (at most FHANDLE_KERNEL_MAX)
 *   [2..5]   export id, big endian
 *   [6..9]   kernel handle type, big endian
 *   [10..]   L bytes of kernel handle
 *   then     FHANDLE_MAC_SIZE bytes: HMAC-SHA256 of everything before, truncated
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define FHANDLE_MAX        64
#define FHANDLE_KEY_SIZE   32
#define FHANDLE_MAC_SIZE   16
#define FHANDLE_HEADER     10
#define FHANDLE_KERNEL_MAX (FHANDLE_MAX - FHANDLE_HEADER - FHANDLE_MAC_SIZE)

struct fhandle_key {
        uint8_t key[FHANDLE_KEY_SIZE];
};

/* A decoded handle: which export, and the kernel handle to open. */
struct fhandle {
        uint32_t export_id;
        int32_t type;
        uint8_t len;
        uint8_t bytes[FHANDLE_KERNEL_MAX];
};

/* Loads the secret from `name` in the directory dirfd, creating it (random,
 * mode 0600, written atomically) when missing. A file of the wrong size is
 * -EBADMSG (it is never silently replaced: that would invalidate every handle
 * clients hold); one that fhandle_key_check() refuses, or a symlink, -EPERM. */
int fhandle_key_load(int dirfd, const char *name, struct fhandle_key *ret);

/* Whether st may be a key file: a regular file owned by the effective uid,
 * with no permission for group or others. 0 or -EPERM. */
int fhandle_key_check(const struct stat *st);

/* HMAC-SHA256 of data under the key, all 32 bytes. */
void fhandle_key_mac(const struct fhandle_key *key, const void *data, size_t len, uint8_t ret[32]);

/* Serializes h into out (FHANDLE_MAX bytes); returns the length used or
 * -EOVERFLOW when the kernel handle is too long to fit. */
int fhandle_encode(const struct fhandle_key *key, const struct fhandle *h,
                   uint8_t out[FHANDLE_MAX]);

/* Parses and authenticates a handle from the wire. Returns 0, or -EBADMSG
 * for a malformed handle or one whose MAC does not match. */
int fhandle_decode(const struct fhandle_key *key, const void *data, size_t len,
                   struct fhandle *ret);
