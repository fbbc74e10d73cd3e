/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * system-migrate (also `strata migrate`): the front-end of the migration
 * engine in libstrata (migrate.h). Parses options, prints, maps errors to
 * exit codes: 0 success, 1 a migration failed and was rolled back, 2 usage
 * error, 75 another migration holds the lock, 70 internal error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auditlog.h"
#include "changes.h"
#include "cleanup.h"
#include "config.h"
#include "strata-version.h"
#include "json.h"
#include "progress.h"
#include "log.h"
#include "macro.h"
#include "migrate.h"
#include "migration.h"
#include "strata.h"
#include "strv.h"

struct migrate_args {
        const char *prog;
        const char *data_dir;
        const char *base;
        const char *dir;
        const char *to;
        const char *from;
        bool json;
        bool dry_run;
        bool last;
        bool all;
        bool rebuild;
        bool state;
        bool content;
        bool out_of_order;
        bool force;
        bool audit;
        bool why;
        const char *audit_config;
        const char *base_id;
        uint64_t timeout_usec;
        size_t max_layers;
        char **positional; /* command, then its arguments */
};

struct migrate_command {
        const char *name;
        const char *args;
        const char *summary;
        int (*run)(struct migrate_args *a);
};

static int exit_for(int r)
{
        switch (r) {
        case -EPROTO:
        case -EBADMSG: /* a corrupt metadata or record file: a problem found */
        case -EUCLEAN:
        case -EMEDIUMTYPE:
        case -EOPNOTSUPP: /* --audit where audit is not usable; no package manager */
                return EXIT_FAILURE_;
        case -EINVAL:
        case -ENOENT:
                return EXIT_USAGE;
        case -EWOULDBLOCK:
                return EXIT_TEMPFAIL;
        case -EINTR: /* as the shell reports a process the signal killed */
                return 128 + (migrate_interrupted() ?: SIGTERM);
        default:
                return EXIT_SOFTWARE;
        }
}

/* The last error logged, for the "error" member of --json output, and
 * whether the command printed its own JSON object. */
static char *last_error;
static bool json_printed;

/* Logs an error once and keeps it for --json. */
_printf_(1, 2) static void fail_msg(const char *format, ...)
{
        va_list ap;
        char *m = NULL;

        va_start(ap, format);
        if (vasprintf(&m, format, ap) < 0)
                m = NULL;
        va_end(ap);
        log_error("%s", m ? m : "out of memory");
        free(last_error);
        last_error = m;
}

/* Logs the engine's error once: the message names what and where; the
 * errno text follows where it says something. */
static int report(int r, const char *error)
{
        if (r == -EPROTO || r == -EWOULDBLOCK || r == -EINVAL || r == -ENOENT || r == -EUCLEAN ||
            r == -EINTR || r == -EMEDIUMTYPE || r == -EOPNOTSUPP || (r == -EBADMSG && error))
                fail_msg("%s", error ? error : "failed");
        else
                fail_msg("%s: %s", error ? error : "failed", strerror(-r));
        return exit_for(r);
}

static void print_json(json_t *j)
{
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

        if (s) {
                puts(s);
                free(s);
                json_printed = true;
        }
}

/* A path a command reads must exist: it names it and creates nothing. */
static int need_existing(const char *what, const char *path)
{
        struct stat st;

        if (stat(path, &st) < 0) {
                fail_msg("the %s '%s' does not exist: %s", what, path, strerror(errno));
                return EXIT_USAGE;
        }
        return 0;
}

struct event_sink {
        struct migrate_args *args;
        json_t *applied;
        json_t *would;
        json_t *findings;
        unsigned problems;
};

static json_t *changes_json(const unsigned *c)
{
        json_t *j = json_object();

        for (int k = 0; k < _CHANGE_KIND_MAX; k++) {
                char key[2] = {change_kind_to_char((enum change_kind)k), 0};
                json_object_set_new(j, key, json_integer(c ? c[k] : 0));
        }
        return j;
}

