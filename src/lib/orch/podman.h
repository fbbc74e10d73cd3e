/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The container runtime: podman driven through an executor, the real one or
 * the mock (mockpodman.h). Everything read back comes from podman's JSON
 * output (inspect, ps --format json), parsed with jansson; no human-readable
 * text is ever scraped.
 *
 * Containers strata manages carry labels: io.strata.managed=1,
 * io.strata.tier=<database|infra|app> and io.strata.grace=<seconds>.
 * Containers without io.strata.managed are left alone.
 *
 * Every call returns 0 (or a boolean/count) or -errno; when podman itself
 * fails (-EIO, or -ENOENT for a missing container or image), the reason it
 * printed is kept for messages: podman_last_error().
 */

#include <stdbool.h>
#include <stdint.h>

#include "cleanup.h"
#include "clock.h"
#include "exec.h"

#define PODMAN_LABEL_MANAGED "io.strata.managed"
#define PODMAN_LABEL_TIER    "io.strata.tier"
#define PODMAN_LABEL_GRACE   "io.strata.grace"

enum container_state {
        CONTAINER_CREATED,
        CONTAINER_RUNNING,
        CONTAINER_EXITED,
        CONTAINER_STOPPED,
        CONTAINER_OTHER, /* paused, removing, ...: not ours to fix */
        _CONTAINER_STATE_MAX,
};

const char *container_state_to_string(enum container_state s);
enum container_state container_state_from_string(const char *s);

struct container {
        char *name;
        char *id;
        char *image;
        enum container_state state;
        int exit_code;
        int64_t created_at;     /* seconds since the epoch, 0 if unknown */
        int64_t started_at;     /* 0 if never started */
        int64_t finished_at;    /* 0 if never exited */
        bool managed;           /* carries io.strata.managed */
        int tier;               /* from io.strata.tier, -1 if absent or unknown */
        int64_t grace_s;        /* from io.strata.grace, -1 if absent */
        int64_t stop_timeout_s; /* Config.StopTimeout (inspect only), -1 if unknown */
        bool native;            /* an s6 service (services.h), not a container */
};

struct container_list {
        struct container *items;
        size_t n;
};

void container_done(struct container *c);
void container_list_done(struct container_list *l);
const struct container *container_list_find(const struct container_list *l, const char *name);

struct podman {
        struct executor *executor;
        char **command;     /* "podman" and its global options */
        int64_t timeout_ms; /* per command; pulls get pull_timeout_ms */
        int64_t pull_timeout_ms;
        char *last_error;
        int pull_has_retry; /* 0 not probed yet, 1 `pull --retry` exists, -1 not */
};

/* command: NULL-terminated, e.g. {"podman", "--root", R, "--runtime", "runc",
 * NULL}; copied. */
int podman_new(struct executor *executor, const char *const *command, struct podman **ret);
struct podman *podman_free(struct podman *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct podman *, podman_free);

/* The stderr text of the last podman command that failed ("" if none). */
const char *podman_last_error(const struct podman *p);

/* One pull attempt: podman's own retries are turned off (`--retry 0`)
 * where podman has that option (podman >= 5, probed once through `pull
 * --help`), so the policy's attempts are the real count; podman 4 has no
 * way to turn them off and retries network errors itself. */
int podman_pull(struct podman *p, const char *image);
/* 1 if the image is in the store, 0 if not. */
int podman_image_exists(struct podman *p, const char *image);

struct container_spec {
        const char *name;
        const char *image;
        int tier;                   /* TIER_* (policy.h) */
        int64_t grace_s;            /* stop timeout, also stored as a label */
        const char *network;        /* NULL: podman's default */
        const char *const *command; /* NULL: the image's default */
};

int podman_create(struct podman *p, const struct container_spec *spec);
int podman_start(struct podman *p, const char *name);
/* podman stop -t grace_s: SIGTERM, SIGKILL after grace_s seconds. */
int podman_stop(struct podman *p, const char *name, int64_t grace_s);
/* podman rm -f: a missing container is success. */
int podman_rm(struct podman *p, const char *name);
/* -ENOENT when there is no such container. */
int podman_inspect(struct podman *p, const char *name, struct container *ret);
/* podman ps -a --format json: every container (managed or not). */
int podman_ps(struct podman *p, struct container_list *ret);
/* The last `tail` lines of the container's output (stdout and stderr). */
int podman_logs(struct podman *p, const char *name, unsigned tail, char **ret);

/* Parsers for podman's JSON, exposed for tests. */
int podman_parse_ps(const char *json, struct container_list *ret);
int podman_parse_inspect(const char *json, struct container *ret);
