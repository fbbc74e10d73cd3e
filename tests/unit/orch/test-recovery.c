/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <signal.h>
#include <sys/wait.h>

#include "tests.h"

#include "orch-fixture.h"
#include "recovery.h"

/* Leaves a PID file naming a process that is gone: a crashed manager. */
static void fake_crashed_manager(struct fixture *f)
{
        pid_t pid = fork();
        int st;

        assert_true(pid >= 0);
        if (pid == 0) {
                if (recovery_pidfile_write_at(f->dir_fd, ORCH_PID_FILE, getpid()) < 0)
                        _exit(1);
                raise(SIGKILL);
                _exit(2);
        }
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFSIGNALED(st));
}

static void test_crash_recovery_loads_snapshot(void **state)
{
        struct fixture *f = *state;
        struct recovery_plan p = {};
        char *error = NULL;
        bool crashed = true;

        /* a clean start: no PID file, nothing to recover */
        assert_int_equal(orch_recover(fixture_orch(f), false, &crashed, &p, &error), 0);
        assert_false(crashed);
        assert_int_equal(p.n, 0);
        recovery_plan_done(&p);
        /* the manager runs: its PID file blocks a second one */
        assert_int_equal(recovery_pidfile_check_at(f->dir_fd, ORCH_PID_FILE, NULL), 0);

        fixture_install(f, "webapp", TIER_APP);
        fixture_install(f, "postgres", TIER_DATABASE);
        fixture_install(f, "proxy", TIER_INFRA);
        fixture_install(f, "idle", TIER_APP);
        assert_int_equal(orch_uninstall(f->orch, "idle", &error), 0);

        /* the machine goes down with the manager: everything stops */
        fake_crashed_manager(f);
        for (size_t i = 0; i < f->mock.n_containers; i++)
                f->mock.containers[i].state = CONTAINER_EXITED;
        f->mock.containers[0].state = CONTAINER_RUNNING; /* one came back by itself */
        assert_int_equal(recovery_pidfile_check_at(f->dir_fd, ORCH_PID_FILE, NULL), 1);

        assert_int_equal(orch_recover(fixture_orch(f), false, &crashed, &p, &error), 0);
        assert_true(crashed);
        assert_int_equal(p.n, 3);
        assert_string_equal(p.steps[0].name, "postgres");
        assert_string_equal(p.steps[1].name, "proxy");
        assert_string_equal(p.steps[2].name, "webapp");
        assert_true(p.steps[2].skip); /* the one running already */
        assert_string_equal(p.steps[2].reason, "running already");
        assert_false(p.steps[0].skip);
        assert_int_equal(p.steps[0].error, 0);
        recovery_plan_done(&p);
        for (size_t i = 0; i < f->mock.n_containers; i++)
                assert_int_equal(f->mock.containers[i].state, CONTAINER_RUNNING);
        /* in tier order */
        {
                size_t i_db = 0, i_proxy = 0;
                for (size_t i = 0; i < f->mock.n_calls; i++) {
                        if (streq(f->mock.calls[i], "start postgres"))
                                i_db = i;
                        if (streq(f->mock.calls[i], "start proxy"))
                                i_proxy = i;
                }
                assert_true(i_db < i_proxy);
        }

        /* our PID file now: no crash next time, and a second manager is refused */
        assert_int_equal(recovery_pidfile_check_at(f->dir_fd, ORCH_PID_FILE, NULL), 0);
        assert_int_equal(orch_shutdown(f->orch), 0);
        assert_int_equal(orch_recover(fixture_orch(f), false, &crashed, &p, &error), 0);
        assert_false(crashed);
        recovery_plan_done(&p);
}

