/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "tests.h"

#include "json.h"
#include "orch-fixture.h"
#include "tracker.h"

static void test_restart_tracker_persistence(void **state)
{
        struct fixture *f = *state;
        struct tracker t = {}, back = {};
        const struct tracker_entry *e;
        usec_t t0 = FIXTURE_START_USEC;
        char *aside = NULL;

        assert_int_equal(tracker_record_start(&t, "lnd", t0), 0);
        assert_int_equal(tracker_record_restart(&t, "lnd", t0 + 10 * USEC_PER_SEC), 0);
        assert_int_equal(tracker_record_restart(&t, "lnd", t0 + 20 * USEC_PER_SEC), 0);
        assert_int_equal(tracker_record_restart(&t, "db", t0 + 30 * USEC_PER_SEC), 0);
        assert_int_equal(tracker_set_notified(&t, "db"), 0);
        assert_int_equal(tracker_save_at(f->dir_fd, ORCH_TRACKER_FILE, &t), 0);

        /* a new manager process reads the same counts back */
        assert_int_equal(tracker_load_at(f->dir_fd, ORCH_TRACKER_FILE, t0, &back, &aside), 0);
        assert_null(aside);
        assert_int_equal(back.n, 2);
        e = tracker_find(&back, "lnd");
        assert_non_null(e);
        assert_int_equal(e->attempts, 2);
        assert_int_equal(e->first_failure, t0 + 10 * USEC_PER_SEC);
        assert_int_equal(e->last_restart, t0 + 20 * USEC_PER_SEC);
        assert_int_equal(e->last_start, t0 + 20 * USEC_PER_SEC);
        assert_false(e->notified);
        e = tracker_find(&back, "db");
        assert_int_equal(e->attempts, 1);
        assert_true(e->notified);
        tracker_done(&back);
        tracker_done(&t);

        /* through the engine: restarts by the monitor survive a reopen */
        fixture_install(f, "electrs", TIER_APP);
        assert_int_equal(mock_podman_crash(&f->mock, "electrs", 1), 0);
        {
                struct health_plan p = {};
                char *error = NULL;
                assert_int_equal(orch_health(f->orch, true, &p, &error), 0);
                health_plan_done(&p);
        }
        fixture_orch(f); /* "restart the manager" */
        e = tracker_find(&f->orch->tracker, "electrs");
        assert_non_null(e);
        assert_int_equal(e->attempts, 1);

        /* missing file: empty */
        assert_int_equal(unlinkat(f->dir_fd, ORCH_TRACKER_FILE, 0), 0);
        assert_int_equal(tracker_load_at(f->dir_fd, ORCH_TRACKER_FILE, t0, &back, &aside), 0);
        assert_int_equal(back.n, 0);
        assert_null(aside);
}

static void test_restart_tracker_stability_reset(void **state)
{
        struct tracker t = {};
        const struct tracker_entry *e;
        usec_t t0 = FIXTURE_START_USEC, hour = 3600 * USEC_PER_SEC;

        assert_int_equal(tracker_record_restart(&t, "lnd", t0), 0);
        assert_int_equal(tracker_record_restart(&t, "lnd", t0 + 60 * USEC_PER_SEC), 0);
        e = tracker_find(&t, "lnd");
        assert_int_equal(tracker_effective_attempts(e, t0 + 120 * USEC_PER_SEC, hour), 2);

        /* running, but not an hour since the last restart yet */
        assert_false(tracker_note_running(&t, "lnd", (t0 + 60 * USEC_PER_SEC), t0 + hour, hour));
        assert_int_equal(e->attempts, 2);
        /* an hour of stable running: the counters clear */
        assert_int_equal(tracker_effective_attempts(e, t0 + 60 * USEC_PER_SEC + hour, hour), 0);
        assert_true(tracker_note_running(&t, "lnd", (t0 + 60 * USEC_PER_SEC),
                                         t0 + 60 * USEC_PER_SEC + hour, hour));
        e = tracker_find(&t, "lnd");
        assert_int_equal(e->attempts, 0);
        assert_int_equal(e->first_failure, 0);
        assert_false(e->notified);

        /* started again by someone else later: the later start counts */
        assert_int_equal(tracker_record_restart(&t, "lnd", t0 + 2 * hour), 0);
        assert_false(tracker_note_running(&t, "lnd", t0 + 2 * hour + hour / 2,
                                          t0 + 3 * hour + USEC_PER_SEC, hour));
        assert_int_equal(tracker_find(&t, "lnd")->attempts, 1);

        /* a start on purpose clears too */
        assert_int_equal(tracker_record_start(&t, "lnd", t0 + 4 * hour), 0);
        assert_int_equal(tracker_find(&t, "lnd")->attempts, 0);
        tracker_forget(&t, "lnd");
        assert_null(tracker_find(&t, "lnd"));
        tracker_done(&t);
}

