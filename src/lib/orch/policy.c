/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "fs.h"
#include "json.h"
#include "macro.h"
#include "policy.h"

static const char *const tier_names[_TIER_MAX] = {
    [TIER_DATABASE] = "database",
    [TIER_INFRA] = "infra",
    [TIER_APP] = "app",
};

const char *tier_to_string(int tier)
{
        return tier >= 0 && tier < _TIER_MAX ? tier_names[tier] : NULL;
}

int tier_from_string(const char *s)
{
        for (int i = 0; s && i < _TIER_MAX; i++)
                if (streq(tier_names[i], s))
                        return i;
        return -EINVAL;
}

static const struct {
        const char *name;
        int64_t seconds;
} default_graces[] = {
    /* bitcoin flushes its UTXO cache and block index on shutdown */
    {"bitcoind", 600},
    {"bitcoin-knots", 600},
    {"bitcoin-core", 600},
    /* lnd settles with its peers and compacts its channel db */
    {"lnd", 330},
};

#define DEFAULT_GRACE_S        30
#define DEFAULT_PULL_ATTEMPTS  3
#define DEFAULT_STABLE_S       3600
#define DEFAULT_MAX_RESTARTS   3
#define DEFAULT_WATCH_S        10
#define DEFAULT_LOG_LINES      20
#define DEFAULT_CMD_TIMEOUT_S  120
#define DEFAULT_PULL_TIMEOUT_S 900
static const int64_t default_pull_delays_s[] = {5, 15};

void policy_done(struct policy *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n_graces; i++)
                free(p->graces[i].name);
        free(p->graces);
        for (size_t i = 0; i < p->n_tiers; i++)
                free(p->tiers[i].name);
        free(p->tiers);
        free(p->pull_delays);
        *p = (struct policy){};
}

/* Sets name -> value, replacing an existing entry. */
static int entries_set(struct policy_entry **entries, size_t *n, const char *name, int64_t value)
{
        struct policy_entry *e;

        for (size_t i = 0; i < *n; i++)
                if (streq((*entries)[i].name, name)) {
                        (*entries)[i].value = value;
                        return 0;
                }
        e = realloc(*entries, (*n + 1) * sizeof(**entries));
        if (!e)
                return -ENOMEM;
        *entries = e;
        e[*n].name = strdup(name);
        if (!e[*n].name)
                return -ENOMEM;
        e[*n].value = value;
        (*n)++;
        return 0;
}

int policy_init_default(struct policy *ret)
{
        struct policy p = {
            .default_grace_s = DEFAULT_GRACE_S,
            .default_tier = TIER_APP,
            .pull_attempts = DEFAULT_PULL_ATTEMPTS,
            .stable_usec = DEFAULT_STABLE_S * USEC_PER_SEC,
            .max_restart_attempts = DEFAULT_MAX_RESTARTS,
            .install_watch_usec = DEFAULT_WATCH_S * USEC_PER_SEC,
            .install_log_lines = DEFAULT_LOG_LINES,
            .command_timeout_usec = DEFAULT_CMD_TIMEOUT_S * USEC_PER_SEC,
            .pull_timeout_usec = DEFAULT_PULL_TIMEOUT_S * USEC_PER_SEC,
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(default_graces); i++) {
                r = entries_set(&p.graces, &p.n_graces, default_graces[i].name,
                                default_graces[i].seconds);
                if (r < 0) {
                        policy_done(&p);
                        return r;
                }
        }
        p.pull_delays = calloc(ELEMENTSOF(default_pull_delays_s), sizeof(usec_t));
        if (!p.pull_delays) {
                policy_done(&p);
                return -ENOMEM;
        }
        for (size_t i = 0; i < ELEMENTSOF(default_pull_delays_s); i++)
                p.pull_delays[i] = default_pull_delays_s[i] * USEC_PER_SEC;
        p.n_pull_delays = ELEMENTSOF(default_pull_delays_s);
        *ret = p;
        return 0;
}

struct loader {
        const char *name;
        char *error;
};

static int _printf_(3, 4) fail(struct loader *l, const char *key, const char *fmt, ...)
{
        _cleanup_free_ char *what = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&what, fmt, ap) < 0)
                what = NULL;
        va_end(ap);
        free(l->error);
        if (asprintf(&l->error, "'%s': %s: %s", l->name, key, what ?: "invalid") < 0)
                l->error = NULL;
        return -EINVAL;
}

