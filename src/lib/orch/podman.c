/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "log.h"
#include "macro.h"
#include "podman.h"
#include "policy.h"

#define PODMAN_TIMEOUT_MS_DEFAULT      (120 * 1000)
#define PODMAN_PULL_TIMEOUT_MS_DEFAULT (900 * 1000)
/* podman's exit status when a named container or image does not exist
 * (documented for rm/stop/start as 1 in some versions and 125 with "no such"
 * in others); inspect of a missing object is 125 with "[]" on stdout, which
 * is what podman_inspect() relies on. */

static const char *const state_names[_CONTAINER_STATE_MAX] = {
    [CONTAINER_CREATED] = "created", [CONTAINER_RUNNING] = "running", [CONTAINER_EXITED] = "exited",
    [CONTAINER_STOPPED] = "stopped", [CONTAINER_OTHER] = "other",
};

const char *container_state_to_string(enum container_state s)
{
        return s >= 0 && s < _CONTAINER_STATE_MAX ? state_names[s] : "other";
}

enum container_state container_state_from_string(const char *s)
{
        if (!s)
                return CONTAINER_OTHER;
        for (int i = 0; i < CONTAINER_OTHER; i++)
                if (strcasecmp(state_names[i], s) == 0)
                        return (enum container_state)i;
        /* podman also says "configured" for a created container */
        if (strcasecmp(s, "configured") == 0 || strcasecmp(s, "initialized") == 0)
                return CONTAINER_CREATED;
        return CONTAINER_OTHER;
}

void container_done(struct container *c)
{
        if (!c)
                return;
        free(c->name);
        free(c->id);
        free(c->image);
        *c = (struct container){};
}

void container_list_done(struct container_list *l)
{
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++)
                container_done(&l->items[i]);
        free(l->items);
        *l = (struct container_list){};
}

const struct container *container_list_find(const struct container_list *l, const char *name)
{
        for (size_t i = 0; i < l->n; i++)
                if (streq_ptr(l->items[i].name, name))
                        return &l->items[i];
        return NULL;
}

int podman_new(struct executor *executor, const char *const *command, struct podman **ret)
{
        _cleanup_free_ struct podman *p = NULL;
        size_t n = 0;

        if (!command || !command[0])
                return -EINVAL;
        while (command[n])
                n++;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->command = calloc(n + 1, sizeof(char *));
        if (!p->command)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                p->command[i] = strdup(command[i]);
                if (!p->command[i]) {
                        strv_free(p->command);
                        return -ENOMEM;
                }
        }
        p->executor = executor;
        p->timeout_ms = PODMAN_TIMEOUT_MS_DEFAULT;
        p->pull_timeout_ms = PODMAN_PULL_TIMEOUT_MS_DEFAULT;
        *ret = TAKE_PTR(p);
        return 0;
}

struct podman *podman_free(struct podman *p)
{
        if (!p)
                return NULL;
        strv_free(p->command);
        free(p->last_error);
        free(p);
        return NULL;
}

const char *podman_last_error(const struct podman *p)
{
        return p->last_error ?: "";
}

static void set_last_error(struct podman *p, const struct exec_result *res)
{
        size_t l = res->err_len;
        char *e;

        while (l > 0 && (res->err[l - 1] == '\n' || res->err[l - 1] == ' '))
                l--;
        if (l == 0 && res->timed_out)
                e = strdup("timed out");
        else if (l == 0) {
                if (asprintf(&e, "exited with status %d", res->status) < 0)
                        e = NULL;
        } else
                e = strndup(res->err, l);
        free(p->last_error);
        p->last_error = e;
}

/* Runs podman with args after the global options. Returns 0 and fills
 * *ret whatever the exit status; -errno when it could not run. */
static int podman_run(struct podman *p, const char *const *args, int64_t timeout_ms,
                      struct exec_result *ret)
{
        size_t n_cmd = 0, n_args = 0;
        _cleanup_free_ const char **argv = NULL;
        int r;

        while (p->command[n_cmd])
                n_cmd++;
        while (args[n_args])
                n_args++;
        argv = calloc(n_cmd + n_args + 1, sizeof(char *));
        if (!argv)
                return -ENOMEM;
        for (size_t i = 0; i < n_cmd; i++)
                argv[i] = p->command[i];
        for (size_t i = 0; i < n_args; i++)
                argv[n_cmd + i] = args[i];

