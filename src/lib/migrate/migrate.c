/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "changes.h"
#include "cleanup.h"
#include "fs.h"
#include "json.h"
#include "layerstore.h"
#include "lock.h"
#include "log.h"
#include "machine.h"
#include "macro.h"
#include "migrate.h"
#include "migration.h"
#include "sandbox.h"
#include "sha256.h"
#include "squash.h"
#include "statepath.h"
#include "strv.h"

#define SCRIPT_MAX    (16 * 1024 * 1024)
#define CHANGES_MAX   (512 * 1024 * 1024)
#define OLD_PREFIX    ".old-"
#define TMP_PREFIX    ".tmp-"
#define PENDING_STATE "state-pending"

static const char policy_rc_d[] = "#!/bin/sh\n"
                                  "# installed by system-migrate: no daemon starts while a\n"
                                  "# migration installs packages\n"
                                  "exit 101\n";

struct migrate {
        struct migrate_options o;
        char *data_dir;
        char *base;
        char *migrations_dir;
        int data_fd;
        int layers_fd;
        int records_fd;
        int lock_fd;
        struct layer_metadata md;
        struct clock_source *clock;
};

static void emit(struct migrate *m, enum migrate_event_type type, const char *id,
                 const char *detail, int64_t duration_ms, const unsigned *changes)
{
        struct migrate_event e = {type, id, detail, duration_ms, changes};

        if (m->o.event)
                m->o.event(&e, m->o.userdata);
}

void migrate_test_kill_point(const char *step)
{
        const char *at = getenv("STRATA_TEST_KILL_AT");

        if (at && streq(at, step))
                raise(SIGKILL);
        at = getenv("STRATA_TEST_STOP_AT");
        if (at && streq(at, step))
                raise(SIGSTOP);
}

struct migrate *migrate_free(struct migrate *m)
{
        if (!m)
                return NULL;
        if (m->lock_fd >= 0)
                lock_release(m->lock_fd);
        safe_close(m->data_fd);
        safe_close(m->layers_fd);
        safe_close(m->records_fd);
        layer_metadata_done(&m->md);
        free(m->data_dir);
        free(m->base);
        free(m->migrations_dir);
        free(m);
        return NULL;
}

/* ---- metadata helpers ---- */

static int layer_entry_copy(const struct layer_entry *e, struct layer_entry *ret)
{
        struct layer_entry c = *e;

        c.id = strdup(e->id);
        c.dir = strdup(e->dir);
        c.migrations = NULL;
        if (!c.id || !c.dir || strv_copy(e->migrations, &c.migrations) < 0) {
                free(c.id);
                free(c.dir);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

static void layer_entry_free_fields(struct layer_entry *e)
{
        free(e->id);
        free(e->dir);
        strv_free(e->migrations);
        *e = (struct layer_entry){};
}

/* A deep copy, so a change is made on the copy and only becomes real when
 * it is saved. */
static int metadata_copy(const struct layer_metadata *m, struct layer_metadata *ret)
{
        struct layer_metadata c = {};

        c.layers = calloc(m->n_layers + 1, sizeof(struct layer_entry));
        if (!c.layers)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_layers; i++) {
                if (layer_entry_copy(&m->layers[i], &c.layers[i]) < 0) {
                        layer_metadata_done(&c);
                        return -ENOMEM;
                }
                c.n_layers++;
        }
        if (strv_copy(m->state_paths, &c.state_paths) < 0 ||
            strv_copy(m->rolled_back, &c.rolled_back) < 0) {
                layer_metadata_done(&c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

static void strv_remove(char **l, const char *s)
{
        size_t j = 0;

        if (!l)
                return;
        for (size_t i = 0; l[i]; i++) {
                if (streq(l[i], s))
                        free(l[i]);
                else
                        l[j++] = l[i];
        }
        l[j] = NULL;
}

static bool migration_applied(const struct layer_metadata *md, const char *id)
{
        return layer_metadata_find_migration(md, id) >= 0;
}

/* Saves md as the new truth (the commit point) and adopts it. */
static int commit(struct migrate *m, struct layer_metadata *md, char **ret_error)
{
        int r;

        r = layer_metadata_save(m->data_fd, md);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write '%s/%s'", m->data_dir,
                                         LAYERSTORE_METADATA);
        layer_metadata_done(&m->md);
        m->md = *md;
        *md = (struct layer_metadata){};
        return 0;
}

/* ---- opening ---- */

static int open_dir_at(int dirfd, const char *path)
{
        int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        return fd < 0 ? negative_errno() : fd;
}

int migrate_open(const struct migrate_options *o, bool lock, struct migrate **ret, char **ret_error)
{
        _cleanup_(migrate_freep) struct migrate *m = NULL;
        _cleanup_free_ char *error = NULL;
        struct lock_holder holder = {};
        char purpose[64];
        int r;

        if (!o->data_dir || o->data_dir[0] != '/')
                return set_error_message(ret_error, -EINVAL,
                                         "the data dir '%s' is not an absolute path",
                                         o->data_dir ? o->data_dir : "");
        if (o->base && o->base[0] != '/')
                return set_error_message(ret_error, -EINVAL,
                                         "the base '%s' is not an absolute path", o->base);

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->o = *o;
        m->data_fd = m->layers_fd = m->records_fd = m->lock_fd = -1;
        m->clock = o->clock ? o->clock : clock_real();
        r = migration_path_normalize(o->data_dir, &m->data_dir);
        if (r < 0)
                return set_error_message(ret_error, -EINVAL,
                                         "the data dir '%s' is not a normal path", o->data_dir);
        r = migration_path_normalize(o->base ? o->base : "/", &m->base);
        if (r < 0)
                return set_error_message(ret_error, -EINVAL, "the base '%s' is not a normal path",
                                         o->base);
        m->migrations_dir = strdup(o->migrations_dir ? o->migrations_dir : "migrations");
        if (!m->migrations_dir)
                return -ENOMEM;

        if (!lock && access(m->data_dir, F_OK) < 0 && errno == ENOENT) {
                /* A read-only command (status, diff) on a data dir that does
                 * not exist yet: nothing is applied there, and nothing is
                 * created for a look. */
                *ret = TAKE_PTR(m);
                return 0;
        }
        r = mkdir_p_at(AT_FDCWD, m->data_dir, 0755);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot create the data dir '%s'",
                                         m->data_dir);
        m->data_fd = open_dir_at(AT_FDCWD, m->data_dir);
        if (m->data_fd < 0)
                return set_error_message(ret_error, m->data_fd, "cannot open the data dir '%s'",
                                         m->data_dir);
        r = layerstore_ensure_layout(m->data_fd);
        if (r < 0)
                return set_error_message(
                    ret_error, r, "cannot create the layout of the data dir '%s'", m->data_dir);
        m->layers_fd = open_dir_at(m->data_fd, MIGRATE_LAYERS);
        if (m->layers_fd < 0)
                return set_error_message(ret_error, m->layers_fd, "cannot open '%s/%s'",
                                         m->data_dir, MIGRATE_LAYERS);
        m->records_fd = open_dir_at(m->data_fd, MIGRATE_RECORDS);
        if (m->records_fd < 0)
                return set_error_message(ret_error, m->records_fd, "cannot open '%s/%s'",
                                         m->data_dir, MIGRATE_RECORDS);

        if (lock) {
                snprintf(purpose, sizeof(purpose), "system-migrate");
                r = lock_acquire_at(m->data_fd, MIGRATE_LOCK, purpose, LOCK_NONBLOCK, &m->lock_fd,
                                    &holder);
                if (r == -EWOULDBLOCK || r == -EAGAIN) {
                        if (holder.pid > 0)
                                return set_error_message(
                                    ret_error, -EWOULDBLOCK,
                                    "another migration is running (pid %d, %s)", (int)holder.pid,
                                    holder.purpose);
                        return set_error_message(ret_error, -EWOULDBLOCK,
                                                 "another migration is running");
                }
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot lock '%s/%s'", m->data_dir,
                                                 MIGRATE_LOCK);
                migrate_test_kill_point("locked");
        }

        r = layer_metadata_load(m->data_fd, &m->md, &error);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot load the metadata of '%s': %s",
                                         m->data_dir, error ? error : strerror(-r));

        if (lock) {
                r = migrate_verify(m, true, ret_error);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(m);
        return 0;
}

/* Updates the holder info in the lock file (lock.h's format) to name
 * what runs now, for humans and for the "busy" message. The JSON is padded
 * with blanks to a fixed size so it overwrites what was there without a
 * truncate (which can stall on a busy file system). */
static void lock_describe(struct migrate *m, const char *what)
{
        _cleanup_free_ char *s = NULL;
        char buf[512];
        size_t len;
        json_t *j;

        if (m->lock_fd < 0)
                return;
        j = json_pack("{s:i, s:s, s:I}", "pid", (int)getpid(), "purpose", what, "since",
                      (json_int_t)time(NULL));
        if (!j)
                return;
        s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!s || (len = strlen(s)) >= sizeof(buf) - 1)
                return;
        memcpy(buf, s, len);
        memset(buf + len, ' ', sizeof(buf) - 1 - len);
        buf[sizeof(buf) - 1] = '\n';
        (void)!pwrite(m->lock_fd, buf, sizeof(buf), 0);
}

