/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* status, diff and show: read-only views of the stack. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "changes.h"
#include "cleanup.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "sha256.h"
#include "migrate-internal.h"
#include "migrate.h"
#include "scratch.h"
#include "strv.h"

/* Whether the script of an applied migration changed since it ran: its
 * sha256 in the migrations dir against the record's copy. JSON null when
 * either is missing (not in the migrations dir any more, no record). */
static json_t *script_changed(struct migrate *m, const struct migration_set *set, const char *id)
{
        _cleanup_free_ char *rec = NULL, *cur = NULL;
        char a[SHA256_HEX_SIZE], b[SHA256_HEX_SIZE];
        int k = migration_set_find(set, id);

        if (k < 0 || asprintf(&rec, "%s/" MIGRATION_SCRIPT, id) < 0 ||
            asprintf(&cur, "%s/" MIGRATION_SCRIPT, set->items[k].path) < 0)
                return json_null();
        if (sha256_file_hex_at(m->records_fd, rec, a) < 0 ||
            sha256_file_hex_at(AT_FDCWD, cur, b) < 0)
                return json_null();
        return json_boolean(!streq(a, b));
}

/* "scratch_upper": {"path", "paths"}: how many paths the machine's
 * scratch upper holds, the runtime edits that hide every layer's. */
static int status_scratch(struct migrate *m, json_t *j)
{
        _cleanup_free_ char *path = NULL;
        json_t *s;
        uint64_t n;
        int r;

        /* no data dir yet (a read-only status opens none): nothing */
        n = 0;
        r = m->data_fd < 0 ? 0 : scratch_count_at(m->data_fd, SCRATCH_UPPER, &n);
        if (r < 0)
                return r;
        if (asprintf(&path, "%s/%s", m->data_dir, SCRATCH_UPPER) < 0)
                return -ENOMEM;
        s = json_object();
        if (!s || json_object_set_new(j, "scratch_upper", s) < 0)
                return -ENOMEM;
        json_object_set_new(s, "path", json_string(path));
        json_object_set_new(s, "paths", json_integer((json_int_t)n));
        return 0;
}

int migrate_status(struct migrate *m, json_t **ret, char **ret_error)
{
        _cleanup_(migration_set_done) struct migration_set set = {};
        json_t *j, *applied, *pending, *rolled;
        int r;

        r = migrate_load_migrations(m, &set, ret_error);
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

                migrate_format_time(e->applied_at, when);
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
                        json_object_set_new(a, "script_changed", script_changed(m, &set, *s));
                        json_array_append_new(applied, a);
                }
        }
        for (size_t i = 0; i < set.n; i++) {
                json_t *p;

                if (migrate_is_applied(&m->md, set.items[i].id))
                        continue;
                p = json_object();
                json_object_set_new(p, "id", json_string(set.items[i].id));
                json_array_append_new(pending, p);
        }
        STRV_FOREACH (s, m->md.rolled_back) {
                json_t *p;

                if (migrate_is_applied(&m->md, *s))
                        continue;
                p = json_object();
                json_object_set_new(p, "id", json_string(*s));
                json_array_append_new(rolled, p);
        }
        r = status_scratch(m, j);
        if (r < 0) {
                json_decref(j);
                return set_error_message(ret_error, r, "cannot read '%s/%s'", m->data_dir,
                                         SCRATCH_UPPER);
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

/* The status entry of id in one of status's lists, or NULL. */
static json_t *status_find(json_t *status, const char *list, const char *id)
{
        json_t *v;
        size_t i;

        json_array_foreach(json_object_get(status, list), i, v)
        {
                const char *vid = json_string_value(json_object_get(v, "id"));

                if (vid && streq(vid, id))
                        return v;
        }
        return NULL;
}

int migrate_show(struct migrate *m, const char *id, json_t **ret, char **ret_error)
{
        static const char *const lists[] = {"applied", "pending", "rolled_back"};
        static const char *const states[] = {"applied", "pending", "rolled back"};
        _cleanup_free_ char *log = NULL, *log_path = NULL, *record = NULL;
        json_t *status = NULL, *e = NULL, *j;
        const char *state = NULL;
        int r;

        r = migrate_status(m, &status, ret_error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(lists) && !e; i++) {
                e = status_find(status, lists[i], id);
                state = states[i];
        }
        if (!e) {
                json_decref(status);
                return set_error_message(ret_error, -ENOENT,
                                         "there is no migration '%s' (applied, pending or rolled "
                                         "back) in '%s' or '%s'",
                                         id, m->migrations_dir, m->data_dir);
        }
        j = json_deep_copy(e);
        json_decref(status);
        if (!j)
                return -ENOMEM;
        json_object_set_new(j, "status", json_string(state));
        if (json_is_string(json_object_get(j, "layer")) &&
            !streq(json_string_value(json_object_get(j, "layer")), id))
                json_object_set(j, "squashed_into", json_object_get(j, "layer"));

        /* What ran and its output: the record of an applied migration. */
        if (streq(state, "applied") && m->records_fd >= 0) {
                if (asprintf(&record, "%s/%s/%s", m->data_dir, MIGRATE_RECORDS, id) < 0 ||
                    asprintf(&log_path, "%s/log", id) < 0) {
                        json_decref(j);
                        return -ENOMEM;
                }
                json_object_set_new(j, "record", json_string(record));
                r = read_file_at(m->records_fd, log_path, SCRIPT_MAX, &log, NULL);
                if (r < 0 && r != -ENOENT) {
                        json_decref(j);
                        return set_error_message(ret_error, r, "cannot read '%s/log': %m", record);
                }
        }
        json_object_set_new(j, "log", log ? json_string(log) : json_null());
        *ret = j;
        return 0;
}
