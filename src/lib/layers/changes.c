/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "changes.h"
#include "cleanup.h"
#include "macro.h"
#include "strv.h"

char change_kind_to_char(enum change_kind k)
{
        switch (k) {
        case CHANGE_ADDED:
                return 'A';
        case CHANGE_MODIFIED:
                return 'M';
        case CHANGE_DELETED:
                return 'D';
        case CHANGE_REPLACED:
                return 'R';
        case _CHANGE_KIND_MAX:
        default:
                return '?';
        }
}

int change_kind_from_char(char c)
{
        switch (c) {
        case 'A':
                return CHANGE_ADDED;
        case 'M':
                return CHANGE_MODIFIED;
        case 'D':
                return CHANGE_DELETED;
        case 'R':
                return CHANGE_REPLACED;
        default:
                return -EINVAL;
        }
}

void change_list_done(struct change_list *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->items[i].path);
        free(l->items);
        *l = (struct change_list){};
}

static int change_list_add(struct change_list *l, enum change_kind k, char *path)
{
        if (l->n == l->allocated) {
                size_t a = l->allocated ? l->allocated * 2 : 64;
                struct change *m = realloc(l->items, a * sizeof(struct change));

                if (!m) {
                        free(path);
                        return -ENOMEM;
                }
                l->items = m;
                l->allocated = a;
        }
        l->items[l->n++] = (struct change){k, path, false};
        l->counts[k]++;
        return 0;
}

int changes_add(struct change_list *l, enum change_kind k, bool state, const char *path)
{
        char *p = strdup(path);
        int r;

        if (!p)
                return -ENOMEM;
        r = change_list_add(l, k, p);
        if (r < 0 || !state)
                return r;
        l->counts[k]--;
        l->state_counts[k]++;
        l->items[l->n - 1].state = true;
        return 0;
}

static bool has_xattr_at(int dirfd, const char *name, const char *key, char *value, size_t size)
{
        _cleanup_close_ int fd = -1;

        /* Only regular files get here: opening one is safe. */
        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
        return fd >= 0 && fgetxattr(fd, key, value, size) >= 0;
}

bool changes_is_whiteout_at(int dirfd, const char *name, const struct stat *st)
{
        if (S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0))
                return true;
        if (S_ISREG(st->st_mode) && st->st_size == 0) {
                char v[8];

                return has_xattr_at(dirfd, name, "trusted.overlay.whiteout", v, sizeof(v)) ||
                       has_xattr_at(dirfd, name, "user.overlay.whiteout", v, sizeof(v));
        }
        return false;
}

bool changes_is_opaque_fd(int fd)
{
        char v[8];
        ssize_t n;

        n = fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v));
        if (n < 0)
                n = fgetxattr(fd, "user.overlay.opaque", v, sizeof(v));
        return n == 1 && v[0] == 'y';
}

static bool dir_opaque_at(int dirfd, const char *path)
{
        _cleanup_close_ int fd =
            openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

        return fd >= 0 && changes_is_opaque_fd(fd);
}

