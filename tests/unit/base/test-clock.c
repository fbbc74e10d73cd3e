/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "clock.h"
#include "tests.h"

static void test_fake_clock_records_sleeps(void **state)
{
        struct clock_fake f;
        struct clock_source *c = &f.source;

        clock_fake_init(&f, 1000 * USEC_PER_SEC);
        assert_int_equal(clock_now(c), 1000 * USEC_PER_SEC);
        clock_sleep(c, 5 * USEC_PER_SEC);
        clock_sleep(c, 15 * USEC_PER_SEC);
        assert_int_equal(f.n_sleeps, 2);
        assert_int_equal(f.sleeps[0], 5 * USEC_PER_SEC);
        assert_int_equal(f.sleeps[1], 15 * USEC_PER_SEC);
        assert_int_equal(clock_now(c), 1020 * USEC_PER_SEC);
        assert_int_equal(clock_monotonic(c), 1020 * USEC_PER_SEC);
        clock_fake_advance(&f, 3600 * USEC_PER_SEC);
        assert_int_equal(clock_now(c), 4620 * USEC_PER_SEC);
        assert_int_equal(f.n_sleeps, 2);
}

static void test_fake_clock_counts_past_capacity(void **state)
{
        struct clock_fake f;

        clock_fake_init(&f, 0);
        for (int i = 0; i < CLOCK_FAKE_MAX_SLEEPS + 10; i++)
                clock_sleep(&f.source, 1);
        assert_int_equal(f.n_sleeps, CLOCK_FAKE_MAX_SLEEPS + 10);
        assert_int_equal(clock_now(&f.source), CLOCK_FAKE_MAX_SLEEPS + 10);
}

static void test_real_clock_moves_forward(void **state)
{
        struct clock_source *c = clock_real();
        usec_t a = clock_monotonic(c), b;

        clock_sleep(c, 2 * USEC_PER_MSEC);
        b = clock_monotonic(c);
        assert_true(b - a >= 2 * USEC_PER_MSEC);
        /* the wall clock is past 2020 */
        assert_true(clock_now(c) > (usec_t)1577836800 * USEC_PER_SEC);
        /* non-positive sleeps return at once */
        clock_sleep(c, 0);
        clock_sleep(c, -5);
}

TEST_MAIN(cmocka_unit_test(test_fake_clock_records_sleeps),
          cmocka_unit_test(test_fake_clock_counts_past_capacity),
          cmocka_unit_test(test_real_clock_moves_forward))
