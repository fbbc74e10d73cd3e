/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Benchmark client: creates N empty files over NFSv3 (libnfs) and stats
 * each, in one mounted session. Prints the elapsed seconds.
 *   nfs-smallfiles URL-OF-EXPORT-DIR N SUBDIR */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <nfsc/libnfs.h>

int main(int argc, char **argv)
{
        struct nfs_context *nfs;
        struct nfs_url *url;
        struct timespec a, b;
        int n;

        char dir[256];

        if (argc != 4) {
                fprintf(stderr, "usage: nfs-smallfiles URL N SUBDIR\n");
                return 2;
        }
        n = atoi(argv[2]);
        nfs = nfs_init_context();
        url = nfs ? nfs_parse_url_dir(nfs, argv[1]) : NULL;
        if (!url) {
                fprintf(stderr, "nfs-smallfiles: invalid url '%s'\n", argv[1]);
                return 1;
        }
        if (nfs_mount(nfs, url->server, url->path) < 0) {
                fprintf(stderr, "nfs-smallfiles: cannot mount '%s': %s\n", argv[1],
                        nfs_get_error(nfs));
                return 1;
        }
        snprintf(dir, sizeof(dir), "/%s", argv[3]);
        if (nfs_mkdir(nfs, dir) < 0) {
                fprintf(stderr, "nfs-smallfiles: mkdir: %s\n", nfs_get_error(nfs));
                return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (int i = 0; i < n; i++) {
                struct nfsfh *fh;
                struct nfs_stat_64 st;
                char path[300];

                snprintf(path, sizeof(path), "%s/f%05d", dir, i);
                if (nfs_creat(nfs, path, 0644, &fh) < 0 || nfs_close(nfs, fh) < 0 ||
                    nfs_stat64(nfs, path, &st) < 0 || st.nfs_size != 0) {
                        fprintf(stderr, "nfs-smallfiles: %s: %s\n", path, nfs_get_error(nfs));
                        return 1;
                }
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        printf("%.6f\n", (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
        nfs_destroy_url(url);
        nfs_destroy_context(nfs);
        return 0;
}
