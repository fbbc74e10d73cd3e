/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "macro.h"
#include "rpc.h"
#include "strv.h"

#define IMAGE_MAX       255
#define COMMAND_MAX     64
#define COMMAND_ARG_MAX 4096
#define NETWORK_MAX     63

/* An error on its way into a response. */
struct rpc_error {
        int code;
        char *message;
        json_t *data; /* owned */
};

static void rpc_error_done(struct rpc_error *e)
{
        free(e->message);
        json_decref(e->data);
        *e = (struct rpc_error){};
}

static int rpc_error_set(struct rpc_error *e, int code, json_t *data, const char *format, ...)
    _printf_(4, 5);
static int rpc_error_set(struct rpc_error *e, int code, json_t *data, const char *format, ...)
{
        va_list ap;

        rpc_error_done(e);
        e->code = code;
        e->data = data;
        va_start(ap, format);
        if (vasprintf(&e->message, format, ap) < 0)
                e->message = NULL;
        va_end(ap);
        return -EINVAL;
}

/* -32602 naming the field. */
static int invalid_param(struct rpc_error *e, const char *field, const char *why)
{
        return rpc_error_set(e, RPC_INVALID_PARAMS, json_pack("{s:s}", "field", field),
                             "invalid params: '%s' %s", field, why);
}

/* An engine failure: its message, and the errno's name. */
static int engine_error(struct rpc_error *e, int r, const char *message)
{
        const char *name = strerrorname_np(-r);

        return rpc_error_set(e, r == -EBUSY ? RPC_ERROR_BUSY : RPC_ERROR_FAILED,
                             json_pack("{s:s}", "errno", name ?: "unknown"), "%s",
                             message ?: strerror(-r));
}

bool rpc_id_valid(const char *id)
{
        size_t n = strlen(id);

        if (n == 0 || n > RPC_ID_MAX)
                return false;
        if (!((id[0] >= 'a' && id[0] <= 'z') || (id[0] >= 'A' && id[0] <= 'Z') ||
              (id[0] >= '0' && id[0] <= '9')))
                return false;
        return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static bool image_valid(const char *image)
{
        size_t n = strlen(image);

        return n > 0 && n <= IMAGE_MAX && image[0] != '-' &&
               strspn(image,
                      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/:@") == n;
}

json_t *rpc_container_json(const struct orch *o, const struct container *c)
{
        return json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:s?,s:I,s:I,s:I,s:I}", "name", c->name, "kind",
                         c->native ? "service" : "container", "id", c->id ?: "", "image",
                         c->image ?: "", "state", container_state_to_string(c->state), "exit_code",
                         c->exit_code, "tier", tier_to_string(c->tier >= 0 ? c->tier : TIER_APP),
                         "grace_seconds", (json_int_t)orch_grace_for(o, c), "created",
                         (json_int_t)c->created_at, "started", (json_int_t)c->started_at,
                         "finished", (json_int_t)c->finished_at);
}

/* The params a method takes: every member must be one of fields. */
static int check_fields(const json_t *params, const char *const *fields, struct rpc_error *e)
{
        const char *key;
        json_t *v;

        json_object_foreach((json_t *)params, key, v)
        {
                if (!strv_contains((char *const *)fields, key))
                        return invalid_param(e, key, "is not a parameter of this method");
        }
        return 0;
}

static int get_id(const json_t *params, struct rpc_error *e, const char **ret)
{
        json_t *v = json_object_get(params, "id");

        if (!v)
                return invalid_param(e, "id", "is missing");
        if (!json_is_string(v))
                return invalid_param(e, "id", "must be a string");
        if (!rpc_id_valid(json_string_value(v)))
                return invalid_param(e, "id",
                                     "must be 1 to 63 letters, digits, '_', '.' or '-', starting "
                                     "with a letter or digit");
        *ret = json_string_value(v);
        return 0;
}

