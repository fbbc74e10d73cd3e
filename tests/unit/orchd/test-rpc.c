/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tests.h"

#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>

#include "orch-fixture.h"
#include "rpc.h"

#define IMAGE "localhost/web:1"

struct rpc_fixture {
        struct fixture *f;
        struct rpc_server s;
};

static int rpc_setup(void **state)
{
        struct rpc_fixture *rf = calloc(1, sizeof(*rf));
        void *fs = NULL;

        assert_non_null(rf);
        fixture_setup(&fs);
        rf->f = fs;
        assert_int_equal(mock_podman_add_image(&rf->f->mock, IMAGE), 0);
        assert_int_equal(rpc_server_init(&rf->s, fixture_orch(rf->f), "9.9", rf->f->dir, 30), 0);
        *state = rf;
        return 0;
}

static int rpc_teardown(void **state)
{
        struct rpc_fixture *rf = *state;
        void *fs = rf->f;

        rpc_server_done(&rf->s);
        fixture_teardown(&fs);
        free(rf);
        return 0;
}

/* Sends body, returns the parsed response (NULL when there is none). */
static json_t *call(struct rpc_fixture *rf, const char *body)
{
        char *out = NULL;
        json_t *j;

        assert_int_equal(rpc_handle(&rf->s, body, strlen(body), &out), 0);
        if (!out)
                return NULL;
        j = json_loads(out, 0, NULL);
        if (!j)
                fail_msg("response does not parse: %s", out);
        free(out);
        return j;
}

/* Asserts an error response with code (and, if field, data.field) and
 * returns its message (valid while j lives). */
static const char *expect_error(json_t *j, int code, const char *field)
{
        json_t *e;

        assert_non_null(j);
        e = json_object_get(j, "error");
        if (!e)
                fail_msg("expected error %d, got %s", code, json_dumps(j, 0));
        assert_null(json_object_get(j, "result"));
        assert_string_equal(json_string_value(json_object_get(j, "jsonrpc")), "2.0");
        assert_int_equal(json_integer_value(json_object_get(e, "code")), code);
        if (field)
                assert_string_equal(
                    json_string_value(json_object_get(json_object_get(e, "data"), "field")), field);
        return json_string_value(json_object_get(e, "message"));
}

static json_t *expect_result(json_t *j)
{
        assert_non_null(j);
        if (json_object_get(j, "error"))
                fail_msg("unexpected error: %s", json_dumps(j, 0));
        assert_non_null(json_object_get(j, "result"));
        return json_object_get(j, "result");
}

static void test_rpc_parse_error(void **state)
{
        struct rpc_fixture *rf = *state;
        json_t *j;

        j = call(rf, "{\"jsonrpc\": \"2.0\", \"method\": ");
        assert_non_null(strstr(expect_error(j, RPC_PARSE_ERROR, NULL), "parse error"));
        assert_true(json_is_null(json_object_get(j, "id")));
        json_decref(j);
        j = call(rf, "");
        expect_error(j, RPC_PARSE_ERROR, NULL);
        json_decref(j);
        /* duplicate keys are not a request we can trust */
        j = call(rf, "{\"jsonrpc\":\"2.0\",\"method\":\"server.info\",\"id\":1,\"id\":2}");
        expect_error(j, RPC_PARSE_ERROR, NULL);
        json_decref(j);
}

static void test_rpc_invalid_request(void **state)
{
        struct rpc_fixture *rf = *state;
        static const char *const bad[] = {
            "42",
            "\"server.info\"",
            "{\"method\": \"server.info\", \"id\": 1}",
            "{\"jsonrpc\": \"1.0\", \"method\": \"server.info\", \"id\": 1}",
            "{\"jsonrpc\": 2.0, \"method\": \"server.info\", \"id\": 1}",
            "{\"jsonrpc\": \"2.0\", \"method\": 7, \"id\": 1}",
            "{\"jsonrpc\": \"2.0\", \"id\": 1}",
            "{\"jsonrpc\": \"2.0\", \"method\": \"server.info\", \"id\": {\"a\": 1}}",
            "{\"jsonrpc\": \"2.0\", \"method\": \"server.info\", \"id\": 1.5}",
            "{\"jsonrpc\": \"2.0\", \"method\": \"server.info\", \"id\": 1, \"extra\": 1}",
            "[]",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                json_t *j = call(rf, bad[i]);
                assert_non_null(
                    strstr(expect_error(j, RPC_INVALID_REQUEST, NULL), "invalid request"));
                json_decref(j);
        }
        /* the id comes back when it was a valid one */
        json_t *j = call(rf, "{\"jsonrpc\": \"1.0\", \"method\": \"server.info\", \"id\": \"x\"}");
        expect_error(j, RPC_INVALID_REQUEST, NULL);
        assert_string_equal(json_string_value(json_object_get(j, "id")), "x");
        json_decref(j);
}

