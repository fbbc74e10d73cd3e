/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Running commands behind an interface, so code that drives a program (the
 * podman runtime) is tested against a mock that answers in microseconds.
 *
 *     struct exec_request req = { .argv = (const char *const[]){ "podman", "ps", NULL } };
 *     struct exec_result res = {};
 *     r = executor_run(ex, &req, &res);       // 0: it ran (see res.status)
 *     ...
 *     exec_result_done(&res);
 *
 * executor_real() forks and execs (no shell), feeds stdin and reads stdout
 * and stderr through pipes with poll(), and kills the child when the
 * timeout passes. exec_script is a scripted mock for tests.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXEC_OUTPUT_MAX_DEFAULT    ((size_t)16 * 1024 * 1024)
#define EXEC_KILL_GRACE_MS_DEFAULT 2000
#define EXEC_STATUS_NOT_FOUND      127 /* exec failed: no such program */
#define EXEC_STATUS_NOT_EXECUTABLE 126

struct exec_request {
        const char *const *argv; /* argv[0] without '/' is looked up in PATH */
        const char *const *envp; /* NULL: inherit the environment */
        const char *cwd;         /* NULL: inherit the working directory */
        int64_t timeout_ms;      /* <= 0: no timeout */
        int64_t kill_grace_ms;   /* SIGTERM to SIGKILL after a timeout; 0: default */
        const void *stdin_data;  /* NULL: stdin is /dev/null */
        size_t stdin_len;
        size_t max_output; /* per stream; more is read and dropped; 0: default */
};

struct exec_result {
        int status; /* exit code, or 128 + signal number */
        char *out;  /* stdout, NUL-terminated (never NULL after a run) */
        size_t out_len;
        char *err; /* stderr, NUL-terminated (never NULL after a run) */
        size_t err_len;
        bool timed_out; /* killed because the timeout passed */
        bool truncated; /* a stream went over max_output */
};

struct executor {
        /* Runs req. Returns 0 when the command ran, whatever its status (a
         * program that cannot be executed is status 127 or 126 with the
         * reason in err), -errno when it could not be started at all. On
         * success *ret is filled and owned by the caller. */
        int (*run)(struct executor *e, const struct exec_request *req, struct exec_result *ret);
};

static inline int executor_run(struct executor *e, const struct exec_request *req,
                               struct exec_result *ret)
{
        return e->run(e, req, ret);
}

void exec_result_done(struct exec_result *r);

/* The real executor: a process-wide singleton. */
struct executor *executor_real(void);

/* Renders argv as one line for messages ("podman stop -t 30 'a b'"). */
char *exec_argv_to_string(const char *const *argv);

/* A scripted executor for tests: each call is recorded, then answered by
 * the first rule whose argv_prefix matches the start of the call's argv
 * (and that has uses left); a call no rule matches gets status 127 and
 * "no scripted answer" in err. */
struct exec_script_rule {
        const char *const *argv_prefix; /* NULL-terminated */
        int status;
        const char *out; /* NULL: empty */
        const char *err; /* NULL: empty */
        unsigned uses;   /* 0: unlimited; otherwise the rule answers that many calls */
};

struct exec_script {
        struct executor executor;
        struct exec_script_rule *rules;
        size_t n_rules;
        unsigned *used; /* per rule */
        char ***calls;  /* the argv of every call, NULL-terminated each */
        size_t n_calls;
};

/* rules must outlive the script. */
int exec_script_init(struct exec_script *s, struct exec_script_rule *rules, size_t n_rules);
void exec_script_done(struct exec_script *s);
/* The calls as strings, for assertions: returns call i rendered like
 * exec_argv_to_string() (owned by the caller), or NULL past the end. */
char *exec_script_call_string(const struct exec_script *s, size_t i);
