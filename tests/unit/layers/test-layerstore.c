/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "layerstore.h"
#include "tests.h"

static int setup(void **state)
{
        *state = test_tmpdir();
        return 0;
}

static int teardown(void **state)
{
        test_tmpdir_remove(*state);
        return 0;
}

static char **strv_new2(const char *a, const char *b)
{
        char **l = calloc(3, sizeof(char *));
        assert_non_null(l);
        l[0] = strdup(a);
        if (b)
                l[1] = strdup(b);
        return l;
}

static void test_empty_store(void **state)
{
        _cleanup_close_ int fd = open(*state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct layer_metadata m = {.n_layers = 99};
        _cleanup_strv_ char **lower = NULL;
        struct stat st;

        assert_int_equal(layerstore_ensure_layout(fd), 0);
        assert_int_equal(layerstore_ensure_layout(fd), 0);
        assert_int_equal(fstatat(fd, "system/lock", &st, 0), 0);
        assert_int_equal(fstatat(fd, "state/services", &st, 0), 0);
        /* no metadata yet: an empty store */
        assert_int_equal(layer_metadata_load(fd, &m, NULL), 0);
        assert_int_equal(m.n_layers, 0);
        assert_int_equal(layer_metadata_lowerdirs(&m, "/data", "/", &lower), 0);
        assert_string_equal(lower[0], "/");
        assert_null(lower[1]);
        layer_metadata_done(&m);
}

static void test_roundtrip_and_lowerdirs(void **state)
{
        _cleanup_close_ int fd = open(*state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct layer_metadata m = {}, back = {};
        _cleanup_strv_ char **lower = NULL;
        struct layer_entry layers[2] = {
            {.id = strdup("20260206-001_a"),
             .dir = strdup("20260206-001_a"),
             .migrations = strv_new2("20260206-001_a", NULL),
             .applied_at = 17,
             .duration_ms = 41,
             .changes = {3, 1, 0, 0}},
            {.id = strdup("20260206-002_b"),
             .dir = strdup("sq-002"),
             .migrations = strv_new2("20260206-002_b", "20260206-003_c"),
             .changes = {0, 0, 2, 1}},
        };

        assert_int_equal(layerstore_ensure_layout(fd), 0);
        m.layers = layers;
        m.n_layers = 2;
        m.state_paths = strv_new2("/var/lib/pg", NULL);
        m.rolled_back = strv_new2("20260207-001_x", NULL);
        assert_int_equal(layer_metadata_save(fd, &m), 0);

        assert_int_equal(layer_metadata_load(fd, &back, NULL), 0);
        assert_int_equal(back.n_layers, 2);
        assert_string_equal(back.layers[0].id, "20260206-001_a");
        assert_int_equal(back.layers[0].applied_at, 17);
        assert_int_equal(back.layers[0].duration_ms, 41);
        assert_int_equal(back.layers[0].changes[0], 3);
        assert_int_equal(back.layers[1].changes[3], 1);
        assert_string_equal(back.layers[1].dir, "sq-002");
        assert_string_equal(back.layers[1].migrations[1], "20260206-003_c");
        assert_string_equal(back.state_paths[0], "/var/lib/pg");
        assert_string_equal(back.rolled_back[0], "20260207-001_x");
        assert_int_equal(layer_metadata_find_migration(&back, "20260206-003_c"), 1);
        assert_int_equal(layer_metadata_find_migration(&back, "20260206-001_a"), 0);
        assert_int_equal(layer_metadata_find_migration(&back, "nope"), -ENOENT);

        /* newest first, then the base */
        assert_int_equal(layer_metadata_lowerdirs(&back, "/data", "/", &lower), 0);
        assert_string_equal(lower[0], "/data/system/layers/sq-002/fs");
        assert_string_equal(lower[1], "/data/system/layers/20260206-001_a/fs");
        assert_string_equal(lower[2], "/");
        assert_null(lower[3]);
        layer_metadata_done(&back);

        for (size_t i = 0; i < 2; i++) {
                free(layers[i].id);
                free(layers[i].dir);
                strv_free(layers[i].migrations);
        }
        strv_free(m.state_paths);
        strv_free(m.rolled_back);
}

static void expect_bad(int fd, const char *content, const char *why)
{
        struct layer_metadata m = {};
        _cleanup_free_ char *err = NULL;

        test_write(fd, LAYERSTORE_METADATA, content);
        assert_int_equal(layer_metadata_load(fd, &m, &err), -EBADMSG);
        assert_non_null(err);
        if (!strstr(err, why))
                fail_msg("error '%s' does not say '%s'", err, why);
        assert_int_equal(m.n_layers, 0);
        assert_null(m.layers);
}

static void test_malformed_metadata(void **state)
{
        _cleanup_close_ int fd = open(*state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        assert_int_equal(layerstore_ensure_layout(fd), 0);
        expect_bad(fd, "{\"version\": 1, \"layers\": [", "line 1");
        expect_bad(fd, "[]", "not an object");
        expect_bad(fd, "{\"layers\": []}", "version");
        expect_bad(fd, "{\"version\": 2}", "version");
        expect_bad(fd, "{\"version\": 1, \"layers\": {}}", "\"layers\" is not an array");
        expect_bad(fd, "{\"version\": 1, \"layers\": [{\"dir\": \"x\"}]}", "no valid \"id\"");
        expect_bad(fd, "{\"version\": 1, \"layers\": [{\"id\": \"../../etc\"}]}",
                   "no valid \"id\"");
        expect_bad(fd, "{\"version\": 1, \"layers\": [{\"id\": \"a\", \"dir\": \"..\"}]}",
                   "invalid \"dir\"");
        expect_bad(fd, "{\"version\": 1, \"layers\": [{\"id\": \"a\"}, {\"id\": \"a\"}]}",
                   "listed twice");
        expect_bad(fd, "{\"version\": 1, \"layers\": [{\"id\": \"a\", \"changes\": {\"A\": -1}}]}",
                   "not a count");
        expect_bad(fd, "{\"version\": 1, \"state_paths\": [\"relative\"]}", "not absolute");
        expect_bad(fd, "{\"version\": 1, \"rolled_back\": [1]}", "\"rolled_back\"");
}

TEST_MAIN(cmocka_unit_test_setup_teardown(test_empty_store, setup, teardown),
          cmocka_unit_test_setup_teardown(test_roundtrip_and_lowerdirs, setup, teardown),
          cmocka_unit_test_setup_teardown(test_malformed_metadata, setup, teardown))