static void on_event(const struct migrate_event *e, void *userdata)
{
        struct event_sink *s = userdata;
        bool json = s->args->json;

        switch (e->type) {
        case MIGRATE_EVENT_APPLYING:
                /* progress: a live line on a terminal, else through the
                 * logger; -q silences both */
                if (!json)
                        progress_step("applying", e->index, e->total, e->id);
                break;
        case MIGRATE_EVENT_APPLIED:
                progress_hide();
                if (json) {
                        json_t *a = json_object();
                        json_object_set_new(a, "id", json_string(e->id));
                        json_object_set_new(a, "duration_ms", json_integer(e->duration_ms));
                        json_object_set_new(a, "changes", changes_json(e->changes));
                        json_object_set_new(a, "state_changes", changes_json(e->state_changes));
                        json_array_append_new(s->applied, a);
                } else {
                        printf("applied %s in %lld ms: A %u, M %u, D %u, R %u", e->id,
                               (long long)e->duration_ms, e->changes[0], e->changes[1],
                               e->changes[2], e->changes[3]);
                        if (e->state_changes && (e->state_changes[0] || e->state_changes[1] ||
                                                 e->state_changes[2] || e->state_changes[3]))
                                printf("; state: A %u, M %u, D %u, R %u", e->state_changes[0],
                                       e->state_changes[1], e->state_changes[2],
                                       e->state_changes[3]);
                        putchar('\n');
                }
                break;
        case MIGRATE_EVENT_FAILED:
                break; /* the error is logged once by the caller */
        case MIGRATE_EVENT_WOULD_APPLY:
                if (json) {
                        json_t *a = json_object();
                        json_object_set_new(a, "id", json_string(e->id));
                        json_array_append_new(s->would, a);
                } else
                        printf("would apply %s\n", e->id);
                break;
        case MIGRATE_EVENT_NOTICE:
                log_warning("%s", e->detail);
                break;
        case MIGRATE_EVENT_SQUASHED:
                if (!json)
                        log_notice("squashed into one layer: %s", e->id);
                break;
        case MIGRATE_EVENT_REPAIRED:
        case MIGRATE_EVENT_PROBLEM:
                if (e->type == MIGRATE_EVENT_PROBLEM)
                        s->problems++;
                if (s->findings) {
                        json_t *f = json_object();
                        json_object_set_new(f, "repaired",
                                            json_boolean(e->type == MIGRATE_EVENT_REPAIRED));
                        json_object_set_new(f, "id", e->id ? json_string(e->id) : json_null());
                        json_object_set_new(f, "message", json_string(e->detail));
                        json_array_append_new(s->findings, f);
                }
                if (!json)
                        fprintf(e->type == MIGRATE_EVENT_PROBLEM ? stdout : stderr, "%s: %s\n",
                                e->type == MIGRATE_EVENT_REPAIRED ? "repaired" : "problem",
                                e->detail);
                break;
        default:
                break;
        }
}

static void options_from_args(struct migrate_args *a, struct event_sink *sink,
                              struct migrate_options *o)
{
        *o = (struct migrate_options){
            .data_dir = a->data_dir,
            .base = a->base,
            .migrations_dir = a->dir,
            .timeout_usec = a->timeout_usec,
            .max_layers = a->max_layers,
            .output_fd = a->json ? STDERR_FILENO : progress_output(STDOUT_FILENO),
            .event = on_event,
            .userdata = sink,
            .no_repair = a->rebuild,
            .restore_state = a->state,
            .base_id = a->base_id,
            .force = a->force,
            .out_of_order = a->out_of_order,
            .audit = a->audit,
            .audit_config = a->audit_config,
        };
}

static int open_engine(struct migrate_args *a, struct event_sink *sink, bool lock,
                       struct migrate **ret)
{
        _cleanup_free_ char *error = NULL;
        struct migrate_options o;
        int r;

        options_from_args(a, sink, &o);
        r = migrate_open(&o, lock, ret, &error);
        if (r < 0)
                return report(r, error);
        return 0;
}

static int need_args(struct migrate_args *a, size_t min, size_t max)
{
        size_t n = strv_length(a->positional) - 1;

        if (n < min || n > max) {
                fail_msg("'%s %s' takes %s; see '%s %s --help'", a->prog, a->positional[0],
                         min == max && min == 0 ? "no arguments"
                         : min == max           ? "exactly one argument"
                                                : "more arguments",
                         a->prog, a->positional[0]);
                return -EINVAL;
        }
        return 0;
}

/* The start of a command on the engine that takes n arguments: EXIT_USAGE
 * (logged) for another number of them, else open_engine()'s: 0 with *ret
 * open, or the exit status of the error it reported. */
static int open_engine_for(struct migrate_args *a, size_t n, struct event_sink *sink, bool lock,
                           struct migrate **ret)
{
        if (need_args(a, n, n) < 0)
                return EXIT_USAGE;
        return open_engine(a, sink, lock, ret);
}

static int run_new(struct migrate_args *a)
{
        _cleanup_free_ char *error = NULL, *path = NULL;
        struct event_sink sink = {a};
        struct migrate_options o;
        int r;

        if (need_args(a, 1, 1) < 0)
                return EXIT_USAGE;
        if (strlen(a->positional[1]) > MIGRATION_LABEL_MAX) {
                fail_msg("invalid label '%.20s...': at most %d characters (the names derived "
                         "from an id must fit the file system's and the overlay's limits)",
                         a->positional[1], MIGRATION_LABEL_MAX);
                return EXIT_USAGE;
        }
        options_from_args(a, &sink, &o);
        r = migrate_new(&o, a->positional[1], NULL, &path, &error);
        if (r < 0)
                return report(r, error);
        if (a->json) {
                json_t *j =
                    json_pack("{s:s, s:s+}", "path", path, "script", path, "/" MIGRATION_SCRIPT);
                print_json(j);
                json_decref(j);
        } else
                printf("%s/%s\n", path, MIGRATION_SCRIPT);
        return EXIT_OK;
}

