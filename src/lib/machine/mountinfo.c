/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "cleanup.h"
#include "log.h"
#include "mountinfo.h"

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

/* Undoes the kernel's octal escapes ("\040" for a space, "\134" for a
 * backslash...) of a mountinfo field, in place. */
static void unescape(char *s)
{
        char *w = s;

        for (char *r = s; *r; r++) {
                if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
                    r[3] >= '0' && r[3] <= '7') {
                        *w++ = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
                        r += 3;
                } else
                        *w++ = *r;
        }
        *w = '\0';
}

/* Removes the option name (a whole one) from the comma separated list s,
 * in place; returns whether it was there. */
static bool option_remove(char *s, const char *name)
{
        size_t l = strlen(name);

        for (char *p = s; *p;) {
                char *e = strchrnul(p, ',');
                if ((size_t)(e - p) == l && strncmp(p, name, l) == 0) {
                        memmove(p, *e ? e + 1 : e, strlen(*e ? e + 1 : e) + 1);
                        if (!*p && p > s)
                                p[-1] = '\0'; /* it was the last one: no trailing comma */
                        return true;
                }
                p = *e ? e + 1 : e;
        }
        return false;
}

/* The per-mount and superblock options as one list: "ro," or "rw," first
 * (read-only if either says so), then the others of both, in order. */
static char *merge_options(const char *vfs, const char *fs)
{
        _cleanup_free_ char *both = NULL;
        bool ro;
        char *res;

        if (asprintf(&both, "%s,%s", vfs, fs) < 0)
                return NULL;
        ro = false;
        while (option_remove(both, "ro"))
                ro = true;
        while (option_remove(both, "rw"))
                ;
        if (asprintf(&res, "%s%s%s", ro ? "ro" : "rw", *both ? "," : "", both) < 0)
                return NULL;
        return res;
}

/* Parses one line (checked by mountinfo_line_ok) into *e. */
static int parse_line(char *line, struct mount_entry *e)
{
        char *f[6], *save = NULL, *t, *type, *source, *super;

        line[strcspn(line, "\n")] = '\0';
        for (size_t i = 0; i < 6; i++) {
                f[i] = strtok_r(i == 0 ? line : NULL, " ", &save);
                if (!f[i])
                        return -EBADMSG;
        }
        /* the optional fields, up to "-" */
        while ((t = strtok_r(NULL, " ", &save)) && !streq(t, "-"))
                ;
        if (!t || !save)
                return -EBADMSG;
        /* type, source (empty for "mount -t tmpfs '' dir": two spaces) and
         * super options, one space each */
        type = strsep(&save, " ");
        source = strsep(&save, " ");
        super = strsep(&save, " ");
        if (!type || !source)
                return -EBADMSG;
        if (!super) { /* an empty source and no super options */
                super = source;
                source = (char *)"";
        }
        unescape(f[3]);
        unescape(f[4]);
        unescape(type);
        unescape(source);
        *e = (struct mount_entry){
            .id = atoi(f[0]),
            .parent_id = atoi(f[1]),
            .target = strdup(f[4]),
            .source = strdup(source),
            .fstype = strdup(type),
            .options = merge_options(f[5], super),
            .root = strdup(f[3]),
        };
        if (!e->target || !e->source || !e->fstype || !e->options || !e->root)
                return -ENOMEM;
        return 0;
}

int mountinfo_read(const char *file, const char *under, struct mount_list *ret)
{
        const char *path = file ? file : "/proc/self/mountinfo";
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        struct mount_list l = {};
        size_t cap = 0, lcap = 0;
        unsigned n = 0;
        int r = 0;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (getline(&line, &lcap, f) >= 0) {
                n++;
                if (line[strspn(line, " \t\n")] == '\0')
                        continue;
                if (!mountinfo_line_ok(line)) {
                        mount_list_done(&l);
                        return log_debug_errno(-EBADMSG, "'%s' line %u is not in mountinfo format",
                                               path, n);
                }
                if (l.n == cap) {
                        size_t ncap = cap ? cap * 2 : 32;
                        struct mount_entry *e = reallocarray(l.entries, ncap, sizeof(*e));
                        if (!e) {
                                r = -ENOMEM;
                                break;
                        }
                        l.entries = e;
                        cap = ncap;
                }
                r = parse_line(line, &l.entries[l.n]);
                l.n++;
                if (r < 0)
                        break;
                if (!path_is_under(l.entries[l.n - 1].target, under)) {
                        l.n--;
                        free(l.entries[l.n].target);
                        free(l.entries[l.n].source);
                        free(l.entries[l.n].fstype);
                        free(l.entries[l.n].options);
                        free(l.entries[l.n].root);
                }
        }
        if (r >= 0 && ferror(f))
                r = -EIO;
        if (r < 0) {
                mount_list_done(&l);
                return r;
        }
        /* mountinfo lists mounts in the order they were made; backwards,
         * every mount comes before whatever it covers. */
        for (size_t i = 0; i < l.n / 2; i++) {
                struct mount_entry t = l.entries[i];
                l.entries[i] = l.entries[l.n - 1 - i];
                l.entries[l.n - 1 - i] = t;
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
