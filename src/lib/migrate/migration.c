/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "migration.h"
#include "statepath.h"
#include "strv.h"

#define STATE_FILE_MAX (1024 * 1024)

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool is_label_char(char c)
{
        return is_digit(c) || (c >= 'a' && c <= 'z') || c == '_';
}

bool migration_label_valid(const char *label)
{
        if (!label || !*label || strlen(label) > MIGRATION_LABEL_MAX)
                return false;
        for (const char *p = label; *p; p++)
                if (!is_label_char(*p))
                        return false;
        return true;
}

bool migration_date_valid(const char *date)
{
        static const unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        unsigned y = 0, mo, d, max;

        if (!date)
                return false;
        for (unsigned i = 0; i < 8; i++)
                if (!is_digit(date[i]))
                        return false;
        for (unsigned i = 0; i < 4; i++)
                y = y * 10 + (unsigned)(date[i] - '0');
        mo = (unsigned)(date[4] - '0') * 10 + (unsigned)(date[5] - '0');
        d = (unsigned)(date[6] - '0') * 10 + (unsigned)(date[7] - '0');
        if (y == 0 || mo < 1 || mo > 12 || d < 1)
                return false;
        max = days[mo - 1];
        if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
                max = 29;
        return d <= max;
}

/* The id's shape (digits, dashes, label) without the date's calendar check. */
static bool migration_id_shape_valid(const char *id)
{
        if (!id)
                return false;
        for (unsigned i = 0; i < 8; i++)
                if (!is_digit(id[i]))
                        return false;
        if (id[8] != '-')
                return false;
        for (unsigned i = 9; i < 12; i++)
                if (!is_digit(id[i]))
                        return false;
        if (id[12] != '_')
                return false;
        return migration_label_valid(id + 13);
}

bool migration_id_valid(const char *id)
{
        return migration_id_shape_valid(id) && migration_date_valid(id);
}

bool migration_service_name_valid(const char *name)
{
        return name && *name && name[0] != '.' && !strchr(name, '/') && strlen(name) <= 255;
}

void migration_done(struct migration *m)
{
        free(m->id);
        free(m->path);
        strv_free(m->state);
        strv_free(m->services);
        *m = (struct migration){};
}

void migration_set_done(struct migration_set *s)
{
        for (size_t i = 0; i < s->n; i++)
                migration_done(&s->items[i]);
        free(s->items);
        *s = (struct migration_set){};
}

int migration_set_find(const struct migration_set *s, const char *id)
{
        size_t lo = 0, hi = s->n;

        /* A loaded set is sorted by id: a binary search, with a plain scan
         * as the fallback for a set built in another order. */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(s->items[mid].id, id);

                if (c == 0)
                        return (int)mid;
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (size_t i = 0; i < s->n; i++)
                if (streq(s->items[i].id, id))
                        return (int)i;
        return -ENOENT;
}

static bool known_service_file(const char *name, bool is_dir)
{
        /* s6-supervise service directories and s6-rc source definitions. */
        static const char *const files[] = {
            "run",
            "finish",
            "notification-fd",
            "timeout-kill",
            "timeout-finish",
            "max-death-tally",
            "down-signal",
            "down",
            "type",
            "dependencies",
            "producer-for",
            "consumer-for",
            "pipeline-name",
            "timeout-up",
            "timeout-down",
            "flag-essential",
            "flag-recheck",
            "lock-fd",
            "flag-newpidns",
            "nosetsid",
            "README",
        };
        static const char *const dirs[] = {"log",      "data",      "env",     "dependencies.d",
                                           "instance", "instances", "template"};

        if (is_dir) {
                for (size_t i = 0; i < ELEMENTSOF(dirs); i++)
                        if (streq(name, dirs[i]))
                                return true;
                return false;
        }
        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                if (streq(name, files[i]))
                        return true;
        return false;
}

/* s6-rc source definitions that plain s6-supervise never reads. */
static const char *const s6_rc_only[] = {"up", "contents", "contents.d"};