/* --json result of up and install: {KEY: [...], "error": null|"..."}. */
static void print_apply_result(const char *key, json_t *list, int ret, const char *error)
{
        json_t *j = json_object();

        json_object_set(j, key, list);
        json_object_set_new(j, "error",
                            ret ? json_string(error        ? error
                                              : last_error ? last_error
                                                           : "failed")
                                : json_null());
        print_json(j);
        json_decref(j);
}

static void on_interrupt(int sig)
{
        migrate_interrupt(sig);
}

/* Ctrl-C, SIGTERM and SIGHUP stop up and install cleanly: the migration
 * being applied is thrown away, and the exit status says which signal. */
static void catch_interrupts(void)
{
        struct sigaction sa = {.sa_handler = on_interrupt};

        sigemptyset(&sa.sa_mask);
        (void)sigaction(SIGINT, &sa, NULL);
        (void)sigaction(SIGTERM, &sa, NULL);
        (void)sigaction(SIGHUP, &sa, NULL);
}

static int run_up(struct migrate_args *a)
{
        _cleanup_(migrate_freep) struct migrate *m = NULL;
        _cleanup_free_ char *error = NULL;
        struct event_sink sink = {a, json_array(), json_array(), NULL, 0};
        int r, ret;

        catch_interrupts();
        if ((ret = open_engine_for(a, 0, &sink, !a->dry_run, &m)) == 0) {
                r = migrate_up(m, a->to, a->dry_run, &error);
                if (r < 0)
                        ret = report(r, error);
                else if (!a->json && r == 0)
                        printf("nothing to apply\n");
        }
        if (a->json && ret != EXIT_USAGE)
                print_apply_result(a->dry_run ? "would_apply" : "applied",
                                   a->dry_run ? sink.would : sink.applied, ret, error);
        json_decref(sink.applied);
        json_decref(sink.would);
        return ret;
}

static int run_install(struct migrate_args *a)
{
        _cleanup_(migrate_freep) struct migrate *m = NULL;
        _cleanup_free_ char *error = NULL;
        struct event_sink sink = {a, json_array(), json_array(), NULL, 0};
        int r, ret;

        catch_interrupts();
        if (strv_length(a->positional) < 2) {
                fail_msg("'%s install' needs at least one package", a->prog);
                ret = EXIT_USAGE;
        } else if ((ret = open_engine(a, &sink, true, &m)) == 0) {
                r = migrate_install(m, a->positional + 1, &error);
                if (r < 0)
                        ret = report(r, error);
        }
        if (a->json && ret != EXIT_USAGE)
                print_apply_result("applied", sink.applied, ret, error);
        json_decref(sink.applied);
        json_decref(sink.would);
        return ret;
}

static int run_status(struct migrate_args *a)
{
        _cleanup_(migrate_freep) struct migrate *m = NULL;
        _cleanup_free_ char *error = NULL;
        struct event_sink sink = {a};
        json_t *j = NULL, *v;
        size_t i;
        int r;

        if (need_args(a, 0, 0) < 0)
                return EXIT_USAGE;
        r = need_existing("migrations dir", a->dir ? a->dir : "migrations");
        if (r != 0)
                return r;
        r = open_engine(a, &sink, false, &m);
        if (r != 0)
                return r;
        r = migrate_status(m, &j, &error);
        if (r < 0)
                return report(r, error);
        /* a migration squashed with others into one layer says which */
        json_array_foreach(json_object_get(j, "applied"), i, v)
        {
                json_t *layer = json_object_get(v, "layer");

                if (json_is_string(layer) &&
                    !streq(json_string_value(layer),
                           json_string_value(json_object_get(v, "id")) ?: ""))
                        json_object_set(v, "squashed_into", layer);
        }
        if (a->json) {
                print_json(j);
                json_decref(j);
                return EXIT_OK;
        }
        printf("applied:%s\n", json_array_size(json_object_get(j, "applied")) ? "" : " none");
        json_array_foreach(json_object_get(j, "applied"), i, v)
        {
                json_t *c = json_object_get(v, "changes");
                const char *layer = json_string_value(json_object_get(v, "layer"));
                const char *id = json_string_value(json_object_get(v, "id"));

                /* the time, duration and changes of a squashed layer are
                 * the whole layer's: not repeated for each migration in it */
                const char *changed = json_is_true(json_object_get(v, "script_changed"))
                                          ? "  (install_script.sh changed since it was applied)"
                                          : "";

                if (json_object_get(v, "squashed_into"))
                        printf("  %-40s squashed into %s%s\n", id, layer, changed);
                else
                        printf("  %-40s %s %6lld ms  A %lld M %lld D %lld R %lld%s\n", id,
                               json_string_value(json_object_get(v, "applied_at")),
                               (long long)json_integer_value(json_object_get(v, "duration_ms")),
                               (long long)json_integer_value(json_object_get(c, "A")),
                               (long long)json_integer_value(json_object_get(c, "M")),
                               (long long)json_integer_value(json_object_get(c, "D")),
                               (long long)json_integer_value(json_object_get(c, "R")), changed);
        }
        printf("pending:%s\n", json_array_size(json_object_get(j, "pending")) ? "" : " none");
        json_array_foreach(json_object_get(j, "pending"), i, v)
            printf("  %s\n", json_string_value(json_object_get(v, "id")));
        if (json_array_size(json_object_get(j, "rolled_back"))) {
                printf("rolled back:\n");
                json_array_foreach(json_object_get(j, "rolled_back"), i, v)
                    printf("  %s\n", json_string_value(json_object_get(v, "id")));
        }
        v = json_object_get(j, "scratch_upper");
        printf("scratch upper: %lld path%s in %s (runtime edits, above every layer)\n",
               (long long)json_integer_value(json_object_get(v, "paths")),
               json_integer_value(json_object_get(v, "paths")) == 1 ? "" : "s",
               json_string_value(json_object_get(v, "path")));
        json_decref(j);
        return EXIT_OK;
}