        r = executor_run(p->executor,
                         &(struct exec_request){.argv = argv, .timeout_ms = timeout_ms}, ret);
        if (r < 0) {
                free(p->last_error);
                p->last_error = NULL;
                if (asprintf(&p->last_error, "cannot run '%s': %s", argv[0], strerror(-r)) < 0)
                        p->last_error = NULL;
                return r;
        }
        if (ret->status != 0)
                set_last_error(p, ret);
        return 0;
}

/* Runs a command whose output does not matter: 0 on exit status 0, -EIO
 * otherwise (-ETIMEDOUT after a timeout, -ENOENT when podman is missing). */
static int podman_simple(struct podman *p, const char *const *args, int64_t timeout_ms)
{
        struct exec_result res = {};
        int r;

        r = podman_run(p, args, timeout_ms, &res);
        if (r < 0)
                return r;
        r = res.status == 0                            ? 0
            : res.timed_out                            ? -ETIMEDOUT
            : res.status == EXEC_STATUS_NOT_FOUND      ? -ENOENT
            : res.status == EXEC_STATUS_NOT_EXECUTABLE ? -EACCES
                                                       : -EIO;
        exec_result_done(&res);
        return r;
}

/* Whether `podman pull` takes --retry, asked once. */
static bool pull_has_retry(struct podman *p)
{
        struct exec_result res = {};

        if (p->pull_has_retry == 0) {
                p->pull_has_retry = -1;
                if (podman_run(p, (const char *const[]){"pull", "--help", NULL}, p->timeout_ms,
                               &res) >= 0 &&
                    res.status == 0 && res.out && strstr(res.out, "--retry "))
                        p->pull_has_retry = 1;
                exec_result_done(&res);
        }
        return p->pull_has_retry > 0;
}

int podman_pull(struct podman *p, const char *image)
{
        if (pull_has_retry(p))
                return podman_simple(
                    p, (const char *const[]){"pull", "--quiet", "--retry", "0", image, NULL},
                    p->pull_timeout_ms);
        return podman_simple(p, (const char *const[]){"pull", "--quiet", image, NULL},
                             p->pull_timeout_ms);
}

int podman_image_exists(struct podman *p, const char *image)
{
        struct exec_result res = {};
        int r;

        r = podman_run(p, (const char *const[]){"image", "exists", image, NULL}, p->timeout_ms,
                       &res);
        if (r < 0)
                return r;
        /* documented: 0 exists, 1 does not, anything else is an error */
        r = res.status == 0 ? 1 : res.status == 1 ? 0 : res.timed_out ? -ETIMEDOUT : -EIO;
        exec_result_done(&res);
        return r;
}

int podman_create(struct podman *p, const struct container_spec *spec)
{
        char tier_label[64], grace_label[64], grace[32];
        const char *args[64];
        size_t n = 0;
        const char *tier = tier_to_string(spec->tier);

        if (!spec->name || !spec->image || !tier || spec->grace_s < 0)
                return -EINVAL;
        snprintf(tier_label, sizeof(tier_label), "%s=%s", PODMAN_LABEL_TIER, tier);
        snprintf(grace_label, sizeof(grace_label), "%s=%" PRId64, PODMAN_LABEL_GRACE,
                 spec->grace_s);
        snprintf(grace, sizeof(grace), "%" PRId64, spec->grace_s);

        args[n++] = "create";
        args[n++] = "--name";
        args[n++] = spec->name;
        args[n++] = "--label";
        args[n++] = PODMAN_LABEL_MANAGED "=1";
        args[n++] = "--label";
        args[n++] = tier_label;
        args[n++] = "--label";
        args[n++] = grace_label;
        args[n++] = "--stop-timeout";
        args[n++] = grace;
        if (spec->network) {
                args[n++] = "--network";
                args[n++] = spec->network;
        }
        args[n++] = spec->image;
        for (const char *const *c = spec->command; c && *c; c++) {
                if (n >= ELEMENTSOF(args) - 1)
                        return -E2BIG;
                args[n++] = *c;
        }
        args[n] = NULL;
        return podman_simple(p, args, p->timeout_ms);
}

int podman_start(struct podman *p, const char *name)
{
        return podman_simple(p, (const char *const[]){"start", name, NULL}, p->timeout_ms);
}

