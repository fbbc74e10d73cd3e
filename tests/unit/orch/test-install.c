/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tests.h"

#include "install.h"
#include "orch-fixture.h"

#define IMAGE "registry.example/app/electrs:0.10"

static void test_pull_retry_backoff(void **state)
{
        struct fixture *f = *state;
        char *error = NULL;

        f->mock.fail_pull = 2; /* fail twice, succeed the third time */
        assert_int_equal(install_pull(f->pm, &f->policy, &f->clock.source, IMAGE, &error), 0);
        assert_null(error);
        assert_int_equal(f->mock.n_pulls, 3);
        assert_true(mock_podman_has_image(&f->mock, IMAGE));
        assert_int_equal(f->clock.n_sleeps, 2);
        assert_int_equal(f->clock.sleeps[0], 5 * USEC_PER_SEC);
        assert_int_equal(f->clock.sleeps[1], 15 * USEC_PER_SEC);
        assert_int_equal(clock_now(&f->clock.source), FIXTURE_START_USEC + 20 * USEC_PER_SEC);

        /* a success at once sleeps nothing */
        f->clock.n_sleeps = 0;
        assert_int_equal(install_pull(f->pm, &f->policy, &f->clock.source, IMAGE, &error), 0);
        assert_int_equal(f->clock.n_sleeps, 0);
        assert_int_equal(f->mock.n_pulls, 4);
}

static void test_pull_all_attempts_fail(void **state)
{
        struct fixture *f = *state;
        char *error = NULL;

        f->mock.fail_pull = -1;
        f->mock.pull_delay_ms = 2000; /* each attempt itself takes 2 s */
        assert_int_equal(install_pull(f->pm, &f->policy, &f->clock.source, IMAGE, &error), -EIO);
        assert_int_equal(f->mock.n_pulls, 3);
        /* the pull delays (on the clock) and the backoff between attempts */
        assert_int_equal(f->clock.n_sleeps, 5);
        assert_int_equal(f->clock.sleeps[1], 5 * USEC_PER_SEC);
        assert_int_equal(f->clock.sleeps[3], 15 * USEC_PER_SEC);
        assert_int_equal(clock_now(&f->clock.source), FIXTURE_START_USEC + 26 * USEC_PER_SEC);
        /* the last error is returned, with what podman said */
        assert_non_null(error);
        assert_non_null(strstr(error, "cannot pull '" IMAGE "' (3 attempts)"));
        assert_non_null(strstr(error, "connection refused"));
        assert_false(mock_podman_has_image(&f->mock, IMAGE));
        free(error);
        error = NULL;

        /* and a failed pull leaves nothing installed */
        f->mock.pull_delay_ms = 0;
        assert_int_equal(
            orch_install(fixture_orch(f),
                         &(struct install_request){
                             .name = "electrs", .image = IMAGE, .tier = TIER_APP, .grace_s = 30},
                         &error),
            -EIO);
        assert_int_equal(f->mock.n_containers, 0);
        free(error);
}

