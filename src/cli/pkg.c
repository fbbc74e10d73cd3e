/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "exec.h"
#include "log.h"
#include "macro.h"
#include "orch.h"
#include "podman.h"
#include "policy.h"
#include "orch-args.h"
#include "strata.h"

/* `strata pkg`: packages as podman containers, driven by the orchestrator
 * engine (src/lib/orch/orch.h) without a daemon. */

enum pull_mode { PULL_MISSING, PULL_ALWAYS, PULL_NEVER };

static struct orch_args arg_orch;
static bool arg_json;
static bool arg_apply;
static bool arg_force;
static const char *arg_image;
static int arg_tier = -1;
static int64_t arg_grace = -1;
static const char *arg_network;
static enum pull_mode arg_pull = PULL_MISSING;
static double arg_watch = -1;

void help_pkg(void)
{
        printf(
            "Usage: strata pkg [OPTIONS] COMMAND [ID] [ARGS...]\n"
            "\n"
            "Installs and runs packages as podman containers, with the orchestrator's\n"
            "policy: stop grace periods, pull retry, failsafe install, restart tracking,\n"
            "tiers and crash recovery.\n"
            "\n"
            "Commands:\n"
            "  install ID --image IMAGE [--tier T] [--grace S] [-- COMMAND...]\n"
            "                    pull (with retry), create, start and watch; a package\n"
            "                    that exits during the watch is removed again\n"
            "  start ID          start it (it is no longer marked user-stopped)\n"
            "  stop ID           stop it with its grace period; the health monitor and\n"
            "                    crash recovery leave it stopped\n"
            "  restart ID        stop (grace period) and start\n"
            "  uninstall ID      stop (grace period) and remove, forget its state\n"
            "  list              the installed packages\n"
            "  health            what the health monitor would do (--apply: do it once)\n"
            "  recover           crash recovery: if the manager's PID file names a dead\n"
            "                    process, restart what ran before, tier by tier\n"
            "  config            print the effective policy (config file format)\n"
            "\n"
            "Options:\n"
            "      --state-dir DIR     state (tracker, user-stopped set, snapshot)\n"
            "                          [$STRATA_ORCH_STATE_DIR or " ORCH_DEFAULT_STATE_DIR "]\n"
            "      --config FILE       policy config (JSON) [STATE_DIR/config.json if it exists]\n"
            "      --podman PATH       the podman binary [$STRATA_PODMAN or podman]\n"
            "      --podman-root DIR   podman --root [$STRATA_PODMAN_ROOT]\n"
            "      --podman-runroot DIR podman --runroot [$STRATA_PODMAN_RUNROOT]\n"
            "      --podman-runtime RT podman --runtime [$STRATA_PODMAN_RUNTIME]\n"
            "      --image IMAGE       install: the image\n"
            "      --tier TIER         install: database, infra or app [by config, else app]\n"
            "      --grace SECONDS     install: stop grace period [by config, see below]\n"
            "      --network NET       install: podman --network (e.g. host)\n"
            "      --pull WHEN         install: missing (default), always or never\n"
            "      --watch SECONDS     install: watch period [install.watch_seconds]\n"
            "      --apply             health: restart and notify as planned\n"
            "      --force             recover: recover even without a crash\n"
            "      --json              print data as JSON\n"
            "  -h, --help              show this help\n"
            "\n"
            "Policy defaults (each configurable in the config file):\n"
            "  stop grace: bitcoind, bitcoin-knots, bitcoin-core 600 s; lnd 330 s; others 30 s\n"
            "  pull: 3 attempts, 5 s then 15 s between them\n"
            "  restart: give up after 3 restarts; 1 h of stable running clears the count\n"
            "  tiers: database (0) before infra (1) before app (2)\n"
            "  install: watch 10 s after start, keep the last 20 log lines on failure\n"
            "\n"
            "Exit status: 0 success, 1 failure, 2 usage error, 75 state dir busy.\n");
}