static void test_rpc_method_not_found(void **state)
{
        struct rpc_fixture *rf = *state;
        json_t *j =
            call(rf, "{\"jsonrpc\": \"2.0\", \"method\": \"package.frobnicate\", \"id\": 3}");

        assert_non_null(strstr(expect_error(j, RPC_METHOD_NOT_FOUND, NULL), "package.frobnicate"));
        assert_int_equal(json_integer_value(json_object_get(j, "id")), 3);
        json_decref(j);
}

static void test_rpc_invalid_params(void **state)
{
        struct rpc_fixture *rf = *state;
        static const struct {
                const char *params;
                const char *field;
        } bad[] = {
            {"[\"web\"]", "params"},
            {"{}", "id"},
            {"{\"id\": 7, \"dockerImage\": \"" IMAGE "\"}", "id"},
            {"{\"id\": \"a/b\", \"dockerImage\": \"" IMAGE "\"}", "id"},
            {"{\"id\": \"../etc\", \"dockerImage\": \"" IMAGE "\"}", "id"},
            {"{\"id\": \"web;rm -rf /\", \"dockerImage\": \"" IMAGE "\"}", "id"},
            {"{\"id\": \"$(reboot)\", \"dockerImage\": \"" IMAGE "\"}", "id"},
            {"{\"id\": \"web`id`\", \"dockerImage\": \"" IMAGE "\"}", "id"},
            {"{\"id\": \"-web\", \"dockerImage\": \"" IMAGE "\"}", "id"},
            {"{\"id\": \"\", \"dockerImage\": \"" IMAGE "\"}", "id"},
            {"{\"id\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", "
             "\"dockerImage\": \"" IMAGE "\"}",
             "id"},
            {"{\"id\": \"web\"}", "dockerImage"},
            {"{\"id\": \"web\", \"dockerImage\": 12}", "dockerImage"},
            {"{\"id\": \"web\", \"dockerImage\": \"--privileged\"}", "dockerImage"},
            {"{\"id\": \"web\", \"dockerImage\": \"a b\"}", "dockerImage"},
            {"{\"id\": \"web\", \"dockerImage\": \"" IMAGE "\", \"tier\": \"frontend\"}", "tier"},
            {"{\"id\": \"web\", \"dockerImage\": \"" IMAGE "\", \"tier\": 0}", "tier"},
            {"{\"id\": \"web\", \"dockerImage\": \"" IMAGE "\", \"grace\": \"30\"}", "grace"},
            {"{\"id\": \"web\", \"dockerImage\": \"" IMAGE "\", \"grace\": -1}", "grace"},
            {"{\"id\": \"web\", \"dockerImage\": \"" IMAGE "\", \"grace\": 2.5}", "grace"},
            {"{\"id\": \"web\", \"dockerImage\": \"" IMAGE "\", \"command\": \"sh -c x\"}",
             "command"},
            {"{\"id\": \"web\", \"dockerImage\": \"" IMAGE "\", \"command\": [1]}", "command"},
            {"{\"id\": \"web\", \"dockerImage\": \"" IMAGE "\", \"command\": []}", "command"},
            {"{\"id\": \"web\", \"dockerImage\": \"" IMAGE "\", \"network\": \"--x\"}", "network"},
            {"{\"id\": \"web\", \"dockerImage\": \"" IMAGE "\", \"pull\": \"sometimes\"}", "pull"},
            {"{\"id\": \"web\", \"dockerImage\": \"" IMAGE "\", \"image\": \"x\"}", "image"},
            /* of two bad fields, the first in the checking order is named */
            {"{\"id\": \"web\", \"dockerImage\": \"" IMAGE "\", \"grace\": -1, \"tier\": 0}",
             "tier"},
            {"{\"id\": \"web\", \"dockerImage\": 1, \"command\": [], \"pull\": \"x\"}",
             "dockerImage"},
            {"{\"id\": \"web\", \"dockerImage\": \"" IMAGE "\", \"command\": [], \"pull\": \"x\"}",
             "pull"},
        };
        char body[1024];

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                json_t *j;
                snprintf(
                    body, sizeof(body),
                    "{\"jsonrpc\":\"2.0\",\"method\":\"package.install\",\"params\":%s,\"id\":1}",
                    bad[i].params);
                j = call(rf, body);
                assert_non_null(
                    strstr(expect_error(j, RPC_INVALID_PARAMS, bad[i].field), bad[i].field));
                json_decref(j);
        }
        /* nothing was created by any of them */
        assert_int_equal(rf->f->mock.n_containers, 0);
        assert_int_equal(mock_podman_count_calls(&rf->f->mock, "create"), 0);

        /* the other methods check their params the same way */
        json_t *j = call(rf, "{\"jsonrpc\":\"2.0\",\"method\":\"package.stop\",\"params\":{\"id\":"
                             "\"a b\"},\"id\":1}");
        expect_error(j, RPC_INVALID_PARAMS, "id");
        json_decref(j);
        j = call(rf, "{\"jsonrpc\":\"2.0\",\"method\":\"container.list\",\"params\":{\"all\":true},"
                     "\"id\":1}");
        expect_error(j, RPC_INVALID_PARAMS, "all");
        json_decref(j);
}

