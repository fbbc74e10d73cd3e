/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * strata worker run|pool|list|clean|plan: isolated build roots from mount
 * plans (src/lib/worker), many at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "pool.h"
#include "slot.h"
#include "strata.h"
#include "strv.h"
#include "worker.h"

void help_worker(void)
{
        printf("Usage: strata worker run [OPTIONS] -- CMD...\n"
               "       strata worker pool --workers N [OPTIONS] (--jobs FILE | -- CMD...)\n"
               "       strata worker list [--json]\n"
               "       strata worker clean [--all]\n"
               "       strata worker plan --default | FILE [--slot N]\n"
               "\n"
               "Isolated build roots: each worker is a mount plan (the default one, about 27\n"
               "mounts, or --plan FILE) applied in new mount, pid, ipc and uts namespaces,\n"
               "with no network unless the plan says \"network\": \"host\". CMD runs in it\n"
               "(as the plan's build user, if it names one); when CMD ends everything left\n"
               "in the worker is killed and its mounts are unmounted deepest first.\n"
               "\n"
               "  run    one worker in slot N (default: the lowest free slot)\n"
               "  pool   N workers at once over a job list (one shell command a line of\n"
               "         FILE, '#' comments) or N runs of CMD; a status line per job and\n"
               "         a summary\n"
               "  list   the slots that have a marker: in use or left by a killed strata,\n"
               "         their pids, mounts, processes and age\n"
               "  clean  tear down slots left by a killed strata (found by their marker);\n"
               "         --all: also the slots in use, killing their workers\n"
               "  plan   print the default plan as a plan file (--default), or check FILE\n"
               "         and print its operations for slot N as JSON\n"
               "\n"
               "Options:\n"
               "  --root DIR            the worker root: slots, shared caches (default\n"
               "                        $STRATA_WORKER_ROOT or " WORKER_ROOT_DEFAULT ")\n"
               "  --plan FILE           the plan file (default: the default plan)\n"
               "  --slot N              (run) the slot to take\n"
               "  --bind SRC:DST[:ro]   bind host path SRC on DST (replaces the plan's bind on\n"
               "                        DST, e.g. --bind ~/src:/xports:ro); repeatable\n"
               "  --timeout SECONDS     kill a worker after SECONDS: status 124\n"
               "  --workers N           (pool) workers at once\n"
               "  --jobs FILE           (pool) the job list\n"
               "  --json                (list, pool) print data as JSON\n"
               "  --all                 (clean) slots in use too\n"
               "\n"
               "Exit status: run: CMD's own, 128+N when it was killed by signal N, 124 on\n"
               "timeout, 125 when the worker cannot be set up (a plan that is malformed or\n"
               "names a missing path), 127 when CMD cannot be run, 75 when the slot is in\n"
               "use. pool: 0 when every job passed, 1 otherwise. 2 for a usage error.\n");
}

struct worker_args {
        const char *root;
        const char *plan;
        int slot;
        struct worker_bind *binds;
        size_t n_binds;
        uint64_t timeout_usec;
        unsigned workers;
        const char *jobs;
        bool json;
        bool all;
        bool dflt;
        char **argv;
        int n_args;
};

static void args_done(struct worker_args *a)
{
        for (size_t i = 0; i < a->n_binds; i++) {
                free((char *)a->binds[i].src);
                free((char *)a->binds[i].dest);
        }
        free(a->binds);
}

static int parse_bind(const char *spec, struct worker_args *a)
{
        _cleanup_free_ char *src = NULL, *dst = NULL;
        struct worker_bind *b;
        bool read_only;
        int r;

        r = bind_spec_parse(spec, &src, &dst, &read_only);
        if (r < 0)
                return r;
        b = reallocarray(a->binds, a->n_binds + 1, sizeof(*b));
        if (!b)
                return log_oom();
        a->binds = b;
        b[a->n_binds++] = (struct worker_bind){
            .src = TAKE_PTR(src), .dest = TAKE_PTR(dst), .read_only = read_only};
        return 0;
}

