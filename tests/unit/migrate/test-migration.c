/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "migration.h"
#include "sha256.h"
#include "statepath.h"
#include "strv.h"
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

static int open_dir(const char *p)
{
        int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        return fd;
}

static void test_id_pattern(void **state)
{
        assert_true(migration_id_valid("20260206-001_add_postgresql"));
        assert_true(migration_id_valid("20260206-999_x"));
        assert_true(migration_id_valid("20240229-000_0_9"));
        /* the date is a calendar date */
        assert_false(migration_id_valid("00000000-000_0_9"));
        assert_false(migration_id_valid("20261399-001_x"));
        assert_false(migration_id_valid("20260132-001_x"));
        assert_false(migration_id_valid("20260431-001_x"));
        assert_false(migration_id_valid("20250229-001_x"));
        assert_false(migration_id_valid("19000229-001_x"));
        assert_true(migration_id_valid("20000229-001_x"));
        assert_true(migration_date_valid("20261231"));
        assert_false(migration_date_valid("20260001"));
        assert_false(migration_id_valid("20260206-001_"));
        assert_false(migration_id_valid("20260206-001"));
        assert_false(migration_id_valid("2026026-001_x"));
        assert_false(migration_id_valid("20260206-01_x"));
        assert_false(migration_id_valid("20260206_001_x"));
        assert_false(migration_id_valid("20260206-001-x"));
        assert_false(migration_id_valid("20260206-001_Add"));
        assert_false(migration_id_valid("20260206-001_a-b"));
        assert_false(migration_id_valid("20260206-001_a b"));
        assert_false(migration_id_valid("x20260206-001_a"));
        assert_false(migration_id_valid(""));
        assert_false(migration_id_valid(NULL));
        assert_true(migration_label_valid("install_nginx"));
        assert_false(migration_label_valid("Install"));
        assert_false(migration_label_valid(""));
}

static void test_next_id(void **state)
{
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
        char *ids[] = {(char *)"20260206-001_a", (char *)"20260206-007_b", (char *)"20260205-042_c",
                       (char *)"README", NULL};
        char *full[] = {(char *)"20260206-999_a", NULL};

        assert_int_equal(migration_next_id(NULL, "20260206", "first", &a), 0);
        assert_string_equal(a, "20260206-001_first");
        assert_int_equal(migration_next_id(ids, "20260206", "next", &b), 0);
        assert_string_equal(b, "20260206-008_next");
        assert_int_equal(migration_next_id(ids, "20260205", "x", &c), 0);
        assert_string_equal(c, "20260205-043_x");
        assert_int_equal(migration_next_id(full, "20260206", "x", &c), -ERANGE);
        assert_int_equal(migration_next_id(ids, "20260206", "Bad-Label", &c), -EINVAL);
        assert_int_equal(migration_next_id(ids, "2026020", "x", &c), -EINVAL);
        assert_int_equal(migration_next_id(ids, "20261399", "x", &c), -EINVAL);
}

static void test_state_parse(void **state)
{
        _cleanup_strv_ char **l = NULL;
        _cleanup_free_ char *err = NULL;

        assert_int_equal(migration_state_parse("s",
                                               "# comment\n\n/var/lib/pg/\n  //srv//data \n"
                                               "/var/lib/pg\n",
                                               &l, &err),
                         0);
        assert_int_equal(strv_length(l), 2);
        assert_string_equal(l[0], "/srv/data");
        assert_string_equal(l[1], "/var/lib/pg");

        assert_int_equal(migration_state_parse("s", "/ok\nrelative/path\n", &l, &err), -EINVAL);
        assert_non_null(strstr(err, "'s' line 2"));
        assert_non_null(strstr(err, "relative/path"));
        free(err);
        err = NULL;
        assert_int_equal(migration_state_parse("s", "/a/../etc\n", &l, &err), -EINVAL);
        free(err);
        err = NULL;
        assert_int_equal(migration_state_parse("s", "/\n", &l, &err), -EINVAL);
        free(err);
        err = NULL;
        assert_int_equal(migration_state_parse("s", "/var/lib/dpkg/info\n", &l, &err), -EINVAL);
        assert_non_null(strstr(err, "/var/lib/dpkg"));
        free(err);
        err = NULL;
        assert_int_equal(migration_state_parse("s", "/var/lib\n", &l, &err), -EINVAL);
        free(err);
        err = NULL;
        assert_int_equal(migration_state_parse("s", "/var/lib/apt\n", &l, &err), -EINVAL);
}

static void test_state_paths_covered(void **state)
{
        char *paths[] = {(char *)"/home", (char *)"/var/lib/pg", NULL};

        assert_true(state_path_covered(paths, "/home"));
        assert_true(state_path_covered(paths, "/home/u/x"));
        assert_true(state_path_covered(paths, "/var/lib/pg/base/1"));
        assert_false(state_path_covered(paths, "/homes"));
        assert_false(state_path_covered(paths, "/var/lib/pgsql"));
        assert_false(state_path_covered(paths, "/var/lib"));
        assert_false(state_path_covered(NULL, "/home"));
}

