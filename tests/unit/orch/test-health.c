/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tests.h"

#include "health.h"
#include "json.h"
#include "orch-fixture.h"

static const struct health_limits limits = {.max_attempts = 3, .stable_usec = 3600 * USEC_PER_SEC};

static void add(struct container_list *l, const char *name, enum container_state state, int tier)
{
        struct container *c = &l->items[l->n++];

        *c = (struct container){
            .name = strdup(name),
            .id = strdup(name),
            .image = strdup("localhost/x:1"),
            .state = state,
            .exit_code = state == CONTAINER_RUNNING ? 0 : 1,
            .managed = true,
            .tier = tier,
            .grace_s = 30,
            .stop_timeout_s = -1,
        };
}

static const struct health_action *find(const struct health_plan *p, const char *name)
{
        for (size_t i = 0; i < p->n; i++)
                if (streq(p->actions[i].name, name))
                        return &p->actions[i];
        fail_msg("no action for %s", name);
        return NULL;
}

static void test_health_monitor_tier_ordering(void **state)
{
        struct container_list l = {.items = calloc(8, sizeof(struct container))};
        struct health_plan p = {};
        const char *restarted[8];
        size_t n = 0;

        add(&l, "webapp", CONTAINER_EXITED, TIER_APP);
        add(&l, "proxy", CONTAINER_EXITED, TIER_INFRA);
        add(&l, "postgres", CONTAINER_EXITED, TIER_DATABASE);
        add(&l, "lnd", CONTAINER_STOPPED, TIER_APP);
        add(&l, "redis", CONTAINER_CREATED, TIER_DATABASE);
        add(&l, "dns", CONTAINER_RUNNING, TIER_INFRA);
        add(&l, "foreign", CONTAINER_EXITED, TIER_DATABASE);
        l.items[l.n - 1].managed = false; /* not ours */
        add(&l, "untiered", CONTAINER_EXITED, -1);

        assert_int_equal(health_plan(&l, NULL, NULL, &limits, FIXTURE_START_USEC, &p), 0);
        assert_int_equal(p.n, 7); /* the unmanaged one is left out */
        for (size_t i = 0; i < p.n; i++) {
                if (i > 0)
                        assert_true(p.actions[i - 1].tier <= p.actions[i].tier);
                if (p.actions[i].verdict == HEALTH_RESTART)
                        restarted[n++] = p.actions[i].name;
        }
        /* databases, then infrastructure, then apps (by name within a tier) */
        assert_int_equal(n, 6);
        assert_string_equal(restarted[0], "postgres");
        assert_string_equal(restarted[1], "redis");
        assert_string_equal(restarted[2], "proxy");
        assert_string_equal(restarted[3], "lnd");
        assert_string_equal(restarted[4], "untiered"); /* no tier: app */
        assert_string_equal(restarted[5], "webapp");
        assert_int_equal(find(&p, "dns")->verdict, HEALTH_SKIP);
        assert_string_equal(find(&p, "dns")->reason, "running");
        assert_non_null(strstr(find(&p, "postgres")->reason, "exit code 1 (attempt 1 of 3)"));
        health_plan_done(&p);
        container_list_done(&l);
}

static void test_health_monitor_tier_ordering_through_podman(void **state)
{
        struct fixture *f = *state;
        struct health_plan p = {};
        char *error = NULL;
        size_t first_start;

        fixture_install(f, "webapp", TIER_APP);
        fixture_install(f, "postgres", TIER_DATABASE);
        fixture_install(f, "proxy", TIER_INFRA);
        for (const char *const *n = (const char *const[]){"webapp", "postgres", "proxy", NULL}; *n;
             n++)
                assert_int_equal(mock_podman_crash(&f->mock, *n, 137), 0);
        first_start = f->mock.n_calls;
        assert_int_equal(orch_health(f->orch, true, &p, &error), 0);
        health_plan_done(&p);
        /* the starts reached podman in tier order */
        {
                const char *want[] = {"start postgres", "start proxy", "start webapp"};
                size_t w = 0;
                for (size_t i = first_start; i < f->mock.n_calls; i++)
                        if (startswith(f->mock.calls[i], "start "))
                                assert_string_equal(f->mock.calls[i], want[w++]);
                assert_int_equal(w, 3);
        }
        assert_int_equal(mock_podman_find(&f->mock, "webapp")->state, CONTAINER_RUNNING);
}

