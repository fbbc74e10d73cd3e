/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* strata-nfsd through libnfs, a real NFSv3 client: file operations, large
 * files across many records, many concurrent clients while another client
 * stalls mid-record. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <unistd.h>
#include <nfsc/libnfs.h>

#include "nfsd-test.h"

static int port;

static struct nfs_context *connect_nfs(void)
{
        struct nfs_context *nfs = nfs_init_context();
        struct nfs_url *url;
        char u[256];

        if (!nfs)
                return NULL;
        snprintf(u, sizeof(u), "nfs://127.0.0.1/?version=3&nfsport=%d&mountport=%d", port, port);
        url = nfs_parse_url_dir(nfs, u);
        if (!url) {
                tap_diag("cannot parse '%s': %s", u, nfs_get_error(nfs));
                nfs_destroy_context(nfs);
                return NULL;
        }
        if (nfs_mount(nfs, "127.0.0.1", "/") < 0) {
                tap_diag("mount: %s", nfs_get_error(nfs));
                nfs_destroy_url(url);
                nfs_destroy_context(nfs);
                return NULL;
        }
        nfs_destroy_url(url);
        return nfs;
}

static void fill(unsigned char *buf, size_t len, unsigned seed)
{
        for (size_t i = 0; i < len; i++) {
                seed = seed * 1103515245u + 12345u;
                buf[i] = (unsigned char)(seed >> 16);
        }
}

/* Writes a file of size bytes in chunk-sized calls, reads it back, compares. */
static int roundtrip(struct nfs_context *nfs, const char *path, size_t size, size_t chunk,
                     unsigned seed)
{
        unsigned char *data = malloc(size), *back = malloc(size);
        struct nfsfh *fh = NULL;
        int r = -1;

        if (!data || !back)
                goto out;
        fill(data, size, seed);
        if (nfs_creat(nfs, path, 0644, &fh) < 0)
                goto out;
        for (size_t off = 0; off < size; off += chunk) {
                size_t n = size - off < chunk ? size - off : chunk;
                if (nfs_pwrite(nfs, fh, off, n, data + off) != (int)n)
                        goto out;
        }
        if (nfs_fsync(nfs, fh) < 0)
                goto out;
        nfs_close(nfs, fh);
        fh = NULL;
        if (nfs_open(nfs, path, O_RDONLY, &fh) < 0)
                goto out;
        for (size_t off = 0; off < size;) {
                int n =
                    nfs_pread(nfs, fh, off, size - off < chunk ? size - off : chunk, back + off);
                if (n <= 0)
                        goto out;
                off += (size_t)n;
        }
        r = memcmp(data, back, size) == 0 ? 0 : -2;
out:
        if (r == -1)
                tap_diag("%s: %s", path, nfs_get_error(nfs));
        if (fh)
                nfs_close(nfs, fh);
        free(data);
        free(back);
        return r;
}

struct worker {
        pthread_t thread;
        int id;
        int result;
};

static void *worker_main(void *p)
{
        struct worker *w = p;
        struct nfs_context *nfs = connect_nfs();
        char path[64];

        w->result = -1;
        if (!nfs)
                return NULL;
        snprintf(path, sizeof(path), "/conc/client-%02d", w->id);
        w->result = roundtrip(nfs, path, 2 * 1024 * 1024 + (size_t)w->id * 4097, 256 * 1024,
                              (unsigned)w->id);
        nfs_destroy_context(nfs);
        return NULL;
}

