/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The orchestrator's numbers: stop grace periods, tiers, pull retry,
 * restart tracking, failsafe install. Each has a default (below and in
 * docs/orchestrator.md) and can be set in a JSON config file:
 *
 *   {
 *     "stop":    { "default_grace_seconds": 30,
 *                  "grace_seconds": { "bitcoind": 600, "lnd": 330 } },
 *     "tiers":   { "default": "app", "apps": { "postgres": "database" } },
 *     "pull":    { "attempts": 3, "delays_seconds": [5, 15] },
 *     "restart": { "stable_seconds": 3600, "max_attempts": 3 },
 *     "install": { "watch_seconds": 10, "log_lines": 20 },
 *     "podman":  { "timeout_seconds": 120, "pull_timeout_seconds": 900 }
 *   }
 *
 * Keys absent from the file keep their defaults; maps given in the file
 * (grace_seconds, apps) are merged over the defaults. Unknown keys, wrong
 * types, negative durations and unknown tiers are rejected with a message
 * naming the key.
 */

#include <jansson.h>
#include <stdint.h>

#include "clock.h"

enum tier {
        TIER_DATABASE = 0,
        TIER_INFRA = 1,
        TIER_APP = 2,
        _TIER_MAX,
};

/* "database", "infra", "app"; NULL for anything else. */
const char *tier_to_string(int tier);
/* Returns the tier or -EINVAL. */
int tier_from_string(const char *s);

struct policy_entry {
        char *name;
        int64_t value;
};

struct policy {
        int64_t default_grace_s;
        struct policy_entry *graces; /* app name -> seconds */
        size_t n_graces;
        int default_tier;
        struct policy_entry *tiers; /* app name -> tier */
        size_t n_tiers;
        unsigned pull_attempts;
        usec_t *pull_delays; /* after failed attempt 1, 2, ...; the last repeats */
        size_t n_pull_delays;
        usec_t stable_usec;
        unsigned max_restart_attempts;
        usec_t install_watch_usec;
        unsigned install_log_lines;
        usec_t command_timeout_usec;
        usec_t pull_timeout_usec;
};

/* Fills *ret with the defaults. */
int policy_init_default(struct policy *ret);
void policy_done(struct policy *p);

/* Defaults overridden by the JSON object j; name (the file) is used in
 * messages. On -EINVAL *ret_error (may be NULL) says which key and why
 * ("'x.json': pull.attempts: must be at least 1"); owned by the caller. */
int policy_load_json(const json_t *j, const char *name, struct policy *ret, char **ret_error);
/* Loads the file at path. A file that does not parse is -EBADMSG with the
 * position in *ret_error; a missing file is -ENOENT. */
int policy_load_at(int dirfd, const char *path, struct policy *ret, char **ret_error);

/* The stop grace period for an app, looked up by its id and then by the
 * image's name (registry path and tag stripped: "docker.io/lightninglabs/lnd:v0.17"
 * is "lnd"); the default otherwise. */
int64_t policy_grace_for(const struct policy *p, const char *id, const char *image);
/* The same grace period for a native s6 service, as the content of its
 * service dir's timeout-kill file: milliseconds from SIGTERM to SIGKILL. */
int64_t policy_s6_timeout_kill_ms(const struct policy *p, const char *service);
/* Writes <service_dir>/timeout-kill (atomically) with that value, so
 * s6-svc -d gives the service its grace period. */
int policy_write_s6_timeout_kill_at(const struct policy *p, int dirfd, const char *service_dir,
                                    const char *service);

/* The tier for an app, looked up the same way. */
int policy_tier_for(const struct policy *p, const char *id, const char *image);
/* The sleep after failed pull attempt n (1-based). */
usec_t policy_pull_delay(const struct policy *p, unsigned n);

/* The effective policy as JSON, in the config file's format. */
json_t *policy_to_json(const struct policy *p);