bool changes_path_in_lowers(const int *lower_fds, size_t n_lowers, const char *path)
{
        _cleanup_free_ char *rel = NULL;

        while (*path == '/')
                path++;
        if (!*path)
                return true;
        rel = strdup(path);
        if (!rel)
                return false;

        for (size_t i = 0; i < n_lowers; i++) {
                bool stop = false, found = false, absent = false;
                struct stat st;
                char *slash = rel;

                /* Walk the ancestors: a missing one means this layer has
                 * nothing to say; a whiteout or non-directory hides the
                 * path in every layer below; an opaque one hides the
                 * layers below but this one still counts. */
                while ((slash = strchr(slash, '/'))) {
                        char *base;
                        int pfd;

                        *slash = 0;
                        base = strrchr(rel, '/');
                        if (fstatat(lower_fds[i], rel, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                                *slash = '/';
                                absent = true;
                                break;
                        }
                        if (!S_ISDIR(st.st_mode)) {
                                *slash = '/';
                                return false;
                        }
                        if (base) {
                                *base = 0;
                                pfd = openat(lower_fds[i], rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                                *base = '/';
                        } else
                                pfd = fcntl(lower_fds[i], F_DUPFD_CLOEXEC, 3);
                        if (pfd >= 0) {
                                if (changes_is_whiteout_at(pfd, base ? base + 1 : rel, &st)) {
                                        close(pfd);
                                        *slash = '/';
                                        return false;
                                }
                                close(pfd);
                        }
                        if (dir_opaque_at(lower_fds[i], rel))
                                stop = true;
                        *slash = '/';
                        slash++;
                }
                if (!absent) {
                        if (fstatat(lower_fds[i], rel, &st, AT_SYMLINK_NOFOLLOW) >= 0) {
                                _cleanup_free_ char *dir = strdup(rel);
                                char *base = dir ? strrchr(dir, '/') : NULL;
                                int pfd;

                                if (!dir)
                                        return false;
                                if (base) {
                                        *base = 0;
                                        pfd = openat(lower_fds[i], dir,
                                                     O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                                } else
                                        pfd = fcntl(lower_fds[i], F_DUPFD_CLOEXEC, 3);
                                if (pfd >= 0) {
                                        found = !changes_is_whiteout_at(pfd, base ? base + 1 : rel,
                                                                        &st);
                                        close(pfd);
                                        if (!found)
                                                return false;
                                }
                                return found;
                        }
                }
                if (stop)
                        return false;
        }
        return false;
}

int changes_next_entry(DIR *d, const char *prefix, struct dirent **ret_de, struct stat *ret_st,
                       char **ret_path)
{
        struct dirent *de;
        struct stat st;
        char *path = NULL;

        do {
                errno = 0;
                de = readdir(d);
                if (!de)
                        return errno ? -errno : 0;
        } while (streq(de->d_name, ".") || streq(de->d_name, ".."));
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (ret_path && asprintf(&path, "%s/%s", prefix, de->d_name) < 0)
                return -ENOMEM;
        *ret_de = de;
        *ret_st = st;
        if (ret_path)
                *ret_path = path;
        return 1;
}

struct capture {
        const int *lower_fds;
        size_t n_lowers;
        char *const *prune;
        changes_visit_fn visit;
        void *userdata;
        struct change_list *list;
};

static int capture_dir(struct capture *c, int fd, const char *prefix, bool below_new)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int r;

        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return -errno;
        }
        for (;;) {
                _cleanup_free_ char *path = NULL;
                enum change_kind k;
                struct stat st;
                bool is_new = below_new;

                r = changes_next_entry(d, prefix, &de, &st, &path);
                if (r <= 0)
                        return r;
                if (c->visit) {
                        r = c->visit(dirfd(d), de->d_name, path, &st, c->userdata);
                        if (r < 0)
                                return r;
                }

                if (changes_is_whiteout_at(dirfd(d), de->d_name, &st)) {
                        r = change_list_add(c->list, CHANGE_DELETED, TAKE_PTR(path));
                        if (r < 0)
                                return r;
                        continue;
                }

                if (S_ISDIR(st.st_mode)) {
                        int cfd = openat(dirfd(d), de->d_name,
                                         O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                        bool prune = strv_contains(c->prune, path);

                        if (cfd < 0)
                                return -errno;
                        if (!below_new && changes_is_opaque_fd(cfd)) {
                                k = CHANGE_REPLACED;
                                is_new = true;
                        } else if (below_new ||
                                   !changes_path_in_lowers(c->lower_fds, c->n_lowers, path)) {
                                k = CHANGE_ADDED;
                                is_new = true;
                        } else
                                k = CHANGE_MODIFIED;

                        r = change_list_add(c->list, k, strdup(path));
                        if (r < 0) {
                                close(cfd);
                                return r;
                        }
                        if (prune) {
                                close(cfd);
                                continue;
                        }
                        r = capture_dir(c, cfd, path, is_new);
                        if (r < 0)
                                return r;
                        continue;
                }

                if (S_ISREG(st.st_mode))
                        c->list->bytes += (uint64_t)st.st_size;
                k = !below_new && changes_path_in_lowers(c->lower_fds, c->n_lowers, path)
                        ? CHANGE_MODIFIED
                        : CHANGE_ADDED;
                r = change_list_add(c->list, k, TAKE_PTR(path));
                if (r < 0)
                        return r;
        }
}

static int change_cmp(const void *a, const void *b)
{
        return strcmp(((const struct change *)a)->path, ((const struct change *)b)->path);
}

void changes_sort(struct change_list *l)
{
        if (l->n > 0)
                qsort(l->items, l->n, sizeof(struct change), change_cmp);
}

int changes_capture_at(int dirfd, const char *upper, const int *lower_fds, size_t n_lowers,
                       char *const *prune, struct change_list *ret)
{
        return changes_capture_visit_at(dirfd, upper, lower_fds, n_lowers, prune, NULL, NULL, ret);
}

int changes_capture_visit_at(int dirfd, const char *upper, const int *lower_fds, size_t n_lowers,
                             char *const *prune, changes_visit_fn visit, void *userdata,
                             struct change_list *ret)
{
        _cleanup_(change_list_done) struct change_list l = {};
        struct capture c = {lower_fds, n_lowers, prune, visit, userdata, &l};
        int fd, r;

        fd = openat(dirfd, upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = capture_dir(&c, fd, "", false);
        if (r < 0)
                return r;
        if (l.n > 0)
                qsort(l.items, l.n, sizeof(struct change), change_cmp);
        *ret = l;
        l = (struct change_list){};
        return 0;
}

void changes_write_path(FILE *f, const char *path)
{
        if (!strpbrk(path, "\n\\")) {
                fputs(path, f);
                return;
        }
        for (const char *p = path; *p; p++) {
                if (*p == '\n')
                        fputs("\\n", f);
                else if (*p == '\\')
                        fputs("\\\\", f);
                else
                        fputc(*p, f);
        }
}

void changes_unescape_path(const char *s, size_t len, char *ret)
{
        size_t o = 0;

        for (size_t i = 0; i < len; i++) {
                if (s[i] == '\\' && i + 1 < len && (s[i + 1] == 'n' || s[i + 1] == '\\')) {
                        ret[o++] = s[i + 1] == 'n' ? '\n' : '\\';
                        i++;
                } else
                        ret[o++] = s[i];
        }
        ret[o] = 0;
}

int changes_format(const struct change_list *l, char **ret)
{
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++) {
                if (l->items[i].state)
                        fputc('S', f);
                fputc(change_kind_to_char(l->items[i].kind), f);
                fputc(' ', f);
                changes_write_path(f, l->items[i].path);
                fputc('\n', f);
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

int changes_parse(const char *text, struct change_list *ret, unsigned *ret_line)
{
        _cleanup_(change_list_done) struct change_list l = {};
        unsigned line = 0;
        const char *p = text;
        int r;

        while (*p) {
                size_t len = strcspn(p, "\n");
                _cleanup_free_ char *path = NULL;
                bool state;
                int k;

                line++;
                state = len >= 4 && p[0] == 'S' && p[2] == ' ';
                if (state) {
                        p++;
                        len--;
                }
                k = len >= 3 ? change_kind_from_char(p[0]) : -EINVAL;
                if (k < 0 || p[1] != ' ' || p[2] != '/') {
                        if (ret_line)
                                *ret_line = line;
                        return -EBADMSG;
                }
                path = malloc(len);
                if (!path)
                        return -ENOMEM;
                changes_unescape_path(p + 2, len - 2, path);
                r = change_list_add(&l, (enum change_kind)k, TAKE_PTR(path));
                if (r < 0)
                        return r;
                if (state) {
                        l.counts[k]--;
                        l.state_counts[k]++;
                        l.items[l.n - 1].state = true;
                }
                p += len;
                if (*p == '\n')
                        p++;
        }
        *ret = l;
        l = (struct change_list){};
        return 0;
}