int main(void)
{
        struct tmp t;
        struct server srv;
        struct nfs_context *nfs;
        struct nfs_stat_64 st;
        struct statvfs sv;
        struct nfsdir *dir;
        struct nfsdirent *de;
        struct worker workers[16];
        struct rc stalled = {.fd = -1};
        char buf[256], path[4200];
        int r, n, ok;

        if (geteuid() != 0)
                tap_skip_all("needs root (open_by_handle_at needs CAP_DAC_READ_SEARCH)");
        tmp_setup(&t);
        const char *args[] = {"--state-dir", t.state, t.export, NULL};
        server_start(&srv, args);
        port = srv.port;

        nfs = connect_nfs();
        CHECK(nfs != NULL, "libnfs mounts / with nfsport=mountport=%d, no rpcbind", port);
        if (!nfs)
                return tap_done();
        CHECK(nfs_get_readmax(nfs) == 1048576 && nfs_get_writemax(nfs) == 1048576,
              "libnfs sees 1 MiB rtmax/wtmax");

        r = roundtrip(nfs, "/big", 32 * 1024 * 1024 + 123, 1024 * 1024, 7);
        CHECK(r == 0, "32 MiB file written and read back in 1 MiB calls");
        r = nfs_stat64(nfs, "/big", &st);
        CHECK(r == 0 && st.nfs_size == 32 * 1024 * 1024 + 123, "stat size of the big file");
        r = roundtrip(nfs, "/odd", 3 * 1000 * 1000 + 1, 777777, 8);
        CHECK(r == 0, "a file written in odd-sized unaligned calls reads back");

        CHECK(nfs_mkdir(nfs, "/d") == 0 && nfs_mkdir(nfs, "/d/e") == 0, "mkdir");
        CHECK(nfs_symlink(nfs, "../big", "/d/sl") == 0, "symlink");
        r = nfs_readlink(nfs, "/d/sl", buf, sizeof(buf));
        CHECK(r == 0 && strcmp(buf, "../big") == 0, "readlink");
        CHECK(nfs_chmod(nfs, "/odd", 0600) == 0 && nfs_stat64(nfs, "/odd", &st) == 0 &&
                  (st.nfs_mode & 07777) == 0600,
              "chmod");
        CHECK(nfs_truncate(nfs, "/odd", 5) == 0 && nfs_stat64(nfs, "/odd", &st) == 0 &&
                  st.nfs_size == 5,
              "truncate");
        {
                struct timeval tv[2] = {{.tv_sec = 100000}, {.tv_sec = 200000}};
                CHECK(nfs_utimes(nfs, "/odd", tv) == 0 && nfs_stat64(nfs, "/odd", &st) == 0 &&
                          st.nfs_atime == 100000 && st.nfs_mtime == 200000,
                      "utimes");
        }
        CHECK(nfs_access(nfs, "/odd", R_OK | W_OK) == 0, "access");
        CHECK(nfs_mknod(nfs, "/d/fifo", S_IFIFO | 0644, 0) == 0 &&
                  nfs_stat64(nfs, "/d/fifo", &st) == 0 && S_ISFIFO(st.nfs_mode),
              "mknod fifo");
        CHECK(nfs_link(nfs, "/odd", "/d/odd-link") == 0 && nfs_stat64(nfs, "/odd", &st) == 0 &&
                  st.nfs_nlink == 2,
              "link");
        CHECK(nfs_rename(nfs, "/d/odd-link", "/d/e/renamed") == 0 &&
                  nfs_stat64(nfs, "/d/e/renamed", &st) == 0,
              "rename");
        CHECK(nfs_unlink(nfs, "/d/e/renamed") == 0 && nfs_stat64(nfs, "/odd", &st) == 0 &&
                  st.nfs_nlink == 1,
              "unlink");
        CHECK(nfs_rmdir(nfs, "/d/e") == 0 && nfs_stat64(nfs, "/d/e", &st) < 0, "rmdir");
        CHECK(nfs_statvfs(nfs, "/", &sv) == 0 && sv.f_blocks > 0, "statvfs");
        n = 0;
        ok = 0;
        if (nfs_opendir(nfs, "/d", &dir) == 0) {
                while ((de = nfs_readdir(nfs, dir))) {
                        n++;
                        if (strcmp(de->name, "fifo") == 0 || strcmp(de->name, "sl") == 0)
                                ok++;
                }
                nfs_closedir(nfs, dir);
        }
        CHECK(ok == 2, "readdir lists the entries (%d seen)", n);
        CHECK(nfs_mkdir(nfs, "/conc") == 0, "mkdir /conc");

        /* A client that sends half a record and stalls must not hold up the rest. */
        if (rc_connect(&stalled, port) == 0)
                rc_send(&stalled, "\x80\x00\x01\x00partial", 11);
        for (int i = 0; i < 16; i++) {
                workers[i].id = i;
                pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
        }
        ok = 0;
        for (int i = 0; i < 16; i++) {
                pthread_join(workers[i].thread, NULL);
                if (workers[i].result == 0)
                        ok++;
        }
        CHECK(ok == 16, "16 concurrent clients each wrote and read back their file (%d ok)", ok);
        rc_close(&stalled);
        snprintf(path, sizeof(path), "%s/conc/client-15", t.export);
        CHECK(stat(path, (struct stat *)&(struct stat){}) == 0, "the files are on the server");

        nfs_destroy_context(nfs);
        CHECK(server_stop(&srv) == 0, "the server stops cleanly");
        return tap_done();
}
