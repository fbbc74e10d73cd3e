/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "fs.h"
#include "json.h"
#include "layerstore.h"
#include "log.h"

#define METADATA_VERSION 1

static const char *const change_keys[4] = {"A", "M", "D", "R"};

int layerstore_ensure_layout(int data_fd)
{
        static const char *const dirs[] = {
            "state/services", "system/layers", "system/migrations",
            "system/upper",   "system/work",   "system/lock",
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                r = mkdir_p_at(data_fd, dirs[i], 0755);
                if (r < 0)
                        return log_debug_errno(r, "cannot create '%s' in the data dir: %m",
                                               dirs[i]);
        }
        return 0;
}

static void layer_entry_done(struct layer_entry *e)
{
        free(e->id);
        free(e->dir);
        strv_free(e->migrations);
        *e = (struct layer_entry){};
}

void layer_metadata_done(struct layer_metadata *m)
{
        if (!m)
                return;
        for (size_t i = 0; i < m->n_layers; i++)
                layer_entry_done(&m->layers[i]);
        free(m->layers);
        strv_free(m->state_paths);
        strv_free(m->rolled_back);
        *m = (struct layer_metadata){};
}

/* A NULL-terminated copy of an array of strings; *ret stays NULL for an
 * absent key. */
static int strv_from_json(const json_t *a, bool abs_paths, char ***ret, const char **ret_why)
{
        _cleanup_strv_ char **l = NULL;
        size_t i;
        json_t *v;

        if (!a)
                return 0;
        if (!json_is_array(a)) {
                *ret_why = "is not an array";
                return -EBADMSG;
        }
        l = calloc(json_array_size(a) + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        json_array_foreach(a, i, v)
        {
                if (!json_is_string(v) || json_string_length(v) == 0) {
                        *ret_why = "holds something that is not a non-empty string";
                        return -EBADMSG;
                }
                if (abs_paths && json_string_value(v)[0] != '/') {
                        *ret_why = "holds a path that is not absolute";
                        return -EBADMSG;
                }
                l[i] = strdup(json_string_value(v));
                if (!l[i])
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* A layer dir name must stay inside system/layers. */
static bool dir_name_valid(const char *s)
{
        return *s && !strchr(s, '/') && !streq(s, ".") && !streq(s, "..");
}

static int parse_layer(const json_t *o, struct layer_entry *e, char *why, size_t why_size)
{
        const char *id, *dir, *w = NULL;
        json_t *changes;
        int r;

        if (!json_is_object(o)) {
                snprintf(why, why_size, "a layer entry is not an object");
                return -EBADMSG;
        }
        if (json_get_string(o, "id", &id) < 0 || !dir_name_valid(id)) {
                snprintf(why, why_size, "a layer has no valid \"id\"");
                return -EBADMSG;
        }
        r = json_get_string(o, "dir", &dir);
        if (r == -ENOENT)
                dir = id;
        else if (r < 0 || !dir_name_valid(dir)) {
                snprintf(why, why_size, "layer '%s' has an invalid \"dir\"", id);
                return -EBADMSG;
        }
        e->id = strdup(id);
        e->dir = strdup(dir);
        if (!e->id || !e->dir)
                return -ENOMEM;

        r = strv_from_json(json_object_get(o, "migrations"), false, &e->migrations, &w);
        if (r == -EBADMSG) {
                snprintf(why, why_size, "\"migrations\" of layer '%s' %s", id, w);
                return r;
        }
        if (r < 0)
                return r;
        if (!e->migrations) {
                /* A layer of one migration may leave out the list. */
                e->migrations = calloc(2, sizeof(char *));
                if (!e->migrations || !(e->migrations[0] = strdup(id)))
                        return -ENOMEM;
        }

        r = json_get_int(o, "applied_at", &e->applied_at);
        if (r == -EBADMSG) {
                snprintf(why, why_size, "\"applied_at\" of layer '%s' is not an integer", id);
                return r;
        }
        r = json_get_int(o, "duration_ms", &e->duration_ms);
        if (r == -EBADMSG) {
                snprintf(why, why_size, "\"duration_ms\" of layer '%s' is not an integer", id);
                return r;
        }
        changes = json_object_get(o, "changes");
        if (changes) {
                if (!json_is_object(changes)) {
                        snprintf(why, why_size, "\"changes\" of layer '%s' is not an object", id);
                        return -EBADMSG;
                }
                for (size_t k = 0; k < 4; k++) {
                        int64_t n = 0;
                        r = json_get_int(changes, change_keys[k], &n);
                        if (r == -EBADMSG || n < 0 || n > UINT32_MAX) {
                                snprintf(why, why_size,
                                         "\"changes\".\"%s\" of layer '%s' is not a count",
                                         change_keys[k], id);
                                return -EBADMSG;
                        }
                        e->changes[k] = (unsigned)n;
                }
        }
        return 0;
}

static int metadata_parse(const json_t *j, struct layer_metadata *m, char *why, size_t why_size)
{
        const char *w = NULL;
        json_t *layers, *v;
        int64_t version;
        size_t i;
        int r;

        if (!json_is_object(j)) {
                snprintf(why, why_size, "the document is not an object");
                return -EBADMSG;
        }
        if (json_get_int(j, "version", &version) < 0 || version != METADATA_VERSION) {
                snprintf(why, why_size, "\"version\" is missing or not %d", METADATA_VERSION);
                return -EBADMSG;
        }
        layers = json_object_get(j, "layers");
        if (layers && !json_is_array(layers)) {
                snprintf(why, why_size, "\"layers\" is not an array");
                return -EBADMSG;
        }
        if (layers && json_array_size(layers) > 0) {
                m->layers = calloc(json_array_size(layers), sizeof(struct layer_entry));
                if (!m->layers)
                        return -ENOMEM;
                json_array_foreach(layers, i, v)
                {
                        r = parse_layer(v, &m->layers[i], why, why_size);
                        m->n_layers = i + 1;
                        if (r < 0)
                                return r;
                        for (size_t k = 0; k < i; k++)
                                if (streq(m->layers[k].dir, m->layers[i].dir)) {
                                        snprintf(why, why_size, "layer dir '%s' is listed twice",
                                                 m->layers[i].dir);
                                        return -EBADMSG;
                                }
                }
        }
        r = strv_from_json(json_object_get(j, "state_paths"), true, &m->state_paths, &w);
        if (r == -EBADMSG)
                snprintf(why, why_size, "\"state_paths\" %s", w);
        if (r < 0)
                return r;
        r = strv_from_json(json_object_get(j, "rolled_back"), false, &m->rolled_back, &w);
        if (r == -EBADMSG)
                snprintf(why, why_size, "\"rolled_back\" %s", w);
        return r;
}

int layer_metadata_load(int data_fd, struct layer_metadata *ret, char **ret_error)
{
        struct layer_metadata m = {};
        json_error_t e;
        json_t *j = NULL;
        char why[512] = "";
        int r;

        r = json_load_at(data_fd, LAYERSTORE_METADATA, &j, &e);
        if (r == -ENOENT) {
                *ret = m; /* no migration applied yet */
                return 0;
        }
        if (r < 0) {
                if (ret_error)
                        *ret_error = strdup(json_error_string(&e));
                return r;
        }

        r = metadata_parse(j, &m, why, sizeof(why));
        json_decref(j);
        if (r < 0) {
                layer_metadata_done(&m);
                if (r == -EBADMSG) {
                        log_debug("'%s': %s", LAYERSTORE_METADATA, why);
                        if (ret_error &&
                            asprintf(ret_error, "'%s': %s", LAYERSTORE_METADATA, why) < 0)
                                *ret_error = NULL;
                }
                return r;
        }
        *ret = m;
        return 0;
}

static json_t *strv_to_json(char *const *l)
{
        json_t *a = json_array();

        for (; a && l && *l; l++)
                if (json_array_append_new(a, json_string(*l)) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

int layer_metadata_save(int data_fd, const struct layer_metadata *m)
{
        json_t *j = NULL, *layers;
        int r = -ENOMEM;

        layers = json_array();
        if (!layers)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_layers; i++) {
                const struct layer_entry *e = &m->layers[i];
                json_t *o =
                    json_pack("{s:s,s:s,s:o,s:I,s:I,s:{s:i,s:i,s:i,s:i}}", "id", e->id, "dir",
                              e->dir ? e->dir : e->id, "migrations", strv_to_json(e->migrations),
                              "applied_at", (json_int_t)e->applied_at, "duration_ms",
                              (json_int_t)e->duration_ms, "changes", "A", e->changes[0], "M",
                              e->changes[1], "D", e->changes[2], "R", e->changes[3]);
                if (!o || json_array_append_new(layers, o) < 0)
                        goto out;
        }
        j = json_pack("{s:i,s:o,s:o,s:o}", "version", METADATA_VERSION, "layers", layers,
                      "state_paths", strv_to_json(m->state_paths), "rolled_back",
                      strv_to_json(m->rolled_back));
        layers = NULL; /* owned by j, or freed by json_pack on failure */
        if (!j)
                goto out;
        r = json_save_at(data_fd, LAYERSTORE_METADATA, j, 0644);
        if (r < 0)
                log_debug_errno(r, "cannot save '%s': %m", LAYERSTORE_METADATA);
out:
        json_decref(layers);
        json_decref(j);
        return r;
}

int layer_metadata_lowerdirs(const struct layer_metadata *m, const char *data_dir, const char *base,
                             char ***ret)
{
        _cleanup_strv_ char **l = NULL;
        size_t n = 0;

        l = calloc(m->n_layers + 2, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = m->n_layers; i > 0; i--)
                if (asprintf(&l[n++], "%s/system/layers/%s/fs", data_dir, m->layers[i - 1].dir) <
                    0) {
                        l[--n] = NULL;
                        return -ENOMEM;
                }
        if (base && !(l[n++] = strdup(base)))
                return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

/* Whether layer i holds id. */
static bool layer_holds(const struct layer_metadata *m, size_t i, const char *id)
{
        for (char **s = m->layers[i].migrations; s && *s; s++)
                if (streq(*s, id))
                        return true;
        return false;
}

int layer_metadata_find_migration(const struct layer_metadata *m, const char *id)
{
        size_t lo = 0, hi = m->n_layers;

        /* Layers are applied in id order (unless "up --out-of-order"), the
         * migrations of a squashed one too: a binary search on each
         * layer's first migration finds id in the usual stack, and the
         * plain scan below in any other. */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const char *first = m->layers[mid].migrations ? m->layers[mid].migrations[0] : NULL;
                int c;

                if (!first)
                        break;
                c = strcmp(first, id);
                if (c <= 0 && layer_holds(m, mid, id))
                        return (int)mid;
                if (c <= 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (size_t i = 0; i < m->n_layers; i++)
                for (char **s = m->layers[i].migrations; s && *s; s++)
                        if (streq(*s, id))
                                return (int)i;
        return -ENOENT;
}