/* Adds id to the busy list *l of *n ids (NULL-terminated). */
static int busy_add(char ***l, size_t *n, const char *id)
{
        char **m = realloc(*l, (*n + 2) * sizeof(char *));

        if (!m)
                return -ENOMEM;
        *l = m;
        m[*n] = strdup(id);
        if (!m[*n])
                return -ENOMEM;
        m[++*n] = NULL;
        return 0;
}

static void busy_remove(char **l, size_t *n, const char *id)
{
        for (size_t i = 0; i < *n; i++)
                if (streq(l[i], id)) {
                        free(l[i]);
                        memmove(l + i, l + i + 1, (*n - i) * sizeof(char *));
                        (*n)--;
                        return;
                }
}

static int add_installing(struct rpc_server *s, const char *id)
{
        return busy_add(&s->installing, &s->n_installing, id);
}

static void remove_installing(struct rpc_server *s, const char *id)
{
        busy_remove(s->installing, &s->n_installing, id);
}

/* Under the lock: is id being installed or stopped right now? */
static int check_not_installing(struct rpc_server *s, const char *id, struct rpc_error *e)
{
        if (s->installing && strv_contains(s->installing, id))
                return rpc_error_set(e, RPC_ERROR_BUSY, json_pack("{s:s}", "errno", "EBUSY"),
                                     "'%s' is being installed; try again when that is done", id);
        if (s->stopping && strv_contains(s->stopping, id))
                return rpc_error_set(e, RPC_ERROR_BUSY, json_pack("{s:s}", "errno", "EBUSY"),
                                     "'%s' is being stopped; try again when that is done", id);
        return 0;
}

static int m_container_list(struct rpc_server *s, json_t *params, json_t **ret, struct rpc_error *e)
{
        _cleanup_free_ char *error = NULL;
        struct container_list l = {};
        json_t *a;
        int r;

        r = check_fields(params, (const char *const[]){NULL}, e);
        if (r < 0)
                return r;
        r = orch_list(s->orch, &l, &error);
        if (r < 0)
                return engine_error(e, r, error);
        a = json_array();
        for (size_t i = 0; a && i < l.n; i++)
                if (json_array_append_new(a, rpc_container_json(s->orch, &l.items[i])) < 0) {
                        json_decref(a);
                        a = NULL;
                }
        container_list_done(&l);
        if (!a)
                return -ENOMEM;
        *ret = a;
        return 0;
}