static void test_rpc_id_valid(void **state)
{
        assert_true(rpc_id_valid("web"));
        assert_true(rpc_id_valid("bitcoin-core_2.0"));
        assert_false(rpc_id_valid(""));
        assert_false(rpc_id_valid("a/b"));
        assert_false(rpc_id_valid(".hidden"));
        assert_false(rpc_id_valid("a b"));
        assert_false(rpc_id_valid("a|b"));
        assert_false(rpc_id_valid("a'b"));
        assert_false(rpc_id_valid("a\nb"));
}

static json_t *install_web(struct rpc_fixture *rf)
{
        return call(rf, "{\"jsonrpc\":\"2.0\",\"method\":\"package.install\",\"params\":{\"id\":"
                        "\"web\",\"dockerImage\":\"" IMAGE "\",\"tier\":\"infra\",\"grace\":2,"
                        "\"command\":[\"/bin/httpd\",\"-f\"]},\"id\":\"i1\"}");
}

static const char *find_state(json_t *list, const char *name)
{
        size_t i;
        json_t *c;

        json_array_foreach(list, i, c)
        {
                if (streq(json_string_value(json_object_get(c, "name")), name))
                        return json_string_value(json_object_get(c, "state"));
        }
        return NULL;
}

static void test_rpc_package_lifecycle(void **state)
{
        struct rpc_fixture *rf = *state;
        struct mock_container *mc;
        json_t *j, *r;

        j = install_web(rf);
        r = expect_result(j);
        assert_string_equal(json_string_value(json_object_get(j, "id")), "i1");
        assert_string_equal(json_string_value(json_object_get(r, "name")), "web");
        assert_string_equal(json_string_value(json_object_get(r, "state")), "running");
        assert_string_equal(json_string_value(json_object_get(r, "tier")), "infra");
        assert_int_equal(json_integer_value(json_object_get(r, "grace_seconds")), 2);
        json_decref(j);
        mc = mock_podman_find(&rf->f->mock, "web");
        assert_non_null(mc);
        assert_string_equal(mc->command[0], "/bin/httpd");
        /* the image was local: no pull */
        assert_int_equal(rf->f->mock.n_pulls, 0);

        /* a second install of the same id fails and leaves the first alone */
        j = install_web(rf);
        assert_non_null(strstr(expect_error(j, RPC_ERROR_FAILED, NULL), "exists already"));
        json_decref(j);
        assert_int_equal(mock_podman_find(&rf->f->mock, "web")->state, CONTAINER_RUNNING);

        j = call(rf, "{\"jsonrpc\":\"2.0\",\"method\":\"container.list\",\"id\":2}");
        r = expect_result(j);
        assert_int_equal(json_array_size(r), 1);
        assert_string_equal(find_state(r, "web"), "running");
        json_decref(j);

        j = call(rf, "{\"jsonrpc\":\"2.0\",\"method\":\"package.stop\",\"params\":{\"id\":\"web\"},"
                     "\"id\":3}");
        r = expect_result(j);
        assert_string_not_equal(json_string_value(json_object_get(r, "state")), "running");
        json_decref(j);
        assert_int_equal(mock_podman_find(&rf->f->mock, "web")->last_stop_t, 2);
        assert_true(nameset_contains(&rf->f->orch->user_stopped, "web"));

        /* the health monitor leaves a user-stopped package alone */
        assert_int_equal(rpc_health_pass(&rf->s, NULL, NULL), 0);
        assert_int_not_equal(mock_podman_find(&rf->f->mock, "web")->state, CONTAINER_RUNNING);

        j = call(rf,
                 "{\"jsonrpc\":\"2.0\",\"method\":\"package.start\",\"params\":{\"id\":\"web\"},"
                 "\"id\":4}");
        assert_string_equal(json_string_value(json_object_get(expect_result(j), "state")),
                            "running");
        json_decref(j);
        assert_false(nameset_contains(&rf->f->orch->user_stopped, "web"));

        j = call(rf, "{\"jsonrpc\":\"2.0\",\"method\":\"package.restart\",\"params\":{\"id\":"
                     "\"web\"},\"id\":5}");
        assert_string_equal(json_string_value(json_object_get(expect_result(j), "state")),
                            "running");
        json_decref(j);
        assert_int_equal(mock_podman_find(&rf->f->mock, "web")->starts, 3);

        j = call(rf, "{\"jsonrpc\":\"2.0\",\"method\":\"package.uninstall\",\"params\":{\"id\":"
                     "\"web\"},\"id\":6}");
        assert_string_equal(json_string_value(json_object_get(expect_result(j), "state")),
                            "removed");
        json_decref(j);
        assert_null(mock_podman_find(&rf->f->mock, "web"));

        j = call(rf, "{\"jsonrpc\":\"2.0\",\"method\":\"container.list\",\"id\":7}");
        assert_int_equal(json_array_size(expect_result(j)), 0);
        json_decref(j);
}

