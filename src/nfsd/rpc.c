/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "macro.h"
#include "nfs3.h"
#include "rpc.h"

static const struct rpc_program *const programs[] = {
    &nfs3_program,
    &mount3_program,
    &pmap2_program,
};

bool_t rpc_xdr_void(XDR *x, void *p)
{
        return TRUE;
}

static uint32_t get_be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static enum rpc_verdict decode_cred(struct rpc_msg *m, struct rpc_request *r)
{
        struct opaque_auth *oa = &m->rm_call.cb_cred;
        struct authunix_parms p = {};
        XDR x;
        bool ok;

        r->flavor = oa->oa_flavor;
        switch (oa->oa_flavor) {
        case AUTH_NONE:
                return RPC_OK;
        case AUTH_SYS:
                break;
        default:
                return RPC_AUTH_TOOWEAK;
        }

        xdrmem_create(&x, oa->oa_base, oa->oa_length, XDR_DECODE);
        ok = xdr_authunix_parms(&x, &p);
        if (ok && p.aup_len <= CRED_GROUPS_MAX) {
                r->cred.uid = p.aup_uid;
                r->cred.gid = p.aup_gid;
                r->cred.n_groups = p.aup_len;
                for (unsigned i = 0; i < p.aup_len; i++)
                        r->cred.groups[i] = p.aup_gids[i];
        } else
                ok = false;
        xdr_free((xdrproc_t)xdr_authunix_parms, (char *)&p);
        return ok ? RPC_OK : RPC_AUTH_BADCRED;
}

/* Whether a call that does not decode has a credential or verifier body
 * longer than RFC 5531's 400 bytes: that is a bad credential, answered as
 * such, where anything else that does not decode is dropped. After the
 * six header words come the credential's flavor and length. */
static bool auth_too_long(const void *buf, size_t len)
{
        const uint8_t *p = buf;
        uint32_t cred_len;
        size_t verf;

        if (len < 32)
                return false;
        cred_len = get_be32(p + 28);
        if (cred_len > MAX_AUTH_BYTES)
                return true;
        verf = 32 + (((size_t)cred_len + 3) & ~(size_t)3);
        return len >= verf + 8 && get_be32(p + verf + 4) > MAX_AUTH_BYTES;
}

enum rpc_verdict rpc_request_decode(const void *buf, size_t len, struct rpc_request *r)
{
        char cred_body[MAX_AUTH_BYTES], verf_body[MAX_AUTH_BYTES];
        struct rpc_msg m = {};
        enum rpc_verdict v;
        XDR x;

        *r = (struct rpc_request){};
        /* xid, direction, rpcvers: read by hand first so a wrong version
         * can be answered with RPC_MISMATCH. */
        if (len < 12)
                return RPC_DROP;
        r->xid = get_be32(buf);
        if (get_be32((const uint8_t *)buf + 4) != CALL)
                return RPC_DROP;
        if (get_be32((const uint8_t *)buf + 8) != RPC_MSG_VERSION)
                return RPC_RPC_MISMATCH;

        m.rm_call.cb_cred.oa_base = cred_body;
        m.rm_call.cb_verf.oa_base = verf_body;
        xdrmem_create(&x, (char *)buf, (unsigned)len, XDR_DECODE);
        if (!xdr_callmsg(&x, &m))
                return auth_too_long(buf, len) ? RPC_AUTH_BADCRED : RPC_DROP;
        r->prog = m.rm_call.cb_prog;
        r->vers = m.rm_call.cb_vers;
        r->proc = m.rm_call.cb_proc;

        v = decode_cred(&m, r);
        if (v != RPC_OK)
                return v;

        v = RPC_PROG_UNAVAIL;
        for (size_t i = 0; i < ELEMENTSOF(programs); i++) {
                if (programs[i]->prog != r->prog)
                        continue;
                if (programs[i]->vers != r->vers) {
                        r->program = programs[i];
                        v = RPC_PROG_MISMATCH;
                        continue;
                }
                r->program = programs[i];
                v = RPC_OK;
                break;
        }
        if (v != RPC_OK)
                return v;
        if (r->proc >= r->program->n_procs || !r->program->procs[r->proc].run)
                return RPC_PROC_UNAVAIL;
        r->p = &r->program->procs[r->proc];

