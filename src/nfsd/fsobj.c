/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ancestry.h"
#include "cleanup.h"
#include "fsobj.h"
#include "log.h"
#include "macro.h"

struct kernel_handle {
        struct file_handle fh;
        unsigned char buf[MAX_HANDLE_SZ];
};

/* A parent directory found by a walk: its handle and an O_PATH fd. */
static int parent_of(const struct export *e, int fd, struct fhandle *ret_h, struct stat *ret_st)
{
        struct kernel_handle kh;
        int mount_id, n;

        kh.fh.handle_bytes = MAX_HANDLE_SZ;
        if (name_to_handle_at(fd, "..", &kh.fh, &mount_id, 0) < 0)
                return negative_errno();
        /* Above the root of the export's mount: another file system. */
        if (mount_id != e->mount_id || kh.fh.handle_bytes > FHANDLE_KERNEL_MAX)
                return -ESTALE;
        *ret_h = (struct fhandle){.type = kh.fh.handle_type, .len = (uint8_t)kh.fh.handle_bytes};
        memcpy(ret_h->bytes, kh.fh.f_handle, ret_h->len);
        n = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (n < 0)
                return negative_errno();
        if (fstat(n, ret_st) < 0) {
                safe_close(n);
                return -ESTALE;
        }
        return n;
}

/* The walk of dir_depth(): up from fd until the export root or, with
 * caching, a directory the cache knows. */
static int walk(const struct export *e, int fd, const struct stat *st, const struct fhandle *h,
                bool caching)
{
        _cleanup_free_ struct fhandle *chain = NULL;
        _cleanup_close_ int owned = -1;
        size_t n_chain = 0, max_chain = 0;
        struct stat prev = *st;
        struct fhandle ph = {}; /* the parent found last */
        uint64_t epoch = 0;
        int cur = fd, r;

        if (caching) {
                r = ancestry_get(e->ancestry, h, &epoch);
                if (r >= 0)
                        return r;
        }
        for (unsigned depth = 1;; depth++) {
                struct stat up;
                int known;

                if (depth > FSOBJ_DEPTH_MAX)
                        return -ESTALE;
                if (caching) {
                        /* The chain so far, from the directory up. */
                        if (n_chain == max_chain) {
                                size_t m = MAX(max_chain * 2, (size_t)64);
                                struct fhandle *c = realloc(chain, m * sizeof(*c));
                                if (!c)
                                        caching = false;
                                else {
                                        chain = c;
                                        max_chain = m;
                                }
                        }
                        if (caching)
                                chain[n_chain++] = depth == 1 ? *h : ph;
                }
                r = parent_of(e, cur, &ph, &up);
                if (r < 0)
                        return -ESTALE;
                safe_close(owned);
                cur = owned = r;
                if (up.st_dev != e->dev || (up.st_ino == prev.st_ino && up.st_dev == prev.st_dev))
                        return -ESTALE; /* another mount, or the file system's root */
                if (up.st_ino == e->ino) {
                        if (caching)
                                ancestry_put(e->ancestry, epoch, chain, n_chain, depth);
                        return (int)depth;
                }
                known = caching ? ancestry_peek(e->ancestry, &ph) : -ENOENT;
                if (known >= 0) {
                        /* A verdict only if nothing moved during the walk;
                         * else walk again, all the way up. */
                        if (!ancestry_current(e->ancestry, epoch))
                                return walk(e, fd, st, h, false);
                        if (depth + (unsigned)known > FSOBJ_DEPTH_MAX)
                                return -ESTALE;
                        ancestry_put(e->ancestry, epoch, chain, n_chain, depth + (unsigned)known);
                        return (int)depth + known;
                }
                prev = up;
        }
}

/* The depth of the directory fd (handle h, stat st) below the root of
 * export e, or -ESTALE when its ".." chain does not reach the root: a
 * directory moved out of the export on the server (its handle stays valid
 * for the kernel), on another mount, or more than FSOBJ_DEPTH_MAX levels
 * down. The export's ancestry cache answers for the directories seen
 * before; a walk goes up only to the first one it knows, and records what
 * it found (ancestry.h). */
static int dir_depth(const struct export *e, int fd, const struct stat *st, const struct fhandle *h)
{
        if (st->st_dev == e->dev && st->st_ino == e->ino)
                return 0;
        return walk(e, fd, st, h, e->ancestry);
}

/* /proc/self/fd, opened once: a readlink relative to it skips the walk
 * of "/proc/self" (about 2 of the 5 us a readlink of the full path takes).
 * The fd table it shows is the process's, the same for every thread. -1
 * when it cannot be opened (the full path is used then). */
static int proc_fd_dir = -1;
static pthread_once_t proc_fd_once = PTHREAD_ONCE_INIT;

static void proc_fd_open(void)
{
        proc_fd_dir = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
}

/* readlink() of /proc/self/fd/fd. */
static ssize_t readlink_fd(int fd, char *buf, size_t size)
{
        char proc[STRLEN_PROC_FD];

        pthread_once(&proc_fd_once, proc_fd_open);
        if (proc_fd_dir >= 0) {
                snprintf(proc, sizeof(proc), "%d", fd);
                return readlinkat(proc_fd_dir, proc, buf, size);
        }
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        return readlink(proc, buf, size);
}

/* Whether the non-directory fd lies in export e. A file has no ".." to
 * walk, but the kernel may know a path of it: inside the export, or one
 * outside that really names it (then the handle was not ours to give,
 * whoever computed its MAC). A file the dentry cache knows no name of yet
 * cannot be placed and is let through, as the kernel's nfsd does with
 * no_subtree_check. */
static bool file_in_export(const struct export *e, int fd, const struct stat *st)
{
        char path[PATH_MAX];
        size_t l = strlen(e->canon);
        struct stat at;
        ssize_t n;

        if (e->whole_fs)
                return true;
        n = readlink_fd(fd, path, sizeof(path) - 1);
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
        int fd, r, depth = -1;

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
                    (depth = dir_depth(e, fd, &st, &h)) < 0) {
                        export_dircache_put(e, fd, true);
                        return -ESTALE;
                }
                *ret = (struct fsobj){.export = e,
                                      .client = cl,
                                      .fd = fd,
                                      .st = st,
                                      .handle = h,
                                      .depth = depth,
                                      .cached = true};
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
            (S_ISDIR(st.st_mode) ? (depth = dir_depth(e, fd, &st, &h)) < 0
                                 : !file_in_export(e, fd, &st))) {
                safe_close(fd);
                return -ESTALE;
        }
        *ret = (struct fsobj){
            .export = e, .client = cl, .fd = fd, .st = st, .handle = h, .depth = depth};
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
        /* (uid_t)-1 is no id the kernel accepts (setfsuid() and setgroups()
         * refuse it): such a caller is the anonymous user. */
        if (ret->uid == (uid_t)-1)
                ret->uid = cl->anonuid;
        if (ret->gid == (gid_t)-1)
                ret->gid = cl->anongid;
        for (unsigned i = 0; i < ret->n_groups; i++)
                if (ret->groups[i] == (gid_t)-1)
                        ret->groups[i] = cl->anongid;
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
