/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* verify (and its repair) and gc: what the crash protocol can leave. */
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "changes.h"
#include "cleanup.h"
#include "fs.h"
#include "json.h"
#include "layerstore.h"
#include "log.h"
#include "macro.h"
#include "manifest.h"
#include "migrate-internal.h"
#include "migrate.h"
#include "migration.h"
#include "statepath.h"
#include "strv.h"

static bool layer_active(const struct migrate *m, const char *dir)
{
        size_t lo = 0, hi = m->md.n_layers;

        /* Layer dirs are named after ids, applied in id order: a binary
         * search finds one in the usual stack, the scan below in any
         * other (out-of-order applies, id~N names). */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(m->md.layers[mid].dir, dir);

                if (c == 0)
                        return true;
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (size_t i = 0; i < m->md.n_layers; i++)
                if (streq(m->md.layers[i].dir, dir))
                        return true;
        return false;
}

/* Whether a layer dir not in metadata is what the crash protocol leaves:
 * a .tmp-* of an in-flight step, or a renamed dir that still carries the
 * UNCOMMITTED marker. .old-* dirs are kept for gc. */
static bool layer_leftover(struct migrate *m, const char *name)
{
        return startswith(name, TMP_PREFIX) || migrate_layer_uncommitted(m, name);
}

/* Whether a record of a migration that is not applied is what the crash
 * protocol leaves: an uncommitted record, or the record of a migration
 * rolled back (rollback removes those after its commit). */
static bool record_leftover(struct migrate *m, const char *name)
{
        return migrate_record_uncommitted(m, name) ||
               (migration_id_valid(name) && strv_contains(m->md.rolled_back, name));
}

/* A DIR in *ret over the store's dir fd (its layers or records dir, name)
 * that reads from the start; its own dup of fd. */
static int open_store_dir(struct migrate *m, int fd, const char *name, DIR **ret, char **ret_error)
{
        DIR *d = fdopendir(fcntl(fd, F_DUPFD_CLOEXEC, 3));

        if (!d)
                return set_error_message(ret_error, -errno, "cannot read '%s/%s'", m->data_dir,
                                         name);
        rewinddir(d); /* a dup shares its offset with earlier reads */
        *ret = d;
        return 0;
}

/* Whether the entry de of the records dir d is the record of a migration
 * that is not applied (a dir: its type where the file system gives it). */
static bool record_unapplied(struct migrate *m, DIR *d, const struct dirent *de)
{
        struct stat st;

        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                return false;
        if (de->d_type != DT_DIR &&
            (de->d_type != DT_UNKNOWN ||
             fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode)))
                return false;
        return !migration_id_valid(de->d_name) || !migrate_is_applied(&m->md, de->d_name);
}

/* Committed layers and records that metadata.json does not list: a lost
 * or older metadata.json, never a crash (metadata is only replaced by
 * rename). */
static int find_untracked(struct migrate *m, char ***ret_layers, char ***ret_records,
                          char **ret_error)
{
        _cleanup_strv_ char **names = NULL, **layers = NULL, **records = NULL;
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int r;

        r = dir_list_fd(m->layers_fd, &names);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot read '%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS);
        STRV_FOREACH (n, names) {
                if (startswith(*n, OLD_PREFIX) || layer_active(m, *n) || layer_leftover(m, *n))
                        continue;
                if (strv_extend(&layers, *n) < 0)
                        return -ENOMEM;
        }
        r = open_store_dir(m, m->records_fd, MIGRATE_RECORDS, &d, ret_error);
        if (r < 0)
                return r;
        while ((errno = 0, de = readdir(d))) {
                if (!record_unapplied(m, d, de) || record_leftover(m, de->d_name))
                        continue;
                if (strv_extend(&records, de->d_name) < 0)
                        return -ENOMEM;
        }
        if (errno)
                return set_error_message(ret_error, -errno, "cannot read '%s/%s'", m->data_dir,
                                         MIGRATE_RECORDS);
        if (records)
                strv_sort(records);
        *ret_layers = TAKE_PTR(layers);
        *ret_records = TAKE_PTR(records);
        return 0;
}