static json_t *container_json(const struct orch *o, const struct container *c)
{
        return json_pack(
            "{s:s,s:s,s:s,s:s,s:i,s:b,s:s?,s:I,s:I,s:I,s:I}", "name", c->name, "id", c->id, "image",
            c->image, "state", container_state_to_string(c->state), "exit_code", c->exit_code,
            "user_stopped", nameset_contains(&o->user_stopped, c->name), "tier",
            tier_to_string(c->tier >= 0 ? c->tier : TIER_APP), "grace_seconds",
            (json_int_t)orch_grace_for(o, c), "created", (json_int_t)c->created_at, "started",
            (json_int_t)c->started_at, "finished", (json_int_t)c->finished_at);
}

/* What podman takes as a container name: [a-zA-Z0-9][a-zA-Z0-9_.-]*; at
 * most 64 so that it stays readable in every list and state file. */
static bool package_id_valid(const char *id)
{
        size_t n = strlen(id);

        if (n == 0 || n > 64 ||
            !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", id[0]))
                return false;
        return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static int print_json(json_t *j)
{
        _cleanup_free_ char *s = NULL;

        if (!j)
                return log_oom();
        s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(j);
        if (!s)
                return log_oom();
        printf("%s\n", s);
        return 0;
}

static void format_time(int64_t t, char *buf, size_t size)
{
        time_t tt = (time_t)t;
        struct tm tm;

        if (t <= 0) {
                snprintf(buf, size, "-");
                return;
        }
        gmtime_r(&tt, &tm);
        strftime(buf, size, "%Y-%m-%d %H:%M:%SZ", &tm);
}

static int do_list(struct orch *o)
{
        _cleanup_free_ char *error = NULL;
        struct container_list l = {};
        int r;

        r = orch_list(o, &l, &error);
        if (r < 0)
                return log_error_errno(r, "%s", error ?: strerror(-r));
        if (arg_json) {
                json_t *a = json_array();
                for (size_t i = 0; a && i < l.n; i++)
                        json_array_append_new(a, container_json(o, &l.items[i]));
                container_list_done(&l);
                return print_json(a);
        }
        if (l.n == 0)
                printf("no packages installed\n");
        else
                printf("%-20s %-12s %-8s %6s %-20s %s\n", "ID", "STATE", "TIER", "GRACE", "SINCE",
                       "IMAGE");
        for (size_t i = 0; i < l.n; i++) {
                const struct container *c = &l.items[i];
                char since[64], state[32];

                format_time(c->state == CONTAINER_RUNNING ? c->started_at
                                                          : (c->finished_at ?: c->created_at),
                            since, sizeof(since));
                if (c->state != CONTAINER_RUNNING && nameset_contains(&o->user_stopped, c->name))
                        snprintf(state, sizeof(state), "user-stopped");
                else if (c->state == CONTAINER_EXITED || c->state == CONTAINER_STOPPED)
                        snprintf(state, sizeof(state), "%s(%d)",
                                 container_state_to_string(c->state), c->exit_code);
                else
                        snprintf(state, sizeof(state), "%s", container_state_to_string(c->state));
                printf("%-20s %-12s %-8s %5" PRId64 "s %-20s %s\n", c->name, state,
                       tier_to_string(c->tier >= 0 ? c->tier : TIER_APP), orch_grace_for(o, c),
                       since, c->image);
        }
        container_list_done(&l);
        return 0;
}

static int do_health(struct orch *o)
{
        _cleanup_free_ char *error = NULL;
        struct health_plan p = {};
        int r;

        r = orch_health(o, arg_apply, &p, &error);
        if (r < 0)
                return log_error_errno(r, "%s", error ?: strerror(-r));
        for (size_t i = 0; i < p.n; i++)
                if (p.actions[i].verdict == HEALTH_NOTIFY)
                        log_warning("'%s' %s", p.actions[i].name, p.actions[i].reason);
        if (arg_json) {
                json_t *a = json_array();
                for (size_t i = 0; a && i < p.n; i++)
                        json_array_append_new(
                            a,
                            json_pack("{s:s,s:s,s:s,s:i,s:s}", "name", p.actions[i].name, "tier",
                                      tier_to_string(p.actions[i].tier), "action",
                                      health_verdict_to_string(p.actions[i].verdict), "attempts",
                                      (int)p.actions[i].attempts, "reason", p.actions[i].reason));
                health_plan_done(&p);
                return print_json(json_pack("{s:b,s:o}", "applied", arg_apply, "actions", a));
        }
        if (p.n == 0)
                printf("no packages installed\n");
        else
                printf("%-20s %-8s %-8s %s\n", "ID", "TIER", "ACTION", "REASON");
        for (size_t i = 0; i < p.n; i++)
                printf("%-20s %-8s %-8s %s\n", p.actions[i].name, tier_to_string(p.actions[i].tier),
                       health_verdict_to_string(p.actions[i].verdict), p.actions[i].reason);
        health_plan_done(&p);
        return 0;
}

static int do_recover(struct orch *o)
{
        _cleanup_free_ char *error = NULL;
        struct recovery_plan p = {};
        bool crashed = false;
        int r, failed = 0;

        r = orch_recover(o, arg_force, &crashed, &p, &error);
        if (r < 0)
                return log_error_errno(r, "%s", error ?: strerror(-r));
        /* a one-shot command is not a long-running manager: leave no PID
         * file behind, or the next run would take it for a live one */
        (void)orch_shutdown(o);
        for (size_t i = 0; i < p.n; i++)
                if (p.steps[i].error < 0) {
                        log_error_errno(p.steps[i].error, "cannot start '%s': %s", p.steps[i].name,
                                        podman_last_error(o->podman));
                        failed++;
                }
        if (arg_json) {
                json_t *a = json_array();
                for (size_t i = 0; a && i < p.n; i++)
                        json_array_append_new(
                            a, json_pack("{s:s,s:s,s:s,s:s?}", "name", p.steps[i].name, "tier",
                                         tier_to_string(p.steps[i].tier), "action",
                                         p.steps[i].skip        ? "skip"
                                         : p.steps[i].error < 0 ? "failed"
                                                                : "start",
                                         "reason", p.steps[i].reason));
                recovery_plan_done(&p);
                r = print_json(json_pack("{s:b,s:o}", "crashed", crashed, "steps", a));
                return r < 0 ? r : failed ? -EIO : 0;
        }
        if (!crashed && !arg_force)
                printf("no crash detected: nothing to recover\n");
        for (size_t i = 0; i < p.n; i++)
                printf("%-20s %-8s %-7s %s\n", p.steps[i].name, tier_to_string(p.steps[i].tier),
                       p.steps[i].skip        ? "skip"
                       : p.steps[i].error < 0 ? "failed"
                                              : "started",
                       p.steps[i].reason);
        recovery_plan_done(&p);
        return failed ? -EIO : 0;
}

static int do_install(struct orch *o, const char *id, const char *const *command,
                      struct policy *policy)
{
        _cleanup_free_ char *error = NULL;
        bool skip_pull = arg_pull == PULL_NEVER;
        int r;

        if (arg_watch >= 0)
                policy->install_watch_usec = (usec_t)(arg_watch * USEC_PER_SEC);
        if (arg_pull == PULL_MISSING) {
                r = podman_image_exists(o->podman, arg_image);
                if (r < 0)
                        return log_error_errno(r, "cannot check image '%s': %s", arg_image,
                                               podman_last_error(o->podman));
                skip_pull = r > 0;
        } else if (arg_pull == PULL_NEVER) {
                r = podman_image_exists(o->podman, arg_image);
                if (r < 0)
                        return log_error_errno(r, "cannot check image '%s': %s", arg_image,
                                               podman_last_error(o->podman));
                if (r == 0) {
                        log_error("cannot install '%s': '%s' is not in the image store and "
                                  "--pull never does not pull it",
                                  id, arg_image);
                        return -ENOENT;
                }
        }
        r = orch_install(
            o,
            &(struct install_request){
                .name = id,
                .image = arg_image,
                .tier = arg_tier >= 0 ? arg_tier : policy_tier_for(policy, id, arg_image),
                .grace_s = arg_grace >= 0 ? arg_grace : policy_grace_for(policy, id, arg_image),
                .network = arg_network,
                .command = command && command[0] ? command : NULL,
                .skip_pull = skip_pull,
            },
            &error);
        if (r < 0)
                return log_error_errno(r, "cannot install '%s': %s", id, error ?: strerror(-r));
        if (arg_json)
                return print_json(json_pack("{s:s,s:s}", "installed", id, "image", arg_image));
        printf("installed '%s' from '%s'\n", id, arg_image);
        return 0;
}

/* The options into arg_*: 0 to go on, else the exit status. */
static int parse_args(int argc, char **argv)
{
        enum {
                ARG_JSON = 0x100,
                ARG_APPLY,
                ARG_FORCE,
                ARG_IMAGE,
                ARG_TIER,
                ARG_GRACE,
                ARG_NETWORK,
                ARG_PULL,
                ARG_WATCH,
        };
        static const struct option options[] = {
            {"help", no_argument, NULL, 'h'},
            ORCH_ARGS_OPTIONS,
            {"json", no_argument, NULL, ARG_JSON},
            {"apply", no_argument, NULL, ARG_APPLY},
            {"force", no_argument, NULL, ARG_FORCE},
            {"image", required_argument, NULL, ARG_IMAGE},
            {"tier", required_argument, NULL, ARG_TIER},
            {"grace", required_argument, NULL, ARG_GRACE},
            {"network", required_argument, NULL, ARG_NETWORK},
            {"pull", required_argument, NULL, ARG_PULL},
            {"watch", required_argument, NULL, ARG_WATCH},
            {},
        };
        double d;
        int opt;

        orch_args_init(&arg_orch);
        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (orch_args_parse(&arg_orch, opt, optarg))
                        continue;
                switch (opt) {
                case 'h':
                        help_pkg();
                        return EXIT_OK;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_APPLY:
                        arg_apply = true;
                        break;
                case ARG_FORCE:
                        arg_force = true;
                        break;
                case ARG_IMAGE:
                        arg_image = optarg;
                        break;
                case ARG_TIER:
                        arg_tier = tier_from_string(optarg);
                        if (arg_tier < 0) {
                                log_error("unknown tier '%s' (database, infra or app)", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case ARG_GRACE:
                        if (orch_args_seconds(optarg, 0, &d) < 0 || d != (double)(int64_t)d) {
                                log_error("invalid --grace '%s': whole seconds, 0 to 86400",
                                          optarg);
                                return EXIT_USAGE;
                        }
                        arg_grace = (int64_t)d;
                        break;
                case ARG_NETWORK:
                        arg_network = optarg;
                        break;
                case ARG_PULL:
                        if (streq(optarg, "missing"))
                                arg_pull = PULL_MISSING;
                        else if (streq(optarg, "always"))
                                arg_pull = PULL_ALWAYS;
                        else if (streq(optarg, "never"))
                                arg_pull = PULL_NEVER;
                        else {
                                log_error("invalid --pull '%s' (missing, always or never)", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case ARG_WATCH:
                        if (orch_args_seconds(optarg, 0, &arg_watch) < 0) {
                                log_error("invalid --watch '%s': seconds, 0 to 86400", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case '?':
                        return EXIT_USAGE;
                default:
                        return EXIT_SOFTWARE;
                }
        }
        return -1;
}

static bool one_of(const char *s, const char *const *l)
{
        for (; *l; l++)
                if (streq(s, *l))
                        return true;
        return false;
}

struct pkg_command {
        const char *sub;
        const char *id;             /* NULL: none given */
        const char *const *command; /* install's -- COMMAND..., NULL: none */
};

/* The positional arguments into *ret, checked against what each command
 * takes: 0 to go on, else the exit status. */
static int parse_command(char **pos, size_t n_pos, struct pkg_command *ret)
{
        struct pkg_command c = {};

        if (n_pos == 0) {
                log_error("missing command; run 'strata pkg --help'");
                return EXIT_USAGE;
        }
        c.sub = pos[0];
        if (n_pos > 1 && !streq(pos[1], "--"))
                c.id = pos[1];
        if (n_pos > 2) {
                c.command = (const char *const *)pos + 2;
                if (streq(c.command[0], "--"))
                        c.command++;
        }

        if (one_of(c.sub, (const char *const[]){"install", "start", "stop", "restart", "uninstall",
                                                NULL})) {
                if (!c.id) {
                        log_error("'strata pkg %s' needs a package ID", c.sub);
                        return EXIT_USAGE;
                }
                if (!package_id_valid(c.id)) {
                        log_error("invalid package id '%s': 1 to 64 letters, digits, '_', '.' and "
                                  "'-', starting with a letter or digit",
                                  c.id);
                        return EXIT_USAGE;
                }
                if (!streq(c.sub, "install") && c.command) {
                        log_error("unexpected argument '%s'", c.command[0]);
                        return EXIT_USAGE;
                }
                if (streq(c.sub, "install") && !arg_image) {
                        log_error("'strata pkg install' needs --image IMAGE");
                        return EXIT_USAGE;
                }
        } else if (one_of(c.sub,
                          (const char *const[]){"list", "health", "recover", "config", NULL})) {
                if (c.id) {
                        log_error("unexpected argument '%s'", c.id);
                        return EXIT_USAGE;
                }
        } else {
                log_error("unknown pkg command '%s'; run 'strata pkg --help'", c.sub);
                return EXIT_USAGE;
        }
        *ret = c;
        return 0;
}

/* One command against the opened engine; logs its failure. */
static int run_command(struct orch *o, const struct pkg_command *c, struct policy *policy)
{
        _cleanup_free_ char *error = NULL;
        int (*op)(struct orch *, const char *, char **);
        int r;

        if (streq(c->sub, "install"))
                return do_install(o, c->id, c->command, policy);
        if (streq(c->sub, "list"))
                return do_list(o);
        if (streq(c->sub, "health"))
                return do_health(o);
        if (streq(c->sub, "recover"))
                return do_recover(o);
        op = streq(c->sub, "start")     ? orch_start
             : streq(c->sub, "stop")    ? orch_stop
             : streq(c->sub, "restart") ? orch_restart
                                        : orch_uninstall;
        r = op(o, c->id, &error);
        if (r < 0)
                log_error_errno(r, "cannot %s '%s': %s", c->sub, c->id, error ?: strerror(-r));
        return r;
}

int cmd_pkg(int argc, char **argv)
{
        _cleanup_(podman_freep) struct podman *pm = NULL;
        _cleanup_free_ char *error = NULL;
        struct pkg_command c;
        struct policy policy = {};
        struct orch *o = NULL;
        int r;

        r = parse_args(argc, argv);
        if (r >= 0)
                return r;
        r = parse_command(argv + optind, (size_t)(argc - optind), &c);
        if (r > 0)
                return r;

        if (orch_args_policy(&arg_orch, &policy) < 0)
                return EXIT_FAILURE_;
        if (streq(c.sub, "config")) {
                r = print_json(policy_to_json(&policy));
                policy_done(&policy);
                return r < 0 ? EXIT_FAILURE_ : EXIT_OK;
        }
        if (orch_args_podman(&arg_orch, &policy, &pm) < 0) {
                policy_done(&policy);
                return EXIT_FAILURE_;
        }

        /* list and health without --apply only read */
        r = orch_open(arg_orch.state_dir, pm, &policy, clock_real(),
                      !(streq(c.sub, "list") || (streq(c.sub, "health") && !arg_apply)), &o,
                      &error);
        if (r < 0) {
                policy_done(&policy);
                log_error_errno(r, "%s", error ?: strerror(-r));
                return r == -EWOULDBLOCK ? EXIT_TEMPFAIL : EXIT_FAILURE_;
        }
        for (size_t i = 0; i < o->n_warnings; i++)
                log_warning("%s", o->warnings[i]);

        r = run_command(o, &c, &policy);
        orch_free(o);
        policy_done(&policy);
        return r < 0 ? EXIT_FAILURE_ : EXIT_OK;
}
