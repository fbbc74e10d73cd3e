/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The migration engine: opening a data dir (and repairing it under the
 * lock), and the helpers every command shares (migrate-internal.h).
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "changes.h"
#include "cleanup.h"
#include "config.h"
#include "fs.h"
#include "json.h"
#include "layerstore.h"
#include "lock.h"
#include "log.h"
#include "machine.h"
#include "macro.h"
#include "migrate-internal.h"
#include "migrate.h"
#include "migration.h"
#include "statepath.h"
#include "strv.h"

void migrate_emit(struct migrate *m, enum migrate_event_type type, const char *id,
                  const char *detail, int64_t duration_ms, const unsigned *changes)
{
        struct migrate_event e = {type, id, detail, duration_ms, changes};

        e.index = m->run_index;
        e.total = m->run_total;

        if (m->o.event)
                m->o.event(&e, m->o.userdata);
}

static volatile sig_atomic_t interrupted;

void migrate_interrupt(int sig)
{
        interrupted = sig;
}

int migrate_interrupted(void)
{
        return interrupted;
}

#if STRATA_TEST_HOOKS
void migrate_test_kill_point(const char *step)
{
        const char *at = getenv("STRATA_TEST_KILL_AT");

        if (at && streq(at, step))
                raise(SIGKILL);
        at = getenv("STRATA_TEST_STOP_AT");
        if (at && streq(at, step))
                raise(SIGSTOP);
}
#else
/* A shipped build: the environment cannot kill or stop it. */
void migrate_test_kill_point(const char *step)
{
}
#endif

struct migrate *migrate_free(struct migrate *m)
{
        if (!m)
                return NULL;
        migrate_audit_stop(m);
        if (m->lock_fd >= 0)
                lock_release(m->lock_fd);
        if (m->machine_lock_fd >= 0)
                lock_release(m->machine_lock_fd);
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

void migrate_layer_entry_free(struct layer_entry *e)
{
        free(e->id);
        free(e->dir);
        strv_free(e->migrations);
        *e = (struct layer_entry){};
}

/* A deep copy, so a change is made on the copy and only becomes real when
 * it is saved. */
int migrate_metadata_copy(const struct layer_metadata *m, struct layer_metadata *ret)
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

void migrate_strv_remove(char **l, const char *s)
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

bool migrate_is_applied(const struct layer_metadata *md, const char *id)
{
        return layer_metadata_find_migration(md, id) >= 0;
}

/* Saves md as the new truth (the commit point) and adopts it. */
int migrate_commit(struct migrate *m, struct layer_metadata *md, char **ret_error)
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

int migrate_open_dir_at(int dirfd, const char *path)
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
        usec_t start;
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
        m->data_fd = m->layers_fd = m->records_fd = m->lock_fd = m->machine_lock_fd = -1;
        m->clock = o->clock ? o->clock : clock_real();
        start = clock_monotonic(m->clock);
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
        m->data_fd = migrate_open_dir_at(AT_FDCWD, m->data_dir);
        if (m->data_fd < 0)
                return set_error_message(ret_error, m->data_fd, "cannot open the data dir '%s'",
                                         m->data_dir);
        r = layerstore_ensure_layout(m->data_fd);
        if (r < 0)
                return set_error_message(
                    ret_error, r, "cannot create the layout of the data dir '%s'", m->data_dir);
        m->layers_fd = migrate_open_dir_at(m->data_fd, MIGRATE_LAYERS);
        if (m->layers_fd < 0)
                return set_error_message(ret_error, m->layers_fd, "cannot open '%s/%s'",
                                         m->data_dir, MIGRATE_LAYERS);
        m->records_fd = migrate_open_dir_at(m->data_fd, MIGRATE_RECORDS);
        if (m->records_fd < 0)
                return set_error_message(ret_error, m->records_fd, "cannot open '%s/%s'",
                                         m->data_dir, MIGRATE_RECORDS);