static void test_failsafe_install_rollback(void **state)
{
        struct fixture *f = *state;
        char *error = NULL;

        f->mock.exit_immediately = true;
        f->mock.exit_code = 3;
        f->mock.exit_logs = "loading config\nfatal: cannot open the database\n";
        assert_int_equal(
            orch_install(fixture_orch(f),
                         &(struct install_request){
                             .name = "electrs", .image = IMAGE, .tier = TIER_APP, .grace_s = 30},
                         &error),
            -ESRCH);
        assert_non_null(error);
        assert_non_null(strstr(error, "'electrs' exited with exit code 3"));
        assert_non_null(strstr(error, "it was removed"));
        assert_non_null(strstr(error, "fatal: cannot open the database"));
        assert_non_null(strstr(error, "loading config"));
        /* nothing half-installed stays */
        assert_null(mock_podman_find(&f->mock, "electrs"));
        assert_int_equal(f->mock.n_containers, 0);
        assert_int_equal(mock_podman_count_calls(&f->mock, "rm -f electrs"), 1);
        free(error);
        error = NULL;

        /* a container that dies during the watch (not at once) is caught
         * too: it runs for 3 s, the watch looks every 250 ms */
        f->mock.exit_immediately = false;
        f->mock.exit_after_ms = 3000;
        f->mock.exit_code = 137;
        {
                usec_t before = clock_monotonic(&f->clock.source);
                assert_int_equal(orch_install(f->orch,
                                              &(struct install_request){.name = "electrs",
                                                                        .image = IMAGE,
                                                                        .tier = TIER_APP,
                                                                        .grace_s = 30},
                                              &error),
                                 -ESRCH);
                assert_int_equal(clock_monotonic(&f->clock.source) - before, 3 * USEC_PER_SEC);
        }
        assert_non_null(strstr(error, "'electrs' exited with exit code 137 within 3.0 s"));
        assert_int_equal(f->mock.n_containers, 0);
        free(error);
        error = NULL;
        f->mock.exit_after_ms = 0;

        /* a start failure is rolled back as well */
        f->mock.fail_start = true;
        assert_int_equal(
            orch_install(f->orch,
                         &(struct install_request){
                             .name = "electrs", .image = IMAGE, .tier = TIER_APP, .grace_s = 30},
                         &error),
            -EIO);
        assert_non_null(strstr(error, "cannot start 'electrs'"));
        assert_int_equal(f->mock.n_containers, 0);
        free(error);
        error = NULL;

        /* the watch takes its full period on the clock, then succeeds */
        f->mock.fail_start = false;
        f->clock.n_sleeps = 0;
        {
                usec_t before = clock_monotonic(&f->clock.source);
                assert_int_equal(orch_install(f->orch,
                                              &(struct install_request){.name = "electrs",
                                                                        .image = IMAGE,
                                                                        .tier = TIER_APP,
                                                                        .grace_s = 30},
                                              &error),
                                 0);
                assert_int_equal(clock_monotonic(&f->clock.source) - before, 10 * USEC_PER_SEC);
        }
        assert_int_equal(mock_podman_find(&f->mock, "electrs")->state, CONTAINER_RUNNING);

        /* installing it again is refused and leaves the running one alone */
        assert_int_equal(
            orch_install(f->orch,
                         &(struct install_request){
                             .name = "electrs", .image = IMAGE, .tier = TIER_APP, .grace_s = 30},
                         &error),
            -EEXIST);
        assert_int_equal(mock_podman_find(&f->mock, "electrs")->state, CONTAINER_RUNNING);
        free(error);
}

static void test_failsafe_install_image_missing(void **state)
{
        struct fixture *f = *state;
        char *error = NULL;

        f->mock.image_missing_after_pull = true;
        assert_int_equal(
            orch_install(fixture_orch(f),
                         &(struct install_request){
                             .name = "electrs", .image = IMAGE, .tier = TIER_APP, .grace_s = 30},
                         &error),
            -ENOENT);
        assert_non_null(error);
        assert_non_null(strstr(error, "is not in the image store after a pull"));
        assert_int_equal(f->mock.n_pulls, 1);
        assert_int_equal(mock_podman_count_calls(&f->mock, "create"), 0);
        assert_int_equal(f->mock.n_containers, 0);
        free(error);
}

static void test_install_records_state(void **state)
{
        struct fixture *f = *state;
        struct snapshot s = {};
        const struct tracker_entry *e;

        fixture_install(f, "db", TIER_DATABASE);
        e = tracker_find(&f->orch->tracker, "db");
        assert_non_null(e);
        assert_int_equal(e->last_start, clock_now(&f->clock.source));
        assert_int_equal(snapshot_load_at(f->dir_fd, ORCH_SNAPSHOT_FILE, 0, &s, NULL), 0);
        assert_int_equal(s.n, 1);
        assert_string_equal(s.entries[0].name, "db");
        assert_int_equal(s.entries[0].tier, TIER_DATABASE);
        snapshot_done(&s);
}

TEST_MAIN(FIXTURE_TEST(test_pull_retry_backoff), FIXTURE_TEST(test_pull_all_attempts_fail),
          FIXTURE_TEST(test_failsafe_install_rollback),
          FIXTURE_TEST(test_failsafe_install_image_missing),
          FIXTURE_TEST(test_install_records_state))
