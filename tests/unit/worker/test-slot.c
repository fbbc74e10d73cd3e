/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "macro.h"
#include "slot.h"
#include "tests.h"

static void test_acquire_busy_release(void **state)
{
        _cleanup_free_ char *root = test_tmpdir(), *dir = NULL;
        struct worker_slot *a = NULL, *b = NULL, *c = NULL;
        struct worker_slot_info *l = NULL;
        size_t n = 0;
        struct stat st;

        assert_int_equal(worker_slot_acquire(root, -1, NULL, &a), 0);
        assert_int_equal(a->slot, 0);
        assert_int_equal(worker_slot_acquire(root, 0, NULL, &b), -EBUSY);
        assert_int_equal(worker_slot_acquire(root, -1, "p.json", &b), 0);
        assert_int_equal(b->slot, 1);
        assert_int_equal(worker_slot_acquire(root, WORKER_SLOT_MAX, NULL, &c), -EINVAL);
        assert_int_equal(worker_slot_set_init(b, getpid()), 0);

        /* Listed from another process (a holder must not open its marker). */
        {
                pid_t pid = fork();
                int wst;
                assert_true(pid >= 0);
                if (pid == 0) {
                        bool ok = worker_slots_list(root, &l, &n) == 0 && n == 2 && l[0].in_use &&
                                  l[0].valid && l[0].pid == getppid() && !l[0].init_alive &&
                                  l[1].init_alive && l[1].init == getppid() &&
                                  streq(l[1].plan, "p.json") && l[1].processes >= 1 &&
                                  l[1].mounts >= 1;
                        _exit(ok ? 0 : 1);
                }
                assert_int_equal(waitpid(pid, &wst, 0), pid);
                assert_int_equal(wst, 0);
        }

        /* Released: the marker and the (empty) slot dir are gone. */
        assert_true(asprintf(&dir, "%s/slots/0", root) > 0);
        a = worker_slot_release(a);
        assert_int_equal(stat(dir, &st), -1);
        assert_int_equal(errno, ENOENT);
        assert_int_equal(worker_slot_acquire(root, -1, NULL, &a), 0);
        assert_int_equal(a->slot, 0);
        a = worker_slot_release(a);
        b = worker_slot_release(b);
        test_tmpdir_remove(TAKE_PTR(root));
}

/* A slot whose holder died is stale; clean removes it, and only it. */
static void test_stale_and_clean(void **state)
{
        _cleanup_free_ char *root = test_tmpdir(), *keep = NULL;
        struct worker_slot_info *l = NULL;
        struct worker_clean_result cr;
        struct worker_slot *mine = NULL;
        size_t n = 0;
        struct stat st;
        pid_t pid;
        int status;

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct worker_slot *s = NULL;
                if (worker_slot_acquire(root, 5, NULL, &s) < 0)
                        _exit(1);
                _exit(0); /* killed: the marker stays, its lock goes */
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_int_equal(status, 0);
        assert_int_equal(worker_slot_acquire(root, 2, NULL, &mine), 0);

        /* A directory without a marker is not a slot. */
        assert_true(asprintf(&keep, "%s/slots/7", root) > 0);
        assert_int_equal(mkdir(keep, 0755), 0);

        /* From another process: the holder's own lock is no conflict. */
        {
                pid_t c = fork();
                int wst;
                assert_true(c >= 0);
                if (c == 0) {
                        bool ok = worker_slots_list(root, &l, &n) == 0 && n == 2 &&
                                  l[0].slot == 2 && l[0].in_use && l[1].slot == 5 && !l[1].in_use &&
                                  l[1].valid && l[1].pid == pid &&
                                  worker_slot_clean(root, 2, 0, &cr) == 0 && cr.skipped_in_use;
                        _exit(ok ? 0 : 1);
                }
                assert_int_equal(waitpid(c, &wst, 0), c);
                assert_int_equal(wst, 0);
        }
        assert_int_equal(worker_slot_clean(root, 5, 0, &cr), 0);
        assert_false(cr.skipped_in_use);
        assert_int_equal(worker_slot_clean(root, 5, 0, &cr), -ENOENT);
        assert_int_equal(worker_slot_clean(root, 7, 0, &cr), -ENOENT);
        assert_int_equal(stat(keep, &st), 0);

        mine = worker_slot_release(mine);
        assert_int_equal(worker_slots_list(root, &l, &n), 0);
        assert_int_equal(n, 0);
        free(l);
        test_tmpdir_remove(TAKE_PTR(root));
}

TEST_MAIN(cmocka_unit_test(test_acquire_busy_release), cmocka_unit_test(test_stale_and_clean))
