/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "json.h"
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

static void test_save_and_load(void **state)
{
        _cleanup_close_ int fd = open(*state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *text = NULL;
        json_t *j, *back = NULL;
        const char *s;
        int64_t i;
        bool b;
        struct stat st;

        j = json_pack("{s:s,s:i,s:b}", "name", "strata", "n", 42, "on", 1);
        assert_int_equal(json_save_at(fd, "doc.json", j, 0640), 0);
        json_decref(j);
        assert_int_equal(fstatat(fd, "doc.json", &st, 0), 0);
        assert_int_equal(st.st_mode & 0777, 0640);
        /* indented, order kept, ends with a newline */
        assert_int_equal(read_file_at(fd, "doc.json", 4096, &text, NULL), 0);
        assert_string_equal(text, "{\n  \"name\": \"strata\",\n  \"n\": 42,\n  \"on\": true\n}\n");

        assert_int_equal(json_load_at(fd, "doc.json", &back, NULL), 0);
        assert_int_equal(json_get_string(back, "name", &s), 0);
        assert_string_equal(s, "strata");
        assert_int_equal(json_get_int(back, "n", &i), 0);
        assert_int_equal(i, 42);
        assert_int_equal(json_get_bool(back, "on", &b), 0);
        assert_true(b);
        /* wrong type and missing keys */
        assert_int_equal(json_get_int(back, "name", &i), -EBADMSG);
        assert_int_equal(json_get_string(back, "n", &s), -EBADMSG);
        assert_int_equal(json_get_bool(back, "n", &b), -EBADMSG);
        assert_int_equal(json_get_string(back, "absent", &s), -ENOENT);
        json_decref(back);
}

static void test_malformed_names_file_line_column(void **state)
{
        _cleanup_close_ int fd = open(*state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        json_error_t e;
        json_t *j = NULL;
        const char *msg;

        test_write(fd, "bad.json", "{\n  \"a\": 1,\n  \"b\": ]\n}\n");
        assert_int_equal(json_load_at(fd, "bad.json", &j, &e), -EBADMSG);
        assert_null(j);
        assert_int_equal(e.line, 3);
        msg = json_error_string(&e);
        assert_non_null(strstr(msg, "'bad.json' line 3 column"));

        /* duplicate keys are rejected, not silently merged */
        test_write(fd, "dup.json", "{\"a\": 1, \"a\": 2}");
        assert_int_equal(json_load_at(fd, "dup.json", &j, &e), -EBADMSG);
        assert_non_null(strstr(json_error_string(&e), "duplicate"));

        /* truncated */
        test_write(fd, "trunc.json", "{\"a\": [1, 2");
        assert_int_equal(json_load_at(fd, "trunc.json", &j, &e), -EBADMSG);

        /* empty file */
        test_write(fd, "empty.json", "");
        assert_int_equal(json_load_at(fd, "empty.json", &j, &e), -EBADMSG);
}

static void test_missing_file(void **state)
{
        _cleanup_close_ int fd = open(*state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        json_error_t e;
        json_t *j = NULL;

        assert_int_equal(json_load_at(fd, "nope.json", &j, &e), -ENOENT);
        assert_string_equal(json_error_string(&e), "'nope.json': No such file or directory");
        assert_int_equal(json_load_at(fd, ".", &j, &e), -EISDIR);
        assert_null(j);
}

static void test_load_buffer(void **state)
{
        json_error_t e;
        json_t *j = NULL;

        assert_int_equal(json_load_buffer("inline", "[1,2,3]", 7, &j, &e), 0);
        assert_int_equal(json_array_size(j), 3);
        json_decref(j);
        assert_int_equal(json_load_buffer("inline", "[1,2,3]", 3, &j, &e), -EBADMSG);
        assert_string_equal(e.source, "inline");
}

TEST_MAIN(cmocka_unit_test_setup_teardown(test_save_and_load, setup, teardown),
          cmocka_unit_test_setup_teardown(test_malformed_names_file_line_column, setup, teardown),
          cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
          cmocka_unit_test(test_load_buffer))
