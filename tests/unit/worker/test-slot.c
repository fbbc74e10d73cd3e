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

        assert_int_equal(worker_slots_list(root, &l, &n), 0);
        assert_int_equal(n, 2);
        assert_true(l[0].in_use);
        assert_true(l[0].valid);
        assert_int_equal(l[0].pid, getpid());
        assert_false(l[0].init_alive);
        assert_true(l[1].init_alive);
        assert_int_equal(l[1].init, getpid());
        assert_string_equal(l[1].plan, "p.json");
        assert_true(l[1].processes >= 1);
        assert_true(l[1].mounts >= 1);
        worker_slot_infos_free(l, n);

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

        assert_int_equal(worker_slots_list(root, &l, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(l[0].slot, 2);
        assert_true(l[0].in_use);
        assert_int_equal(l[1].slot, 5);
        assert_false(l[1].in_use);
        assert_true(l[1].valid);
        assert_int_equal(l[1].pid, pid);
        worker_slot_infos_free(l, n);

        assert_int_equal(worker_slot_clean(root, 2, 0, &cr), 0);
        assert_true(cr.skipped_in_use);
        assert_int_equal(worker_slot_clean(root, 5, 0, &cr), 0);
        assert_false(cr.skipped_in_use);
        assert_int_equal(worker_slot_clean(root, 5, 0, &cr), -ENOENT);
        assert_int_equal(worker_slot_clean(root, 7, 0, &cr), -ENOENT);
        assert_int_equal(stat(keep, &st), 0);

        assert_int_equal(worker_slots_list(root, &l, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(l[0].slot, 2);
        worker_slot_infos_free(l, n);
        mine = worker_slot_release(mine);
        test_tmpdir_remove(TAKE_PTR(root));
}

TEST_MAIN(cmocka_unit_test(test_acquire_busy_release), cmocka_unit_test(test_stale_and_clean))
