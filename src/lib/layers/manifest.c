/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "changes.h"
#include "cleanup.h"
#include "fs.h"
#include "macro.h"
#include "manifest.h"
#include "sha256.h"
#include "strv.h"

#define MANIFEST_MAX (256 * 1024 * 1024)

static char type_char(mode_t m)
{
        return S_ISREG(m)    ? 'f'
               : S_ISDIR(m)  ? 'd'
               : S_ISLNK(m)  ? 'l'
               : S_ISCHR(m)  ? 'c'
               : S_ISBLK(m)  ? 'b'
               : S_ISFIFO(m) ? 'p'
                             : 's';
}

static void put_escaped(FILE *f, const char *s)
{
        for (; *s; s++) {
                if (*s == '\n')
                        fputs("\\n", f);
                else if (*s == '\\')
                        fputs("\\\\", f);
                else
                        fputc(*s, f);
        }
}

/* The sha256 of the regular file (dfd, name), read in one call when small
 * (st_size known). */
static int file_sha256_at(int dfd, const char *name, const struct stat *st,
                          char ret[SHA256_HEX_SIZE])
{
        _cleanup_close_ int fd = -1;

        fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        return sha256_fd_hex(fd, (int64_t)st->st_size, ret);
}

/* The manifest line of an entry (path escaped) in *ret, and in *ret_path
 * the offset of its path. One allocation: this runs once per file of a
 * layer. */
static int escaped_line(const struct stat *st, const char *sha, const char *path, char **ret,
                        int *ret_path)
{
        char head[160];
        size_t extra = 0, len = strlen(path);
        char *line, *o;
        int prefix;

        for (const char *c = path; (c = strpbrk(c, "\n\\")); c++)
                extra++;
        prefix = snprintf(
            head, sizeof(head), "%c %o %u %u %lld %s ", type_char(st->st_mode),
            (unsigned)(st->st_mode & 07777), (unsigned)st->st_uid, (unsigned)st->st_gid,
            S_ISREG(st->st_mode) || S_ISLNK(st->st_mode) ? (long long)st->st_size : 0LL, sha);
        if (prefix < 0 || (size_t)prefix >= sizeof(head))
                return -EINVAL;
        line = malloc((size_t)prefix + len + extra + 1);
        if (!line)
                return -ENOMEM;
        memcpy(line, head, (size_t)prefix);
        o = line + prefix;
        if (extra == 0) {
                memcpy(o, path, len + 1);
        } else {
                for (const char *c = path; *c; c++) {
                        if (*c == '\n' || *c == '\\') {
                                *o++ = '\\';
                                *o++ = *c == '\n' ? 'n' : '\\';
                        } else
                                *o++ = *c;
                }
                *o = 0;
        }
        *ret = line;
        *ret_path = prefix;
        return 0;
}

/* One manifest line: the text and where its path starts in it. */
struct entry {
        char *line;
        const char *path;
};

/* The entries of a tree, in a growing array (a tree can hold millions). */
struct entries {
        struct entry *items;
        size_t n, allocated;
};

static void entries_done(struct entries *e)
{
        for (size_t i = 0; i < e->n; i++)
                free(e->items[i].line);
        free(e->items);
        *e = (struct entries){};
}

/* Appends the manifest line of (dfd, name) at path. */
static int entries_add(struct entries *e, int dfd, const char *name, const char *path,
                       const struct stat *st)
{
        char sha[SHA256_HEX_SIZE] = "-";
        char *line = NULL;
        int r, prefix = 0;

        if (S_ISREG(st->st_mode)) {
                r = file_sha256_at(dfd, name, st, sha);
                if (r < 0)
                        return r;
        } else if (S_ISLNK(st->st_mode)) {
                char target[4096];
                ssize_t n = readlinkat(dfd, name, target, sizeof(target));

                if (n < 0)
                        return -errno;
                sha256_hex(target, (size_t)n, sha);
        }
        if (e->n == e->allocated) {
                size_t a = e->allocated ? e->allocated * 2 : 256;
                struct entry *m = realloc(e->items, a * sizeof(struct entry));

                if (!m)
                        return -ENOMEM;
                e->items = m;
                e->allocated = a;
        }
        r = escaped_line(st, sha, path, &line, &prefix);
        if (r < 0)
                return r;
        e->items[e->n++] = (struct entry){line, line + prefix};
        return 0;
}