int podman_stop(struct podman *p, const char *name, int64_t grace_s)
{
        char t[32];

        if (grace_s < 0)
                return -EINVAL;
        snprintf(t, sizeof(t), "%" PRId64, grace_s);
        /* podman itself waits grace_s before SIGKILL: give it that on top */
        return podman_simple(p, (const char *const[]){"stop", "-t", t, name, NULL},
                             p->timeout_ms + grace_s * 1000);
}

int podman_rm(struct podman *p, const char *name)
{
        return podman_simple(p, (const char *const[]){"rm", "-f", name, NULL}, p->timeout_ms);
}

static int64_t json_int_or(const json_t *o, const char *key, int64_t def)
{
        json_t *v = json_object_get(o, key);
        return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

static char *json_strdup(const json_t *o, const char *key)
{
        const char *s = json_string_value(json_object_get(o, key));
        return s ? strdup(s) : NULL;
}

/* Podman says -62135596800 (year 1) for "never". */
static int64_t unix_or_zero(int64_t t)
{
        return t > 0 ? t : 0;
}

/* "2026-11-21T23:40:58.913279788Z" or with a +hh:mm offset -> seconds. */
static int64_t parse_rfc3339(const char *s)
{
        struct tm tm = {};
        const char *p;
        int64_t t;
        int sign, hh, mm;

        if (!s)
                return 0;
        p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!p || tm.tm_year < 71)
                return 0;
        t = (int64_t)timegm(&tm);
        if (*p == '.')
                for (p++; *p >= '0' && *p <= '9'; p++)
                        ;
        if ((*p == '+' || *p == '-') && sscanf(p + 1, "%d:%d", &hh, &mm) == 2) {
                sign = *p == '+' ? 1 : -1;
                t -= sign * (hh * 3600 + mm * 60);
        }
        return t;
}

static void labels_apply(const json_t *labels, struct container *c)
{
        const char *s;
        char *end;

        c->managed = false;
        c->tier = -1;
        c->grace_s = -1;
        if (!json_is_object(labels))
                return;
        s = json_string_value(json_object_get(labels, PODMAN_LABEL_MANAGED));
        c->managed = s && streq(s, "1");
        s = json_string_value(json_object_get(labels, PODMAN_LABEL_TIER));
        if (s)
                c->tier = tier_from_string(s) >= 0 ? tier_from_string(s) : -1;
        s = json_string_value(json_object_get(labels, PODMAN_LABEL_GRACE));
        if (s) {
                long long v;
                errno = 0;
                v = strtoll(s, &end, 10);
                if (errno == 0 && end != s && *end == '\0' && v >= 0)
                        c->grace_s = v;
        }
}

static int container_from_ps(const json_t *o, struct container *ret)
{
        struct container c = {.stop_timeout_s = -1};
        json_t *names = json_object_get(o, "Names");

        if (!json_is_object(o))
                return -EBADMSG;
        if (json_is_array(names) && json_array_size(names) > 0)
                c.name = strdup(json_string_value(json_array_get(names, 0)) ?: "");
        else
                c.name = json_strdup(o, "Names"); /* older podman: a string */
        c.id = json_strdup(o, "Id");
        c.image = json_strdup(o, "Image");
        if (!c.name || !c.id) {
                container_done(&c);
                return -EBADMSG;
        }
        if (!c.image) {
                c.image = strdup("");
                if (!c.image) {
                        container_done(&c);
                        return -ENOMEM;
                }
        }
        c.state = container_state_from_string(json_string_value(json_object_get(o, "State")));
        c.exit_code = (int)json_int_or(o, "ExitCode", 0);
        c.created_at = unix_or_zero(json_int_or(o, "Created", 0));
        c.started_at = unix_or_zero(json_int_or(o, "StartedAt", 0));
        c.finished_at = unix_or_zero(json_int_or(o, "ExitedAt", 0));
        labels_apply(json_object_get(o, "Labels"), &c);
        *ret = c;
        return 0;
}

int podman_parse_ps(const char *json, struct container_list *ret)
{
        json_error_t e;
        json_t *j = json_loads(json, 0, &e);
        struct container_list l = {};
        size_t i;
        json_t *o;
        int r = 0;

        if (!j) {
                log_debug("cannot parse podman ps output: line %d: %s", e.line, e.text);
                return -EBADMSG;
        }
        if (!json_is_array(j)) {
                json_decref(j);
                return -EBADMSG;
        }
        l.items = calloc(json_array_size(j) + 1, sizeof(struct container));
        if (!l.items) {
                json_decref(j);
                return -ENOMEM;
        }
        json_array_foreach(j, i, o)
        {
                r = container_from_ps(o, &l.items[l.n]);
                if (r < 0)
                        break;
                l.n++;
        }
        json_decref(j);
        if (r < 0) {
                container_list_done(&l);
                return r;
        }
        *ret = l;
        return 0;
}

