/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Hostile input against strata-nfsd: broken record marks, truncated and
 * oversized XDR, bogus lengths, unknown programs, versions and procedures,
 * bad credentials, garbage, clients that stall or never read. The server
 * answers or drops the offending connection and keeps serving others. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nfsd-test.h"

#define X(t) ((xdrproc_t)xdr_##t)

static int port;

static bool_t xdr_void_args(XDR *x, void *p)
{
        return TRUE;
}

/* A fresh connection can still do a NULL call. */
static bool alive(void)
{
        struct rc c = {.fd = -1};
        int r;

        if (rc_connect(&c, port) < 0)
                return false;
        r = rc_call(&c, NFS3_PROGRAM, NFS3_VERSION, 0, X(void_args), NULL, X(void_args), NULL);
        rc_close(&c);
        return r == 0;
}

/* After sending bytes, is the connection closed by the server? */
static bool closed_by_server(struct rc *c)
{
        void *rec;
        size_t len;
        int r = rc_recv_record(c, &rec, &len);

        if (r == 0)
                free(rec);
        return r == -ECONNRESET;
}

static size_t put32(uint8_t *p, uint32_t v)
{
        v = htonl(v);
        memcpy(p, &v, 4);
        return 4;
}

int main(void)
{
        struct tmp t;
        struct server srv;
        struct rc c = {.fd = -1};
        struct fh root;
        uint8_t buf[4096];
        size_t n;
        int r;

        if (geteuid() != 0)
                tap_skip_all("needs root (open_by_handle_at needs CAP_DAC_READ_SEARCH)");
        tmp_setup(&t);
        const char *args[] = {"--state-dir", t.state, t.export, NULL};
        server_start(&srv, args);
        port = srv.port;
        CHECK(alive(), "the server answers NULL");

        /* Record marking */
        rc_connect(&c, port);
        rc_send(&c, "\xff\xff\xff\xff", 4);
        CHECK(closed_by_server(&c), "a record mark of 2 GiB closes the connection");
        rc_close(&c);
        CHECK(alive(), "still serving");

        rc_connect(&c, port);
        n = rc_build_call(&c, NFS3_PROGRAM, NFS3_VERSION, 0, X(void_args), NULL, buf, sizeof(buf));
        {
                /* Fragments that add up to more than the cap. */
                static uint8_t big[256 * 1024];
                bool failed = false;
                for (int i = 0; i < 8 && !failed; i++) {
                        uint8_t mark[4];
                        put32(mark, sizeof(big));
                        failed = rc_send(&c, mark, 4) < 0 || rc_send(&c, big, sizeof(big)) < 0;
                }
                CHECK(closed_by_server(&c), "a record over the size cap closes the connection");
        }
        rc_close(&c);

        rc_connect(&c, port);
        {
                /* One call in three fragments. */
                uint8_t mark[4];
                size_t a = 5, b = 11;
                put32(mark, (uint32_t)a);
                rc_send(&c, mark, 4);
                rc_send(&c, buf, a);
                put32(mark, (uint32_t)(b - a));
                rc_send(&c, mark, 4);
                rc_send(&c, buf + a, b - a);
                put32(mark, 0x80000000u | (uint32_t)(n - b));
                rc_send(&c, mark, 4);
                rc_send(&c, buf + b, n - b);
                void *rec;
                size_t len;
                r = rc_recv_record(&c, &rec, &len);
                CHECK(r == 0 && len >= 24, "a call split in three fragments is answered");
                if (r == 0)
                        free(rec);
        }
        rc_send(&c, "\x80\x00\x00\x00", 4);
        CHECK(closed_by_server(&c), "an empty record closes the connection");
        rc_close(&c);

        /* RPC header problems */
        rc_connect(&c, port);
        rc_send_record(&c, buf, 10);
        r = rc_call(&c, NFS3_PROGRAM, NFS3_VERSION, 0, X(void_args), NULL, X(void_args), NULL);
        CHECK(r == 0, "a truncated call header is dropped, the next call on the connection works");
        {
                uint8_t rep[64];
                size_t k = 0;
                k += put32(rep + k, 77);
                k += put32(rep + k, 1); /* REPLY */
                k += put32(rep + k, 0);
                rc_send_record(&c, rep, k);
                r = rc_call(&c, NFS3_PROGRAM, NFS3_VERSION, 0, X(void_args), NULL, X(void_args),
                            NULL);
                CHECK(r == 0, "a reply sent to the server is ignored");
        }
        {
                uint8_t m[4096];
                size_t k = rc_build_call(&c, NFS3_PROGRAM, NFS3_VERSION, 0, X(void_args), NULL, m,
                                         sizeof(m));
                void *rec;
                size_t len;
                put32(m + 8, 3); /* rpcvers */
                rc_send_record(&c, m, k);
                r = rc_recv_record(&c, &rec, &len);
                uint32_t w[6] = {};
                if (r == 0 && len >= 24)
                        memcpy(w, rec, 24);
                CHECK(r == 0 && ntohl(w[2]) == 1 /* MSG_DENIED */ &&
                          ntohl(w[3]) == 0 /* RPC_MISMATCH */ && ntohl(w[4]) == 2 &&
                          ntohl(w[5]) == 2,
                      "rpcvers 3 is denied with RPC_MISMATCH 2..2");
                if (r == 0)
                        free(rec);
        }
        r = rc_call(&c, 123456, 1, 0, X(void_args), NULL, X(void_args), NULL);
        CHECK(r == 100 + PROG_UNAVAIL, "an unknown program is PROG_UNAVAIL");
        r = rc_call(&c, NFS3_PROGRAM, 2, 0, X(void_args), NULL, X(void_args), NULL);
        CHECK(r == 100 + PROG_MISMATCH, "NFS version 2 is PROG_MISMATCH");
        r = rc_call(&c, MOUNT_PROGRAM, 1, 0, X(void_args), NULL, X(void_args), NULL);
        CHECK(r == 100 + PROG_MISMATCH, "MOUNT version 1 is PROG_MISMATCH");
        r = rc_call(&c, NFS3_PROGRAM, NFS3_VERSION, 22, X(void_args), NULL, X(void_args), NULL);
        CHECK(r == 100 + PROC_UNAVAIL, "NFS procedure 22 is PROC_UNAVAIL");
        r = rc_call(&c, MOUNT_PROGRAM, MOUNT_V3, 99, X(void_args), NULL, X(void_args), NULL);
        CHECK(r == 100 + PROC_UNAVAIL, "MOUNT procedure 99 is PROC_UNAVAIL");

        /* Credentials */
        c.flavor = 6; /* RPCSEC_GSS */
        r = rc_call(&c, NFS3_PROGRAM, NFS3_VERSION, 0, X(void_args), NULL, X(void_args), NULL);
        CHECK(r == 200 + AUTH_ERROR, "an unsupported credential flavor is AUTH_ERROR");
        c.flavor = AUTH_SYS;
        {
                uint8_t m[4096];
                size_t k = rc_build_call(&c, NFS3_PROGRAM, NFS3_VERSION, 0, X(void_args), NULL, m,
                                         sizeof(m));
                void *rec;
                size_t len;
                /* Claim 200 supplementary groups inside the AUTH_SYS body. */
                put32(m + 52, 200); /* after xid..cred len, stamp, "test", uid, gid */
                rc_send_record(&c, m, k);
                r = rc_recv_record(&c, &rec, &len);
                uint32_t w[5] = {};
                if (r == 0 && len >= 20)
                        memcpy(w, rec, 20);
                CHECK(r == 0 && ntohl(w[2]) == 1 && ntohl(w[3]) == 1 /* AUTH_ERROR */,
                      "AUTH_SYS credentials that do not decode are AUTH_ERROR");
                if (r == 0)
                        free(rec);
        }
        c.flavor = AUTH_NONE;
        r = rc_call(&c, NFS3_PROGRAM, NFS3_VERSION, 0, X(void_args), NULL, X(void_args), NULL);
        CHECK(r == 0, "AUTH_NONE is accepted (as the anonymous user)");
        c.flavor = AUTH_SYS;

        /* XDR argument problems */
        CHECK(mnt(&c, "/", &root) == MNT3_OK, "MNT /");
        {
                uint8_t m[4096];
                size_t k = rc_build_call(&c, NFS3_PROGRAM, NFS3_VERSION, 3, X(void_args), NULL, m,
                                         sizeof(m));
                size_t base = k;
                void *rec;
                size_t len;
                uint32_t w[6];

                /* LOOKUP: the handle and then a name of length 0x7fffffff */
                k += put32(m + k, root.len);
                memcpy(m + k, root.data, root.len);
                k += (root.len + 3) & ~3u;
                k += put32(m + k, 0x7fffffff);
                k += put32(m + k, 0x41414141);
                rc_send_record(&c, m, k);
                r = rc_recv_record(&c, &rec, &len);
                if (r == 0 && len >= 24)
                        memcpy(w, rec, 24);
                CHECK(r == 0 && ntohl(w[2]) == 0 && ntohl(w[5]) == GARBAGE_ARGS,
                      "a name length beyond the record is GARBAGE_ARGS");
                if (r == 0)
                        free(rec);

                /* truncated: the handle only */
                k = base;
                k += put32(m + k, root.len);
                memcpy(m + k, root.data, root.len);
                k += (root.len + 3) & ~3u;
                rc_send_record(&c, m, k);
                r = rc_recv_record(&c, &rec, &len);
                if (r == 0 && len >= 24)
                        memcpy(w, rec, 24);
                CHECK(r == 0 && ntohl(w[5]) == GARBAGE_ARGS,
                      "truncated arguments are GARBAGE_ARGS");
                if (r == 0)
                        free(rec);

                /* a handle longer than NFS3_FHSIZE */
                k = base;
                k += put32(m + k, 200);
                memset(m + k, 0, 200);
                k += 200;
                k += put32(m + k, 1);
                k += put32(m + k, 0x61000000);
                rc_send_record(&c, m, k);
                r = rc_recv_record(&c, &rec, &len);
                if (r == 0 && len >= 24)
                        memcpy(w, rec, 24);
                CHECK(r == 0 && ntohl(w[5]) == GARBAGE_ARGS,
                      "a 200-byte file handle is GARBAGE_ARGS");
                if (r == 0)
                        free(rec);
        }
        {
                /* WRITE claiming 0xffffffff bytes of data */
                uint8_t m[4096];
                size_t k = rc_build_call(&c, NFS3_PROGRAM, NFS3_VERSION, 7, X(void_args), NULL, m,
                                         sizeof(m));
                void *rec;
                size_t len;
                uint32_t w[6];
                k += put32(m + k, root.len);
                memcpy(m + k, root.data, root.len);
                k += (root.len + 3) & ~3u;
                k += put32(m + k, 0);
                k += put32(m + k, 0);          /* offset */
                k += put32(m + k, 0xffffffff); /* count */
                k += put32(m + k, 0);          /* stable */
                k += put32(m + k, 0xffffffff); /* data length */
                rc_send_record(&c, m, k);
                r = rc_recv_record(&c, &rec, &len);
                if (r == 0 && len >= 24)
                        memcpy(w, rec, 24);
                CHECK(r == 0 && ntohl(w[5]) == GARBAGE_ARGS, "a 4 GiB WRITE is GARBAGE_ARGS");
                if (r == 0)
                        free(rec);
        }
        {
                /* READ asking for 4 GiB gets at most 1 MiB */
                READ3args a = {.file = fh_arg(&root), .count = 0xffffffff};
                READ3res res = {};
                r = nfs_call(&c, 6, X(READ3args), &a, X(READ3res), &res);
                CHECK(r == 0 && res.status == NFS3ERR_ISDIR,
                      "READ of a directory is NFS3ERR_ISDIR");
                rc_free(X(READ3res), &res);
        }
        rc_close(&c);

        /* Garbage */
        srand(1234);
        for (int conn = 0; conn < 20; conn++) {
                if (rc_connect(&c, port) < 0)
                        break;
                for (int i = 0; i < 50; i++) {
                        size_t k = (size_t)(rand() % 600) + 1;
                        for (size_t j = 0; j < k; j++)
                                buf[j] = (uint8_t)rand();
                        if (i % 3 == 0) {
                                /* a valid header, random arguments */
                                uint32_t proc = (uint32_t)(rand() % 22);
                                size_t h = rc_build_call(&c, NFS3_PROGRAM, NFS3_VERSION, proc,
                                                         X(void_args), NULL, buf, sizeof(buf));
                                for (size_t j = 0; j < k && h + j < sizeof(buf); j++)
                                        buf[h + j] = (uint8_t)rand();
                                k = h + k < sizeof(buf) ? h + k : sizeof(buf);
                        }
                        if (rc_send_record(&c, buf, k) < 0)
                                break;
                }
                rc_close(&c);
        }
        CHECK(alive(), "still serving after 1000 garbage records");
        CHECK(server_exited(&srv) == -2, "the server did not exit");

        /* Many idle connections, a stalled partial record, a client that
         * sends reads and never reads the replies. */
        {
                struct rc idle[100];
                int opened = 0;
                for (int i = 0; i < 100; i++) {
                        idle[i].fd = -1;
                        idle[i].xid = 0;
                        idle[i].flavor = 0;
                        if (rc_connect(&idle[i], port) == 0)
                                opened++;
                }
                rc_send(&idle[0], "\x80\x00\x10\x00half", 8);
                FILE *f;
                char path[4200];
                snprintf(path, sizeof(path), "%s/blob", t.export);
                f = fopen(path, "w");
                if (f) {
                        static char mb[1 << 20];
                        fwrite(mb, 1, sizeof(mb), f);
                        fclose(f);
                }
                struct rc greedy = {.fd = -1};
                struct fh blob;
                rc_connect(&greedy, port);
                if (lookup(&greedy, &root, "blob", &blob, NULL) == NFS3_OK) {
                        static uint8_t m[4096];
                        READ3args a = {.file = fh_arg(&blob), .count = 1 << 20};
                        size_t k = rc_build_call(&greedy, NFS3_PROGRAM, NFS3_VERSION, 6,
                                                 X(READ3args), &a, m, sizeof(m));
                        for (int i = 0; i < 64; i++)
                                rc_send_record(&greedy, m, k);
                }
                CHECK(opened == 100 && alive(),
                      "serving others while 100 connections idle, one stalls mid-record and one "
                      "never reads 64 MiB of replies");
                for (int i = 0; i < 100; i++)
                        rc_close(&idle[i]);
                rc_close(&greedy);
        }
        CHECK(alive(), "still serving after they leave");

        CHECK(server_stop(&srv) == 0, "the server stops cleanly");
        return tap_done();
}
