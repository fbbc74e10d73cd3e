/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* adopt: layers made elsewhere (an OCI image) committed like up's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "baseid.h"
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

int migrate_layer_ids(struct migrate *m, char ***ret)
{
        char **l = calloc(m->md.n_layers + 1, sizeof(char *));

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < m->md.n_layers; i++)
                l[i] = m->md.layers[i].id;
        *ret = l;
        return 0;
}

/* What a staged layer needs until its commit. */
struct staged {
        char *tmp; /* .tmp-<id> in the layers dir */
        char *dir; /* its name once renamed */
        struct change_list changes;
};

static void staged_done(struct staged *s, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(s[i].tmp);
                free(s[i].dir);
                change_list_done(&s[i].changes);
        }
        free(s);
}

/* Before anything is written: the layers continue this stack, add no
 * migration twice, and were built over this data dir's base. */
static int adopt_check(struct migrate *m, const struct migrate_adopt *a, char **ret_error)
{
        const char *top = m->md.n_layers ? m->md.layers[m->md.n_layers - 1].id : NULL;

        if (m->problems > 0)
                return set_error_message(ret_error, -EUCLEAN,
                                         "the layer stack of '%s' is broken (%u problem%s that "
                                         "verify cannot repair): nothing was added",
                                         m->data_dir, m->problems, m->problems == 1 ? "" : "s");
        if (!streq_ptr(top, a->parent))
                return set_error_message(ret_error, -EUCLEAN,
                                         "the first layer to add sits on '%s', but the top of '%s' "
                                         "is '%s'",
                                         a->parent ? a->parent : "the base", m->data_dir,
                                         top ? top : "the base");
        for (size_t i = 0; i < a->n_layers; i++) {
                if (!a->layers[i].migrations || !a->layers[i].migrations[0])
                        return set_error_message(ret_error, -EINVAL,
                                                 "the layer '%s' lists no migration",
                                                 a->layers[i].id);
                STRV_FOREACH (s, a->layers[i].migrations)
                        if (!migration_id_valid(*s) || migrate_is_applied(&m->md, *s))
                                return set_error_message(
                                    ret_error, -EUCLEAN,
                                    "the layer '%s' holds the migration '%s', which %s",
                                    a->layers[i].id, *s,
                                    migration_id_valid(*s) ? "the data dir has applied already"
                                                           : "is not a migration id");
        }
        if (a->base_json) {
                _cleanup_(base_identity_done) struct base_identity rec = {};
                _cleanup_free_ char *digest = NULL;
                json_t *j = NULL, *d;
                json_error_t je;
                int r;

                r = base_identity_load(m->data_fd, &rec);
                if (r == -ENOENT)
                        return 0;
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot read '%s/%s'", m->data_dir,
                                                 BASE_ID_FILE);
                r = json_load_buffer("base", a->base_json, strlen(a->base_json), &j, &je);
                if (r < 0)
                        return set_error_message(ret_error, -EINVAL,
                                                 "the image's base is not JSON");
                d = json_object_get(j, "digest");
                r = json_is_string(d) && streq(json_string_value(d), rec.digest);
                if (!r && !m->o.force) {
                        r = set_error_message(ret_error, -EMEDIUMTYPE,
                                              "the layers were built over the base '%s', the data "
                                              "dir '%s' over '%s'",
                                              json_string_value(json_object_get(j, "id")),
                                              m->data_dir, rec.id);
                        json_decref(j);
                        return r;
                }
                json_decref(j);
        }
        return 0;
}

static int write_layer_json(int tfd, const json_t *j)
{
        _cleanup_free_ char *dump = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        _cleanup_free_ char *text = NULL;

        if (!dump || asprintf(&text, "%s\n", dump) < 0)
                return -ENOMEM;
        return migrate_write_plain_at(tfd, "layer.json", text, strlen(text), 0644);
}