/* Refuses (-EUCLEAN) when committed layers or records are not in
 * metadata: they are reported one by one, and nothing is removed. */
static int refuse_untracked(struct migrate *m, char **ret_error)
{
        _cleanup_strv_ char **layers = NULL, **records = NULL;
        _cleanup_free_ char *ll = NULL, *lr = NULL;
        struct stat st;
        bool missing;
        int r;

        r = find_untracked(m, &layers, &records, ret_error);
        if (r < 0)
                return r;
        if (!layers && !records)
                return 0;
        STRV_FOREACH (n, layers) {
                _cleanup_free_ char *msg = NULL;

                if (asprintf(&msg,
                             "the layer dir '%s/%s/%s' is a committed layer that '%s' does not "
                             "list",
                             m->data_dir, MIGRATE_LAYERS, *n, LAYERSTORE_METADATA) < 0)
                        return -ENOMEM;
                migrate_emit(m, MIGRATE_EVENT_PROBLEM, NULL, msg, 0, NULL);
        }
        STRV_FOREACH (n, records) {
                _cleanup_free_ char *msg = NULL;

                if (asprintf(&msg, "'%s/%s/%s' records a migration that '%s' does not list",
                             m->data_dir, MIGRATE_RECORDS, *n, LAYERSTORE_METADATA) < 0)
                        return -ENOMEM;
                migrate_emit(m, MIGRATE_EVENT_PROBLEM, NULL, msg, 0, NULL);
        }
        missing = fstatat(m->data_fd, LAYERSTORE_METADATA, &st, 0) < 0;
        ll = strv_join(layers, ", ");
        lr = strv_join(records, ", ");
        if (!ll || !lr)
                return -ENOMEM;
        return set_error_message(
            ret_error, -EUCLEAN,
            "'%s/%s' %s, but the data dir holds committed layers (%s) and records (%s) it does "
            "not list: that is no leftover of an interrupted run, so nothing was removed; "
            "'verify --rebuild' rebuilds the metadata from each layer's layer.json",
            m->data_dir, LAYERSTORE_METADATA,
            missing ? "is missing" : "is older than the layers (restored from a backup?)",
            *ll ? ll : "none", *lr ? lr : "none");
}

/* Emits a PROBLEM (or, with repaired, REPAIRED) event of id: the message
 * formatted from fmt. Returns 1 for a problem, 0 for a repair, or -ENOMEM. */
static int verify_say(struct migrate *m, bool repaired, const char *id, const char *fmt, ...)
    _printf_(4, 5);
static int verify_say(struct migrate *m, bool repaired, const char *id, const char *fmt, ...)
{
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        migrate_emit(m, repaired ? MIGRATE_EVENT_REPAIRED : MIGRATE_EVENT_PROBLEM, id, msg, 0,
                     NULL);
        return repaired ? 0 : 1;
}

/* An active layer's dir is there; an interrupted rollback or squash may
 * have moved it aside (.old-<dir>) before its commit point, which repair
 * undoes. 0 when present (or restored), 1 for a problem. */
