/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "macro.h"
#include "mountplan.h"
#include "tests.h"
#include "worker.h"

static void test_default_plan(void **state)
{
        _cleanup_(worker_plan_freep) struct worker_plan *wp = NULL;
        _cleanup_free_ char *err = NULL;
        unsigned binds = 0, tmpfs = 0, ro = 0;
        const struct mount_op *construction = NULL, *xports = NULL;

        assert_int_equal(worker_plan_load(NULL, "/run/w", 4, &wp, &err), 0);
        assert_string_equal(wp->hostname, "strata-worker-4");
        assert_false(wp->network_host);
        assert_false(wp->has_user);
        assert_string_equal(wp->host_dirs[0], "/run/w/packages");
        assert_int_equal(wp->plan->n_ops, 26);
        assert_string_equal(wp->plan->ops[0].dest, "/");
        assert_int_equal(wp->plan->ops[0].type, MOUNT_OP_TMPFS);
        for (size_t i = 0; i < wp->plan->n_ops; i++) {
                const struct mount_op *op = &wp->plan->ops[i];
                binds += op->type == MOUNT_OP_BIND;
                tmpfs += op->type == MOUNT_OP_TMPFS;
                ro += op->type == MOUNT_OP_BIND && (op->flags & MOUNT_PLAN_RO);
                if (streq(op->dest, "/construction"))
                        construction = op;
                if (streq(op->dest, "/xports"))
                        xports = op;
        }
        assert_int_equal(binds, 14);
        assert_int_equal(ro, 11);
        assert_int_equal(tmpfs, 6);
        assert_non_null(construction);
        assert_non_null(strstr(construction->options, "size="));
        assert_non_null(xports);
        assert_string_equal(xports->src, "/run/w/xports");
}

static void test_add_bind_replaces(void **state)
{
        _cleanup_(worker_plan_freep) struct worker_plan *wp = NULL;
        _cleanup_free_ char *err = NULL;
        size_t n;

        assert_int_equal(worker_plan_load(NULL, "/w", 0, &wp, &err), 0);
        n = wp->plan->n_ops;
        assert_int_equal(worker_plan_add_bind(wp, "/src/tree", "/xports", true), 0);
        assert_int_equal(wp->plan->n_ops, n);
        assert_string_equal(wp->plan->ops[n - 1].src, "/src/tree");
        assert_true(wp->plan->ops[n - 1].flags & MOUNT_PLAN_RO);
        assert_int_equal(worker_plan_add_bind(wp, "/src/tree", "/packages", false), 0);
        assert_int_equal(wp->plan->n_ops, n);
        assert_int_equal(worker_plan_add_bind(wp, "/data", "/data", false), 0);
        assert_int_equal(wp->plan->n_ops, n + 1);
        assert_false(wp->plan->ops[n].flags & MOUNT_PLAN_RO);
        assert_true(wp->plan->ops[n].flags & MOUNT_PLAN_CREATE_DEST);
}

static void test_worker_keys(void **state)
{
        static const struct {
                const char *json, *error; /* error after "'FILE': " */
        } cases[] = {
            {"{\"mounts\":[],\"user\":\"build\"}", "field \"user\": not {\"uid\": N, \"gid\": N}"},
            {"{\"mounts\":[],\"user\":{\"uid\":-1,\"gid\":5}}",
             "field \"user\": not {\"uid\": N, \"gid\": N}"},
            {"{\"mounts\":[],\"network\":\"bridge\"}",
             "field \"network\": not \"none\" or \"host\""},
            {"{\"mounts\":[],\"host-dirs\":[\"rel\"]}",
             "field \"host-dirs\": entry 1 is not an absolute path"},
            {"{\"mounts\":[],\"hostnme\":\"x\"}", "field \"hostnme\": unknown field"},
            {"{\"mounts\":[{\"type\":\"tmpfs\",\"dest\":\"/\"},{\"type\":\"bind\","
             "\"src\":\"${WORKER_ROOT}/a\"}]}",
             "operation 2, field \"dest\": missing"},
        };
        _cleanup_free_ char *dir = test_tmpdir(), *path = NULL;
        _cleanup_close_ int dfd = open(dir, O_DIRECTORY | O_CLOEXEC);

        assert_true(asprintf(&path, "%s/p.json", dir) > 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct worker_plan *wp = NULL;
                char *err = NULL, *expected = NULL;

                test_write(dfd, "p.json", cases[i].json);
                assert_int_equal(worker_plan_load(path, "/w", 1, &wp, &err), -EBADMSG);
                assert_null(wp);
                assert_true(asprintf(&expected, "'%s': %s", path, cases[i].error) > 0);
                assert_string_equal(err, expected);
                free(err);
                free(expected);
        }

        test_write(dfd, "p.json",
                   "{\"mounts\":[{\"type\":\"tmpfs\",\"dest\":\"/\"}],\"user\":{\"uid\":1000,"
                   "\"gid\":100},\"network\":\"host\",\"hostname\":\"b${SLOT}\"}");
        {
                _cleanup_(worker_plan_freep) struct worker_plan *wp = NULL;
                _cleanup_free_ char *err = NULL;
                assert_int_equal(worker_plan_load(path, "/w", 9, &wp, &err), 0);
                assert_true(wp->has_user);
                assert_int_equal(wp->uid, 1000);
                assert_int_equal(wp->gid, 100);
                assert_true(wp->network_host);
                assert_string_equal(wp->hostname, "b9");
        }
        test_tmpdir_remove(TAKE_PTR(dir));
}

TEST_MAIN(cmocka_unit_test(test_default_plan), cmocka_unit_test(test_add_bind_replaces),
          cmocka_unit_test(test_worker_keys))