/* Collects the entry of everything below dfd (sorted later). */
static int walk(int dfd, const char *path, struct entries *e)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int r;

        d = fdopendir(fcntl(dfd, F_DUPFD_CLOEXEC, 3));
        if (!d)
                return -errno;
        for (;;) {
                _cleanup_free_ char *child = NULL;
                struct stat st;

                r = changes_next_entry(d, path, &de, &st, &child);
                if (r <= 0)
                        return r;
                r = entries_add(e, dirfd(d), de->d_name, child, &st);
                if (r < 0)
                        return r;
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int cfd = openat(
                            dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

                        if (cfd < 0)
                                return -errno;
                        r = walk(cfd, child, e);
                        if (r < 0)
                                return r;
                }
        }
}

/* The path part of a manifest line (after the sixth space). */
static const char *line_path(const char *l)
{
        for (int i = 0; i < 6 && l; i++) {
                l = strchr(l, ' ');
                if (l)
                        l++;
        }
        return l ? l : "";
}

static int entry_cmp(const void *a, const void *b)
{
        return strcmp(((const struct entry *)a)->path, ((const struct entry *)b)->path);
}

static int tree_entries(int dirfd, const char *tree, struct entries *ret)
{
        _cleanup_(entries_done) struct entries e = {};
        _cleanup_close_ int fd = -1;
        int r;

        fd = openat(dirfd, tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = walk(fd, "", &e);
        if (r < 0)
                return r;
        if (e.n > 0)
                qsort(e.items, e.n, sizeof(struct entry), entry_cmp);
        *ret = e;
        e = (struct entries){};
        return 0;
}

/* Writes the entries (sorted) to (out_fd, out). */
static int entries_save(const struct entries *e, int out_fd, const char *out)
{
        _cleanup_free_ char *buf = NULL;
        _cleanup_close_ int fd = -1;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < e->n; i++) {
                fputs(e->items[i].line, f);
                fputc('\n', f);
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        fd = openat(out_fd, out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        for (size_t o = 0; o < size;) {
                ssize_t n = write(fd, buf + o, size - o);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                o += (size_t)n;
        }
        return 0;
}

int manifest_write_at(int dirfd, const char *tree, int out_fd, const char *out)
{
        _cleanup_(entries_done) struct entries e = {};
        int r;

        r = tree_entries(dirfd, tree, &e);
        if (r < 0)
                return r;
        return entries_save(&e, out_fd, out);
}

struct manifest {
        struct entries e;
};

struct manifest *manifest_new(void)
{
        return calloc(1, sizeof(struct manifest));
}

struct manifest *manifest_free(struct manifest *mf)
{
        if (mf) {
                entries_done(&mf->e);
                free(mf);
        }
        return NULL;
}

int manifest_add_at(int dirfd, const char *name, const char *path, const struct stat *st,
                    void *userdata)
{
        struct manifest *mf = userdata;

        return entries_add(&mf->e, dirfd, name, path, st);
}

int manifest_drop(struct manifest *mf, const char *path)
{
        _cleanup_free_ char *esc = NULL;
        size_t size = 0, len, o = 0;
        FILE *f;

        /* The entries hold escaped paths: compare with the escaped one. */
        f = open_memstream(&esc, &size);
        if (!f)
                return -ENOMEM;
        put_escaped(f, path);
        if (fclose(f) != 0)
                return -ENOMEM;
        len = strlen(esc);
        for (size_t i = 0; i < mf->e.n; i++) {
                const char *p = mf->e.items[i].path;

                if (strncmp(p, esc, len) == 0 && (p[len] == 0 || p[len] == '/'))
                        free(mf->e.items[i].line);
                else
                        mf->e.items[o++] = mf->e.items[i];
        }
        mf->e.n = o;
        return 0;
}

int manifest_rescan_at(struct manifest *mf, int dirfd, const char *rel, const char *path)
{
        _cleanup_close_ int pfd = -1, cfd = -1;
        _cleanup_free_ char *copy = strdup(rel);
        char *name, *slash;
        struct stat st;
        int r;

        if (!copy)
                return -ENOMEM;
        r = manifest_drop(mf, path);
        if (r < 0)
                return r;
        /* Down to the entry's dir without following a symlink, as the walk
         * does: a path through a link is not in the tree. */
        pfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (pfd < 0)
                return -errno;
        for (name = copy; (slash = strchr(name, '/')); name = slash + 1) {
                int fd;

                *slash = 0;
                fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0)
                        return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? 0 : -errno;
                safe_close(pfd);
                pfd = fd;
        }
        if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        r = entries_add(&mf->e, pfd, name, path, &st);
        if (r < 0 || !S_ISDIR(st.st_mode))
                return r;
        cfd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (cfd < 0)
                return -errno;
        return walk(cfd, path, &mf->e);
}

int manifest_save_at(struct manifest *mf, int out_fd, const char *out)
{
        if (mf->e.n > 0)
                qsort(mf->e.items, mf->e.n, sizeof(struct entry), entry_cmp);
        return entries_save(&mf->e, out_fd, out);
}

/* What differs between two lines of the same path. */
static const char *difference(const char *want, const char *have)
{
        char wt, ht;
        unsigned wm, hm, wu, hu, wg, hg;
        long long ws, hs;
        char wsha[SHA256_HEX_SIZE + 1], hsha[SHA256_HEX_SIZE + 1];

        if (sscanf(want, "%c %o %u %u %lld %64s", &wt, &wm, &wu, &wg, &ws, wsha) != 6 ||
            sscanf(have, "%c %o %u %u %lld %64s", &ht, &hm, &hu, &hg, &hs, hsha) != 6)
                return "has a malformed manifest line";
        if (wt != ht)
                return "changed type";
        if (!streq(wsha, hsha))
                return "changed content (sha256 differs)";
        if (ws != hs)
                return "changed size";
        if (wm != hm)
                return "changed mode";
        if (wu != hu || wg != hg)
                return "changed owner";
        return NULL;
}

int manifest_verify_at(int dirfd, const char *tree, int mfd, const char *manifest,
                       void (*report)(const char *path, const char *what, void *userdata),
                       void *userdata)
{
        _cleanup_(entries_done) struct entries have = {};
        _cleanup_free_ const char **want = NULL;
        _cleanup_free_ char *text = NULL;
        size_t i = 0, j = 0, nw = 0, lines = 0;
        int r, n = 0;

        r = read_file_at(mfd, manifest, MANIFEST_MAX, &text, NULL);
        if (r < 0)
                return r;
        for (const char *p = text; (p = strchr(p, '\n')); p++)
                lines++;
        want = calloc(lines + 1, sizeof(char *));
        if (!want)
                return -ENOMEM;
        for (char *p = text, *e; *p && (e = strchr(p, '\n')); p = e + 1) {
                *e = 0;
                want[nw++] = p;
        }
        r = tree_entries(dirfd, tree, &have);
        if (r < 0)
                return r;
        while (i < nw || j < have.n) {
                const char *wp = i < nw ? line_path(want[i]) : NULL;
                const char *hp = j < have.n ? have.items[j].path : NULL;
                int c = !wp ? 1 : !hp ? -1 : strcmp(wp, hp);

                if (c < 0) {
                        report(wp, "is missing", userdata);
                        n++;
                        i++;
                } else if (c > 0) {
                        report(hp, "was added", userdata);
                        n++;
                        j++;
                } else {
                        const char *why = difference(want[i], have.items[j].line);

                        if (why) {
                                report(wp, why, userdata);
                                n++;
                        }
                        i++;
                        j++;
                }
        }
        return n;
}
