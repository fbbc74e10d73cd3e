/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>

#include "cleanup.h"
#include "fhandle.h"
#include "fs.h"
#include "macro.h"

void fhandle_key_mac(const struct fhandle_key *key, const void *data, size_t len, uint8_t ret[32])
{
        struct hmac_sha256_ctx ctx;

        hmac_sha256_set_key(&ctx, sizeof(key->key), key->key);
        hmac_sha256_update(&ctx, len, data);
        hmac_sha256_digest(&ctx, SHA256_DIGEST_SIZE, ret);
}

int fhandle_key_check(const struct stat *st)
{
        if (!S_ISREG(st->st_mode) || st->st_uid != geteuid() || (st->st_mode & 077))
                return -EPERM;
        return 0;
}

int fhandle_key_load(int dirfd, const char *name, struct fhandle_key *ret)
{
        _cleanup_close_ int fd = -1;
        struct fhandle_key k;
        uint8_t data[sizeof(k.key) + 1];
        struct stat st;
        size_t len = 0;
        int r;

        /* Not following a symlink: the key is this file or nothing. */
        fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd >= 0) {
                if (fstat(fd, &st) < 0)
                        return negative_errno();
                r = fhandle_key_check(&st);
                if (r < 0)
                        return r;
                while (len < sizeof(data)) {
                        ssize_t n = read(fd, data + len, sizeof(data) - len);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0)
                                return negative_errno();
                        if (n == 0)
                                break;
                        len += (size_t)n;
                }
                if (len != sizeof(k.key))
                        return -EBADMSG;
                memcpy(k.key, data, sizeof(k.key));
                *ret = k;
                return 0;
        }
        if (errno == ELOOP)
                return -EPERM;
        if (errno != ENOENT)
                return negative_errno();

        if (getrandom(k.key, sizeof(k.key), 0) != (ssize_t)sizeof(k.key))
                return -EIO;
        r = write_file_atomic_at(dirfd, name, k.key, sizeof(k.key), 0600);
        if (r < 0)
                return r;
        *ret = k;
        return 0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
        p[0] = v >> 24;
        p[1] = v >> 16;
        p[2] = v >> 8;
        p[3] = v;
}

static uint32_t get_be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int fhandle_encode(const struct fhandle_key *key, const struct fhandle *h, uint8_t out[FHANDLE_MAX])
{
        uint8_t mac[32];
        size_t n;

        if (h->len > FHANDLE_KERNEL_MAX)
                return -EOVERFLOW;
        out[0] = 1;
        out[1] = h->len;
        put_be32(out + 2, h->export_id);
        put_be32(out + 6, (uint32_t)h->type);
        memcpy(out + FHANDLE_HEADER, h->bytes, h->len);
        n = FHANDLE_HEADER + h->len;
        fhandle_key_mac(key, out, n, mac);
        memcpy(out + n, mac, FHANDLE_MAC_SIZE);
        return (int)(n + FHANDLE_MAC_SIZE);
}

int fhandle_decode(const struct fhandle_key *key, const void *data, size_t len, struct fhandle *ret)
{
        const uint8_t *p = data;
        uint8_t mac[32];
        size_t n;

        if (len < FHANDLE_HEADER + FHANDLE_MAC_SIZE || len > FHANDLE_MAX)
                return -EBADMSG;
        if (p[0] != 1 || p[1] > FHANDLE_KERNEL_MAX)
                return -EBADMSG;
        n = FHANDLE_HEADER + p[1];
        if (len != n + FHANDLE_MAC_SIZE)
                return -EBADMSG;
        fhandle_key_mac(key, p, n, mac);
        /* Constant time, so the MAC cannot be guessed byte by byte. */
        if (!memeql_sec(mac, p + n, FHANDLE_MAC_SIZE))
                return -EBADMSG;

        ret->export_id = get_be32(p + 2);
        ret->type = (int32_t)get_be32(p + 6);
        ret->len = p[1];
        memcpy(ret->bytes, p + FHANDLE_HEADER, p[1]);
        return 0;
}
