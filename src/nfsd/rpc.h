/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * ONC RPC v2 (RFC 5531) calls: decoding a call record (header, AUTH_SYS
 * credentials, the procedure's arguments through the rpcgen XDR routines),
 * dispatching it to the program's procedure table and encoding the reply.
 */

#include <rpc/rpc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "server.h"

struct rpc_proc {
        const char *name;
        xdrproc_t xdr_args;
        size_t args_size;
        xdrproc_t xdr_res;
        size_t res_size;
        /* Fills res from args. Never fails at the RPC level: errors are
         * results (nfsstat3, mountstat3). */
        void (*run)(struct nfsd_call *c, void *args, void *res);
};

struct rpc_program {
        uint32_t prog;
        uint32_t vers;
        const struct rpc_proc *procs;
        size_t n_procs;
};

/* Encodes or decodes nothing (arguments or results of NULL procedures). */
bool_t rpc_xdr_void(XDR *x, void *p);

extern const struct rpc_program nfs3_program;
extern const struct rpc_program mount3_program;
extern const struct rpc_program pmap2_program;

enum rpc_verdict {
        RPC_OK,           /* decoded: run the procedure */
        RPC_DROP,         /* not a call we answer (a reply, garbage header) */
        RPC_RPC_MISMATCH, /* rpcvers != 2 */
        RPC_AUTH_BADCRED, /* credentials that do not decode */
        RPC_AUTH_TOOWEAK, /* a flavor we do not accept */
        RPC_PROG_UNAVAIL,
        RPC_PROG_MISMATCH,
        RPC_PROC_UNAVAIL,
        RPC_GARBAGE_ARGS,
        RPC_SYSTEM_ERR,
};

/* A decoded call. */
struct rpc_request {
        uint32_t xid;
        uint32_t prog, vers, proc;
        uint32_t flavor;
        struct cred cred;
        const struct rpc_program *program; /* NULL unless the program is known */
        const struct rpc_proc *p;          /* NULL unless the procedure is known */
        void *args;                        /* decoded arguments, owned */
};

/* Decodes one call record. Always fills what it could decode (xid first)
 * and returns the verdict; rpc_request_done() releases the arguments. */
enum rpc_verdict rpc_request_decode(const void *buf, size_t len, struct rpc_request *ret);
void rpc_request_done(struct rpc_request *r);

/* A reply: len bytes encoded in the output buffer, then pipe_len bytes
 * waiting in the pipe given to rpc_handle(), then tail_len bytes at tail
 * (not copied; valid until the next call with the same scratch) and zero
 * padding to a multiple of 4. pipe_drop bytes in the pipe belong to no
 * reply (results that failed to encode after READ filled it): the caller
 * discards them, whatever rpc_handle() returned. */
struct rpc_reply {
        size_t len;
        size_t pipe_len, pipe_drop;
        const void *tail;
        size_t tail_len;
};

/* Handles one call record: decode, run, encode the reply into out. pipe
 * is an empty pipe that can hold scratch_size bytes (see struct nfsd_call),
 * or NULL. Returns 1 with *ret filled, 0 when nothing is to be sent, or
 * -errno. */
int rpc_handle(struct nfsd_server *s, const struct nfsd_peer *peer, const void *req, size_t len,
               void *out, size_t out_size, void *scratch, size_t scratch_size, const int pipe[2],
               struct rpc_reply *ret);

/* WRITE3args decoder that leaves the data in the request buffer instead of
 * copying it (the buffer outlives the call). */
bool_t rpc_xdr_WRITE3args_inplace(XDR *x, void *args);
