/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests.h"

#include "json.h"
#include "orch-fixture.h"

static void test_stop_grace_periods(void **state)
{
        struct fixture *f = *state;
        static const struct {
                const char *name;
                int64_t grace;
        } apps[] = {
            {"bitcoind", 600}, {"bitcoin-knots", 600}, {"bitcoin-core", 600},
            {"lnd", 330},      {"electrs", 30},        {"nginx", 30},
        };
        char *error = NULL;

        /* the defaults */
        for (size_t i = 0; i < ELEMENTSOF(apps); i++)
                assert_int_equal(policy_grace_for(&f->policy, apps[i].name, NULL), apps[i].grace);
        /* found by image name when the id differs */
        assert_int_equal(
            policy_grace_for(&f->policy, "my-node", "docker.io/lightninglabs/lnd:v0.17"), 330);
        assert_int_equal(policy_grace_for(&f->policy, "x", "ghcr.io/a/bitcoind@sha256:00"), 600);

        /* for native s6 services: timeout-kill in milliseconds */
        for (size_t i = 0; i < ELEMENTSOF(apps); i++) {
                _cleanup_free_ char *content = NULL;
                char expect[32];

                assert_int_equal(mkdirat(f->dir_fd, apps[i].name, 0755), 0);
                assert_int_equal(policy_write_s6_timeout_kill_at(&f->policy, f->dir_fd,
                                                                 apps[i].name, apps[i].name),
                                 0);
                snprintf(expect, sizeof(expect), "%s/timeout-kill", apps[i].name);
                assert_int_equal(read_file_at(f->dir_fd, expect, 64, &content, NULL), 0);
                snprintf(expect, sizeof(expect), "%" PRId64 "\n", apps[i].grace * 1000);
                assert_string_equal(content, expect);
        }
        assert_int_equal(policy_s6_timeout_kill_ms(&f->policy, "bitcoind"), 600000);

        /* and they reach podman: create --stop-timeout and stop -t */
        for (size_t i = 0; i < ELEMENTSOF(apps); i++)
                fixture_install(f, apps[i].name, TIER_APP);
        for (size_t i = 0; i < ELEMENTSOF(apps); i++) {
                struct mock_container *c;
                struct container info = {};

                assert_int_equal(orch_stop(f->orch, apps[i].name, &error), 0);
                c = mock_podman_find(&f->mock, apps[i].name);
                assert_int_equal(c->last_stop_t, apps[i].grace);
                assert_int_equal(c->stop_timeout, apps[i].grace);
                assert_int_equal(c->state, CONTAINER_STOPPED);
                assert_int_equal(podman_inspect(f->pm, apps[i].name, &info), 0);
                assert_int_equal(info.stop_timeout_s, apps[i].grace);
                assert_int_equal(info.grace_s, apps[i].grace);
                container_done(&info);
        }
        assert_int_equal(mock_podman_count_calls(&f->mock, "stop -t 600 bitcoind"), 1);
        assert_int_equal(mock_podman_count_calls(&f->mock, "stop -t 330 lnd"), 1);
        assert_int_equal(mock_podman_count_calls(&f->mock, "stop -t 30 nginx"), 1);

        /* restart and uninstall use the grace period too */
        assert_int_equal(orch_start(f->orch, "lnd", &error), 0);
        assert_int_equal(orch_restart(f->orch, "lnd", &error), 0);
        assert_int_equal(mock_podman_count_calls(&f->mock, "stop -t 330 lnd"), 2);
        assert_int_equal(orch_uninstall(f->orch, "lnd", &error), 0);
        assert_int_equal(mock_podman_count_calls(&f->mock, "stop -t 330 lnd"), 3);
        assert_null(mock_podman_find(&f->mock, "lnd"));
        assert_null(error);
}

static int load_string(const char *text, struct policy *ret, char **error)
{
        json_t *j;
        int r;

        assert_int_equal(json_load_buffer("test.json", text, strlen(text), &j, NULL), 0);
        r = policy_load_json(j, "test.json", ret, error);
        json_decref(j);
        return r;
}

static void test_policy_defaults(void **state)
{
        struct policy p;

        assert_int_equal(policy_init_default(&p), 0);
        assert_int_equal(p.default_grace_s, 30);
        assert_int_equal(p.default_tier, TIER_APP);
        assert_int_equal(p.pull_attempts, 3);
        assert_int_equal(policy_pull_delay(&p, 1), 5 * USEC_PER_SEC);
        assert_int_equal(policy_pull_delay(&p, 2), 15 * USEC_PER_SEC);
        assert_int_equal(policy_pull_delay(&p, 3), 15 * USEC_PER_SEC);
        assert_int_equal(p.stable_usec, 3600 * USEC_PER_SEC);
        assert_int_equal(p.max_restart_attempts, 3);
        assert_int_equal(p.install_watch_usec, 10 * USEC_PER_SEC);
        assert_true(TIER_DATABASE < TIER_INFRA && TIER_INFRA < TIER_APP);
        assert_int_equal(TIER_DATABASE, 0);
        assert_int_equal(TIER_APP, 2);
        policy_done(&p);
}

