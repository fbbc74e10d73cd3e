/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The 22 procedures of NFS version 3 (RFC 1813). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "childcache.h"
#include "cleanup.h"
#include "fsobj.h"
#include "log.h"
#include "macro.h"
#include "nfs3.h"
#include "rpc.h"

#define NFSD_MAXIO   (1024 * 1024)
#define NAME_MAX_NFS 255

static nfsstat3 errno_to_nfsstat(int r)
{
        switch (r < 0 ? -r : r) {
        case 0:
                return NFS3_OK;
        case EPERM:
                return NFS3ERR_PERM;
        case ENOENT:
                return NFS3ERR_NOENT;
        case ENXIO:
                return NFS3ERR_NXIO;
        case EACCES:
                return NFS3ERR_ACCES;
        case EEXIST:
                return NFS3ERR_EXIST;
        case EXDEV:
                return NFS3ERR_XDEV;
        case ENODEV:
                return NFS3ERR_NODEV;
        case ENOTDIR:
                return NFS3ERR_NOTDIR;
        case EISDIR:
                return NFS3ERR_ISDIR;
        case EINVAL:
        case ELOOP:
                return NFS3ERR_INVAL;
        case EFBIG:
                return NFS3ERR_FBIG;
        case ENOSPC:
                return NFS3ERR_NOSPC;
        case EROFS:
                return NFS3ERR_ROFS;
        case EMLINK:
                return NFS3ERR_MLINK;
        case ENAMETOOLONG:
                return NFS3ERR_NAMETOOLONG;
        case ENOTEMPTY:
                return NFS3ERR_NOTEMPTY;
        case EDQUOT:
                return NFS3ERR_DQUOT;
        case ESTALE:
                return NFS3ERR_STALE;
        case EBADMSG:
                return NFS3ERR_BADHANDLE;
        case EOPNOTSUPP:
                return NFS3ERR_NOTSUPP;
        case ENOMEM:
        case EMFILE:
        case ENFILE:
        case EAGAIN:
                return NFS3ERR_JUKEBOX;
        default:
                return NFS3ERR_IO;
        }
}

static void to_nfstime(const struct timespec *ts, nfstime3 *t)
{
        t->seconds = (uint32)ts->tv_sec;
        t->nseconds = (uint32)ts->tv_nsec;
}

static ftype3 to_ftype(mode_t m)
{
        switch (m & S_IFMT) {
        case S_IFDIR:
                return NF3DIR;
        case S_IFBLK:
                return NF3BLK;
        case S_IFCHR:
                return NF3CHR;
        case S_IFLNK:
                return NF3LNK;
        case S_IFSOCK:
                return NF3SOCK;
        case S_IFIFO:
                return NF3FIFO;
        case S_IFREG:
        default:
                return NF3REG;
        }
}

static void to_fattr(const struct stat *st, fattr3 *a)
{
        a->type = to_ftype(st->st_mode);
        a->mode = st->st_mode & 07777;
        a->nlink = (uint32)st->st_nlink;
        a->uid = st->st_uid;
        a->gid = st->st_gid;
        a->size = (size3)st->st_size;
        a->used = (size3)st->st_blocks * 512;
        a->rdev.specdata1 = major(st->st_rdev);
        a->rdev.specdata2 = minor(st->st_rdev);
        a->fsid = (uint64)st->st_dev;
        a->fileid = st->st_ino;
        to_nfstime(&st->st_atim, &a->atime);
        to_nfstime(&st->st_mtim, &a->mtime);
        to_nfstime(&st->st_ctim, &a->ctime);
}

static void post_attr_stat(const struct stat *st, post_op_attr *p)
{
        p->attributes_follow = TRUE;
        to_fattr(st, &p->post_op_attr_u.attributes);
}

/* Post-operation attributes of the object fd, or none when it cannot be
 * stat()ed (it is optional in every reply). */
static void post_attr(int fd, post_op_attr *p)
{
        struct stat st;

        if (fd < 0 || fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
                p->attributes_follow = FALSE;
                return;
        }
        post_attr_stat(&st, p);
}

/* Attributes of o as taken when its handle was resolved, for procedures
 * that do not change it (none when it was not resolved). */
static void resolved_attr(const struct fsobj *o, post_op_attr *p)
{
        if (o->fd < 0) {
                p->attributes_follow = FALSE;
                return;
        }
        post_attr_stat(&o->st, p);
}

static void pre_attr(const struct stat *st, pre_op_attr *p)
{
        p->attributes_follow = TRUE;
        p->pre_op_attr_u.attributes.size = (size3)st->st_size;
        to_nfstime(&st->st_mtim, &p->pre_op_attr_u.attributes.mtime);
        to_nfstime(&st->st_ctim, &p->pre_op_attr_u.attributes.ctime);
}

/* Weak cache consistency data around a change to o; the "before" part
 * is o->st, taken when the handle was resolved. */
static void wcc(const struct fsobj *o, wcc_data *w)
{
        if (o->fd < 0)
                return;
        pre_attr(&o->st, &w->before);
        post_attr(o->fd, &w->after);
}

static void put_verf(uint64_t v, char out[8])
{
        for (int i = 7; i >= 0; i--, v >>= 8)
                out[i] = (char)(v & 0xff);
}

/* Resolves a handle without changing credentials. */
static nfsstat3 resolve(struct nfsd_call *c, const nfs_fh3 *fh, struct fsobj *o)
{
        int r = fsobj_from_handle(c, fh->data.data_val, fh->data.data_len, o);

        if (r == -EBADMSG)
                return NFS3ERR_BADHANDLE;
        if (r == -ESTALE)
                return NFS3ERR_STALE;
        if (r == -EACCES)
                return NFS3ERR_ACCES;
        return errno_to_nfsstat(r);
}

/* Runs the rest of the request with the caller's (squashed) credentials. */
static nfsstat3 enter(struct nfsd_call *c, const struct fsobj *o, struct cred *ret)
{
        struct cred cred;

        fsobj_cred(c, o->client, &cred);
        if (cred_enter(&cred) < 0)
                return NFS3ERR_SERVERFAULT;
        if (ret)
                *ret = cred;
        return NFS3_OK;
}

/* Resolve + enter, for the procedures with one handle. */
static nfsstat3 begin(struct nfsd_call *c, const nfs_fh3 *fh, struct fsobj *o, bool modifies,
                      struct cred *ret_cred)
{
        nfsstat3 s = resolve(c, fh, o);

        if (s != NFS3_OK)
                return s;
        if (modifies && !o->client->rw)
                return NFS3ERR_ROFS;
        s = enter(c, o, ret_cred);
        if (s != NFS3_OK)
                return s;
        return NFS3_OK;
}

static void finish(struct fsobj *o)
{
        cred_leave();
        fsobj_done(o);
}

static nfsstat3 check_name(const char *name, bool creating)
{
        if (!name || !*name)
                return NFS3ERR_ACCES;
        if (strlen(name) > NAME_MAX_NFS)
                return NFS3ERR_NAMETOOLONG;
        if (strchr(name, '/'))
                return NFS3ERR_ACCES;
        if (creating && (streq(name, ".") || streq(name, "..")))
                return NFS3ERR_EXIST;
        return NFS3_OK;
}

