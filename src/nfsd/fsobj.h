/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A file object a request works on: the export it lies in, the client entry
 * that allows the caller, and an O_PATH fd obtained from an authenticated
 * handle (open_by_handle_at) or from a lookup relative to such an fd. Names
 * are never resolved from the root of the filesystem, and symlinks are
 * never followed on the client's behalf.
 */

#include <stdint.h>
#include <sys/stat.h>

#include "cred.h"
#include "export.h"
#include "server.h"

struct fsobj {
        const struct export *export;
        const struct export_client *client;
        int fd; /* O_PATH | O_NOFOLLOW */
        struct stat st;
        struct fhandle handle; /* the kernel handle it was opened from */
        int depth;             /* of a directory below the export root; -1 otherwise */
        bool cached;           /* fd is borrowed from the export's directory cache */
};

#define AUTH_SYS_FLAVOR 1
#define STRLEN_PROC_FD  32

#define FSOBJ_NULL ((struct fsobj){.fd = -1, .depth = -1})

/* Directories deeper than this below an export root are not served
 * (NFS3ERR_STALE), and MKDIR and RENAME do not make them. */
#define FSOBJ_DEPTH_MAX 8192

/* Resolves a wire handle. Returns 0, -EBADMSG (malformed or forged),
 * -ESTALE (unknown export, or the file is gone), -EACCES (the caller's
 * address is not allowed by the export). */
int fsobj_from_handle(struct nfsd_call *c, const void *data, size_t len, struct fsobj *ret);

/* The handle of the object fd (in export e). Returns its length or -errno
 * (-EXDEV when fd lies on another mount than the export). */
int fsobj_handle_of_fd(struct nfsd_call *c, const struct export *e, int fd,
                       uint8_t out[FHANDLE_MAX]);

/* Same for the entry `name` of the directory dirfd, without following a
 * symlink. */
int fsobj_handle_at(struct nfsd_call *c, const struct export *e, int dirfd, const char *name,
                    uint8_t out[FHANDLE_MAX]);

/* Whether o is the root directory of its export. */
bool fsobj_is_export_root(const struct fsobj *o);

/* The credentials a request of client entry cl runs with (squashing
 * applied). */
void fsobj_cred(const struct nfsd_call *c, const struct export_client *cl, struct cred *ret);

/* Opens o for IO (O_RDONLY, O_WRONLY...) through /proc/self/fd, so the
 * calling thread's credentials are checked. Returns an fd or -errno. */
int fsobj_reopen(const struct fsobj *o, int flags);

/* Opens o for IO from its handle, as the calling thread, which must have
 * filesystem uid 0 (root passes the permission checks a reopen through
 * /proc would make, at the cost of a path walk). Returns an fd or -errno. */
int fsobj_reopen_root(const struct fsobj *o, int flags);

void fsobj_done(struct fsobj *o);
