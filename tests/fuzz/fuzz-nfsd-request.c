/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for strata-nfsd's request path: one input is one RPC
 * record as it arrives from a client. It is decoded (call header, AUTH_SYS
 * credentials, the procedure's XDR arguments), run against a server that
 * exports an empty temp directory, and the reply is encoded. Forged handles
 * never resolve, so procedures stop at their checks; MNT, EXPORT, DUMP,
 * NULL and the portmapper run fully.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "export.h"
#include "rpc.h"
#include "server.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct nfsd_server server;
/* A local peer whose socket root owns: every claim is taken. */
static struct nfsd_peer peer = {.local = true};
static uint8_t out[1024 * 1024 + 65536];
static uint8_t scratch[1024 * 1024];

static char dir[] = "/tmp/strata-nfsd-fuzz.XXXXXX";

/* Handles cannot be forged, so nothing is ever created in the export. */
static void remove_dir(void)
{
        rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        struct fhandle_key key = {};
        struct export_table *t;
        const char *failed;

        if (!mkdtemp(dir) || export_table_new_loopback(dir, &t) < 0 ||
            export_table_open(t, &key, &failed) < 0) {
                fprintf(stderr, "cannot set up the fuzz export in '%s'\n", dir);
                abort();
        }
        atexit(remove_dir);
        nfsd_server_init(&server, &key);
        nfsd_server_set_exports(&server, t);
        server.port = 4000;
        ((struct sockaddr_in *)&peer.addr)->sin_family = AF_INET;
        ((struct sockaddr_in *)&peer.addr)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct rpc_request r;
        struct rpc_reply rep;

        /* The decoder alone, then the whole path. */
        (void)rpc_request_decode(data, size, &r);
        rpc_request_done(&r);
        (void)rpc_handle(&server, &peer, data, size, out, sizeof(out), scratch, sizeof(scratch),
                         NULL, &rep);
        return 0;
}
