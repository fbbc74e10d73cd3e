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

/* The lower dirs of one upper dir being walked: for each lower layer
 * (newest first) the same directory, open, or -1 where that layer has no
 * such dir or a layer above hides it. NULL fds: too many are open, and
 * membership is asked by path (changes_path_in_lowers). */
struct lower_dirs {
        int *fds;
        size_t n_open;
};

/* Lower fds kept open at once by a walk, over all its depths; past it a
 * subtree asks by path (a deep tree over hundreds of layers). */
#define CAPTURE_LOWER_FDS_MAX 256

struct capture {
        const int *lower_fds;
        size_t n_lowers;
        char *const *prune;
        changes_visit_fn visit;
        void *userdata;
        struct change_list *list;
        size_t n_open; /* lower fds held by all levels */
};

static void lower_dirs_done(struct capture *c, struct lower_dirs *l)
{
        if (!l->fds)
                return;
        for (size_t i = 0; i < c->n_lowers; i++)
                safe_close(l->fds[i]);
        c->n_open -= l->n_open;
        free(l->fds);
        *l = (struct lower_dirs){};
}

/* A level's lower dirs with the walk they count in, for _cleanup_. */
struct lower_dirs_holder {
        struct capture *c;
        struct lower_dirs l;
};

static void lower_dirs_holder_done(struct lower_dirs_holder *h)
{
        lower_dirs_done(h->c, &h->l);
}

/* Whether name (an entry of the upper dir whose lowers are l) exists in
 * the stack below: one fstatat per layer that has the dir, at its fd. */