static int verify_layer_present(struct migrate *m, const struct layer_entry *e, bool repair)
{
        _cleanup_free_ char *old = NULL;
        struct stat st;

        if (fstatat(m->layers_fd, e->dir, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                return 0;
        if (asprintf(&old, OLD_PREFIX "%s", e->dir) < 0)
                return -ENOMEM;
        if (repair && fstatat(m->layers_fd, old, &st, AT_SYMLINK_NOFOLLOW) >= 0 &&
            renameat(m->layers_fd, old, m->layers_fd, e->dir) >= 0)
                return verify_say(m, true, e->id,
                                  "restored the layer dir '%s/%s/%s' moved aside by an "
                                  "interrupted run",
                                  m->data_dir, MIGRATE_LAYERS, e->dir);
        return verify_say(m, false, e->id,
                          "the layer dir '%s/%s/%s' of the active layer '%s' is missing",
                          m->data_dir, MIGRATE_LAYERS, e->dir, e->id);
}

/* An active layer is whole: fs/ and layer.json. 0, 1 for a problem, or
 * -ENOENT when the layer dir itself may be missing (nothing said). */
static int verify_layer_whole(struct migrate *m, const struct layer_entry *e)
{
        _cleanup_free_ char *fs = NULL, *lj = NULL;
        struct stat st;

        if (asprintf(&fs, "%s/fs", e->dir) < 0 || asprintf(&lj, "%s/layer.json", e->dir) < 0)
                return -ENOMEM;
        if (fstatat(m->layers_fd, fs, &st, 0) < 0) {
                if (errno == ENOENT && fstatat(m->layers_fd, e->dir, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -ENOENT;
        } else if (S_ISDIR(st.st_mode) && fstatat(m->layers_fd, lj, &st, 0) >= 0)
                return 0;
        return verify_say(m, false, e->id, "the layer '%s/%s/%s' lacks fs/ or layer.json",
                          m->data_dir, MIGRATE_LAYERS, e->dir);
}

/* A committed layer whose finish step (its pending state moved to
 * <data>/state, the markers removed) was interrupted: repair finishes it.
 * 0, 1 for a problem (without repair), or negative. */
static int verify_layer_finished(struct migrate *m, const struct layer_entry *e, bool repair,
                                 char **ret_error)
{
        _cleanup_free_ char *pending = NULL;
        struct stat st;
        bool marked, has_pending;
        int r;

        if (asprintf(&pending, "%s/" PENDING_STATE, e->dir) < 0)
                return -ENOMEM;
        marked = migrate_layer_uncommitted(m, e->dir);
        STRV_FOREACH (id, e->migrations)
                marked = marked || migrate_record_uncommitted(m, *id);
        has_pending = fstatat(m->layers_fd, pending, &st, AT_SYMLINK_NOFOLLOW) >= 0;
        if (!has_pending && !marked)
                return 0;
        if (!repair)
                return has_pending ? verify_say(m, false, e->id,
                                                "the state of '%s' is not yet in '%s/state'", e->id,
                                                m->data_dir)
                                   : 0;
        r = migrate_finish_layer(m, e, ret_error);
        if (r < 0)
                return r;
        /* only markers left: nothing worth saying */
        return has_pending
                   ? verify_say(m, true, e->id, "finished moving the state of '%s' to '%s/state'",
                                e->id, m->data_dir)
                   : 0;
}

/* Layer dirs nobody references: .tmp-* (an interrupted apply or squash)
 * and plain names (renamed but not committed); .old-* are kept aside for
 * gc. Repair removes them. Returns the number of problems or negative. */
static int verify_leftover_layers(struct migrate *m, bool repair, char **ret_error)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int problems = 0, r;

        r = open_store_dir(m, m->layers_fd, MIGRATE_LAYERS, &d, ret_error);
        if (r < 0)
                return r;
        while ((errno = 0, de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, "..") ||
                    startswith(de->d_name, OLD_PREFIX))
                        continue;
                if (layer_active(m, de->d_name) || !layer_leftover(m, de->d_name))
                        continue;
                if (!repair) {
                        r = verify_say(m, false, NULL,
                                       "'%s/%s/%s' is a leftover of an interrupted run",
                                       m->data_dir, MIGRATE_LAYERS, de->d_name);
                        if (r < 0)
                                return r;
                        problems += r;
                        continue;
                }
                r = rm_rf_at(m->layers_fd, de->d_name, RM_ROOT | RM_MISSING_OK);
                if (r < 0)
                        return set_error_message(ret_error, r,
                                                 "cannot remove the leftover '%s/%s/%s'",
                                                 m->data_dir, MIGRATE_LAYERS, de->d_name);
                r = verify_say(m, true, NULL,
                               "removed the leftover '%s/%s/%s' of an interrupted run", m->data_dir,
                               MIGRATE_LAYERS, de->d_name);
                if (r < 0)
                        return r;
        }
        return problems;
}

/* Migration records exist only for applied migrations: repair removes
 * the others. Returns the number of problems or negative. */
static int verify_leftover_records(struct migrate *m, bool repair, char **ret_error)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int problems = 0, r;

        r = open_store_dir(m, m->records_fd, MIGRATE_RECORDS, &d, ret_error);
        if (r < 0)
                return r;
        while ((errno = 0, de = readdir(d))) {
                if (!record_unapplied(m, d, de) || !record_leftover(m, de->d_name))
                        continue;
                if (!repair) {
                        r = verify_say(m, false, NULL,
                                       "'%s/%s/%s' records a migration that is not applied",
                                       m->data_dir, MIGRATE_RECORDS, de->d_name);
                        if (r < 0)
                                return r;
                        problems += r;
                        continue;
                }
                r = rm_rf_at(m->records_fd, de->d_name, RM_ROOT | RM_MISSING_OK);
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot remove '%s/%s/%s'",
                                                 m->data_dir, MIGRATE_RECORDS, de->d_name);
                r = verify_say(m, true, NULL, "removed '%s/%s/%s' (no applied migration)",
                               m->data_dir, MIGRATE_RECORDS, de->d_name);
                if (r < 0)
                        return r;
        }
        return problems;
}

