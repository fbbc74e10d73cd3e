/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/file.h>
#include <time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "macro.h"
#include "sandbox.h"
#include "tests.h"

static void need_root(void)
{
        if (geteuid() != 0)
                skip();
}

static int run(const struct sandbox_config *c, char **ret_error)
{
        int status = -1, r;

        r = sandbox_run(c, &status, ret_error);
        return r < 0 ? r : status;
}

static int cb_pid_and_hostname(void *userdata)
{
        char h[64] = "";

        gethostname(h, sizeof(h) - 1);
        return getpid() == 2 && streq(h, (const char *)userdata) ? 7 : 1;
}

static void test_callback_status_pid_hostname(void **state)
{
        struct sandbox_config c = {.flags = SANDBOX_UTS,
                                   .hostname = "sbx-test",
                                   .callback = cb_pid_and_hostname,
                                   .userdata = (void *)"sbx-test"};

        need_root();
        assert_int_equal(run(&c, NULL), 7);
}

static void test_exit_and_signal_status(void **state)
{
        char *exit3[] = {(char *)"sh", (char *)"-c", (char *)"exit 3", NULL};
        char *kill9[] = {(char *)"sh", (char *)"-c", (char *)"kill -9 $$", NULL};
        struct sandbox_config c = {.argv = exit3};

        need_root();
        assert_int_equal(run(&c, NULL), 3);
        c.argv = kill9;
        assert_int_equal(run(&c, NULL), 137);
}

static void test_timeout(void **state)
{
        char *argv[] = {(char *)"sleep", (char *)"30", NULL};
        struct sandbox_config c = {.argv = argv, .timeout_usec = 200 * 1000};

        need_root();
        assert_int_equal(run(&c, NULL), SANDBOX_EXIT_TIMEOUT);
}

static void test_exec_failure_named(void **state)
{
        char *argv[] = {(char *)"/nonexistent-program", NULL};
        struct sandbox_config c = {.argv = argv};
        _cleanup_free_ char *err = NULL;

        need_root();
        assert_int_equal(run(&c, &err), -ENOENT);
        assert_string_equal(err, "execute '/nonexistent-program'");
}

static void test_plan_failure_named(void **state)
{
        _cleanup_(mount_plan_freep) struct mount_plan *p = NULL;
        char *argv[] = {(char *)"true", NULL};
        struct sandbox_config c = {.argv = argv};
        _cleanup_free_ char *err = NULL;

        need_root();
        assert_int_equal(mount_plan_new(&p), 0);
        assert_int_equal(mount_plan_add_bind(p, "/nonexistent-src", "/x", MOUNT_PLAN_CREATE_DEST),
                         0);
        c.plan = p;
        assert_int_equal(run(&c, &err), -ENOENT);
        assert_string_equal(err, "bind '/nonexistent-src' on '/x' (step 1 of 1)");
}

static int cb_root_is_plan(void *userdata)
{
        return access("/made/here", F_OK) == 0 && access("/usr", F_OK) < 0 &&
                       access("/oldroot", F_OK) < 0
                   ? 0
                   : 1;
}

static void test_root_is_the_plan(void **state)
{
        _cleanup_(mount_plan_freep) struct mount_plan *p = NULL;
        struct sandbox_config c = {.callback = cb_root_is_plan};

        need_root();
        assert_int_equal(mount_plan_new(&p), 0);
        assert_int_equal(mount_plan_add_mkdir(p, "/made/here", 0755, 0), 0);
        c.plan = p;
        assert_int_equal(run(&c, NULL), 0);
}

static void test_stdout_captured(void **state)
{
        char *argv[] = {(char *)"sh", (char *)"-c", (char *)"echo captured", NULL};
        struct sandbox_config c = {.argv = argv};
        char buf[64] = "";
        int p[2];

        need_root();
        assert_int_equal(pipe(p), 0);
        c.stdout_fd = p[1];
        assert_int_equal(run(&c, NULL), 0);
        close(p[1]);
        assert_int_equal(read(p[0], buf, sizeof(buf) - 1), 9);
        close(p[0]);
        assert_string_equal(buf, "captured\n");
}

static volatile int stop_thread;

