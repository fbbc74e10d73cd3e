/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The orchestrator's JSON-RPC 2.0 API, without a network: a request body
 * in, a response body out. The HTTP server (strata orchd) only moves bytes;
 * everything a peer can get wrong is judged here, so it is unit-tested
 * against the mock podman.
 *
 * Methods (docs/orchd.md): container.list, container.health, server.info,
 * package.install {id, dockerImage, tier?, grace?, command?, network?, pull?},
 * package.start, package.stop, package.restart, package.uninstall {id}.
 *
 * Errors are JSON-RPC error objects: -32700 the body does not parse, -32600
 * not a request, -32601 no such method, -32602 invalid params (data.field
 * names the field), RPC_ERROR_FAILED when the engine failed (the message
 * is the engine's, with podman's own words; data.errno its errno name),
 * RPC_ERROR_BUSY when the package is being installed or stopped by another
 * call.
 *
 * Thread safety: rpc_handle() may be called from any number of threads at
 * once. Calls into the engine are serialized by the server's lock, except
 * the slow parts of an install (pull with retries, create, start, watch)
 * and of a stop, restart or uninstall (the grace period), which run on a
 * podman (and s6 services) of their own without it, so that they do not
 * hold up other calls. The health monitor waits until they are done.
 */

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "clock.h"
#include "health.h"
#include "orch.h"
#include "policy.h"

#define RPC_PARSE_ERROR      -32700
#define RPC_INVALID_REQUEST  -32600
#define RPC_METHOD_NOT_FOUND -32601
#define RPC_INVALID_PARAMS   -32602
#define RPC_ERROR_FAILED     -32000
#define RPC_ERROR_BUSY       -32001

#define RPC_BATCH_MAX 64
#define RPC_ID_MAX    63

struct rpc_server {
        pthread_mutex_t lock;
        struct orch *orch;     /* not owned */
        const char *version;   /* not owned */
        const char *state_dir; /* not owned */
        int64_t interval_s;
        usec_t started_at;
        /* under lock: */
        char **installing; /* ids with an install under way, NULL-terminated */
        size_t n_installing;
        char **stopping; /* ids with a stop (restart, uninstall) under way */
        size_t n_stopping;
        unsigned health_passes;
        usec_t last_health_at;
        char *last_health_error;
        unsigned long requests;
};

/* o (and the policy and podman it points to) must outlive s. */
int rpc_server_init(struct rpc_server *s, struct orch *o, const char *version,
                    const char *state_dir, int64_t interval_s);
void rpc_server_done(struct rpc_server *s);

/* Handles one request body (a request or a batch). Returns 0 with
 * *ret_response the response body (owned by the caller), or NULL when there
 * is nothing to answer (only notifications); -ENOMEM otherwise. Every
 * other problem is answered in the response. */
int rpc_handle(struct rpc_server *s, const char *body, size_t len, char **ret_response);

/* Same for a parsed request, for callers that have one: returns a new
 * reference to the response, or NULL for a notification. */
json_t *rpc_handle_json(struct rpc_server *s, json_t *request);

/* One pass of the health monitor, applied (orch_health), under the lock;
 * -EBUSY while an install or a stop is under way.
 * -EBUSY (nothing done) while an install is under way: its container is
 * not the monitor's yet. *ret may be NULL. */
int rpc_health_pass(struct rpc_server *s, struct health_plan *ret, char **ret_error);

/* Replaces the engine's policy by *p (taking its contents) under the lock;
 * -EBUSY while an install is under way (it reads the policy). */
int rpc_replace_policy(struct rpc_server *s, struct policy *current, struct policy *p);

/* true if id is a package id: 1 to RPC_ID_MAX characters of [A-Za-z0-9_.-],
 * starting with a letter or digit (no slash, no shell characters). */
bool rpc_id_valid(const char *id);

/* A container as the API shows it. */
json_t *rpc_container_json(const struct orch *o, const struct container *c);