/* Rejects keys of o not in allowed (typos must not silently keep defaults). */
static int check_keys(struct loader *l, const json_t *o, const char *prefix,
                      const char *const *allowed)
{
        const char *key;
        json_t *v;
        char path[256];

        json_object_foreach((json_t *)o, key, v)
        {
                bool ok = false;
                for (const char *const *a = allowed; *a; a++)
                        ok = ok || streq(*a, key);
                if (!ok) {
                        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", key);
                        return fail(l, path, "unknown key");
                }
        }
        return 0;
}

static int get_section(struct loader *l, const json_t *root, const char *key,
                       const char *const *allowed, json_t **ret)
{
        json_t *o = json_object_get(root, key);

        *ret = NULL;
        if (!o)
                return 0;
        if (!json_is_object(o))
                return fail(l, key, "must be an object");
        *ret = o;
        return check_keys(l, o, key, allowed);
}

/* A number of seconds >= 0 (integer or fractional) -> usec. */
static int get_seconds(struct loader *l, const json_t *o, const char *section, const char *key,
                       usec_t *ret)
{
        json_t *v = json_object_get(o, key);
        char path[256];
        double d;

        if (!v)
                return 0;
        snprintf(path, sizeof(path), "%s.%s", section, key);
        if (!json_is_number(v))
                return fail(l, path, "must be a number of seconds");
        d = json_number_value(v);
        if (d < 0 || !isfinite(d))
                return fail(l, path, "must not be negative (got %g)", d);
        if (d > 10.0 * 365 * 24 * 3600)
                return fail(l, path, "is too large (got %g)", d);
        *ret = (usec_t)(d * USEC_PER_SEC + 0.5);
        return 0;
}

static int get_count(struct loader *l, const json_t *o, const char *section, const char *key,
                     unsigned min, unsigned *ret)
{
        json_t *v = json_object_get(o, key);
        char path[256];

        if (!v)
                return 0;
        snprintf(path, sizeof(path), "%s.%s", section, key);
        if (!json_is_integer(v))
                return fail(l, path, "must be an integer");
        if (json_integer_value(v) < (json_int_t)min || json_integer_value(v) > 1000)
                return fail(l, path, "must be between %u and 1000 (got %lld)", min,
                            (long long)json_integer_value(v));
        *ret = (unsigned)json_integer_value(v);
        return 0;
}

static int get_whole_seconds(struct loader *l, const json_t *v, const char *path, int64_t *ret)
{
        if (!json_is_integer(v))
                return fail(l, path, "must be a whole number of seconds");
        if (json_integer_value(v) < 0)
                return fail(l, path, "must not be negative (got %lld)",
                            (long long)json_integer_value(v));
        if (json_integer_value(v) > 24 * 3600)
                return fail(l, path, "must be at most 86400 (got %lld)",
                            (long long)json_integer_value(v));
        *ret = json_integer_value(v);
        return 0;
}

static int get_tier(struct loader *l, const json_t *v, const char *path, int *ret)
{
        int t;

        if (!json_is_string(v))
                return fail(l, path, "must be a string (database, infra or app)");
        t = tier_from_string(json_string_value(v));
        if (t < 0)
                return fail(l, path, "unknown tier '%s' (database, infra or app)",
                            json_string_value(v));
        *ret = t;
        return 0;
}

