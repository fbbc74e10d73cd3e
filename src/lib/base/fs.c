/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <search.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "strv.h"

int mkdir_p_at(int dirfd, const char *path, mode_t mode)
{
        _cleanup_free_ char *p = strdup(path);
        struct stat st;
        char *s;

        if (!p)
                return -ENOMEM;
        if (!*p)
                return -EINVAL;
        /* Most calls find the whole path there, or only its last part
         * missing: a lookup or a mkdir, not a mkdir and a stat of each of
         * its parts. */
        if (fstatat(dirfd, p, &st, 0) == 0 && S_ISDIR(st.st_mode))
                return 0;
        if (mkdirat(dirfd, p, mode) == 0)
                return 0;

        /* Walk the prefixes "a", "a/b", "a/b/c" (skipping repeated slashes). */
        s = p;
        for (;;) {
                char *slash;
                bool last;

                while (*s == '/')
                        s++;
                slash = strchr(s, '/');
                last = !slash || slash[strspn(slash, "/")] == '\0';
                if (slash)
                        *slash = '\0';
                if (*s) {
                        if (mkdirat(dirfd, p, mode) < 0) {
                                if (errno != EEXIST)
                                        return log_debug_errno(errno, "cannot create '%s': %m", p);
                                if (fstatat(dirfd, p, &st, 0) < 0)
                                        return negative_errno();
                                if (!S_ISDIR(st.st_mode))
                                        return log_debug_errno(
                                            ENOTDIR, "'%s' exists and is not a directory", p);
                        }
                }
                if (last)
                        return 0;
                *slash = '/';
                s = slash + 1;
        }
}

int mkdir_parents_at(int dirfd, const char *path, mode_t mode)
{
        _cleanup_free_ char *p = strdup(path);
        char *slash;

        if (!p)
                return -ENOMEM;
        /* Strip trailing slashes, then the last component. */
        for (size_t l = strlen(p); l > 1 && p[l - 1] == '/'; l--)
                p[l - 1] = '\0';
        slash = strrchr(p, '/');
        if (!slash)
                return 0;
        if (slash == p)
                return 0; /* "/x": the parent is the root */
        *slash = '\0';
        return mkdir_p_at(dirfd, p, mode);
}

/* Splits path into its directory (opened) and its last component. */
static int open_parent(int dirfd, const char *path, int *ret_fd, char **ret_base)
{
        _cleanup_free_ char *p = strdup(path);
        _cleanup_free_ char *base = NULL;
        char *slash;
        int fd;

        if (!p)
                return -ENOMEM;
        for (size_t l = strlen(p); l > 1 && p[l - 1] == '/'; l--)
                p[l - 1] = '\0';
        slash = strrchr(p, '/');
        if (!slash) {
                base = strdup(p);
                fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        } else {
                base = strdup(slash + 1);
                if (slash == p)
                        fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                else {
                        *slash = '\0';
                        fd = openat(dirfd, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                }
        }
        if (!base) {
                safe_close(fd);
                return -ENOMEM;
        }
        if (fd < 0)
                return negative_errno();
        if (!*base || streq(base, ".") || streq(base, "..")) {
                close(fd);
                return -EINVAL;
        }
        *ret_fd = fd;
        *ret_base = TAKE_PTR(base);
        return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
        const char *p = data;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Gives an O_TMPFILE inode a name in dfd, so it can be renamed in place. */
static int link_tmpfile(int fd, int dfd, char *ret_name, size_t size, const char *base)
{
        char proc[64];
        uint64_t rnd;

        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        for (int attempt = 0;; attempt++) {
                if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                        rnd = (uint64_t)getpid() * 2654435761u + (uint64_t)attempt;
                snprintf(ret_name, size, ".#%.200s.%016llx", base, (unsigned long long)rnd);
                if (linkat(AT_FDCWD, proc, dfd, ret_name, AT_SYMLINK_FOLLOW) == 0)
                        return 0;
                if (errno != EEXIST || attempt > 16)
                        return negative_errno();
        }
}

static int open_named_tmp(int dfd, char *ret_name, size_t size, const char *base, mode_t mode)
{
        uint64_t rnd;
        int fd;

        for (int attempt = 0;; attempt++) {
                if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                        rnd = (uint64_t)getpid() * 2654435761u + (uint64_t)attempt;
                snprintf(ret_name, size, ".#%.200s.%016llx", base, (unsigned long long)rnd);
                fd = openat(dfd, ret_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                            mode);
                if (fd >= 0)
                        return fd;
                if (errno != EEXIST || attempt > 16)
                        return negative_errno();
        }
}

int write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode)
{
        _cleanup_close_ int dfd = -1, fd = -1;
        _cleanup_free_ char *base = NULL;
        char tmp[NAME_MAX + 1] = "";
        bool anonymous;
        int r;

        r = open_parent(dirfd, path, &dfd, &base);
        if (r < 0)
                return log_debug_errno(r, "cannot open the directory of '%s': %m", path);

        /* Write into an unnamed inode where the filesystem offers one: a
         * writer killed while writing leaves nothing behind, and one killed
         * between link_tmpfile() and the rename leaves a whole copy. */
        fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
        anonymous = fd >= 0;
        if (!anonymous) {
                fd = open_named_tmp(dfd, tmp, sizeof(tmp), base, mode);
                if (fd < 0)
                        return log_debug_errno(fd, "cannot create a temp file for '%s': %m", path);
        }

        r = write_all(fd, data, len);
        /* The umask may have narrowed the mode given to openat(). */
        if (r >= 0 && fchmod(fd, mode) < 0)
                r = negative_errno();
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0 && anonymous)
                r = link_tmpfile(fd, dfd, tmp, sizeof(tmp), base);
        if (r >= 0 && renameat(dfd, tmp, dfd, base) < 0)
                r = negative_errno();
        if (r < 0) {
                if (tmp[0])
                        unlinkat(dfd, tmp, 0);
                return log_debug_errno(r, "cannot write '%s': %m", path);
        }
        /* Make the rename itself durable. */
        if (fsync(dfd) < 0)
                return log_debug_errno(errno, "cannot sync the directory of '%s': %m", path);
        return 0;
}