int podman_parse_inspect(const char *json, struct container *ret)
{
        json_error_t e;
        json_t *j = json_loads(json, 0, &e), *o, *state, *config;
        struct container c = {.stop_timeout_s = -1};
        const char *name;

        if (!j)
                return -EBADMSG;
        if (!json_is_array(j)) {
                json_decref(j);
                return -EBADMSG;
        }
        if (json_array_size(j) == 0) {
                json_decref(j);
                return -ENOENT;
        }
        o = json_array_get(j, 0);
        state = json_object_get(o, "State");
        config = json_object_get(o, "Config");
        name = json_string_value(json_object_get(o, "Name"));
        if (!json_is_object(state) || !name) {
                json_decref(j);
                return -EBADMSG;
        }
        c.name = strdup(name[0] == '/' ? name + 1 : name);
        c.id = json_strdup(o, "Id");
        c.image = json_strdup(o, "ImageName");
        if (!c.image)
                c.image = json_strdup(config, "Image");
        if (!c.name || !c.id || !c.image) {
                container_done(&c);
                json_decref(j);
                return -EBADMSG;
        }
        c.state = container_state_from_string(json_string_value(json_object_get(state, "Status")));
        c.exit_code = (int)json_int_or(state, "ExitCode", 0);
        c.created_at = parse_rfc3339(json_string_value(json_object_get(o, "Created")));
        c.started_at = parse_rfc3339(json_string_value(json_object_get(state, "StartedAt")));
        c.finished_at = parse_rfc3339(json_string_value(json_object_get(state, "FinishedAt")));
        labels_apply(json_object_get(config, "Labels"), &c);
        c.stop_timeout_s = json_int_or(config, "StopTimeout", -1);
        json_decref(j);
        *ret = c;
        return 0;
}

int podman_inspect(struct podman *p, const char *name, struct container *ret)
{
        struct exec_result res = {};
        int r;

        r = podman_run(p, (const char *const[]){"inspect", "--type", "container", name, NULL},
                       p->timeout_ms, &res);
        if (r < 0)
                return r;
        if (res.timed_out)
                r = -ETIMEDOUT;
        else if (res.status == EXEC_STATUS_NOT_FOUND)
                r = -ENOENT;
        else {
                /* a missing container: non-zero status and an empty array */
                r = podman_parse_inspect(res.out_len > 0 ? res.out : "[]", ret);
                if (r == -EBADMSG && res.status != 0)
                        r = -EIO;
                else if (r == -EBADMSG) {
                        free(p->last_error);
                        p->last_error = strdup("cannot parse the output of 'podman inspect'");
                }
        }
        exec_result_done(&res);
        return r;
}

int podman_ps(struct podman *p, struct container_list *ret)
{
        struct exec_result res = {};
        int r;

        r = podman_run(p, (const char *const[]){"ps", "-a", "--format", "json", NULL},
                       p->timeout_ms, &res);
        if (r < 0)
                return r;
        if (res.status != 0)
                r = res.timed_out ? -ETIMEDOUT : -EIO;
        else {
                r = podman_parse_ps(res.out, ret);
                if (r == -EBADMSG) {
                        free(p->last_error);
                        p->last_error =
                            strdup("cannot parse the output of 'podman ps --format json'");
                }
        }
        exec_result_done(&res);
        return r;
}

int podman_logs(struct podman *p, const char *name, unsigned tail, char **ret)
{
        struct exec_result res = {};
        char t[16];
        char *s;
        int r;

        snprintf(t, sizeof(t), "%u", tail);
        r = podman_run(p, (const char *const[]){"logs", "--tail", t, name, NULL}, p->timeout_ms,
                       &res);
        if (r < 0)
                return r;
        if (res.status != 0) {
                exec_result_done(&res);
                return -EIO;
        }
        /* podman logs replays the container's stdout on stdout and its
         * stderr on stderr: keep both */
        if (asprintf(&s, "%s%s", res.out, res.err) < 0)
                r = -ENOMEM;
        else
                *ret = s;
        exec_result_done(&res);
        return r;
}