/* Opens o for IO with the caller's credentials; the owner of a file may
 * always read and write it (as with a local fd opened before a chmod), as
 * NFS servers traditionally allow. A regular file is opened O_NONBLOCK
 * (no effect on its IO): a lease another process holds on it is broken
 * without waiting, -EAGAIN (NFS3ERR_JUKEBOX: the client tries again)
 * instead of holding the worker until the holder lets go, as kernel nfsd
 * does. */
static int reopen(const struct fsobj *o, const struct cred *cred, int flags)
{
        int fd;

        if (S_ISREG(o->st.st_mode))
                flags |= O_NONBLOCK;
        fd = cred->uid == 0 ? fsobj_reopen_root(o, flags) : fsobj_reopen(o, flags);

        if (fd == -EACCES && o->st.st_uid == cred->uid && S_ISREG(o->st.st_mode)) {
                cred_leave();
                fd = fsobj_reopen(o, flags);
                if (cred_enter(cred) < 0) {
                        safe_close(fd);
                        return -EPERM;
                }
        }
        return fd;
}

static int proc_path(int fd, char buf[STRLEN_PROC_FD])
{
        return snprintf(buf, STRLEN_PROC_FD, "/proc/self/fd/%d", fd);
}

static int timespec_from(const nfstime3 *t, struct timespec *ts)
{
        if (t->nseconds >= 1000000000u)
                return -EINVAL;
        ts->tv_sec = t->seconds;
        ts->tv_nsec = t->nseconds;
        return 0;
}

/* Whether the attributes can be applied to an object of type mode, checked
 * before anything is changed so a refused SETATTR or create leaves the
 * object as it was. */
