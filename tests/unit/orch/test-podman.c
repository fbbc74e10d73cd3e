/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tests.h"

#include "orch-fixture.h"

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

/* What podman 4.3 prints (trimmed of fields the runtime ignores). */
static const char ps_json[] =
    "[\n"
    "  {\n"
    "    \"AutoRemove\": false,\n"
    "    \"Command\": [\"/bin/sleep\", \"1000\"],\n"
    "    \"CreatedAt\": \"Less than a second ago\",\n"
    "    \"Exited\": false,\n"
    "    \"ExitedAt\": -62135596800,\n"
    "    \"ExitCode\": 0,\n"
    "    \"Id\": \"fde69256537d33b1b46a04c831913167fdfd5fa9cd9d9d1a1b8b963da44a5833\",\n"
    "    \"Image\": \"localhost/bb:1\",\n"
    "    \"Labels\": {\"io.strata.managed\": \"1\", \"io.strata.tier\": \"database\",\n"
    "               \"io.strata.grace\": \"600\"},\n"
    "    \"Names\": [\"t1\"],\n"
    "    \"Namespaces\": {\n      \n    },\n"
    "    \"Pid\": 7246,\n"
    "    \"StartedAt\": 1795304458,\n"
    "    \"State\": \"running\",\n"
    "    \"Status\": \"Up Less than a second ago\",\n"
    "    \"Created\": 1795304457\n"
    "  },\n"
    "  {\n"
    "    \"Exited\": true,\n"
    "    \"ExitedAt\": 1795304464,\n"
    "    \"ExitCode\": 137,\n"
    "    \"Id\": \"aa\",\n"
    "    \"Image\": \"docker.io/library/nginx:1\",\n"
    "    \"Labels\": null,\n"
    "    \"Names\": [\"someone-elses\"],\n"
    "    \"StartedAt\": 1795304458,\n"
    "    \"State\": \"exited\",\n"
    "    \"Created\": 1795304400\n"
    "  }\n"
    "]\n";

static const char inspect_json[] =
    "[\n"
    "     {\n"
    "          \"Id\": \"fde69256537d33b1b46a04c831913167fdfd5fa9cd9d9d1a1b8b963da44a5833\",\n"
    "          \"Created\": \"2026-11-21T23:40:58.592383136Z\",\n"
    "          \"Path\": \"/bin/sleep\",\n"
    "          \"State\": {\n"
    "               \"OciVersion\": \"1.0.2-dev\",\n"
    "               \"Status\": \"exited\",\n"
    "               \"Running\": false,\n"
    "               \"ExitCode\": 137,\n"
    "               \"StartedAt\": \"2026-11-21T23:40:58.913279788Z\",\n"
    "               \"FinishedAt\": \"2026-11-22T01:40:59.1+02:00\"\n"
    "          },\n"
    "          \"ImageName\": \"localhost/bb:1\",\n"
    "          \"Name\": \"t1\",\n"
    "          \"Config\": {\n"
    "               \"Labels\": {\"io.strata.managed\": \"1\", \"io.strata.tier\": \"infra\"},\n"
    "               \"StopTimeout\": 7\n"
    "          }\n"
    "     }\n"
    "]\n";

static void test_podman_parse_ps(void **state)
{
        struct container_list l = {};
        const struct container *c;

        assert_int_equal(podman_parse_ps(ps_json, &l), 0);
        assert_int_equal(l.n, 2);
        c = container_list_find(&l, "t1");
        assert_non_null(c);
        assert_int_equal(c->state, CONTAINER_RUNNING);
        assert_true(c->managed);
        assert_int_equal(c->tier, TIER_DATABASE);
        assert_int_equal(c->grace_s, 600);
        assert_int_equal(c->started_at, 1795304458);
        assert_int_equal(c->created_at, 1795304457);
        assert_int_equal(c->finished_at, 0); /* podman's year-1 "never" */
        assert_string_equal(c->image, "localhost/bb:1");
        c = container_list_find(&l, "someone-elses");
        assert_false(c->managed);
        assert_int_equal(c->tier, -1);
        assert_int_equal(c->state, CONTAINER_EXITED);
        assert_int_equal(c->exit_code, 137);
        assert_null(container_list_find(&l, "t2"));
        container_list_done(&l);

        assert_int_equal(podman_parse_ps("[]", &l), 0);
        assert_int_equal(l.n, 0);
        container_list_done(&l);
        assert_int_equal(podman_parse_ps("CONTAINER ID  IMAGE", &l), -EBADMSG);
        assert_int_equal(podman_parse_ps("{}", &l), -EBADMSG);
        assert_int_equal(podman_parse_ps("[{\"Names\": [\"x\"]}]", &l), -EBADMSG); /* no Id */
}

