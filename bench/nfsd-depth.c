/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GETATTR of a directory handle at depth 1 and at depth DEPTH below the
 * export root of a strata-nfsd on a loopback port, through raw RPC calls
 * (the integration tests' client): the median of RUNS rounds of CALLS
 * calls each, alternated, and the ratio deep / shallow (1.0: the cost is flat in
 * depth). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nfsd-test.h"

static struct rc c = {.fd = -1};

static int mkdir_in(struct fh *dir, const char *name, struct fh *ret)
{
        MKDIR3args a = {.where = {.dir = fh_arg(dir), .name = (char *)name}};
        MKDIR3res res = {};
        int r, s;

        r = nfs_call(&c, 9, (xdrproc_t)xdr_MKDIR3args, &a, (xdrproc_t)xdr_MKDIR3res, &res);
        if (r != 0)
                return -1;
        s = res.status;
        if (s == NFS3_OK)
                fh_from(ret, &res.MKDIR3res_u.resok.obj.post_op_fh3_u.handle);
        xdr_free((xdrproc_t)xdr_MKDIR3res, (char *)&res);
        return s;
}

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* The time of one GETATTR of f, in microseconds, over calls calls. */
static double round_us(struct fh *f, int calls)
{
        double t0 = now();

        for (int j = 0; j < calls; j++)
                if (getattr(&c, f, NULL) != NFS3_OK) {
                        fprintf(stderr, "bench: GETATTR failed\n");
                        exit(1);
                }
        return (now() - t0) / calls * 1e6;
}

/* Medians over runs of rounds of a and b, alternated so that a busy
 * machine slows both alike. */
static void measure(struct fh *a, struct fh *b, int runs, int calls, double *ret_a, double *ret_b)
{
        double ta[64], tb[64];

        for (int i = 0; i < runs; i++) {
                ta[i] = round_us(a, calls);
                tb[i] = round_us(b, calls);
        }
        qsort(ta, (size_t)runs, sizeof(ta[0]), cmp);
        qsort(tb, (size_t)runs, sizeof(tb[0]), cmp);
        *ret_a = ta[runs / 2];
        *ret_b = tb[runs / 2];
}

int main(int argc, char **argv)
{
        int depth = argc > 1 ? atoi(argv[1]) : 4096;
        int runs = argc > 2 ? atoi(argv[2]) : 7;
        int calls = argc > 3 ? atoi(argv[3]) : 2000;
        struct fh root, shallow, cur, next;
        struct server srv;
        struct tmp t;
        double a, b;

        if (depth < 1 || runs < 1 || runs > 64 || calls < 1) {
                fprintf(stderr, "usage: %s [DEPTH [RUNS [CALLS]]]\n", argv[0]);
                return 2;
        }
        tmp_setup(&t);
        const char *args[] = {"--state-dir", t.state, t.export, NULL};
        server_start(&srv, args);
        if (rc_connect(&c, srv.port) < 0 || mnt(&c, "/", &root) != MNT3_OK) {
                fprintf(stderr, "bench: cannot mount the export\n");
                server_stop(&srv);
                return 1;
        }
        if (mkdir_in(&root, "d", &shallow) != NFS3_OK) {
                fprintf(stderr, "bench: MKDIR failed\n");
                server_stop(&srv);
                return 1;
        }
        cur = shallow;
        for (int i = 1; i < depth; i++) {
                if (mkdir_in(&cur, "d", &next) != NFS3_OK) {
                        fprintf(stderr, "bench: MKDIR at depth %d failed\n", i + 1);
                        server_stop(&srv);
                        return 1;
                }
                cur = next;
        }
        measure(&shallow, &cur, runs, calls, &a, &b);
        printf("GETATTR of a directory at depth 1:     %8.1f us\n", a);
        printf("GETATTR of a directory at depth %-6d %8.1f us\n", depth, b);
        printf("ratio depth %d / depth 1: %.2f (1.00: flat)\n", depth, b / a);
        rc_close(&c);
        server_stop(&srv);
        return 0;
}
