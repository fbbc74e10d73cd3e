/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "macro.h"
#include "scratch.h"
#include "strv.h"

/* One walk of the scratch upper serves both: it counts every entry and,
 * given a change list, finds the changes it overrides. */
struct overrides {
        int layer_fd;
        const char *layer;
        const struct change_list *l; /* NULL: only count */
        size_t max, n;
        char **found;
        size_t n_found;
        uint64_t entries;
};

/* The first index of l whose path is >= key. */
static size_t lower_bound(const struct change_list *l, const char *key)
{
        size_t lo = 0, hi = l->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (strcmp(l->items[mid].path, key) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static int found_add(struct overrides *o, const char *path)
{
        o->n++;
        if (o->n_found >= o->max)
                return 0;
        if (o->n_found % 16 == 0) {
                char **m = realloc(o->found, (o->n_found + 17) * sizeof(char *));

                if (!m)
                        return -ENOMEM;
                o->found = m;
        }
        o->found[o->n_found] = strdup(path);
        if (!o->found[o->n_found])
                return -ENOMEM;
        o->found[++o->n_found] = NULL;
        return 0;
}

/* The layer's changes at path (when exact) and below it (with below). */
static int hide(struct overrides *o, const char *path, bool exact, bool below)
{
        _cleanup_free_ char *prefix = NULL;
        size_t i;
        int r;

        if (exact) {
                i = lower_bound(o->l, path);
                if (i < o->l->n && streq(o->l->items[i].path, path) && !o->l->items[i].state) {
                        r = found_add(o, path);
                        if (r < 0)
                                return r;
                }
        }
        if (!below)
                return 0;
        if (asprintf(&prefix, "%s/", path) < 0)
                return -ENOMEM;
        for (i = lower_bound(o->l, prefix); i < o->l->n && startswith(o->l->items[i].path, prefix);
             i++) {
                if (o->l->items[i].state)
                        continue;
                r = found_add(o, o->l->items[i].path);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool layer_has_non_dir(struct overrides *o, const char *path)
{
        _cleanup_free_ char *rel = NULL;
        struct stat st;

        if (asprintf(&rel, "%s%s", o->layer, path) < 0)
                return false;
        return fstatat(o->layer_fd, rel, &st, AT_SYMLINK_NOFOLLOW) >= 0 && !S_ISDIR(st.st_mode);
}

/* What the scratch upper's entry (dirfd, name) at path, a dir when cfd >=
 * 0, overrides; *ret_hides is set when it hides all below it. */
static int entry_overrides(struct overrides *o, int cfd, const char *path, bool *ret_hides)
{
        /* a file, a link, a whiteout or an opaque dir hides it all */
        *ret_hides = cfd < 0 || changes_is_opaque_fd(cfd);
        if (*ret_hides)
                return hide(o, path, true, true);
        /* a plain dir merges with a layer's dir, not with a file */
        if (layer_has_non_dir(o, path))
                return hide(o, path, true, false);
        return 0;
}

/* hidden: an entry above already hides everything below. */
static int walk(struct overrides *o, int fd, const char *prefix, bool hidden)
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
                _cleanup_close_ int cfd = -1;
                bool hides = false;
                struct stat st;

                r = changes_next_entry(d, prefix, &de, &st, &path);
                if (r <= 0)
                        return r;
                o->entries++;
                if (S_ISDIR(st.st_mode)) {
                        cfd = openat(dirfd(d), de->d_name,
                                     O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                        if (cfd < 0)
                                return -errno;
                }
                if (o->l && !hidden) {
                        r = entry_overrides(o, cfd, path, &hides);
                        if (r < 0)
                                return r;
                }
                if (cfd >= 0) {
                        r = walk(o, TAKE_FD(cfd), path, hidden || hides);
                        if (r < 0)
                                return r;
                }
        }
}

int scratch_count_at(int dirfd, const char *upper, uint64_t *ret)
{
        struct overrides o = {.layer_fd = -1};
        int fd, r;

        fd = openat(dirfd, upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                if (errno != ENOENT)
                        return -errno;
                *ret = 0;
                return 0;
        }
        r = walk(&o, fd, "", false);
        if (r < 0)
                return r;
        *ret = o.entries;
        return 0;
}

int scratch_overrides_at(int dirfd, const char *upper, int layer_fd, const char *layer,
                         const struct change_list *l, size_t max, char ***ret)
{
        struct overrides o = {.layer_fd = layer_fd, .layer = layer, .l = l, .max = max};
        int fd, r;

        *ret = NULL;
        if (l->n == 0)
                return 0;
        fd = openat(dirfd, upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        r = walk(&o, fd, "", false);
        if (r < 0) {
                strv_free(o.found);
                return r;
        }
        if (o.found)
                strv_sort(o.found);
        *ret = o.found;
        return (int)MIN(o.n, (size_t)INT32_MAX);
}