static void test_podman_parse_inspect(void **state)
{
        struct container c = {};

        assert_int_equal(podman_parse_inspect(inspect_json, &c), 0);
        assert_string_equal(c.name, "t1");
        assert_int_equal(c.state, CONTAINER_EXITED);
        assert_int_equal(c.exit_code, 137);
        assert_int_equal(c.stop_timeout_s, 7);
        assert_int_equal(c.tier, TIER_INFRA);
        assert_int_equal(c.grace_s, -1);
        assert_int_equal(c.created_at, 1795304458);
        assert_int_equal(c.started_at, 1795304458);
        assert_int_equal(c.finished_at, 1795304459); /* +02:00 taken into account */
        container_done(&c);
        assert_int_equal(podman_parse_inspect("[]", &c), -ENOENT);
        assert_int_equal(podman_parse_inspect("[{\"Name\": 1}]", &c), -EBADMSG);
        assert_int_equal(podman_parse_inspect("nope", &c), -EBADMSG);
}

static void test_podman_command_lines(void **state)
{
        struct exec_script_rule rules[] = {
            {.argv_prefix = ARGV("podman", "--root", "/r", "image", "exists", "present")},
            {.argv_prefix = ARGV("podman", "--root", "/r", "image", "exists"), .status = 1},
            {.argv_prefix = ARGV("podman", "--root", "/r", "inspect"),
             .status = 125,
             .out = "[]",
             .err = "Error: no such container x\n"},
            {.argv_prefix = ARGV("podman", "--root", "/r", "stop"),
             .status = 125,
             .err = "Error: something broke\n\n"},
            {.argv_prefix = ARGV("podman", "--root", "/r")},
        };
        struct exec_script s;
        struct podman *pm;
        struct container c = {};
        char *line;

        assert_int_equal(exec_script_init(&s, rules, ELEMENTSOF(rules)), 0);
        assert_int_equal(podman_new(&s.executor, ARGV("podman", "--root", "/r"), &pm), 0);

        assert_int_equal(podman_image_exists(pm, "present"), 1);
        assert_int_equal(podman_image_exists(pm, "absent"), 0);
        assert_int_equal(podman_inspect(pm, "x", &c), -ENOENT);
        assert_int_equal(
            podman_create(pm, &(struct container_spec){.name = "web",
                                                       .image = "localhost/bb:1",
                                                       .tier = TIER_INFRA,
                                                       .grace_s = 45,
                                                       .network = "host",
                                                       .command = ARGV("httpd", "-f")}),
            0);
        line = exec_script_call_string(&s, 3);
        assert_string_equal(line, "podman --root /r create --name web --label io.strata.managed=1 "
                                  "--label io.strata.tier=infra --label io.strata.grace=45 "
                                  "--stop-timeout 45 --network host localhost/bb:1 httpd -f");
        free(line);
        assert_int_equal(podman_stop(pm, "web", 45), -EIO);
        assert_string_equal(podman_last_error(pm), "Error: something broke");
        line = exec_script_call_string(&s, 4);
        assert_string_equal(line, "podman --root /r stop -t 45 web");
        free(line);
        assert_int_equal(podman_rm(pm, "web"), 0);
        line = exec_script_call_string(&s, 5);
        assert_string_equal(line, "podman --root /r rm -f web");
        free(line);
        assert_int_equal(podman_stop(pm, "web", -1), -EINVAL);
        assert_int_equal(
            podman_create(pm, &(struct container_spec){.name = "web", .image = "i", .tier = 7}),
            -EINVAL);
        podman_free(pm);
        exec_script_done(&s);

        /* a podman that is not installed */
        assert_int_equal(podman_new(executor_real(), ARGV("/nonexistent/podman"), &pm), 0);
        assert_int_equal(podman_start(pm, "x"), -ENOENT);
        assert_non_null(strstr(podman_last_error(pm), "cannot execute '/nonexistent/podman'"));
        podman_free(pm);
}