int migrate_verify(struct migrate *m, bool repair, char **ret_error)
{
        int problems = 0, r;

        r = refuse_untracked(m, ret_error);
        if (r < 0)
                return r;
        if (repair) {
                r = migrate_audit_repair(m);
                if (r < 0)
                        return r;
        }

        /* Active layers: present, whole and finished, checked in that
         * order (a layer that fails one is not looked at further). */
        for (size_t i = 0; i < m->md.n_layers; i++) {
                const struct layer_entry *e = &m->md.layers[i];

                /* whole (fs/ there) says present in one stat */
                r = verify_layer_whole(m, e);
                if (r == -ENOENT) {
                        r = verify_layer_present(m, e, repair);
                        if (r == 0)
                                r = verify_layer_whole(m, e);
                        if (r == -ENOENT)
                                r = verify_say(m, false, e->id,
                                               "the layer '%s/%s/%s' lacks fs/ or layer.json",
                                               m->data_dir, MIGRATE_LAYERS, e->dir);
                }
                if (r == 0)
                        r = verify_layer_finished(m, e, repair, ret_error);
                if (r < 0)
                        return r;
                problems += r;
        }
        r = verify_leftover_layers(m, repair, ret_error);
        if (r < 0)
                return r;
        problems += r;
        r = verify_leftover_records(m, repair, ret_error);
        if (r < 0)
                return r;
        problems += r;
        if (repair && (fsync(m->layers_fd) < 0 || fsync(m->records_fd) < 0))
                return set_error_message(ret_error, -errno, "cannot sync '%s/system'", m->data_dir);
        return problems;
}

int migrate_gc(struct migrate *m, char **ret_error)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int n = 0, r;

        r = migrate_lock_machine(m, "gc", ret_error);
        if (r < 0)
                return r;

        r = open_store_dir(m, m->layers_fd, MIGRATE_LAYERS, &d, ret_error);
        if (r < 0)
                return r;
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

/* One committed layer dir as its layer.json describes it. */
struct found_layer {
        struct layer_entry e;
        char *parent;
        char **state_paths;
        bool used;
};

static void found_layers_free(struct found_layer *l, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                migrate_layer_entry_free(&l[i].e);
                free(l[i].parent);
                strv_free(l[i].state_paths);
        }
        free(l);
}