static void test_crash_recovery_skips_user_stopped(void **state)
{
        struct fixture *f = *state;
        struct recovery_plan p = {};
        struct snapshot s = {};
        struct nameset stopped = {};
        char *error = NULL;
        bool crashed;

        /* pure: the plan */
        s.entries = calloc(3, sizeof(struct snapshot_entry));
        s.entries[s.n++] = (struct snapshot_entry){strdup("lnd"), TIER_APP};
        s.entries[s.n++] = (struct snapshot_entry){strdup("bitcoind"), TIER_APP};
        s.entries[s.n++] = (struct snapshot_entry){strdup("db"), TIER_DATABASE};
        assert_int_equal(nameset_add(&stopped, "lnd"), 1);
        assert_int_equal(recovery_plan(&s, &stopped, &p), 0);
        assert_int_equal(p.n, 3);
        assert_string_equal(p.steps[0].name, "db");
        assert_string_equal(p.steps[1].name, "lnd");
        assert_true(p.steps[1].skip);
        assert_string_equal(p.steps[1].reason, "stopped by the user");
        assert_string_equal(p.steps[2].name, "bitcoind");
        assert_false(p.steps[2].skip);
        recovery_plan_done(&p);
        snapshot_done(&s);
        nameset_done(&stopped);

        /* through the engine: stopped after the snapshot was taken */
        fixture_install(f, "lnd", TIER_APP);
        fixture_install(f, "bitcoind", TIER_APP);
        assert_int_equal(snapshot_load_at(f->dir_fd, ORCH_SNAPSHOT_FILE, 0, &s, NULL), 0);
        assert_int_equal(s.n, 2);
        snapshot_done(&s);
        {
                /* keep that snapshot: the stop happens, then the crash
                 * before the snapshot is rewritten */
                struct snapshot keep = {};
                assert_int_equal(snapshot_load_at(f->dir_fd, ORCH_SNAPSHOT_FILE, 0, &keep, NULL),
                                 0);
                assert_int_equal(orch_stop(f->orch, "lnd", &error), 0);
                assert_int_equal(snapshot_save_at(f->dir_fd, ORCH_SNAPSHOT_FILE, &keep), 0);
                snapshot_done(&keep);
        }
        fake_crashed_manager(f);
        assert_int_equal(mock_podman_crash(&f->mock, "bitcoind", 137), 0);
        assert_int_equal(orch_recover(fixture_orch(f), false, &crashed, &p, &error), 0);
        assert_true(crashed);
        recovery_plan_done(&p);
        assert_int_equal(mock_podman_find(&f->mock, "bitcoind")->state, CONTAINER_RUNNING);
        assert_int_equal(mock_podman_find(&f->mock, "lnd")->state, CONTAINER_STOPPED);
        assert_int_equal(mock_podman_count_calls(&f->mock, "start lnd"), 1); /* install */
}

static void test_crash_recovery_corrupt_snapshot(void **state)
{
        struct fixture *f = *state;
        struct recovery_plan p = {};
        char *error = NULL;
        bool crashed;
        struct snapshot s = {};
        char *aside = NULL;

        assert_int_equal(
            write_file_atomic_at(f->dir_fd, ORCH_SNAPSHOT_FILE,
                                 "{\"version\":1,\"running\":[{\"name\":\"db\",",
                                 strlen("{\"version\":1,\"running\":[{\"name\":\"db\","), 0644),
            0);
        fake_crashed_manager(f);
        assert_int_equal(orch_recover(fixture_orch(f), false, &crashed, &p, &error), 0);
        assert_true(crashed);
        assert_int_equal(p.n, 0);
        recovery_plan_done(&p);
        assert_int_equal(f->orch->n_warnings, 1);
        assert_non_null(strstr(f->orch->warnings[0], "'snapshot.json' was corrupt: moved it to "
                                                     "'snapshot.json.corrupt-"));
        /* replaced by a clean one */
        assert_int_equal(snapshot_load_at(f->dir_fd, ORCH_SNAPSHOT_FILE, 0, &s, &aside), 0);
        assert_null(aside);
        assert_int_equal(s.n, 0);
        snapshot_done(&s);

        /* an unknown tier in it is as bad as a syntax error */
        assert_int_equal(
            write_file_atomic_at(f->dir_fd, ORCH_SNAPSHOT_FILE,
                                 "{\"running\":[{\"name\":\"db\",\"tier\":\"x\"}]}",
                                 strlen("{\"running\":[{\"name\":\"db\",\"tier\":\"x\"}]}"), 0644),
            0);
        assert_int_equal(
            snapshot_load_at(f->dir_fd, ORCH_SNAPSHOT_FILE, 7 * USEC_PER_SEC, &s, &aside), 0);
        assert_non_null(aside);
        assert_non_null(strstr(aside, "snapshot.json.corrupt-7"));
        free(aside);
        snapshot_done(&s);

        /* a corrupt user-stopped set too */
        assert_int_equal(write_file_atomic_at(f->dir_fd, ORCH_USER_STOPPED_FILE, "{\"names\":[1]}",
                                              strlen("{\"names\":[1]}"), 0644),
                         0);
        fixture_orch(f);
        assert_int_equal(f->orch->n_warnings, 1);
        assert_non_null(strstr(f->orch->warnings[0], "'user-stopped.json' was corrupt"));
}

