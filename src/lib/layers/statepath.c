/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "changes.h"
#include "cleanup.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "statepath.h"
#include "strv.h"

int migration_path_normalize(const char *path, char **ret)
{
        _cleanup_free_ char *n = NULL;
        const char *p = path;
        size_t len = 0;

        if (!path || path[0] != '/')
                return -EINVAL;
        n = malloc(strlen(path) + 1);
        if (!n)
                return -ENOMEM;
        while (*p) {
                size_t l;

                while (*p == '/')
                        p++;
                l = strcspn(p, "/");
                if (l == 0)
                        break;
                if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
                        return -EINVAL;
                n[len++] = '/';
                memcpy(n + len, p, l);
                len += l;
                p += l;
        }
        if (len == 0)
                n[len++] = '/';
        n[len] = 0;
        *ret = TAKE_PTR(n);
        return 0;
}

static bool path_under(const char *path, const char *prefix)
{
        const char *e = startswith(path, prefix);

        return e && (*e == 0 || *e == '/');
}

int migration_state_parse(const char *name, const char *text, char ***ret, char **ret_error)
{
        static const char *const refused[] = {"/var/lib/dpkg", "/var/lib/apt"};
        _cleanup_strv_ char **l = NULL;
        unsigned line = 0;
        const char *p = text;
        int r;

        while (p && *p) {
                _cleanup_free_ char *raw = NULL, *norm = NULL;
                size_t len = strcspn(p, "\n");
                char *s, *e;

                line++;
                raw = strndup(p, len);
                if (!raw)
                        return -ENOMEM;
                p += len;
                if (*p == '\n')
                        p++;

                s = raw;
                while (*s == ' ' || *s == '\t')
                        s++;
                e = s + strlen(s);
                while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                        *--e = 0;
                if (*s == 0 || *s == '#')
                        continue;

                r = migration_path_normalize(s, &norm);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return set_error_message(
                            ret_error, -EINVAL,
                            "'%s' line %u: '%s' is not a normalized absolute path", name, line, s);
                if (streq(norm, "/"))
                        return set_error_message(
                            ret_error, -EINVAL,
                            "'%s' line %u: '/' cannot be state (the whole machine)", name, line);
                for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                        if (path_under(norm, refused[i]) || path_under(refused[i], norm))
                                return set_error_message(
                                    ret_error, -EINVAL,
                                    "'%s' line %u: '%s' holds the package manager's "
                                    "database (%s), which belongs to the layer",
                                    name, line, norm, refused[i]);
                if (strv_contains(l, norm))
                        continue;
                r = strv_consume(&l, TAKE_PTR(norm));
                if (r < 0)
                        return r;
        }
        if (l)
                strv_sort(l);
        *ret = TAKE_PTR(l);
        return 0;
}

int state_path_machine_list(int data_fd, char ***ret, char **ret_error)
{
        static const char defaults[] = "/home\n/root\n/var/log\n";
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_file_at(data_fd, STATE_PATHS_FILE, 1024 * 1024, &text, NULL);
        if (r == -ENOENT)
                return migration_state_parse("(built-in state paths)", defaults, ret, ret_error);
        if (r < 0)
                return r;
        return migration_state_parse(STATE_PATHS_FILE, text, ret, ret_error);
}

bool state_path_covered(char *const *paths, const char *path)
{
        STRV_FOREACH (p, paths) {
                const char *e = startswith(path, *p);

                if (e && (*e == 0 || *e == '/'))
                        return true;
        }
        return false;
}

int state_path_merge(char ***l, char *const *add)
{
        int r;

        STRV_FOREACH (a, add) {
                if (strv_contains(*l, *a))
                        continue;
                r = strv_extend(l, *a);
                if (r < 0)
                        return r;
        }
        if (*l)
                strv_sort(*l);
        return 0;
}

static int move_dir(int sfd, int dfd)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int moved = 0, r;

        d = fdopendir(sfd);
        if (!d) {
                safe_close(sfd);
                return -errno;
        }
        while ((errno = 0, de = readdir(d))) {
                struct stat st, dst;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                if (changes_is_whiteout_at(dirfd(d), de->d_name, &st))
                        continue;

                if (renameat2(dirfd(d), de->d_name, dfd, de->d_name, RENAME_NOREPLACE) >= 0) {
                        moved++;
                        continue;
                }
                if (errno == EXDEV) {
                        r = copy_tree_at(dirfd(d), de->d_name, dfd, de->d_name, COPY_ALL);
                        if (r == -EEXIST)
                                goto clash;
                        if (r < 0)
                                return r;
                        r = rm_rf_at(dirfd(d), de->d_name, RM_ROOT | RM_MISSING_OK);
                        if (r < 0)
                                return r;
                        moved++;
                        continue;
                }
                if (errno != EEXIST)
                        return -errno;
        clash:
                /* Both sides have it: only two directories merge. */
                if (!S_ISDIR(st.st_mode))
                        continue;
                if (fstatat(dfd, de->d_name, &dst, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                if (!S_ISDIR(dst.st_mode))
                        continue;
                {
                        int cs, cd;

                        cs = openat(dirfd(d), de->d_name,
                                    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                        if (cs < 0)
                                return -errno;
                        cd = openat(dfd, de->d_name,
                                    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                        if (cd < 0) {
                                r = -errno;
                                close(cs);
                                return r;
                        }
                        r = move_dir(cs, cd);
                        close(cd);
                        if (r < 0)
                                return r;
                        moved += r;
                }
        }
        return errno ? -errno : moved;
}

int state_path_move_at(int src_fd, const char *src, int dst_fd, const char *dst)
{
        _cleanup_close_ int sfd = -1, dfd = -1;
        struct stat st;
        int r;

        sfd = openat(src_fd, src, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (sfd < 0)
                return -errno;
        if (fstat(sfd, &st) < 0)
                return -errno;
        dfd = openat(dst_fd, dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 && errno == ENOENT) {
                /* A new state dir gets the owner and mode of the source. */
                r = mkdir_parents_at(dst_fd, dst, 0755);
                if (r < 0)
                        return r;
                if (mkdirat(dst_fd, dst, 0700) < 0 && errno != EEXIST)
                        return -errno;
                dfd = openat(dst_fd, dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd < 0)
                        return -errno;
                if (fchown(dfd, st.st_uid, st.st_gid) < 0 || fchmod(dfd, st.st_mode & 07777) < 0)
                        return -errno;
        }
        if (dfd < 0)
                return -errno;
        return move_dir(TAKE_FD(sfd), dfd);
}