static void test_rpc_application_errors(void **state)
{
        struct rpc_fixture *rf = *state;
        json_t *j, *data;

        j = call(rf,
                 "{\"jsonrpc\":\"2.0\",\"method\":\"package.stop\",\"params\":{\"id\":\"nope\"},"
                 "\"id\":1}");
        assert_non_null(strstr(expect_error(j, RPC_ERROR_FAILED, NULL), "no package 'nope'"));
        data = json_object_get(json_object_get(j, "error"), "data");
        assert_string_equal(json_string_value(json_object_get(data, "errno")), "ENOENT");
        json_decref(j);

        /* the podman message reaches the caller */
        rf->f->mock.fail_start = true;
        j = install_web(rf);
        assert_non_null(strstr(expect_error(j, RPC_ERROR_FAILED, NULL), "OCI runtime"));
        json_decref(j);
        assert_null(mock_podman_find(&rf->f->mock, "web"));
        rf->f->mock.fail_start = false;

        /* an install that exits during the watch: its exit code and logs */
        rf->f->mock.exit_immediately = true;
        rf->f->mock.exit_code = 3;
        rf->f->mock.exit_logs = "fatal: no config\n";
        j = install_web(rf);
        {
                const char *m = expect_error(j, RPC_ERROR_FAILED, NULL);
                assert_non_null(strstr(m, "exit code 3"));
                assert_non_null(strstr(m, "fatal: no config"));
        }
        json_decref(j);
        assert_int_equal(rf->f->mock.n_containers, 0);
}

