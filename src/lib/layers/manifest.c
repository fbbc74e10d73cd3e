/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* One manifest line for (dfd, name) at path, without the newline. */
static int entry_line(int dfd, const char *name, const char *path, const struct stat *st,
                      char **ret)
{
        char sha[SHA256_HEX_SIZE] = "-";
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        if (S_ISREG(st->st_mode)) {
                r = sha256_file_hex_at(dfd, name, sha);
                if (r < 0)
                        return r;
        } else if (S_ISLNK(st->st_mode)) {
                char target[4096];
                ssize_t n = readlinkat(dfd, name, target, sizeof(target));

                if (n < 0)
                        return -errno;
                sha256_hex(target, (size_t)n, sha);
        }
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f, "%c %o %u %u %lld %s ", type_char(st->st_mode), (unsigned)(st->st_mode & 07777),
                (unsigned)st->st_uid, (unsigned)st->st_gid,
                S_ISREG(st->st_mode) || S_ISLNK(st->st_mode) ? (long long)st->st_size : 0LL, sha);
        put_escaped(f, path);
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* Collects "path\tline" of every entry below dfd (sorted later). */
static int walk(int dfd, const char *path, char ***lines)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int r;

        d = fdopendir(fcntl(dfd, F_DUPFD_CLOEXEC, 3));
        if (!d)
                return -errno;
        while ((errno = 0, de = readdir(d))) {
                _cleanup_free_ char *child = NULL, *line = NULL;
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                if (asprintf(&child, "%s/%s", path, de->d_name) < 0)
                        return -ENOMEM;
                r = entry_line(dirfd(d), de->d_name, child, &st, &line);
                if (r < 0)
                        return r;
                r = strv_consume(lines, TAKE_PTR(line));
                if (r < 0)
                        return r;
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int cfd = openat(
                            dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

                        if (cfd < 0)
                                return -errno;
                        r = walk(cfd, child, lines);
                        if (r < 0)
                                return r;
                }
        }
        return errno ? -errno : 0;
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

static int line_cmp(const void *a, const void *b)
{
        return strcmp(line_path(*(char *const *)a), line_path(*(char *const *)b));
}

static int tree_lines(int dirfd, const char *tree, char ***ret)
{
        _cleanup_strv_ char **lines = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        fd = openat(dirfd, tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = walk(fd, "", &lines);
        if (r < 0)
                return r;
        if (lines)
                qsort(lines, strv_length(lines), sizeof(char *), line_cmp);
        *ret = TAKE_PTR(lines);
        return 0;
}

int manifest_write_at(int dirfd, const char *tree, int out_fd, const char *out)
{
        _cleanup_strv_ char **lines = NULL;
        _cleanup_free_ char *buf = NULL;
        _cleanup_close_ int fd = -1;
        size_t size = 0;
        FILE *f;
        int r;

        r = tree_lines(dirfd, tree, &lines);
        if (r < 0)
                return r;
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        STRV_FOREACH (l, lines)
                fprintf(f, "%s\n", *l);
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
        _cleanup_strv_ char **have = NULL, **want = NULL;
        _cleanup_free_ char *text = NULL;
        size_t i = 0, j = 0, nw, nh;
        int r, n = 0;

        r = read_file_at(mfd, manifest, MANIFEST_MAX, &text, NULL);
        if (r < 0)
                return r;
        for (char *p = text, *e; *p; p = e + 1) {
                e = strchr(p, '\n');
                if (!e)
                        break;
                *e = 0;
                if (strv_extend(&want, p) < 0)
                        return -ENOMEM;
        }
        r = tree_lines(dirfd, tree, &have);
        if (r < 0)
                return r;
        nw = strv_length(want);
        nh = strv_length(have);
        while (i < nw || j < nh) {
                int c = i >= nw ? 1 : j >= nh ? -1 : strcmp(line_path(want[i]), line_path(have[j]));

                if (c < 0) {
                        report(line_path(want[i]), "is missing", userdata);
                        n++;
                        i++;
                } else if (c > 0) {
                        report(line_path(have[j]), "was added", userdata);
                        n++;
                        j++;
                } else {
                        const char *why = difference(want[i], have[j]);

                        if (why) {
                                report(line_path(want[i]), why, userdata);
                                n++;
                        }
                        i++;
                        j++;
                }
        }
        return n;
}
