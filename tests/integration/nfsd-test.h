/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Support for the strata-nfsd integration tests: TAP output, a temp dir,
 * starting and stopping the server on a free loopback port, and a raw
 * ONC RPC client over TCP that uses the same rpcgen XDR routines.
 */

#include <rpc/rpc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "nfs3.h"

/* From the server's rpc module: encodes nothing. */
bool_t rpc_xdr_void(XDR *x, void *p);

/* TAP */
void tap_ok(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One point skipped, with the reason (what this machine lacks). */
void tap_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tap_skip_all(const char *reason) __attribute__((noreturn));
/* Prints the plan; returns the exit code (0 when every test passed). */
int tap_done(void);

#define CHECK(cond, ...) tap_ok(!!(cond), __VA_ARGS__)

/* A temp dir with export/ and state/ below it, removed at exit. */
struct tmp {
        char *root;
        char *export;
        char *state;
};
void tmp_setup(struct tmp *t);

struct server {
        pid_t pid;
        int port;
};

/* Starts strata-nfsd ($STRATA_NFSD) on 127.0.0.1:0 with args (NULL-terminated)
 * after the --listen option; waits for its "listening on" line. Aborts the
 * test program when the server does not come up. */
void server_start(struct server *s, const char *const *args);
/* SIGTERM and wait: returns the exit status (or -1 when killed by a signal). */
int server_stop(struct server *s);
/* Sends a signal (SIGHUP...). */
void server_signal(struct server *s, int sig);
/* The exit status of the server if it has exited, -2 if it still runs. */
int server_exited(struct server *s);

/* Raw RPC client. */
struct rc {
        int fd;
        uint32_t xid;
        uint32_t uid, gid;
        uint32_t flavor; /* AUTH_SYS by default */
};

int rc_connect(struct rc *c, int port);
void rc_close(struct rc *c);

/* Sends a call and waits for the reply. Returns 0 when the call was
 * accepted and succeeded (res decoded), otherwise a positive code:
 * the accept_stat (PROG_UNAVAIL...) + 100, or 200 + reject_stat for a
 * denied call, or -errno for transport problems (-ECONNRESET when the
 * server closed the connection). */
int rc_call(struct rc *c, uint32_t prog, uint32_t vers, uint32_t proc, xdrproc_t xargs, void *args,
            xdrproc_t xres, void *res);

/* Builds the bytes of a call (header + args) into buf; returns the length. */
size_t rc_build_call(struct rc *c, uint32_t prog, uint32_t vers, uint32_t proc, xdrproc_t xargs,
                     void *args, void *buf, size_t size);

/* Sends raw bytes / reads one whole record (malloc'ed). */
int rc_send(struct rc *c, const void *buf, size_t len);
int rc_recv_record(struct rc *c, void **ret, size_t *ret_len);
/* Sends buf as one record in a single fragment. */
int rc_send_record(struct rc *c, const void *buf, size_t len);

/* Convenience wrappers for the tests. */
int nfs_call(struct rc *c, uint32_t proc, xdrproc_t xargs, void *args, xdrproc_t xres, void *res);
void rc_free(xdrproc_t xres, void *res);

/* An nfs_fh3 kept in test memory. */
struct fh {
        uint32_t len;
        char data[NFS3_FHSIZE];
};
nfs_fh3 fh_arg(struct fh *f);
void fh_from(struct fh *f, const nfs_fh3 *src);

/* MNT dirpath; returns the mountstat3 and fills f. */
int mnt(struct rc *c, const char *dir, struct fh *f);
/* LOOKUP name in dir; returns the nfsstat3. */
int lookup(struct rc *c, struct fh *dir, const char *name, struct fh *ret, fattr3 *ret_attr);
int getattr(struct rc *c, struct fh *f, fattr3 *ret);
/* MKDIR name in dir, mode 0755; returns the nfsstat3 (-1000 - the error of
 * the call itself) and, when ret is not NULL, fills it with the new dir. */
int rc_mkdir(struct rc *c, struct fh *dir, const char *name, struct fh *ret);