/* The layer id was squashed into with other migrations, or NULL. */
static char *squashed_into(struct migrate *m, const char *id)
{
        _cleanup_free_ char *error = NULL;
        json_t *j = NULL, *v;
        char *ret = NULL;
        size_t i;

        if (migrate_status(m, &j, &error) < 0)
                return NULL;
        json_array_foreach(json_object_get(j, "applied"), i, v)
        {
                const char *vid = json_string_value(json_object_get(v, "id"));
                const char *layer = json_string_value(json_object_get(v, "layer"));

                if (vid && layer && streq(vid, id) && !streq(layer, id))
                        ret = strdup(layer);
        }
        json_decref(j);
        return ret;
}

/* diff --why: each change with the programs audit.list names for it. */
static int print_why(struct migrate *m, const struct change_list *l, const char *id, bool json)
{
        _cleanup_(audit_list_done) struct audit_list al = {};
        _cleanup_free_ char *error = NULL;
        _cleanup_free_ size_t *idx = NULL;
        json_t *j = NULL, *arr = NULL;
        int r;

        r = migrate_audit_list(m, id, &al, &error);
        if (r < 0)
                return report(r, error);
        r = audit_list_by_path(&al, &idx);
        if (r < 0)
                return report(r, "cannot sort the audit list");
        if (json) {
                j = json_object();
                arr = json_array();
                json_object_set_new(j, "id", json_string(id));
                json_object_set_new(j, "changes", arr);
        }
        for (size_t i = 0; i < l->n; i++) {
                _cleanup_free_ char *why = NULL;
                const struct change *c = &l->items[i];

                r = audit_list_why(&al, idx, c->path, &why);
                if (r < 0) {
                        json_decref(j);
                        return report(r, "cannot attribute the changes");
                }
                if (j) {
                        char k[2] = {change_kind_to_char(c->kind), 0};

                        json_array_append_new(arr,
                                              json_pack("{s:s, s:s, s:b, s:s}", "kind", k, "path",
                                                        c->path, "state", c->state, "why", why));
                } else
                        printf("%s%c %s\tby %s\n", c->state ? "S" : "",
                               change_kind_to_char(c->kind), c->path, why);
        }
        if (j) {
                print_json(j);
                json_decref(j);
        }
        return EXIT_OK;
}

static int run_diff(struct migrate_args *a)
{
        _cleanup_(migrate_freep) struct migrate *m = NULL;
        _cleanup_(change_list_done) struct change_list l = {};
        _cleanup_free_ char *error = NULL, *text = NULL, *squashed = NULL;
        struct event_sink sink = {a};
        int r;

        r = open_engine_for(a, 1, &sink, false, &m);
        if (r != 0)
                return r;
        r = migrate_diff(m, a->positional[1], &l, &error);
        if (r < 0)
                return report(r, error);
        squashed = squashed_into(m, a->positional[1]);
        if (a->why)
                return print_why(m, &l, a->positional[1], a->json);
        if (a->json) {
                json_t *j = json_object(), *arr = json_array();

                for (size_t i = 0; i < l.n; i++) {
                        char k[2] = {change_kind_to_char(l.items[i].kind), 0};
                        json_array_append_new(arr, json_pack("{s:s, s:s, s:b}", "kind", k, "path",
                                                             l.items[i].path, "state",
                                                             l.items[i].state));
                }
                json_object_set_new(j, "id", json_string(a->positional[1]));
                if (squashed)
                        json_object_set_new(j, "squashed_into", json_string(squashed));
                json_object_set_new(j, "changes", arr);
                print_json(j);
                json_decref(j);
                return EXIT_OK;
        }
        if (squashed)
                log_notice("%s is squashed into %s with other migrations: these are the "
                           "changes of that whole layer",
                           a->positional[1], squashed);
        r = changes_format(&l, &text);
        if (r < 0)
                return report(r, "cannot format the change list");
        fputs(text, stdout);
        return EXIT_OK;
}

