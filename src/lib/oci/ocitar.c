/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "archive-lazy.h"
#include "changes.h"
#include "cleanup.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "ocimap.h"
#include "ocitar.h"
#include "strv.h"

static void archive_freep(struct archive **a)
{
        if (*a)
                archive_free(*a);
}
#define _cleanup_archive_ _cleanup_(archive_freep)

static void digest_format(struct sha256_ctx *c, char ret[7 + SHA256_HEX_SIZE])
{
        uint8_t d[SHA256_DIGEST_SIZE];

        sha256_final(c, d);
        memcpy(ret, "sha256:", 7);
        for (size_t i = 0; i < SHA256_DIGEST_SIZE; i++)
                snprintf(ret + 7 + 2 * i, 3, "%02x", d[i]);
}

/* The xattrs that the format carries of the entry name in dfd, in name
 * order: read through fd when it is open (a file or a directory), else
 * through the path /proc/self/fd/DFD/NAME, whose last component is not
 * followed (a symlink's own xattrs, a device's, a fifo's). Sizes are
 * asked first: most entries have none, and the kernel allocates a buffer
 * as large as the one it is given. */
static int entry_add_xattrs(struct archive_entry *e, int fd, int dfd, const char *name)
{
        _cleanup_free_ char *names = NULL, *path = NULL;
        _cleanup_strv_ char **l = NULL;
        ssize_t n;

        if (fd < 0 && asprintf(&path, "/proc/self/fd/%d/%s", dfd, name) < 0)
                return -ENOMEM;
        for (;;) {
                n = fd >= 0 ? flistxattr(fd, NULL, 0) : llistxattr(path, NULL, 0);
                if (n <= 0)
                        return n == 0 || errno == ENOTSUP ? 0 : -errno;
                free(names);
                names = malloc((size_t)n);
                if (!names)
                        return -ENOMEM;
                n = fd >= 0 ? flistxattr(fd, names, (size_t)n) : llistxattr(path, names, (size_t)n);
                if (n >= 0)
                        break;
                if (errno != ERANGE) /* ERANGE: one was added since */
                        return -errno;
        }
        for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1)
                if (oci_xattr_exported(names + i) && strv_extend(&l, names + i) < 0)
                        return -ENOMEM;
        strv_sort(l);
        STRV_FOREACH (s, l) {
                _cleanup_free_ char *v = NULL;
                ssize_t len;

                for (;;) {
                        len = fd >= 0 ? fgetxattr(fd, *s, NULL, 0) : lgetxattr(path, *s, NULL, 0);
                        if (len < 0)
                                return -errno;
                        free(v);
                        v = malloc((size_t)len + 1);
                        if (!v)
                                return -ENOMEM;
                        len = fd >= 0 ? fgetxattr(fd, *s, v, (size_t)len)
                                      : lgetxattr(path, *s, v, (size_t)len);
                        if (len >= 0)
                                break;
                        if (errno != ERANGE)
                                return -errno;
                }
                archive_entry_xattr_add_entry(e, *s, v, (size_t)len);
        }
        return 0;
}

struct tar_writer {
        struct archive *a;
        int out_fd;
        struct sha256_ctx sha;
        uint64_t size;
        int error; /* of the output */
        struct hardlink {
                dev_t dev;
                ino_t ino;
                char *path;
        } * links;
        size_t n_links;
        char **ret_error;
};

static la_ssize_t tar_write_cb(struct archive *a, void *userdata, const void *buf, size_t len)
{
        struct tar_writer *w = userdata;

        for (size_t done = 0; done < len;) {
                ssize_t k = write(w->out_fd, (const char *)buf + done, len - done);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        w->error = -errno;
                        archive_set_error(a, errno, "write failed");
                        return -1;
                }
                done += (size_t)k;
        }
        sha256_update(&w->sha, buf, len);
        w->size += len;
        return (la_ssize_t)len;
}

/* A fresh entry with the fields every entry carries: path, type and
 * permission bits, numeric owner, mtime. No names, atime or ctime. */
static struct archive_entry *entry_new(const char *path, mode_t mode, const struct stat *st)
{
        struct archive_entry *e = archive_entry_new();