static void *busy_allocator(void *arg)
{
        while (!stop_thread) {
                char *p = malloc(64 + (size_t)(rand() % 4096));
                snprintf(p, 64, "%d", rand());
                free(p);
        }
        return NULL;
}

static int cb_allocates(void *userdata)
{
        for (int i = 0; i < 1000; i++) {
                char *p = malloc(128);
                if (!p)
                        return 1;
                snprintf(p, 128, "%d", i);
                free(p);
        }
        return 0;
}

/* A caller with another thread busy in malloc: the child must not inherit
 * a held allocator lock (what a raw clone would risk). */
static void test_caller_with_threads(void **state)
{
        struct sandbox_config c = {.callback = cb_allocates};
        pthread_t t;

        need_root();
        stop_thread = 0;
        assert_int_equal(pthread_create(&t, NULL, busy_allocator, NULL), 0);
        for (int i = 0; i < 30; i++)
                assert_int_equal(run(&c, NULL), 0);
        stop_thread = 1;
        pthread_join(t, NULL);
}

static int cb_sleep(void *userdata)
{
        (void)nanosleep(&(struct timespec){.tv_nsec = 600 * 1000 * 1000}, NULL);
        return 0;
}

struct relock {
        const char *path;
        int fd;
        int result;
};

/* While the sandbox runs: the caller lets go of its lock; can another
 * open of the file take it? Only if no process of the sandbox holds it. */
static void *relock_thread(void *userdata)
{
        struct relock *l = userdata;
        int fd;

        (void)nanosleep(&(struct timespec){.tv_nsec = 250 * 1000 * 1000}, NULL);
        close(l->fd);
        fd = open(l->path, O_RDWR | O_CLOEXEC);
        l->result = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : -errno;
        if (fd >= 0)
                close(fd);
        return NULL;
}

static void test_close_fds_releases_a_lock(void **state)
{
        char path[] = "/tmp/test-sandbox-lock-XXXXXX";
        struct relock l = {.path = path, .result = 1};
        struct sandbox_config c = {.callback = cb_sleep};
        pthread_t t;
        int fd;

        need_root();
        /* no O_CLOEXEC: the sandbox must close it itself (its init and the
         * callback never exec) */
        fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(flock(fd, LOCK_EX), 0);
        l.fd = fd;
        c.close_fds = &l.fd;
        c.n_close_fds = 1;
        assert_int_equal(pthread_create(&t, NULL, relock_thread, &l), 0);
        assert_int_equal(run(&c, NULL), 0);
        pthread_join(t, NULL);
        assert_int_equal(l.result, 0);
        unlink(path);
}

static int cb_sleep_long(void *userdata)
{
        (void)nanosleep(&(struct timespec){.tv_sec = 20}, NULL);
        return 0;
}

static void *send_term(void *userdata)
{
        sigset_t m;

        /* blocked here too: only the sandbox's signalfd may take it */
        sigemptyset(&m);
        sigaddset(&m, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &m, NULL);
        (void)nanosleep(&(struct timespec){.tv_nsec = 300 * 1000 * 1000}, NULL);
        kill(getpid(), SIGTERM);
        return NULL;
}

static void test_forwarded_signal_reported(void **state)
{
        struct sandbox_config c = {.callback = cb_sleep_long};
        int sig = -1;
        pthread_t t;

        need_root();
        c.ret_forwarded_signal = &sig;
        c.callback = cb_sleep;
        assert_int_equal(run(&c, NULL), 0);
        assert_int_equal(sig, 0);

        c.callback = cb_sleep_long;
        assert_int_equal(pthread_create(&t, NULL, send_term, NULL), 0);
        assert_int_equal(run(&c, NULL), 128 + SIGTERM);
        pthread_join(t, NULL);
        assert_int_equal(sig, SIGTERM);
}

/* The hooks: started in the caller with the init's pid; teardown in the
 * init, after every other process of the namespace was reaped. */
struct hooks {
        pid_t started_pid; /* in the caller */
        int *shared;       /* [0]: teardown ran as pid 1, [1]: processes left then */
};

static void hook_started(pid_t pid, void *userdata)
{
        ((struct hooks *)userdata)->started_pid = pid;
}

static void hook_teardown(void *userdata)
{
        struct hooks *h = userdata;
        h->shared[0] = getpid() == 1;
        /* A child left would be reapable now; ECHILD says none is. */
        h->shared[1] = waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD ? 0 : 1;
}

