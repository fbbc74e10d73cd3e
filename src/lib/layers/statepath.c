/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
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

const char *state_path_refusal(const char *path)
{
        static const struct {
                const char *tree;
                const char *why;
        } refused[] = {
            {"/etc", "the machine's configuration, which belongs to the layers (the machine would "
                     "boot with an empty /etc)"},
            {"/proc", "a kernel file system, mounted at boot"},
            {"/sys", "a kernel file system, mounted at boot"},
            {"/dev", "the device file system, mounted at boot"},
            {"/run", "a tmpfs at boot"},
            {"/var/run", "a tmpfs at boot (/var/run is /run)"},
            {"/tmp", "a tmpfs at boot"},
            {"/data", "the data dir itself"},
            {"/usr", "system files, which belong to the layers"},
            {"/bin", "system files, which belong to the layers"},
            {"/sbin", "system files, which belong to the layers"},
            {"/boot", "the kernel and its boot files"},
            {"/var/lib/dpkg", "the package manager's database, which belongs to the layers"},
            {"/var/lib/apt", "the package manager's database, which belongs to the layers"},
            {"/var/lib/rpm", "the package manager's database, which belongs to the layers"},
            {"/var/lib/dnf", "the package manager's database, which belongs to the layers"},
        };
        const char *first = path + 1;

        if (streq(path, "/"))
                return "'/' is the whole machine";
        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                if (path_under(path, refused[i].tree) || path_under(refused[i].tree, path))
                        return refused[i].why;
        /* /lib, /lib32, /lib64, /libx32 ... and what lies below them. */
        if (startswith(first, "lib"))
                return "system files, which belong to the layers";
        return NULL;
}

/* The next line of a state file's text at *p, which moves past it: 1 with
 * a copy of the line, its leading blanks and trailing blanks (and CR) cut,
 * in *ret (the caller's to free); 0 at the end; -ENOMEM. */
static int state_file_next_line(const char **p, char **ret)
{
        const char *s = *p, *e;
        size_t len = strcspn(s, "\n");
        char *l;

        if (!*s)
                return 0;
        *p = s + len + (s[len] == '\n');
        e = s + len;
        while (s < e && (*s == ' ' || *s == '\t'))
                s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                e--;
        l = strndup(s, (size_t)(e - s));
        if (!l)
                return -ENOMEM;
        *ret = l;
        return 1;
}