static void test_health_monitor_skips_user_stopped(void **state)
{
        struct fixture *f = *state;
        struct health_plan p = {};
        char *error = NULL;

        fixture_install(f, "electrs", TIER_APP);
        fixture_install(f, "lnd", TIER_APP);
        assert_int_equal(orch_stop(f->orch, "electrs", &error), 0);
        assert_int_equal(mock_podman_crash(&f->mock, "lnd", 1), 0);

        /* the set is persisted: a new manager sees it */
        fixture_orch(f);
        assert_true(nameset_contains(&f->orch->user_stopped, "electrs"));
        assert_int_equal(orch_health(f->orch, true, &p, &error), 0);
        assert_int_equal(find(&p, "electrs")->verdict, HEALTH_SKIP);
        assert_string_equal(find(&p, "electrs")->reason, "stopped by the user");
        assert_int_equal(find(&p, "lnd")->verdict, HEALTH_RESTART);
        health_plan_done(&p);
        assert_int_equal(mock_podman_find(&f->mock, "electrs")->state, CONTAINER_STOPPED);
        assert_int_equal(mock_podman_find(&f->mock, "lnd")->state, CONTAINER_RUNNING);
        assert_int_equal(mock_podman_count_calls(&f->mock, "start electrs"), 1); /* install only */

        /* a start through the CLI/API clears the mark */
        assert_int_equal(orch_start(f->orch, "electrs", &error), 0);
        assert_false(nameset_contains(&f->orch->user_stopped, "electrs"));
        fixture_orch(f);
        assert_false(nameset_contains(&f->orch->user_stopped, "electrs"));
}

static void test_health_monitor_max_attempts(void **state)
{
        struct fixture *f = *state;
        struct health_plan p = {};
        char *error = NULL;
        const struct health_action *a;

        fixture_install(f, "lnd", TIER_APP);
        /* crash right after each restart, 3 times */
        for (unsigned i = 1; i <= 3; i++) {
                clock_fake_advance(&f->clock, 60 * USEC_PER_SEC);
                assert_int_equal(mock_podman_crash(&f->mock, "lnd", 2), 0);
                assert_int_equal(orch_health(f->orch, true, &p, &error), 0);
                a = find(&p, "lnd");
                assert_int_equal(a->verdict, HEALTH_RESTART);
                assert_int_equal(a->attempts, i - 1);
                health_plan_done(&p);
                assert_int_equal(tracker_find(&f->orch->tracker, "lnd")->attempts, i);
        }
        /* the 4th crash: given up, notified once, not restarted */
        clock_fake_advance(&f->clock, 60 * USEC_PER_SEC);
        assert_int_equal(mock_podman_crash(&f->mock, "lnd", 2), 0);
        assert_int_equal(orch_health(f->orch, true, &p, &error), 0);
        a = find(&p, "lnd");
        assert_int_equal(a->verdict, HEALTH_NOTIFY);
        assert_non_null(strstr(a->reason, "after 3 restarts"));
        health_plan_done(&p);
        assert_int_equal(mock_podman_find(&f->mock, "lnd")->state, CONTAINER_EXITED);
        assert_int_equal(mock_podman_count_calls(&f->mock, "start lnd"), 4);

        /* the notification is persisted */
        {
                json_t *j = NULL, *list;
                assert_int_equal(json_load_at(f->dir_fd, ORCH_NOTIFICATIONS_FILE, &j, NULL), 0);
                list = json_object_get(j, "notifications");
                assert_int_equal(json_array_size(list), 1);
                assert_string_equal(
                    json_string_value(json_object_get(json_array_get(list, 0), "name")), "lnd");
                assert_non_null(
                    strstr(json_string_value(json_object_get(json_array_get(list, 0), "message")),
                           "giving up"));
                json_decref(j);
        }

        /* next pass (even after a manager restart): silent skip */
        fixture_orch(f);
        assert_int_equal(orch_health(f->orch, true, &p, &error), 0);
        a = find(&p, "lnd");
        assert_int_equal(a->verdict, HEALTH_SKIP);
        assert_non_null(strstr(a->reason, "given up"));
        health_plan_done(&p);
        assert_int_equal(mock_podman_count_calls(&f->mock, "start lnd"), 4);

        /* still one notification */
        {
                json_t *j = NULL;
                assert_int_equal(json_load_at(f->dir_fd, ORCH_NOTIFICATIONS_FILE, &j, NULL), 0);
                assert_int_equal(json_array_size(json_object_get(j, "notifications")), 1);
                json_decref(j);
        }

        /* a plan without apply changes nothing */
        assert_int_equal(orch_health(f->orch, false, &p, &error), 0);
        health_plan_done(&p);
        assert_int_equal(mock_podman_count_calls(&f->mock, "start lnd"), 4);

        /* a user start gives it a fresh count */
        assert_int_equal(orch_start(f->orch, "lnd", &error), 0);
        assert_int_equal(tracker_find(&f->orch->tracker, "lnd")->attempts, 0);
        assert_null(error);
}