        if (!e)
                return NULL;
        archive_entry_set_pathname(e, path);
        archive_entry_set_mode(e, mode);
        archive_entry_set_uid(e, st->st_uid);
        archive_entry_set_gid(e, st->st_gid);
        archive_entry_set_mtime(e, st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
        return e;
}

static int tar_put(struct tar_writer *w, struct archive_entry *e, const char *path)
{
        if (archive_write_header(w->a, e) != ARCHIVE_OK)
                return set_error_message(w->ret_error, w->error ? w->error : -EIO,
                                         "cannot write the tar entry '%s': %s", path,
                                         archive_error_string(w->a));
        return 0;
}

static int tar_put_marker(struct tar_writer *w, const char *dir, const char *name,
                          const struct stat *st)
{
        _cleanup_free_ char *path = NULL;
        struct archive_entry *e;
        int r;

        if (asprintf(&path, "%s%s%s", dir ? dir : "", dir ? "/" : "", name) < 0)
                return -ENOMEM;
        e = entry_new(path, S_IFREG | (st->st_mode & 07777), st);
        if (!e)
                return -ENOMEM;
        archive_entry_set_size(e, 0);
        r = tar_put(w, e, path);
        archive_entry_free(e);
        return r;
}

/* The content of the file open at fd, size bytes as its entry says. Each
 * read asks for one byte more than is left, so that a short read ends the
 * file without a read of its end, and a file that grew is seen. */
static int tar_put_content(struct tar_writer *w, int fd, uint64_t size, const char *path)
{
        char buf[65536];
        uint64_t left = size;
        ssize_t n;

        for (;;) {
                size_t want = left < sizeof(buf) ? (size_t)left + 1 : sizeof(buf);

                n = read(fd, buf, want);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return set_error_message(w->ret_error, -errno, "cannot read '%s'", path);
                }
                if (n == 0)
                        return 0;
                if ((uint64_t)n > left)
                        return set_error_message(w->ret_error, -EIO,
                                                 "'%s' grew while it was packed", path);
                if (archive_write_data(w->a, buf, (size_t)n) != n)
                        return set_error_message(w->ret_error, w->error ? w->error : -EIO,
                                                 "cannot write the content of '%s': %s", path,
                                                 archive_error_string(w->a));
                left -= (uint64_t)n;
                if ((size_t)n < want)
                        return 0;
        }
}

static int tar_walk(struct tar_writer *w, int dfd, const char *prefix, const char *shown);

/* One entry of the tree: name in dfd, path its path in the tar. */
static int tar_put_one(struct tar_writer *w, int dfd, const char *name, const char *path,
                       const char *shown, const char *prefix)
{
        _cleanup_close_ int fd = -1;
        struct archive_entry *e = NULL;
        char target[PATH_MAX];
        struct stat st;
        ssize_t n;
        int r = 0;

        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return set_error_message(w->ret_error, -errno, "cannot stat '%s/%s'", shown, path);
        if (oci_name_reserved(name))
                return set_error_message(w->ret_error, -EINVAL,
                                         "'%s/%s' starts with '" OCI_WH_PREFIX
                                         "', which an OCI layer reads as a whiteout",
                                         shown, path);
        if (changes_is_whiteout_at(dfd, name, &st)) {
                _cleanup_free_ char *wh = NULL;

                if (asprintf(&wh, OCI_WH_PREFIX "%s", name) < 0)
                        return -ENOMEM;
                return tar_put_marker(w, prefix, wh, &st);
        }
        if (S_ISSOCK(st.st_mode))
                return set_error_message(w->ret_error, -EINVAL,
                                         "'%s/%s' is a socket, which a layer tar cannot carry",
                                         shown, path);

        if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
                for (size_t i = 0; i < w->n_links; i++)
                        if (w->links[i].dev == st.st_dev && w->links[i].ino == st.st_ino) {
                                e = entry_new(path, st.st_mode, &st);
                                if (!e)
                                        return -ENOMEM;
                                archive_entry_set_hardlink(e, w->links[i].path);
                                archive_entry_set_size(e, 0);
                                r = tar_put(w, e, path);
                                archive_entry_free(e);
                                return r;
                        }
                struct hardlink *l = realloc(w->links, (w->n_links + 1) * sizeof(*l));
                if (!l)
                        return -ENOMEM;
                w->links = l;
                l[w->n_links].path = strdup(path);
                if (!l[w->n_links].path)
                        return -ENOMEM;
                l[w->n_links].dev = st.st_dev;
                l[w->n_links++].ino = st.st_ino;
        }

        if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
                fd = openat(dfd, name,
                            O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
                                (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
                if (fd < 0)
                        return set_error_message(w->ret_error, -errno, "cannot open '%s/%s'", shown,
                                                 path);
        }

        e = entry_new(path, st.st_mode, &st);
        if (!e)
                return -ENOMEM;
        if (S_ISLNK(st.st_mode)) {
                n = readlinkat(dfd, name, target, sizeof(target) - 1);
                if (n < 0) {
                        archive_entry_free(e);
                        return set_error_message(w->ret_error, -errno,
                                                 "cannot read the link '%s/%s'", shown, path);
                }
                target[n] = 0;
                archive_entry_set_symlink(e, target);
        } else {
                if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
                        archive_entry_set_rdev(e, st.st_rdev);
                archive_entry_set_size(e, S_ISREG(st.st_mode) ? st.st_size : 0);
        }
        r = entry_add_xattrs(e, fd, dfd, name);
        if (r < 0) {
                archive_entry_free(e);
                return set_error_message(w->ret_error, r, "cannot read the xattrs of '%s/%s'",
                                         shown, path);
        }
        r = tar_put(w, e, path);
        archive_entry_free(e);
        if (r < 0)
                return r;
        if (S_ISREG(st.st_mode))
                return tar_put_content(w, fd, (uint64_t)st.st_size, path);
        if (!S_ISDIR(st.st_mode))
                return 0;
        if (changes_is_opaque_fd(fd)) {
                struct stat mst = st;

                mst.st_mode = S_IFREG; /* no permission bits: a marker, as a whiteout is */
                r = tar_put_marker(w, path, OCI_WH_OPAQUE, &mst);
                if (r < 0)
                        return r;
        }
        return tar_walk(w, fd, path, shown);
}