int migration_state_parse(const char *name, const char *text, char ***ret, char **ret_error)
{
        _cleanup_strv_ char **l = NULL;
        const char *why;
        unsigned line = 0;
        const char *p = text;
        int r;

        for (;;) {
                _cleanup_free_ char *s = NULL, *norm = NULL;

                r = p ? state_file_next_line(&p, &s) : 0;
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                line++;
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
                why = state_path_refusal(norm);
                if (why)
                        return set_error_message(ret_error, -EINVAL,
                                                 "'%s' line %u: '%s' cannot be state: it is or "
                                                 "holds %s",
                                                 name, line, norm, why);
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
        for (;;) {
                struct stat st, dst;

                r = changes_next_entry(d, NULL, &de, &st, NULL);
                if (r < 0)
                        return r;
                if (r == 0)
                        return moved;
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

static int diff_dir(int ufd, int lfd, const char *path, struct change_list *l)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int r;

        d = fdopendir(fcntl(ufd, F_DUPFD_CLOEXEC, 3));
        if (!d)
                return -errno;
        for (;;) {
                _cleanup_free_ char *child = NULL;
                _cleanup_close_ int cu = -1, cl = -1;
                struct stat st, lst;
                bool in_lower;

                r = changes_next_entry(d, path, &de, &st, &child);
                if (r <= 0)
                        return r;
                in_lower = lfd >= 0 && fstatat(lfd, de->d_name, &lst, AT_SYMLINK_NOFOLLOW) >= 0;
                if (changes_is_whiteout_at(dirfd(d), de->d_name, &st)) {
                        if (in_lower) {
                                r = changes_add(l, CHANGE_DELETED, true, child);
                                if (r < 0)
                                        return r;
                        }
                        continue;
                }
                if (!S_ISDIR(st.st_mode) || (in_lower && !S_ISDIR(lst.st_mode))) {
                        r = changes_add(l, in_lower ? CHANGE_MODIFIED : CHANGE_ADDED, true, child);
                        if (r < 0)
                                return r;
                        continue;
                }
                cu = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                if (cu < 0)
                        return -errno;
                if (in_lower && changes_is_opaque_fd(cu)) {
                        r = changes_add(l, CHANGE_REPLACED, true, child);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (!in_lower) {
                        /* An added dir, and everything in it. */
                        r = changes_add(l, CHANGE_ADDED, true, child);
                        if (r >= 0)
                                r = diff_dir(cu, -1, child, l);
                        if (r < 0)
                                return r;
                        continue;
                }
                cl = openat(lfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                if (cl < 0)
                        return -errno;
                r = diff_dir(cu, cl, child, l);
                if (r < 0)
                        return r;
        }
}

int state_path_diff_at(int upper_fd, const char *upper, int lower_fd, const char *lower,
                       const char *prefix, struct change_list *l)
{
        _cleanup_close_ int ufd = -1, lfd = -1;

        ufd = openat(upper_fd, upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (ufd < 0)
                return errno == ENOENT ? 0 : -errno;
        lfd = openat(lower_fd, lower, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (lfd < 0 && errno != ENOENT)
                return -errno;
        return diff_dir(ufd, lfd, prefix, l);
}

/* The topmost entry for the relative path rel in the stack: the index of
 * the lower that has it (with *st), or -ENOENT (absent or whited out). */
static int stack_lookup(const int *lower_fds, size_t n, const char *rel, struct stat *st)
{
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *dir = NULL;
                const char *slash = strrchr(rel, '/');

                if (fstatat(lower_fds[i], rel, st, AT_SYMLINK_NOFOLLOW) >= 0) {
                        if (!slash && changes_is_whiteout_at(lower_fds[i], rel, st))
                                return -ENOENT;
                        if (slash) {
                                _cleanup_close_ int pfd = -1;

                                dir = strndup(rel, (size_t)(slash - rel));
                                if (!dir)
                                        return -ENOMEM;
                                pfd = openat(lower_fds[i], dir,
                                             O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                                if (pfd >= 0 && changes_is_whiteout_at(pfd, slash + 1, st))
                                        return -ENOENT;
                        }
                        return (int)i;
                }
        }
        return -ENOENT;
}

int state_path_resolve(const int *lower_fds, size_t n_lowers, const char *path, char **ret)
{
        _cleanup_free_ char *cur = strdup(""), *todo = strdup(path);
        unsigned links = 0;

        if (!cur || !todo)
                return -ENOMEM;
        for (;;) {
                _cleanup_free_ char *comp = NULL, *cand = NULL, *rest = NULL;
                const char *p = todo;
                struct stat st;
                size_t l;
                int i;

                while (*p == '/')
                        p++;
                if (!*p)
                        break;
                l = strcspn(p, "/");
                comp = strndup(p, l);
                rest = strdup(p + l);
                if (!comp || !rest)
                        return -ENOMEM;
                free(todo);
                todo = TAKE_PTR(rest);
                if (streq(comp, "."))
                        continue;
                if (streq(comp, "..")) {
                        char *s = strrchr(cur, '/');
                        if (s)
                                *s = 0;
                        continue;
                }
                if (asprintf(&cand, "%s/%s", cur, comp) < 0)
                        return -ENOMEM;
                i = stack_lookup(lower_fds, n_lowers, cand + 1, &st);
                if (i == -ENOMEM)
                        return i;
                if (i >= 0 && S_ISLNK(st.st_mode)) {
                        char target[PATH_MAX];
                        ssize_t len;
                        char *next;

                        if (++links > 40)
                                return -ELOOP;
                        len = readlinkat(lower_fds[i], cand + 1, target, sizeof(target) - 1);
                        if (len < 0)
                                return -errno;
                        target[len] = 0;
                        if (asprintf(&next, "%s/%s", target, todo) < 0)
                                return -ENOMEM;
                        free(todo);
                        todo = next;
                        if (target[0] == '/')
                                cur[0] = 0;
                        continue;
                }
                free(cur);
                cur = TAKE_PTR(cand);
        }
        if (!*cur) {
                free(cur);
                cur = strdup("/");
                if (!cur)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(cur);
        return 0;
}

int state_path_file_line(int dirfd, const char *file, const char *path)
{
        _cleanup_free_ char *text = NULL;
        unsigned line = 0;
        const char *p;

        if (read_file_at(dirfd, file, 1024 * 1024, &text, NULL) < 0)
                return 0;
        p = text;
        for (;;) {
                _cleanup_free_ char *s = NULL, *norm = NULL;

                if (state_file_next_line(&p, &s) <= 0)
                        return 0;
                line++;
                if (migration_path_normalize(s, &norm) >= 0 && streq(norm, path))
                        return (int)line;
        }
}
