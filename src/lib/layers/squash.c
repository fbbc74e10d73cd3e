/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "changes.h"
#include "cleanup.h"
#include "fs.h"
#include "macro.h"
#include "squash.h"

int squash_start_at(int src_fd, const char *src, int dst_fd, const char *dst)
{
        return copy_tree_at(src_fd, src, dst_fd, dst, COPY_ALL);
}

/* Makes the xattrs of dfd those of sfd, keeping dfd's overlay ones. */
static int sync_xattrs(int sfd, int dfd)
{
        _cleanup_free_ char *names = NULL;
        ssize_t n;
        int r;

        n = flistxattr(dfd, NULL, 0);
        if (n < 0)
                return -errno;
        if (n > 0) {
                names = malloc((size_t)n);
                if (!names)
                        return -ENOMEM;
                n = flistxattr(dfd, names, (size_t)n);
                if (n < 0)
                        return -errno;
                for (const char *p = names; p < names + n; p += strlen(p) + 1)
                        /* An opaque merged dir stays opaque under a newer
                         * plain dir: overlay xattrs are never copied up. */
                        if (!startswith(p, "trusted.overlay.") && !startswith(p, "user.overlay.") &&
                            fgetxattr(sfd, p, NULL, 0) < 0 && errno == ENODATA &&
                            fremovexattr(dfd, p) < 0)
                                return -errno;
        }
        r = copy_xattrs_fd(sfd, dfd);
        return r < 0 ? r : 0;
}

static int replace_entry(int sdir, const char *name, int ddir, bool make_opaque)
{
        int r;

        r = rm_rf_at(ddir, name, RM_ROOT | RM_MISSING_OK);
        if (r < 0)
                return r;
        r = copy_tree_at(sdir, name, ddir, name, COPY_ALL);
        if (r < 0)
                return r;
        if (make_opaque) {
                _cleanup_close_ int fd =
                    openat(ddir, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

                if (fd < 0)
                        return -errno;
                if (fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0) < 0)
                        return -errno;
        }
        return 0;
}

static int apply_dir(int sfd, int dfd)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int r;

        d = fdopendir(sfd);
        if (!d) {
                safe_close(sfd);
                return -errno;
        }
        for (;;) {
                struct stat st, dst;
                bool have_dst;

                r = changes_next_entry(d, NULL, &de, &st, NULL);
                if (r <= 0)
                        return r;
                have_dst = fstatat(dfd, de->d_name, &dst, AT_SYMLINK_NOFOLLOW) >= 0;
                if (!have_dst && errno != ENOENT)
                        return -errno;

                if (changes_is_whiteout_at(dirfd(d), de->d_name, &st)) {
                        r = rm_rf_at(dfd, de->d_name, RM_ROOT | RM_MISSING_OK);
                        if (r < 0)
                                return r;
                        if (mknodat(dfd, de->d_name, S_IFCHR | 0, makedev(0, 0)) < 0)
                                return -errno;
                        continue;
                }

                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int cs = -1, cd = -1;

                        cs = openat(dirfd(d), de->d_name,
                                    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                        if (cs < 0)
                                return -errno;
                        if (!have_dst || changes_is_opaque_fd(cs) || !S_ISDIR(dst.st_mode) ||
                            changes_is_whiteout_at(dfd, de->d_name, &dst)) {
                                bool hid =
                                    have_dst && !S_ISDIR(dst.st_mode) && !changes_is_opaque_fd(cs);

                                r = replace_entry(dirfd(d), de->d_name, dfd, hid);
                                if (r < 0)
                                        return r;
                                continue;
                        }

                        cd = openat(dfd, de->d_name,
                                    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                        if (cd < 0)
                                return -errno;
                        r = apply_dir(fcntl(cs, F_DUPFD_CLOEXEC, 3), cd);
                        if (r < 0)
                                return r;
                        r = sync_xattrs(cs, cd);
                        if (r < 0)
                                return r;
                        if (fchown(cd, st.st_uid, st.st_gid) < 0 ||
                            fchmod(cd, st.st_mode & 07777) < 0)
                                return -errno;
                        struct timespec ts[2] = {st.st_atim, st.st_mtim};
                        if (futimens(cd, ts) < 0)
                                return -errno;
                        continue;
                }

                r = replace_entry(dirfd(d), de->d_name, dfd, false);
                if (r < 0)
                        return r;
        }
}

int squash_apply_at(int src_fd, const char *src, int dst_fd, const char *dst)
{
        _cleanup_close_ int sfd = -1, dfd = -1;
        struct stat st;
        int r;

        sfd = openat(src_fd, src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sfd < 0)
                return -errno;
        dfd = openat(dst_fd, dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        if (fstat(sfd, &st) < 0)
                return -errno;
        r = apply_dir(fcntl(sfd, F_DUPFD_CLOEXEC, 3), dfd);
        if (r < 0)
                return r;
        /* The root of the newer layer carries the root's metadata. */
        r = sync_xattrs(sfd, dfd);
        if (r < 0)
                return r;
        if (fchown(dfd, st.st_uid, st.st_gid) < 0 || fchmod(dfd, st.st_mode & 07777) < 0)
                return -errno;
        struct timespec ts[2] = {st.st_atim, st.st_mtim};
        if (futimens(dfd, ts) < 0)
                return -errno;
        return 0;
}