static int parse_uint(const char *opt, const char *s, long max, long *ret)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < 0 || v > max) {
                log_error("invalid %s '%s': a number from 0 to %ld", opt, s, max);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

/* Returns 1 for --help, 0, or -EINVAL (logged). */
enum {
        ARG_ROOT = 0x100,
        ARG_PLAN,
        ARG_SLOT,
        ARG_BIND,
        ARG_TIMEOUT,
        ARG_WORKERS,
        ARG_JOBS,
        ARG_JSON,
        ARG_ALL,
        ARG_DEFAULT,
};

/* Whether the word name is in the space separated list takes. */
static bool option_taken(const char *takes, const char *name)
{
        size_t l = strlen(name);

        for (const char *p = takes; p && (p = strstr(p, name)); p += l)
                if ((p == takes || p[-1] == ' ') && (p[l] == ' ' || p[l] == '\0'))
                        return true;
        return false;
}

/* One option and its value. Returns 0, 1 after --help, or -EINVAL
 * (logged). */
static int parse_option(int opt, const char *arg, struct worker_args *a)
{
        long v;

        switch (opt) {
        case 'h':
                help_worker();
                return 1;
        case ARG_ROOT:
                if (arg[0] != '/') {
                        log_error("invalid --root '%s': an absolute path", arg);
                        return -EINVAL;
                }
                a->root = arg;
                return 0;
        case ARG_PLAN:
                a->plan = arg;
                return 0;
        case ARG_SLOT:
                if (parse_uint("--slot", arg, WORKER_SLOT_MAX - 1, &v) < 0)
                        return -EINVAL;
                a->slot = (int)v;
                return 0;
        case ARG_BIND:
                return parse_bind(arg, a) < 0 ? -EINVAL : 0;
        case ARG_TIMEOUT:
                return timeout_parse(arg, &a->timeout_usec);
        case ARG_WORKERS:
                if (parse_uint("--workers", arg, 256, &v) < 0)
                        return -EINVAL;
                if (v < 1) {
                        log_error("invalid --workers '%s': at least 1", arg);
                        return -EINVAL;
                }
                a->workers = (unsigned)v;
                return 0;
        case ARG_JOBS:
                a->jobs = arg;
                return 0;
        case ARG_JSON:
                a->json = true;
                return 0;
        case ARG_ALL:
                a->all = true;
                return 0;
        case ARG_DEFAULT:
                a->dflt = true;
                return 0;
        default:
                return -EINVAL;
        }
}

static int parse(int argc, char **argv, const char *verb, struct worker_args *a)
{
        static const struct option options[] = {
            {"help", no_argument, NULL, 'h'},
            {"root", required_argument, NULL, ARG_ROOT},
            {"plan", required_argument, NULL, ARG_PLAN},
            {"slot", required_argument, NULL, ARG_SLOT},
            {"bind", required_argument, NULL, ARG_BIND},
            {"timeout", required_argument, NULL, ARG_TIMEOUT},
            {"workers", required_argument, NULL, ARG_WORKERS},
            {"jobs", required_argument, NULL, ARG_JOBS},
            {"json", no_argument, NULL, ARG_JSON},
            {"all", no_argument, NULL, ARG_ALL},
            {"default", no_argument, NULL, ARG_DEFAULT},
            {},
        };
        /* Which options each verb takes. */
        static const struct {
                const char *verb;
                const char *takes;
        } verbs[] = {
            {"run", "root plan slot bind timeout"},
            {"pool", "root plan bind timeout workers jobs json"},
            {"list", "root json"},
            {"clean", "root all"},
            {"plan", "root slot default"},
        };
        const char *takes = NULL;
        int opt, idx, r;

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].verb, verb))
                        takes = verbs[i].takes;
        a->slot = -1;
        a->root = getenv("STRATA_WORKER_ROOT");
        if (!a->root || !*a->root)
                a->root = WORKER_ROOT_DEFAULT;

        /* run and pool: '+', CMD's own options are not ours. */
        bool cmd = streq(verb, "run") || streq(verb, "pool");
        while ((opt = getopt_long(argc, argv, cmd ? "+h" : "h", options, &idx)) >= 0) {
                if (opt >= 0x100 && !option_taken(takes, options[idx].name)) {
                        log_error("--%s is not an option of 'strata worker %s'", options[idx].name,
                                  verb);
                        return -EINVAL;
                }
                r = parse_option(opt, optarg, a);
                if (r != 0)
                        return r;
        }
        a->argv = argv + optind;
        a->n_args = argc - optind;
        return 0;
}