static int run_show(struct migrate_args *a)
{
        _cleanup_(migrate_freep) struct migrate *m = NULL;
        _cleanup_free_ char *error = NULL;
        struct event_sink sink = {a};
        json_t *j = NULL, *c;
        const char *log;
        int r;

        r = open_engine_for(a, 1, &sink, false, &m);
        if (r != 0)
                return r;
        r = migrate_show(m, a->positional[1], &j, &error);
        if (r < 0)
                return report(r, error);
        if (a->json) {
                print_json(j);
                json_decref(j);
                return EXIT_OK;
        }
        printf("id:          %s\n", json_string_value(json_object_get(j, "id")));
        printf("status:      %s\n", json_string_value(json_object_get(j, "status")));
        if (json_object_get(j, "layer")) {
                c = json_object_get(j, "changes");
                printf("layer:       %s%s\n", json_string_value(json_object_get(j, "layer")),
                       json_object_get(j, "squashed_into")
                           ? " (squashed: the time, duration and changes are the whole layer's)"
                           : "");
                printf("applied at:  %s\n", json_string_value(json_object_get(j, "applied_at")));
                printf("duration:    %lld ms\n",
                       (long long)json_integer_value(json_object_get(j, "duration_ms")));
                printf("changes:     A %lld M %lld D %lld R %lld\n",
                       (long long)json_integer_value(json_object_get(c, "A")),
                       (long long)json_integer_value(json_object_get(c, "M")),
                       (long long)json_integer_value(json_object_get(c, "D")),
                       (long long)json_integer_value(json_object_get(c, "R")));
        }
        if (json_object_get(j, "record"))
                printf("record:      %s\n", json_string_value(json_object_get(j, "record")));
        log = json_string_value(json_object_get(j, "log"));
        if (log) {
                printf("log:\n");
                fputs(log, stdout);
                if (*log && log[strlen(log) - 1] != '\n')
                        putchar('\n');
        }
        json_decref(j);
        return EXIT_OK;
}

static int run_rollback(struct migrate_args *a)
{
        _cleanup_(migrate_freep) struct migrate *m = NULL;
        _cleanup_free_ char *error = NULL;
        struct event_sink sink = {a};
        int r;

        if (need_args(a, 0, 0) < 0)
                return EXIT_USAGE;
        if (!!a->to + a->last + a->all != 1) {
                fail_msg("'%s rollback' needs exactly one of --to ID, --last and --all", a->prog);
                return EXIT_USAGE;
        }
        r = open_engine(a, &sink, true, &m);
        if (r != 0)
                return r;
        r = a->all ? migrate_rollback_all(m, &error) : migrate_rollback(m, a->to, &error);
        if (r < 0)
                return report(r, error);
        if (a->json) {
                json_t *j = json_pack("{s:i}", "deactivated_layers", r);
                print_json(j);
                json_decref(j);
        } else
                printf("rolled back %d layer%s\n", r, r == 1 ? "" : "s");
        return EXIT_OK;
}

static int run_squash(struct migrate_args *a)
{
        _cleanup_(migrate_freep) struct migrate *m = NULL;
        _cleanup_free_ char *error = NULL;
        struct event_sink sink = {a};
        int r;

        if (need_args(a, 0, 0) < 0)
                return EXIT_USAGE;
        if (!a->from || !a->to) {
                fail_msg("'%s squash' needs --from ID and --to ID", a->prog);
                return EXIT_USAGE;
        }
        r = open_engine(a, &sink, true, &m);
        if (r != 0)
                return r;
        r = migrate_squash(m, a->from, a->to, &error);
        if (r < 0)
                return report(r, error);
        return EXIT_OK;
}

static int run_verify(struct migrate_args *a)
{
        _cleanup_(migrate_freep) struct migrate *m = NULL;
        _cleanup_free_ char *error = NULL;
        struct event_sink sink = {a, NULL, NULL, json_array(), 0};
        int r, ret;

        if (need_args(a, 0, 0) < 0 || (ret = need_existing("data dir", a->data_dir)) != 0) {
                json_decref(sink.findings);
                return EXIT_USAGE;
        }
        /* Opening with the lock repairs (and reports through the sink). */
        ret = open_engine(a, &sink, true, &m);
        if (ret == 0 && a->rebuild) {
                /* Shows what it writes (or would, with --dry-run), then
                 * verifies the rebuilt store the usual way. */
                r = migrate_rebuild(m, a->dry_run, &error);
                if (r < 0)
                        ret = report(r, error);
                else if (a->dry_run && !a->json)
                        printf("would rebuild '%s/system/migrations/metadata.json' with %d "
                               "layer%s (--dry-run: nothing written)\n",
                               a->data_dir, r, r == 1 ? "" : "s");
        }
        if (ret == 0 && !(a->rebuild && a->dry_run)) {
                /* Opening did the same pass unless it rebuilt: a second
                 * would stat every layer again to say it all twice. */
                r = a->rebuild ? migrate_verify(m, true, &error) : 0;
                if (r >= 0 && a->content)
                        r = migrate_verify_content(m, &error);
                if (r < 0)
                        ret = report(r, error);
                else if (sink.problems > 0)
                        ret = EXIT_FAILURE_;
        }
        if (a->json && (ret == EXIT_OK || ret == EXIT_FAILURE_)) {
                json_t *j = json_object();
                json_object_set_new(j, "ok", json_boolean(ret == EXIT_OK));
                json_object_set(j, "findings", sink.findings);
                if (ret == EXIT_OK)
                        json_object_set_new(j, "error", json_null());
                else if (last_error)
                        json_object_set_new(j, "error", json_string(last_error));
                else
                        json_object_set_new(j, "error",
                                            json_sprintf("%u problem%s found", sink.problems,
                                                         sink.problems == 1 ? "" : "s"));
                print_json(j);
                json_decref(j);
        } else if (!a->json && ret == EXIT_OK)
                printf("ok: metadata and layer dirs agree\n");
        json_decref(sink.findings);
        return ret;
}

