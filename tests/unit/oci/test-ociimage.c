/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The image config and manifest of a strata stack, built and parsed back;
 * what a parse refuses. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "ociimage.h"
#include "ocimap.h"
#include "tests.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define DC "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

static void make_image(struct oci_image *img)
{
        char *m1[] = {(char *)"20260101-001_a", NULL},
             *m2[] = {(char *)"20260101-002_b", (char *)"20260101-003_c", NULL};
        json_t *lj = json_pack("{s:s}", "id", "20260101-001_a");
        struct oci_layer base = {.digest = (char *)D1, .size = 10},
                         l1 = {.id = (char *)"20260101-001_a",
                               .migrations = m1,
                               .digest = (char *)D2,
                               .size = 20,
                               .layer_json = lj,
                               .changes = (char *)"A /opt/x\n"},
                         l2 = {.id = (char *)"20260101-003_c+1",
                               .migrations = m2,
                               .digest = (char *)D3,
                               .size = 30};

        *img = (struct oci_image){};
        assert_int_equal(oci_image_add_layer(img, &base), 0);
        img->n_base_layers = 1;
        assert_int_equal(oci_image_add_layer(img, &l1), 0);
        assert_int_equal(oci_image_add_layer(img, &l2), 0);
        json_decref(lj);
        img->parent = strdup("20251231-001_below");
        img->state_paths = calloc(2, sizeof(char *));
        img->state_paths[0] = strdup("/var/lib/app");
}

static void build(const struct oci_image *img, json_t **ret_config, json_t **ret_manifest)
{
        assert_int_equal(oci_config_build(img, ret_config), 0);
        assert_int_equal(oci_manifest_build(img, DC, 99, ret_manifest), 0);
}

static void test_round_trip(void **state)
{
        _cleanup_(oci_image_done) struct oci_image img = {}, back = {};
        _cleanup_free_ char *error = NULL, **ids = NULL;
        json_t *config, *manifest, *ann;

        make_image(&img);
        build(&img, &config, &manifest);
        /* the annotations name the layers for other tools */
        ann =
            json_object_get(json_array_get(json_object_get(manifest, "layers"), 2), "annotations");
        assert_string_equal(json_string_value(json_object_get(ann, OCI_ANNOTATION_MIGRATIONS)),
                            "20260101-002_b,20260101-003_c");
        ann =
            json_object_get(json_array_get(json_object_get(manifest, "layers"), 1), "annotations");
        assert_string_equal(json_string_value(json_object_get(ann, OCI_ANNOTATION_PARENT)),
                            "20251231-001_below");
        assert_null(
            json_object_get(json_array_get(json_object_get(manifest, "layers"), 0), "annotations"));

        assert_int_equal(oci_image_parse(manifest, config, &back, &error), 0);
        assert_int_equal(back.n_layers, 3);
        assert_int_equal(back.n_base_layers, 1);
        assert_null(back.layers[0].id);
        assert_string_equal(back.layers[1].id, "20260101-001_a");
        assert_string_equal(back.layers[1].digest, D2);
        assert_string_equal(back.layers[1].diff_id, D2);
        assert_string_equal(back.layers[1].media_type, OCI_MEDIA_LAYER);
        assert_int_equal(back.layers[1].size, 20);
        assert_string_equal(back.layers[1].changes, "A /opt/x\n");
        assert_string_equal(json_string_value(json_object_get(back.layers[1].layer_json, "id")),
                            "20260101-001_a");
        assert_string_equal(back.layers[2].migrations[1], "20260101-003_c");
        assert_null(back.layers[2].changes);
        assert_string_equal(back.parent, "20251231-001_below");
        assert_string_equal(back.state_paths[0], "/var/lib/app");
        assert_int_equal(oci_image_layer_ids(&back, &ids), 0);
        assert_string_equal(ids[0], "20260101-001_a");
        assert_string_equal(ids[1], "20260101-003_c+1");
        assert_null(ids[2]);
        json_decref(config);
        json_decref(manifest);
}

/* Builds the image, lets change() spoil one of the documents, and expects
 * the parse to refuse it with a message holding what. */
static void refused(void (*change)(json_t *config, json_t *manifest), const char *what)
{
        _cleanup_(oci_image_done) struct oci_image img = {}, back = {};
        _cleanup_free_ char *error = NULL;
        json_t *config, *manifest;

        make_image(&img);
        build(&img, &config, &manifest);
        change(config, manifest);
        assert_int_equal(oci_image_parse(manifest, config, &back, &error), -EBADMSG);
        assert_non_null(error);
        if (!strstr(error, what))
                fail_msg("'%s' does not say '%s'", error, what);
        json_decref(config);
        json_decref(manifest);
}

static void no_strata(json_t *c, json_t *m)
{
        json_object_del(c, "strata");
}

static void bad_digest(json_t *c, json_t *m)
{
        json_object_set_new(json_array_get(json_object_get(m, "layers"), 1), "digest",
                            json_string("sha256:../../etc/passwd"));
}

static void bad_media_type(json_t *c, json_t *m)
{
        json_object_set_new(json_array_get(json_object_get(m, "layers"), 1), "mediaType",
                            json_string("application/vnd.example.zip"));
}

static void layer_missing(json_t *c, json_t *m)
{
        json_array_remove(json_object_get(m, "layers"), 2);
}

static void bad_id(json_t *c, json_t *m)
{
        json_object_set_new(
            json_array_get(json_object_get(json_object_get(c, "strata"), "layers"), 0), "id",
            json_string("../escape"));
}

static void bad_schema(json_t *c, json_t *m)
{
        json_object_set_new(m, "schemaVersion", json_integer(1));
}

static void test_refused(void **state)
{
        refused(no_strata, "not an image of strata layers");
        refused(bad_digest, "no valid sha256 digest");
        refused(bad_media_type, "not a tar layer");
        refused(layer_missing, "the manifest has 2 layers");
        refused(bad_id, "no valid id");
        refused(bad_schema, "schema 2");
}

TEST_MAIN(cmocka_unit_test(test_round_trip), cmocka_unit_test(test_refused))