/* Depth first, the names of each directory in strcmp order. */
static int tar_walk(struct tar_writer *w, int dfd, const char *prefix, const char *shown)
{
        _cleanup_strv_ char **names = NULL;
        int r;

        r = dir_list_fd(dfd, &names);
        if (r < 0)
                return set_error_message(w->ret_error, r, "cannot read the directory '%s/%s'",
                                         shown, prefix ? prefix : "");
        STRV_FOREACH (n, names) {
                _cleanup_free_ char *path = NULL;

                if (asprintf(&path, "%s%s%s", prefix ? prefix : "", prefix ? "/" : "", *n) < 0)
                        return -ENOMEM;
                r = tar_put_one(w, dfd, *n, path, shown, prefix);
                if (r < 0)
                        return r;
        }
        return 0;
}

int oci_tar_write_at(int dirfd, const char *tree, int out_fd, struct oci_blob_info *ret,
                     char **ret_error)
{
        _cleanup_archive_ struct archive *a = NULL;
        _cleanup_close_ int fd = -1;
        struct tar_writer w = {.out_fd = out_fd, .ret_error = ret_error};
        int r;

        fd = openat(dirfd, tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return set_error_message(ret_error, -errno, "cannot open the layer tree '%s'",
                                         tree);
        r = archive_lazy_load(ret_error);
        if (r < 0)
                return r;
        a = archive_write_new();
        if (!a)
                return -ENOMEM;
        sha256_init(&w.sha);
        w.a = a;
        /* pax: ustar headers with the records ustar cannot hold (long
         * names, xattrs as SCHILY.xattr, nanosecond mtimes); no atime or
         * ctime is set, so none is written */
        if (archive_write_set_format_pax(a) != ARCHIVE_OK ||
            archive_write_set_format_option(a, "pax", "xattrheader", "SCHILY") != ARCHIVE_OK ||
            archive_write_add_filter_none(a) != ARCHIVE_OK ||
            /* written in blocks of 640 KiB, the last one padded to a
             * multiple of 10240 bytes: the bytes of blocks of 10240 (the
             * tar default, which the digests of earlier layers have), in
             * 64 times fewer writes */
            archive_write_set_bytes_per_block(a, 64 * 10240) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(a, 10240) != ARCHIVE_OK ||
            archive_write_open(a, &w, NULL, tar_write_cb, NULL) != ARCHIVE_OK)
                return set_error_message(ret_error, -EIO, "cannot start the tar: %s",
                                         archive_error_string(a));
        r = tar_walk(&w, fd, NULL, tree);
        if (r >= 0 && archive_write_close(a) != ARCHIVE_OK)
                r = set_error_message(ret_error, w.error ? w.error : -EIO,
                                      "cannot finish the tar of '%s': %s", tree,
                                      archive_error_string(a));
        for (size_t i = 0; i < w.n_links; i++)
                free(w.links[i].path);
        free(w.links);
        if (r < 0)
                return r;
        digest_format(&w.sha, ret->digest);
        ret->size = w.size;
        return 0;
}

/* ---- unpacking ---- */

struct tar_reader {
        int in_fd;
        struct sha256_ctx sha;
        uint64_t size;
        char buf[65536];
        struct dir_time {
                char *path;
                struct timespec mtime;
        } * dirs;
        size_t n_dirs;
        int root_fd;
        const char *shown;
        char **ret_error;
};

static la_ssize_t tar_read_cb(struct archive *a, void *userdata, const void **ret)
{
        struct tar_reader *t = userdata;
        ssize_t n;

        do
                n = read(t->in_fd, t->buf, sizeof(t->buf));
        while (n < 0 && errno == EINTR);
        if (n < 0) {
                archive_set_error(a, errno, "read failed");
                return -1;
        }
        sha256_update(&t->sha, t->buf, (size_t)n);
        t->size += (uint64_t)n;
        *ret = t->buf;
        return n;
}

/* Opens the parent directory of the normalized path inside the root,
 * creating missing directories (0755) and never following a symlink.
 * *ret_base points at the last component. */
static int open_parent(struct tar_reader *t, char *path, const char **ret_base)
{
        _cleanup_close_ int cur = -1;
        char *p = path, *slash;

        cur = fcntl(t->root_fd, F_DUPFD_CLOEXEC, 3);
        if (cur < 0)
                return -errno;
        while ((slash = strchr(p, '/'))) {
                int next;

                *slash = 0;
                next = openat(cur, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (next < 0 && errno == ENOENT) {
                        if (mkdirat(cur, p, 0755) < 0 && errno != EEXIST) {
                                *slash = '/';
                                return -errno;
                        }
                        next = openat(cur, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                }
                *slash = '/';
                if (next < 0)
                        return errno == ELOOP ? -EINVAL : -errno;
                close(cur);
                cur = next;
                p = slash + 1;
        }
        *ret_base = p;
        return TAKE_FD(cur);
}

/* The entry's xattrs on base in pfd: through an fd for a file or a
 * directory, else through /proc/self/fd/PFD/BASE without following its
 * last component (a symlink's own xattrs, trusted.* as overlay layers
 * have them; the kernel allows no user.* there). */
static int extract_xattrs(struct archive_entry *e, int pfd, const char *base, mode_t type)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        const char *name;
        const void *value;
        size_t size;

        if (archive_entry_xattr_reset(e) == 0)
                return 0;
        if (S_ISDIR(type) || S_ISREG(type)) {
                fd = openat(pfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
        } else if (asprintf(&path, "/proc/self/fd/%d/%s", pfd, base) < 0)
                return -ENOMEM;
        while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK)
                if ((fd >= 0 ? fsetxattr(fd, name, value, size, 0)
                             : lsetxattr(path, name, value, size, 0)) < 0)
                        return -errno;
        return 0;
}

static int extract_content(struct archive *a, struct tar_reader *t, int pfd, const char *base,
                           const char *path, int64_t size)
{
        _cleanup_close_ int fd = -1;
        const void *buf;
        size_t len;
        la_int64_t off;
        int k;

        fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return set_error_message(t->ret_error, -errno, "cannot create '%s/%s'", t->shown,
                                         path);
        while ((k = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK)
                for (size_t done = 0; done < len;) {
                        ssize_t n = pwrite(fd, (const char *)buf + done, len - done,
                                           (off_t)off + (off_t)done);
                        if (n < 0)
                                return set_error_message(t->ret_error, -errno,
                                                         "cannot write '%s/%s'", t->shown, path);
                        done += (size_t)n;
                }
        if (k != ARCHIVE_EOF)
                return set_error_message(t->ret_error, -EBADMSG,
                                         "cannot read the content of '%s' from the tar: %s", path,
                                         archive_error_string(a));
        /* a sparse file's last hole */
        if (ftruncate(fd, (off_t)size) < 0)
                return set_error_message(t->ret_error, -errno, "cannot write '%s/%s'", t->shown,
                                         path);
        return 0;
}

/* Creates one plain entry (not a marker) named base in pfd. */
static int extract_node(struct archive *a, struct tar_reader *t, struct archive_entry *e, int pfd,
                        const char *base, const char *path)
{
        mode_t mode = archive_entry_mode(e), type = mode & S_IFMT;
        const char *link = archive_entry_hardlink(e);
        struct stat st;

        if (link) {
                _cleanup_free_ char *target = NULL;
                _cleanup_close_ int tfd = -1;
                const char *tbase;
                int r;

                r = oci_entry_path_normalize(link, &target);
                if (r < 0 || !*target)
                        return set_error_message(
                            t->ret_error, -EINVAL,
                            "the tar entry '%s' links to '%s', outside the layer", path, link);
                tfd = open_parent(t, target, &tbase);
                if (tfd < 0 || linkat(tfd, tbase, pfd, base, 0) < 0)
                        return set_error_message(t->ret_error, tfd < 0 ? tfd : -errno,
                                                 "cannot link '%s/%s' to '%s'", t->shown, path,
                                                 target);
                return 1; /* the inode's metadata came with the first name */
        }
        switch (type) {
        case S_IFDIR:
                if (mkdirat(pfd, base, 0700) < 0 &&
                    !(errno == EEXIST && fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) >= 0 &&
                      S_ISDIR(st.st_mode)))
                        return set_error_message(t->ret_error, -errno, "cannot create '%s/%s'",
                                                 t->shown, path);
                return 0;
        case S_IFREG:
                return extract_content(a, t, pfd, base, path, archive_entry_size(e));
        case S_IFLNK:
                if (symlinkat(archive_entry_symlink(e) ? archive_entry_symlink(e) : "", pfd, base) <
                    0)
                        return set_error_message(t->ret_error, -errno, "cannot create '%s/%s'",
                                                 t->shown, path);
                return 0;
        case S_IFCHR:
        case S_IFBLK:
        case S_IFIFO:
                if (mknodat(pfd, base, type | 0600, archive_entry_rdev(e)) < 0)
                        return set_error_message(t->ret_error, -errno, "cannot create '%s/%s'",
                                                 t->shown, path);
                return 0;
        default:
                return set_error_message(t->ret_error, -EINVAL,
                                         "the tar entry '%s' has a type a layer cannot hold (%o)",
                                         path, (unsigned)type);
        }
}

/* Owner first (chown clears set-id bits and security.capability), then
 * the mode, the xattrs and, except for directories (whose times change
 * while they fill), the times. */
static int extract_metadata(struct tar_reader *t, struct archive_entry *e, int pfd,
                            const char *base, const char *path)
{
        mode_t mode = archive_entry_mode(e), type = mode & S_IFMT;
        struct timespec ts[2] = {
            {archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
            {archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
        };
        int r;

        if (fchownat(pfd, base, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e),
                     AT_SYMLINK_NOFOLLOW) < 0)
                return set_error_message(t->ret_error, -errno, "cannot set the owner of '%s/%s'",
                                         t->shown, path);
        if (!S_ISLNK(type) && fchmodat(pfd, base, mode & 07777, 0) < 0)
                return set_error_message(t->ret_error, -errno, "cannot set the mode of '%s/%s'",
                                         t->shown, path);
        r = extract_xattrs(e, pfd, base, type);
        if (r < 0)
                return set_error_message(t->ret_error, r, "cannot set the xattrs of '%s/%s'",
                                         t->shown, path);
        if (S_ISDIR(type)) {
                struct dir_time *d = realloc(t->dirs, (t->n_dirs + 1) * sizeof(*d));

                if (!d)
                        return -ENOMEM;
                t->dirs = d;
                d[t->n_dirs].path = strdup(path);
                if (!d[t->n_dirs].path)
                        return -ENOMEM;
                d[t->n_dirs++].mtime = ts[1];
                return 0;
        }
        if (utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
                return set_error_message(t->ret_error, -errno, "cannot set the times of '%s/%s'",
                                         t->shown, path);
        return 0;
}

static int extract_entry(struct archive *a, struct tar_reader *t, struct archive_entry *e)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int pfd = -1;
        enum oci_entry_kind kind;
        const char *base, *target = NULL;
        int r;

        r = oci_entry_path_normalize(archive_entry_pathname(e), &path);
        if (r < 0)
                return set_error_message(t->ret_error, r, "the tar entry '%s' leaves the layer",
                                         archive_entry_pathname(e));
        if (!*path)
                return 0; /* the root itself: the layer dir's own */
        pfd = open_parent(t, path, &base);
        if (pfd < 0)
                return set_error_message(t->ret_error, pfd == -EINVAL ? -EINVAL : pfd,
                                         "cannot open the directory of the tar entry '%s'%s", path,
                                         pfd == -EINVAL ? " (a symlink on the way)" : "");
        r = oci_entry_classify(base, &kind, &target);
        if (r < 0)
                return set_error_message(t->ret_error, r,
                                         "the tar entry '%s' is a malformed whiteout", path);
        if (kind == OCI_ENTRY_OPAQUE) {
                if (fsetxattr(pfd, "trusted.overlay.opaque", "y", 1, 0) < 0)
                        return set_error_message(t->ret_error, -errno, "cannot mark '%s/%s' opaque",
                                                 t->shown, path);
                return 0;
        }
        if (kind == OCI_ENTRY_WHITEOUT) {
                struct timespec ts[2] = {
                    {archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
                    {archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
                };

                if (mknodat(pfd, target, S_IFCHR | (archive_entry_mode(e) & 07777), makedev(0, 0)) <
                    0)
                        return set_error_message(t->ret_error, -errno,
                                                 "cannot create the whiteout of '%s' in '%s'", path,
                                                 t->shown);
                if (fchownat(pfd, target, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e),
                             AT_SYMLINK_NOFOLLOW) < 0 ||
                    utimensat(pfd, target, ts, AT_SYMLINK_NOFOLLOW) < 0)
                        return set_error_message(t->ret_error, -errno,
                                                 "cannot set the whiteout of '%s' in '%s'", path,
                                                 t->shown);
                return 0;
        }
        r = extract_node(a, t, e, pfd, base, path);
        if (r != 0)
                return r < 0 ? r : 0;
        return extract_metadata(t, e, pfd, base, path);
}

/* The directories' times, last created first, once nothing changes them. */
static int extract_dir_times(struct tar_reader *t)
{
        for (size_t i = t->n_dirs; i > 0; i--) {
                struct dir_time *d = &t->dirs[i - 1];
                struct timespec ts[2] = {d->mtime, d->mtime};

                if (utimensat(t->root_fd, d->path, ts, AT_SYMLINK_NOFOLLOW) < 0)
                        return set_error_message(t->ret_error, -errno,
                                                 "cannot set the times of '%s/%s'", t->shown,
                                                 d->path);
        }
        return 0;
}

int oci_tar_extract_at(int in_fd, int dirfd, const char *tree, const char *expected_digest,
                       struct oci_blob_info *ret, char **ret_error)
{
        _cleanup_archive_ struct archive *a = NULL;
        _cleanup_free_ struct tar_reader *t = NULL;
        struct archive_entry *e;
        char digest[7 + SHA256_HEX_SIZE];
        int k, r = 0;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->in_fd = in_fd;
        t->shown = tree;
        t->ret_error = ret_error;
        sha256_init(&t->sha);
        r = archive_lazy_load(ret_error);
        if (r < 0)
                return r;
        t->root_fd = openat(dirfd, tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (t->root_fd < 0)
                return set_error_message(ret_error, -errno, "cannot open '%s'", tree);
        a = archive_read_new();
        if (!a) {
                close(t->root_fd);
                return -ENOMEM;
        }
        archive_read_support_format_tar(a);
        archive_read_support_filter_gzip(a);
        archive_read_support_filter_none(a);
        if (archive_read_open(a, t, NULL, tar_read_cb, NULL) != ARCHIVE_OK)
                r = set_error_message(ret_error, -EBADMSG, "cannot read the layer tar: %s",
                                      archive_error_string(a));
        while (r >= 0 && (k = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
                if (k != ARCHIVE_OK && k != ARCHIVE_WARN) {
                        r = set_error_message(ret_error, -EBADMSG, "cannot read the layer tar: %s",
                                              archive_error_string(a));
                        break;
                }
                r = extract_entry(a, t, e);
        }
        if (r >= 0)
                r = extract_dir_times(t);
        /* the rest of the blob (tar padding) counts for the digest too */
        while (r >= 0) {
                const void *buf;
                la_ssize_t n = tar_read_cb(a, t, &buf);

                if (n < 0)
                        r = set_error_message(ret_error, -EIO, "cannot read the layer blob");
                if (n <= 0)
                        break;
        }
        for (size_t i = 0; i < t->n_dirs; i++)
                free(t->dirs[i].path);
        free(t->dirs);
        close(t->root_fd);
        if (r < 0)
                return r;
        digest_format(&t->sha, digest);
        if (expected_digest && !streq(digest, expected_digest))
                return set_error_message(
                    ret_error, -EBADMSG,
                    "the layer blob's digest is %s, not %s as its descriptor says", digest,
                    expected_digest);
        if (ret) {
                memcpy(ret->digest, digest, sizeof(digest));
                ret->size = t->size;
        }
        return 0;
}
