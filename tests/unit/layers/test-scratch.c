/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "changes.h"
#include "cleanup.h"
#include "fs.h"
#include "scratch.h"
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

static void put(int dfd, const char *path, const char *text)
{
        _cleanup_close_ int fd = -1;

        assert_int_equal(mkdir_parents_at(dfd, path, 0755), 0);
        fd = openat(dfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
}

/* layer fs/: /etc/{a,b}, /opt/d/x, /srv/f (a file)
 * scratch upper: /etc/a (a runtime edit), /etc/zzz (unrelated), /etc/s
 *   (under a state path: not the layer's), /opt/d (a whiteout: hides d and
 *   d/x), /srv/f/ (a plain dir over the layer's file) */
static void test_overrides(void **state)
{
        _cleanup_(change_list_done) struct change_list l = {};
        _cleanup_strv_ char **paths = NULL, **two = NULL;
        _cleanup_close_ int root = open(*state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        uint64_t n = 99;
        static const char *const layer[] = {"/etc",   "/etc/a",   "/etc/b", "/opt",
                                            "/opt/d", "/opt/d/x", "/srv",   "/srv/f"};

        assert_true(root >= 0);
        put(root, "layer/fs/etc/a", "a");
        put(root, "layer/fs/etc/b", "b");
        put(root, "layer/fs/opt/d/x", "x");
        put(root, "layer/fs/srv/f", "f");
        for (size_t i = 0; i < sizeof(layer) / sizeof(layer[0]); i++)
                assert_int_equal(changes_add(&l, CHANGE_ADDED, false, layer[i]), 0);
        assert_int_equal(changes_add(&l, CHANGE_ADDED, true, "/etc/s"), 0);
        changes_sort(&l);

        /* nothing there yet */
        assert_int_equal(scratch_count_at(root, "upper", &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(scratch_overrides_at(root, "upper", root, "layer/fs", &l, 10, &paths), 0);
        assert_null(paths);

        put(root, "upper/etc/a", "runtime");
        put(root, "upper/etc/zzz", "z");
        put(root, "upper/etc/s", "state");
        assert_int_equal(mkdir_p_at(root, "upper/opt", 0755), 0);
        if (mknodat(root, "upper/opt/d", S_IFCHR | 0000, makedev(0, 0)) < 0)
                test_skip_all("a whiteout (char 0/0) needs CAP_MKNOD");
        assert_int_equal(mkdir_p_at(root, "upper/srv/f", 0755), 0);

        assert_int_equal(scratch_count_at(root, "upper", &n), 0);
        assert_int_equal(n, 8); /* etc etc/{a,zzz,s} opt opt/d srv srv/f */
        assert_int_equal(scratch_overrides_at(root, "upper", root, "layer/fs", &l, 10, &paths), 4);
        assert_non_null(paths);
        assert_int_equal(strv_length(paths), 4);
        assert_string_equal(paths[0], "/etc/a");
        assert_string_equal(paths[1], "/opt/d");
        assert_string_equal(paths[2], "/opt/d/x");
        assert_string_equal(paths[3], "/srv/f");

        /* the count is all of them, the list at most max */
        assert_int_equal(scratch_overrides_at(root, "upper", root, "layer/fs", &l, 2, &two), 4);
        assert_int_equal(strv_length(two), 2);
}

/* A change "/etc/a-b" sorts between "/etc/a" and "/etc/a/x": the range
 * below an overriding "/etc/a" must still be found whole. */
static void test_prefix_range(void **state)
{
        _cleanup_(change_list_done) struct change_list l = {};
        _cleanup_strv_ char **paths = NULL;
        _cleanup_close_ int root = open(*state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        static const char *const layer[] = {"/etc", "/etc/a", "/etc/a-b", "/etc/a/x", "/etc/a/y"};

        assert_true(root >= 0);
        for (size_t i = 0; i < sizeof(layer) / sizeof(layer[0]); i++)
                assert_int_equal(changes_add(&l, CHANGE_ADDED, false, layer[i]), 0);
        changes_sort(&l);
        assert_int_equal(mkdir_p_at(root, "layer/fs", 0755), 0);
        put(root, "upper/etc/a", "a file over the layer's dir");
        assert_int_equal(scratch_overrides_at(root, "upper", root, "layer/fs", &l, 10, &paths), 3);
        assert_string_equal(paths[0], "/etc/a");
        assert_string_equal(paths[1], "/etc/a/x");
        assert_string_equal(paths[2], "/etc/a/y");
}

TEST_MAIN(cmocka_unit_test_setup_teardown(test_overrides, setup, teardown),
          cmocka_unit_test_setup_teardown(test_prefix_range, setup, teardown))
