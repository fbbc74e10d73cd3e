/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A mock podman, a fake clock, the default policy and a temp state dir,
 * for the orchestrator's unit tests. Include after tests.h. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "fs.h"
#include "macro.h"
#include "mockpodman.h"
#include "orch.h"
#include "podman.h"
#include "policy.h"

#define FIXTURE_START_USEC ((usec_t)1795300000 * USEC_PER_SEC)

struct fixture {
        struct clock_fake clock;
        struct mock_podman mock;
        struct podman *pm;
        struct policy policy;
        char *dir;
        int dir_fd;
        struct orch *orch;
};

static inline int fixture_setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        clock_fake_init(&f->clock, FIXTURE_START_USEC);
        assert_int_equal(mock_podman_init(&f->mock, &f->clock.source), 0);
        assert_int_equal(
            podman_new(&f->mock.executor, (const char *const[]){"podman", NULL}, &f->pm), 0);
        assert_int_equal(policy_init_default(&f->policy), 0);
        /* on tmpfs when there is one: the engine fsyncs every state save,
         * which on a disk costs milliseconds each */
        f->dir = strdup("/dev/shm/strata-test-orch-XXXXXX");
        assert_non_null(f->dir);
        if (!mkdtemp(f->dir)) {
                free(f->dir);
                assert_int_equal(mkdtemp_malloc("strata-test-orch", &f->dir), 0);
        }
        f->dir_fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(f->dir_fd >= 0);
        *state = f;
        return 0;
}

static inline int fixture_teardown(void **state)
{
        struct fixture *f = *state;

        orch_free(f->orch);
        close(f->dir_fd);
        assert_int_equal(rm_rf_at(AT_FDCWD, f->dir, RM_ROOT), 0);
        free(f->dir);
        policy_done(&f->policy);
        podman_free(f->pm);
        mock_podman_done(&f->mock);
        free(f);
        return 0;
}

/* Opens (or reopens, like a restarted manager) the engine on the state dir. */
static inline struct orch *fixture_orch(struct fixture *f)
{
        char *error = NULL;

        f->orch = orch_free(f->orch);
        if (orch_open(f->dir, f->pm, &f->policy, &f->clock.source, true, &f->orch, &error) < 0)
                fail_msg("orch_open: %s", error);
        free(error);
        return f->orch;
}

/* Installs name from a local image (no pull) and checks it runs. */
static inline void fixture_install(struct fixture *f, const char *name, int tier)
{
        char image[256], *error = NULL;

        snprintf(image, sizeof(image), "localhost/%s:1", name);
        assert_int_equal(mock_podman_add_image(&f->mock, image), 0);
        if (orch_install(fixture_orch(f),
                         &(struct install_request){
                             .name = name,
                             .image = image,
                             .tier = tier,
                             .grace_s = policy_grace_for(&f->policy, name, image),
                             .skip_pull = true,
                         },
                         &error) < 0)
                fail_msg("install of %s: %s", name, error);
        free(error);
        assert_int_equal(mock_podman_find(&f->mock, name)->state, CONTAINER_RUNNING);
}

#define FIXTURE_TEST(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)