static int check_sattr(mode_t type, const sattr3 *a)
{
        struct timespec ts;
        int r;

        if (a->size.set_it) {
                if (S_ISDIR(type))
                        return -EISDIR;
                if (!S_ISREG(type))
                        return -EINVAL;
                if (a->size.set_size3_u.size > (size3)INT64_MAX)
                        return -EFBIG;
        }
        if (a->atime.set_it == SET_TO_CLIENT_TIME) {
                r = timespec_from(&a->atime.set_atime_u.atime, &ts);
                if (r < 0)
                        return r;
        }
        if (a->mtime.set_it == SET_TO_CLIENT_TIME) {
                r = timespec_from(&a->mtime.set_mtime_u.mtime, &ts);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* truncate(2) of path (a regular file), through an O_NONBLOCK open so a
 * lease on the file is broken without waiting (-EAGAIN, see reopen()). */
static int truncate_nonblock(const char *path, off_t len)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

        if (fd < 0)
                return negative_errno();
        return ftruncate(fd, len) < 0 ? negative_errno() : 0;
}

/* truncate() with the owner override reopen() has: the owner of a file
 * may always change its size (WRITE may extend it as well). */
static int truncate_as(const char *path, const struct stat *st, const struct cred *cred, off_t len)
{
        int r = truncate_nonblock(path, len);

        if (r == -EACCES && cred && st->st_uid == cred->uid) {
                cred_leave();
                r = truncate_nonblock(path, len);
                if (cred_enter(cred) < 0)
                        return -EPERM;
        }
        return r;
}

/* Applies new attributes to the object fd (O_PATH) described by st, as
 * cred (for the owner override of a size change; NULL: none). */
static int apply_sattr(int fd, const struct stat *st, const struct cred *cred, const sattr3 *a)
{
        char path[STRLEN_PROC_FD];
        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};
        int r;

        r = check_sattr(st->st_mode, a);
        if (r < 0)
                return r;
        proc_path(fd, path);
        if (a->uid.set_it || a->gid.set_it) {
                uid_t uid = a->uid.set_it ? a->uid.set_uid3_u.uid : (uid_t)-1;
                gid_t gid = a->gid.set_it ? a->gid.set_gid3_u.gid : (gid_t)-1;
                if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
                        return negative_errno();
        }
        if (a->mode.set_it && !S_ISLNK(st->st_mode))
                if (chmod(path, a->mode.set_mode3_u.mode & 07777) < 0)
                        return negative_errno();
        if (a->size.set_it) {
                r = truncate_as(path, st, cred, (off_t)a->size.set_size3_u.size);
                if (r < 0)
                        return r;
        }
        if (a->atime.set_it == SET_TO_SERVER_TIME)
                ts[0].tv_nsec = UTIME_NOW;
        else if (a->atime.set_it == SET_TO_CLIENT_TIME)
                timespec_from(&a->atime.set_atime_u.atime, &ts[0]);
        if (a->mtime.set_it == SET_TO_SERVER_TIME)
                ts[1].tv_nsec = UTIME_NOW;
        else if (a->mtime.set_it == SET_TO_CLIENT_TIME)
                timespec_from(&a->mtime.set_mtime_u.mtime, &ts[1]);
        if (ts[0].tv_nsec != UTIME_OMIT || ts[1].tv_nsec != UTIME_OMIT)
                if (utimensat(fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
                        return negative_errno();
        return 0;
}

static void nfs3_null(struct nfsd_call *c, void *args, void *res)
{
}

static void nfs3_getattr(struct nfsd_call *c, void *args, void *res)
{
        GETATTR3args *a = args;
        GETATTR3res *out = res;
        struct fsobj o = FSOBJ_NULL;

        out->status = resolve(c, &a->object, &o);
        if (out->status == NFS3_OK)
                to_fattr(&o.st, &out->GETATTR3res_u.resok.obj_attributes);
        fsobj_done(&o);
}

static void nfs3_setattr(struct nfsd_call *c, void *args, void *res)
{
        SETATTR3args *a = args;
        SETATTR3res *out = res;
        struct fsobj o = FSOBJ_NULL;
        struct cred cred;
        int r;

        out->status = begin(c, &a->object, &o, true, &cred);
        if (out->status == NFS3_OK) {
                if (a->guard.check &&
                    (a->guard.sattrguard3_u.obj_ctime.seconds != (uint32)o.st.st_ctim.tv_sec ||
                     a->guard.sattrguard3_u.obj_ctime.nseconds != (uint32)o.st.st_ctim.tv_nsec))
                        out->status = NFS3ERR_NOT_SYNC;
                else {
                        r = apply_sattr(o.fd, &o.st, &cred, &a->new_attributes);
                        out->status = errno_to_nfsstat(r);
                }
        }
        /* resok and resfail have the same layout. */
        wcc(&o, &out->SETATTR3res_u.resok.obj_wcc);
        finish(&o);
}

/* Opens the entry name of directory d as O_PATH, never following a symlink
 * and never leaving the export through "..". */
static int lookup_fd(const struct fsobj *d, const char *name)
{
        int fd;

        if (streq(name, ".") || (streq(name, "..") && fsobj_is_export_root(d)))
                fd = openat(d->fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        else
                fd = openat(d->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        return fd < 0 ? negative_errno() : fd;
}

/* Whether the entry name of d goes through the export's child cache. */
static bool child_cacheable(const struct fsobj *d, const char *name)
{
        /* A directory as deep as they are served must be checked (too_deep()). */
        return d->depth < FSOBJ_DEPTH_MAX && !streq(name, ".") && !streq(name, "..");
}

/* Fills a post_op_fh3 + post_op_attr for the object *fd, new or found as
 * the entry name of d; an object of a name that can be cached is recorded
 * in the export's child cache, which takes over *fd. */
static int object_reply(struct nfsd_call *c, const struct fsobj *d, const char *name, int *fd,
                        nfs_fh3 *fh, post_op_attr *attr)
{
        uint8_t *buf = nfsd_call_alloc(c, FHANDLE_MAX);
        struct stat st;
        int r;

        if (!buf)
                return -ENOMEM;
        r = fsobj_handle_of_fd(c, d->export, *fd, buf);
        if (r < 0)
                return r;
        fh->data.data_len = (u_int)r;
        fh->data.data_val = (char *)buf;
        if (fstatat(*fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
                attr->attributes_follow = FALSE;
                return 0;
        }
        post_attr_stat(&st, attr);
        if (child_cacheable(d, name))
                childcache_add(d->export->childcache, &d->handle, name, TAKE_FD(*fd), &st, buf,
                               (size_t)r);
        return 0;
}

/* LOOKUP of the entry name of d answered from the export's child cache
 * (see childcache.h); false on a miss. */
static bool lookup_cached(struct nfsd_call *c, const struct fsobj *d, const char *name,
                          LOOKUP3resok *ok)
{
        uint8_t handle[FHANDLE_MAX], *buf;
        struct stat st;
        int n;

        if (!child_cacheable(d, name))
                return false;
        n = childcache_lookup(d->export->childcache, &d->handle, d->fd, name, d->export->mount_id,
                              handle, &st);
        if (n <= 0)
                return false;
        buf = nfsd_call_alloc(c, FHANDLE_MAX);
        if (!buf)
                return false;
        memcpy(buf, handle, (size_t)n);
        ok->object.data.data_len = (u_int)n;
        ok->object.data.data_val = (char *)buf;
        post_attr_stat(&st, &ok->obj_attributes);
        return true;
}

/* Whether the entry name of directory d, if a directory, lies deeper than
 * directories are served: its handle would not resolve, so it is not
 * handed out (nor made). */
static bool too_deep(const struct fsobj *d, int dirfd, const char *name)
{
        struct stat st;

        if (d->depth < FSOBJ_DEPTH_MAX || streq(name, ".") || streq(name, ".."))
                return false;
        return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

static void nfs3_lookup(struct nfsd_call *c, void *args, void *res)
{
        LOOKUP3args *a = args;
        LOOKUP3res *out = res;
        struct fsobj d = FSOBJ_NULL;
        _cleanup_close_ int fd = -1;
        int r;

        out->status = begin(c, &a->what.dir, &d, false, NULL);
        if (out->status == NFS3_OK && !S_ISDIR(d.st.st_mode))
                out->status = NFS3ERR_NOTDIR;
        if (out->status == NFS3_OK)
                out->status = check_name(a->what.name, false);
        if (out->status == NFS3_OK &&
            lookup_cached(c, &d, a->what.name, &out->LOOKUP3res_u.resok)) {
                resolved_attr(&d, &out->LOOKUP3res_u.resok.dir_attributes);
                finish(&d);
                return;
        }
        if (out->status == NFS3_OK) {
                fd = lookup_fd(&d, a->what.name);
                if (fd < 0)
                        out->status = errno_to_nfsstat(fd);
                else if (too_deep(&d, d.fd, a->what.name))
                        out->status = NFS3ERR_NAMETOOLONG;
        }
        if (out->status == NFS3_OK) {
                r = object_reply(c, &d, a->what.name, &fd, &out->LOOKUP3res_u.resok.object,
                                 &out->LOOKUP3res_u.resok.obj_attributes);
                /* A mount point below the export is not served. */
                out->status = r == -EXDEV ? NFS3ERR_ACCES : errno_to_nfsstat(r);
        }
        if (out->status == NFS3_OK)
                resolved_attr(&d, &out->LOOKUP3res_u.resok.dir_attributes);
        else
                resolved_attr(&d, &out->LOOKUP3res_u.resfail.dir_attributes);
        finish(&d);
}

static void nfs3_access(struct nfsd_call *c, void *args, void *res)
{
        ACCESS3args *a = args;
        ACCESS3res *out = res;
        struct fsobj o = FSOBJ_NULL;
        char path[STRLEN_PROC_FD];
        uint32 granted = 0;

        out->status = begin(c, &a->object, &o, false, NULL);
        if (out->status == NFS3_OK) {
                bool dir = S_ISDIR(o.st.st_mode);
                bool rw = o.client->rw;

                proc_path(o.fd, path);
                if (S_ISLNK(o.st.st_mode))
                        granted = ACCESS3_READ;
                else {
                        if (faccessat(AT_FDCWD, path, R_OK, AT_EACCESS) == 0)
                                granted |= ACCESS3_READ;
                        if (rw && faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) == 0)
                                granted |=
                                    ACCESS3_MODIFY | ACCESS3_EXTEND | (dir ? ACCESS3_DELETE : 0);
                        if (faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == 0)
                                granted |= dir ? ACCESS3_LOOKUP : ACCESS3_EXECUTE;
                }
                out->ACCESS3res_u.resok.access = granted & a->access;
        }
        resolved_attr(&o, &out->ACCESS3res_u.resok.obj_attributes);
        finish(&o);
}

static void nfs3_readlink(struct nfsd_call *c, void *args, void *res)
{
        READLINK3args *a = args;
        READLINK3res *out = res;
        struct fsobj o = FSOBJ_NULL;
        char *buf;
        ssize_t n;

        out->status = begin(c, &a->symlink, &o, false, NULL);
        if (out->status == NFS3_OK && !S_ISLNK(o.st.st_mode))
                out->status = NFS3ERR_INVAL;
        if (out->status == NFS3_OK) {
                buf = nfsd_call_alloc(c, NFS3_MAXPATHLEN + 1);
                if (!buf)
                        out->status = NFS3ERR_JUKEBOX;
                else {
                        n = readlinkat(o.fd, "", buf, NFS3_MAXPATHLEN);
                        if (n < 0)
                                out->status = errno_to_nfsstat(-errno);
                        else {
                                buf[n] = '\0';
                                out->READLINK3res_u.resok.data = buf;
                        }
                }
        }
        post_attr(o.fd, &out->READLINK3res_u.resok.symlink_attributes);
        finish(&o);
}

static nfsstat3 check_regular(const struct fsobj *o)
{
        if (S_ISREG(o->st.st_mode))
                return NFS3_OK;
        return S_ISDIR(o->st.st_mode) ? NFS3ERR_ISDIR : NFS3ERR_INVAL;
}

/* Moves up to want bytes of fd at offset into the call's pipe (c->pipe_len
 * says how many): page references, not copies, so they reach the socket
 * without passing through user space. Stops at the end of the file, when
 * the pipe is full (a read that does not start on a page boundary touches
 * one page more than the pipe has slots for) or at the first error of a
 * file that cannot be spliced; the caller reads the rest. Returns 0, or
 * -errno for an error of the file itself. */
static int read_spliced(struct nfsd_call *c, int fd, uint64_t offset, size_t want)
{
        loff_t off = (loff_t)offset;

        while (c->pipe[1] >= 0 && c->pipe_len < want) {
                ssize_t n =
                    splice(fd, &off, c->pipe[1], NULL, want - c->pipe_len, SPLICE_F_NONBLOCK);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 &&
                    (errno == EAGAIN || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP))
                        return 0; /* pipe full, or no splice for this file */
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        return 0;
                c->pipe_len += (size_t)n;
        }
        return 0;
}

static void nfs3_read(struct nfsd_call *c, void *args, void *res)
{
        READ3args *a = args;
        READ3res *out = res;
        struct fsobj o = FSOBJ_NULL;
        _cleanup_close_ int fd = -1;
        struct cred cred;
        size_t want, got = 0;
        struct stat st;
        int r;

        out->status = begin(c, &a->file, &o, false, &cred);
        if (out->status == NFS3_OK)
                out->status = check_regular(&o);
        if (out->status == NFS3_OK && a->offset > (offset3)INT64_MAX)
                out->status = NFS3ERR_INVAL;
        if (out->status == NFS3_OK) {
                fd = reopen(&o, &cred, O_RDONLY);
                if (fd < 0)
                        out->status = errno_to_nfsstat(fd);
        }
        if (out->status == NFS3_OK) {
                want = MIN((size_t)a->count, MIN((size_t)NFSD_MAXIO, c->scratch_size));
                r = read_spliced(c, fd, a->offset, want);
                if (r < 0)
                        out->status = errno_to_nfsstat(r);
                got = c->pipe_len;
                while (out->status == NFS3_OK && got < want) {
                        /* What splice() did not take: into scratch, sent after it. */
                        ssize_t n = pread(fd, (char *)c->scratch + got - c->pipe_len, want - got,
                                          (off_t)(a->offset + got));
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0) {
                                out->status = errno_to_nfsstat(-errno);
                                break;
                        }
                        if (n == 0)
                                break;
                        got += (size_t)n;
                }
        }
        if (out->status == NFS3_OK) {
                READ3resok *ok = &out->READ3res_u.resok;
                ok->count = (count3)got;
                /* Sent from the pipe and scratch after the encoded reply,
                 * not copied. */
                ok->data.data_len = 0;
                c->tail = c->scratch;
                c->tail_len = got - c->pipe_len;
                if (fstat(fd, &st) == 0) {
                        ok->eof = a->offset + got >= (uint64)st.st_size;
                        post_attr_stat(&st, &ok->file_attributes);
                } else
                        ok->eof = got < want;
        } else
                post_attr(o.fd, &out->READ3res_u.resfail.file_attributes);
        finish(&o);
}

static int sync_file(struct nfsd_call *c, int fd, bool data_only)
{
        if ((data_only ? fdatasync(fd) : fsync(fd)) < 0) {
                int r = negative_errno();
                /* What was written may be lost: clients must resend it. */
                nfsd_server_write_failed(c->server);
                return r;
        }
        return 0;
}

static void nfs3_write(struct nfsd_call *c, void *args, void *res)
{
        WRITE3args *a = args;
        WRITE3res *out = res;
        struct fsobj o = FSOBJ_NULL;
        _cleanup_close_ int fd = -1;
        struct cred cred;
        size_t want, done = 0;
        int r;

        out->status = begin(c, &a->file, &o, true, &cred);
        if (out->status == NFS3_OK)
                out->status = check_regular(&o);
        if (out->status == NFS3_OK &&
            (a->count > a->data.data_len || a->offset > (offset3)INT64_MAX ||
             a->offset + a->count > (offset3)INT64_MAX))
                out->status = a->count > a->data.data_len ? NFS3ERR_INVAL : NFS3ERR_FBIG;
        if (out->status == NFS3_OK) {
                fd = reopen(&o, &cred, O_WRONLY);
                if (fd < 0)
                        out->status = errno_to_nfsstat(fd);
        }
        if (out->status == NFS3_OK) {
                want = a->count;
                while (done < want) {
                        ssize_t n = pwrite(fd, a->data.data_val + done, want - done,
                                           (off_t)(a->offset + done));
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0) {
                                if (done == 0)
                                        out->status = errno_to_nfsstat(n < 0 ? -errno : -EIO);
                                break;
                        }
                        done += (size_t)n;
                }
        }
        if (out->status == NFS3_OK && a->stable != UNSTABLE) {
                r = sync_file(c, fd, a->stable == DATA_SYNC);
                if (r < 0)
                        out->status = errno_to_nfsstat(r);
        }
        if (out->status == NFS3_OK) {
                WRITE3resok *ok = &out->WRITE3res_u.resok;
                ok->count = (count3)done;
                ok->committed = a->stable == UNSTABLE ? UNSTABLE : a->stable;
                put_verf(atomic_load(&c->server->write_verf), ok->verf);
        }
        wcc(&o, &out->WRITE3res_u.resok.file_wcc);
        finish(&o);
}

static bool sattr_empty(const sattr3 *a)
{
        return !a->mode.set_it && !a->uid.set_it && !a->gid.set_it && !a->size.set_it &&
               a->atime.set_it == DONT_CHANGE && a->mtime.set_it == DONT_CHANGE;
}

/* The common end of CREATE, MKDIR, SYMLINK and MKNOD: open the new entry,
 * apply attributes, fill the reply. */
static nfsstat3 created(struct nfsd_call *c, struct fsobj *d, const char *name, const sattr3 *attrs,
                        const struct cred *cred, CREATE3resok *ok)
{
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        fd = openat(d->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno_to_nfsstat(-errno);
        if (attrs && !sattr_empty(attrs)) {
                if (fstat(fd, &st) < 0)
                        return errno_to_nfsstat(-errno);
                r = apply_sattr(fd, &st, cred, attrs);
                if (r < 0)
                        return errno_to_nfsstat(r);
        }
        r = object_reply(c, d, name, &fd, &ok->obj.post_op_fh3_u.handle, &ok->obj_attributes);
        if (r < 0)
                return errno_to_nfsstat(r);
        ok->obj.handle_follows = TRUE;
        return NFS3_OK;
}

/* Begins a procedure that creates the entry where.name, of type `type`
 * with attributes attrs (NULL: none), which are checked before anything
 * is created. */
static nfsstat3 begin_create(struct nfsd_call *c, const diropargs3 *where, struct fsobj *d,
                             mode_t type, const sattr3 *attrs, struct cred *ret_cred)
{
        nfsstat3 s = begin(c, &where->dir, d, true, ret_cred);

        if (s == NFS3_OK && !S_ISDIR(d->st.st_mode))
                s = NFS3ERR_NOTDIR;
        if (s == NFS3_OK)
                s = check_name(where->name, true);
        if (s == NFS3_OK && attrs)
                s = errno_to_nfsstat(check_sattr(type, attrs));
        return s;
}

/* The dir_wcc of a create reply: resok's for success, resfail's else. */
static void create_wcc(const struct fsobj *d, nfsstat3 status, CREATE3resok *ok,
                       CREATE3resfail *fail)
{
        wcc(d, status == NFS3_OK ? &ok->dir_wcc : &fail->dir_wcc);
}

static mode_t sattr_mode(const sattr3 *a, mode_t def)
{
        return a->mode.set_it ? a->mode.set_mode3_u.mode & 07777 : def;
}

/* The verifier of an EXCLUSIVE create is kept in the file's mtime and atime
 * seconds until the client sets real attributes. Each word loses its top
 * bit (as with kernel nfsd) so it survives file systems whose times end in
 * 2038, and a retransmission still matches. */
static void verf_times(const char *verf, struct timespec ts[2])
{
        const unsigned char *v = (const unsigned char *)verf;

        uint32_t lo = (uint32_t)v[4] << 24 | (uint32_t)v[5] << 16 | (uint32_t)v[6] << 8 | v[7];
        uint32_t hi = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];

        ts[0] = (struct timespec){.tv_sec = (time_t)(lo & 0x7fffffffu)};
        ts[1] = (struct timespec){.tv_sec = (time_t)(hi & 0x7fffffffu)};
}

static void nfs3_create(struct nfsd_call *c, void *args, void *res)
{
        CREATE3args *a = args;
        CREATE3res *out = res;
        struct fsobj d = FSOBJ_NULL;
        const char *name = a->where.name;
        const sattr3 *attrs = NULL;
        sattr3 rest = {};
        struct timespec ts[2];
        struct stat st;
        struct cred cred;

        out->status = begin_create(
            c, &a->where, &d, S_IFREG,
            a->how.mode == EXCLUSIVE ? NULL : &a->how.createhow3_u.obj_attributes, &cred);
        if (out->status != NFS3_OK)
                goto done;

        switch (a->how.mode) {
        case UNCHECKED:
        case GUARDED:
                attrs = &a->how.createhow3_u.obj_attributes;
                if (mknodat(d.fd, name, S_IFREG | sattr_mode(attrs, 0644), 0) == 0) {
                        /* New: the mode is set already (the umask is 0). */
                        rest = *attrs;
                        rest.mode.set_it = FALSE;
                        attrs = &rest;
                } else {
                        if (errno != EEXIST || a->how.mode == GUARDED) {
                                out->status = errno_to_nfsstat(-errno);
                                break;
                        }
                        if (fstatat(d.fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                                out->status = errno_to_nfsstat(-errno);
                                break;
                        }
                        if (!S_ISREG(st.st_mode)) {
                                out->status = NFS3ERR_EXIST;
                                break;
                        }
                        /* An existing file (open(O_CREAT) of a file that is
                         * there) gets only its size, as with kernel nfsd:
                         * its mode and owner stay. */
                        rest.size = attrs->size;
                        attrs = &rest;
                }
                out->status = created(c, &d, name, attrs, &cred, &out->CREATE3res_u.resok);
                break;
        case EXCLUSIVE:
                verf_times(a->how.createhow3_u.verf, ts);
                if (mknodat(d.fd, name, S_IFREG | 0600, 0) == 0) {
                        if (utimensat(d.fd, name, ts, AT_SYMLINK_NOFOLLOW) < 0) {
                                out->status = errno_to_nfsstat(-errno);
                                unlinkat(d.fd, name, 0);
                                break;
                        }
                } else if (errno == EEXIST) {
                        /* A retransmission of our own create succeeds. */
                        if (fstatat(d.fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                            !S_ISREG(st.st_mode) || st.st_mtim.tv_sec != ts[1].tv_sec ||
                            st.st_atim.tv_sec != ts[0].tv_sec) {
                                out->status = NFS3ERR_EXIST;
                                break;
                        }
                } else {
                        out->status = errno_to_nfsstat(-errno);
                        break;
                }
                out->status = created(c, &d, name, NULL, &cred, &out->CREATE3res_u.resok);
                break;
        default:
                out->status = NFS3ERR_INVAL;
                break;
        }
done:
        create_wcc(&d, out->status, &out->CREATE3res_u.resok, &out->CREATE3res_u.resfail);
        finish(&d);
}

/* The attributes left to apply after a creation that took the mode: setting
 * it again would clear the setgid bit a directory inherits (as the kernel's
 * nfsd, which also leaves the mode to the creation). */
static const sattr3 *sattr_without_mode(const sattr3 *a, sattr3 *buf)
{
        if (!a)
                return NULL;
        *buf = *a;
        buf->mode.set_it = FALSE;
        return buf;
}

static void nfs3_mkdir(struct nfsd_call *c, void *args, void *res)
{
        MKDIR3args *a = args;
        MKDIR3res *out = res;
        struct fsobj d = FSOBJ_NULL;
        sattr3 rest;
        struct cred cred;

        out->status = begin_create(c, &a->where, &d, S_IFDIR, &a->attributes, &cred);
        if (out->status == NFS3_OK && d.depth >= FSOBJ_DEPTH_MAX)
                out->status = NFS3ERR_NAMETOOLONG;
        if (out->status == NFS3_OK &&
            mkdirat(d.fd, a->where.name, sattr_mode(&a->attributes, 0755)) < 0)
                out->status = errno_to_nfsstat(-errno);
        if (out->status == NFS3_OK)
                out->status =
                    created(c, &d, a->where.name, sattr_without_mode(&a->attributes, &rest), &cred,
                            &out->MKDIR3res_u.resok);
        create_wcc(&d, out->status, &out->MKDIR3res_u.resok, &out->MKDIR3res_u.resfail);
        finish(&d);
}

static void nfs3_symlink(struct nfsd_call *c, void *args, void *res)
{
        SYMLINK3args *a = args;
        SYMLINK3res *out = res;
        struct fsobj d = FSOBJ_NULL;
        sattr3 owner = {};
        struct cred cred;

        out->status = begin_create(c, &a->where, &d, S_IFLNK, NULL, &cred);
        if (out->status == NFS3_OK && !*a->symlink.symlink_data)
                out->status = NFS3ERR_INVAL;
        if (out->status == NFS3_OK && symlinkat(a->symlink.symlink_data, d.fd, a->where.name) < 0)
                out->status = errno_to_nfsstat(-errno);
        if (out->status == NFS3_OK) {
                /* A symlink's mode means nothing on Linux; its owner does. */
                owner.uid = a->symlink.symlink_attributes.uid;
                owner.gid = a->symlink.symlink_attributes.gid;
                out->status =
                    created(c, &d, a->where.name, &owner, &cred, &out->SYMLINK3res_u.resok);
        }
        create_wcc(&d, out->status, &out->SYMLINK3res_u.resok, &out->SYMLINK3res_u.resfail);
        finish(&d);
}

static void nfs3_mknod(struct nfsd_call *c, void *args, void *res)
{
        MKNOD3args *a = args;
        MKNOD3res *out = res;
        struct fsobj d = FSOBJ_NULL;
        const sattr3 *attrs = NULL;
        sattr3 rest;
        mode_t type = 0;
        dev_t dev = 0;
        struct cred cred;

        out->status = begin_create(c, &a->where, &d, 0, NULL, &cred);
        if (out->status == NFS3_OK) {
                switch (a->what.type) {
                case NF3CHR:
                case NF3BLK:
                        type = a->what.type == NF3CHR ? S_IFCHR : S_IFBLK;
                        attrs = &a->what.mknoddata3_u.device.dev_attributes;
                        dev = makedev(a->what.mknoddata3_u.device.spec.specdata1,
                                      a->what.mknoddata3_u.device.spec.specdata2);
                        break;
                case NF3SOCK:
                case NF3FIFO:
                        type = a->what.type == NF3SOCK ? S_IFSOCK : S_IFIFO;
                        attrs = &a->what.mknoddata3_u.pipe_attributes;
                        break;
                default:
                        out->status = NFS3ERR_BADTYPE;
                        break;
                }
        }
        if (out->status == NFS3_OK)
                out->status = errno_to_nfsstat(check_sattr(type, attrs));
        if (out->status == NFS3_OK &&
            mknodat(d.fd, a->where.name, type | sattr_mode(attrs, 0644), dev) < 0)
                out->status = errno_to_nfsstat(-errno);
        if (out->status == NFS3_OK)
                out->status = created(c, &d, a->where.name, sattr_without_mode(attrs, &rest), &cred,
                                      &out->MKNOD3res_u.resok);
        create_wcc(&d, out->status, &out->MKNOD3res_u.resok, &out->MKNOD3res_u.resfail);
        finish(&d);
}

static void remove_common(struct nfsd_call *c, const diropargs3 *what, bool dir, nfsstat3 *status,
                          wcc_data *w)
{
        struct fsobj d = FSOBJ_NULL;

        *status = begin(c, &what->dir, &d, true, NULL);
        if (*status == NFS3_OK && !S_ISDIR(d.st.st_mode))
                *status = NFS3ERR_NOTDIR;
        if (*status == NFS3_OK)
                *status = check_name(what->name, false);
        if (*status == NFS3_OK && streq(what->name, "."))
                *status = dir ? NFS3ERR_INVAL : NFS3ERR_ISDIR;
        if (*status == NFS3_OK && streq(what->name, ".."))
                *status = dir ? NFS3ERR_EXIST : NFS3ERR_ISDIR;
        if (*status == NFS3_OK) {
                if (unlinkat(d.fd, what->name, dir ? AT_REMOVEDIR : 0) < 0)
                        *status = errno_to_nfsstat(-errno);
                /* Its fd goes now: a removed file is freed at once. */
                childcache_forget(d.export->childcache, &d.handle, what->name);
        }
        wcc(&d, w);
        finish(&d);
}

static void nfs3_remove(struct nfsd_call *c, void *args, void *res)
{
        REMOVE3args *a = args;
        REMOVE3res *out = res;

        remove_common(c, &a->object, false, &out->status, &out->REMOVE3res_u.resok.dir_wcc);
}

static void nfs3_rmdir(struct nfsd_call *c, void *args, void *res)
{
        REMOVE3args *a = args;
        REMOVE3res *out = res;

        remove_common(c, &a->object, true, &out->status, &out->REMOVE3res_u.resok.dir_wcc);
}

static void nfs3_rename(struct nfsd_call *c, void *args, void *res)
{
        RENAME3args *a = args;
        RENAME3res *out = res;
        struct fsobj from = FSOBJ_NULL, to = FSOBJ_NULL;
        bool entered = false;

        out->status = resolve(c, &a->from.dir, &from);
        if (out->status == NFS3_OK)
                out->status = resolve(c, &a->to.dir, &to);
        if (out->status == NFS3_OK && from.export != to.export)
                out->status = NFS3ERR_XDEV;
        if (out->status == NFS3_OK && !from.client->rw)
                out->status = NFS3ERR_ROFS;
        if (out->status == NFS3_OK && (!S_ISDIR(from.st.st_mode) || !S_ISDIR(to.st.st_mode)))
                out->status = NFS3ERR_NOTDIR;
        if (out->status == NFS3_OK)
                out->status = check_name(a->from.name, false);
        if (out->status == NFS3_OK && (streq(a->from.name, ".") || streq(a->from.name, "..")))
                out->status = NFS3ERR_INVAL;
        if (out->status == NFS3_OK)
                out->status = check_name(a->to.name, true);
        if (out->status == NFS3_OK) {
                out->status = enter(c, &from, NULL);
                entered = out->status == NFS3_OK;
        }
        /* A directory moved as deep as directories are served is not
         * moved (a subtree below it may end deeper: it is STALE then). */
        if (out->status == NFS3_OK && to.depth >= FSOBJ_DEPTH_MAX &&
            too_deep(&to, from.fd, a->from.name))
                out->status = NFS3ERR_NAMETOOLONG;
        if (out->status == NFS3_OK) {
                if (renameat(from.fd, a->from.name, to.fd, a->to.name) < 0)
                        out->status = errno_to_nfsstat(-errno);
                /* Neither name names what it did (a replaced target is freed). */
                childcache_forget(from.export->childcache, &from.handle, a->from.name);
                childcache_forget(to.export->childcache, &to.handle, a->to.name);
        }
        wcc(&from, &out->RENAME3res_u.resok.fromdir_wcc);
        wcc(&to, &out->RENAME3res_u.resok.todir_wcc);
        if (entered)
                cred_leave();
        fsobj_done(&from);
        fsobj_done(&to);
}

static void nfs3_link(struct nfsd_call *c, void *args, void *res)
{
        LINK3args *a = args;
        LINK3res *out = res;
        struct fsobj file = FSOBJ_NULL, dir = FSOBJ_NULL;
        char path[STRLEN_PROC_FD];
        bool entered = false;

        out->status = resolve(c, &a->file, &file);
        if (out->status == NFS3_OK)
                out->status = resolve(c, &a->link.dir, &dir);
        if (out->status == NFS3_OK && file.export != dir.export)
                out->status = NFS3ERR_XDEV;
        if (out->status == NFS3_OK && !dir.client->rw)
                out->status = NFS3ERR_ROFS;
        if (out->status == NFS3_OK && !S_ISDIR(dir.st.st_mode))
                out->status = NFS3ERR_NOTDIR;
        if (out->status == NFS3_OK && S_ISDIR(file.st.st_mode))
                out->status = NFS3ERR_ISDIR;
        if (out->status == NFS3_OK)
                out->status = check_name(a->link.name, true);
        if (out->status == NFS3_OK) {
                out->status = enter(c, &dir, NULL);
                entered = out->status == NFS3_OK;
        }
        if (out->status == NFS3_OK) {
                proc_path(file.fd, path);
                if (linkat(AT_FDCWD, path, dir.fd, a->link.name, AT_SYMLINK_FOLLOW) < 0)
                        out->status = errno_to_nfsstat(-errno);
        }
        post_attr(file.fd, &out->LINK3res_u.resok.file_attributes);
        wcc(&dir, &out->LINK3res_u.resok.linkdir_wcc);
        if (entered)
                cred_leave();
        fsobj_done(&file);
        fsobj_done(&dir);
}

/* The cookie verifier of a directory: stable while the directory exists
 * (the cookies are the filesystem's own stable directory offsets), new
 * when a directory with the same inode number replaces it. */
static void dir_verf(const struct fsobj *d, char out[NFS3_COOKIEVERFSIZE])
{
        struct statx stx;
        uint64_t v = (uint64_t)d->st.st_ino * 0x9e3779b97f4a7c15ull;

        if (statx(d->fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_BTIME, &stx) == 0 &&
            (stx.stx_mask & STATX_BTIME))
                v ^= (uint64_t)stx.stx_btime.tv_sec << 20 ^ stx.stx_btime.tv_nsec;
        if (v == 0)
                v = 1;
        put_verf(v, out);
}

static size_t xdr_len(size_t n)
{
        return (n + 3) & ~(size_t)3;
}

struct dirent_iter {
        int fd;
        char buf[32768] __attribute__((aligned(8)));
        size_t len, pos;
        bool eof;
};

struct linux_dirent64 {
        uint64_t d_ino;
        int64_t d_off;
        unsigned short d_reclen;
        unsigned char d_type;
        char d_name[];
};

static int dirent_next(struct dirent_iter *it, struct linux_dirent64 **ret)
{
        struct linux_dirent64 *d;

        if (it->pos >= it->len) {
                ssize_t n;
                if (it->eof)
                        return 0;
                n = getdents64(it->fd, it->buf, sizeof(it->buf));
                if (n < 0)
                        return negative_errno();
                if (n == 0) {
                        it->eof = true;
                        return 0;
                }
                it->len = (size_t)n;
                it->pos = 0;
        }
        d = (struct linux_dirent64 *)(it->buf + it->pos);
        it->pos += d->d_reclen;
        *ret = d;
        return 1;
}

/* Shared by READDIR and READDIRPLUS. */
static void readdir_common(struct nfsd_call *c, const nfs_fh3 *fh, cookie3 cookie, const char *verf,
                           size_t dircount, size_t maxcount, bool plus, nfsstat3 *status,
                           post_op_attr *dir_attrs, char *ret_verf, entry3 **ret_entries,
                           entryplus3 **ret_plus, bool_t *ret_eof)
{
        static const char zero_verf[NFS3_COOKIEVERFSIZE] = {};
        struct fsobj d = FSOBJ_NULL;
        _cleanup_free_ struct dirent_iter *it = NULL;
        struct linux_dirent64 *de;
        entry3 *last = NULL;
        entryplus3 *last_plus = NULL;
        size_t used, dirused = 0;
        struct cred cred;
        int r;

        *status = begin(c, fh, &d, false, &cred);
        if (*status == NFS3_OK && !S_ISDIR(d.st.st_mode))
                *status = NFS3ERR_NOTDIR;
        if (*status != NFS3_OK)
                goto done;

        dir_verf(&d, ret_verf);
        if (cookie != 0 && memcmp(verf, zero_verf, NFS3_COOKIEVERFSIZE) != 0 &&
            memcmp(verf, ret_verf, NFS3_COOKIEVERFSIZE) != 0) {
                *status = NFS3ERR_BAD_COOKIE;
                goto done;
        }

        it = calloc(1, sizeof(*it));
        if (!it) {
                *status = NFS3ERR_JUKEBOX;
                goto done;
        }
        it->fd = reopen(&d, &cred, O_RDONLY | O_DIRECTORY);
        if (it->fd < 0) {
                *status = errno_to_nfsstat(it->fd);
                goto done;
        }
        if (cookie != 0 && lseek(it->fd, (off_t)cookie, SEEK_SET) < 0) {
                *status = NFS3ERR_BAD_COOKIE;
                goto close;
        }

        maxcount = MIN(maxcount, (size_t)NFSD_MAXIO);
        /* status, dir attributes, verifier, end of list, eof */
        used = 4 + 4 + 84 + 8 + 4 + 4;
        for (;;) {
                size_t namelen, need, dirneed;
                bool dot, dotdot;

                r = dirent_next(it, &de);
                if (r < 0) {
                        *status = errno_to_nfsstat(r);
                        goto close;
                }
                if (r == 0) {
                        *ret_eof = TRUE;
                        break;
                }
                namelen = strlen(de->d_name);
                dot = streq(de->d_name, ".");
                dotdot = streq(de->d_name, "..");
                dirneed = 8 + 4 + xdr_len(namelen) + 8;
                need = 4 + dirneed + (plus ? 4 + 84 + 4 + 4 + FHANDLE_MAX : 0);
                if (used + need > maxcount || (plus && dirused + dirneed > dircount)) {
                        if (!last && !last_plus)
                                *status = NFS3ERR_TOOSMALL;
                        break;
                }
                used += need;
                dirused += dirneed;

                if (!plus) {
                        entry3 *e = nfsd_call_alloc(c, sizeof(*e) + namelen + 1);
                        if (!e) {
                                *status = NFS3ERR_JUKEBOX;
                                goto close;
                        }
                        e->name = (char *)(e + 1);
                        memcpy(e->name, de->d_name, namelen + 1);
                        e->fileid = dotdot && fsobj_is_export_root(&d) ? d.st.st_ino : de->d_ino;
                        e->cookie = (cookie3)de->d_off;
                        if (last)
                                last->nextentry = e;
                        else
                                *ret_entries = e;
                        last = e;
                } else {
                        entryplus3 *e = nfsd_call_alloc(c, sizeof(*e) + namelen + 1);
                        uint8_t *h;
                        struct stat st;

                        if (!e) {
                                *status = NFS3ERR_JUKEBOX;
                                goto close;
                        }
                        e->name = (char *)(e + 1);
                        memcpy(e->name, de->d_name, namelen + 1);
                        e->fileid = dotdot && fsobj_is_export_root(&d) ? d.st.st_ino : de->d_ino;
                        e->cookie = (cookie3)de->d_off;
                        /* ".." gets no handle: the client has it already,
                         * and at the export root it would lead outside. */
                        if (!dotdot &&
                            fstatat(d.fd, dot ? "" : de->d_name, &st,
                                    AT_SYMLINK_NOFOLLOW | (dot ? AT_EMPTY_PATH : 0)) == 0) {
                                post_attr_stat(&st, &e->name_attributes);
                                /* Nor for a directory too deep to be served. */
                                if (dot || !S_ISDIR(st.st_mode) || d.depth < FSOBJ_DEPTH_MAX) {
                                        h = nfsd_call_alloc(c, FHANDLE_MAX);
                                        r = !h ? -ENOMEM
                                            : dot
                                                ? fsobj_handle_of_fd(c, d.export, d.fd, h)
                                                : fsobj_handle_at(c, d.export, d.fd, de->d_name, h);
                                        if (r >= 0) {
                                                post_op_fh3 *ph = &e->name_handle;
                                                ph->handle_follows = TRUE;
                                                ph->post_op_fh3_u.handle.data.data_len = (u_int)r;
                                                ph->post_op_fh3_u.handle.data.data_val = (char *)h;
                                        }
                                }
                        }
                        if (last_plus)
                                last_plus->nextentry = e;
                        else
                                *ret_plus = e;
                        last_plus = e;
                }
        }
close:
        safe_close(it->fd);
done:
        post_attr(d.fd, dir_attrs);
        finish(&d);
}

static void nfs3_readdir(struct nfsd_call *c, void *args, void *res)
{
        READDIR3args *a = args;
        READDIR3res *out = res;
        READDIR3resok *ok = &out->READDIR3res_u.resok;

        readdir_common(c, &a->dir, a->cookie, a->cookieverf, SIZE_MAX, a->count, false,
                       &out->status, &ok->dir_attributes, ok->cookieverf, &ok->reply.entries, NULL,
                       &ok->reply.eof);
}

static void nfs3_readdirplus(struct nfsd_call *c, void *args, void *res)
{
        READDIRPLUS3args *a = args;
        READDIRPLUS3res *out = res;
        READDIRPLUS3resok *ok = &out->READDIRPLUS3res_u.resok;

        readdir_common(c, &a->dir, a->cookie, a->cookieverf, a->dircount, a->maxcount, true,
                       &out->status, &ok->dir_attributes, ok->cookieverf, NULL, &ok->reply.entries,
                       &ok->reply.eof);
}

static void nfs3_fsstat(struct nfsd_call *c, void *args, void *res)
{
        FSSTAT3args *a = args;
        FSSTAT3res *out = res;
        struct fsobj o = FSOBJ_NULL;
        struct statvfs sv;

        out->status = resolve(c, &a->fsroot, &o);
        if (out->status == NFS3_OK && fstatvfs(o.fd, &sv) < 0)
                out->status = errno_to_nfsstat(-errno);
        if (out->status == NFS3_OK) {
                FSSTAT3resok *ok = &out->FSSTAT3res_u.resok;
                ok->tbytes = (size3)sv.f_blocks * sv.f_frsize;
                ok->fbytes = (size3)sv.f_bfree * sv.f_frsize;
                ok->abytes = (size3)sv.f_bavail * sv.f_frsize;
                ok->tfiles = sv.f_files;
                ok->ffiles = sv.f_ffree;
                ok->afiles = sv.f_favail;
                ok->invarsec = 0;
        }
        resolved_attr(&o, &out->FSSTAT3res_u.resok.obj_attributes);
        fsobj_done(&o);
}

static void nfs3_fsinfo(struct nfsd_call *c, void *args, void *res)
{
        FSINFO3args *a = args;
        FSINFO3res *out = res;
        struct fsobj o = FSOBJ_NULL;

        out->status = resolve(c, &a->fsroot, &o);
        if (out->status == NFS3_OK) {
                FSINFO3resok *ok = &out->FSINFO3res_u.resok;
                ok->rtmax = NFSD_MAXIO;
                ok->rtpref = NFSD_MAXIO;
                ok->rtmult = 4096;
                ok->wtmax = NFSD_MAXIO;
                ok->wtpref = NFSD_MAXIO;
                ok->wtmult = 4096;
                ok->dtpref = 65536;
                ok->maxfilesize = (size3)INT64_MAX;
                ok->time_delta.seconds = 0;
                ok->time_delta.nseconds = 1;
                ok->properties = FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME;
        }
        resolved_attr(&o, &out->FSINFO3res_u.resok.obj_attributes);
        fsobj_done(&o);
}

static void nfs3_pathconf(struct nfsd_call *c, void *args, void *res)
{
        PATHCONF3args *a = args;
        PATHCONF3res *out = res;
        struct fsobj o = FSOBJ_NULL;

        out->status = resolve(c, &a->object, &o);
        if (out->status == NFS3_OK) {
                PATHCONF3resok *ok = &out->PATHCONF3res_u.resok;
                ok->linkmax = 65000;
                ok->name_max = NAME_MAX_NFS;
                ok->no_trunc = TRUE;
                ok->chown_restricted = TRUE;
                ok->case_insensitive = FALSE;
                ok->case_preserving = TRUE;
        }
        resolved_attr(&o, &out->PATHCONF3res_u.resok.obj_attributes);
        fsobj_done(&o);
}

static void nfs3_commit(struct nfsd_call *c, void *args, void *res)
{
        COMMIT3args *a = args;
        COMMIT3res *out = res;
        struct fsobj o = FSOBJ_NULL;
        _cleanup_close_ int fd = -1;
        struct cred cred;
        int r;

        out->status = begin(c, &a->file, &o, false, &cred);
        if (out->status == NFS3_OK)
                out->status = check_regular(&o);
        /* What COMMIT needs is write access (with the owner override of
         * WRITE), not read access: a write-only file is committed too. */
        if (out->status == NFS3_OK) {
                fd = reopen(&o, &cred, O_WRONLY);
                if (fd < 0)
                        out->status = errno_to_nfsstat(fd);
        }
        if (out->status == NFS3_OK) {
                r = sync_file(c, fd, false);
                if (r < 0)
                        out->status = errno_to_nfsstat(r);
        }
        if (out->status == NFS3_OK)
                put_verf(atomic_load(&c->server->write_verf), out->COMMIT3res_u.resok.verf);
        wcc(&o, &out->COMMIT3res_u.resok.file_wcc);
        finish(&o);
}

#define PROC(n, fn, A, R)                                                           \
        {                                                                           \
                n, (xdrproc_t)xdr_##A, sizeof(A), (xdrproc_t)xdr_##R, sizeof(R), fn \
        }

static const struct rpc_proc nfs3_procs[] = {
    [0] = {"NULL", (xdrproc_t)rpc_xdr_void, 0, (xdrproc_t)rpc_xdr_void, 0, nfs3_null},
    [1] = PROC("GETATTR", nfs3_getattr, GETATTR3args, GETATTR3res),
    [2] = PROC("SETATTR", nfs3_setattr, SETATTR3args, SETATTR3res),
    [3] = PROC("LOOKUP", nfs3_lookup, LOOKUP3args, LOOKUP3res),
    [4] = PROC("ACCESS", nfs3_access, ACCESS3args, ACCESS3res),
    [5] = PROC("READLINK", nfs3_readlink, READLINK3args, READLINK3res),
    [6] = PROC("READ", nfs3_read, READ3args, READ3res),
    [7] = {"WRITE", (xdrproc_t)rpc_xdr_WRITE3args_inplace, sizeof(WRITE3args),
           (xdrproc_t)xdr_WRITE3res, sizeof(WRITE3res), nfs3_write},
    [8] = PROC("CREATE", nfs3_create, CREATE3args, CREATE3res),
    [9] = PROC("MKDIR", nfs3_mkdir, MKDIR3args, MKDIR3res),
    [10] = PROC("SYMLINK", nfs3_symlink, SYMLINK3args, SYMLINK3res),
    [11] = PROC("MKNOD", nfs3_mknod, MKNOD3args, MKNOD3res),
    [12] = PROC("REMOVE", nfs3_remove, REMOVE3args, REMOVE3res),
    [13] = PROC("RMDIR", nfs3_rmdir, REMOVE3args, REMOVE3res),
    [14] = PROC("RENAME", nfs3_rename, RENAME3args, RENAME3res),
    [15] = PROC("LINK", nfs3_link, LINK3args, LINK3res),
    [16] = PROC("READDIR", nfs3_readdir, READDIR3args, READDIR3res),
    [17] = PROC("READDIRPLUS", nfs3_readdirplus, READDIRPLUS3args, READDIRPLUS3res),
    [18] = PROC("FSSTAT", nfs3_fsstat, FSSTAT3args, FSSTAT3res),
    [19] = PROC("FSINFO", nfs3_fsinfo, FSINFO3args, FSINFO3res),
    [20] = PROC("PATHCONF", nfs3_pathconf, PATHCONF3args, PATHCONF3res),
    [21] = PROC("COMMIT", nfs3_commit, COMMIT3args, COMMIT3res),
};

const struct rpc_program nfs3_program = {
    .prog = NFS3_PROGRAM,
    .vers = NFS3_VERSION,
    .procs = nfs3_procs,
    .n_procs = ELEMENTSOF(nfs3_procs),
};