static int load(struct loader *l, const json_t *j, struct policy *p)
{
        json_t *s, *v, *m;
        const char *key;
        char path[512];
        int r;

        if (!json_is_object(j))
                return fail(l, "(top level)", "must be an object");
        r = check_keys(
            l, j, "",
            (const char *const[]){"stop", "tiers", "pull", "restart", "install", "podman", NULL});
        if (r < 0)
                return r;

        r = get_section(l, j, "stop",
                        (const char *const[]){"default_grace_seconds", "grace_seconds", NULL}, &s);
        if (r < 0)
                return r;
        if (s && (v = json_object_get(s, "default_grace_seconds"))) {
                r = get_whole_seconds(l, v, "stop.default_grace_seconds", &p->default_grace_s);
                if (r < 0)
                        return r;
        }
        if (s && (m = json_object_get(s, "grace_seconds"))) {
                if (!json_is_object(m))
                        return fail(l, "stop.grace_seconds", "must be an object");
                json_object_foreach(m, key, v)
                {
                        int64_t g;
                        snprintf(path, sizeof(path), "stop.grace_seconds.%s", key);
                        r = get_whole_seconds(l, v, path, &g);
                        if (r < 0)
                                return r;
                        r = entries_set(&p->graces, &p->n_graces, key, g);
                        if (r < 0)
                                return r;
                }
        }

        r = get_section(l, j, "tiers", (const char *const[]){"default", "apps", NULL}, &s);
        if (r < 0)
                return r;
        if (s && (v = json_object_get(s, "default"))) {
                r = get_tier(l, v, "tiers.default", &p->default_tier);
                if (r < 0)
                        return r;
        }
        if (s && (m = json_object_get(s, "apps"))) {
                if (!json_is_object(m))
                        return fail(l, "tiers.apps", "must be an object");
                json_object_foreach(m, key, v)
                {
                        int t;
                        snprintf(path, sizeof(path), "tiers.apps.%s", key);
                        r = get_tier(l, v, path, &t);
                        if (r < 0)
                                return r;
                        r = entries_set(&p->tiers, &p->n_tiers, key, t);
                        if (r < 0)
                                return r;
                }
        }

        r = get_section(l, j, "pull", (const char *const[]){"attempts", "delays_seconds", NULL},
                        &s);
        if (r < 0)
                return r;
        if (s) {
                r = get_count(l, s, "pull", "attempts", 1, &p->pull_attempts);
                if (r < 0)
                        return r;
        }
        if (s && (m = json_object_get(s, "delays_seconds"))) {
                size_t i, n = json_is_array(m) ? json_array_size(m) : 0;
                usec_t *d;

                if (n == 0)
                        return fail(l, "pull.delays_seconds",
                                    "must be a non-empty array of seconds");
                d = calloc(n, sizeof(usec_t));
                if (!d)
                        return -ENOMEM;
                json_array_foreach(m, i, v)
                {
                        double x = json_is_number(v) ? json_number_value(v) : -1;
                        snprintf(path, sizeof(path), "pull.delays_seconds[%zu]", i);
                        if (!json_is_number(v) || x < 0 || x > 24 * 3600) {
                                free(d);
                                return fail(l, path, "must be a number of seconds, 0 to 86400");
                        }
                        d[i] = (usec_t)(x * USEC_PER_SEC + 0.5);
                }
                free(p->pull_delays);
                p->pull_delays = d;
                p->n_pull_delays = n;
        }

        r = get_section(l, j, "restart",
                        (const char *const[]){"stable_seconds", "max_attempts", NULL}, &s);
        if (r < 0)
                return r;
        if (s) {
                r = get_seconds(l, s, "restart", "stable_seconds", &p->stable_usec);
                if (r < 0)
                        return r;
                r = get_count(l, s, "restart", "max_attempts", 0, &p->max_restart_attempts);
                if (r < 0)
                        return r;
        }

        r = get_section(l, j, "install", (const char *const[]){"watch_seconds", "log_lines", NULL},
                        &s);
        if (r < 0)
                return r;
        if (s) {
                r = get_seconds(l, s, "install", "watch_seconds", &p->install_watch_usec);
                if (r < 0)
                        return r;
                r = get_count(l, s, "install", "log_lines", 0, &p->install_log_lines);
                if (r < 0)
                        return r;
        }

        r = get_section(l, j, "podman",
                        (const char *const[]){"timeout_seconds", "pull_timeout_seconds", NULL}, &s);
        if (r < 0)
                return r;
        if (s) {
                r = get_seconds(l, s, "podman", "timeout_seconds", &p->command_timeout_usec);
                if (r < 0)
                        return r;
                r = get_seconds(l, s, "podman", "pull_timeout_seconds", &p->pull_timeout_usec);
                if (r < 0)
                        return r;
        }
        return 0;
}

int policy_load_json(const json_t *j, const char *name, struct policy *ret, char **ret_error)
{
        struct loader l = {.name = name ?: "config"};
        struct policy p;
        int r;

        r = policy_init_default(&p);
        if (r < 0)
                return r;
        r = load(&l, j, &p);
        if (r < 0) {
                policy_done(&p);
                if (ret_error)
                        *ret_error = TAKE_PTR(l.error);
                free(l.error);
                return r;
        }
        *ret = p;
        return 0;
}