static int run_gc(struct migrate_args *a)
{
        _cleanup_(migrate_freep) struct migrate *m = NULL;
        _cleanup_free_ char *error = NULL;
        struct event_sink sink = {a};
        int r;

        if (need_args(a, 0, 0) < 0)
                return EXIT_USAGE;
        r = need_existing("data dir", a->data_dir);
        if (r != 0)
                return r;
        r = open_engine(a, &sink, true, &m);
        if (r != 0)
                return r;
        r = migrate_gc(m, &error);
        if (r < 0)
                return report(r, error);
        if (a->json) {
                json_t *j = json_pack("{s:i}", "removed", r);
                print_json(j);
                json_decref(j);
        } else
                printf("removed %d layer dir%s\n", r, r == 1 ? "" : "s");
        return EXIT_OK;
}

static const struct migrate_command migrate_commands[] = {
    {"new", "LABEL", "scaffold the next migration for today", run_new},
    {"status", "", "applied, pending and rolled-back migrations", run_status},
    {"up", "[--to ID] [--dry-run] [--out-of-order] [--audit]",
     "apply pending migrations in order, one layer each", run_up},
    {"install", "[--audit] PKG...", "create and apply a migration installing packages",
     run_install},
    {"diff", "[--why] ID", "the change list of a migration's layer", run_diff},
    {"show", "ID", "one migration: its status, record and log", run_show},
    {"rollback", "--to ID | --last | --all [--state]",
     "deactivate the layers above ID (the last one, or all)", run_rollback},
    {"squash", "--from ID --to ID", "merge consecutive layers into one", run_squash},
    {"verify", "[--content] [--rebuild [--dry-run]]",
     "check metadata against the layer dirs; repair leftovers", run_verify},
    {"gc", "", "delete rolled-back and squashed-away layer dirs", run_gc},
};

static void migrate_usage(FILE *f, const char *prog, const struct migrate_command *only)
{
        if (only)
                fprintf(f, "Usage: %s %s %s [OPTIONS]\n\n%s.\n\n", prog, only->name, only->args,
                        only->summary);
        else {
                fprintf(f,
                        "Usage: %s [OPTIONS] COMMAND [ARGS...]\n"
                        "\n"
                        "Migrations of the machine's system files, each captured as one overlayfs\n"
                        "layer: applied at most once, under a lock, thrown away when they fail.\n"
                        "\n"
                        "Commands:\n",
                        prog);
                for (size_t i = 0; i < ELEMENTSOF(migrate_commands); i++)
                        fprintf(f, "  %-8s %-22s %s\n", migrate_commands[i].name,
                                migrate_commands[i].args, migrate_commands[i].summary);
                fputc('\n', f);
        }
        fprintf(f, "Options:\n"
                   "      --data DIR        the data dir (default /data)\n"
                   "      --base DIR        the read-only base root, the lowest layer (default /)\n"
                   "      --dir DIR         the migrations dir (default ./migrations)\n"
                   "      --json            print data as JSON\n"
                   "      --to ID           up: stop after ID; rollback: keep ID and below;\n"
                   "                        squash: the last migration to merge\n"
                   "      --from ID         squash: the first migration to merge\n"
                   "      --last            rollback: deactivate the last layer\n"
                   "      --all             rollback: deactivate every layer\n"
                   "      --state           rollback: also put back the state the migrations\n"
                   "                        changed, where it has not changed since\n"
                   "      --dry-run         up: show what would be applied; verify --rebuild:\n"
                   "                        show what would be written\n"
                   "      --content         verify: check every layer's files against the\n"
                   "                        manifest written at its commit\n"
                   "      --rebuild         verify: rebuild metadata.json from the layers'\n"
                   "                        layer.json (id, parent, order), showing each layer\n"
                   "      --timeout SEC     up/install: kill a migration after SEC seconds\n"
                   "      --base-id ID      up/install: name the base ID (recorded at the first\n"
                   "                        up) instead of its computed os-release + digest\n"
                   "      --out-of-order    up: also apply pending migrations older than the\n"
                   "                        newest applied one\n"
                   "      --force           up/install: apply over a base other than the one\n"
                   "                        the layers were built over\n"
                   "      --audit           up/install: record which program (pid, exe) changed\n"
                   "                        which path, in the record's audit.list (auditd)\n"
                   "      --audit-config DIR  up/install --audit: the config dir auditd is\n"
                   "                        started with when none runs (default /etc/audit)\n"
                   "      --why             diff: show the programs beside each changed path\n"
                   "                        (from audit.list)\n"
                   "      --max-layers N    squash the oldest layers when more than N would\n"
                   "                        stack (default 499, the kernel's limit)\n"
                   "  -v, --verbose         more output;  -q, --quiet: errors only\n"
                   "      --log-level=LVL   error, warning, notice (default), info or debug\n"
                   "  -h, --help            show this help\n"
                   "  -V, --version         print the version\n"
                   "\n"
                   "Exit status: 0 success, 1 a migration failed and was rolled back (or verify\n"
                   "found a problem it cannot repair, or --audit finds audit unusable here),\n"
                   "2 usage error, 70 internal error,\n"
                   "75 another migration holds the lock.\n");
}