static json_t *plan_json(const struct health_plan *p)
{
        json_t *a = json_array();

        for (size_t i = 0; a && i < p->n; i++)
                if (json_array_append_new(
                        a, json_pack("{s:s,s:s,s:s,s:i,s:s}", "name", p->actions[i].name, "tier",
                                     tier_to_string(p->actions[i].tier) ?: "app", "action",
                                     health_verdict_to_string(p->actions[i].verdict), "attempts",
                                     (int)p->actions[i].attempts, "reason",
                                     p->actions[i].reason ?: "")) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

static int m_container_health(struct rpc_server *s, json_t *params, json_t **ret,
                              struct rpc_error *e)
{
        _cleanup_free_ char *error = NULL;
        struct health_plan p = {};
        json_t *a;
        int r;

        r = check_fields(params, (const char *const[]){NULL}, e);
        if (r < 0)
                return r;
        r = orch_health(s->orch, false, &p, &error);
        if (r < 0)
                return engine_error(e, r, error);
        a = plan_json(&p);
        health_plan_done(&p);
        if (!a)
                return -ENOMEM;
        *ret = json_pack("{s:b,s:o,s:i,s:I,s:s?}", "applied", false, "actions", a, "passes",
                         (int)s->health_passes, "last_pass_usec", (json_int_t)s->last_health_at,
                         "last_pass_error", s->last_health_error);
        return *ret ? 0 : -ENOMEM;
}

static int m_server_info(struct rpc_server *s, json_t *params, json_t **ret, struct rpc_error *e)
{
        usec_t now = clock_now(s->orch->clock);
        json_t *warnings, *inst, *stopping;
        int r;

        r = check_fields(params, (const char *const[]){NULL}, e);
        if (r < 0)
                return r;
        warnings = json_array();
        inst = json_array();
        stopping = json_array();
        for (size_t i = 0; warnings && i < s->orch->n_warnings; i++)
                json_array_append_new(warnings, json_string(s->orch->warnings[i]));
        for (size_t i = 0; inst && i < s->n_installing; i++)
                json_array_append_new(inst, json_string(s->installing[i]));
        for (size_t i = 0; stopping && i < s->n_stopping; i++)
                json_array_append_new(stopping, json_string(s->stopping[i]));
        *ret = json_pack("{s:s,s:s,s:i,s:s,s:I,s:I,s:I,s:i,s:I,s:I,s:o,s:o,s:o,s:o*}", "name",
                         "strata orchd", "version", s->version ?: "", "pid", (int)getpid(),
                         "state_dir", s->state_dir ?: "", "started_usec", (json_int_t)s->started_at,
                         "uptime_seconds", (json_int_t)((now - s->started_at) / USEC_PER_SEC),
                         "interval_seconds", (json_int_t)s->interval_s, "health_passes",
                         (int)s->health_passes, "last_health_usec", (json_int_t)s->last_health_at,
                         "requests", (json_int_t)s->requests, "installing", inst, "stopping",
                         stopping, "warnings", warnings, "policy", policy_to_json(s->orch->policy));
        return *ret ? 0 : -ENOMEM;
}

static int container_state_json(struct rpc_server *s, const char *id, json_t **ret)
{
        struct container c = {};
        int r;

        if (s->orch->services && services_exists(s->orch->services, id))
                r = services_inspect(s->orch->services, id, &c);
        else
                r = podman_inspect(s->orch->podman, id, &c);
        if (r == -ENOENT) {
                *ret = json_pack("{s:s,s:s}", "id", id, "state", "removed");
                return *ret ? 0 : -ENOMEM;
        }
        if (r < 0) {
                *ret = json_pack("{s:s}", "id", id);
                return *ret ? 0 : -ENOMEM;
        }
        *ret = json_pack("{s:s,s:s,s:i}", "id", id, "state", container_state_to_string(c.state),
                         "exit_code", c.exit_code);
        container_done(&c);
        return *ret ? 0 : -ENOMEM;
}

/* A podman and s6 services of the caller's own, like the engine's (their
 * last errors are per object). */
static int runtime_copy(struct orch *o, struct podman **ret_pm, struct services **ret_sv)
{
        _cleanup_(podman_freep) struct podman *pm = NULL;
        _cleanup_(services_freep) struct services *sv = NULL;
        int r;

        r = podman_new(o->podman->executor, (const char *const *)o->podman->command, &pm);
        if (r < 0)
                return r;
        pm->timeout_ms = o->podman->timeout_ms;
        pm->pull_timeout_ms = o->podman->pull_timeout_ms;
        if (o->services) {
                r = services_new(o->services->executor, o->clock, o->services->scan_dir, &sv);
                if (r < 0)
                        return r;
                sv->timeout_ms = o->services->timeout_ms;
        }
        *ret_pm = TAKE_PTR(pm);
        *ret_sv = TAKE_PTR(sv);
        return 0;
}

/* Called with the lock held; drops it for the grace period (the stop
 * itself), with id on the stopping list meanwhile. */
static int stop_op(struct rpc_server *s, enum orch_stop_kind kind, const char *id, char **ret_error)
{
        _cleanup_(podman_freep) struct podman *pm = NULL;
        _cleanup_(services_freep) struct services *sv = NULL;
        struct orch_stopping st = {};
        int r;

        r = runtime_copy(s->orch, &pm, &sv);
        if (r < 0)
                return r;
        r = orch_stop_begin(s->orch, kind, id, &st, ret_error);
        if (r < 0)
                return r;
        r = busy_add(&s->stopping, &s->n_stopping, id);
        if (r < 0) {
                orch_stopping_done(&st);
                return r;
        }
        pthread_mutex_unlock(&s->lock);
        r = orch_stop_wait(&st, pm, sv, ret_error);
        pthread_mutex_lock(&s->lock);
        busy_remove(s->stopping, &s->n_stopping, id);
        if (r >= 0)
                r = orch_stop_end(s->orch, &st, ret_error);
        orch_stopping_done(&st);
        return r;
}

static int package_op(struct rpc_server *s, json_t *params, json_t **ret, struct rpc_error *e,
                      int kind)
{
        _cleanup_free_ char *error = NULL;
        const char *id;
        int r;

        r = check_fields(params, (const char *const[]){"id", NULL}, e);
        if (r < 0)
                return r;
        r = get_id(params, e, &id);
        if (r < 0)
                return r;
        r = check_not_installing(s, id, e);
        if (r < 0)
                return r;
        r = kind < 0 ? orch_start(s->orch, id, &error) : stop_op(s, kind, id, &error);
        if (r < 0)
                return engine_error(e, r, error);
        return container_state_json(s, id, ret);
}

static int m_package_start(struct rpc_server *s, json_t *params, json_t **ret, struct rpc_error *e)
{
        return package_op(s, params, ret, e, -1);
}

static int m_package_stop(struct rpc_server *s, json_t *params, json_t **ret, struct rpc_error *e)
{
        return package_op(s, params, ret, e, ORCH_STOP);
}

static int m_package_restart(struct rpc_server *s, json_t *params, json_t **ret,
                             struct rpc_error *e)
{
        return package_op(s, params, ret, e, ORCH_RESTART);
}

static int m_package_uninstall(struct rpc_server *s, json_t *params, json_t **ret,
                               struct rpc_error *e)
{
        return package_op(s, params, ret, e, ORCH_UNINSTALL);
}

enum pull_mode { PULL_MISSING, PULL_ALWAYS, PULL_NEVER };

/* The validated params of package.install; strings point into params. */
struct install_params {
        const char *id;
        const char *image;
        int tier;        /* -1: by policy */
        int64_t grace_s; /* -1: by policy */
        const char *network;
        const char **command; /* owned array, strings borrowed */
        enum pull_mode pull;
        const char *service; /* a native s6 service dir instead of an image */
};

/* What the package runs: 'service' (a native s6 service dir, which rules
 * out the image-only fields) or else 'dockerImage', which is then needed. */
static int parse_install_source(const json_t *params, struct install_params *p, struct rpc_error *e)
{
        static const char *const image_only[] = {"dockerImage", "command", "network", "pull"};
        _cleanup_free_ char *why = NULL;
        json_t *v;

        v = json_object_get(params, "service");
        if (v) {
                if (!json_is_string(v))
                        return invalid_param(e, "service", "must be a string (a service dir)");
                for (size_t i = 0; i < ELEMENTSOF(image_only); i++)
                        if (json_object_get(params, image_only[i]))
                                return invalid_param(e, image_only[i],
                                                     "is for images, not with 'service'");
                if (services_check_source(json_string_value(v), &why) < 0)
                        return rpc_error_set(
                            e, RPC_INVALID_PARAMS, json_pack("{s:s}", "field", "service"),
                            "invalid params: 'service': %s", why ?: "is not a service dir");
                p->service = json_string_value(v);
                return 0;
        }

        v = json_object_get(params, "dockerImage");
        if (!v)
                return invalid_param(e, "dockerImage", "is missing (or give 'service')");
        if (!json_is_string(v))
                return invalid_param(e, "dockerImage", "must be a string");
        if (!image_valid(json_string_value(v)))
                return invalid_param(e, "dockerImage",
                                     "must be an image reference of at most 255 letters, "
                                     "digits and '_.-/:@', not starting with '-'");
        p->image = json_string_value(v);
        return 0;
}

static int parse_install_tier(const json_t *v, struct install_params *p, struct rpc_error *e)
{
        if (!json_is_string(v))
                return invalid_param(e, "tier", "must be a string");
        p->tier = tier_from_string(json_string_value(v));
        if (p->tier < 0)
                return invalid_param(e, "tier", "must be 'database', 'infra' or 'app'");
        return 0;
}

static int parse_install_grace(const json_t *v, struct install_params *p, struct rpc_error *e)
{
        if (!json_is_integer(v))
                return invalid_param(e, "grace", "must be an integer (seconds)");
        if (json_integer_value(v) < 0 || json_integer_value(v) > 86400)
                return invalid_param(e, "grace", "must be 0 to 86400 seconds");
        p->grace_s = json_integer_value(v);
        return 0;
}

static int parse_install_network(const json_t *v, struct install_params *p, struct rpc_error *e)
{
        const char *n = json_is_string(v) ? json_string_value(v) : NULL;

        if (!n || !*n || strlen(n) > NETWORK_MAX || n[0] == '-' ||
            strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
                strlen(n))
                return invalid_param(e, "network",
                                     "must be a network name (letters, digits, '_.-')");
        p->network = n;
        return 0;
}

static int parse_install_pull(const json_t *v, struct install_params *p, struct rpc_error *e)
{
        const char *m = json_is_string(v) ? json_string_value(v) : "";

        if (streq(m, "missing"))
                p->pull = PULL_MISSING;
        else if (streq(m, "always"))
                p->pull = PULL_ALWAYS;
        else if (streq(m, "never"))
                p->pull = PULL_NEVER;
        else
                return invalid_param(e, "pull", "must be 'missing', 'always' or 'never'");
        return 0;
}

/* p->command becomes an array the caller frees (its strings borrowed). */
static int parse_install_command(const json_t *v, struct install_params *p, struct rpc_error *e)
{
        size_t n;

        if (!json_is_array(v))
                return invalid_param(e, "command", "must be an array of strings");
        n = json_array_size(v);
        if (n == 0 || n > COMMAND_MAX)
                return invalid_param(e, "command", "must have 1 to 64 elements");
        for (size_t i = 0; i < n; i++) {
                json_t *a = json_array_get(v, i);
                if (!json_is_string(a))
                        return invalid_param(e, "command", "must be an array of strings");
                if (json_string_length(a) > COMMAND_ARG_MAX)
                        return invalid_param(e, "command", "has an element longer than 4096 bytes");
        }
        p->command = calloc(n + 1, sizeof(char *));
        if (!p->command)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                p->command[i] = json_string_value(json_array_get(v, i));
        return 0;
}

/* The optional fields of package.install, checked in this order when given
 * (the first bad one is the one reported; command, which allocates, last). */
static const struct {
        const char *name;
        int (*parse)(const json_t *v, struct install_params *p, struct rpc_error *e);
} install_options[] = {
    {"tier", parse_install_tier},       {"grace", parse_install_grace},
    {"network", parse_install_network}, {"pull", parse_install_pull},
    {"command", parse_install_command},
};

/* Validates package.install's params into *p (strings borrowed from
 * params; p->command owned by the caller, also on failure): 0, or a
 * negative errno with e set for the client. */
static int parse_install(const json_t *params, struct install_params *p, struct rpc_error *e)
{
        int r;

        *p = (struct install_params){.tier = -1, .grace_s = -1};
        r = check_fields(params,
                         (const char *const[]){"id", "dockerImage", "tier", "grace", "command",
                                               "network", "pull", "service", NULL},
                         e);
        if (r < 0)
                return r;
        r = get_id(params, e, &p->id);
        if (r < 0)
                return r;
        r = parse_install_source(params, p, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(install_options); i++) {
                json_t *v = json_object_get(params, install_options[i].name);

                if (v) {
                        r = install_options[i].parse(v, p, e);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* Called with the lock held; drops it around the slow part. */
static int m_package_install(struct rpc_server *s, json_t *params, json_t **ret,
                             struct rpc_error *e)
{
        _cleanup_free_ char *error = NULL;
        _cleanup_(podman_freep) struct podman *pm = NULL;
        _cleanup_(services_freep) struct services *sv = NULL;
        struct install_params p;
        struct orch *o = s->orch;
        struct container c = {};
        bool skip_pull;
        int r;

        r = parse_install(params, &p, e);
        if (r < 0)
                goto out;
        r = check_not_installing(s, p.id, e);
        if (r < 0)
                goto out;
        if (p.service && !o->services) {
                r = rpc_error_set(e, RPC_ERROR_FAILED, json_pack("{s:s}", "errno", "EOPNOTSUPP"),
                                  "native services are off: start orchd with --scan-dir DIR");
                goto out;
        }
        if (o->services && services_exists(o->services, p.id)) {
                r = rpc_error_set(e, RPC_ERROR_FAILED, json_pack("{s:s}", "errno", "EEXIST"),
                                  "a service named '%s' exists already", p.id);
                goto out;
        }
        r = podman_inspect(o->podman, p.id, &c);
        if (r >= 0) {
                container_done(&c);
                r = engine_error(e, -EEXIST, NULL);
                free(e->message);
                if (asprintf(&e->message, "a container named '%s' exists already", p.id) < 0)
                        e->message = NULL;
                goto out;
        }
        if (r != -ENOENT) {
                r = engine_error(e, r, podman_last_error(o->podman));
                goto out;
        }

        /* A podman of its own: podman_last_error() is per podman. */
        r = runtime_copy(o, &pm, &sv);
        if (r < 0)
                goto out;
        r = add_installing(s, p.id);
        if (r < 0)
                goto out;

        if (p.service) {
                const char *name = p.id;
                int tier = p.tier >= 0 ? p.tier : policy_tier_for(o->policy, name, name);
                int64_t grace =
                    p.grace_s >= 0 ? p.grace_s : policy_grace_for(o->policy, name, name);

                pthread_mutex_unlock(&s->lock);
                r = services_install(sv, o->policy, name, p.service, tier, grace, &error);
                pthread_mutex_lock(&s->lock);
                goto installed;
        }

        pthread_mutex_unlock(&s->lock);
        skip_pull = p.pull == PULL_NEVER;
        r = 0;
        if (p.pull == PULL_MISSING) {
                r = podman_image_exists(pm, p.image);
                if (r < 0)
                        set_error_message(&error, r, "cannot check image '%s': %s", p.image,
                                          podman_last_error(pm));
                else
                        skip_pull = r > 0;
        }
        if (r >= 0)
                r = install_failsafe(
                    pm, o->policy, o->clock,
                    &(struct install_request){
                        .name = p.id,
                        .image = p.image,
                        .tier = p.tier >= 0 ? p.tier : policy_tier_for(o->policy, p.id, p.image),
                        .grace_s =
                            p.grace_s >= 0 ? p.grace_s : policy_grace_for(o->policy, p.id, p.image),
                        .network = p.network,
                        .command = p.command,
                        .skip_pull = skip_pull,
                    },
                    &error);
        pthread_mutex_lock(&s->lock);
installed:
        remove_installing(s, p.id);

        if (r >= 0)
                r = orch_installed(o, p.id, &error);
        if (r < 0) {
                r = engine_error(e, r, error);
                goto out;
        }
        r = p.service ? services_inspect(o->services, p.id, &c)
                      : podman_inspect(o->podman, p.id, &c);
        if (r < 0) {
                r = engine_error(e, r,
                                 p.service ? services_last_error(o->services)
                                           : podman_last_error(o->podman));
                goto out;
        }
        *ret = rpc_container_json(o, &c);
        container_done(&c);
        r = *ret ? 0 : -ENOMEM;
out:
        free(p.command);
        return r;
}

struct rpc_method {
        const char *name;
        int (*handler)(struct rpc_server *s, json_t *params, json_t **ret, struct rpc_error *e);
};

static const struct rpc_method methods[] = {
    {"container.list", m_container_list},       {"container.health", m_container_health},
    {"package.install", m_package_install},     {"package.start", m_package_start},
    {"package.stop", m_package_stop},           {"package.restart", m_package_restart},
    {"package.uninstall", m_package_uninstall}, {"server.info", m_server_info},
};

int rpc_server_init(struct rpc_server *s, struct orch *o, const char *version,
                    const char *state_dir, int64_t interval_s)
{
        *s = (struct rpc_server){
            .orch = o,
            .version = version,
            .state_dir = state_dir,
            .interval_s = interval_s,
            .started_at = clock_now(o->clock),
        };
        return -pthread_mutex_init(&s->lock, NULL);
}

void rpc_server_done(struct rpc_server *s)
{
        pthread_mutex_destroy(&s->lock);
        strv_free(s->installing);
        strv_free(s->stopping);
        free(s->last_health_error);
        *s = (struct rpc_server){};
}

static json_t *response_error(json_t *id, const struct rpc_error *e)
{
        json_t *err =
            json_pack("{s:i,s:s}", "code", e->code, "message", e->message ?: "out of memory");

        if (!err)
                return NULL;
        if (e->data)
                json_object_set(err, "data", e->data);
        return json_pack("{s:s,s:o,s:O}", "jsonrpc", "2.0", "error", err, "id", id ?: json_null());
}

static json_t *error_response(json_t *id, int code, const char *message)
{
        struct rpc_error e = {.code = code, .message = (char *)message};

        return response_error(id, &e);
}

json_t *rpc_handle_json(struct rpc_server *s, json_t *req)
{
        struct rpc_error e = {};
        json_t *id, *v, *params, *result = NULL, *resp;
        const struct rpc_method *m = NULL;
        _cleanup_(json_decrefp) json_t *empty = NULL;
        bool notification;
        int r;

        if (!json_is_object(req))
                return error_response(NULL, RPC_INVALID_REQUEST,
                                      "invalid request: not a JSON-RPC request object");
        id = json_object_get(req, "id");
        notification = !id;
        if (id && !json_is_string(id) && !json_is_integer(id) && !json_is_null(id))
                return error_response(NULL, RPC_INVALID_REQUEST,
                                      "invalid request: 'id' must be a string, an integer or null");
        v = json_object_get(req, "jsonrpc");
        if (!json_is_string(v) || !streq(json_string_value(v), "2.0"))
                return error_response(id, RPC_INVALID_REQUEST,
                                      "invalid request: 'jsonrpc' must be \"2.0\"");
        v = json_object_get(req, "method");
        if (!json_is_string(v))
                return error_response(id, RPC_INVALID_REQUEST,
                                      "invalid request: 'method' must be a string");
        {
                const char *key;
                json_t *x;
                json_object_foreach(req, key, x)
                {
                        if (!streq(key, "jsonrpc") && !streq(key, "method") &&
                            !streq(key, "params") && !streq(key, "id"))
                                return error_response(id, RPC_INVALID_REQUEST,
                                                      "invalid request: unknown member");
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                if (streq(methods[i].name, json_string_value(v)))
                        m = &methods[i];
        if (!m) {
                rpc_error_set(&e, RPC_METHOD_NOT_FOUND,
                              json_pack("{s:s}", "method", json_string_value(v)),
                              "method not found: '%.64s'", json_string_value(v));
                goto respond;
        }
        params = json_object_get(req, "params");
        if (!params)
                params = empty = json_object();
        if (!params)
                return NULL;
        if (!json_is_object(params)) {
                rpc_error_set(&e, RPC_INVALID_PARAMS, json_pack("{s:s}", "field", "params"),
                              "invalid params: 'params' must be an object (named parameters)");
                goto respond;
        }

        pthread_mutex_lock(&s->lock);
        s->requests++;
        r = m->handler(s, params, &result, &e);
        pthread_mutex_unlock(&s->lock);
        if (r < 0 && !e.code)
                rpc_error_set(&e, RPC_ERROR_FAILED,
                              json_pack("{s:s}", "errno", strerrorname_np(-r) ?: "unknown"), "%s",
                              strerror(-r));

respond:
        if (notification) {
                json_decref(result);
                rpc_error_done(&e);
                return NULL;
        }
        if (e.code)
                resp = response_error(id, &e);
        else
                resp = json_pack("{s:s,s:o,s:O}", "jsonrpc", "2.0", "result", result ?: json_null(),
                                 "id", id);
        rpc_error_done(&e);
        return resp;
}

int rpc_handle(struct rpc_server *s, const char *body, size_t len, char **ret_response)
{
        _cleanup_(json_decrefp) json_t *req = NULL, *resp = NULL;
        json_error_t je;
        char *out;

        req = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
        if (!req) {
                char msg[256];
                snprintf(msg, sizeof(msg), "parse error: line %d column %d: %s", je.line, je.column,
                         je.text);
                resp = error_response(NULL, RPC_PARSE_ERROR, msg);
        } else if (json_is_array(req)) {
                size_t n = json_array_size(req);
                if (n == 0)
                        resp = error_response(NULL, RPC_INVALID_REQUEST,
                                              "invalid request: an empty batch");
                else if (n > RPC_BATCH_MAX)
                        resp = error_response(NULL, RPC_INVALID_REQUEST,
                                              "invalid request: a batch of more than 64 requests");
                else {
                        resp = json_array();
                        for (size_t i = 0; resp && i < n; i++) {
                                json_t *r = rpc_handle_json(s, json_array_get(req, i));
                                if (r && json_array_append_new(resp, r) < 0)
                                        return -ENOMEM;
                        }
                        if (resp && json_array_size(resp) == 0) {
                                *ret_response = NULL;
                                return 0;
                        }
                }
        } else {
                resp = rpc_handle_json(s, req);
                if (!resp && json_is_object(req) && !json_object_get(req, "id")) {
                        *ret_response = NULL;
                        return 0;
                }
        }
        if (!resp)
                return -ENOMEM;
        out = json_dumps(resp, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!out)
                return -ENOMEM;
        *ret_response = out;
        return 0;
}

int rpc_health_pass(struct rpc_server *s, struct health_plan *ret, char **ret_error)
{
        _cleanup_free_ char *error = NULL;
        struct health_plan p = {};
        int r;

        pthread_mutex_lock(&s->lock);
        if (s->n_installing > 0 || s->n_stopping > 0) {
                pthread_mutex_unlock(&s->lock);
                return set_error_message(ret_error, -EBUSY, "%s under way: health pass postponed",
                                         s->n_installing > 0 ? "an install is" : "a stop is");
        }
        r = orch_health(s->orch, true, &p, &error);
        s->health_passes++;
        s->last_health_at = clock_now(s->orch->clock);
        free(s->last_health_error);
        s->last_health_error = r < 0 ? strdup(error ?: strerror(-r)) : NULL;
        pthread_mutex_unlock(&s->lock);
        if (r < 0) {
                if (ret_error)
                        *ret_error = TAKE_PTR(error);
                return r;
        }
        if (ret)
                *ret = p;
        else
                health_plan_done(&p);
        return 0;
}

int rpc_replace_policy(struct rpc_server *s, struct policy *current, struct policy *p)
{
        pthread_mutex_lock(&s->lock);
        if (s->n_installing > 0) {
                pthread_mutex_unlock(&s->lock);
                return -EBUSY;
        }
        policy_done(current);
        *current = *p;
        *p = (struct policy){};
        s->orch->podman->timeout_ms = current->command_timeout_usec / USEC_PER_MSEC;
        s->orch->podman->pull_timeout_ms = current->pull_timeout_usec / USEC_PER_MSEC;
        pthread_mutex_unlock(&s->lock);
        return 0;
}