static void test_policy_config_overrides(void **state)
{
        struct policy p;
        char *error = NULL;
        json_t *back;

        assert_int_equal(
            load_string("{\"stop\":{\"default_grace_seconds\":45,\"grace_seconds\":{\"lnd\":400,"
                        "\"postgres\":120}},"
                        "\"tiers\":{\"apps\":{\"postgres\":\"database\",\"traefik\":\"infra\"}},"
                        "\"pull\":{\"attempts\":5,\"delays_seconds\":[1,2.5]},"
                        "\"restart\":{\"stable_seconds\":600,\"max_attempts\":4},"
                        "\"install\":{\"watch_seconds\":0.5,\"log_lines\":5}}",
                        &p, &error),
            0);
        assert_null(error);
        assert_int_equal(policy_grace_for(&p, "lnd", NULL), 400);
        assert_int_equal(policy_grace_for(&p, "bitcoind", NULL), 600); /* default kept */
        assert_int_equal(policy_grace_for(&p, "other", NULL), 45);
        assert_int_equal(policy_tier_for(&p, "postgres", NULL), TIER_DATABASE);
        assert_int_equal(policy_tier_for(&p, "x", "docker.io/library/traefik:2"), TIER_INFRA);
        assert_int_equal(policy_tier_for(&p, "other", NULL), TIER_APP);
        assert_int_equal(p.pull_attempts, 5);
        assert_int_equal(policy_pull_delay(&p, 2), 2500 * USEC_PER_MSEC);
        assert_int_equal(policy_pull_delay(&p, 4), 2500 * USEC_PER_MSEC);
        assert_int_equal(p.stable_usec, 600 * USEC_PER_SEC);
        assert_int_equal(p.max_restart_attempts, 4);
        assert_int_equal(p.install_watch_usec, 500 * USEC_PER_MSEC);
        assert_int_equal(p.install_log_lines, 5);

        /* the effective policy reads back as a config that loads to the same */
        back = policy_to_json(&p);
        assert_non_null(back);
        policy_done(&p);
        assert_int_equal(policy_load_json(back, "back", &p, &error), 0);
        assert_int_equal(policy_grace_for(&p, "lnd", NULL), 400);
        assert_int_equal(policy_pull_delay(&p, 2), 2500 * USEC_PER_MSEC);
        json_decref(back);
        policy_done(&p);
}

static void expect_rejected(const char *text, const char *message)
{
        struct policy p;
        char *error = NULL;

        assert_int_equal(load_string(text, &p, &error), -EINVAL);
        assert_non_null(error);
        if (!strstr(error, message))
                fail_msg("expected '%s' in '%s'", message, error);
        free(error);
}

static void test_policy_config_rejects_bad_input(void **state)
{
        expect_rejected("{\"tiers\":{\"apps\":{\"postgres\":\"databse\"}}}",
                        "'test.json': tiers.apps.postgres: unknown tier 'databse'");
        expect_rejected("{\"tiers\":{\"default\":\"web\"}}", "tiers.default: unknown tier 'web'");
        expect_rejected("{\"stop\":{\"grace_seconds\":{\"lnd\":-5}}}",
                        "'test.json': stop.grace_seconds.lnd: must not be negative (got -5)");
        expect_rejected("{\"stop\":{\"default_grace_seconds\":-1}}",
                        "stop.default_grace_seconds: must not be negative");
        expect_rejected("{\"pull\":{\"delays_seconds\":[5,-15]}}", "pull.delays_seconds[1]");
        expect_rejected("{\"pull\":{\"attempts\":0}}", "pull.attempts: must be between 1");
        expect_rejected("{\"restart\":{\"stable_seconds\":-3600}}",
                        "restart.stable_seconds: must not be negative");
        expect_rejected("{\"restart\":{\"max_atempts\":3}}", "restart.max_atempts: unknown key");
        expect_rejected("{\"install\":{\"watch_seconds\":\"10\"}}",
                        "install.watch_seconds: must be a number");
        expect_rejected("[1]", "must be an object");
}

static void test_policy_load_file(void **state)
{
        char dir[] = "/tmp/strata-test-policy-XXXXXX", path[512];
        struct policy p;
        char *error = NULL;
        int fd;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/config.json", dir);
        assert_int_equal(policy_load_at(AT_FDCWD, path, &p, &error), -ENOENT);
        free(error);
        error = NULL;

        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "{\"stop\": {\n  \"default_grace_seconds\": 12,,\n", 44), 44);
        close(fd);
        assert_int_equal(policy_load_at(AT_FDCWD, path, &p, &error), -EBADMSG);
        assert_non_null(strstr(error, "line 2"));
        free(error);
        error = NULL;

        assert_int_equal(
            write_file_atomic_at(AT_FDCWD, path, "{\"stop\":{\"default_grace_seconds\":12}}",
                                 strlen("{\"stop\":{\"default_grace_seconds\":12}}"), 0644),
            0);
        assert_int_equal(policy_load_at(AT_FDCWD, path, &p, &error), 0);
        assert_int_equal(p.default_grace_s, 12);
        policy_done(&p);
        assert_int_equal(rm_rf_at(AT_FDCWD, dir, RM_ROOT), 0);
}

TEST_MAIN(FIXTURE_TEST(test_stop_grace_periods), cmocka_unit_test(test_policy_defaults),
          cmocka_unit_test(test_policy_config_overrides),
          cmocka_unit_test(test_policy_config_rejects_bad_input),
          cmocka_unit_test(test_policy_load_file))