static void test_crash_recovery_pidfile(void **state)
{
        struct fixture *f = *state;
        pid_t holder = 0;

        assert_int_equal(recovery_pidfile_check_at(f->dir_fd, ORCH_PID_FILE, NULL), 0);
        /* garbage counts as a crash */
        assert_int_equal(write_file_atomic_at(f->dir_fd, ORCH_PID_FILE, "x\n", strlen("x\n"), 0644),
                         0);
        assert_int_equal(recovery_pidfile_check_at(f->dir_fd, ORCH_PID_FILE, NULL), 1);
        /* a live process that is not us: busy */
        assert_int_equal(recovery_pidfile_write_at(f->dir_fd, ORCH_PID_FILE, getppid()), 0);
        assert_int_equal(recovery_pidfile_check_at(f->dir_fd, ORCH_PID_FILE, &holder), -EBUSY);
        assert_int_equal(holder, getppid());
        /* the same PID with another start time (reused): a crash */
        {
                char buf[64];
                int n = snprintf(buf, sizeof(buf), "%d 1\n", (int)getppid());
                assert_int_equal(write_file_atomic_at(f->dir_fd, ORCH_PID_FILE, buf, n, 0644), 0);
                assert_int_equal(recovery_pidfile_check_at(f->dir_fd, ORCH_PID_FILE, NULL), 1);
        }
        assert_int_equal(recovery_pidfile_remove_at(f->dir_fd, ORCH_PID_FILE), 0);
        assert_int_equal(recovery_pidfile_remove_at(f->dir_fd, ORCH_PID_FILE), 0);
}

static void test_orch_state_dir_lock(void **state)
{
        struct fixture *f = *state;
        struct orch *second = NULL, *reader = NULL;
        char *error = NULL;

        fixture_orch(f); /* holds the lock */
        assert_int_equal(
            orch_open(f->dir, f->pm, &f->policy, &f->clock.source, true, &second, &error),
            -EWOULDBLOCK);
        assert_null(second);
        assert_non_null(strstr(error, "is busy: pid"));
        assert_non_null(strstr(error, "strata pkg"));
        free(error);
        error = NULL;
        /* readers do not need it */
        assert_int_equal(
            orch_open(f->dir, f->pm, &f->policy, &f->clock.source, false, &reader, &error), 0);
        orch_free(reader);
        /* released with the engine */
        f->orch = orch_free(f->orch);
        assert_int_equal(
            orch_open(f->dir, f->pm, &f->policy, &f->clock.source, true, &second, &error), 0);
        orch_free(second);
}

TEST_MAIN(FIXTURE_TEST(test_crash_recovery_loads_snapshot), FIXTURE_TEST(test_orch_state_dir_lock),
          FIXTURE_TEST(test_crash_recovery_skips_user_stopped),
          FIXTURE_TEST(test_crash_recovery_corrupt_snapshot),
          FIXTURE_TEST(test_crash_recovery_pidfile))