static size_t count_aside(int dirfd, const char *prefix)
{
        DIR *d = fdopendir(dup(dirfd));
        struct dirent *de;
        size_t n = 0;

        assert_non_null(d);
        rewinddir(d);
        while ((de = readdir(d)))
                n += startswith(de->d_name, prefix) != NULL;
        closedir(d);
        return n;
}

static void test_restart_tracker_corrupt(void **state)
{
        struct fixture *f = *state;
        static const char *const bad[] = {
            "{\"version\": 1, \"containers\": {\"lnd\": {\"attempts\": 2, \"first_fa", /* truncated
                                                                                        */
            "",                                                                        /* empty */
            "\x7f"
            "ELF\x02\x01",                                                     /* garbage */
            "{\"version\": 1, \"containers\": {\"lnd\": {\"attempts\": -4}}}", /* wrong shape */
            "[1, 2, 3]",
        };
        struct tracker t = {};
        char *aside = NULL, *saved = NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *content = NULL;

                assert_int_equal(write_file_atomic_at(f->dir_fd, ORCH_TRACKER_FILE, bad[i],
                                                      strlen(bad[i]), 0644),
                                 0);
                assert_int_equal(
                    tracker_load_at(f->dir_fd, ORCH_TRACKER_FILE, FIXTURE_START_USEC, &t, &aside),
                    0);
                /* clean state, and the bad file kept aside, not overwritten */
                assert_int_equal(t.n, 0);
                assert_non_null(aside);
                assert_non_null(strstr(aside, ORCH_TRACKER_FILE ".corrupt-1795300000"));
                assert_int_equal(read_file_at(f->dir_fd, aside, 1 << 20, &content, NULL), 0);
                assert_string_equal(content, bad[i]);
                assert_int_equal(count_aside(f->dir_fd, ORCH_TRACKER_FILE ".corrupt-"), i + 1);
                free(aside);
                aside = NULL;
                /* the replacement parses and loads without a report */
                assert_int_equal(
                    tracker_load_at(f->dir_fd, ORCH_TRACKER_FILE, FIXTURE_START_USEC, &t, &aside),
                    0);
                assert_null(aside);
                tracker_done(&t);
        }

        /* the engine reports it */
        assert_int_equal(write_file_atomic_at(f->dir_fd, ORCH_TRACKER_FILE, "{", 1, 0644), 0);
        fixture_orch(f);
        assert_int_equal(f->orch->n_warnings, 1);
        assert_non_null(strstr(f->orch->warnings[0], "'restart-tracker.json' was corrupt"));
        free(saved);
}

/* A writer killed with SIGKILL mid-save never leaves a file that fails to
 * parse: the save is temp + fsync + rename. */
static void test_restart_tracker_atomic_under_sigkill(void **state)
{
        struct fixture *f = *state;
        unsigned kills = 0;

        for (unsigned round = 0; round < 40; round++) {
                struct tracker t = {};
                char *aside = NULL;
                pid_t pid = fork();

                assert_true(pid >= 0);
                if (pid == 0) {
                        struct tracker w = {};
                        char name[32];
                        /* big enough that a write takes a while */
                        for (unsigned i = 0; i < 200; i++) {
                                snprintf(name, sizeof(name), "container-%u", i);
                                if (tracker_record_restart(&w, name, i) < 0)
                                        _exit(1);
                        }
                        for (unsigned i = 0;; i++) {
                                w.entries[i % w.n].attempts = i;
                                if (tracker_save_at(f->dir_fd, ORCH_TRACKER_FILE, &w) < 0)
                                        _exit(2);
                        }
                }
                /* let it write for a moment: 0.5 to 4.5 ms */
                nanosleep(&(struct timespec){.tv_nsec = 500000 + (round % 9) * 500000}, NULL);
                assert_int_equal(kill(pid, SIGKILL), 0);
                {
                        int st;
                        assert_int_equal(waitpid(pid, &st, 0), pid);
                        kills += WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
                }
                if (faccessat(f->dir_fd, ORCH_TRACKER_FILE, F_OK, 0) < 0)
                        continue; /* killed before the first rename */
                assert_int_equal(
                    tracker_load_at(f->dir_fd, ORCH_TRACKER_FILE, FIXTURE_START_USEC, &t, &aside),
                    0);
                if (aside)
                        fail_msg("round %u: the file did not parse (moved to %s)", round, aside);
                assert_int_equal(t.n, 200);
                tracker_done(&t);
        }
        assert_int_equal(kills, 40);
}

TEST_MAIN(FIXTURE_TEST(test_restart_tracker_persistence),
          cmocka_unit_test(test_restart_tracker_stability_reset),
          FIXTURE_TEST(test_restart_tracker_corrupt),
          FIXTURE_TEST(test_restart_tracker_atomic_under_sigkill))