static void report_teardown(int slot, const struct mount_teardown_result *t)
{
        if (t->detached > 0)
                log_warning("worker %d: %u mount(s) stayed busy after %u tries and were detached "
                            "(MNT_DETACH), first '%s'",
                            slot, t->detached, 10u, t->first_detached);
        if (t->failed > 0)
                log_warning("worker %d: %u mount(s) could not be unmounted", slot, t->failed);
}

static int verb_run(struct worker_args *a)
{
        struct worker_result res;
        _cleanup_free_ char *error = NULL;
        int r;

        if (a->n_args < 1) {
                log_error("no command given: strata worker run [OPTIONS] -- CMD...");
                return EXIT_USAGE;
        }
        struct worker_options o = {
            .root = a->root,
            .plan_file = a->plan,
            .slot = a->slot,
            .binds = a->binds,
            .n_binds = a->n_binds,
            .timeout_usec = a->timeout_usec,
            .argv = a->argv,
        };
        r = worker_run(&o, &res, &error);
        if (r == -EBADMSG) {
                log_error("invalid plan: %s", error ? error : "?");
                return WORKER_EXIT_SETUP;
        }
        if (r < 0) {
                bool exec = res.status == WORKER_EXIT_EXEC;
                if (res.slot >= 0)
                        log_error_errno(r, "worker %d: cannot %s: %m", res.slot,
                                        error ? error : "set up the worker");
                else
                        log_error_errno(r, "cannot %s: %m", error ? error : "set up the worker");
                return worker_status_of_error(r, exec);
        }
        report_teardown(res.slot, &res.teardown);
        if (res.timed_out)
                log_error("worker %d: timed out after %.1f s, killed", res.slot,
                          (double)a->timeout_usec / 1e6);
        log_info("worker %d: status %d, %u mounts, %u unmounted, %u detached, %.1f ms", res.slot,
                 res.status, res.mounts, res.teardown.unmounted, res.teardown.detached,
                 (double)res.usec / 1000.0);
        return res.status;
}

/* One job a line: blank lines and '#' comments are skipped; a job runs as
 * sh -c LINE. */
static int read_jobs(const char *file, char ****ret, size_t *ret_n)
{
        _cleanup_free_ char *text = NULL;
        char ***jobs = NULL, *line, *save = NULL;
        size_t n = 0;
        int r;

        r = read_file_at(AT_FDCWD, file, 16 << 20, &text, NULL);
        if (r < 0)
                return log_error_errno(r, "cannot read the job list '%s': %m", file);
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char **argv = NULL, ***a;
                while (*line == ' ' || *line == '\t')
                        line++;
                if (!*line || *line == '#')
                        continue;
                a = reallocarray(jobs, n + 2, sizeof(*jobs));
                if (!a || strv_extend(&argv, "sh") < 0 || strv_extend(&argv, "-c") < 0 ||
                    strv_extend(&argv, line) < 0) {
                        free(a ? a : jobs);
                        return log_oom();
                }
                jobs = a;
                jobs[n++] = argv;
                jobs[n] = NULL;
        }
        if (n == 0) {
                free(jobs);
                log_error("the job list '%s' has no job", file);
                return -EINVAL;
        }
        *ret = jobs;
        *ret_n = n;
        return 0;
}

