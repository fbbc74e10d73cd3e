/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "tests.h"

static bool fd_is_open(int fd)
{
        return fcntl(fd, F_GETFD) >= 0;
}

static void test_close_at_scope_end(void **state)
{
        int seen;

        {
                _cleanup_close_ int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                assert_true(fd >= 0);
                seen = fd;
                assert_true(fd_is_open(seen));
        }
        assert_false(fd_is_open(seen));

        /* -1 is left alone */
        {
                _cleanup_close_ int fd = -1;
                (void)fd;
        }
}

static void test_take_fd_hands_over(void **state)
{
        int kept;

        {
                _cleanup_close_ int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                kept = TAKE_FD(fd);
                assert_int_equal(fd, -1);
        }
        assert_true(fd_is_open(kept));
        assert_int_equal(safe_close(kept), -1);
        assert_false(fd_is_open(kept));
}

static char *make_owned(void)
{
        _cleanup_free_ char *p = strdup("owned");

        if (!p)
                return NULL;
        /* the cleanup must not free what is returned */
        return TAKE_PTR(p);
}

static void test_take_ptr_hands_over(void **state)
{
        char *p = make_owned();

        assert_string_equal(p, "owned");
        free(p);
}

static void test_cleanups_keep_errno(void **state)
{
        {
                _cleanup_free_ char *p = strdup("x");
                _cleanup_close_ int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                _cleanup_fclose_ FILE *f = fopen("/dev/null", "re");
                _cleanup_closedir_ DIR *d = opendir("/");
                _cleanup_strv_ char **l = calloc(3, sizeof(char *));

                assert_non_null(l);
                l[0] = strdup("a");
                l[1] = strdup("b");
                (void)p;
                (void)fd;
                (void)f;
                (void)d;
                errno = ENOSPC;
        }
        /* an error being reported survives the cleanups on the way out */
        assert_int_equal(errno, ENOSPC);
}

static void test_null_is_fine(void **state)
{
        _cleanup_free_ char *p = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_closedir_ DIR *d = NULL;
        _cleanup_strv_ char **l = NULL;

        (void)p;
        (void)f;
        (void)d;
        (void)l;
        strv_free(NULL);
}

TEST_MAIN(cmocka_unit_test(test_close_at_scope_end), cmocka_unit_test(test_take_fd_hands_over),
          cmocka_unit_test(test_take_ptr_hands_over), cmocka_unit_test(test_cleanups_keep_errno),
          cmocka_unit_test(test_null_is_fine))