static int strv_from_array(const json_t *a, char ***ret)
{
        size_t i;
        json_t *v;

        json_array_foreach(a, i, v)
        {
                if (!json_is_string(v))
                        return -EBADMSG;
                if (strv_extend(ret, json_string_value(v)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int read_layer_json(struct migrate *m, const char *dir, struct found_layer *ret,
                           char **ret_error)
{
        _cleanup_free_ char *path = NULL;
        json_t *j = NULL, *v;
        json_error_t je;
        const char *id, *when;
        struct tm tm = {};
        int r;

        if (asprintf(&path, "%s/layer.json", dir) < 0)
                return -ENOMEM;
        r = json_load_at(m->layers_fd, path, &j, &je);
        if (r < 0)
                return set_error_message(ret_error, r == -ENOMEM ? r : -EUCLEAN,
                                         "cannot read '%s/%s/%s': %s", m->data_dir, MIGRATE_LAYERS,
                                         path, r == -EBADMSG ? je.text : strerror(-r));
        r = -EUCLEAN;
        if (json_get_string(j, "id", &id) < 0 || !json_is_array(json_object_get(j, "migrations")))
                goto bad;
        ret->e.id = strdup(id);
        ret->e.dir = strdup(dir);
        if (!ret->e.id || !ret->e.dir)
                goto oom;
        v = json_object_get(j, "parent");
        if (json_is_string(v) && !(ret->parent = strdup(json_string_value(v))))
                goto oom;
        if (strv_from_array(json_object_get(j, "migrations"), &ret->e.migrations) < 0 ||
            !ret->e.migrations)
                goto bad;
        if (json_is_array(json_object_get(j, "state_paths")) &&
            strv_from_array(json_object_get(j, "state_paths"), &ret->state_paths) < 0)
                goto bad;
        if (json_get_string(j, "created_at", &when) >= 0 &&
            strptime(when, "%Y-%m-%dT%H:%M:%SZ", &tm))
                ret->e.applied_at = (int64_t)timegm(&tm) * 1000000;
        v = json_object_get(j, "changes");
        for (int k = 0; k < _CHANGE_KIND_MAX; k++) {
                char key[2] = {change_kind_to_char((enum change_kind)k), 0};
                json_int_t c = json_integer_value(json_object_get(v, key));

                ret->e.changes[k] = c > 0 ? (unsigned)c : 0;
        }
        json_decref(j);
        return 0;
oom:
        json_decref(j);
        return -ENOMEM;
bad:
        json_decref(j);
        return set_error_message(ret_error, r, "'%s/%s/%s' lacks a valid id or migrations list",
                                 m->data_dir, MIGRATE_LAYERS, path);
}

int migrate_rebuild(struct migrate *m, bool dry_run, char **ret_error)
{
        _cleanup_(layer_metadata_done) struct layer_metadata md = {};
        _cleanup_strv_ char **names = NULL, **machine_paths = NULL;
        _cleanup_free_ char *error = NULL;
        struct found_layer *found = NULL;
        const char *parent = NULL;
        size_t n = 0;
        int r;

        r = dir_list_fd(m->layers_fd, &names);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot read '%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS);
        found = calloc(strv_length(names) + 1, sizeof(*found));
        if (!found)
                return -ENOMEM;
        STRV_FOREACH (s, names) {
                if ((*s)[0] == '.' || layer_leftover(m, *s))
                        continue;
                r = read_layer_json(m, *s, &found[n], ret_error);
                n++;
                if (r < 0)
                        goto out;
        }

        /* The chain from the layer without a parent, each next one the
         * only layer whose parent is the one before. */
        md.layers = calloc(n + 1, sizeof(struct layer_entry));
        if (!md.layers) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t k = 0; k < n; k++) {
                struct found_layer *next = NULL;

                for (size_t i = 0; i < n; i++) {
                        if (found[i].used || !streq_ptr(found[i].parent, parent))
                                continue;
                        if (next) {
                                r = set_error_message(
                                    ret_error, -EUCLEAN,
                                    "cannot rebuild: the layers '%s' and '%s' both have the "
                                    "parent '%s'; move the one that is not active out of '%s/%s'",
                                    next->e.dir, found[i].e.dir, parent ? parent : "(none)",
                                    m->data_dir, MIGRATE_LAYERS);
                                goto out;
                        }
                        next = &found[i];
                }
                if (!next) {
                        r = set_error_message(ret_error, -EUCLEAN,
                                              "cannot rebuild: no layer has the parent '%s', but "
                                              "%zu layer dirs are left unchained",
                                              parent ? parent : "(none)", n - k);
                        goto out;
                }
                next->used = true;
                r = state_path_merge(&md.state_paths, next->state_paths);
                if (r < 0)
                        goto out;
                md.layers[md.n_layers++] = next->e;
                next->e = (struct layer_entry){};
                parent = md.layers[md.n_layers - 1].id;
        }
        r = state_path_machine_list(m->data_fd, &machine_paths, &error);
        if (r < 0) {
                set_error_message(ret_error, r == -ENOMEM ? r : -EINVAL, "%s",
                                  error ? error : "cannot read the machine's state paths");
                goto out;
        }
        if (md.n_layers > 0)
                r = state_path_merge(&md.state_paths, machine_paths);
        STRV_FOREACH (s, m->md.rolled_back)
                if (r >= 0 && layer_metadata_find_migration(&md, *s) < 0)
                        r = strv_extend(&md.rolled_back, *s);
        if (r < 0)
                goto out;

        for (size_t i = 0; i < md.n_layers; i++) {
                _cleanup_free_ char *msg = NULL, *list = strv_join(md.layers[i].migrations, ", ");

                if (!list ||
                    asprintf(&msg, "%s layer %zu: '%s' (dir '%s', parent '%s', migrations %s)",
                             dry_run ? "would write" : "wrote", i + 1, md.layers[i].id,
                             md.layers[i].dir, i ? md.layers[i - 1].id : "(none)", list) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                migrate_emit(m, MIGRATE_EVENT_REPAIRED, md.layers[i].id, msg, 0, NULL);
        }
        r = (int)md.n_layers;
        if (!dry_run) {
                int c = migrate_commit(m, &md, ret_error);
                if (c < 0)
                        r = c;
        }
out:
        found_layers_free(found, n);
        return r;
}

struct content_report {
        struct migrate *m;
        const struct layer_entry *e;
};

static void content_problem(const char *path, const char *what, void *userdata)
{
        struct content_report *c = userdata;
        _cleanup_free_ char *msg = NULL;

        if (asprintf(&msg, "the layer '%s/%s/%s': '%s' %s since its commit", c->m->data_dir,
                     MIGRATE_LAYERS, c->e->dir, path, what) >= 0)
                migrate_emit(c->m, MIGRATE_EVENT_PROBLEM, c->e->id, msg, 0, NULL);
}

int migrate_verify_content(struct migrate *m, char **ret_error)
{
        int problems = 0;

        for (size_t i = 0; i < m->md.n_layers; i++) {
                const struct layer_entry *e = &m->md.layers[i];
                struct content_report c = {m, e};
                _cleanup_free_ char *fs = NULL, *man = NULL, *msg = NULL;
                int r;

                if (asprintf(&fs, "%s/fs", e->dir) < 0 ||
                    asprintf(&man, "%s/" MANIFEST_FILE, e->dir) < 0)
                        return -ENOMEM;
                r = manifest_verify_at(m->layers_fd, fs, m->layers_fd, man, content_problem, &c);
                if (r == -ENOENT) {
                        if (asprintf(&msg,
                                     "the layer '%s/%s/%s' has no manifest (committed before "
                                     "manifests): its content is not checked",
                                     m->data_dir, MIGRATE_LAYERS, e->dir) < 0)
                                return -ENOMEM;
                        migrate_emit(m, MIGRATE_EVENT_NOTICE, e->id, msg, 0, NULL);
                        continue;
                }
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot check the layer '%s/%s/%s'",
                                                 m->data_dir, MIGRATE_LAYERS, e->dir);
                problems += r;
        }
        return problems;
}