int read_file_at(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 4096;
        struct stat st;

        fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if ((size_t)st.st_size > max)
                return -EFBIG;
        if (st.st_size > 0)
                cap = (size_t)st.st_size + 1;

        buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        /* Files in /proc report size 0: read until EOF whatever stat said. */
        for (;;) {
                ssize_t n;

                if (len + 1 >= cap) {
                        char *nb;
                        if (cap > max + 1)
                                return -EFBIG;
                        cap *= 2;
                        nb = realloc(buf, cap);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                }
                n = read(fd, buf + len, cap - len - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max)
                        return -EFBIG;
        }
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

int fsync_dir_at(int dirfd, const char *path)
{
        _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0)
                return negative_errno();
        if (fsync(fd) < 0)
                return negative_errno();
        return 0;
}

/* The mount an object at (dirfd, name) lives on, without following a final
 * symlink (a mount point reports the mounted filesystem's mount). */
static int get_mnt_id(int dirfd, const char *name, uint64_t *ret_id, mode_t *ret_mode)
{
        struct statx sx;

        if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_TYPE | STATX_MNT_ID,
                  &sx) < 0)
                return negative_errno();
        if (sx.stx_mask & STATX_MNT_ID)
                *ret_id = sx.stx_mnt_id;
        else
                /* Old kernel: the device number tells filesystems apart, not
                 * binds of the same one; good enough as a fallback. */
                *ret_id = ((uint64_t)sx.stx_dev_major << 32) | sx.stx_dev_minor;
        *ret_mode = sx.stx_mode;
        return 0;
}

static int rm_rf_children(int fd, uint64_t mnt_id)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int r = 0;

        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return negative_errno();
        }

        while ((errno = 0, de = readdir(d))) {
                uint64_t child_mnt;
                mode_t mode;
                int q;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;

                q = get_mnt_id(dirfd(d), de->d_name, &child_mnt, &mode);
                if (q < 0) {
                        if (q != -ENOENT && r == 0)
                                r = q;
                        continue;
                }
                if (child_mnt != mnt_id) {
                        /* Another mount: leave it, and say so at the end. */
                        log_debug("not removing '%s': another mount", de->d_name);
                        if (r == 0)
                                r = -EXDEV;
                        continue;
                }

                if (S_ISDIR(mode)) {
                        int cfd = openat(dirfd(d), de->d_name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (cfd < 0) {
                                if (errno != ENOENT && r == 0)
                                        r = negative_errno();
                                continue;
                        }
                        q = rm_rf_children(cfd, mnt_id);
                        if (q < 0 && r == 0)
                                r = q;
                        if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT &&
                            r == 0)
                                r = negative_errno();
                } else if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT && r == 0)
                        r = negative_errno();
        }
        if (errno != 0 && r == 0)
                r = negative_errno();
        return r;
}