int policy_load_at(int dirfd, const char *path, struct policy *ret, char **ret_error)
{
        json_error_t e;
        json_t *j = NULL;
        int r;

        r = json_load_at(dirfd, path, &j, &e);
        if (r < 0) {
                if (ret_error)
                        *ret_error = strdup(json_error_string(&e));
                return r;
        }
        r = policy_load_json(j, path, ret, ret_error);
        json_decref(j);
        return r;
}

/* "docker.io/lightninglabs/lnd:v0.17@sha256:..." -> "lnd" (in buf). */
static const char *image_app_name(const char *image, char *buf, size_t size)
{
        const char *slash, *start;
        size_t n;

        if (!image)
                return NULL;
        slash = strrchr(image, '/');
        start = slash ? slash + 1 : image;
        n = strcspn(start, ":@");
        if (n == 0 || n >= size)
                return NULL;
        memcpy(buf, start, n);
        buf[n] = '\0';
        return buf;
}

static const struct policy_entry *entries_find(const struct policy_entry *e, size_t n,
                                               const char *id, const char *image)
{
        char buf[256];
        const char *app = image_app_name(image, buf, sizeof(buf));

        for (size_t i = 0; id && i < n; i++)
                if (streq(e[i].name, id))
                        return &e[i];
        for (size_t i = 0; app && i < n; i++)
                if (streq(e[i].name, app))
                        return &e[i];
        return NULL;
}

int64_t policy_grace_for(const struct policy *p, const char *id, const char *image)
{
        const struct policy_entry *e = entries_find(p->graces, p->n_graces, id, image);
        return e ? e->value : p->default_grace_s;
}

int64_t policy_s6_timeout_kill_ms(const struct policy *p, const char *service)
{
        return policy_grace_for(p, service, NULL) * 1000;
}

int policy_write_s6_timeout_kill_at(const struct policy *p, int dirfd, const char *service_dir,
                                    const char *service)
{
        _cleanup_free_ char *path = NULL;
        char buf[32];
        int n;

        if (asprintf(&path, "%s/timeout-kill", service_dir) < 0)
                return -ENOMEM;
        n = snprintf(buf, sizeof(buf), "%" PRId64 "\n", policy_s6_timeout_kill_ms(p, service));
        return write_file_atomic_at(dirfd, path, buf, (size_t)n, 0644);
}

int policy_tier_for(const struct policy *p, const char *id, const char *image)
{
        const struct policy_entry *e = entries_find(p->tiers, p->n_tiers, id, image);
        return e ? (int)e->value : p->default_tier;
}

usec_t policy_pull_delay(const struct policy *p, unsigned n)
{
        if (p->n_pull_delays == 0 || n == 0)
                return 0;
        return p->pull_delays[MIN((size_t)n, p->n_pull_delays) - 1];
}

static json_t *seconds_json(usec_t u)
{
        if (u % USEC_PER_SEC == 0)
                return json_integer(u / USEC_PER_SEC);
        return json_real((double)u / USEC_PER_SEC);
}

json_t *policy_to_json(const struct policy *p)
{
        json_t *graces = json_object(), *tiers = json_object(), *delays = json_array();

        for (size_t i = 0; i < p->n_graces; i++)
                json_object_set_new(graces, p->graces[i].name, json_integer(p->graces[i].value));
        for (size_t i = 0; i < p->n_tiers; i++)
                json_object_set_new(tiers, p->tiers[i].name,
                                    json_string(tier_to_string((int)p->tiers[i].value)));
        for (size_t i = 0; i < p->n_pull_delays; i++)
                json_array_append_new(delays, seconds_json(p->pull_delays[i]));

        return json_pack(
            "{s:{s:I,s:o},s:{s:s,s:o},s:{s:i,s:o},s:{s:o,s:i},s:{s:o,s:i},s:{s:o,s:o}}", "stop",
            "default_grace_seconds", (json_int_t)p->default_grace_s, "grace_seconds", graces,
            "tiers", "default", tier_to_string(p->default_tier), "apps", tiers, "pull", "attempts",
            (int)p->pull_attempts, "delays_seconds", delays, "restart", "stable_seconds",
            seconds_json(p->stable_usec), "max_attempts", (int)p->max_restart_attempts, "install",
            "watch_seconds", seconds_json(p->install_watch_usec), "log_lines",
            (int)p->install_log_lines, "podman", "timeout_seconds",
            seconds_json(p->command_timeout_usec), "pull_timeout_seconds",
            seconds_json(p->pull_timeout_usec));
}
