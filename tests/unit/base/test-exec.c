/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec.h"
#include "macro.h"
#include "tests.h"

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

static struct exec_result run_ok(const struct exec_request *req)
{
        struct exec_result res = {};

        assert_int_equal(executor_run(executor_real(), req, &res), 0);
        assert_non_null(res.out);
        assert_non_null(res.err);
        return res;
}

static void test_exec_true_false(void **state)
{
        struct exec_result res;

        res = run_ok(&(struct exec_request){.argv = ARGV("/bin/true")});
        assert_int_equal(res.status, 0);
        assert_false(res.timed_out);
        assert_string_equal(res.out, "");
        exec_result_done(&res);

        res = run_ok(&(struct exec_request){.argv = ARGV("false")}); /* PATH lookup */
        assert_int_equal(res.status, 1);
        exec_result_done(&res);
}

static void test_exec_exit_codes(void **state)
{
        static const int codes[] = {0, 2, 42, 125, 255};

        for (size_t i = 0; i < ELEMENTSOF(codes); i++) {
                char script[64];
                struct exec_result res;

                snprintf(script, sizeof(script), "exit %d", codes[i]);
                res = run_ok(&(struct exec_request){.argv = ARGV("/bin/sh", "-c", script)});
                assert_int_equal(res.status, codes[i]);
                exec_result_done(&res);
        }
}

static void test_exec_captures_both_streams(void **state)
{
        struct exec_result res = run_ok(&(struct exec_request){
            .argv = ARGV("/bin/sh", "-c", "echo to-out; echo to-err >&2; echo more-out; exit 3")});

        assert_int_equal(res.status, 3);
        assert_string_equal(res.out, "to-out\nmore-out\n");
        assert_int_equal(res.out_len, strlen("to-out\nmore-out\n"));
        assert_string_equal(res.err, "to-err\n");
        exec_result_done(&res);
}

static void test_exec_env_and_cwd(void **state)
{
        struct exec_result res = run_ok(&(struct exec_request){
            .argv = ARGV("/bin/sh", "-c", "echo \"$FOO\"; pwd"),
            .envp = ARGV("FOO=bar baz", "PATH=/usr/bin:/bin"),
            .cwd = "/proc",
        });

        assert_string_equal(res.out, "bar baz\n/proc\n");
        exec_result_done(&res);
}

static void test_exec_large_output(void **state)
{
        /* 4 MiB on stdout and 1 MiB on stderr at the same time: both pipes
         * must be drained or the child blocks. */
        struct exec_result res = run_ok(&(struct exec_request){
            .argv = ARGV("/bin/sh", "-c",
                         "head -c 1048576 /dev/zero >&2 & head -c 4194304 /dev/zero; wait"),
        });

        assert_int_equal(res.status, 0);
        assert_int_equal(res.out_len, 4194304);
        assert_int_equal(res.err_len, 1048576);
        assert_false(res.truncated);
        exec_result_done(&res);

        res = run_ok(&(struct exec_request){
            .argv = ARGV("/bin/sh", "-c", "head -c 300000 /dev/zero"),
            .max_output = 1000,
        });
        assert_int_equal(res.status, 0);
        assert_int_equal(res.out_len, 1000);
        assert_true(res.truncated);
        exec_result_done(&res);
}

static void test_exec_stdin(void **state)
{
        size_t len = 3 * 1024 * 1024;
        char *data = malloc(len);
        struct exec_result res;

        assert_non_null(data);
        for (size_t i = 0; i < len; i++)
                data[i] = (char)('a' + i % 26);
        /* larger than a pipe buffer in both directions */
        res = run_ok(
            &(struct exec_request){.argv = ARGV("cat"), .stdin_data = data, .stdin_len = len});
        assert_int_equal(res.status, 0);
        assert_int_equal(res.out_len, len);
        assert_memory_equal(res.out, data, len);
        exec_result_done(&res);

        res = run_ok(&(struct exec_request){
            .argv = ARGV("wc", "-c"), .stdin_data = "hello", .stdin_len = 5});
        assert_string_equal(res.out, "5\n");
        exec_result_done(&res);

        /* no stdin data: /dev/null */
        res = run_ok(&(struct exec_request){.argv = ARGV("wc", "-c")});
        assert_string_equal(res.out, "0\n");
        exec_result_done(&res);

        /* a child that never reads its stdin: no SIGPIPE for us */
        res = run_ok(&(struct exec_request){
            .argv = ARGV("/bin/true"), .stdin_data = data, .stdin_len = len});
        assert_int_equal(res.status, 0);
        exec_result_done(&res);
        free(data);
}

static void test_exec_timeout(void **state)
{
        struct exec_result res = run_ok(&(struct exec_request){
            .argv = ARGV("sleep", "30"),
            .timeout_ms = 50,
        });

        assert_true(res.timed_out);
        assert_int_equal(res.status, 128 + SIGTERM);
        exec_result_done(&res);

        /* ignores SIGTERM (from its exec on, so no race with the kill):
         * SIGKILL after the grace */
        res = run_ok(&(struct exec_request){
            .argv = ARGV("env", "--ignore-signal=TERM", "/bin/sh", "-c",
                         "echo ready; while :; do sleep 1; done"),
            .timeout_ms = 300,
            .kill_grace_ms = 50,
        });
        assert_true(res.timed_out);
        assert_int_equal(res.status, 128 + SIGKILL);
        assert_string_equal(res.out, "ready\n");
        exec_result_done(&res);

        res = run_ok(&(struct exec_request){.argv = ARGV("/bin/true"), .timeout_ms = 10000});
        assert_false(res.timed_out);
        assert_int_equal(res.status, 0);
        exec_result_done(&res);
}