        if (lock) {
                snprintf(purpose, sizeof(purpose), "system-migrate");
                r = lock_acquire_at(m->data_fd, MIGRATE_LOCK, purpose, LOCK_NONBLOCK, &m->lock_fd,
                                    &holder);
                /* A holder that is gone (SIGKILL) may leave the lock to a
                 * process it started until that exits: lock_acquire_at
                 * waits up to LOCK_GONE_HOLDER_WAIT_MSEC for it then. */
                if (r == -EWOULDBLOCK || r == -EAGAIN) {
                        if (holder.pid > 0 &&
                            (holder.gone || (kill(holder.pid, 0) < 0 && errno == ESRCH)))
                                return set_error_message(
                                    ret_error, -EWOULDBLOCK,
                                    "the lock of '%s' is still held 2 s after its holder (pid %d, "
                                    "%s) is gone: a process it started still runs",
                                    m->data_dir, (int)holder.pid, holder.purpose);
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
        if (r == -EBADMSG)
                /* A problem found, not an internal error: nothing is done
                 * over a stack nobody can read. */
                return set_error_message(ret_error, -EUCLEAN,
                                         "cannot load the metadata of '%s': %s; nothing was "
                                         "changed",
                                         m->data_dir, error ? error : "malformed");
        if (r < 0)
                return set_error_message(ret_error, r, "cannot load the metadata of '%s': %s",
                                         m->data_dir, error ? error : strerror(-r));

        if (lock && !o->no_repair) {
                r = migrate_verify(m, true, ret_error);
                if (r < 0)
                        return r;
                m->problems = (unsigned)r;
                log_debug("'%s' locked, loaded and checked in %lld ms", m->data_dir,
                          (long long)((clock_monotonic(m->clock) - start) / USEC_PER_MSEC));
        }
        *ret = TAKE_PTR(m);
        return 0;
}

int migrate_lock_machine(struct migrate *m, const char *what, char **ret_error)
{
        struct lock_holder holder = {};
        char purpose[64];
        int r;

        if (m->machine_lock_fd >= 0)
                return 0;
        snprintf(purpose, sizeof(purpose), "system-migrate %s", what);
        r = lock_acquire_at(m->data_fd, MACHINE_LOCK, purpose, LOCK_NONBLOCK, &m->machine_lock_fd,
                            &holder);
        if (r == -EWOULDBLOCK || r == -EAGAIN)
                return set_error_message(
                    ret_error, -EWOULDBLOCK,
                    "the machine of '%s' is running (pid %d, %s): %s would move or remove layer "
                    "dirs its live root mounts; stop the machine first",
                    m->data_dir, (int)holder.pid, holder.pid > 0 ? holder.purpose : "unknown",
                    what);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot lock '%s/%s'", m->data_dir,
                                         MACHINE_LOCK);
        return 0;
}

/* Updates the holder info in the lock file (lock.h's format) to name
 * what runs now, for humans and for the "busy" message. The JSON is padded
 * with blanks to a fixed size so it overwrites what was there without a
 * truncate (which can stall on a busy file system). */
void migrate_lock_describe(struct migrate *m, const char *what)
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

int migrate_load_migrations(struct migrate *m, struct migration_set *ret, char **ret_error)
{
        _cleanup_free_ char *error = NULL;
        int r;

        r = migration_set_load_at(AT_FDCWD, m->migrations_dir, ret, &error);
        if (r == -ENOENT)
                return set_error_message(ret_error, r, "cannot open the migrations dir '%s': %m",
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
int migrate_layer_dir_name(struct migrate *m, const char *id, char **ret)
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

void migrate_format_time(int64_t usec, char buf[64])
{
        time_t t = (time_t)(usec / 1000000);
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(buf, 64, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- the lower stack ---- */

void migrate_lowers_done(struct migrate_lowers *l)
{
        for (size_t i = 0; i < l->n; i++)
                safe_close(l->fds[i]);
        free(l->fds);
        strv_free(l->paths);
        *l = (struct migrate_lowers){};
}

/* Opens the lower dirs of layers [0, below) (newest first) and the base. */
int migrate_lowers_open(struct migrate *m, size_t below, struct migrate_lowers *ret,
                        char **ret_error)
{
        _cleanup_(migrate_lowers_done) struct migrate_lowers l = {};
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
                int fd = migrate_open_dir_at(AT_FDCWD, *p);

                if (fd < 0)
                        return set_error_message(ret_error, fd, "cannot open the lower dir '%s'",
                                                 *p);
                l.fds[l.n++] = fd;
        }
        *ret = l;
        l = (struct migrate_lowers){};
        return 0;
}

/* ---- writing a layer ---- */

/* Writes a file inside a .tmp-* dir: no fsync of its own, the whole dir is
 * synced once (syncfs) before it is renamed into place, and until then it
 * is garbage that verify removes. */
int migrate_write_plain_at(int dirfd, const char *path, const char *data, size_t len, mode_t mode)
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

int migrate_write_layer_files(struct migrate *m, int dir_fd, const char *id, const char *parent,
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
        r = migrate_write_plain_at(dir_fd, "changes.list", text, strlen(text), 0644);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write the change list of '%s'", id);

        migrate_format_time(clock_now(m->clock), when);
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
        c = json_object();
        for (int k = 0; k < _CHANGE_KIND_MAX; k++) {
                char key[2] = {change_kind_to_char((enum change_kind)k), 0};
                json_object_set_new(c, key, json_integer(changes->state_counts[k]));
        }
        json_object_set_new(j, "state_changes", c);
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
                        r = migrate_write_plain_at(dir_fd, "layer.json", text_nl, strlen(text_nl),
                                                   0644);
        }
        json_decref(j);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write the layer.json of '%s'", id);
        return 0;
}

/* ---- finishing a committed layer: state and service markers ---- */

static int finish_state_and_services(struct migrate *m, const struct layer_entry *e,
                                     char **ret_error)
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
        sfd = migrate_open_dir_at(m->data_fd, "state");
        if (sfd < 0)
                return set_error_message(ret_error, sfd, "cannot open '%s/state'", m->data_dir);

        /* Changes to existing state first (replacements, deletions), then
         * the additions. */
        STRV_FOREACH (id, e->migrations) {
                r = migrate_state_apply(m, *id, sfd, pfd, ret_error);
                if (r < 0)
                        return r;
        }

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

bool migrate_layer_uncommitted(struct migrate *m, const char *dir)
{
        _cleanup_free_ char *p = NULL;
        struct stat st;

        if (asprintf(&p, "%s/" UNCOMMITTED, dir) < 0)
                return false;
        return fstatat(m->layers_fd, p, &st, AT_SYMLINK_NOFOLLOW) >= 0;
}

bool migrate_record_uncommitted(struct migrate *m, const char *id)
{
        _cleanup_free_ char *p = NULL;
        struct stat st;

        if (asprintf(&p, "%s/" UNCOMMITTED, id) < 0)
                return false;
        return fstatat(m->records_fd, p, &st, AT_SYMLINK_NOFOLLOW) >= 0;
}

int migrate_finish_layer(struct migrate *m, const struct layer_entry *e, char **ret_error)
{
        _cleanup_free_ char *p = NULL;
        int r;

        r = finish_state_and_services(m, e, ret_error);
        if (r < 0)
                return r;
        /* Last: from here on nothing tells this layer from one whose
         * metadata entry was lost, so verify never deletes it. */
        STRV_FOREACH (s, e->migrations) {
                free(p);
                if (asprintf(&p, "%s/" UNCOMMITTED, *s) < 0)
                        return -ENOMEM;
                if (unlinkat(m->records_fd, p, 0) < 0 && errno != ENOENT)
                        return set_error_message(ret_error, -errno, "cannot remove '%s/%s/%s'",
                                                 m->data_dir, MIGRATE_RECORDS, p);
        }
        free(p);
        if (asprintf(&p, "%s/" UNCOMMITTED, e->dir) < 0)
                return (p = NULL), -ENOMEM;
        if (unlinkat(m->layers_fd, p, 0) < 0 && errno != ENOENT)
                return set_error_message(ret_error, -errno, "cannot remove '%s/%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS, p);
        return 0;
}

int migrate_layer_state_paths(struct migrate *m, const struct layer_entry *e, char ***ret)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_strv_ char **l = NULL;
        json_t *j = NULL, *v;
        json_error_t je;
        size_t i;
        int r;

        if (asprintf(&path, "%s/layer.json", e->dir) < 0)
                return -ENOMEM;
        r = json_load_at(m->layers_fd, path, &j, &je);
        if (r < 0)
                return r;
        json_array_foreach(json_object_get(j, "state_paths"), i, v)
        {
                if (json_is_string(v) && strv_extend(&l, json_string_value(v)) < 0) {
                        json_decref(j);
                        return -ENOMEM;
                }
        }
        json_decref(j);
        *ret = TAKE_PTR(l);
        return 0;
}

int migrate_write_uncommitted(int dirfd, const char *dir)
{
        static const char text[] = "not committed: verify removes this dir when metadata.json "
                                   "does not list it\n";
        _cleanup_free_ char *p = NULL;

        if (asprintf(&p, "%s/" UNCOMMITTED, dir) < 0)
                return -ENOMEM;
        return migrate_write_plain_at(dirfd, p, text, sizeof(text) - 1, 0644);
}

/* Renames the dirs of active layers [from, end) to OLD_PREFIX<dir> and syncs
 * the layers dir: before a squash or rollback commits, so that verify can
 * move them back after a crash. */
int migrate_move_layers_aside(struct migrate *m, size_t from, size_t end, char **ret_error)
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