int rm_rf_at(int dirfd, const char *path, unsigned flags)
{
        uint64_t mnt_id;
        mode_t mode;
        int fd, r;

        r = get_mnt_id(dirfd, path, &mnt_id, &mode);
        if (r == -ENOENT && (flags & RM_MISSING_OK))
                return 0;
        if (r < 0)
                return log_debug_errno(r, "cannot remove '%s': %m", path);

        if (!S_ISDIR(mode)) {
                if (!(flags & RM_ROOT))
                        return -ENOTDIR;
                if (unlinkat(dirfd, path, 0) < 0)
                        return log_debug_errno(errno, "cannot remove '%s': %m", path);
                return 0;
        }

        fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return log_debug_errno(errno, "cannot open '%s': %m", path);
        r = rm_rf_children(fd, mnt_id);
        if (r < 0)
                return log_debug_errno(r, "cannot remove everything below '%s': %m", path);
        if ((flags & RM_ROOT) && unlinkat(dirfd, path, AT_REMOVEDIR) < 0)
                return log_debug_errno(errno, "cannot remove '%s': %m", path);
        return 0;
}

/* Copies every xattr of src to dst. follow: the paths' final symlinks are
 * followed (for /proc/self/fd/N paths of open files); otherwise the objects
 * themselves are meant (symlinks, device nodes, sockets). */
static int copy_xattrs_path(const char *src, const char *dst, bool follow)
{
        ssize_t (*list)(const char *, char *, size_t) = follow ? listxattr : llistxattr;
        ssize_t (*get)(const char *, const char *, void *, size_t) = follow ? getxattr : lgetxattr;
        int (*set)(const char *, const char *, const void *, size_t, int) =
            follow ? setxattr : lsetxattr;
        _cleanup_free_ char *names = NULL, *value = NULL;
        size_t value_size = 0;
        ssize_t len;

        len = list(src, NULL, 0);
        if (len < 0)
                return errno == ENOTSUP ? 0 : negative_errno();
        if (len == 0)
                return 0;
        names = malloc((size_t)len);
        if (!names)
                return -ENOMEM;
        len = list(src, names, (size_t)len);
        if (len < 0)
                return negative_errno();

        for (char *n = names; n < names + len; n += strlen(n) + 1) {
                ssize_t vl = get(src, n, NULL, 0);
                if (vl < 0)
                        return negative_errno();
                if ((size_t)vl >= value_size) {
                        char *nv = realloc(value, (size_t)vl + 1);
                        if (!nv)
                                return -ENOMEM;
                        value = nv;
                        value_size = (size_t)vl + 1;
                }
                vl = get(src, n, value, value_size);
                if (vl < 0)
                        return negative_errno();
                if (set(dst, n, value, (size_t)vl, 0) < 0)
                        return log_debug_errno(errno, "cannot set xattr '%s': %m", n);
        }
        return 0;
}

int copy_xattrs_fd(int fd_src, int fd_dst)
{
        char s[64], d[64];

        snprintf(s, sizeof(s), "/proc/self/fd/%d", fd_src);
        snprintf(d, sizeof(d), "/proc/self/fd/%d", fd_dst);
        return copy_xattrs_path(s, d, true);
}

struct inode_link {
        dev_t dev;
        ino_t ino;
        char *path; /* relative to the copy's destination root */
};

struct copy_ctx {
        int dst_root_fd;
        unsigned flags;
        uint64_t src_mnt;
        void *links; /* tsearch tree of struct inode_link */
};

static int inode_link_compare(const void *a, const void *b)
{
        const struct inode_link *x = a, *y = b;

        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        if (x->ino != y->ino)
                return x->ino < y->ino ? -1 : 1;
        return 0;
}

static void inode_link_free(void *p)
{
        struct inode_link *l = p;

        free(l->path);
        free(l);
}

/* Copies in to out keeping holes as holes: only the data extents
 * (SEEK_DATA/SEEK_HOLE) are copied, then the size is set. */
