/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "macro.h"
#include "ociimage.h"
#include "ocimap.h"
#include "strv.h"

static void layer_done(struct oci_layer *l)
{
        free(l->id);
        strv_free(l->migrations);
        free(l->digest);
        free(l->diff_id);
        free(l->media_type);
        json_decref(l->layer_json);
        free(l->changes);
}

void oci_image_done(struct oci_image *img)
{
        for (size_t i = 0; i < img->n_layers; i++)
                layer_done(&img->layers[i]);
        free(img->layers);
        free(img->parent);
        strv_free(img->state_paths);
        json_decref(img->base);
        strv_free(img->entrypoint);
        strv_free(img->cmd);
        strv_free(img->env);
        *img = (struct oci_image){};
}

static int dup_or_null(const char *s, char **ret)
{
        *ret = NULL;
        if (s && !(*ret = strdup(s)))
                return -ENOMEM;
        return 0;
}

int oci_image_add_layer(struct oci_image *img, const struct oci_layer *l)
{
        struct oci_layer *n, c = {.size = l->size};

        n = realloc(img->layers, (img->n_layers + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        img->layers = n;
        if (dup_or_null(l->id, &c.id) < 0 || dup_or_null(l->digest, &c.digest) < 0 ||
            dup_or_null(l->diff_id ? l->diff_id : l->digest, &c.diff_id) < 0 ||
            dup_or_null(l->media_type ? l->media_type : OCI_MEDIA_LAYER, &c.media_type) < 0 ||
            dup_or_null(l->changes, &c.changes) < 0 ||
            (l->migrations && strv_copy(l->migrations, &c.migrations) < 0)) {
                layer_done(&c);
                return -ENOMEM;
        }
        c.layer_json = json_incref(l->layer_json);
        img->layers[img->n_layers++] = c;
        return 0;
}

static json_t *strv_to_json(char *const *l)
{
        json_t *a = json_array();

        STRV_FOREACH (s, l)
                json_array_append_new(a, json_string(*s));
        return a;
}

int oci_config_build(const struct oci_image *img, json_t **ret)
{
        json_t *j, *c, *rootfs, *ids, *st, *layers;

        j = json_object();
        if (!j)
                return -ENOMEM;
#if defined(__x86_64__)
        json_object_set_new(j, "architecture", json_string("amd64"));
#elif defined(__aarch64__)
        json_object_set_new(j, "architecture", json_string("arm64"));
#else
        json_object_set_new(j, "architecture", json_string("unknown"));
#endif
        json_object_set_new(j, "os", json_string("linux"));
        c = json_object();
        if (img->entrypoint)
                json_object_set_new(c, "Entrypoint", strv_to_json(img->entrypoint));
        if (img->cmd)
                json_object_set_new(c, "Cmd", strv_to_json(img->cmd));
        if (img->env)
                json_object_set_new(c, "Env", strv_to_json(img->env));
        json_object_set_new(j, "config", c);
        rootfs = json_object();
        ids = json_array();
        for (size_t i = 0; i < img->n_layers; i++)
                json_array_append_new(ids, json_string(img->layers[i].diff_id));
        json_object_set_new(rootfs, "type", json_string("layers"));
        json_object_set_new(rootfs, "diff_ids", ids);
        json_object_set_new(j, "rootfs", rootfs);

        st = json_object();
        json_object_set_new(st, "version", json_integer(OCI_STRATA_VERSION));
        json_object_set_new(st, "parent", img->parent ? json_string(img->parent) : json_null());
        json_object_set_new(st, "base_layers", json_integer((json_int_t)img->n_base_layers));
        layers = json_array();
        for (size_t i = img->n_base_layers; i < img->n_layers; i++) {
                const struct oci_layer *l = &img->layers[i];
                json_t *o = json_object();

                json_object_set_new(o, "id", json_string(l->id));
                json_object_set_new(o, "migrations", strv_to_json(l->migrations));
                json_object_set(o, "layer_json", l->layer_json ? l->layer_json : json_null());
                json_object_set_new(o, "changes",
                                    l->changes ? json_string(l->changes) : json_null());
                json_array_append_new(layers, o);
        }
        json_object_set_new(st, "layers", layers);
        json_object_set_new(st, "state_paths", strv_to_json(img->state_paths));
        json_object_set(st, "base", img->base ? img->base : json_null());
        json_object_set_new(j, "strata", st);
        *ret = j;
        return 0;
}

static json_t *descriptor(const char *media_type, const char *digest, uint64_t size)
{
        json_t *d = json_object();

        json_object_set_new(d, "mediaType", json_string(media_type));
        json_object_set_new(d, "digest", json_string(digest));
        json_object_set_new(d, "size", json_integer((json_int_t)size));
        return d;
}

int oci_manifest_build(const struct oci_image *img, const char *config_digest, uint64_t config_size,
                       json_t **ret)
{
        json_t *j, *layers;

        j = json_object();
        if (!j)
                return -ENOMEM;
        json_object_set_new(j, "schemaVersion", json_integer(2));
        json_object_set_new(j, "mediaType", json_string(OCI_MEDIA_MANIFEST));
        json_object_set_new(j, "config", descriptor(OCI_MEDIA_CONFIG, config_digest, config_size));
        layers = json_array();
        for (size_t i = 0; i < img->n_layers; i++) {
                const struct oci_layer *l = &img->layers[i];
                json_t *d = descriptor(l->media_type, l->digest, l->size);

                if (l->id) {
                        _cleanup_free_ char *m = strv_join(l->migrations, ",");
                        json_t *a = json_object();

                        if (!m) {
                                json_decref(d);
                                json_decref(layers);
                                json_decref(j);
                                return -ENOMEM;
                        }
                        json_object_set_new(a, OCI_ANNOTATION_LAYER_ID, json_string(l->id));
                        json_object_set_new(a, OCI_ANNOTATION_MIGRATIONS, json_string(m));
                        if (i == img->n_base_layers && img->parent)
                                json_object_set_new(a, OCI_ANNOTATION_PARENT,
                                                    json_string(img->parent));
                        json_object_set_new(d, "annotations", a);
                }
                json_array_append_new(layers, d);
        }
        json_object_set_new(j, "layers", layers);
        *ret = j;
        return 0;
}

static bool layer_media_type_known(const char *t)
{
        return streq(t, OCI_MEDIA_LAYER) || streq(t, OCI_MEDIA_LAYER_GZ) ||
               streq(t, OCI_DOCKER_LAYER) || streq(t, OCI_DOCKER_LAYER_GZ);
}

static int strv_from_json(const json_t *a, char ***ret)
{
        _cleanup_strv_ char **l = NULL;
        json_t *v;
        size_t i;

        json_array_foreach(a, i, v)
        {
                if (!json_is_string(v))
                        return -EBADMSG;
                if (strv_extend(&l, json_string_value(v)) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* The manifest's layer descriptors into img (digest, size, media type). */
static int parse_manifest_layers(const json_t *manifest, struct oci_image *img, char **ret_error)
{
        const json_t *layers = json_object_get(manifest, "layers");
        json_t *d;
        size_t i;
        int r;

        if (!json_is_array(layers))
                return set_error_message(ret_error, -EBADMSG,
                                         "the manifest has no \"layers\" array");
        json_array_foreach(layers, i, d)
        {
                const char *digest = json_string_value(json_object_get(d, "digest"));
                const char *type = json_string_value(json_object_get(d, "mediaType"));
                json_int_t size = json_integer_value(json_object_get(d, "size"));
                struct oci_layer l = {};

                if (!oci_digest_valid(digest))
                        return set_error_message(ret_error, -EBADMSG,
                                                 "layer %zu of the manifest has no valid sha256 "
                                                 "digest ('%s')",
                                                 i + 1, digest ? digest : "");
                if (!type || !layer_media_type_known(type))
                        return set_error_message(
                            ret_error, -EBADMSG,
                            "layer %zu of the manifest has the media type '%s', "
                            "not a tar layer",
                            i + 1, type ? type : "");
                if (size < 0)
                        return set_error_message(ret_error, -EBADMSG,
                                                 "layer %zu of the manifest has a negative size",
                                                 i + 1);
                l.digest = (char *)digest;
                l.media_type = (char *)type;
                l.size = (uint64_t)size;
                r = oci_image_add_layer(img, &l);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The config's "strata" member into img, matched with the manifest's layers. */
static int parse_strata(const json_t *config, struct oci_image *img, char **ret_error)
{
        const json_t *st = json_object_get(config, "strata"), *layers, *ids;
        json_int_t nbase;
        json_t *o;
        size_t i;
        int r;

        if (!json_is_object(st))
                return set_error_message(ret_error, -EBADMSG,
                                         "the image config has no \"strata\" member: not an image "
                                         "of strata layers");
        if (json_integer_value(json_object_get(st, "version")) != OCI_STRATA_VERSION)
                return set_error_message(ret_error, -EBADMSG,
                                         "the image's strata format version is not %d",
                                         OCI_STRATA_VERSION);
        layers = json_object_get(st, "layers");
        nbase = json_integer_value(json_object_get(st, "base_layers"));
        if (!json_is_array(layers) || nbase < 0 ||
            (size_t)nbase + json_array_size(layers) != img->n_layers)
                return set_error_message(ret_error, -EBADMSG,
                                         "the image config describes %zu strata layers over %lld "
                                         "base layers, the manifest has %zu layers",
                                         json_array_size(layers), (long long)nbase, img->n_layers);
        img->n_base_layers = (size_t)nbase;
        ids = json_object_get(json_object_get(config, "rootfs"), "diff_ids");
        if (json_array_size(ids) != img->n_layers)
                return set_error_message(ret_error, -EBADMSG,
                                         "the image config lists %zu diff ids for %zu layers",
                                         json_array_size(ids), img->n_layers);
        for (i = 0; i < img->n_layers; i++) {
                const char *d = json_string_value(json_array_get(ids, i));

                if (!oci_digest_valid(d))
                        return set_error_message(ret_error, -EBADMSG,
                                                 "diff id %zu of the image config is not a sha256 "
                                                 "digest",
                                                 i + 1);
                free(img->layers[i].diff_id);
                img->layers[i].diff_id = strdup(d);
                if (!img->layers[i].diff_id)
                        return -ENOMEM;
        }
        json_array_foreach(layers, i, o)
        {
                struct oci_layer *l = &img->layers[img->n_base_layers + i];
                const char *id = json_string_value(json_object_get(o, "id"));
                const char *changes = json_string_value(json_object_get(o, "changes"));
                const json_t *lj = json_object_get(o, "layer_json");

                if (!id || !*id || strchr(id, '/') || streq(id, ".") || streq(id, "..") ||
                    id[0] == '.')
                        return set_error_message(ret_error, -EBADMSG,
                                                 "strata layer %zu of the image config has no "
                                                 "valid id",
                                                 i + 1);
                if (!(l->id = strdup(id)) || dup_or_null(changes, &l->changes) < 0)
                        return -ENOMEM;
                r = strv_from_json(json_object_get(o, "migrations"), &l->migrations);
                if (r < 0 || !l->migrations)
                        return set_error_message(ret_error, r == -ENOMEM ? r : -EBADMSG,
                                                 "the strata layer '%s' lists no migrations", id);
                if (json_is_object(lj))
                        l->layer_json = json_incref((json_t *)lj);
        }
        if (dup_or_null(json_string_value(json_object_get(st, "parent")), &img->parent) < 0 ||
            strv_from_json(json_object_get(st, "state_paths"), &img->state_paths) < 0)
                return set_error_message(ret_error, -EBADMSG,
                                         "the image config's state paths are not strings");
        if (json_is_object(json_object_get(st, "base")))
                img->base = json_incref(json_object_get(st, "base"));
        return 0;
}

int oci_image_parse(const json_t *manifest, const json_t *config, struct oci_image *ret,
                    char **ret_error)
{
        _cleanup_(oci_image_done) struct oci_image img = {};
        json_int_t v = json_integer_value(json_object_get(manifest, "schemaVersion"));
        int r;

        if (!json_is_object(manifest) || v != 2)
                return set_error_message(ret_error, -EBADMSG,
                                         "the manifest is not an image manifest of schema 2");
        r = parse_manifest_layers(manifest, &img, ret_error);
        if (r < 0)
                return r;
        r = parse_strata(config, &img, ret_error);
        if (r < 0)
                return r;
        *ret = img;
        img = (struct oci_image){};
        return 0;
}

int oci_image_layer_ids(const struct oci_image *img, char ***ret)
{
        char **l;
        size_t n = img->n_layers - img->n_base_layers;

        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                l[i] = img->layers[img->n_base_layers + i].id;
        *ret = l;
        return 0;
}