static void test_health_monitor_stable_run_clears(void **state)
{
        struct fixture *f = *state;
        struct health_plan p = {};
        char *error = NULL;

        fixture_install(f, "lnd", TIER_APP);
        for (unsigned i = 0; i < 3; i++) {
                assert_int_equal(mock_podman_crash(&f->mock, "lnd", 2), 0);
                assert_int_equal(orch_health(f->orch, true, &p, &error), 0);
                health_plan_done(&p);
        }
        assert_int_equal(tracker_find(&f->orch->tracker, "lnd")->attempts, 3);
        /* it stays up for an hour: a pass clears the counters */
        clock_fake_advance(&f->clock, 3601 * USEC_PER_SEC);
        assert_int_equal(orch_health(f->orch, true, &p, &error), 0);
        assert_int_equal(find(&p, "lnd")->verdict, HEALTH_SKIP);
        health_plan_done(&p);
        assert_int_equal(tracker_find(&f->orch->tracker, "lnd")->attempts, 0);
        /* so the next crash is restarted again */
        assert_int_equal(mock_podman_crash(&f->mock, "lnd", 2), 0);
        assert_int_equal(orch_health(f->orch, true, &p, &error), 0);
        assert_int_equal(find(&p, "lnd")->verdict, HEALTH_RESTART);
        health_plan_done(&p);
}

static void test_notifications_are_bounded(void **state)
{
        struct fixture *f = *state;
        json_t *j = NULL, *list;
        char msg[32];

        assert_int_equal(
            write_file_atomic_at(f->dir_fd, ORCH_NOTIFICATIONS_FILE, "{\"notif", 7, 0644), 0);
        fixture_orch(f);
        for (int i = 0; i < ORCH_NOTIFICATIONS_MAX + 5; i++) {
                snprintf(msg, sizeof(msg), "message %d", i);
                assert_int_equal(orch_notify(f->orch, "x", msg), 0);
        }
        /* the corrupt one was set aside and said so */
        assert_int_equal(f->orch->n_warnings, 1);
        assert_int_equal(json_load_at(f->dir_fd, ORCH_NOTIFICATIONS_FILE, &j, NULL), 0);
        list = json_object_get(j, "notifications");
        assert_int_equal(json_array_size(list), ORCH_NOTIFICATIONS_MAX);
        assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "message")),
                            "message 5");
        json_decref(j);
}

/* A stop in three steps: the mark is on disk before the wait, the wait
 * touches only the runtime it is given, the end records the result. */
static void test_stop_in_steps(void **state)
{
        struct fixture *f = *state;
        struct orch_stopping st = {};
        char *error = NULL;

        fixture_install(f, "electrs", TIER_APP);
        fixture_install(f, "lnd", TIER_APP);
        assert_int_equal(orch_stop_begin(f->orch, ORCH_STOP, "electrs", &st, &error), 0);
        assert_true(st.running);
        assert_false(st.native);
        assert_int_equal(st.grace, policy_grace_for(&f->policy, "electrs", "localhost/electrs:1"));
        assert_int_equal(mock_podman_find(&f->mock, "electrs")->state, CONTAINER_RUNNING);
        fixture_orch(f); /* what a monitor pass during the wait would load */
        assert_true(nameset_contains(&f->orch->user_stopped, "electrs"));
        assert_int_equal(orch_stop_wait(&st, f->pm, NULL, &error), 0);
        assert_int_equal(mock_podman_find(&f->mock, "electrs")->state, CONTAINER_STOPPED);
        assert_int_equal(orch_stop_end(f->orch, &st, &error), 0);
        orch_stopping_done(&st);

        /* an uninstall of a stopped one has no stop to wait for */
        assert_int_equal(orch_stop_begin(f->orch, ORCH_UNINSTALL, "electrs", &st, &error), 0);
        assert_false(st.running);
        assert_int_equal(orch_stop_wait(&st, f->pm, NULL, &error), 0);
        assert_int_equal(orch_stop_end(f->orch, &st, &error), 0);
        orch_stopping_done(&st);
        assert_null(mock_podman_find(&f->mock, "electrs"));
        assert_false(nameset_contains(&f->orch->user_stopped, "electrs"));

        /* a restart ends running, not user-stopped */
        assert_int_equal(orch_stop_begin(f->orch, ORCH_RESTART, "lnd", &st, &error), 0);
        assert_int_equal(orch_stop_wait(&st, f->pm, NULL, &error), 0);
        assert_int_equal(mock_podman_find(&f->mock, "lnd")->state, CONTAINER_STOPPED);
        assert_int_equal(orch_stop_end(f->orch, &st, &error), 0);
        orch_stopping_done(&st);
        assert_int_equal(mock_podman_find(&f->mock, "lnd")->state, CONTAINER_RUNNING);

        /* not ours, or not there: refused before anything happens */
        assert_int_equal(orch_stop_begin(f->orch, ORCH_STOP, "nothing", &st, &error), -ENOENT);
        assert_non_null(strstr(error, "no package 'nothing'"));
        free(error);
}

TEST_MAIN(cmocka_unit_test(test_health_monitor_tier_ordering),
          FIXTURE_TEST(test_notifications_are_bounded),
          FIXTURE_TEST(test_health_monitor_tier_ordering_through_podman),
          FIXTURE_TEST(test_health_monitor_skips_user_stopped), FIXTURE_TEST(test_stop_in_steps),
          FIXTURE_TEST(test_health_monitor_max_attempts),
          FIXTURE_TEST(test_health_monitor_stable_run_clears))