static int load_migrations(struct migrate *m, struct migration_set *ret, char **ret_error)
{
        _cleanup_free_ char *error = NULL;
        int r;

        r = migration_set_load_at(AT_FDCWD, m->migrations_dir, ret, &error);
        if (r == -ENOENT)
                return set_error_message(ret_error, r, "cannot open the migrations dir '%s'",
                                         m->migrations_dir);
        if (r < 0)
                return set_error_message(ret_error, r == -ENOMEM ? r : -EINVAL, "%s",
                                         error ? error : "cannot load the migrations");
        return 0;
}

/* ---- naming ---- */

static bool layer_dir_taken(struct migrate *m, const char *dir)
{
        _cleanup_free_ char *old = NULL;
        struct stat st;

        if (fstatat(m->layers_fd, dir, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                return true;
        if (asprintf(&old, OLD_PREFIX "%s", dir) < 0)
                return true;
        if (fstatat(m->layers_fd, old, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                return true;
        for (size_t i = 0; i < m->md.n_layers; i++)
                if (streq(m->md.layers[i].dir, dir))
                        return true;
        return false;
}

/* A layer dir name never used before in this store: id, or id~N. */
static int layer_dir_name(struct migrate *m, const char *id, char **ret)
{
        char *s;

        if (!layer_dir_taken(m, id)) {
                s = strdup(id);
                if (!s)
                        return -ENOMEM;
                *ret = s;
                return 0;
        }
        for (unsigned n = 2; n < 100000; n++) {
                if (asprintf(&s, "%s~%u", id, n) < 0)
                        return -ENOMEM;
                if (!layer_dir_taken(m, s)) {
                        *ret = s;
                        return 0;
                }
                free(s);
        }
        return -EEXIST;
}

static void format_time(int64_t usec, char buf[64])
{
        time_t t = (time_t)(usec / 1000000);
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(buf, 64, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- the lower stack ---- */

struct lowers {
        char **paths;
        int *fds;
        size_t n;
};

static void lowers_done(struct lowers *l)
{
        for (size_t i = 0; i < l->n; i++)
                safe_close(l->fds[i]);
        free(l->fds);
        strv_free(l->paths);
        *l = (struct lowers){};
}

/* Opens the lower dirs of layers [0, below) (newest first) and the base. */
static int lowers_open(struct migrate *m, size_t below, struct lowers *ret, char **ret_error)
{
        _cleanup_(lowers_done) struct lowers l = {};
        struct layer_metadata part = m->md;
        int r;

        part.n_layers = below;
        r = layer_metadata_lowerdirs(&part, m->data_dir, m->base, &l.paths);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot list the lower dirs of '%s'",
                                         m->data_dir);
        l.fds = calloc(strv_length(l.paths) + 1, sizeof(int));
        if (!l.fds)
                return -ENOMEM;
        STRV_FOREACH (p, l.paths) {
                int fd = open_dir_at(AT_FDCWD, *p);

                if (fd < 0)
                        return set_error_message(ret_error, fd, "cannot open the lower dir '%s'",
                                                 *p);
                l.fds[l.n++] = fd;
        }
        *ret = l;
        l = (struct lowers){};
        return 0;
}

/* ---- writing a layer ---- */

/* Writes a file inside a .tmp-* dir: no fsync of its own, the whole dir is
 * synced once (syncfs) before it is renamed into place, and until then it
 * is garbage that verify removes. */
static int write_plain_at(int dirfd, const char *path, const char *data, size_t len, mode_t mode)
{
        _cleanup_close_ int fd = -1;
        ssize_t n;

        fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        while (len > 0) {
                n = RETRY_EINTR(write(fd, data, len));
                if (n < 0)
                        return -errno;
                data += n;
                len -= (size_t)n;
        }
        return 0;
}

static int write_layer_files(struct migrate *m, int dir_fd, const char *id, const char *parent,
                             char *const *migrations, const char *script_sha256,
                             const struct change_list *changes, char *const *services,
                             char *const *state_paths, char **ret_error)
{
        _cleanup_free_ char *text = NULL;
        json_t *j, *c, *a;
        char when[64];
        int r;

        r = changes_format(changes, &text);
        if (r < 0)
                return r;
        r = write_plain_at(dir_fd, "changes.list", text, strlen(text), 0644);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write the change list of '%s'", id);

        format_time(clock_now(m->clock), when);
        j = json_object();
        if (!j)
                return -ENOMEM;
        json_object_set_new(j, "id", json_string(id));
        json_object_set_new(j, "parent", parent ? json_string(parent) : json_null());
        json_object_set_new(j, "created_at", json_string(when));
        json_object_set_new(j, "script_sha256",
                            script_sha256 ? json_string(script_sha256) : json_null());
        a = json_array();
        STRV_FOREACH (s, migrations)
                json_array_append_new(a, json_string(*s));
        json_object_set_new(j, "migrations", a);
        c = json_object();
        for (int k = 0; k < _CHANGE_KIND_MAX; k++) {
                char key[2] = {change_kind_to_char((enum change_kind)k), 0};
                json_object_set_new(c, key, json_integer(changes->counts[k]));
        }
        json_object_set_new(j, "changes", c);
        json_object_set_new(j, "bytes", json_integer((json_int_t)changes->bytes));
        a = json_array();
        STRV_FOREACH (s, services)
                json_array_append_new(a, json_string(*s));
        json_object_set_new(j, "services", a);
        a = json_array();
        STRV_FOREACH (s, state_paths)
                json_array_append_new(a, json_string(*s));
        json_object_set_new(j, "state_paths", a);
        {
                _cleanup_free_ char *dump = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                _cleanup_free_ char *text_nl = NULL;

                if (!dump || asprintf(&text_nl, "%s\n", dump) < 0)
                        r = -ENOMEM;
                else
                        r = write_plain_at(dir_fd, "layer.json", text_nl, strlen(text_nl), 0644);
        }
        json_decref(j);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write the layer.json of '%s'", id);
        return 0;
}

/* ---- finishing a committed layer: state and service markers ---- */

static int finish_layer(struct migrate *m, const struct layer_entry *e, char **ret_error)
{
        _cleanup_close_ int lfd = -1, pfd = -1, sfd = -1;
        _cleanup_strv_ char **paths = NULL;
        json_t *j = NULL, *services;
        json_error_t je;
        size_t i;
        int r;

        lfd = openat(m->layers_fd, e->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (lfd < 0)
                return set_error_message(ret_error, -errno, "cannot open the layer '%s/%s/%s'",
                                         m->data_dir, MIGRATE_LAYERS, e->dir);
        pfd = openat(lfd, PENDING_STATE, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0)
                return errno == ENOENT
                           ? 0
                           : set_error_message(ret_error, -errno, "cannot open '%s'", e->dir);
        sfd = open_dir_at(m->data_fd, "state");
        if (sfd < 0)
                return set_error_message(ret_error, sfd, "cannot open '%s/state'", m->data_dir);

        /* Deepest first, so a nested state path moves before its parent. */
        r = strv_copy(m->md.state_paths, &paths);
        if (r < 0)
                return r;
        for (size_t n = strv_length(paths); n > 0; n--) {
                const char *p = paths[n - 1] + 1;
                struct stat st;

                if (fstatat(pfd, p, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                r = state_path_move_at(pfd, p, sfd, p);
                if (r < 0)
                        return set_error_message(ret_error, r,
                                                 "cannot move the state '%s' to '%s/state/%s'",
                                                 paths[n - 1], m->data_dir, p);
        }

        /* Service markers: <data>/state/services/<name>/installed-by. */
        r = json_load_at(lfd, "layer.json", &j, &je);
        if (r >= 0) {
                json_t *v;

                services = json_object_get(j, "services");
                json_array_foreach(services, i, v)
                {
                        _cleanup_free_ char *dir = NULL, *file = NULL;
                        const char *name = json_string_value(v);
                        struct stat st;

                        if (!name || !migration_service_name_valid(name))
                                continue;
                        if (asprintf(&dir, "services/%s", name) < 0 ||
                            asprintf(&file, "services/%s/installed-by", name) < 0) {
                                json_decref(j);
                                return -ENOMEM;
                        }
                        r = mkdir_p_at(sfd, dir, 0755);
                        if (r >= 0 && fstatat(sfd, file, &st, 0) < 0)
                                r = write_file_atomic_at(sfd, file, e->id, strlen(e->id), 0644);
                        if (r < 0) {
                                json_decref(j);
                                return set_error_message(
                                    ret_error, r, "cannot mark the service '%s' in '%s/state/%s'",
                                    name, m->data_dir, dir);
                        }
                }
                json_decref(j);
        }

        r = syncfs(sfd) < 0 ? negative_errno() : 0;
        if (r < 0)
                return set_error_message(ret_error, r, "cannot sync '%s/state'", m->data_dir);
        r = rm_rf_at(lfd, PENDING_STATE, RM_ROOT | RM_MISSING_OK);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot remove '%s/%s/%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS, e->dir, PENDING_STATE);
        return 0;
}

/* ---- verify / gc ---- */

int migrate_verify(struct migrate *m, bool repair, char **ret_error)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int problems = 0, r;
        bool changed = false;

        /* Active layers: present and whole. An interrupted rollback or
         * squash may have moved them aside before its commit point. */
        for (size_t i = 0; i < m->md.n_layers; i++) {
                const struct layer_entry *e = &m->md.layers[i];
                _cleanup_free_ char *old = NULL, *msg = NULL;
                struct stat st;

                if (asprintf(&old, OLD_PREFIX "%s", e->dir) < 0)
                        return -ENOMEM;
                if (fstatat(m->layers_fd, e->dir, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (repair && fstatat(m->layers_fd, old, &st, AT_SYMLINK_NOFOLLOW) >= 0 &&
                            renameat(m->layers_fd, old, m->layers_fd, e->dir) >= 0) {
                                if (asprintf(&msg,
                                             "restored the layer dir '%s/%s/%s' moved aside "
                                             "by an interrupted run",
                                             m->data_dir, MIGRATE_LAYERS, e->dir) < 0)
                                        return -ENOMEM;
                                emit(m, MIGRATE_EVENT_REPAIRED, e->id, msg, 0, NULL);
                                changed = true;
                        } else {
                                if (asprintf(&msg,
                                             "the layer dir '%s/%s/%s' of the active layer "
                                             "'%s' is missing",
                                             m->data_dir, MIGRATE_LAYERS, e->dir, e->id) < 0)
                                        return -ENOMEM;
                                emit(m, MIGRATE_EVENT_PROBLEM, e->id, msg, 0, NULL);
                                problems++;
                                continue;
                        }
                }
                {
                        _cleanup_free_ char *fs = NULL, *lj = NULL;

                        if (asprintf(&fs, "%s/fs", e->dir) < 0 ||
                            asprintf(&lj, "%s/layer.json", e->dir) < 0)
                                return -ENOMEM;
                        if (fstatat(m->layers_fd, fs, &st, 0) < 0 || !S_ISDIR(st.st_mode) ||
                            fstatat(m->layers_fd, lj, &st, 0) < 0) {
                                free(msg);
                                if (asprintf(&msg, "the layer '%s/%s/%s' lacks fs/ or layer.json",
                                             m->data_dir, MIGRATE_LAYERS, e->dir) < 0)
                                        return -ENOMEM;
                                emit(m, MIGRATE_EVENT_PROBLEM, e->id, msg, 0, NULL);
                                problems++;
                                continue;
                        }
                }
                {
                        _cleanup_free_ char *pending = NULL;

                        if (asprintf(&pending, "%s/" PENDING_STATE, e->dir) < 0)
                                return -ENOMEM;
                        if (fstatat(m->layers_fd, pending, &st, AT_SYMLINK_NOFOLLOW) >= 0) {
                                free(msg);
                                msg = NULL;
                                if (repair) {
                                        r = finish_layer(m, e, ret_error);
                                        if (r < 0)
                                                return r;
                                        if (asprintf(&msg,
                                                     "finished moving the state of '%s' "
                                                     "to '%s/state'",
                                                     e->id, m->data_dir) < 0)
                                                return -ENOMEM;
                                        emit(m, MIGRATE_EVENT_REPAIRED, e->id, msg, 0, NULL);
                                } else {
                                        if (asprintf(&msg,
                                                     "the state of '%s' is not yet in "
                                                     "'%s/state'",
                                                     e->id, m->data_dir) < 0)
                                                return -ENOMEM;
                                        emit(m, MIGRATE_EVENT_PROBLEM, e->id, msg, 0, NULL);
                                        problems++;
                                }
                        }
                }
        }
        (void)changed;

        /* Layer dirs nobody references: .tmp-* (an interrupted apply or
         * squash) and plain names (renamed but not committed). .old-* are
         * kept aside for gc. */
        d = fdopendir(fcntl(m->layers_fd, F_DUPFD_CLOEXEC, 3));
        if (!d)
                return set_error_message(ret_error, -errno, "cannot read '%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS);
        rewinddir(d); /* a dup shares its offset with earlier reads */
        while ((errno = 0, de = readdir(d))) {
                _cleanup_free_ char *msg = NULL;
                bool active = false;

                if (streq(de->d_name, ".") || streq(de->d_name, "..") ||
                    startswith(de->d_name, OLD_PREFIX))
                        continue;
                for (size_t i = 0; i < m->md.n_layers; i++)
                        if (streq(m->md.layers[i].dir, de->d_name))
                                active = true;
                if (active)
                        continue;
                if (!repair) {
                        if (asprintf(&msg, "'%s/%s/%s' is a leftover of an interrupted run",
                                     m->data_dir, MIGRATE_LAYERS, de->d_name) < 0)
                                return -ENOMEM;
                        emit(m, MIGRATE_EVENT_PROBLEM, NULL, msg, 0, NULL);
                        problems++;
                        continue;
                }
                r = rm_rf_at(m->layers_fd, de->d_name, RM_ROOT | RM_MISSING_OK);
                if (r < 0)
                        return set_error_message(ret_error, r,
                                                 "cannot remove the leftover '%s/%s/%s'",
                                                 m->data_dir, MIGRATE_LAYERS, de->d_name);
                if (asprintf(&msg, "removed the leftover '%s/%s/%s' of an interrupted run",
                             m->data_dir, MIGRATE_LAYERS, de->d_name) < 0)
                        return -ENOMEM;
                emit(m, MIGRATE_EVENT_REPAIRED, NULL, msg, 0, NULL);
        }
        closedir(TAKE_PTR(d));

        /* Migration records: only for applied migrations. */
        d = fdopendir(fcntl(m->records_fd, F_DUPFD_CLOEXEC, 3));
        if (!d)
                return set_error_message(ret_error, -errno, "cannot read '%s/%s'", m->data_dir,
                                         MIGRATE_RECORDS);
        rewinddir(d); /* a dup shares its offset with earlier reads */
        while ((errno = 0, de = readdir(d))) {
                _cleanup_free_ char *msg = NULL;
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISDIR(st.st_mode))
                        continue;
                if (migration_id_valid(de->d_name) && migration_applied(&m->md, de->d_name))
                        continue;
                if (!repair) {
                        if (asprintf(&msg, "'%s/%s/%s' records a migration that is not applied",
                                     m->data_dir, MIGRATE_RECORDS, de->d_name) < 0)
                                return -ENOMEM;
                        emit(m, MIGRATE_EVENT_PROBLEM, NULL, msg, 0, NULL);
                        problems++;
                        continue;
                }
                r = rm_rf_at(m->records_fd, de->d_name, RM_ROOT | RM_MISSING_OK);
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot remove '%s/%s/%s'",
                                                 m->data_dir, MIGRATE_RECORDS, de->d_name);
                if (asprintf(&msg, "removed '%s/%s/%s' (no applied migration)", m->data_dir,
                             MIGRATE_RECORDS, de->d_name) < 0)
                        return -ENOMEM;
                emit(m, MIGRATE_EVENT_REPAIRED, NULL, msg, 0, NULL);
        }
        if (repair && (fsync(m->layers_fd) < 0 || fsync(m->records_fd) < 0))
                return set_error_message(ret_error, -errno, "cannot sync '%s/system'", m->data_dir);
        return problems;
}

int migrate_gc(struct migrate *m, char **ret_error)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int n = 0, r;

        d = fdopendir(fcntl(m->layers_fd, F_DUPFD_CLOEXEC, 3));
        if (!d)
                return set_error_message(ret_error, -errno, "cannot read '%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS);
        rewinddir(d); /* a dup shares its offset with earlier reads */
        while ((errno = 0, de = readdir(d))) {
                if (!startswith(de->d_name, OLD_PREFIX) && !startswith(de->d_name, TMP_PREFIX))
                        continue;
                r = rm_rf_at(m->layers_fd, de->d_name, RM_ROOT | RM_MISSING_OK);
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot remove '%s/%s/%s'",
                                                 m->data_dir, MIGRATE_LAYERS, de->d_name);
                n++;
        }
        if (fsync(m->layers_fd) < 0)
                return set_error_message(ret_error, -errno, "cannot sync '%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS);
        return n;
}

/* Renames the dirs of active layers [from, end) to OLD_PREFIX<dir> and syncs
 * the layers dir: before a squash or rollback commits, so that verify can
 * move them back after a crash. */
static int move_layers_aside(struct migrate *m, size_t from, size_t end, char **ret_error)
{
        for (size_t i = from; i < end; i++) {
                _cleanup_free_ char *old = NULL;

                if (asprintf(&old, OLD_PREFIX "%s", m->md.layers[i].dir) < 0)
                        return -ENOMEM;
                if (renameat(m->layers_fd, m->md.layers[i].dir, m->layers_fd, old) < 0)
                        return set_error_message(ret_error, -errno, "cannot move '%s/%s/%s' aside",
                                                 m->data_dir, MIGRATE_LAYERS, m->md.layers[i].dir);
        }
        if (fsync(m->layers_fd) < 0)
                return set_error_message(ret_error, -errno, "cannot sync '%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS);
        return 0;
}

/* ---- squash ---- */

static int squash_range(struct migrate *m, size_t from, size_t to, char **ret_error)
{
        _cleanup_(layer_metadata_done) struct layer_metadata md = {};
        _cleanup_(change_list_done) struct change_list changes = {};
        _cleanup_(lowers_done) struct lowers lowers = {};
        _cleanup_free_ char *id = NULL, *dir = NULL, *tmp = NULL, *fs = NULL;
        _cleanup_strv_ char **migrations = NULL;
        _cleanup_close_ int tfd = -1;
        struct layer_entry e = {};
        int64_t duration = 0;
        int r;

        if (from >= to || to >= m->md.n_layers)
                return set_error_message(ret_error, -EINVAL, "nothing to squash");

        for (size_t i = from; i <= to; i++) {
                STRV_FOREACH (s, m->md.layers[i].migrations) {
                        r = strv_extend(&migrations, *s);
                        if (r < 0)
                                return r;
                }
                duration += m->md.layers[i].duration_ms;
        }
        if (asprintf(&id, "%s..%s", migrations[0], migrations[strv_length(migrations) - 1]) < 0)
                return -ENOMEM;
        r = layer_dir_name(m, id, &dir);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot name the squashed layer '%s'", id);
        if (asprintf(&tmp, TMP_PREFIX "%s", dir) < 0 || asprintf(&fs, "%s/fs", tmp) < 0)
                return -ENOMEM;

        r = rm_rf_at(m->layers_fd, tmp, RM_ROOT | RM_MISSING_OK);
        if (r >= 0 && mkdirat(m->layers_fd, tmp, 0755) < 0)
                r = negative_errno();
        if (r < 0)
                return set_error_message(ret_error, r, "cannot create '%s/%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS, tmp);
        tfd = open_dir_at(m->layers_fd, tmp);
        if (tfd < 0)
                return set_error_message(ret_error, tfd, "cannot open '%s/%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS, tmp);

        for (size_t i = from; i <= to; i++) {
                _cleanup_free_ char *src = NULL;

                if (asprintf(&src, "%s/fs", m->md.layers[i].dir) < 0)
                        return -ENOMEM;
                r = i == from ? squash_start_at(m->layers_fd, src, tfd, "fs")
                              : squash_apply_at(m->layers_fd, src, tfd, "fs");
                if (r < 0)
                        return set_error_message(ret_error, r,
                                                 "cannot merge the layer '%s/%s/%s' into '%s'",
                                                 m->data_dir, MIGRATE_LAYERS, src, tmp);
        }

        r = lowers_open(m, from, &lowers, ret_error);
        if (r < 0)
                return r;
        r = changes_capture_at(tfd, "fs", lowers.fds, lowers.n, m->md.state_paths, &changes);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot compute the changes of '%s/%s/%s'",
                                         m->data_dir, MIGRATE_LAYERS, tmp);
        r = write_layer_files(m, tfd, id, from > 0 ? m->md.layers[from - 1].id : NULL, migrations,
                              NULL, &changes, NULL, NULL, ret_error);
        if (r < 0)
                return r;
        if (syncfs(tfd) < 0)
                return set_error_message(ret_error, -errno, "cannot sync '%s'", m->data_dir);

        if (renameat(m->layers_fd, tmp, m->layers_fd, dir) < 0)
                return set_error_message(ret_error, -errno, "cannot rename '%s' to '%s' in '%s/%s'",
                                         tmp, dir, m->data_dir, MIGRATE_LAYERS);
        r = move_layers_aside(m, from, to + 1, ret_error);
        if (r < 0)
                return r;
        migrate_test_kill_point("squash-renamed");

        r = metadata_copy(&m->md, &md);
        if (r < 0)
                return r;
        e.id = TAKE_PTR(id);
        e.dir = TAKE_PTR(dir);
        e.migrations = TAKE_PTR(migrations);
        e.applied_at = md.layers[to].applied_at;
        e.duration_ms = duration;
        memcpy(e.changes, changes.counts, sizeof(e.changes));
        for (size_t i = from; i <= to; i++)
                layer_entry_free_fields(&md.layers[i]);
        md.layers[from] = e;
        memmove(&md.layers[from + 1], &md.layers[to + 1],
                (md.n_layers - to - 1) * sizeof(struct layer_entry));
        md.n_layers -= to - from;
        r = commit(m, &md, ret_error);
        if (r < 0)
                return r;
        emit(m, MIGRATE_EVENT_SQUASHED, m->md.layers[from].id, m->md.layers[from].dir, 0,
             m->md.layers[from].changes);
        return 0;
}

int migrate_squash(struct migrate *m, const char *from, const char *to, char **ret_error)
{
        int i, j;

        i = layer_metadata_find_migration(&m->md, from);
        if (i < 0)
                return set_error_message(ret_error, -ENOENT, "migration '%s' is not applied", from);
        j = layer_metadata_find_migration(&m->md, to);
        if (j < 0)
                return set_error_message(ret_error, -ENOENT, "migration '%s' is not applied", to);
        if (i > j)
                return set_error_message(ret_error, -EINVAL,
                                         "'%s' is applied after '%s': swap them", from, to);
        if (i == j)
                return set_error_message(ret_error, -EINVAL,
                                         "'%s' and '%s' are already in one layer ('%s')", from, to,
                                         m->md.layers[i].id);
        lock_describe(m, "squash");
        return squash_range(m, (size_t)i, (size_t)j, ret_error);
}

/* Keeps the lower stack below the kernel's limit: squashes the oldest
 * layers when one more would not fit. */
static int auto_squash(struct migrate *m, char **ret_error)
{
        size_t max = m->o.max_layers ? m->o.max_layers : MIGRATE_MAX_LAYERS;

        if (max < 2)
                max = 2;
        if (m->md.n_layers + 1 <= max)
                return 0;
        /* Merge the oldest ones down to half the limit, so this happens
         * once every max/2 migrations, not at each. */
        return squash_range(m, 0, m->md.n_layers - max / 2, ret_error);
}

/* ---- rollback ---- */

int migrate_rollback(struct migrate *m, const char *to, char **ret_error)
{
        _cleanup_(layer_metadata_done) struct layer_metadata md = {};
        size_t keep;
        int i, r;

        if (m->md.n_layers == 0)
                return set_error_message(ret_error, -ENOENT, "no migration is applied");
        if (to) {
                const struct layer_entry *e;

                i = layer_metadata_find_migration(&m->md, to);
                if (i < 0)
                        return set_error_message(ret_error, -ENOENT,
                                                 "migration '%s' is not applied", to);
                e = &m->md.layers[i];
                if (!streq(e->migrations[strv_length(e->migrations) - 1], to))
                        return set_error_message(
                            ret_error, -EINVAL,
                            "'%s' is inside the squashed layer '%s': roll back to its "
                            "last migration or below it",
                            to, e->id);
                keep = (size_t)i + 1;
        } else
                keep = m->md.n_layers - 1;
        if (keep == m->md.n_layers)
                return 0;

        lock_describe(m, "rollback");
        r = move_layers_aside(m, keep, m->md.n_layers, ret_error);
        if (r < 0)
                return r;
        migrate_test_kill_point("rollback-renamed");

        r = metadata_copy(&m->md, &md);
        if (r < 0)
                return r;
        for (size_t k = keep; k < md.n_layers; k++) {
                STRV_FOREACH (s, md.layers[k].migrations) {
                        if (strv_contains(md.rolled_back, *s))
                                continue;
                        r = strv_extend(&md.rolled_back, *s);
                        if (r < 0)
                                return r;
                }
                layer_entry_free_fields(&md.layers[k]);
        }
        r = (int)(md.n_layers - keep);
        md.n_layers = keep;
        {
                int c = commit(m, &md, ret_error);
                if (c < 0)
                        return c;
        }
        /* The records of the rolled-back migrations go (verify would too). */
        STRV_FOREACH (s, m->md.rolled_back)
                if (!migration_applied(&m->md, *s))
                        (void)rm_rf_at(m->records_fd, *s, RM_ROOT | RM_MISSING_OK);
        return r;
}

/* ---- status / diff ---- */

int migrate_status(struct migrate *m, json_t **ret, char **ret_error)
{
        _cleanup_(migration_set_done) struct migration_set set = {};
        json_t *j, *applied, *pending, *rolled;
        int r;

        r = load_migrations(m, &set, ret_error);
        if (r < 0 && r != -ENOENT)
                return r;

        j = json_object();
        applied = json_array();
        pending = json_array();
        rolled = json_array();
        if (!j || !applied || !pending || !rolled) {
                json_decref(j);
                json_decref(applied);
                json_decref(pending);
                json_decref(rolled);
                return -ENOMEM;
        }
        json_object_set_new(j, "applied", applied);
        json_object_set_new(j, "pending", pending);
        json_object_set_new(j, "rolled_back", rolled);

        for (size_t i = 0; i < m->md.n_layers; i++) {
                const struct layer_entry *e = &m->md.layers[i];
                char when[64];

                format_time(e->applied_at, when);
                STRV_FOREACH (s, e->migrations) {
                        json_t *a = json_object(), *c = json_object();

                        for (int k = 0; k < _CHANGE_KIND_MAX; k++) {
                                char key[2] = {change_kind_to_char((enum change_kind)k), 0};
                                json_object_set_new(c, key, json_integer(e->changes[k]));
                        }
                        json_object_set_new(a, "id", json_string(*s));
                        json_object_set_new(a, "applied_at", json_string(when));
                        json_object_set_new(a, "duration_ms", json_integer(e->duration_ms));
                        json_object_set_new(a, "changes", c);
                        json_object_set_new(a, "layer", json_string(e->id));
                        json_array_append_new(applied, a);
                }
        }
        for (size_t i = 0; i < set.n; i++) {
                json_t *p;

                if (migration_applied(&m->md, set.items[i].id))
                        continue;
                p = json_object();
                json_object_set_new(p, "id", json_string(set.items[i].id));
                json_array_append_new(pending, p);
        }
        STRV_FOREACH (s, m->md.rolled_back) {
                json_t *p;

                if (migration_applied(&m->md, *s))
                        continue;
                p = json_object();
                json_object_set_new(p, "id", json_string(*s));
                json_array_append_new(rolled, p);
        }
        *ret = j;
        return 0;
}

int migrate_diff(struct migrate *m, const char *id, struct change_list *ret, char **ret_error)
{
        _cleanup_free_ char *path = NULL, *text = NULL;
        unsigned line = 0;
        int i, r;

        i = layer_metadata_find_migration(&m->md, id);
        if (i < 0) {
                for (size_t k = 0; k < m->md.n_layers; k++)
                        if (streq(m->md.layers[k].id, id))
                                i = (int)k;
                if (i < 0)
                        return set_error_message(ret_error, -ENOENT,
                                                 "migration '%s' is not applied", id);
        }
        if (asprintf(&path, "%s/changes.list", m->md.layers[i].dir) < 0)
                return -ENOMEM;
        r = read_file_at(m->layers_fd, path, CHANGES_MAX, &text, NULL);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot read '%s/%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS, path);
        r = changes_parse(text, ret, &line);
        if (r < 0)
                return set_error_message(ret_error, r, "'%s/%s/%s' line %u is malformed",
                                         m->data_dir, MIGRATE_LAYERS, path, line);
        return 0;
}

/* ---- applying one migration ---- */

struct tee {
        int in;
        int out[2];
};

static void *tee_thread(void *p)
{
        struct tee *t = p;
        char buf[8192];
        ssize_t n;

        while ((n = RETRY_EINTR(read(t->in, buf, sizeof(buf)))) > 0)
                for (int i = 0; i < 2; i++) {
                        const char *q = buf;
                        ssize_t left = n, w;

                        if (t->out[i] < 0)
                                continue;
                        while (left > 0 && (w = RETRY_EINTR(write(t->out[i], q, (size_t)left))) > 0)
                                q += w, left -= w;
                }
        return NULL;
}

/* What runs as pid 2 of the sandbox, in the new root. */
struct inside {
        const struct migration *migration;
        char *const *envp;
        int result_fd;
};

struct inside_result {
        int status; /* the script's, 128+N for a signal */
        int error;  /* errno installing services, 0 */
        char what[256];
};

static int inside_main(void *userdata)
{
        struct inside *in = userdata;
        struct inside_result res = {};
        char *argv[] = {(char *)"/bin/sh", (char *)MIGRATE_MOUNT_DIR "/" MIGRATION_SCRIPT, NULL};
        pid_t pid;
        int st, r;

        pid = sandbox_spawn(argv, in->envp, "/", -1);
        if (pid < 0) {
                res.status = 127;
                res.error = -pid;
                snprintf(res.what, sizeof(res.what), "execute '/bin/sh' in the sandbox");
                goto out;
        }
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR) {
                        res.status = 127;
                        goto out;
                }
        res.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (res.status != 0)
                goto out;

        /* Services go into the layer under /etc/s6/<name>; creating them
         * through the overlay copies /etc up the way the kernel does. */
        STRV_FOREACH (s, in->migration->services) {
                _cleanup_free_ char *src = NULL, *dst = NULL;

                if (asprintf(&src, MIGRATE_MOUNT_DIR "/services/%s", *s) < 0 ||
                    asprintf(&dst, "/etc/s6/%s", *s) < 0) {
                        res.error = ENOMEM;
                        goto out;
                }
                r = mkdir_p_at(AT_FDCWD, "/etc/s6", 0755);
                if (r >= 0)
                        r = rm_rf_at(AT_FDCWD, dst, RM_ROOT | RM_MISSING_OK);
                if (r >= 0)
                        r = copy_tree_at(AT_FDCWD, src, AT_FDCWD, dst, COPY_XATTRS);
                if (r < 0) {
                        res.error = -r;
                        snprintf(res.what, sizeof(res.what), "install the service '%s' as '%s'", *s,
                                 dst);
                        goto out;
                }
        }
out:
        (void)!write(in->result_fd, &res, sizeof(res));
        return res.status != 0 ? res.status : res.error != 0 ? 1 : 0;
}

static bool base_is_debian_like(const char *base)
{
        _cleanup_close_ int fd = open_dir_at(AT_FDCWD, base);
        struct stat st;

        return fd >= 0 && (fstatat(fd, "etc/debian_version", &st, 0) >= 0 ||
                           fstatat(fd, "usr/bin/dpkg", &st, 0) >= 0);
}

/* The plan writes policy-rc.d through the overlay root, so it lands in the
 * upper dir: take it out again (when it is still ours), with the parents
 * that were only copied up for it. */
static int strip_policy_rc_d(int tfd, int *lower_fds, size_t n_lowers)
{
        static const char *const dirs[] = {"fs/usr/sbin", "fs/usr"};
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_file_at(tfd, "fs/usr/sbin/policy-rc.d", 4096, &text, NULL);
        if (r == -ENOENT || r == -EFBIG)
                return 0;
        if (r < 0)
                return r;
        if (!streq(text, policy_rc_d))
                return 0;
        if (unlinkat(tfd, "fs/usr/sbin/policy-rc.d", 0) < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_close_ int fd = -1;

                if (!changes_path_in_lowers(lower_fds, n_lowers, dirs[i] + 2))
                        break;
                fd = openat(tfd, dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0 || changes_is_opaque_fd(fd))
                        break;
                /* Fails with ENOTEMPTY when the script changed more there. */
                if (unlinkat(tfd, dirs[i], AT_REMOVEDIR) < 0)
                        break;
        }
        return 0;
}

/* Copies the migration's source into the record dir (what ran). */
static int snapshot_migration(const struct migration *mi, int tfd, char **ret_error)
{
        struct stat st;
        int r;

        if (mkdirat(tfd, "record", 0755) < 0)
                return set_error_message(ret_error, -errno, "cannot create the record of '%s'",
                                         mi->id);
        r = copy_tree_at(AT_FDCWD, mi->path, tfd, "record/source", COPY_XATTRS);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot copy the migration '%s'", mi->path);
        if (fstatat(tfd, "record/source/" MIGRATION_SCRIPT, &st, 0) < 0)
                return set_error_message(ret_error, -errno, "cannot find '%s/%s'", mi->path,
                                         MIGRATION_SCRIPT);
        return 0;
}

static int apply_one(struct migrate *m, const struct migration *mi, char **ret_error)
{
        _cleanup_(layer_metadata_done) struct layer_metadata md = {};
        _cleanup_(change_list_done) struct change_list changes = {};
        _cleanup_(lowers_done) struct lowers lowers = {};
        _cleanup_(mount_plan_freep) struct mount_plan *plan = NULL;
        _cleanup_strv_ char **state_paths = NULL, **machine_paths = NULL, **envp = NULL,
                            **created_state = NULL;
        _cleanup_free_ char *tmp = NULL, *tmp_abs = NULL, *upper = NULL, *work = NULL,
                            *scratch = NULL, *isolate = NULL, *record_src = NULL, *dir = NULL,
                            *error = NULL, *applied = NULL;
        _cleanup_close_ int tfd = -1, log_fd = -1, state_fd = -1;
        int pipe_out[2] = {-1, -1}, res_pipe[2] = {-1, -1};
        struct inside_result res = {};
        struct layer_metadata sandbox_md;
        struct layer_entry e = {};
        char sha[SHA256_HEX_SIZE];
        usec_t start = clock_monotonic(m->clock), now;
        pthread_t tee_tid;
        struct tee tee;
        bool got_result = false;
        int status = 0, r;

        emit(m, MIGRATE_EVENT_APPLYING, mi->id, NULL, 0, NULL);
        lock_describe(m, mi->id);

        /* The state paths of the sandbox: the machine's, every applied
         * migration's (from metadata) and this one's. */
        r = state_path_machine_list(m->data_fd, &machine_paths, &error);
        if (r < 0)
                return set_error_message(ret_error, r == -ENOMEM ? r : -EINVAL, "%s",
                                         error ? error : "cannot read the machine's state paths");
        r = strv_copy(m->md.state_paths, &state_paths);
        if (r >= 0)
                r = state_path_merge(&state_paths, machine_paths);
        if (r >= 0)
                r = state_path_merge(&state_paths, mi->state);
        if (r < 0)
                return r;

        /* 2. .tmp-<id>/{fs,work} */
        if (asprintf(&tmp, TMP_PREFIX "%s", mi->id) < 0 ||
            asprintf(&tmp_abs, "%s/%s/%s", m->data_dir, MIGRATE_LAYERS, tmp) < 0 ||
            asprintf(&upper, "%s/fs", tmp_abs) < 0 || asprintf(&work, "%s/work", tmp_abs) < 0 ||
            asprintf(&scratch, "%s/state", tmp_abs) < 0 ||
            asprintf(&isolate, "%s/isolate", tmp_abs) < 0 ||
            asprintf(&record_src, "%s/record/source", tmp_abs) < 0)
                return -ENOMEM;
        r = rm_rf_at(m->layers_fd, tmp, RM_ROOT | RM_MISSING_OK);
        if (r >= 0 && mkdirat(m->layers_fd, tmp, 0755) < 0)
                r = negative_errno();
        if (r < 0)
                return set_error_message(ret_error, r, "cannot create '%s'", tmp_abs);
        tfd = open_dir_at(m->layers_fd, tmp);
        if (tfd < 0)
                return set_error_message(ret_error, tfd, "cannot open '%s'", tmp_abs);
        if (mkdirat(tfd, "fs", 0755) < 0 || mkdirat(tfd, "work", 0700) < 0 ||
            mkdirat(tfd, "state", 0700) < 0)
                return set_error_message(ret_error, -errno, "cannot create the layer dirs in '%s'",
                                         tmp_abs);
        r = snapshot_migration(mi, tfd, ret_error);
        if (r < 0)
                goto fail_cleanup;
        r = sha256_file_hex_at(tfd, "record/source/" MIGRATION_SCRIPT, sha);
        if (r < 0) {
                set_error_message(ret_error, r, "cannot read '%s/%s'", mi->path, MIGRATION_SCRIPT);
                goto fail_cleanup;
        }
        log_fd =
            openat(tfd, "record/log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0644);
        if (log_fd < 0) {
                r = set_error_message(ret_error, -errno, "cannot create '%s/record/log'", tmp_abs);
                goto fail_cleanup;
        }

        /* State dirs the overlays stack on must exist; the ones made here
         * are empty and removed again if the migration fails. */
        state_fd = open_dir_at(m->data_fd, "state");
        if (state_fd < 0) {
                r = set_error_message(ret_error, state_fd, "cannot open '%s/state'", m->data_dir);
                goto fail_cleanup;
        }
        STRV_FOREACH (p, state_paths) {
                struct stat st;

                if (fstatat(state_fd, *p + 1, &st, 0) >= 0)
                        continue;
                r = mkdir_p_at(state_fd, *p + 1, 0755);
                if (r >= 0)
                        r = strv_extend(&created_state, *p + 1);
                if (r < 0) {
                        set_error_message(ret_error, r, "cannot create '%s/state%s'", m->data_dir,
                                          *p);
                        goto fail_cleanup;
                }
        }
        migrate_test_kill_point("prepared");

        /* 3. the sandbox */
        sandbox_md = m->md;
        sandbox_md.state_paths = state_paths;
        {
                struct machine_bind bind = {record_src, MIGRATE_MOUNT_DIR, true};
                struct machine_options mo = {
                    .data_dir = m->data_dir,
                    .base = m->base,
                    .upper_dir = upper,
                    .work_dir = work,
                    .state_scratch = scratch,
                    .base_scratch = isolate,
                    .tmp_tmpfs = true,
                    .dev = MACHINE_DEV_MINIMAL,
                    .policy_rc_d = base_is_debian_like(m->base) ? policy_rc_d : NULL,
                    .binds = &bind,
                    .n_binds = 1,
                };

                r = machine_root_plan(&mo, &sandbox_md, &plan);
                if (r < 0) {
                        set_error_message(ret_error, r,
                                          "cannot build the sandbox of '%s' over '%s'", mi->id,
                                          m->base);
                        goto fail_cleanup;
                }
        }

        {
                const char *term = getenv("TERM");
                char *envs[] = {
                    (char *)"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    (char *)"HOME=/root",
                    (char *)"LANG=C.UTF-8",
                    (char *)"DEBIAN_FRONTEND=noninteractive",
                };

                for (size_t i = 0; i < ELEMENTSOF(envs); i++)
                        if (strv_extend(&envp, envs[i]) < 0)
                                return -ENOMEM;
                {
                        char *s;
                        if (asprintf(&s, "STRATA_MIGRATION=%s", mi->id) < 0 ||
                            strv_consume(&envp, s) < 0)
                                return -ENOMEM;
                        if (term) {
                                if (asprintf(&s, "TERM=%s", term) < 0 || strv_consume(&envp, s) < 0)
                                        return -ENOMEM;
                        }
                }
        }

        if (pipe2(pipe_out, O_CLOEXEC) < 0 || pipe2(res_pipe, O_CLOEXEC) < 0) {
                r = set_error_message(ret_error, -errno, "cannot create a pipe");
                goto fail_cleanup;
        }
        tee = (struct tee){pipe_out[0], {log_fd, m->o.output_fd}};
        r = -pthread_create(&tee_tid, NULL, tee_thread, &tee);
        if (r < 0) {
                set_error_message(ret_error, r, "cannot start the log thread");
                goto fail_cleanup;
        }
        {
                struct inside in = {mi, envp, res_pipe[1]};
                struct sandbox_config sc = {
                    .flags = SANDBOX_UTS | SANDBOX_IPC,
                    .plan = plan,
                    .hostname = NULL,
                    .callback = inside_main,
                    .userdata = &in,
                    .stdin_fd = -1,
                    .stdout_fd = pipe_out[1],
                    .stderr_fd = pipe_out[1],
                    .timeout_usec = m->o.timeout_usec,
                };
                _cleanup_close_ int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);

                sc.stdin_fd = devnull >= 0 ? devnull : 0;
                r = sandbox_run(&sc, &status, &error);
        }
        pipe_out[1] = safe_close(pipe_out[1]);
        res_pipe[1] = safe_close(res_pipe[1]);
        pthread_join(tee_tid, NULL);
        pipe_out[0] = safe_close(pipe_out[0]);
        if (r < 0) {
                set_error_message(ret_error, r, "cannot %s", error ? error : "run the sandbox");
                goto fail_cleanup;
        }
        got_result = RETRY_EINTR(read(res_pipe[0], &res, sizeof(res))) == (ssize_t)sizeof(res);
        if (!got_result)
                res = (struct inside_result){.status = status};
        res_pipe[0] = safe_close(res_pipe[0]);
        log_debug("%s: sandbox done after %lld ms", mi->id,
                  (long long)((clock_monotonic(m->clock) - start) / USEC_PER_MSEC));
        migrate_test_kill_point("ran");

        /* 5. failure: nothing stays */
        if (status != 0 || res.status != 0 || res.error != 0) {
                if (status == SANDBOX_EXIT_TIMEOUT && !got_result)
                        r = set_error_message(
                            ret_error, -EPROTO,
                            "migration '%s' timed out after %llu s and was rolled back", mi->id,
                            (unsigned long long)(m->o.timeout_usec / USEC_PER_SEC));
                else if (res.error != 0)
                        r = set_error_message(
                            ret_error, -EPROTO,
                            "migration '%s' failed and was rolled back: cannot %s: %s", mi->id,
                            res.what, strerror(res.error));
                else if (res.status > 128)
                        r = set_error_message(
                            ret_error, -EPROTO,
                            "migration '%s' failed and was rolled back: %s was killed by "
                            "signal %d",
                            mi->id, MIGRATION_SCRIPT, res.status - 128);
                else
                        r = set_error_message(
                            ret_error, -EPROTO,
                            "migration '%s' failed and was rolled back: %s exited with "
                            "status %d",
                            mi->id, MIGRATION_SCRIPT, res.status ? res.status : status);
                goto fail_cleanup;
        }

        /* 6. capture */
        r = lowers_open(m, m->md.n_layers, &lowers, ret_error);
        if (r < 0)
                goto fail_cleanup;
        r = strip_policy_rc_d(tfd, lowers.fds, lowers.n);
        if (r < 0) {
                set_error_message(ret_error, r, "cannot remove '%s/usr/sbin/policy-rc.d'", upper);
                goto fail_cleanup;
        }
        r = changes_capture_at(tfd, "fs", lowers.fds, lowers.n, state_paths, &changes);
        if (r < 0) {
                set_error_message(ret_error, r, "cannot compute the changes in '%s'", upper);
                goto fail_cleanup;
        }
        log_debug("%s: %zu changes captured after %lld ms", mi->id, changes.n,
                  (long long)((clock_monotonic(m->clock) - start) / USEC_PER_MSEC));
        migrate_test_kill_point("captured");

        /* State written under state paths: the scratch uppers (and anything
         * the layer holds below a state path) wait in state-pending/ until
         * the commit, then move to <data>/state. */
        if (mkdirat(tfd, PENDING_STATE, 0755) < 0 && errno != EEXIST) {
                r = set_error_message(ret_error, -errno, "cannot create '%s/%s'", tmp_abs,
                                      PENDING_STATE);
                goto fail_cleanup;
        }
        {
                size_t n = 0;

                STRV_FOREACH (p, state_paths) {
                        _cleanup_free_ char *su = NULL, *dst = NULL, *lp = NULL;
                        struct stat st;

                        if (asprintf(&su, "state/%zu/upper", n++) < 0 ||
                            asprintf(&dst, PENDING_STATE "%s", *p) < 0 ||
                            asprintf(&lp, "fs%s", *p) < 0)
                                return -ENOMEM;
                        if (fstatat(tfd, su, &st, AT_SYMLINK_NOFOLLOW) >= 0) {
                                r = state_path_move_at(tfd, su, tfd, dst);
                                if (r < 0) {
                                        set_error_message(ret_error, r,
                                                          "cannot keep the state '%s' of '%s'", *p,
                                                          mi->id);
                                        goto fail_cleanup;
                                }
                        }
                        if (fstatat(tfd, lp, &st, AT_SYMLINK_NOFOLLOW) >= 0 &&
                            S_ISDIR(st.st_mode)) {
                                r = state_path_move_at(tfd, lp, tfd, dst);
                                if (r < 0) {
                                        set_error_message(ret_error, r,
                                                          "cannot keep the state '%s' of '%s'", *p,
                                                          mi->id);
                                        goto fail_cleanup;
                                }
                        }
                }
        }
        r = rm_rf_at(tfd, "state", RM_ROOT | RM_MISSING_OK);
        if (r >= 0)
                r = rm_rf_at(tfd, "work", RM_ROOT | RM_MISSING_OK);
        if (r >= 0)
                r = rm_rf_at(tfd, "isolate", RM_ROOT | RM_MISSING_OK);
        if (r < 0) {
                set_error_message(ret_error, r, "cannot clean up '%s'", tmp_abs);
                goto fail_cleanup;
        }

        {
                _cleanup_strv_ char **one = NULL;
                const char *parent = m->md.n_layers ? m->md.layers[m->md.n_layers - 1].id : NULL;

                r = strv_extend(&one, mi->id);
                if (r < 0)
                        return r;
                r = write_layer_files(m, tfd, mi->id, parent, one, sha, &changes, mi->services,
                                      mi->state, ret_error);
                if (r < 0)
                        goto fail_cleanup;
        }
        now = clock_monotonic(m->clock);
        {
                _cleanup_free_ char *text = NULL;
                char when[64];

                format_time(clock_now(m->clock), when);
                if (asprintf(&applied, "%s\n", when) < 0)
                        return -ENOMEM;
                r = write_plain_at(tfd, "record/applied", applied, strlen(applied), 0644);
                if (r >= 0)
                        r = changes_format(&changes, &text);
                if (r >= 0)
                        r = write_plain_at(tfd, "record/changes.list", text, strlen(text), 0644);
                if (r >= 0 && linkat(tfd, "record/source/" MIGRATION_SCRIPT, tfd,
                                     "record/" MIGRATION_SCRIPT, 0) < 0)
                        r = negative_errno();
                if (r < 0) {
                        set_error_message(ret_error, r, "cannot write the record of '%s'", mi->id);
                        goto fail_cleanup;
                }
        }
        migrate_test_kill_point("written");

        log_debug("%s: layer written after %lld ms", mi->id,
                  (long long)((clock_monotonic(m->clock) - start) / USEC_PER_MSEC));
        if (fsync(log_fd) < 0 || syncfs(tfd) < 0) {
                r = set_error_message(ret_error, -errno, "cannot sync '%s'", tmp_abs);
                goto fail_cleanup;
        }
        log_debug("%s: synced after %lld ms", mi->id,
                  (long long)((clock_monotonic(m->clock) - start) / USEC_PER_MSEC));
        migrate_test_kill_point("synced");

        /* The record, then the layer, then the metadata: the commit point. */
        r = layer_dir_name(m, mi->id, &dir);
        if (r < 0) {
                set_error_message(ret_error, r, "cannot name the layer of '%s'", mi->id);
                goto fail_cleanup;
        }
        r = rm_rf_at(m->records_fd, mi->id, RM_ROOT | RM_MISSING_OK);
        if (r >= 0 && renameat(tfd, "record", m->records_fd, mi->id) < 0)
                r = negative_errno();
        if (r < 0) {
                set_error_message(ret_error, r, "cannot move the record of '%s' to '%s/%s/%s'",
                                  mi->id, m->data_dir, MIGRATE_RECORDS, mi->id);
                goto fail_cleanup;
        }
        migrate_test_kill_point("recorded");
        if (renameat(m->layers_fd, tmp, m->layers_fd, dir) < 0) {
                r = set_error_message(ret_error, -errno, "cannot rename '%s' to '%s/%s/%s'",
                                      tmp_abs, m->data_dir, MIGRATE_LAYERS, dir);
                goto fail_cleanup;
        }
        if (fsync(m->layers_fd) < 0 || fsync(m->records_fd) < 0) {
                r = set_error_message(ret_error, -errno, "cannot sync '%s/system'", m->data_dir);
                (void)renameat(m->layers_fd, dir, m->layers_fd, tmp);
                goto fail_cleanup;
        }
        migrate_test_kill_point("renamed");

        r = metadata_copy(&m->md, &md);
        if (r < 0)
                return r;
        e.id = strdup(mi->id);
        e.dir = TAKE_PTR(dir);
        if (!e.id || strv_extend(&e.migrations, mi->id) < 0) {
                layer_entry_free_fields(&e);
                return -ENOMEM;
        }
        e.applied_at = clock_now(m->clock);
        e.duration_ms = (now - start) / USEC_PER_MSEC;
        memcpy(e.changes, changes.counts, sizeof(e.changes));
        md.layers[md.n_layers++] = e;
        strv_remove(md.rolled_back, mi->id);
        r = state_path_merge(&md.state_paths, state_paths);
        if (r < 0)
                return r;
        r = commit(m, &md, ret_error);
        if (r < 0) {
                /* Not committed: the layer dir is an orphan verify removes. */
                return r;
        }
        log_debug("%s: committed after %lld ms", mi->id,
                  (long long)((clock_monotonic(m->clock) - start) / USEC_PER_MSEC));
        migrate_test_kill_point("committed");

        /* After the commit point: move the state, mark the services. A
         * crash here is finished by verify. */
        r = finish_layer(m, &m->md.layers[m->md.n_layers - 1], ret_error);
        if (r < 0)
                return r;
        migrate_test_kill_point("finished");

        emit(m, MIGRATE_EVENT_APPLIED, mi->id, NULL, m->md.layers[m->md.n_layers - 1].duration_ms,
             m->md.layers[m->md.n_layers - 1].changes);
        return 0;

fail_cleanup:
        safe_close(pipe_out[0]);
        safe_close(pipe_out[1]);
        safe_close(res_pipe[0]);
        safe_close(res_pipe[1]);
        tfd = safe_close(tfd);
        (void)rm_rf_at(m->layers_fd, tmp, RM_ROOT | RM_MISSING_OK);
        /* Only the empty state dirs made above go; never existing state. */
        if (state_fd >= 0)
                for (size_t n = strv_length(created_state); n > 0; n--) {
                        char *p = created_state[n - 1], *slash;

                        while (unlinkat(state_fd, p, AT_REMOVEDIR) >= 0 &&
                               (slash = strrchr(p, '/')))
                                *slash = 0;
                }
        if (r == -EPROTO)
                emit(m, MIGRATE_EVENT_FAILED, mi->id, ret_error ? *ret_error : NULL, 0, NULL);
        return r;
}

int migrate_up(struct migrate *m, const char *to, bool dry_run, char **ret_error)
{
        _cleanup_(migration_set_done) struct migration_set set = {};
        int r, n = 0;

        r = load_migrations(m, &set, ret_error);
        if (r < 0)
                return r;
        if (to && migration_set_find(&set, to) < 0)
                return set_error_message(ret_error, -EINVAL, "there is no migration '%s' in '%s'",
                                         to, m->migrations_dir);

        for (size_t i = 0; i < set.n; i++) {
                const struct migration *mi = &set.items[i];

                if (to && strcmp(mi->id, to) > 0)
                        break;
                if (migration_applied(&m->md, mi->id))
                        continue;
                if (dry_run) {
                        emit(m, MIGRATE_EVENT_WOULD_APPLY, mi->id, NULL, 0, NULL);
                        n++;
                        continue;
                }
                r = auto_squash(m, ret_error);
                if (r < 0)
                        return r;
                r = apply_one(m, mi, ret_error);
                if (r < 0)
                        return r;
                n++;
        }
        return n;
}

/* ---- new / install ---- */

int migrate_new(const struct migrate_options *o, const char *label, const char *script,
                char **ret_path, char **ret_error)
{
        static const char template[] =
            "#!/bin/sh\n"
            "# Runs once, with /bin/sh, as root in a sandbox whose root is the machine's\n"
            "# current layers plus a fresh layer that captures every change. A non-zero\n"
            "# exit throws the layer (and any state written) away.\n"
            "# $STRATA_MIGRATION holds this migration's id.\n"
            "set -eu\n"
            "\n";
        _cleanup_strv_ char **names = NULL;
        _cleanup_free_ char *id = NULL, *path = NULL, *spath = NULL;
        _cleanup_closedir_ DIR *d = NULL;
        const char *dir = o->migrations_dir ? o->migrations_dir : "migrations";
        struct clock_source *c = o->clock ? o->clock : clock_real();
        struct dirent *de;
        char date[16];
        time_t t = (time_t)(clock_now(c) / USEC_PER_SEC);
        struct tm tm;
        int r;

        if (!migration_label_valid(label))
                return set_error_message(
                    ret_error, -EINVAL, "invalid label '%s': use lowercase letters, digits and '_'",
                    label);
        r = mkdir_p_at(AT_FDCWD, dir, 0755);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot create the migrations dir '%s'",
                                         dir);
        d = opendir(dir);
        if (!d)
                return set_error_message(ret_error, -errno, "cannot read the migrations dir '%s'",
                                         dir);
        while ((errno = 0, de = readdir(d)))
                if (migration_id_valid(de->d_name) && strv_extend(&names, de->d_name) < 0)
                        return -ENOMEM;

        localtime_r(&t, &tm);
        strftime(date, sizeof(date), "%Y%m%d", &tm);
        r = migration_next_id(names, date, label, &id);
        if (r == -ERANGE)
                return set_error_message(ret_error, r, "no id left for %s in '%s' (999 a day)",
                                         date, dir);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot make an id for '%s'", label);
        if (asprintf(&path, "%s/%s", dir, id) < 0 ||
            asprintf(&spath, "%s/%s", path, MIGRATION_SCRIPT) < 0)
                return -ENOMEM;
        if (mkdirat(AT_FDCWD, path, 0755) < 0)
                return set_error_message(ret_error, -errno, "cannot create '%s'", path);
        if (script) {
                _cleanup_free_ char *full = NULL;

                if (asprintf(&full, "%s%s", template, script) < 0)
                        return -ENOMEM;
                r = write_file_atomic_at(AT_FDCWD, spath, full, strlen(full), 0755);
        } else
                r = write_file_atomic_at(AT_FDCWD, spath, template, strlen(template), 0755);
        if (r < 0) {
                (void)rm_rf_at(AT_FDCWD, path, RM_ROOT | RM_MISSING_OK);
                return set_error_message(ret_error, r, "cannot write '%s'", spath);
        }
        *ret_path = TAKE_PTR(path);
        return 0;
}

static bool package_name_valid(const char *p)
{
        if (!*p || p[0] == '-')
                return false;
        for (; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || strchr("+-.:_=~", *p)))
                        return false;
        return true;
}

int migrate_install_script(const char *base, char *const *packages, char **ret)
{
        _cleanup_close_ int fd = open_dir_at(AT_FDCWD, base ? base : "/");
        _cleanup_free_ char *list = NULL, *s = NULL;
        struct stat st;
        size_t len = 0;

        if (fd < 0)
                return fd;
        STRV_FOREACH (p, packages) {
                if (!package_name_valid(*p))
                        return -EINVAL;
                len += strlen(*p) + 1;
        }
        list = calloc(len + 1, 1);
        if (!list)
                return -ENOMEM;
        STRV_FOREACH (p, packages) {
                if (*list)
                        strcat(list, " ");
                strcat(list, *p);
        }
        if (fstatat(fd, "usr/bin/apt-get", &st, 0) >= 0) {
                if (asprintf(&s,
                             "# Reads the package lists only when the base has none.\n"
                             "if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then\n"
                             "    apt-get update\n"
                             "fi\n"
                             "apt-get install -y --no-install-recommends %s\n"
                             "apt-get clean\n",
                             list) < 0)
                        return -ENOMEM;
        } else if (fstatat(fd, "sbin/apk", &st, 0) >= 0) {
                if (asprintf(&s, "apk add --no-cache %s\n", list) < 0)
                        return -ENOMEM;
        } else if (fstatat(fd, "usr/bin/dnf", &st, 0) >= 0) {
                if (asprintf(&s, "dnf install -y %s\ndnf clean all\n", list) < 0)
                        return -ENOMEM;
        } else
                return -EOPNOTSUPP;
        *ret = TAKE_PTR(s);
        return 0;
}

int migrate_install(struct migrate *m, char *const *packages, char **ret_error)
{
        _cleanup_free_ char *label = NULL, *script = NULL, *path = NULL;
        const char *id;
        size_t len = strlen("install");
        int r;

        if (strv_length(packages) == 0)
                return set_error_message(ret_error, -EINVAL, "no package given");
        STRV_FOREACH (p, packages)
                len += strlen(*p) + 1;
        label = calloc(len + 1, 1);
        if (!label)
                return -ENOMEM;
        strcpy(label, "install");
        STRV_FOREACH (p, packages) {
                char *q;

                if (!package_name_valid(*p))
                        return set_error_message(ret_error, -EINVAL, "invalid package name '%s'",
                                                 *p);
                q = label + strlen(label);
                *q++ = '_';
                for (const char *c = *p; *c; c++)
                        *q++ = (*c >= 'A' && *c <= 'Z') ? (char)(*c - 'A' + 'a')
                               : (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ? *c
                                                                                      : '_';
                *q = 0;
                if (strlen(label) > 120) {
                        label[120] = 0;
                        break;
                }
        }
        r = migrate_install_script(m->base, packages, &script);
        if (r == -EOPNOTSUPP)
                return set_error_message(ret_error, r,
                                         "the base '%s' has no package manager strata knows "
                                         "(apt-get, apk, dnf)",
                                         m->base);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write the install script");
        r = migrate_new(&m->o, label, script, &path, ret_error);
        if (r < 0)
                return r;
        id = strrchr(path, '/');
        id = id ? id + 1 : path;
        return migrate_up(m, id, false, ret_error);
}