static int service_validate(int parent_fd, const char *path, const char *shown, int depth,
                            char **ret_error)
{
        _cleanup_close_ int fd = -1;
        _cleanup_closedir_ DIR *d = NULL;
        _cleanup_free_ char *type = NULL;
        const char *need = "run";
        struct dirent *de;
        struct stat st;
        int r;

        fd = openat(parent_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                int e = errno;

                if (e == ENOTDIR || e == ELOOP)
                        return set_error_message(ret_error, -EINVAL,
                                                 "'%s' is not a directory (a service is a "
                                                 "directory with an executable 'run')%s",
                                                 shown, e == ELOOP ? ": it is a symlink" : "");
                return set_error_message(ret_error, -e, "cannot open the service '%s': %s", shown,
                                         strerror(e));
        }

        /* The machine runs plain s6-svscan, which knows nothing of s6-rc:
         * a oneshot or a bundle would never run, and s6-svscan warns about
         * a dir without `run` every rescan. */
        r = read_file_at(fd, "type", 4096, &type, NULL);
        if (r >= 0) {
                type[strcspn(type, " \t\r\n")] = 0;
                if (!streq(type, "longrun"))
                        return set_error_message(
                            ret_error, -EINVAL,
                            "'%s/type' says '%s': an s6-rc service type; the machine runs plain "
                            "s6, whose services are directories with an executable 'run'",
                            shown, type);
        } else if (r != -ENOENT)
                return set_error_message(ret_error, -EINVAL, "cannot read '%s/type': %s", shown,
                                         strerror(-r));
        for (size_t i = 0; i < ELEMENTSOF(s6_rc_only); i++)
                if (fstatat(fd, s6_rc_only[i], &st, AT_SYMLINK_NOFOLLOW) >= 0)
                        return set_error_message(
                            ret_error, -EINVAL,
                            "'%s/%s' is an s6-rc file; the machine runs plain s6, whose services "
                            "are directories with an executable 'run'",
                            shown, s6_rc_only[i]);

        if (fstatat(fd, need, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return set_error_message(ret_error, -EINVAL,
                                         "service '%s' lacks '%s' (plain s6 services need an "
                                         "executable 'run')",
                                         shown, need);
        if (!S_ISREG(st.st_mode))
                return set_error_message(ret_error, -EINVAL, "'%s/%s' is not a regular file", shown,
                                         need);
        if (streq(need, "run") && !(st.st_mode & 0111))
                return set_error_message(ret_error, -EINVAL,
                                         "'%s/run' is not executable (chmod +x)", shown);

        d = fdopendir(fd);
        if (!d)
                return -errno;
        fd = -1;
        while ((errno = 0, de = readdir(d))) {
                bool is_dir;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                is_dir = S_ISDIR(st.st_mode);
                if (!known_service_file(de->d_name, is_dir))
                        return set_error_message(ret_error, -EINVAL,
                                                 "'%s/%s': unknown %s in an s6 service directory",
                                                 shown, de->d_name, is_dir ? "directory" : "file");
                if (!is_dir && !S_ISREG(st.st_mode))
                        return set_error_message(
                            ret_error, -EINVAL, "'%s/%s' is not a regular file", shown, de->d_name);
                if (streq(de->d_name, "finish") && !(st.st_mode & 0111))
                        return set_error_message(ret_error, -EINVAL,
                                                 "'%s/finish' is not executable (chmod +x)", shown);
                if (streq(de->d_name, "log")) {
                        _cleanup_free_ char *sub = NULL;

                        if (depth > 0)
                                return set_error_message(
                                    ret_error, -EINVAL,
                                    "'%s/log': a logger cannot have its own logger", shown);
                        if (asprintf(&sub, "%s/log", shown) < 0)
                                return -ENOMEM;
                        r = service_validate(dirfd(d), "log", sub, depth + 1, ret_error);
                        if (r < 0)
                                return r;
                }
        }
        if (errno)
                return -errno;
        return 0;
}

int migration_service_validate_at(int dirfd, const char *path, char **ret_error)
{
        return service_validate(dirfd, path, path, 0, ret_error);
}

/* Lists the entries of fd (only dirs with dirs_only), sorted; with
 * skip_hidden, not those whose name starts with '.' (.git, .vscode). */
static int list_dir_sorted(int fd, bool dirs_only, bool skip_hidden, char ***ret)
{
        _cleanup_closedir_ DIR *d = NULL;
        _cleanup_strv_ char **l = NULL;
        struct dirent *de;
        int dfd, r;

        dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dfd < 0)
                return -errno;
        d = fdopendir(dfd);
        if (!d) {
                safe_close(dfd);
                return -errno;
        }
        while ((errno = 0, de = readdir(d))) {
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (skip_hidden && de->d_name[0] == '.')
                        continue;
                /* the entry's type where the file system gives it (a
                 * symlink is followed, as stat would) */
                if (dirs_only && de->d_type != DT_DIR) {
                        if (de->d_type != DT_UNKNOWN && de->d_type != DT_LNK)
                                continue;
                        if (fstatat(dirfd(d), de->d_name, &st, 0) < 0)
                                return -errno;
                        if (!S_ISDIR(st.st_mode))
                                continue;
                }
                r = strv_extend(&l, de->d_name);
                if (r < 0)
                        return r;
        }
        if (errno)
                return -errno;
        if (l)
                strv_sort(l);
        *ret = TAKE_PTR(l);
        return 0;
}

/* migration_load_at, with the dir looked up as name under dirfd and known
 * as path (its messages, m.path). */
static int load_in(int dirfd, const char *name, const char *path, struct migration *ret,
                   char **ret_error)
{
        _cleanup_(migration_done) struct migration m = {};
        _cleanup_close_ int fd = -1, sfd = -1;
        _cleanup_free_ char *state = NULL, *state_name = NULL;
        _cleanup_strv_ char **services = NULL;
        const char *base = strrchr(path, '/');
        struct stat st;
        bool script_ok;
        int r;

        base = base ? base + 1 : path;
        if (!migration_id_shape_valid(base))
                return set_error_message(ret_error, -EINVAL,
                                         "migration directory '%s' is not named like an id (%s)",
                                         path, MIGRATION_ID_PATTERN);
        if (!migration_date_valid(base))
                return set_error_message(ret_error, -EINVAL,
                                         "migration directory '%s': '%.8s' is not a date "
                                         "(YYYYMMDD)",
                                         path, base);
        /* What is hashed, recorded and run must be one file: no link. */
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) >= 0 && S_ISLNK(st.st_mode))
                return set_error_message(ret_error, -EINVAL,
                                         "migration '%s' is a symlink: a migration must be a real "
                                         "directory (copy it into the migrations dir)",
                                         path);
        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return set_error_message(ret_error, -errno, "cannot open migration '%s': %m", path);
        /* one lstat says it all for a regular file, the usual case */
        script_ok = fstatat(fd, MIGRATION_SCRIPT, &st, AT_SYMLINK_NOFOLLOW) >= 0;
        if (script_ok && S_ISLNK(st.st_mode)) {
                char target[PATH_MAX];
                ssize_t n = readlinkat(fd, MIGRATION_SCRIPT, target, sizeof(target) - 1);

                if (n >= 0 && (target[n] = '\0', fstatat(fd, MIGRATION_SCRIPT, &st, 0) < 0))
                        return set_error_message(ret_error, -EINVAL,
                                                 "'%s/%s' is a dangling symlink to '%s' (and "
                                                 "the script must be a regular file in the "
                                                 "migration)",
                                                 path, MIGRATION_SCRIPT, target);
                return set_error_message(ret_error, -EINVAL,
                                         "'%s/%s' is a symlink: the script must be a regular file "
                                         "in the migration (what is hashed, recorded and run is "
                                         "one file)",
                                         path, MIGRATION_SCRIPT);
        }
        if (!(script_ok && S_ISREG(st.st_mode)) && fstatat(fd, MIGRATION_SCRIPT, &st, 0) < 0) {
                int e = errno;

                if (e == ENOENT)
                        return set_error_message(ret_error, -EINVAL, "migration '%s' lacks %s",
                                                 path, MIGRATION_SCRIPT);
                return set_error_message(ret_error, -EINVAL, "cannot stat '%s/%s': %s", path,
                                         MIGRATION_SCRIPT, strerror(e));
        }
        if (!S_ISREG(st.st_mode))
                return set_error_message(ret_error, -EINVAL, "'%s/%s' is not a regular file", path,
                                         MIGRATION_SCRIPT);

        m.id = strdup(base);
        m.path = strdup(path);
        if (!m.id || !m.path)
                return -ENOMEM;

        r = read_file_at(fd, "state", STATE_FILE_MAX, &state, NULL);
        if (r >= 0) {
                if (asprintf(&state_name, "%s/state", path) < 0)
                        return -ENOMEM;
                r = migration_state_parse(state_name, state, &m.state, ret_error);
                if (r < 0)
                        return r;
        } else if (r != -ENOENT)
                return set_error_message(ret_error, r, "cannot read '%s/state': %s", path,
                                         strerror(-r));

        sfd = openat(fd, "services", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sfd >= 0) {
                r = list_dir_sorted(sfd, false, false, &services);
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot read '%s/services': %s",
                                                 path, strerror(-r));
                STRV_FOREACH (s, services) {
                        _cleanup_free_ char *shown = NULL;

                        if (asprintf(&shown, "%s/services/%s", path, *s) < 0)
                                return -ENOMEM;
                        if (!migration_service_name_valid(*s))
                                return set_error_message(ret_error, -EINVAL,
                                                         "'%s': invalid service name", shown);
                        r = service_validate(sfd, *s, shown, 0, ret_error);
                        if (r < 0)
                                return r;
                }
                m.services = TAKE_PTR(services);
        } else if (errno == ENOTDIR)
                return set_error_message(ret_error, -EINVAL,
                                         "'%s/services' is not a directory (it holds one "
                                         "directory per service)",
                                         path);
        else if (errno != ENOENT)
                return set_error_message(ret_error, -EINVAL, "cannot open '%s/services': %s", path,
                                         strerror(errno));

        *ret = m;
        m = (struct migration){};
        return 0;
}