static void test_rpc_install_pulls_with_retry(void **state)
{
        struct rpc_fixture *rf = *state;
        json_t *j;

        rf->f->mock.fail_pull = 2;
        j = call(rf, "{\"jsonrpc\":\"2.0\",\"method\":\"package.install\",\"params\":{\"id\":"
                     "\"electrs\",\"dockerImage\":\"registry.example/electrs:1\"},\"id\":1}");
        assert_string_equal(json_string_value(json_object_get(expect_result(j), "state")),
                            "running");
        json_decref(j);
        assert_int_equal(rf->f->mock.n_pulls, 3);
        assert_true(rf->f->clock.n_sleeps >= 2);
        assert_int_equal(rf->f->clock.sleeps[0], 5 * USEC_PER_SEC);
        assert_int_equal(rf->f->clock.sleeps[1], 15 * USEC_PER_SEC);

        /* all attempts fail: the last error, with podman's words */
        rf->f->mock.fail_pull = -1;
        j = call(rf, "{\"jsonrpc\":\"2.0\",\"method\":\"package.install\",\"params\":{\"id\":"
                     "\"lnd\",\"dockerImage\":\"registry.example/lnd:1\"},\"id\":2}");
        {
                const char *m = expect_error(j, RPC_ERROR_FAILED, NULL);
                assert_non_null(strstr(m, "cannot pull 'registry.example/lnd:1' (3 attempts)"));
                assert_non_null(strstr(m, "connection refused"));
        }
        json_decref(j);
        assert_null(mock_podman_find(&rf->f->mock, "lnd"));
        /* the policy's grace period for lnd would have applied; electrs got the default */
        j = call(rf, "{\"jsonrpc\":\"2.0\",\"method\":\"container.list\",\"id\":3}");
        assert_int_equal(json_integer_value(
                             json_object_get(json_array_get(expect_result(j), 0), "grace_seconds")),
                         30);
        json_decref(j);
}

static void test_rpc_batch_and_notifications(void **state)
{
        struct rpc_fixture *rf = *state;
        json_t *j;
        char *out = (char *)"x";
        char big[8192];
        size_t n = 0;

        j = call(rf, "[{\"jsonrpc\":\"2.0\",\"method\":\"server.info\",\"id\":1},"
                     "{\"jsonrpc\":\"2.0\",\"method\":\"container.list\"},"
                     "{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":2},"
                     "17]");
        assert_true(json_is_array(j));
        assert_int_equal(json_array_size(j), 3);
        expect_result(json_array_get(j, 0));
        expect_error(json_array_get(j, 1), RPC_METHOD_NOT_FOUND, NULL);
        expect_error(json_array_get(j, 2), RPC_INVALID_REQUEST, NULL);
        json_decref(j);

        /* only notifications: nothing to answer, but they ran */
        {
                const char *b = "{\"jsonrpc\":\"2.0\",\"method\":\"server.info\"}";
                assert_int_equal(rpc_handle(&rf->s, b, strlen(b), &out), 0);
        }
        assert_null(out);
        out = (char *)"x";
        {
                const char *b = "[{\"jsonrpc\":\"2.0\",\"method\":\"server.info\"}]";
                assert_int_equal(rpc_handle(&rf->s, b, strlen(b), &out), 0);
        }
        assert_null(out);
        assert_int_equal(rf->s.requests, 4);

        /* a batch over the limit is refused whole */
        n += (size_t)snprintf(big + n, sizeof(big) - n, "[");
        for (int i = 0; i <= RPC_BATCH_MAX; i++)
                n +=
                    (size_t)snprintf(big + n, sizeof(big) - n,
                                     "%s{\"jsonrpc\":\"2.0\",\"method\":\"server.info\",\"id\":%d}",
                                     i ? "," : "", i);
        snprintf(big + n, sizeof(big) - n, "]");
        j = call(rf, big);
        assert_non_null(strstr(expect_error(j, RPC_INVALID_REQUEST, NULL), "batch"));
        json_decref(j);
        assert_int_equal(rf->s.requests, 4);
}

static void test_rpc_server_info(void **state)
{
        struct rpc_fixture *rf = *state;
        json_t *j = call(rf, "{\"jsonrpc\":\"2.0\",\"method\":\"server.info\",\"id\":null}");
        json_t *r = expect_result(j);

        assert_true(json_is_null(json_object_get(j, "id")));
        assert_string_equal(json_string_value(json_object_get(r, "name")), "strata orchd");
        assert_string_equal(json_string_value(json_object_get(r, "version")), "9.9");
        assert_int_equal(json_integer_value(json_object_get(r, "pid")), getpid());
        assert_int_equal(json_integer_value(json_object_get(r, "interval_seconds")), 30);
        assert_string_equal(json_string_value(json_object_get(r, "state_dir")), rf->f->dir);
        json_decref(j);
}

