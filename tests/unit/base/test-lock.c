/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "lock.h"
#include "tests.h"

static int setup(void **state)
{
        *state = test_tmpdir();
        return 0;
}

static int teardown(void **state)
{
        test_tmpdir_remove(*state);
        return 0;
}

/* Forks a child that takes the lock, signals readiness through a pipe and
 * waits to be killed. */
static pid_t hold_in_child(int dirfd, const char *path)
{
        int p[2];
        pid_t pid;
        char c;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int fd;
                if (lock_acquire_at(dirfd, path, "20260206-001_add_pg", 0, &fd, NULL) < 0)
                        _exit(1);
                (void)!write(p[1], "x", 1);
                pause();
                _exit(0);
        }
        close(p[1]);
        assert_int_equal(read(p[0], &c, 1), 1);
        close(p[0]);
        return pid;
}

static void test_busy_reports_holder(void **state)
{
        _cleanup_close_ int dfd = open(*state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct lock_holder h = {};
        int fd = -1, status;
        pid_t pid;

        pid = hold_in_child(dfd, "migrate.lock");
        assert_int_equal(lock_acquire_at(dfd, "migrate.lock", "me", LOCK_NONBLOCK, &fd, &h),
                         -EWOULDBLOCK);
        assert_int_equal(fd, -1);
        assert_int_equal(h.pid, pid);
        assert_string_equal(h.purpose, "20260206-001_add_pg");
        assert_true(h.since > 1577836800 && h.since <= time(NULL));

        /* the holder dies: flock goes with it, the stale info never blocks */
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_int_equal(lock_acquire_at(dfd, "migrate.lock", "me", LOCK_NONBLOCK, &fd, &h), 0);
        assert_true(fd >= 0);
        assert_int_equal(lock_read_holder_at(dfd, "migrate.lock", &h), 0);
        assert_int_equal(h.pid, getpid());
        assert_string_equal(h.purpose, "me");

        /* release clears the holder */
        fd = lock_release(fd);
        assert_int_equal(fd, -1);
        assert_int_equal(lock_read_holder_at(dfd, "migrate.lock", &h), -ENODATA);
}

/* A holder that takes the lock and dies, leaving a child that inherited
 * the lock's file and keeps it for linger_ms (-1: until killed). Returns
 * the child's pid; the holder is reaped. */
static pid_t hold_and_die(int dirfd, const char *path, int linger_ms, pid_t *ret_holder)
{
        int p[2], status;
        pid_t holder, left;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        holder = fork();
        assert_true(holder >= 0);
        if (holder == 0) {
                int fd;
                pid_t c;

                if (lock_acquire_at(dirfd, path, "20260206-001_add_pg", 0, &fd, NULL) < 0)
                        _exit(1);
                c = fork();
                if (c == 0) {
                        if (linger_ms < 0)
                                pause();
                        else
                                (void)nanosleep(
                                    &(struct timespec){.tv_sec = linger_ms / 1000,
                                                       .tv_nsec = (linger_ms % 1000) * 1000000L},
                                    NULL);
                        _exit(0);
                }
                (void)!write(p[1], &c, sizeof(c));
                _exit(0);
        }
        close(p[1]);
        assert_int_equal(read(p[0], &left, sizeof(left)), (ssize_t)sizeof(left));
        close(p[0]);
        assert_int_equal(waitpid(holder, &status, 0), holder);
        *ret_holder = holder;
        return left;
}

static void test_gone_holder_is_waited_for(void **state)
{
        _cleanup_close_ int dfd = open(*state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct lock_holder h = {};
        struct timespec t0, t1;
        pid_t holder, left;
        int fd = -1;

        /* what the dead holder left lets go within the wait: the lock is ours */
        left = hold_and_die(dfd, "l", 300, &holder);
        assert_int_equal(lock_acquire_at(dfd, "l", "me", LOCK_NONBLOCK, &fd, &h), 0);
        lock_release(fd);

        /* it does not: busy after the wait, and the holder is reported gone */
        left = hold_and_die(dfd, "l", -1, &holder);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(lock_acquire_at(dfd, "l", "me", LOCK_NONBLOCK, &fd, &h), -EWOULDBLOCK);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_int_equal(h.pid, holder);
        assert_true(h.gone);
        assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >=
                    LOCK_GONE_HOLDER_WAIT_MSEC - 50);
        kill(left, SIGKILL);
        /* a live holder is not waited for and is not gone */
        left = hold_in_child(dfd, "l");
        assert_int_equal(lock_acquire_at(dfd, "l", "me", LOCK_NONBLOCK, &fd, &h), -EWOULDBLOCK);
        assert_false(h.gone);
        kill(left, SIGKILL);
        (void)waitpid(left, NULL, 0);
}

static void test_two_fds_in_one_process_exclude(void **state)
{
        _cleanup_close_ int dfd = open(*state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int a = -1, b = -1;

        assert_int_equal(lock_acquire_at(dfd, "l", "a", LOCK_NONBLOCK, &a, NULL), 0);
        /* flock locks belong to open file descriptions: a second open is a
         * second contender, as another process would be */
        assert_int_equal(lock_acquire_at(dfd, "l", "b", LOCK_NONBLOCK, &b, NULL), -EWOULDBLOCK);
        lock_release(a);
        assert_int_equal(lock_acquire_at(dfd, "l", "b", LOCK_NONBLOCK, &b, NULL), 0);
        lock_release(b);
}

static void test_bad_input(void **state)
{
        _cleanup_close_ int dfd = open(*state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct lock_holder h;
        int fd = -1;

        /* missing directory */
        assert_int_equal(lock_acquire_at(dfd, "no/such/dir/l", "x", LOCK_NONBLOCK, &fd, NULL),
                         -ENOENT);
        /* garbage in the lock file: unreadable holder, lock still works */
        test_write(dfd, "g", "not json at all");
        assert_int_equal(lock_read_holder_at(dfd, "g", &h), -EBADMSG);
        assert_int_equal(lock_acquire_at(dfd, "g", "x", LOCK_NONBLOCK, &fd, NULL), 0);
        lock_release(fd);
        assert_int_equal(lock_read_holder_at(dfd, "absent", &h), -ENOENT);
}

TEST_MAIN(cmocka_unit_test_setup_teardown(test_busy_reports_holder, setup, teardown),
          cmocka_unit_test_setup_teardown(test_gone_holder_is_waited_for, setup, teardown),
          cmocka_unit_test_setup_teardown(test_two_fds_in_one_process_exclude, setup, teardown),
          cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown))