/* The records of the layer's migrations, in records/<id>/ of the stage. */
static int stage_records(struct migrate *m, const struct migrate_adopt *a, size_t i, int tfd,
                         const char *changes)
{
        char when[64];
        _cleanup_free_ char *applied = NULL;
        int r;

        migrate_format_time(clock_now(m->clock), when);
        if (asprintf(&applied, "%s\n", when) < 0)
                return -ENOMEM;
        if (mkdirat(tfd, "records", 0755) < 0)
                return -errno;
        STRV_FOREACH (s, a->layers[i].migrations) {
                _cleanup_close_ int rfd = -1;
                _cleanup_free_ char *p = NULL, *origin = NULL;

                if (asprintf(&p, "records/%s", *s) < 0 ||
                    asprintf(&origin, "%s\n", a->origin ? a->origin : "an OCI image") < 0)
                        return -ENOMEM;
                if (mkdirat(tfd, p, 0755) < 0)
                        return -errno;
                rfd = migrate_open_dir_at(tfd, p);
                if (rfd < 0)
                        return rfd;
                r = migrate_write_uncommitted(rfd, ".");
                if (r >= 0)
                        r = migrate_write_plain_at(rfd, "applied", applied, strlen(applied), 0644);
                if (r >= 0)
                        r = migrate_write_plain_at(rfd, "changes.list", changes, strlen(changes),
                                                   0644);
                if (r >= 0)
                        r = migrate_write_plain_at(rfd, "origin", origin, strlen(origin), 0644);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The change list of a layer that came without one (a plain tar), from
 * its files over the active stack. */
static int adopt_capture(struct migrate *m, int tfd, struct change_list *ret, char **ret_error)
{
        _cleanup_(migrate_lowers_done) struct migrate_lowers lowers = {};
        int r;

        r = migrate_lowers_open(m, m->md.n_layers, &lowers, ret_error);
        if (r < 0)
                return r;
        r = changes_capture_at(tfd, "fs", lowers.fds, lowers.n, NULL, ret);
        if (r < 0)
                return set_error_message(ret_error, r,
                                         "cannot compute the change list of the layer");
        return 0;
}

/* Stages layer i in .tmp-<id>: filled, described, manifest, records. */
static int adopt_stage(struct migrate *m, const struct migrate_adopt *a, size_t i, struct staged *s,
                       char **ret_error)
{
        const struct migrate_adopt_layer *l = &a->layers[i];
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int tfd = -1;
        unsigned line = 0;
        int r;

        if (asprintf(&s->tmp, TMP_PREFIX "%s", l->id) < 0)
                return -ENOMEM;
        r = rm_rf_at(m->layers_fd, s->tmp, RM_ROOT | RM_MISSING_OK);
        if (r >= 0 && mkdirat(m->layers_fd, s->tmp, 0755) < 0)
                r = -errno;
        if (r < 0)
                return set_error_message(ret_error, r, "cannot create '%s/%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS, s->tmp);
        tfd = migrate_open_dir_at(m->layers_fd, s->tmp);
        if (tfd < 0)
                return set_error_message(ret_error, tfd, "cannot open '%s/%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS, s->tmp);
        r = migrate_write_uncommitted(tfd, ".");
        if (r >= 0 && mkdirat(tfd, "fs", 0755) < 0)
                r = -errno;
        if (r < 0)
                return set_error_message(ret_error, r, "cannot create '%s/%s/%s/fs'", m->data_dir,
                                         MIGRATE_LAYERS, s->tmp);
        r = a->fill(i, tfd, "fs", a->userdata, ret_error);
        if (r < 0)
                return r;
        if (!l->changes && !l->layer_json)
                r = adopt_capture(m, tfd, &s->changes, ret_error);
        else
                r = changes_parse(l->changes ? l->changes : "", &s->changes, &line);
        if (r < 0 && !l->changes && !l->layer_json)
                return r;
        if (r < 0)
                return set_error_message(
                    ret_error, r, "the change list of '%s' is malformed (line %u)", l->id, line);
        if (l->layer_json) {
                r = changes_format(&s->changes, &text);
                if (r >= 0)
                        r = migrate_write_plain_at(tfd, "changes.list", text, strlen(text), 0644);
                if (r >= 0)
                        r = write_layer_json(tfd, l->layer_json);
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot describe the layer '%s'",
                                                 l->id);
        } else {
                const char *parent = i ? a->layers[i - 1].id : a->parent;

                r = migrate_write_layer_files(m, tfd, l->id, parent, l->migrations, NULL,
                                              &s->changes, NULL, NULL, ret_error);
                if (r < 0)
                        return r;
                free(text);
                text = NULL;
                r = changes_format(&s->changes, &text);
                if (r < 0)
                        return r;
        }
        if (!text && (r = changes_format(&s->changes, &text)) < 0)
                return r;
        r = manifest_write_at(tfd, "fs", tfd, MANIFEST_FILE);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write the manifest of '%s'", l->id);
        r = stage_records(m, a, i, tfd, text);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write the records of '%s'", l->id);
        if (syncfs(tfd) < 0)
                return set_error_message(ret_error, -errno, "cannot sync '%s/%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS, s->tmp);
        return 0;
}

/* Records to system/migrations/<id>, the stage to its layer dir name;
 * both still marked uncommitted. */
static int adopt_rename(struct migrate *m, const struct migrate_adopt *a, size_t i,
                        struct staged *s, char **ret_error)
{
        _cleanup_close_ int tfd = -1;
        int r;

        tfd = migrate_open_dir_at(m->layers_fd, s->tmp);
        if (tfd < 0)
                return set_error_message(ret_error, tfd, "cannot open '%s/%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS, s->tmp);
        STRV_FOREACH (id, a->layers[i].migrations) {
                _cleanup_free_ char *p = NULL;

                if (asprintf(&p, "records/%s", *id) < 0)
                        return -ENOMEM;
                r = rm_rf_at(m->records_fd, *id, RM_ROOT | RM_MISSING_OK);
                if (r >= 0 && renameat(tfd, p, m->records_fd, *id) < 0)
                        r = -errno;
                if (r < 0)
                        return set_error_message(ret_error, r,
                                                 "cannot move the record of '%s' to "
                                                 "'%s/%s/%s'",
                                                 *id, m->data_dir, MIGRATE_RECORDS, *id);
        }
        (void)unlinkat(tfd, "records", AT_REMOVEDIR);
        r = migrate_layer_dir_name(m, a->layers[i].id, &s->dir);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot name the layer of '%s'",
                                         a->layers[i].id);
        if (renameat(m->layers_fd, s->tmp, m->layers_fd, s->dir) < 0)
                return set_error_message(ret_error, -errno, "cannot rename '%s/%s/%s' to '%s'",
                                         m->data_dir, MIGRATE_LAYERS, s->tmp, s->dir);
        return 0;
}

/* The commit point: metadata gains every layer at once. */
static int adopt_commit(struct migrate *m, const struct migrate_adopt *a, struct staged *s,
                        char **ret_error)
{
        _cleanup_(layer_metadata_done) struct layer_metadata md = {};
        struct layer_entry *n;
        int r;

        r = migrate_metadata_copy(&m->md, &md);
        if (r < 0)
                return r;
        n = realloc(md.layers, (md.n_layers + a->n_layers) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        md.layers = n;
        for (size_t i = 0; i < a->n_layers; i++) {
                struct layer_entry e = {.applied_at = clock_now(m->clock)};

                e.id = strdup(a->layers[i].id);
                e.dir = TAKE_PTR(s[i].dir);
                if (!e.id || strv_copy(a->layers[i].migrations, &e.migrations) < 0) {
                        migrate_layer_entry_free(&e);
                        return -ENOMEM;
                }
                memcpy(e.changes, s[i].changes.counts, sizeof(e.changes));
                md.layers[md.n_layers++] = e;
                STRV_FOREACH (id, a->layers[i].migrations)
                        migrate_strv_remove(md.rolled_back, *id);
        }
        r = state_path_merge(&md.state_paths, a->state_paths);
        if (r < 0)
                return r;
        return migrate_commit(m, &md, ret_error);
}

/* The state dirs of the state paths that <data>/state lacks, created
 * empty (state is the machine's own: an image carries none), so that the
 * machine can bind them. Adds what it created to *created. */
static int adopt_state_dirs(struct migrate *m, const struct migrate_adopt *a, char ***created,
                            char **ret_error)
{
        _cleanup_strv_ char **all = NULL;
        int r;

        r = strv_copy(m->md.state_paths, &all);
        if (r >= 0)
                r = state_path_merge(&all, a->state_paths);
        if (r < 0)
                return r;
        STRV_FOREACH (p, all) {
                _cleanup_free_ char *sp = NULL;
                struct stat st;

                if (asprintf(&sp, "state%s", *p) < 0)
                        return -ENOMEM;
                if (fstatat(m->data_fd, sp, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                        continue;
                r = mkdir_p_at(m->data_fd, sp, 0755);
                if (r >= 0)
                        r = strv_extend(created, sp);
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot create '%s/%s'", m->data_dir,
                                                 sp);
        }
        return 0;
}

int migrate_adopt(struct migrate *m, const struct migrate_adopt *a, char **ret_error)
{
        _cleanup_strv_ char **created = NULL;
        struct staged *s;
        size_t n_staged = 0, first;
        int r;

        r = adopt_check(m, a, ret_error);
        if (r < 0)
                return r;
        if (a->n_layers == 0)
                return 0;
        s = calloc(a->n_layers, sizeof(*s));
        if (!s)
                return -ENOMEM;
        for (; n_staged < a->n_layers; n_staged++) {
                r = adopt_stage(m, a, n_staged, &s[n_staged], ret_error);
                if (r < 0) {
                        n_staged++;
                        goto fail;
                }
        }
        r = adopt_state_dirs(m, a, &created, ret_error);
        if (r < 0)
                goto fail;
        migrate_test_kill_point("adopt-staged");
        for (size_t i = 0; i < a->n_layers; i++) {
                r = adopt_rename(m, a, i, &s[i], ret_error);
                if (r < 0)
                        goto fail;
        }
        if (fsync(m->layers_fd) < 0 || fsync(m->records_fd) < 0) {
                r = set_error_message(ret_error, -errno, "cannot sync '%s/system'", m->data_dir);
                goto fail;
        }
        migrate_test_kill_point("adopt-renamed");
        first = m->md.n_layers;
        r = adopt_commit(m, a, s, ret_error);
        if (r < 0)
                goto fail;
        migrate_test_kill_point("adopt-committed");
        staged_done(s, a->n_layers);
        if (a->base_json) {
                struct stat st;

                if (fstatat(m->data_fd, BASE_ID_FILE, &st, 0) < 0 && errno == ENOENT) {
                        r = write_file_atomic_at(m->data_fd, BASE_ID_FILE, a->base_json,
                                                 strlen(a->base_json), 0644);
                        if (r < 0)
                                return set_error_message(ret_error, r, "cannot write '%s/%s'",
                                                         m->data_dir, BASE_ID_FILE);
                }
        }
        for (size_t i = first; i < m->md.n_layers; i++) {
                r = migrate_finish_layer(m, &m->md.layers[i], ret_error);
                if (r < 0)
                        return r;
        }
        return (int)a->n_layers;

fail:
        /* Nothing is committed: what was staged or renamed goes (verify
         * would remove it too: it carries the uncommitted markers). */
        for (size_t i = 0; i < n_staged; i++) {
                if (s[i].tmp)
                        (void)rm_rf_at(m->layers_fd, s[i].tmp, RM_ROOT | RM_MISSING_OK);
                if (s[i].dir && migrate_layer_uncommitted(m, s[i].dir))
                        (void)rm_rf_at(m->layers_fd, s[i].dir, RM_ROOT | RM_MISSING_OK);
                STRV_FOREACH (id, a->layers[i].migrations)
                        if (migrate_record_uncommitted(m, *id))
                                (void)rm_rf_at(m->records_fd, *id, RM_ROOT | RM_MISSING_OK);
        }
        for (size_t n = strv_length(created); n > 0; n--)
                (void)unlinkat(m->data_fd, created[n - 1], AT_REMOVEDIR);
        staged_done(s, a->n_layers);
        return r;
}