static void test_exec_killed_by_signal(void **state)
{
        struct exec_result res =
            run_ok(&(struct exec_request){.argv = ARGV("/bin/sh", "-c", "kill -USR1 $$")});

        assert_int_equal(res.status, 128 + SIGUSR1);
        assert_false(res.timed_out);
        exec_result_done(&res);

        res = run_ok(&(struct exec_request){.argv = ARGV("/bin/sh", "-c", "kill -9 $$")});
        assert_int_equal(res.status, 128 + SIGKILL);
        exec_result_done(&res);
}

static void test_exec_missing_program(void **state)
{
        struct exec_result res =
            run_ok(&(struct exec_request){.argv = ARGV("/nonexistent/strata-no-such-program")});

        assert_int_equal(res.status, 127);
        assert_non_null(strstr(res.err, "cannot execute '/nonexistent/strata-no-such-program'"));
        assert_non_null(strstr(res.err, "No such file or directory"));
        exec_result_done(&res);

        res = run_ok(&(struct exec_request){.argv = ARGV("strata-no-such-program-in-path")});
        assert_int_equal(res.status, 127);
        exec_result_done(&res);

        /* not executable */
        char path[] = "/tmp/strata-test-exec-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "#!/bin/sh\n", 10), 10);
        close(fd);
        assert_int_equal(chmod(path, 0644), 0);
        res = run_ok(&(struct exec_request){.argv = ARGV(path)});
        unlink(path);
        assert_int_equal(res.status, 126);
        assert_non_null(strstr(res.err, "Permission denied"));
        exec_result_done(&res);

        /* a missing cwd is an exec failure too */
        res = run_ok(&(struct exec_request){.argv = ARGV("/bin/true"), .cwd = "/nonexistent-dir"});
        assert_int_equal(res.status, 127);
        exec_result_done(&res);

        struct exec_result none = {};
        assert_int_equal(executor_run(executor_real(), &(struct exec_request){}, &none), -EINVAL);
}

static void test_exec_no_fd_leak(void **state)
{
        /* every fd we hold is O_CLOEXEC: the child sees only 0, 1, 2 (and
         * the one ls opens to read the dir) */
        struct exec_result res =
            run_ok(&(struct exec_request){.argv = ARGV("ls", "/proc/self/fd")});
        int n = 0, inherited = 0;

        /* fds this test process got without O_CLOEXEC from its parent are
         * inherited legitimately; 0..2 are replaced by our pipes */
        for (int fd = 3; fd < 1024; fd++) {
                int flags = fcntl(fd, F_GETFD);
                if (flags >= 0 && !(flags & FD_CLOEXEC))
                        inherited++;
        }
        for (char *p = res.out; *p; p++)
                n += *p == '\n';
        assert_int_equal(n, 4 + inherited);
        exec_result_done(&res);
}

static void test_exec_argv_to_string(void **state)
{
        char *s = exec_argv_to_string(ARGV("podman", "stop", "-t", "30", "a b", "it's"));

        assert_string_equal(s, "podman stop -t 30 'a b' 'it'\\''s'");
        free(s);
}

static void test_exec_script(void **state)
{
        struct exec_script_rule rules[] = {
            {.argv_prefix = ARGV("podman", "pull"),
             .status = 125,
             .err = "no network\n",
             .uses = 2},
            {.argv_prefix = ARGV("podman", "pull"), .status = 0, .out = "sha256:1\n"},
            {.argv_prefix = ARGV("podman", "ps"), .status = 0, .out = "[]"},
        };
        struct exec_script s;
        struct exec_result res = {};
        char *c;

        assert_int_equal(exec_script_init(&s, rules, ELEMENTSOF(rules)), 0);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(
                    executor_run(&s.executor,
                                 &(struct exec_request){.argv = ARGV("podman", "pull", "img")},
                                 &res),
                    0);
                assert_int_equal(res.status, i < 2 ? 125 : 0);
                assert_string_equal(res.out, i < 2 ? "" : "sha256:1\n");
                exec_result_done(&res);
        }
        assert_int_equal(
            executor_run(&s.executor, &(struct exec_request){.argv = ARGV("podman", "rm")}, &res),
            0);
        assert_int_equal(res.status, 127);
        exec_result_done(&res);
        assert_int_equal(s.n_calls, 4);
        c = exec_script_call_string(&s, 0);
        assert_string_equal(c, "podman pull img");
        free(c);
        assert_null(exec_script_call_string(&s, 4));
        exec_script_done(&s);
}

TEST_MAIN(cmocka_unit_test(test_exec_true_false), cmocka_unit_test(test_exec_exit_codes),
          cmocka_unit_test(test_exec_captures_both_streams),
          cmocka_unit_test(test_exec_env_and_cwd), cmocka_unit_test(test_exec_large_output),
          cmocka_unit_test(test_exec_stdin), cmocka_unit_test(test_exec_timeout),
          cmocka_unit_test(test_exec_killed_by_signal), cmocka_unit_test(test_exec_missing_program),
          cmocka_unit_test(test_exec_no_fd_leak), cmocka_unit_test(test_exec_argv_to_string),
          cmocka_unit_test(test_exec_script))