int migration_load_at(int dirfd, const char *path, struct migration *ret, char **ret_error)
{
        return load_in(dirfd, path, path, ret, ret_error);
}

int migration_set_load_at(int dirfd, const char *dir, struct migration_set *ret, char **ret_error)
{
        _cleanup_(migration_set_done) struct migration_set s = {};
        _cleanup_strv_ char **names = NULL;
        _cleanup_close_ int fd = -1;
        size_t n;
        int r;

        fd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return set_error_message(ret_error, -errno,
                                         "cannot open migrations directory '%s': %m", dir);
        r = list_dir_sorted(fd, true, true, &names);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot read migrations directory '%s': %s",
                                         dir, strerror(-r));
        n = strv_length(names);
        s.items = calloc(n ? n : 1, sizeof(struct migration));
        if (!s.items)
                return -ENOMEM;
        STRV_FOREACH (name, names) {
                _cleanup_free_ char *p = NULL;

                if (asprintf(&p, "%s/%s", dir, *name) < 0)
                        return -ENOMEM;
                /* looked up at the dir's fd: one component, not the path */
                r = load_in(fd, *name, p, &s.items[s.n], ret_error);
                if (r < 0)
                        return r;
                /* sorted: two ids with one date and number are neighbours */
                if (s.n > 0 && strncmp(s.items[s.n - 1].id, s.items[s.n].id, 12) == 0)
                        return set_error_message(ret_error, -EINVAL,
                                                 "migrations '%s' and '%s' have the same date and "
                                                 "number %.12s: renumber one",
                                                 s.items[s.n - 1].path, p, s.items[s.n].id);
                s.n++;
        }
        *ret = s;
        s = (struct migration_set){};
        return 0;
}

int migration_next_id(char *const *ids, const char *date, const char *label, char **ret)
{
        unsigned max = 0;
        char *id;

        if (!migration_label_valid(label) || !date || strlen(date) != 8 ||
            !migration_date_valid(date))
                return -EINVAL;
        STRV_FOREACH (i, ids) {
                unsigned nnn;

                if (!migration_id_valid(*i) || strncmp(*i, date, 8) != 0)
                        continue;
                nnn = (unsigned)((*i)[9] - '0') * 100 + (unsigned)((*i)[10] - '0') * 10 +
                      (unsigned)((*i)[11] - '0');
                max = MAX(max, nnn);
        }
        if (max >= 999)
                return -ERANGE;
        if (asprintf(&id, "%s-%03u_%s", date, max + 1, label) < 0)
                return -ENOMEM;
        *ret = id;
        return 0;
}
