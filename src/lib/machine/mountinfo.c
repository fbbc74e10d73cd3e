/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <libmount.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "cleanup.h"
#include "log.h"
#include "mountinfo.h"

static struct libmnt_table *mnt_unref_table_null(struct libmnt_table *t)
{
        mnt_unref_table(t);
        return NULL;
}

static struct libmnt_iter *mnt_free_iter_null(struct libmnt_iter *i)
{
        mnt_free_iter(i);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct libmnt_table *, mnt_unref_table_null)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct libmnt_iter *, mnt_free_iter_null)

/* True if target equals prefix or lies below it ("/a" covers "/a/b", not "/ab"). */
static bool path_is_under(const char *target, const char *prefix)
{
        size_t l;

        if (!prefix || streq(prefix, "/"))
                return true;
        l = strlen(prefix);
        while (l > 1 && prefix[l - 1] == '/')
                l--;
        return strncmp(target, prefix, l) == 0 && (target[l] == '\0' || target[l] == '/');
}

void mount_list_done(struct mount_list *l)
{
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++) {
                free(l->entries[i].target);
                free(l->entries[i].source);
                free(l->entries[i].fstype);
                free(l->entries[i].options);
                free(l->entries[i].root);
        }
        free(l->entries);
        l->entries = NULL;
        l->n = 0;
}

static char *strdup_or_empty(const char *s)
{
        return strdup(s ? s : "");
}

static bool mountinfo_line_ok(const char *line)
{
        _cleanup_free_ char *copy = strdup(line);
        char *save = NULL, *f[6];
        unsigned n_after = 0, major, minor;
        bool sep = false;
        char end;

        if (!copy)
                return false;
        for (size_t i = 0; i < 6; i++) {
                f[i] = strtok_r(i == 0 ? copy : NULL, " \t\n", &save);
                if (!f[i])
                        return false;
        }
        if (strspn(f[0], "0123456789") != strlen(f[0]) ||
            strspn(f[1], "0123456789") != strlen(f[1]) ||
            sscanf(f[2], "%u:%u%c", &major, &minor, &end) != 2 || f[4][0] != '/')
                return false;
        /* (the root, f[3], is a path or, for a namespace file bound
         * somewhere, "net:[4026531840]") optional fields, then "-", then
         * type, source and super options */
        for (char *t; (t = strtok_r(NULL, " \t\n", &save));) {
                if (sep)
                        n_after++;
                else if (streq(t, "-"))
                        sep = true;
        }
        /* an empty source ("mount -t tmpfs \"\" dir") leaves two */
        return sep && (n_after == 2 || n_after == 3);
}

int mountinfo_check_file(const char *file, unsigned *ret_line)
{
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        unsigned n = 0;

        f = fopen(file, "re");
        if (!f)
                return -errno;
        while (getline(&line, &cap, f) >= 0) {
                n++;
                if (line[strspn(line, " \t\n")] == '\0')
                        continue;
                if (!mountinfo_line_ok(line)) {
                        if (ret_line)
                                *ret_line = n;
                        return -EBADMSG;
                }
        }
        if (ferror(f))
                return -EIO;
        return 0;
}

int mountinfo_read(const char *file, const char *under, struct mount_list *ret)
{
        _cleanup_(mnt_unref_table_nullp) struct libmnt_table *tb = NULL;
        _cleanup_(mnt_free_iter_nullp) struct libmnt_iter *it = NULL;
        struct mount_list l = {};
        struct libmnt_fs *fs;
        size_t cap = 0;
        int r;

        tb = mnt_new_table();
        it = mnt_new_iter(MNT_ITER_BACKWARD);
        if (!tb || !it)
                return -ENOMEM;

        if (file) {
                unsigned line = 0;

                r = mountinfo_check_file(file, &line);
                if (r == -EBADMSG)
                        return log_debug_errno(r, "'%s' line %u is not in mountinfo format", file,
                                               line);
                if (r < 0)
                        return r;
        }
        r = mnt_table_parse_file(tb, file ? file : "/proc/self/mountinfo");
        if (r < 0)
                return log_debug_errno(r == -1 ? EINVAL : r, "cannot parse mount table '%s': %m",
                                       file ? file : "/proc/self/mountinfo");

        /* mountinfo lists mounts in the order they were made; walking it
         * backwards visits every mount before whatever it covers. */
        while (mnt_table_next_fs(tb, it, &fs) == 0) {
                const char *target = mnt_fs_get_target(fs);
                _cleanup_free_ char *options = NULL;
                struct mount_entry *e;

                if (!target || !path_is_under(target, under))
                        continue;

                if (l.n == cap) {
                        size_t ncap = cap ? cap * 2 : 32;
                        e = reallocarray(l.entries, ncap, sizeof(*e));
                        if (!e) {
                                mount_list_done(&l);
                                return -ENOMEM;
                        }
                        l.entries = e;
                        cap = ncap;
                }

                options = mnt_fs_strdup_options(fs);
                e = &l.entries[l.n];
                *e = (struct mount_entry){
                    .id = mnt_fs_get_id(fs),
                    .parent_id = mnt_fs_get_parent_id(fs),
                    .target = strdup(target),
                    .source = strdup_or_empty(mnt_fs_get_source(fs)),
                    .fstype = strdup_or_empty(mnt_fs_get_fstype(fs)),
                    .options = strdup_or_empty(options),
                    .root = strdup_or_empty(mnt_fs_get_root(fs)),
                };
                l.n++;
                if (!e->target || !e->source || !e->fstype || !e->options || !e->root) {
                        mount_list_done(&l);
                        return -ENOMEM;
                }
        }

        *ret = l;
        return 0;
}

int mountinfo_is_mountpoint(const char *path)
{
        struct mount_list l = {};
        _cleanup_free_ char *canon = NULL;
        int r, found = 0;

        canon = realpath(path, NULL);
        if (!canon)
                return negative_errno();

        r = mountinfo_read(NULL, canon, &l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l.n; i++)
                if (streq(l.entries[i].target, canon)) {
                        found = 1;
                        break;
                }
        mount_list_done(&l);
        return found;
}

int mountinfo_umount_under(const char *path)
{
        struct mount_list l = {};
        _cleanup_free_ char *canon = NULL;
        int r, first_error = 0, n = 0;

        canon = realpath(path, NULL);
        if (!canon)
                return negative_errno();

        r = mountinfo_read(NULL, canon, &l);
        if (r < 0)
                return r;

        for (size_t i = 0; i < l.n; i++) {
                const char *t = l.entries[i].target;

                if (umount2(t, UMOUNT_NOFOLLOW) < 0 &&
                    (errno != EBUSY || umount2(t, UMOUNT_NOFOLLOW | MNT_DETACH) < 0)) {
                        /* Already gone with a detached parent: not an error. */
                        if (errno == EINVAL || errno == ENOENT)
                                continue;
                        r = log_debug_errno(errno, "cannot unmount '%s': %m", t);
                        if (first_error == 0)
                                first_error = r;
                        continue;
                }
                n++;
        }
        mount_list_done(&l);
        return first_error < 0 ? first_error : n;
}