static void test_state_machine_list(void **state)
{
        _cleanup_close_ int fd = open_dir(*state);
        _cleanup_strv_ char **l = NULL, **m = NULL;
        _cleanup_free_ char *err = NULL;

        assert_int_equal(state_path_machine_list(fd, &l, &err), 0);
        assert_int_equal(strv_length(l), 3);
        assert_string_equal(l[0], "/home");
        assert_string_equal(l[1], "/root");
        assert_string_equal(l[2], "/var/log");

        assert_int_equal(mkdir_p_at(fd, "system", 0755), 0);
        test_write(fd, STATE_PATHS_FILE, "/srv\n# none else\n");
        assert_int_equal(state_path_machine_list(fd, &m, &err), 0);
        assert_int_equal(strv_length(m), 1);
        assert_string_equal(m[0], "/srv");
}

static void test_state_move_never_overwrites(void **state)
{
        _cleanup_close_ int fd = open_dir(*state);
        _cleanup_free_ char *a = NULL, *b = NULL;
        struct stat st;

        assert_int_equal(mkdir_p_at(fd, "src/db/sub", 0750), 0);
        test_write(fd, "src/db/new", "new");
        test_write(fd, "src/db/existing", "from the migration");
        test_write(fd, "src/db/sub/f", "f");
        assert_int_equal(mkdir_p_at(fd, "dst/db", 0755), 0);
        test_write(fd, "dst/db/existing", "kept");
        assert_int_equal(mknodat(fd, "src/db/gone", S_IFCHR, 0), 0);

        assert_true(state_path_move_at(fd, "src/db", fd, "dst/db") >= 2);
        assert_int_equal(read_file_at(fd, "dst/db/existing", 100, &a, NULL), 0);
        assert_string_equal(a, "kept");
        assert_int_equal(read_file_at(fd, "dst/db/new", 100, &b, NULL), 0);
        assert_string_equal(b, "new");
        assert_int_equal(fstatat(fd, "dst/db/sub/f", &st, 0), 0);
        /* a whiteout never deletes state */
        assert_int_equal(fstatat(fd, "dst/db/gone", &st, AT_SYMLINK_NOFOLLOW), -1);

        /* a new state dir keeps the mode of its source */
        assert_int_equal(mkdir_p_at(fd, "src2/x", 0700), 0);
        assert_int_equal(chmod("src2/x", 0700) == 0 || true, 1);
        assert_true(state_path_move_at(fd, "src2/x", fd, "dst2/deep/x") >= 0);
        assert_int_equal(fstatat(fd, "dst2/deep/x", &st, 0), 0);
        assert_true(S_ISDIR(st.st_mode));
}

static void test_load_set(void **state)
{
        _cleanup_close_ int fd = open_dir(*state);
        _cleanup_(migration_set_done) struct migration_set s = {};
        _cleanup_free_ char *err = NULL;

        assert_int_equal(mkdir_p_at(fd, "m/20260206-002_b/services/web/log", 0755), 0);
        assert_int_equal(mkdir_p_at(fd, "m/20260206-001_a", 0755), 0);
        test_write(fd, "m/20260206-001_a/" MIGRATION_SCRIPT, "true\n");
        test_write(fd, "m/20260206-001_a/state", "/var/lib/a\n");
        test_write(fd, "m/20260206-002_b/" MIGRATION_SCRIPT, "true\n");
        test_write(fd, "m/20260206-002_b/services/web/run", "#!/bin/sh\nexec web\n");
        test_write(fd, "m/20260206-002_b/services/web/log/run", "#!/bin/sh\nexec log\n");
        test_write(fd, "m/20260206-002_b/services/web/notification-fd", "3\n");
        assert_int_equal(fchmodat(fd, "m/20260206-002_b/services/web/run", 0755, 0), 0);
        assert_int_equal(fchmodat(fd, "m/20260206-002_b/services/web/log/run", 0755, 0), 0);
        test_write(fd, "m/README", "plain files are ignored\n");

        assert_int_equal(chdir(*state), 0);
        assert_int_equal(migration_set_load_at(AT_FDCWD, "m", &s, &err), 0);
        assert_int_equal(s.n, 2);
        assert_string_equal(s.items[0].id, "20260206-001_a");
        assert_string_equal(s.items[0].state[0], "/var/lib/a");
        assert_string_equal(s.items[1].id, "20260206-002_b");
        assert_string_equal(s.items[1].services[0], "web");
        assert_null(s.items[1].services[1]);
        assert_int_equal(migration_set_find(&s, "20260206-002_b"), 1);
        assert_int_equal(migration_set_find(&s, "nope"), -ENOENT);
}