static void test_hooks(void **state)
{
        char *argv[] = {(char *)"sh", (char *)"-c", (char *)"sleep 100 & exit 4", NULL};
        struct hooks h = {};
        struct sandbox_config c = {
            .argv = argv, .started = hook_started, .teardown = hook_teardown, .userdata = &h};

        need_root();
        h.shared =
            mmap(NULL, 2 * sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_true(h.shared != MAP_FAILED);
        h.shared[0] = h.shared[1] = -1;
        assert_int_equal(run(&c, NULL), 4);
        assert_true(h.started_pid > 1);
        assert_int_equal(kill(h.started_pid, 0), -1); /* gone, and reaped */
        assert_int_equal(h.shared[0], 1);
        assert_int_equal(h.shared[1], 0);
        munmap(h.shared, 2 * sizeof(int));
}

/* emptied: called in the caller once only the init is left in the
 * namespace (what the command left behind killed too), never on timeout. */
struct emptied {
        pid_t init_pid;
        ino_t pidns; /* the namespace's, read while its init runs */
        int calls;   /* of emptied */
        int others;  /* processes of the namespace but its init, then */
        bool exited; /* the command's file is there, then */
        const char *file;
};

static void emptied_started(pid_t pid, void *userdata)
{
        struct emptied *e = userdata;
        char p[64];
        struct stat st;

        e->init_pid = pid;
        snprintf(p, sizeof(p), "/proc/%d/ns/pid", (int)pid);
        e->pidns = stat(p, &st) >= 0 ? st.st_ino : 0;
}

static void emptied_hook(void *userdata)
{
        struct emptied *e = userdata;
        _cleanup_closedir_ DIR *d = opendir("/proc");
        struct dirent *de;
        struct stat st;

        e->calls++;
        e->exited = access(e->file, F_OK) == 0;
        e->others = 0;
        while (d && (de = readdir(d))) {
                char p[300];
                int pid = atoi(de->d_name);

                if (pid <= 0 || pid == e->init_pid)
                        continue;
                snprintf(p, sizeof(p), "/proc/%d/ns/pid", pid);
                if (stat(p, &st) >= 0 && st.st_ino == e->pidns)
                        e->others++;
        }
}

static void test_emptied(void **state)
{
        _cleanup_free_ char *dir = test_tmpdir(), *file = NULL, *script = NULL;
        char *argv[] = {(char *)"sh", (char *)"-c", NULL, NULL};
        char *slow[] = {(char *)"sleep", (char *)"30", NULL};
        struct emptied e = {};
        struct sandbox_config c = {
            .argv = argv, .started = emptied_started, .emptied = emptied_hook, .userdata = &e};

        need_root();
        assert_true(asprintf(&file, "%s/done", dir) > 0);
        assert_true(asprintf(&script, "sleep 100 & sleep 100 & echo > '%s'; exit 6", file) > 0);
        argv[2] = script;
        e.file = file;
        assert_int_equal(run(&c, NULL), 6);
        assert_true(e.pidns != 0);
        assert_int_equal(e.calls, 1);
        assert_true(e.exited);
        assert_int_equal(e.others, 0);

        e = (struct emptied){.file = file};
        c.argv = slow;
        c.timeout_usec = 200 * 1000;
        assert_int_equal(run(&c, NULL), SANDBOX_EXIT_TIMEOUT);
        assert_int_equal(e.calls, 0);
        test_tmpdir_remove(TAKE_PTR(dir));
}

TEST_MAIN(cmocka_unit_test(test_callback_status_pid_hostname),
          cmocka_unit_test(test_exit_and_signal_status), cmocka_unit_test(test_timeout),
          cmocka_unit_test(test_exec_failure_named), cmocka_unit_test(test_plan_failure_named),
          cmocka_unit_test(test_root_is_the_plan), cmocka_unit_test(test_stdout_captured),
          cmocka_unit_test(test_caller_with_threads),
          cmocka_unit_test(test_close_fds_releases_a_lock),
          cmocka_unit_test(test_forwarded_signal_reported), cmocka_unit_test(test_hooks),
          cmocka_unit_test(test_emptied))