struct pool_ctx {
        bool json;
        size_t n_jobs;
        size_t done;
        char ***jobs;
};

static const char *job_text(char **argv)
{
        /* sh -c LINE: the line; else CMD's name. */
        return argv[0] && argv[1] && argv[2] && streq(argv[1], "-c") ? argv[2] : argv[0];
}

static void pool_done(const struct worker_job_result *r, void *userdata)
{
        struct pool_ctx *c = userdata;

        c->done++;
        if (c->json)
                return;
        if (r->status == 0)
                printf("[%zu/%zu] job %zu (worker %d): ok, %.2f s: %s\n", c->done, c->n_jobs,
                       r->job + 1, r->slot, (double)r->usec / 1e6, job_text(c->jobs[r->job]));
        else
                printf("[%zu/%zu] job %zu (worker %d): FAILED (status %d), %.2f s: %s\n", c->done,
                       c->n_jobs, r->job + 1, r->slot, r->status, (double)r->usec / 1e6,
                       job_text(c->jobs[r->job]));
        if (r->error)
                log_error_errno(r->error, "job %zu: cannot %s: %m", r->job + 1,
                                r->message[0] ? r->message : "run it");
        if (r->detached)
                log_warning("job %zu: %u mount(s) stayed busy and were detached (MNT_DETACH)",
                            r->job + 1, r->detached);
        fflush(stdout);
}

static int verb_pool(struct worker_args *a)
{
        _cleanup_free_ struct worker_job_result *results = NULL;
        char ***jobs = NULL;
        size_t n = 0, passed = 0;
        struct timespec t0, t1;
        int r, ret = EXIT_OK;

        if (a->workers == 0) {
                log_error("--workers N is required");
                return EXIT_USAGE;
        }
        if (!!a->jobs == (a->n_args > 0)) {
                log_error("give either --jobs FILE or -- CMD...");
                return EXIT_USAGE;
        }
        if (a->jobs) {
                r = read_jobs(a->jobs, &jobs, &n);
                if (r < 0)
                        return r == -EINVAL ? EXIT_USAGE : EXIT_FAILURE_;
        } else {
                n = a->workers;
                jobs = calloc(n + 1, sizeof(*jobs));
                if (!jobs)
                        return log_oom(), EXIT_FAILURE_;
                for (size_t i = 0; i < n; i++)
                        jobs[i] = a->argv;
        }
        results = calloc(n, sizeof(*results));
        if (!results)
                return log_oom(), EXIT_FAILURE_;

        struct worker_options w = {.root = a->root,
                                   .plan_file = a->plan,
                                   .binds = a->binds,
                                   .n_binds = a->n_binds,
                                   .timeout_usec = a->timeout_usec};
        struct pool_ctx ctx = {.json = a->json, .n_jobs = n, .jobs = jobs};
        struct worker_pool_options o = {.worker = &w,
                                        .workers = a->workers,
                                        .jobs = jobs,
                                        .n_jobs = n,
                                        .done = pool_done,
                                        .userdata = &ctx};
        /* A malformed plan fails once, before any job starts. */
        {
                _cleanup_(worker_plan_freep) struct worker_plan *wp = NULL;
                _cleanup_free_ char *error = NULL;
                r = worker_plan_load(a->plan, a->root, 0, &wp, &error);
                if (r < 0) {
                        log_error_errno(r, "invalid plan: %s", error ? error : "%m");
                        ret = WORKER_EXIT_SETUP;
                        goto out;
                }
        }
        clock_gettime(CLOCK_MONOTONIC, &t0);
        r = worker_pool_run(&o, results);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (r < 0) {
                log_error_errno(r, "cannot run the pool: %m");
                ret = EXIT_FAILURE_;
                goto out;
        }
        for (size_t i = 0; i < n; i++)
                passed += results[i].status == 0;
        double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (a->json) {
                json_t *arr = json_array(), *j;
                _cleanup_free_ char *s = NULL;
                for (size_t i = 0; arr && i < n; i++)
                        json_array_append_new(
                            arr,
                            json_pack("{s:I,s:i,s:i,s:I,s:s,s:s?,s:i}", "job", (json_int_t)i + 1,
                                      "worker", results[i].slot, "status", results[i].status, "ms",
                                      (json_int_t)(results[i].usec / 1000), "command",
                                      job_text(jobs[i]), "error",
                                      results[i].error ? results[i].message : NULL, "detached",
                                      (int)results[i].detached));
                j = json_pack("{s:o,s:I,s:I,s:I,s:I}", "jobs", arr, "passed", (json_int_t)passed,
                              "failed", (json_int_t)(n - passed), "workers", (json_int_t)a->workers,
                              "ms", (json_int_t)(wall * 1000));
                s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
                json_decref(j);
                if (s)
                        printf("%s\n", s);
        } else {
                printf("pool: %zu of %zu jobs passed, %zu failed, %u workers, %.2f s\n", passed, n,
                       n - passed, a->workers, wall);
        }
        ret = passed == n ? EXIT_OK : EXIT_FAILURE_;
out:
        if (a->jobs)
                for (size_t i = 0; i < n; i++)
                        strv_free(jobs[i]);
        free(jobs);
        return ret;
}