static void test_podman_pull_turns_off_retries(void **state)
{
        struct exec_script_rule new_rules[] = {
            {.argv_prefix = ARGV("podman", "pull", "--help"),
             .out = "Options:\n      --quiet   Suppress output\n      --retry uint   number of "
                    "times to retry (default 3)\n      --retry-delay string   delay\n"},
            {.argv_prefix = ARGV("podman")},
        };
        struct exec_script_rule old_rules[] = {
            {.argv_prefix = ARGV("podman", "pull", "--help"),
             .out = "Options:\n      --quiet   Suppress output\n      --tls-verify   tls\n"},
            {.argv_prefix = ARGV("podman")},
        };
        struct exec_script s;
        struct podman *pm;
        char *line;

        /* a podman with --retry: asked once, then every pull says --retry 0 */
        assert_int_equal(exec_script_init(&s, new_rules, ELEMENTSOF(new_rules)), 0);
        assert_int_equal(podman_new(&s.executor, ARGV("podman"), &pm), 0);
        assert_int_equal(podman_pull(pm, "localhost/a:1"), 0);
        assert_int_equal(podman_pull(pm, "localhost/b:1"), 0);
        line = exec_script_call_string(&s, 0);
        assert_string_equal(line, "podman pull --help");
        free(line);
        line = exec_script_call_string(&s, 1);
        assert_string_equal(line, "podman pull --quiet --retry 0 localhost/a:1");
        free(line);
        line = exec_script_call_string(&s, 2);
        assert_string_equal(line, "podman pull --quiet --retry 0 localhost/b:1");
        free(line);
        podman_free(pm);
        exec_script_done(&s);

        /* podman 4 has none: the pull is plain */
        assert_int_equal(exec_script_init(&s, old_rules, ELEMENTSOF(old_rules)), 0);
        assert_int_equal(podman_new(&s.executor, ARGV("podman"), &pm), 0);
        assert_int_equal(podman_pull(pm, "localhost/a:1"), 0);
        line = exec_script_call_string(&s, 1);
        assert_string_equal(line, "podman pull --quiet localhost/a:1");
        free(line);
        podman_free(pm);
        exec_script_done(&s);
}

static void test_mock_podman_behaves_like_podman(void **state)
{
        struct fixture *f = *state;
        struct container_list l = {};
        struct container c = {};
        char *logs = NULL;

        assert_int_equal(podman_image_exists(f->pm, "localhost/a:1"), 0);
        assert_int_equal(podman_pull(f->pm, "localhost/a:1"), 0);
        assert_int_equal(podman_image_exists(f->pm, "localhost/a:1"), 1);
        assert_int_equal(podman_create(f->pm, &(struct container_spec){.name = "a",
                                                                       .image = "localhost/nope:1",
                                                                       .tier = TIER_APP}),
                         -EIO);
        assert_non_null(strstr(podman_last_error(f->pm), "image not known"));
        assert_int_equal(podman_create(f->pm, &(struct container_spec){.name = "a",
                                                                       .image = "localhost/a:1",
                                                                       .tier = TIER_APP,
                                                                       .grace_s = 5}),
                         0);
        assert_int_equal(podman_create(f->pm, &(struct container_spec){.name = "a",
                                                                       .image = "localhost/a:1",
                                                                       .tier = TIER_APP}),
                         -EIO);
        assert_non_null(strstr(podman_last_error(f->pm), "already in use"));
        assert_int_equal(podman_inspect(f->pm, "a", &c), 0);
        assert_int_equal(c.state, CONTAINER_CREATED);
        assert_int_equal(c.created_at, FIXTURE_START_USEC / USEC_PER_SEC);
        container_done(&c);
        clock_fake_advance(&f->clock, 2 * USEC_PER_SEC);
        assert_int_equal(podman_start(f->pm, "a"), 0);
        assert_int_equal(podman_ps(f->pm, &l), 0);
        assert_int_equal(l.n, 1);
        assert_int_equal(l.items[0].state, CONTAINER_RUNNING);
        assert_int_equal(l.items[0].started_at, FIXTURE_START_USEC / USEC_PER_SEC + 2);
        assert_true(l.items[0].managed);
        container_list_done(&l);
        assert_int_equal(podman_logs(f->pm, "a", 5, &logs), 0);
        assert_string_equal(logs, "mock: started\n");
        free(logs);
        assert_int_equal(podman_stop(f->pm, "a", 5), 0);
        assert_int_equal(mock_podman_find(&f->mock, "a")->last_stop_t, 5);
        assert_int_equal(podman_start(f->pm, "missing"), -EIO);
        assert_non_null(strstr(podman_last_error(f->pm), "no such container"));
        assert_int_equal(podman_rm(f->pm, "a"), 0);
        assert_int_equal(podman_rm(f->pm, "a"), 0); /* rm -f of a missing one */
        assert_int_equal(podman_inspect(f->pm, "a", &c), -ENOENT);
        assert_int_equal(f->mock.n_containers, 0);
}

TEST_MAIN(cmocka_unit_test(test_podman_parse_ps), cmocka_unit_test(test_podman_parse_inspect),
          cmocka_unit_test(test_podman_command_lines),
          cmocka_unit_test(test_podman_pull_turns_off_retries),
          FIXTURE_TEST(test_mock_podman_behaves_like_podman))
