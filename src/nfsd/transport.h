/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The RPC transport: TCP with record marking (RFC 5531 section 11), one
 * epoll loop that accepts and reads every connection, and a pool of worker
 * threads that decode, run and answer the calls. A connection may have
 * several calls in flight; replies go out as they complete. A slow call
 * occupies one worker, never the loop. A record longer than the cap, or a
 * broken stream, closes that connection only.
 */

#include <stddef.h>
#include <stdint.h>

#include "server.h"

#define TRANSPORT_MAX_RECORD (1024 * 1024 + 64 * 1024)

/* What peers may hold. */
struct transport_limits {
        unsigned max_connections; /* the oldest idle one is closed to make room */
        unsigned idle_timeout; /* seconds without traffic before a connection is closed; 0: never */
        size_t max_memory;     /* bytes of requests and replies held for all connections */
        unsigned poll_us; /* a worker polls that long after a call before it sleeps; 0: never */
};

#define TRANSPORT_MAX_CONNECTIONS 1024
#define TRANSPORT_IDLE_TIMEOUT    360
#define TRANSPORT_MAX_MEMORY      ((size_t)256 * 1024 * 1024)
#define TRANSPORT_POLL_US         50
/* Connections from peers no export lets in (they may still ask the
 * portmapper or MOUNT EXPORT); more are closed at accept. */
#define TRANSPORT_MAX_UNAUTHORIZED 16

struct transport;

/* Called on a signal read from the signalfd given to transport_run(); a
 * negative return stops the loop. */
typedef int (*transport_signal_fn)(uint32_t signo, void *userdata);

/* Takes ownership of listen_fd (a listening TCP socket). */
int transport_new(struct nfsd_server *s, int listen_fd, unsigned n_workers,
                  const struct transport_limits *limits, struct transport **ret);

/* Serves until on_signal returns < 0. Returns 0 or -errno. */
int transport_run(struct transport *t, int signal_fd, transport_signal_fn on_signal,
                  void *userdata);

struct transport *transport_free(struct transport *t);
