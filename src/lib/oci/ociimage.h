/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A strata stack as an OCI image, as data: the image config and manifest
 * built from it and parsed back (pure JSON, no IO; ocilayout.h writes and
 * reads them in an OCI image layout).
 *
 * One OCI layer per strata layer, oldest first. The manifest's layer
 * descriptors carry the layer id, its migrations and (on the first) its
 * parent as annotations (ocimap.h); the config carries what a data dir
 * needs to adopt the layers, under the key "strata":
 *
 *   "strata": { "version": 1, "parent": null | "ID",
 *               "layers": [ { "id": "...", "layer_json": { layer.json },
 *                             "changes": "changes.list text" }, ... ],
 *               "state_paths": [ ... ], "base": { base.json } | null,
 *               "base_layers": N }
 *
 * "base_layers" counts the layers below the strata ones that are not
 * strata layers (an image built with `strata image build`: the base and
 * the init layer); they come first in the manifest and have no entry in
 * "layers".
 */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define OCI_STRATA_VERSION 1

struct oci_layer {
        char *id;          /* strata layer id; NULL for a base layer */
        char **migrations; /* NULL-terminated */
        char *digest;      /* "sha256:..." of the blob */
        char *diff_id;     /* of the uncompressed tar (= digest when not compressed) */
        char *media_type;
        uint64_t size;
        json_t *layer_json; /* owned reference, may be NULL */
        char *changes;      /* changes.list text, may be NULL */
};

struct oci_image {
        struct oci_layer *layers; /* base layers first, then strata layers oldest first */
        size_t n_layers;
        size_t n_base_layers;
        char *parent;                    /* the strata layer the first one sits on, or NULL */
        char **state_paths;              /* NULL-terminated, may be NULL */
        json_t *base;                    /* base.json, may be NULL */
        char **entrypoint, **cmd, **env; /* the image's process, may be NULL */
};

void oci_image_done(struct oci_image *img);

/* Adds a layer (the strings are copied, layer_json gains a reference). */
int oci_image_add_layer(struct oci_image *img, const struct oci_layer *l);

/* The image config of img (a new reference). */
int oci_config_build(const struct oci_image *img, json_t **ret);

/* The manifest of img whose config blob has config_digest and config_size. */
int oci_manifest_build(const struct oci_image *img, const char *config_digest, uint64_t config_size,
                       json_t **ret);

/* Parses a manifest and its config into *ret: the layers' digests, sizes
 * and media types from the manifest, the rest from the config's "strata"
 * member. -EBADMSG with *ret_error saying what is wrong: not an OCI or
 * Docker schema 2 manifest, a digest that is not "sha256:<hex>", a layer
 * of an unknown media type, a config without "strata" (not a strata
 * image) or whose layers do not match the manifest's. */
int oci_image_parse(const json_t *manifest, const json_t *config, struct oci_image *ret,
                    char **ret_error);

/* The ids of img's strata layers, oldest first (NULL-terminated, the
 * strings point into img). */
int oci_image_layer_ids(const struct oci_image *img, char ***ret);
