/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * State shared by every request of one strata-nfsd instance, and the
 * per-call context the procedures receive.
 */

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cred.h"
#include "export.h"
#include "fhandle.h"
#include "peer.h"

struct mount_entry {
        char *host;
        char *dir;
};

struct nfsd_server {
        struct fhandle_key key;
        uint16_t port;

        pthread_mutex_t lock; /* exports pointer, mounts */
        struct export_table *exports;
        struct mount_entry *mounts;
        size_t n_mounts;

        /* WRITE/COMMIT verifier: new at each start and after a failed
         * write-back, so clients resend what they had not committed. */
        _Atomic uint64_t write_verf;
};

/* Initializes s (no exports yet). */
int nfsd_server_init(struct nfsd_server *s, const struct fhandle_key *key);
void nfsd_server_done(struct nfsd_server *s);

/* Installs a new export table (takes the caller's reference). */
void nfsd_server_set_exports(struct nfsd_server *s, struct export_table *t);
/* A reference to the current table; release with export_table_unref(). */
struct export_table *nfsd_server_get_exports(struct nfsd_server *s);

/* Called when a write-back failed: changes the write verifier. */
void nfsd_server_write_failed(struct nfsd_server *s);

struct nfsd_call {
        struct nfsd_server *server;
        const struct sockaddr *peer;
        const struct nfsd_peer *who; /* the peer and its socket's owner */
        uint32_t xid;
        uint32_t prog;
        uint32_t vers;
        uint32_t proc;
        uint32_t flavor;  /* AUTH_NONE (0) or AUTH_SYS (1) */
        struct cred cred; /* the client's, before squashing */
        struct export_table *exports;

        /* Memory that lives until the reply is encoded. */
        void **allocs;
        size_t n_allocs, n_allocs_max;
        /* A buffer of scratch_size bytes for READ data. */
        void *scratch;
        size_t scratch_size;

        /* A pipe (read end, write end) that can hold scratch_size bytes,
         * or -1s: READ moves file data into it with splice(), so the data
         * reaches the socket without being copied. */
        int pipe[2];

        /* Bulk data sent after the encoded results without being copied
         * into them: the results end with an opaque<> encoded empty, whose
         * length word becomes pipe_len + tail_len (READ): pipe_len bytes
         * from the pipe, then tail_len bytes at tail. Without tail, what
         * is in the pipe is discarded. */
        size_t pipe_len;
        const void *tail;
        size_t tail_len;
};

/* Zeroed memory freed after the reply is sent; NULL when out of memory. */
void *nfsd_call_alloc(struct nfsd_call *c, size_t size);
void nfsd_call_free_allocs(struct nfsd_call *c);