static int copy_data_sparse(int in, int out, off_t size)
{
        off_t data = 0, hole;

        for (;;) {
                data = lseek(in, data, SEEK_DATA);
                if (data < 0) {
                        if (errno == ENXIO)
                                break; /* only a hole is left */
                        return negative_errno();
                }
                hole = lseek(in, data, SEEK_HOLE);
                if (hole < 0)
                        return negative_errno();
                while (data < hole) {
                        off_t o_in = data, o_out = data;
                        ssize_t n =
                            copy_file_range(in, &o_in, out, &o_out, (size_t)(hole - data), 0);

                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0) {
                                /* No copy_file_range here: pread/pwrite. */
                                char buf[65536];
                                size_t want = (size_t)(hole - data) < sizeof(buf)
                                                  ? (size_t)(hole - data)
                                                  : sizeof(buf);

                                n = pread(in, buf, want, data);
                                if (n < 0 && errno == EINTR)
                                        continue;
                                if (n <= 0)
                                        return n < 0 ? negative_errno() : -EIO;
                                for (ssize_t w = 0, k; w < n; w += k) {
                                        k = pwrite(out, buf + w, (size_t)(n - w), data + w);
                                        if (k < 0 && errno == EINTR)
                                                k = 0;
                                        else if (k < 0)
                                                return negative_errno();
                                }
                        }
                        data += n;
                }
        }
        if (ftruncate(out, size) < 0)
                return negative_errno();
        return 0;
}