        r->args = calloc(1, MAX(r->p->args_size, 1u));
        if (!r->args)
                return RPC_SYSTEM_ERR;
        if (!r->p->xdr_args(&x, r->args))
                return RPC_GARBAGE_ARGS;
        /* Bytes after the arguments: a padded call, not one we understand. */
        if (xdr_getpos(&x) != len)
                return RPC_GARBAGE_ARGS;
        return RPC_OK;
}

void rpc_request_done(struct rpc_request *r)
{
        if (r->args) {
                xdr_free(r->p->xdr_args, r->args);
                free(r->args);
                r->args = NULL;
        }
}

static void program_versions(const struct rpc_request *r, uint32_t *low, uint32_t *high)
{
        *low = UINT32_MAX;
        *high = 0;
        for (size_t i = 0; i < ELEMENTSOF(programs); i++)
                if (programs[i]->prog == r->prog) {
                        *low = MIN(*low, programs[i]->vers);
                        *high = MAX(*high, programs[i]->vers);
                }
}

/* Encodes the reply header for the verdict; for RPC_OK the results follow. */
static bool encode_header(XDR *x, const struct rpc_request *r, enum rpc_verdict v)
{
        struct rpc_msg m = {
            .rm_xid = r->xid,
            .rm_direction = REPLY,
        };

        switch (v) {
        case RPC_RPC_MISMATCH:
                m.rm_reply.rp_stat = MSG_DENIED;
                m.rjcted_rply.rj_stat = RPC_MISMATCH;
                m.rjcted_rply.rj_vers.low = RPC_MSG_VERSION;
                m.rjcted_rply.rj_vers.high = RPC_MSG_VERSION;
                break;
        case RPC_AUTH_BADCRED:
        case RPC_AUTH_TOOWEAK:
                m.rm_reply.rp_stat = MSG_DENIED;
                m.rjcted_rply.rj_stat = AUTH_ERROR;
                m.rjcted_rply.rj_why = v == RPC_AUTH_BADCRED ? AUTH_BADCRED : AUTH_TOOWEAK;
                break;
        case RPC_OK:
        case RPC_PROG_UNAVAIL:
        case RPC_PROG_MISMATCH:
        case RPC_PROC_UNAVAIL:
        case RPC_GARBAGE_ARGS:
        case RPC_SYSTEM_ERR:
                m.rm_reply.rp_stat = MSG_ACCEPTED;
                m.acpted_rply.ar_verf.oa_flavor = AUTH_NONE;
                m.acpted_rply.ar_results.where = NULL;
                m.acpted_rply.ar_results.proc = (xdrproc_t)rpc_xdr_void;
                m.acpted_rply.ar_stat = v == RPC_OK              ? SUCCESS
                                        : v == RPC_PROG_UNAVAIL  ? PROG_UNAVAIL
                                        : v == RPC_PROG_MISMATCH ? PROG_MISMATCH
                                        : v == RPC_PROC_UNAVAIL  ? PROC_UNAVAIL
                                        : v == RPC_GARBAGE_ARGS  ? GARBAGE_ARGS
                                                                 : SYSTEM_ERR;
                if (v == RPC_PROG_MISMATCH)
                        program_versions(r, &m.acpted_rply.ar_vers.low,
                                         &m.acpted_rply.ar_vers.high);
                break;
        case RPC_DROP:
        default:
                return false;
        }
        return xdr_replymsg(x, &m);
}

