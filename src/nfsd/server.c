/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server.h"

int nfsd_server_init(struct nfsd_server *s, const struct fhandle_key *key)
{
        struct timespec ts;

        *s = (struct nfsd_server){.key = *key};
        pthread_mutex_init(&s->lock, NULL);
        clock_gettime(CLOCK_REALTIME, &ts);
        atomic_init(&s->write_verf, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
        return 0;
}

void nfsd_server_done(struct nfsd_server *s)
{
        export_table_unref(s->exports);
        s->exports = NULL;
        for (size_t i = 0; i < s->n_mounts; i++) {
                free(s->mounts[i].host);
                free(s->mounts[i].dir);
        }
        free(s->mounts);
        s->mounts = NULL;
        s->n_mounts = 0;
        pthread_mutex_destroy(&s->lock);
}

void nfsd_server_set_exports(struct nfsd_server *s, struct export_table *t)
{
        struct export_table *old;

        pthread_mutex_lock(&s->lock);
        old = s->exports;
        s->exports = t;
        pthread_mutex_unlock(&s->lock);
        export_table_unref(old);
}

struct export_table *nfsd_server_get_exports(struct nfsd_server *s)
{
        struct export_table *t;

        pthread_mutex_lock(&s->lock);
        t = export_table_ref(s->exports);
        pthread_mutex_unlock(&s->lock);
        return t;
}

void nfsd_server_write_failed(struct nfsd_server *s)
{
        atomic_fetch_add(&s->write_verf, 1);
}

void *nfsd_call_alloc(struct nfsd_call *c, size_t size)
{
        void *p;

        if (c->n_allocs == c->n_allocs_max) {
                size_t m = c->n_allocs_max ? c->n_allocs_max * 2 : 16;
                void **n = realloc(c->allocs, m * sizeof(*n));
                if (!n)
                        return NULL;
                c->allocs = n;
                c->n_allocs_max = m;
        }
        p = calloc(1, size ? size : 1);
        if (!p)
                return NULL;
        c->allocs[c->n_allocs++] = p;
        return p;
}

void nfsd_call_free_allocs(struct nfsd_call *c)
{
        for (size_t i = 0; i < c->n_allocs; i++)
                free(c->allocs[i]);
        free(c->allocs);
        c->allocs = NULL;
        c->n_allocs = 0;
        c->n_allocs_max = 0;
}