static void test_rpc_health(void **state)
{
        struct rpc_fixture *rf = *state;
        struct health_plan p = {};
        json_t *j, *a;

        j = install_web(rf);
        expect_result(j);
        json_decref(j);
        assert_int_equal(mock_podman_crash(&rf->f->mock, "web", 137), 0);

        /* container.health plans, it does not act */
        j = call(rf, "{\"jsonrpc\":\"2.0\",\"method\":\"container.health\",\"id\":1}");
        a = json_object_get(expect_result(j), "actions");
        assert_int_equal(json_array_size(a), 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "action")),
                            "restart");
        json_decref(j);
        assert_int_not_equal(mock_podman_find(&rf->f->mock, "web")->state, CONTAINER_RUNNING);

        /* the daemon's pass does */
        assert_int_equal(rpc_health_pass(&rf->s, &p, NULL), 0);
        assert_int_equal(p.n, 1);
        assert_int_equal(p.actions[0].verdict, HEALTH_RESTART);
        health_plan_done(&p);
        assert_int_equal(mock_podman_find(&rf->f->mock, "web")->state, CONTAINER_RUNNING);
        assert_int_equal(rf->s.health_passes, 1);
        assert_int_equal(tracker_find(&rf->f->orch->tracker, "web")->attempts, 1);
}

static void test_rpc_service_params(void **state)
{
        struct rpc_fixture *rf = *state;
        char body[1024], dir[512];
        json_t *j;

        /* a service dir with a run that is not executable, then one that is */
        snprintf(dir, sizeof(dir), "%s/svc", rf->f->dir);
        test_write(rf->f->dir_fd, "svc/run", "#!/bin/sh\nexec sleep 100\n");
        snprintf(body, sizeof(body),
                 "{\"jsonrpc\":\"2.0\",\"method\":\"package.install\",\"params\":{\"id\":\"svc\","
                 "\"service\":\"%s\"},\"id\":1}",
                 dir);
        j = call(rf, body);
        assert_non_null(
            strstr(expect_error(j, RPC_INVALID_PARAMS, "service"), "not an executable"));
        json_decref(j);

        assert_int_equal(fchmodat(rf->f->dir_fd, "svc/run", 0755, 0), 0);
        /* valid, but this server has no scan dir: an application error */
        j = call(rf, body);
        assert_non_null(strstr(expect_error(j, RPC_ERROR_FAILED, NULL), "--scan-dir"));
        json_decref(j);

        static const struct {
                const char *params;
                const char *field;
        } bad[] = {
            {"{\"id\":\"svc\",\"service\":\"relative/dir\"}", "service"},
            {"{\"id\":\"svc\",\"service\":\"/nonexistent/strata-svc\"}", "service"},
            {"{\"id\":\"svc\",\"service\":\"/tmp/../etc\"}", "service"},
            {"{\"id\":\"svc\",\"service\":7}", "service"},
            {"{\"id\":\"svc\",\"service\":\"/tmp\",\"dockerImage\":\"" IMAGE "\"}", "dockerImage"},
            {"{\"id\":\"svc\",\"service\":\"/tmp\",\"command\":[\"x\"]}", "command"},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                snprintf(
                    body, sizeof(body),
                    "{\"jsonrpc\":\"2.0\",\"method\":\"package.install\",\"params\":%s,\"id\":1}",
                    bad[i].params);
                j = call(rf, body);
                expect_error(j, RPC_INVALID_PARAMS, bad[i].field);
                json_decref(j);
        }
}

static void test_rpc_replace_policy(void **state)
{
        struct rpc_fixture *rf = *state;
        struct policy p = {};

        assert_int_equal(policy_init_default(&p), 0);
        p.default_grace_s = 7;
        assert_int_equal(rpc_replace_policy(&rf->s, &rf->f->policy, &p), 0);
        assert_int_equal(rf->f->policy.default_grace_s, 7);
        policy_done(&p);
}

#define RPC_TEST(t) cmocka_unit_test_setup_teardown(t, rpc_setup, rpc_teardown)

TEST_MAIN(RPC_TEST(test_rpc_parse_error), RPC_TEST(test_rpc_invalid_request),
          RPC_TEST(test_rpc_method_not_found), RPC_TEST(test_rpc_invalid_params),
          cmocka_unit_test(test_rpc_id_valid), RPC_TEST(test_rpc_package_lifecycle),
          RPC_TEST(test_rpc_application_errors), RPC_TEST(test_rpc_install_pulls_with_retry),
          RPC_TEST(test_rpc_batch_and_notifications), RPC_TEST(test_rpc_server_info),
          RPC_TEST(test_rpc_health), RPC_TEST(test_rpc_service_params),
          RPC_TEST(test_rpc_replace_policy))