bool_t rpc_xdr_WRITE3args_inplace(XDR *x, void *args)
{
        WRITE3args *a = args;
        u_int len, pos;
        char *base;

        if (!xdr_nfs_fh3(x, &a->file) || !xdr_offset3(x, &a->offset) || !xdr_count3(x, &a->count) ||
            !xdr_stable_how(x, &a->stable))
                return FALSE;
        /* An enum that is none of its values does not decode. */
        if (x->x_op == XDR_DECODE && (uint32_t)a->stable > FILE_SYNC)
                return FALSE;
        if (x->x_op == XDR_FREE) {
                a->data.data_val = NULL;
                return TRUE;
        }
        if (x->x_op != XDR_DECODE || !xdr_u_int(x, &len) || len > NFS3_MAXDATA)
                return FALSE;
        /* Only for xdrmem streams, whose x_private is the current position:
         * point at the data, then skip it. */
        pos = xdr_getpos(x);
        base = x->x_private;
        if (!xdr_setpos(x, pos + ((len + 3) & ~3u)))
                return FALSE;
        a->data.data_len = len;
        a->data.data_val = base;
        return TRUE;
}

int rpc_handle(struct nfsd_server *s, const struct nfsd_peer *peer, const void *req, size_t len,
               void *out, size_t out_size, void *scratch, size_t scratch_size, const int pipe[2],
               struct rpc_reply *ret)
{
        struct rpc_request r;
        enum rpc_verdict v;
        void *res = NULL;
        const void *tail = NULL;
        size_t tail_len = 0, pipe_len = 0, pipe_drop = 0;
        ssize_t n = 0;
        XDR x;

        *ret = (struct rpc_reply){};
        v = rpc_request_decode(req, len, &r);
        if (v == RPC_DROP) {
                rpc_request_done(&r);
                return 0;
        }
        xdrmem_create(&x, out, (unsigned)out_size, XDR_ENCODE);

        if (v == RPC_OK) {
                struct nfsd_call c = {
                    .server = s,
                    .peer = (const struct sockaddr *)&peer->addr,
                    .who = peer,
                    .xid = r.xid,
                    .prog = r.prog,
                    .vers = r.vers,
                    .proc = r.proc,
                    .flavor = r.flavor,
                    .cred = r.cred,
                    .scratch = scratch,
                    .scratch_size = scratch_size,
                    .pipe = {pipe ? pipe[0] : -1, pipe ? pipe[1] : -1},
                };

                res = calloc(1, MAX(r.p->res_size, 1u));
                if (!res)
                        v = RPC_SYSTEM_ERR;
                else {
                        c.exports = nfsd_server_get_exports(s);
                        r.p->run(&c, r.args, res);
                        if (encode_header(&x, &r, RPC_OK) && r.p->xdr_res(&x, res)) {
                                n = xdr_getpos(&x);
                                if (c.tail && n >= 4) {
                                        uint8_t *w = (uint8_t *)out + n - 4;
                                        size_t bulk = c.pipe_len + c.tail_len;

                                        w[0] = (uint8_t)(bulk >> 24);
                                        w[1] = (uint8_t)(bulk >> 16);
                                        w[2] = (uint8_t)(bulk >> 8);
                                        w[3] = (uint8_t)bulk;
                                        pipe_len = c.pipe_len;
                                        tail = c.tail;
                                        tail_len = c.tail_len;
                                } else
                                        pipe_drop = c.pipe_len;
                        } else {
                                pipe_drop = c.pipe_len;
                                log_debug("cannot encode the reply of %s", r.p->name);
                                n = -1;
                        }
                        /* Results point into call memory or the scratch
                         * buffer: nothing in them is xdr_free()d. */
                        nfsd_call_free_allocs(&c);
                        export_table_unref(c.exports);
                        free(res);
                        if (n < 0) {
                                v = RPC_SYSTEM_ERR;
                                tail = NULL;
                                tail_len = 0;
                                xdrmem_create(&x, out, (unsigned)out_size, XDR_ENCODE);
                        }
                }
        }
        if (v != RPC_OK) {
                if (!encode_header(&x, &r, v)) {
                        rpc_request_done(&r);
                        ret->pipe_drop = pipe_drop;
                        return -EPROTO;
                }
                n = xdr_getpos(&x);
        }
        rpc_request_done(&r);
        *ret = (struct rpc_reply){.len = (size_t)n,
                                  .pipe_len = pipe_len,
                                  .pipe_drop = pipe_drop,
                                  .tail = tail,
                                  .tail_len = tail_len};
        return 1;
}