static int copy_data(int in, int out)
{
        char buf[65536];

        for (;;) {
                ssize_t n = copy_file_range(in, NULL, out, NULL, SIZE_MAX >> 2, 0);
                if (n == 0)
                        return 0;
                if (n > 0)
                        continue;
                if (errno == EINTR)
                        continue;
                if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
                        return negative_errno();
                break; /* fall back to read/write */
        }
        for (;;) {
                ssize_t n = read(in, buf, sizeof(buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        return 0;
                int r = write_all(out, buf, (size_t)n);
                if (r < 0)
                        return r;
        }
}

static int copy_entry(struct copy_ctx *c, int sfd, const char *name, int dfd, const char *dname,
                      const char *rel);

static int copy_dir_contents(struct copy_ctx *c, int sfd, int dfd, const char *rel)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int dup_fd, r;

        dup_fd = fcntl(sfd, F_DUPFD_CLOEXEC, 3);
        if (dup_fd < 0)
                return negative_errno();
        d = fdopendir(dup_fd);
        if (!d) {
                close(dup_fd);
                return negative_errno();
        }
        while ((errno = 0, de = readdir(d))) {
                _cleanup_free_ char *child_rel = NULL;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (asprintf(&child_rel, "%s/%s", rel, de->d_name) < 0)
                        return -ENOMEM;
                r = copy_entry(c, dirfd(d), de->d_name, dfd, de->d_name, child_rel);
                if (r < 0)
                        return r;
        }
        return errno != 0 ? negative_errno() : 0;
}

static int apply_times_owner(struct copy_ctx *c, int dfd, const char *dname, const struct stat *st,
                             bool chmod_it)
{
        struct timespec ts[2] = {st->st_atim, st->st_mtim};

        if ((c->flags & COPY_OWNERS) &&
            fchownat(dfd, dname, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                return log_debug_errno(errno, "cannot chown '%s': %m", dname);
        /* chown clears set-id bits: set the mode after it. */
        if (chmod_it && fchmodat(dfd, dname, st->st_mode & 07777, 0) < 0)
                return log_debug_errno(errno, "cannot chmod '%s': %m", dname);
        if (utimensat(dfd, dname, ts, AT_SYMLINK_NOFOLLOW) < 0)
                return log_debug_errno(errno, "cannot set the times of '%s': %m", dname);
        return 0;
}

static int copy_dir(struct copy_ctx *c, int sfd, const char *name, int dfd, const char *dname,
                    const char *rel, const struct stat *st, bool create)
{
        _cleanup_close_ int csfd = -1, cdfd = -1;
        int r;

        if (c->flags & COPY_SAME_MOUNT) {
                uint64_t mnt;
                mode_t m;

                r = get_mnt_id(sfd, name, &mnt, &m);
                if (r < 0)
                        return r;
                if (mnt != c->src_mnt)
                        return 0;
        }
        /* Created private; the real mode is set once the children are in. */
        if (create && mkdirat(dfd, dname, 0700) < 0)
                return log_debug_errno(errno, "cannot create '%s': %m", rel);
        csfd = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (csfd < 0)
                return log_debug_errno(errno, "cannot open '%s': %m", rel);
        cdfd = openat(dfd, dname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cdfd < 0)
                return log_debug_errno(errno, "cannot open '%s': %m", rel);
        r = copy_dir_contents(c, csfd, cdfd, rel);
        if (r < 0)
                return r;
        if ((c->flags & COPY_XATTRS) && (r = copy_xattrs_fd(csfd, cdfd)) < 0)
                return log_debug_errno(r, "cannot copy the xattrs of '%s': %m", rel);
        return apply_times_owner(c, dfd, dname, st, true);
}

static int copy_entry(struct copy_ctx *c, int sfd, const char *name, int dfd, const char *dname,
                      const char *rel)
{
        struct stat st;
        int r;

        if (fstatat(sfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return log_debug_errno(errno, "cannot stat '%s': %m", rel);

        if (c->flags & COPY_MERGE) {
                struct stat dst;
                if (fstatat(dfd, dname, &dst, AT_SYMLINK_NOFOLLOW) == 0) {
                        if (S_ISDIR(dst.st_mode) && S_ISDIR(st.st_mode))
                                return copy_dir(c, sfd, name, dfd, dname, rel, &st, false);
                        r = rm_rf_at(dfd, dname, RM_ROOT);
                        if (r < 0)
                                return r;
                }
        }

        if (S_ISDIR(st.st_mode))
                return copy_dir(c, sfd, name, dfd, dname, rel, &st, true);

        if (S_ISREG(st.st_mode)) {
                _cleanup_close_ int in = -1, out = -1;

                if (st.st_nlink > 1) {
                        struct inode_link key = {.dev = st.st_dev, .ino = st.st_ino}, **found;

                        found = tfind(&key, &c->links, inode_link_compare);
                        if (found) {
                                /* rel starts with '/'; paths are relative to the dst root */
                                if (linkat(c->dst_root_fd, (*found)->path + 1, dfd, dname, 0) < 0)
                                        return log_debug_errno(errno, "cannot link '%s': %m", rel);
                                return 0;
                        }
                }

                in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
                if (in < 0)
                        return log_debug_errno(errno, "cannot open '%s': %m", rel);
                out =
                    openat(dfd, dname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (out < 0)
                        return log_debug_errno(errno, "cannot create '%s': %m", rel);
                /* A file with fewer blocks than its size has holes. */
                if ((off_t)st.st_blocks * 512 < st.st_size)
                        r = copy_data_sparse(in, out, st.st_size);
                else
                        r = copy_data(in, out);
                if (r < 0)
                        return log_debug_errno(r, "cannot copy '%s': %m", rel);
                /* Owner first: chown clears security.capability (and the
                 * set-id bits), so the xattrs and the mode come after it. */
                if ((c->flags & COPY_OWNERS) && fchown(out, st.st_uid, st.st_gid) < 0)
                        return log_debug_errno(errno, "cannot chown '%s': %m", rel);
                if ((c->flags & COPY_XATTRS) && (r = copy_xattrs_fd(in, out)) < 0)
                        return log_debug_errno(r, "cannot copy the xattrs of '%s': %m", rel);
                if (fchmod(out, st.st_mode & 07777) < 0)
                        return log_debug_errno(errno, "cannot chmod '%s': %m", rel);
                struct timespec ts[2] = {st.st_atim, st.st_mtim};
                if (futimens(out, ts) < 0)
                        return log_debug_errno(errno, "cannot set the times of '%s': %m", rel);

                if (st.st_nlink > 1) {
                        struct inode_link *l = calloc(1, sizeof(*l));
                        if (!l)
                                return -ENOMEM;
                        *l = (struct inode_link){
                            .dev = st.st_dev, .ino = st.st_ino, .path = strdup(rel)};
                        if (!l->path || !tsearch(l, &c->links, inode_link_compare)) {
                                inode_link_free(l);
                                return -ENOMEM;
                        }
                }
                return 0;
        }

        if (S_ISLNK(st.st_mode)) {
                _cleanup_free_ char *target = malloc((size_t)st.st_size + 1);
                ssize_t n;

                if (!target)
                        return -ENOMEM;
                n = readlinkat(sfd, name, target, (size_t)st.st_size + 1);
                if (n < 0)
                        return log_debug_errno(errno, "cannot read the link '%s': %m", rel);
                if (n > st.st_size)
                        return log_debug_errno(EAGAIN, "link '%s' changed while copied", rel);
                target[n] = '\0';
                if (symlinkat(target, dfd, dname) < 0)
                        return log_debug_errno(errno, "cannot create the link '%s': %m", rel);
        } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode) ||
                   S_ISSOCK(st.st_mode)) {
                /* Device nodes include overlay whiteouts (char 0/0). */
                if (mknodat(dfd, dname, st.st_mode, st.st_rdev) < 0)
                        return log_debug_errno(errno, "cannot create the node '%s': %m", rel);
        } else
                return log_debug_errno(EBADF, "'%s' has an unknown file type", rel);

        if (c->flags & COPY_XATTRS) {
                char sp[64], dp[64];
                _cleanup_free_ char *s = NULL, *d = NULL;

                snprintf(sp, sizeof(sp), "/proc/self/fd/%d/", sfd);
                snprintf(dp, sizeof(dp), "/proc/self/fd/%d/", dfd);
                if (asprintf(&s, "%s%s", sp, name) < 0 || asprintf(&d, "%s%s", dp, dname) < 0)
                        return -ENOMEM;
                r = copy_xattrs_path(s, d, false);
                if (r < 0)
                        return log_debug_errno(r, "cannot copy the xattrs of '%s': %m", rel);
        }
        return apply_times_owner(c, dfd, dname, &st, !S_ISLNK(st.st_mode));
}

int copy_tree_at(int src_dirfd, const char *src, int dst_dirfd, const char *dst, unsigned flags)
{
        _cleanup_close_ int sparent = -1, dparent = -1;
        _cleanup_free_ char *sbase = NULL, *dbase = NULL;
        struct copy_ctx c = {.flags = flags, .dst_root_fd = -1};
        mode_t mode;
        int r;

        r = open_parent(src_dirfd, src, &sparent, &sbase);
        if (r < 0)
                return log_debug_errno(r, "cannot open the directory of '%s': %m", src);
        r = open_parent(dst_dirfd, dst, &dparent, &dbase);
        if (r < 0)
                return log_debug_errno(r, "cannot open the directory of '%s': %m", dst);
        r = get_mnt_id(sparent, sbase, &c.src_mnt, &mode);
        if (r < 0)
                return log_debug_errno(r, "cannot copy '%s': %m", src);

        if (S_ISDIR(mode)) {
                /* Hard links are recreated relative to the destination root. */
                if (mkdirat(dparent, dbase, 0700) < 0 && !(errno == EEXIST && (flags & COPY_MERGE)))
                        return log_debug_errno(errno, "cannot create '%s': %m", dst);
                c.dst_root_fd = openat(dparent, dbase, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (c.dst_root_fd < 0)
                        return negative_errno();
                struct stat st;
                if (fstatat(sparent, sbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        r = negative_errno();
                else
                        r = copy_dir(&c, sparent, sbase, dparent, dbase, "", &st, false);
        } else {
                c.dst_root_fd = fcntl(dparent, F_DUPFD_CLOEXEC, 3);
                r = copy_entry(&c, sparent, sbase, dparent, dbase, "");
        }
        safe_close(c.dst_root_fd);
        tdestroy(c.links, inode_link_free);
        return r;
}

int mkdtemp_malloc(const char *prefix, char **ret)
{
        const char *tmp = getenv("TMPDIR");
        char *p;

        if (!tmp || tmp[0] != '/')
                tmp = "/tmp";
        if (asprintf(&p, "%s/%s-XXXXXX", tmp, prefix) < 0)
                return -ENOMEM;
        if (!mkdtemp(p)) {
                int r = negative_errno();
                free(p);
                return r;
        }
        *ret = p;
        return 0;
}

int dir_list_fd(int dirfd, char ***ret)
{
        _cleanup_closedir_ DIR *d = NULL;
        _cleanup_strv_ char **l = NULL;
        struct dirent *de;
        int fd;

        fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        rewinddir(d); /* a dup shares its offset with earlier reads */
        while ((errno = 0, de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..") &&
                    strv_extend(&l, de->d_name) < 0)
                        return -ENOMEM;
        if (errno != 0)
                return -errno;
        strv_sort(l);
        *ret = TAKE_PTR(l);
        return 0;
}