static bool in_lower_dirs(const struct capture *c, const struct lower_dirs *l, const char *name)
{
        for (size_t i = 0; i < c->n_lowers; i++) {
                struct stat st;

                if (l->fds[i] < 0 || fstatat(l->fds[i], name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                return !changes_is_whiteout_at(l->fds[i], name, &st);
        }
        return false;
}

/* Whether the entry name (at path) of an upper dir whose lowers are l
 * exists in the stack below; never below a new dir (l NULL). */
static bool entry_in_lowers(const struct capture *c, const struct lower_dirs *l, const char *name,
                            const char *path)
{
        if (!l)
                return false;
        if (!l->fds)
                return changes_path_in_lowers(c->lower_fds, c->n_lowers, path);
        return in_lower_dirs(c, l, name);
}

/* The lower dirs of the subdir name of a dir whose lowers are parent (as
 * changes_path_in_lowers sees them: a non-directory hides the layers
 * below it, an opaque dir the layers below it). ret->fds NULL when the
 * budget of open fds is spent. */
static int lower_dirs_child(struct capture *c, const struct lower_dirs *parent, const char *name,
                            struct lower_dirs *ret)
{
        struct lower_dirs l = {};
        bool hidden = false;
        size_t want = 0;

        *ret = (struct lower_dirs){};
        if (!parent->fds)
                return 0;
        for (size_t i = 0; i < c->n_lowers; i++)
                want += parent->fds[i] >= 0;
        if (c->n_open + want > CAPTURE_LOWER_FDS_MAX)
                return 0;
        l.fds = malloc(c->n_lowers * sizeof(int));
        if (!l.fds)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_lowers; i++) {
                int fd;

                l.fds[i] = -1;
                if (hidden || parent->fds[i] < 0)
                        continue;
                fd = openat(parent->fds[i], name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0) {
                        /* a file, a whiteout or a symlink there hides the
                         * path in the layers below; missing says nothing */
                        if (errno == ENOTDIR || errno == ELOOP)
                                hidden = true;
                        continue;
                }
                l.fds[i] = fd;
                l.n_open++;
                if (changes_is_opaque_fd(fd))
                        hidden = true;
        }
        c->n_open += l.n_open;
        *ret = l;
        return 0;
}

/* The entry de of the dir dfd: its lstat in *st and, for a dir (and with
 * files, a regular file) as getdents says, an fd of it opened for reading
 * in *ret_fd, else -1: one lookup for what is read anyway. */
static int open_entry(int dfd, const struct dirent *de, bool files, struct stat *st, int *ret_fd)
{
        int fd, flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK;

        *ret_fd = -1;
        if ((files && de->d_type == DT_REG) || de->d_type == DT_DIR) {
                /* O_NOATIME: a read must not dirty every inode of the layer
                 * (relatime updates the atime of a file read after its
                 * write) right before the layer is synced */
                if (de->d_type == DT_DIR)
                        flags |= O_DIRECTORY;
                fd = openat(dfd, de->d_name, flags | O_NOATIME);
                if (fd < 0 && errno == EPERM)
                        fd = openat(dfd, de->d_name, flags);
                if (fd >= 0) {
                        if (fstat(fd, st) < 0) {
                                safe_close(fd);
                                return -errno;
                        }
                        if (S_ISREG(st->st_mode) || S_ISDIR(st->st_mode)) {
                                *ret_fd = fd;
                                return 0;
                        }
                        safe_close(fd);
                }
        }
        if (fstatat(dfd, de->d_name, st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        return 0;
}

/* prefix + "/" + name, malloc'd. */
static char *child_path(const char *prefix, size_t plen, const char *name)
{
        size_t nlen = strlen(name);
        char *p = malloc(plen + 1 + nlen + 1);

        if (!p)
                return NULL;
        memcpy(p, prefix, plen);
        p[plen] = '/';
        memcpy(p + plen + 1, name, nlen + 1);
        return p;
}

static bool is_whiteout_fd(int dfd, const char *name, int fd, const struct stat *st)
{
        char v[8];

        if (fd < 0 || !S_ISREG(st->st_mode))
                return changes_is_whiteout_at(dfd, name, st);
        return st->st_size == 0 && (fgetxattr(fd, "trusted.overlay.whiteout", v, sizeof(v)) >= 0 ||
                                    fgetxattr(fd, "user.overlay.whiteout", v, sizeof(v)) >= 0);
}

/* Walks the upper dir fd (taken) at prefix; lowers are its dirs in the
 * stack (NULL below a new dir, where nothing is looked up). */
static int capture_dir(struct capture *c, int fd, const char *prefix,
                       const struct lower_dirs *lowers)
{
        _cleanup_closedir_ DIR *d = NULL;
        size_t plen = strlen(prefix);
        struct dirent *de;
        int r;

        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return -errno;
        }
        while ((errno = 0, de = readdir(d))) {
                _cleanup_free_ char *path = NULL;
                _cleanup_close_ int efd = -1;
                enum change_kind k;
                struct stat st;

                if (de->d_name[0] == '.' &&
                    (de->d_name[1] == 0 || (de->d_name[1] == '.' && de->d_name[2] == 0)))
                        continue;
                r = open_entry(dirfd(d), de, c->visit != NULL, &st, &efd);
                if (r < 0)
                        return r;
                path = child_path(prefix, plen, de->d_name);
                if (!path)
                        return -ENOMEM;
                if (c->visit) {
                        r = c->visit(dirfd(d), de->d_name, efd, path, &st, c->userdata);
                        if (r < 0)
                                return r;
                }

                if (is_whiteout_fd(dirfd(d), de->d_name, efd, &st)) {
                        r = change_list_add(c->list, CHANGE_DELETED, TAKE_PTR(path));
                        if (r < 0)
                                return r;
                        continue;
                }

                if (S_ISDIR(st.st_mode)) {
                        _cleanup_(lower_dirs_holder_done) struct lower_dirs_holder child = {c, {}};
                        const struct lower_dirs *below = NULL;
                        bool prune = c->prune && strv_contains(c->prune, path);
                        int cfd = TAKE_FD(efd);

                        if (cfd < 0) {
                                cfd = openat(dirfd(d), de->d_name,
                                             O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                                if (cfd < 0)
                                        return -errno;
                        }
                        if (lowers && changes_is_opaque_fd(cfd))
                                k = CHANGE_REPLACED;
                        else if (entry_in_lowers(c, lowers, de->d_name, path))
                                k = CHANGE_MODIFIED;
                        else
                                k = CHANGE_ADDED;

                        r = change_list_add(c->list, k, strdup(path));
                        if (r < 0) {
                                close(cfd);
                                return r;
                        }
                        if (prune) {
                                close(cfd);
                                continue;
                        }
                        if (k == CHANGE_MODIFIED) {
                                r = lower_dirs_child(c, lowers, de->d_name, &child.l);
                                if (r < 0) {
                                        close(cfd);
                                        return r;
                                }
                                below = &child.l;
                        }
                        r = capture_dir(c, cfd, path, below);
                        if (r < 0)
                                return r;
                        continue;
                }

                if (S_ISREG(st.st_mode))
                        c->list->bytes += (uint64_t)st.st_size;
                k = entry_in_lowers(c, lowers, de->d_name, path) ? CHANGE_MODIFIED : CHANGE_ADDED;
                r = change_list_add(c->list, k, TAKE_PTR(path));
                if (r < 0)
                        return r;
        }
        return errno ? -errno : 0;
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
        struct capture c = {lower_fds, n_lowers, prune, visit, userdata, &l, 0};
        /* the root's lowers are the caller's (not ours to close) */
        struct lower_dirs root = {(int *)lower_fds, 0};
        int fd, r;

        fd = openat(dirfd, upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = capture_dir(&c, fd, "", &root);
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
