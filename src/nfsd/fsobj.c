/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fsobj.h"
#include "log.h"
#include "macro.h"

struct kernel_handle {
        struct file_handle fh;
        unsigned char buf[MAX_HANDLE_SZ];
};

#define DIR_DEPTH_MAX 4096
#define DOTDOT_STEPS  64 /* levels looked up by path before taking a new fd */

/* Whether the directory fd lies below the root of export e: its ".."
 * chain reaches the root. A directory that was moved out of the export on
 * the server (its handle stays valid for the kernel) does not. Each level
 * costs one fstatat() of "..", "../.." and so on; every DOTDOT_STEPS levels
 * the walk continues from an fd of the level reached, so the path stays
 * short. */
static bool dir_in_export(const struct export *e, int fd, const struct stat *st)
{
        _cleanup_close_ int owned = -1;
        char path[DOTDOT_STEPS * 3];
        struct stat prev = *st;
        int cur = fd, depth = 0, n;

        for (;;) {
                size_t len = 0;

                for (int k = 0; k < DOTDOT_STEPS; k++) {
                        struct stat up;

                        if (prev.st_dev == e->dev && prev.st_ino == e->ino)
                                return true;
                        if (++depth > DIR_DEPTH_MAX)
                                return false;
                        if (len > 0)
                                path[len++] = '/';
                        memcpy(path + len, "..", 3);
                        len += 2;
                        if (fstatat(cur, path, &up, 0) < 0 || up.st_dev != e->dev ||
                            (up.st_ino == prev.st_ino && up.st_dev == prev.st_dev))
                                return false; /* another mount, or the filesystem root */
                        prev = up;
                }
                n = openat(cur, path, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (n < 0)
                        return false;
                safe_close(owned);
                cur = owned = n;
                if (fstat(cur, &prev) < 0 || prev.st_dev != e->dev)
                        return false;
        }
}

/* Whether the non-directory fd lies in export e. A file has no ".." to
 * walk, but the kernel may know a path of it: inside the export, or one
 * outside that really names it (then the handle was not ours to give,
 * whoever computed its MAC). A file the dentry cache knows no name of yet
 * cannot be placed and is let through, as the kernel's nfsd does with
 * no_subtree_check. */
static bool file_in_export(const struct export *e, int fd, const struct stat *st)
{
        char proc[STRLEN_PROC_FD], path[PATH_MAX];
        size_t l = strlen(e->canon);
        struct stat at;
        ssize_t n;

        if (e->whole_fs)
                return true;
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        n = readlink(proc, path, sizeof(path) - 1);
        if (n < 0)
                return false;
        path[n] = '\0';
        if (strncmp(path, e->canon, l) == 0 && (path[l] == '/' || streq(e->canon, "/")))
                return true;
        return !(path[0] == '/' && fstatat(AT_FDCWD, path, &at, AT_SYMLINK_NOFOLLOW) == 0 &&
                 at.st_dev == st->st_dev && at.st_ino == st->st_ino);
}

int fsobj_from_handle(struct nfsd_call *c, const void *data, size_t len, struct fsobj *ret)
{
        const struct export_client *cl;
        const struct export *e;
        struct kernel_handle kh;
        struct fhandle h;
        struct stat st;
        int fd, r;

        r = fhandle_decode(&c->server->key, data, len, &h);
        if (r < 0)
                return r;
        e = export_table_find_id(c->exports, h.export_id);
        if (!e)
                return -ESTALE;
        r = export_access(e, c->peer, &cl);
        if (r < 0)
                return r;

        fd = export_dircache_get(e, &h);
        if (fd >= 0) {
                /* Checked as if just opened: it may have moved or gone. */
                if (fstat(fd, &st) < 0 || st.st_dev != e->dev || st.st_nlink == 0 ||
                    !dir_in_export(e, fd, &st)) {
                        export_dircache_put(e, fd, true);
                        return -ESTALE;
                }
                *ret = (struct fsobj){
                    .export = e, .client = cl, .fd = fd, .st = st, .handle = h, .cached = true};
                return 0;
        }

        kh.fh.handle_bytes = h.len;
        kh.fh.handle_type = h.type;
        memcpy(kh.fh.f_handle, h.bytes, h.len);
        fd = open_by_handle_at(e->fd, &kh.fh, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                r = negative_errno();
                log_debug_errno(r, "cannot open a handle of export '%s': %m", e->path);
                /* Whatever the kernel says about an authenticated handle it
                 * cannot open, for the client the file is gone. */
                return r == -ENOMEM || r == -EMFILE || r == -ENFILE ? r : -ESTALE;
        }
        /* Removed (but still open somewhere), or a directory outside the
         * export: gone, as far as the client is concerned. */
        if (fstat(fd, &st) < 0 || st.st_dev != e->dev || st.st_nlink == 0 ||
            (S_ISDIR(st.st_mode) ? !dir_in_export(e, fd, &st) : !file_in_export(e, fd, &st))) {
                safe_close(fd);
                return -ESTALE;
        }
        *ret = (struct fsobj){.export = e, .client = cl, .fd = fd, .st = st, .handle = h};
        /* Directories are what the next calls will likely name again. */
        if (S_ISDIR(st.st_mode) && export_dircache_add(e, &h, fd))
                ret->cached = true;
        return 0;
}

static int encode(struct nfsd_call *c, const struct export *e, struct kernel_handle *kh,
                  int mount_id, uint8_t out[FHANDLE_MAX])
{
        struct fhandle h = {};

        if (mount_id != e->mount_id)
                return -EXDEV;
        if (kh->fh.handle_bytes > FHANDLE_KERNEL_MAX)
                return -EOVERFLOW;
        h.export_id = e->id;
        h.type = kh->fh.handle_type;
        h.len = (uint8_t)kh->fh.handle_bytes;
        memcpy(h.bytes, kh->fh.f_handle, h.len);
        return fhandle_encode(&c->server->key, &h, out);
}

int fsobj_handle_of_fd(struct nfsd_call *c, const struct export *e, int fd,
                       uint8_t out[FHANDLE_MAX])
{
        struct kernel_handle kh;
        int mount_id;

        kh.fh.handle_bytes = MAX_HANDLE_SZ;
        if (name_to_handle_at(fd, "", &kh.fh, &mount_id, AT_EMPTY_PATH) < 0)
                return negative_errno();
        return encode(c, e, &kh, mount_id, out);
}

int fsobj_handle_at(struct nfsd_call *c, const struct export *e, int dirfd, const char *name,
                    uint8_t out[FHANDLE_MAX])
{
        struct kernel_handle kh;
        int mount_id;

        kh.fh.handle_bytes = MAX_HANDLE_SZ;
        if (name_to_handle_at(dirfd, name, &kh.fh, &mount_id, 0) < 0)
                return negative_errno();
        return encode(c, e, &kh, mount_id, out);
}

bool fsobj_is_export_root(const struct fsobj *o)
{
        return o->st.st_dev == o->export->dev && o->st.st_ino == o->export->ino;
}

void fsobj_cred(const struct nfsd_call *c, const struct export_client *cl, struct cred *ret)
{
        struct cred anon = {.uid = cl->anonuid, .gid = cl->anongid};

        if (c->flavor != AUTH_SYS_FLAVOR || cl->squash == EXPORT_ALL_SQUASH) {
                *ret = anon;
                peer_clamp_cred(c->who, ret);
                return;
        }
        *ret = c->cred;
        if (cl->squash == EXPORT_ROOT_SQUASH) {
                if (ret->uid == 0)
                        ret->uid = cl->anonuid;
                if (ret->gid == 0)
                        ret->gid = cl->anongid;
                for (unsigned i = 0; i < ret->n_groups; i++)
                        if (ret->groups[i] == 0)
                                ret->groups[i] = cl->anongid;
        }
        peer_clamp_cred(c->who, ret);
}

int fsobj_reopen(const struct fsobj *o, int flags)
{
        char path[STRLEN_PROC_FD];
        int fd;

        snprintf(path, sizeof(path), "/proc/self/fd/%d", o->fd);
        fd = open(path, flags | O_CLOEXEC | O_NOCTTY);
        return fd < 0 ? negative_errno() : fd;
}

int fsobj_reopen_root(const struct fsobj *o, int flags)
{
        struct kernel_handle kh;
        int fd;

        kh.fh.handle_bytes = o->handle.len;
        kh.fh.handle_type = o->handle.type;
        memcpy(kh.fh.f_handle, o->handle.bytes, o->handle.len);
        fd = open_by_handle_at(o->export->fd, &kh.fh, flags | O_CLOEXEC | O_NOCTTY);
        return fd < 0 ? negative_errno() : fd;
}

void fsobj_done(struct fsobj *o)
{
        if (o->cached && o->fd >= 0) {
                export_dircache_put(o->export, o->fd, false);
                o->fd = -1;
                o->cached = false;
                return;
        }
        o->fd = safe_close(o->fd);
}