static int verb_list(struct worker_args *a)
{
        struct worker_slot_info *l = NULL;
        size_t n = 0;
        int64_t now = (int64_t)time(NULL);
        int r;

        r = worker_slots_list(a->root, &l, &n);
        if (r < 0) {
                log_error_errno(r, "cannot list the slots under '%s': %m", a->root);
                return EXIT_FAILURE_;
        }
        if (a->json) {
                json_t *arr = json_array();
                _cleanup_free_ char *s = NULL;
                for (size_t i = 0; arr && i < n; i++)
                        json_array_append_new(
                            arr,
                            json_pack("{s:i,s:s,s:i,s:i,s:i,s:i,s:I,s:s?,s:s}", "slot", l[i].slot,
                                      "state",
                                      l[i].in_use  ? "in-use"
                                      : l[i].valid ? "stale"
                                                   : "invalid",
                                      "pid", (int)l[i].pid, "init",
                                      l[i].init_alive ? (int)l[i].init : 0, "mounts",
                                      (int)l[i].mounts, "processes", (int)l[i].processes, "age",
                                      (json_int_t)(l[i].started ? now - l[i].started : 0), "plan",
                                      l[i].plan, "dir", l[i].dir));
                s = arr ? json_dumps(arr, JSON_INDENT(2)) : NULL;
                json_decref(arr);
                if (s)
                        printf("%s\n", s);
        } else {
                if (n > 0)
                        printf("%-5s %-7s %8s %8s %6s %9s %7s  %s\n", "SLOT", "STATE", "PID",
                               "INIT", "MOUNTS", "PROCESSES", "AGE", "PLAN");
                for (size_t i = 0; i < n; i++)
                        printf("%-5d %-7s %8d %8d %6u %9u %6llds  %s\n", l[i].slot,
                               l[i].in_use  ? "in-use"
                               : l[i].valid ? "stale"
                                            : "invalid",
                               (int)l[i].pid, l[i].init_alive ? (int)l[i].init : 0, l[i].mounts,
                               l[i].processes, (long long)(l[i].started ? now - l[i].started : 0),
                               l[i].plan ? l[i].plan : "?");
        }
        worker_slot_infos_free(l, n);
        return EXIT_OK;
}