static void expect_set_error(const char *dir, const char *needle)
{
        struct migration_set s = {};
        _cleanup_free_ char *err = NULL;

        assert_int_equal(migration_set_load_at(AT_FDCWD, dir, &s, &err), -EINVAL);
        assert_non_null(err);
        if (!strstr(err, needle))
                fail_msg("error '%s' does not name '%s'", err, needle);
}

static void test_typos_are_errors(void **state)
{
        _cleanup_close_ int fd = open_dir(*state);

        assert_int_equal(chdir(*state), 0);
        /* a directory that is not an id */
        assert_int_equal(mkdir_p_at(fd, "t1/2026020-001_typo", 0755), 0);
        expect_set_error("t1", "2026020-001_typo");
        /* an id without install_script.sh (a misspelled script name) */
        assert_int_equal(mkdir_p_at(fd, "t2/20260206-001_a", 0755), 0);
        test_write(fd, "t2/20260206-001_a/install-script.sh", "true\n");
        expect_set_error("t2", "20260206-001_a");
        /* a service whose run is not executable */
        assert_int_equal(mkdir_p_at(fd, "t3/20260206-001_a/services/web", 0755), 0);
        test_write(fd, "t3/20260206-001_a/" MIGRATION_SCRIPT, "true\n");
        test_write(fd, "t3/20260206-001_a/services/web/run", "#!/bin/sh\n");
        expect_set_error("t3", "services/web/run");
        /* an unknown file in a service dir names the file */
        assert_int_equal(fchmodat(fd, "t3/20260206-001_a/services/web/run", 0755, 0), 0);
        test_write(fd, "t3/20260206-001_a/services/web/finsh", "#!/bin/sh\n");
        expect_set_error("t3", "services/web/finsh");
        /* a service without run */
        assert_int_equal(mkdir_p_at(fd, "t4/20260206-001_a/services/db", 0755), 0);
        test_write(fd, "t4/20260206-001_a/" MIGRATION_SCRIPT, "true\n");
        test_write(fd, "t4/20260206-001_a/services/db/finish", "#!/bin/sh\n");
        expect_set_error("t4", "lacks 'run'");
        /* a bad state file names its line */
        assert_int_equal(mkdir_p_at(fd, "t5/20260206-001_a", 0755), 0);
        test_write(fd, "t5/20260206-001_a/" MIGRATION_SCRIPT, "true\n");
        test_write(fd, "t5/20260206-001_a/state", "/ok\nnot/absolute\n");
        expect_set_error("t5", "20260206-001_a/state' line 2");
}

static void test_sha256_vectors(void **state)
{
        char hex[SHA256_HEX_SIZE];
        struct sha256_ctx c;
        uint8_t d[SHA256_DIGEST_SIZE];
        char *million = malloc(1000000);

        sha256_hex("", 0, hex);
        assert_string_equal(hex,
                            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        sha256_hex("abc", 3, hex);
        assert_string_equal(hex,
                            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
        assert_string_equal(hex,
                            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        /* one million 'a', fed in odd pieces */
        assert_non_null(million);
        memset(million, 'a', 1000000);
        sha256_init(&c);
        for (size_t off = 0; off < 1000000;) {
                size_t n = off % 7 == 0 ? 1 : 997;
                if (n > 1000000 - off)
                        n = 1000000 - off;
                sha256_update(&c, million + off, n);
                off += n;
        }
        sha256_final(&c, d);
        free(million);
        assert_int_equal(d[0], 0xcd);
        assert_int_equal(d[1], 0xc7);
        assert_int_equal(d[31], 0xd0);
}

static void test_sha256_file(void **state)
{
        _cleanup_close_ int fd = open_dir(*state);
        char hex[SHA256_HEX_SIZE];

        test_write(fd, "f", "abc");
        assert_int_equal(sha256_file_hex_at(fd, "f", hex), 0);
        assert_string_equal(hex,
                            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_int_equal(sha256_file_hex_at(fd, "missing", hex), -ENOENT);
}

TEST_MAIN(cmocka_unit_test(test_id_pattern), cmocka_unit_test(test_next_id),
          cmocka_unit_test(test_state_parse), cmocka_unit_test(test_state_paths_covered),
          cmocka_unit_test_setup_teardown(test_state_machine_list, setup, teardown),
          cmocka_unit_test_setup_teardown(test_state_move_never_overwrites, setup, teardown),
          cmocka_unit_test_setup_teardown(test_load_set, setup, teardown),
          cmocka_unit_test_setup_teardown(test_typos_are_errors, setup, teardown),
          cmocka_unit_test(test_sha256_vectors),
          cmocka_unit_test_setup_teardown(test_sha256_file, setup, teardown))