static int parse_uint(const char *s, uint64_t max, uint64_t *ret)
{
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s || *end || s[0] == '-' || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* Makes a relative path absolute against the cwd; *storage owns it. */
static int absolute(const char **path, char **storage)
{
        _cleanup_free_ char *cwd = NULL;

        if ((*path)[0] == '/')
                return 0;
        cwd = getcwd(NULL, 0);
        if (!cwd)
                return -errno;
        if (asprintf(storage, "%s/%s", cwd, *path) < 0)
                return -ENOMEM;
        *path = *storage;
        return 0;
}

/* The long options without a short letter (getopt_long values). */
enum {
        ARG_DATA = 0x100,
        ARG_BASE,
        ARG_DIR,
        ARG_JSON,
        ARG_TO,
        ARG_FROM,
        ARG_LAST,
        ARG_DRY_RUN,
        ARG_TIMEOUT,
        ARG_MAX_LAYERS,
        ARG_LOG_LEVEL,
        ARG_ALL,
        ARG_REBUILD,
        ARG_STATE,
        ARG_BASE_ID,
        ARG_FORCE,
        ARG_CONTENT,
        ARG_OUT_OF_ORDER,
        ARG_AUDIT,
        ARG_AUDIT_CONFIG,
        ARG_WHY,
};

/* The number options: --timeout and --max-layers. -1 to go on, or the
 * exit status of a usage error. */
static int parse_number_option(int opt, const char *arg, struct migrate_args *a)
{
        uint64_t v;

        if (opt == ARG_TIMEOUT) {
                if (parse_uint(arg, UINT64_MAX / 1000000, &v) < 0 || v == 0) {
                        log_error("invalid --timeout '%s': a positive number of seconds", arg);
                        return EXIT_USAGE;
                }
                a->timeout_usec = v * 1000000;
                return -1;
        }
        if (parse_uint(arg, MIGRATE_MAX_LAYERS, &v) < 0 || v < 2) {
                log_error("invalid --max-layers '%s': 2 to %d", arg, MIGRATE_MAX_LAYERS);
                return EXIT_USAGE;
        }
        a->max_layers = (size_t)v;
        return -1;
}

/* One option (getopt_long's opt, with optarg) into a, the positional
 * arguments, help and version. -1 to go on, or an exit status. */
static int parse_option(int opt, struct migrate_args *a, char ***positional, bool *help,
                        bool *version)
{
        int status;

        if (log_option(opt, ARG_LOG_LEVEL, optarg, &status))
                return status;

        switch (opt) {
        case 1:
                if (strv_extend(positional, optarg) < 0)
                        return log_oom(), EXIT_SOFTWARE;
                break;
        case 'h':
                *help = true;
                break;
        case 'V':
                *version = true;
                break;
        case ARG_DATA:
                a->data_dir = optarg;
                break;
        case ARG_BASE:
                a->base = optarg;
                break;
        case ARG_DIR:
                a->dir = optarg;
                break;
        case ARG_JSON:
                a->json = true;
                break;
        case ARG_TO:
                a->to = optarg;
                break;
        case ARG_FROM:
                a->from = optarg;
                break;
        case ARG_LAST:
                a->last = true;
                break;
        case ARG_ALL:
                a->all = true;
                break;
        case ARG_DRY_RUN:
                a->dry_run = true;
                break;
        case ARG_REBUILD:
                a->rebuild = true;
                break;
        case ARG_STATE:
                a->state = true;
                break;
        case ARG_BASE_ID:
                a->base_id = optarg;
                break;
        case ARG_FORCE:
                a->force = true;
                break;
        case ARG_CONTENT:
                a->content = true;
                break;
        case ARG_OUT_OF_ORDER:
                a->out_of_order = true;
                break;
        case ARG_AUDIT:
                a->audit = true;
                break;
        case ARG_AUDIT_CONFIG:
                a->audit_config = optarg;
                break;
        case ARG_WHY:
                a->why = true;
                break;
        case ARG_TIMEOUT:
        case ARG_MAX_LAYERS:
                return parse_number_option(opt, optarg, a);
        case '?':
                return EXIT_USAGE;
        default:
                return EXIT_SOFTWARE;
        }
        return -1;
}

/* The command named by the first positional argument: *ret (NULL when
 * there is none). -1 to go on, or the exit status of a usage error. */
static int find_command(char *const *positional, const char *prog,
                        const struct migrate_command **ret)
{
        *ret = NULL;
        if (!positional)
                return -1;
        for (size_t i = 0; i < ELEMENTSOF(migrate_commands); i++)
                if (streq(migrate_commands[i].name, positional[0]))
                        *ret = &migrate_commands[i];
        if (*ret)
                return -1;
        log_error("unknown command '%s'; run '%s --help' for the list", positional[0], prog);
        return EXIT_USAGE;
}

/* Runs the command with the data dir and base made absolute; with --json
 * a failure is one object with its error too. */
static int run_command(const struct migrate_command *c, struct migrate_args *a, const char *prog)
{
        _cleanup_free_ char *data_abs = NULL, *base_abs = NULL;
        int ret;

        if (absolute(&a->data_dir, &data_abs) < 0 || absolute(&a->base, &base_abs) < 0)
                return log_oom(), EXIT_SOFTWARE;
        progress_init(prog, a->json);
        ret = c->run(a);
        progress_end();
        if (a->json && ret != EXIT_OK && !json_printed) {
                json_t *j = json_pack("{s:s}", "error", last_error ? last_error : "failed");
                print_json(j);
                json_decref(j);
        }
        free(last_error);
        last_error = NULL;
        return ret;
}

int migrate_main(int argc, char **argv, const char *prog)
{
        static const struct option options[] = {
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},
            {"verbose", no_argument, NULL, 'v'},
            {"quiet", no_argument, NULL, 'q'},
            {"data", required_argument, NULL, ARG_DATA},
            {"base", required_argument, NULL, ARG_BASE},
            {"dir", required_argument, NULL, ARG_DIR},
            {"json", no_argument, NULL, ARG_JSON},
            {"to", required_argument, NULL, ARG_TO},
            {"from", required_argument, NULL, ARG_FROM},
            {"last", no_argument, NULL, ARG_LAST},
            {"dry-run", no_argument, NULL, ARG_DRY_RUN},
            {"timeout", required_argument, NULL, ARG_TIMEOUT},
            {"max-layers", required_argument, NULL, ARG_MAX_LAYERS},
            {"log-level", required_argument, NULL, ARG_LOG_LEVEL},
            {"all", no_argument, NULL, ARG_ALL},
            {"rebuild", no_argument, NULL, ARG_REBUILD},
            {"state", no_argument, NULL, ARG_STATE},
            {"base-id", required_argument, NULL, ARG_BASE_ID},
            {"force", no_argument, NULL, ARG_FORCE},
            {"content", no_argument, NULL, ARG_CONTENT},
            {"out-of-order", no_argument, NULL, ARG_OUT_OF_ORDER},
            {"audit", no_argument, NULL, ARG_AUDIT},
            {"audit-config", required_argument, NULL, ARG_AUDIT_CONFIG},
            {"why", no_argument, NULL, ARG_WHY},
            {},
        };
        _cleanup_strv_ char **positional = NULL;
        const struct migrate_command *c = NULL;
        struct migrate_args a = {.prog = prog, .data_dir = "/data", .base = "/"};
        bool help = false, version = false;
        int opt, ret;

        /* Options may come before or after the command; getopt's messages
         * start with argv[0]. */
        argv[0] = (char *)prog;
        optind = 0;
        while ((opt = getopt_long(argc, argv, "-hVvq", options, NULL)) >= 0) {
                ret = parse_option(opt, &a, &positional, &help, &version);
                if (ret >= 0)
                        return ret;
        }
        if (version) {
                if (positional) {
                        log_error("--version takes no arguments; unexpected '%s'", positional[0]);
                        return EXIT_USAGE;
                }
                printf("%s %s\n", prog, STRATA_VERSION);
                return EXIT_OK;
        }
        ret = find_command(positional, prog, &c);
        if (ret >= 0)
                return ret;
        if (help) {
                migrate_usage(stdout, prog, c);
                return EXIT_OK;
        }
        if (!c) {
                migrate_usage(stderr, prog, NULL);
                return EXIT_USAGE;
        }
        a.positional = positional;
        return run_command(c, &a, prog);
}

int cmd_migrate(int argc, char **argv)
{
        return migrate_main(argc, argv, "strata migrate");
}

void help_migrate(void)
{
        migrate_usage(stdout, "strata migrate", NULL);
}