static int verb_clean(struct worker_args *a)
{
        struct worker_slot_info *l = NULL;
        size_t n = 0;
        int r, ret = EXIT_OK;

        r = worker_slots_list(a->root, &l, &n);
        if (r < 0) {
                log_error_errno(r, "cannot list the slots under '%s': %m", a->root);
                return EXIT_FAILURE_;
        }
        for (size_t i = 0; i < n; i++) {
                struct worker_clean_result c;

                r = worker_slot_clean(a->root, l[i].slot, a->all ? WORKER_CLEAN_ALL : 0, &c);
                if (r < 0) {
                        log_error_errno(r, "cannot clean slot %d ('%s'): %m", l[i].slot, l[i].dir);
                        ret = EXIT_FAILURE_;
                        continue;
                }
                if (c.skipped_in_use) {
                        printf("slot %d: in use by pid %d, left alone (--all kills it)\n",
                               l[i].slot, (int)l[i].pid);
                        continue;
                }
                printf("slot %d: cleaned%s", l[i].slot, c.killed ? ", its worker killed" : "");
                if (c.unmounted || c.detached)
                        printf(", %u mount(s) unmounted, %u detached", c.unmounted, c.detached);
                printf("\n");
                if (c.detached)
                        log_warning("slot %d: %u mount(s) stayed busy and were detached "
                                    "(MNT_DETACH)",
                                    l[i].slot, c.detached);
        }
        if (n == 0)
                printf("no slot under '%s'\n", a->root);
        worker_slot_infos_free(l, n);
        return ret;
}

static int verb_plan(struct worker_args *a)
{
        _cleanup_(worker_plan_freep) struct worker_plan *wp = NULL;
        _cleanup_free_ char *error = NULL, *s = NULL;
        json_t *j = NULL;
        int r;

        if (a->dflt) {
                if (a->n_args > 0) {
                        log_error("--default takes no FILE");
                        return EXIT_USAGE;
                }
                fputs(worker_default_plan, stdout);
                return EXIT_OK;
        }
        if (a->n_args != 1) {
                log_error("give --default or one plan FILE");
                return EXIT_USAGE;
        }
        r = worker_plan_load(a->argv[0], a->root, a->slot < 0 ? 0 : a->slot, &wp, &error);
        if (r < 0) {
                log_error_errno(r, "invalid plan: %s", error ? error : "%m");
                return EXIT_FAILURE_;
        }
        r = mount_plan_to_json(wp->plan, &j);
        s = r >= 0 ? json_dumps(j, JSON_INDENT(2)) : NULL;
        json_decref(j);
        if (!s)
                return log_oom(), EXIT_FAILURE_;
        printf("%s\n", s);
        return EXIT_OK;
}

int cmd_worker(int argc, char **argv)
{
        _cleanup_(args_done) struct worker_args a = {};
        const char *verb;
        int r;

        if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h")) {
                help_worker();
                return argc < 2 ? EXIT_USAGE : EXIT_OK;
        }
        verb = argv[1];
        if (!streq(verb, "run") && !streq(verb, "pool") && !streq(verb, "list") &&
            !streq(verb, "clean") && !streq(verb, "plan")) {
                log_error("unknown verb 'strata worker %s'; run 'strata worker --help'", verb);
                return EXIT_USAGE;
        }
        optind = 0;
        r = parse(argc - 1, argv + 1, verb, &a);
        if (r > 0)
                return EXIT_OK;
        if (r < 0)
                return EXIT_USAGE;
        if (streq(verb, "run"))
                return verb_run(&a);
        if (streq(verb, "pool"))
                return verb_pool(&a);
        if ((streq(verb, "list") || streq(verb, "clean")) && a.n_args > 0) {
                log_error("'strata worker %s' takes no arguments", verb);
                return EXIT_USAGE;
        }
        if (streq(verb, "list"))
                return verb_list(&a);
        if (streq(verb, "clean"))
                return verb_clean(&a);
        return verb_plan(&a);
}
