/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "tests.h"

static void test_errno_returns_negative(void **state)
{
        test_log_capture_start();
        assert_int_equal(log_error_errno(ENOENT, "x"), -ENOENT);
        assert_int_equal(log_error_errno(-EBUSY, "y"), -EBUSY);
        test_log_capture_stop();
}

static void test_percent_m_renders_error(void **state)
{
        const char *out;

        errno = 0;
        test_log_capture_start();
        log_error_errno(-ENOENT, "cannot open '%s': %m", "/nope");
        out = test_log_capture_stop();
        assert_string_equal(out, "cannot open '/nope': No such file or directory\n");
        /* errno is left as it was */
        assert_int_equal(errno, 0);
}

static void test_level_filter(void **state)
{
        const char *out;

        test_log_capture_start();
        log_set_max_level(LOG_WARNING);
        log_info("hidden");
        log_debug("hidden too");
        log_warning("shown");
        assert_int_equal(log_debug_errno(EIO, "filtered still returns"), -EIO);
        out = test_log_capture_stop();
        assert_string_equal(out, "shown\n");
}

static void test_level_from_string(void **state)
{
        assert_int_equal(log_level_from_string("debug"), LOG_DEBUG);
        assert_int_equal(log_level_from_string("error"), LOG_ERR);
        assert_int_equal(log_level_from_string("err"), LOG_ERR);
        assert_int_equal(log_level_from_string("warning"), LOG_WARNING);
        assert_int_equal(log_level_from_string("5"), LOG_NOTICE);
        assert_int_equal(log_level_from_string("loud"), -EINVAL);
        assert_int_equal(log_level_from_string("8"), -EINVAL);
        assert_int_equal(log_level_from_string(NULL), -EINVAL);
}

static void test_long_message_truncated_safely(void **state)
{
        char big[10000];
        const char *out;

        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        test_log_capture_start();
        log_error("%s", big);
        out = test_log_capture_stop();
        assert_true(strlen(out) < sizeof(big));
        assert_true(strlen(out) > 1000);
}

TEST_MAIN(cmocka_unit_test(test_errno_returns_negative),
          cmocka_unit_test(test_percent_m_renders_error), cmocka_unit_test(test_level_filter),
          cmocka_unit_test(test_level_from_string),
          cmocka_unit_test(test_long_message_truncated_safely))
