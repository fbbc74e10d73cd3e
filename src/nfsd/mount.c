/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* MOUNT version 3 (RFC 1813, appendix I): MNT, UMNT, UMNTALL, EXPORT, DUMP. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fsobj.h"
#include "log.h"
#include "macro.h"
#include "nfs3.h"
#include "rpc.h"
#include "transport.h"

static void peer_name(const struct sockaddr *sa, char *buf, size_t size)
{
        const void *a = sa->sa_family == AF_INET
                            ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                            : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;

        if (!inet_ntop(sa->sa_family, a, buf, (socklen_t)size))
                snprintf(buf, size, "unknown");
}

static mountstat3 errno_to_mountstat(int r)
{
        switch (-r) {
        case EPERM:
                return MNT3ERR_PERM;
        case ENOENT:
                return MNT3ERR_NOENT;
        case EACCES:
        case ELOOP:
        case EXDEV:
                return MNT3ERR_ACCES;
        case ENOTDIR:
                return MNT3ERR_NOTDIR;
        case EINVAL:
                return MNT3ERR_INVAL;
        case ENAMETOOLONG:
                return MNT3ERR_NAMETOOLONG;
        default:
                return MNT3ERR_IO;
        }
}

static void mount_null(struct nfsd_call *c, void *args, void *res)
{
}

/* MOUNT's list (DUMP) is informational: it holds each client's exports
 * once, by the export's name however the client spelled the path, and at
 * most MOUNT_LIST_MAX of them; when full, the oldest entry goes. DUMP
 * lists what fits in DUMP_REPLY_MAX bytes. */
#define MOUNT_LIST_MAX 4096
#define DUMP_REPLY_MAX (TRANSPORT_MAX_RECORD - 64 * 1024)

static void remember(struct nfsd_server *s, const char *host, const char *dir)
{
        struct mount_entry *n;
        char *h, *d;

        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < s->n_mounts; i++)
                if (streq(s->mounts[i].host, host) && streq(s->mounts[i].dir, dir))
                        goto out;
        h = strdup(host);
        d = strdup(dir);
        if (!h || !d) {
                free(h);
                free(d);
                goto out;
        }
        if (s->n_mounts >= MOUNT_LIST_MAX) {
                free(s->mounts[0].host);
                free(s->mounts[0].dir);
                memmove(s->mounts, s->mounts + 1, --s->n_mounts * sizeof(*s->mounts));
        } else {
                n = realloc(s->mounts, (s->n_mounts + 1) * sizeof(*n));
                if (!n) {
                        free(h);
                        free(d);
                        goto out;
                }
                s->mounts = n;
        }
        s->mounts[s->n_mounts++] = (struct mount_entry){.host = h, .dir = d};
out:
        pthread_mutex_unlock(&s->lock);
}

/* Forgets the entries of host: those of the export dir lies in (any
 * spelling of a path in it), or all with dir NULL. */
static void forget(struct nfsd_server *s, const struct export_table *t, const char *host,
                   const char *dir)
{
        const struct export *e = NULL;
        const char *rest;

        if (dir && t) {
                e = export_table_find_name(t, *dir ? dir : "/", &rest);
                if (e)
                        dir = e->name;
        }
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < s->n_mounts;) {
                if (streq(s->mounts[i].host, host) && (!dir || streq(s->mounts[i].dir, dir))) {
                        free(s->mounts[i].host);
                        free(s->mounts[i].dir);
                        memmove(s->mounts + i, s->mounts + i + 1,
                                (--s->n_mounts - i) * sizeof(*s->mounts));
                } else
                        i++;
        }
        pthread_mutex_unlock(&s->lock);
}

/* Walks rest (relative, '/'-separated) from the export root one component
 * at a time, never following symlinks and never going up. */
static int walk(int rootfd, const char *rest, int *ret_fd)
{
        _cleanup_free_ char *copy = strdup(rest);
        _cleanup_close_ int fd = -1;
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return negative_errno();
        for (char *p = strtok_r(copy, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
                int n;

                if (streq(p, "."))
                        continue;
                if (streq(p, ".."))
                        return -EACCES;
                n = openat(fd, p, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
                if (n < 0)
                        return negative_errno();
                safe_close(fd);
                fd = n;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static void mount_mnt(struct nfsd_call *c, void *args, void *res)
{
        dirpath3 *dir = args;
        mountres3 *out = res;
        const struct export_client *cl;
        const struct export *e;
        _cleanup_close_ int fd = -1;
        const char *rest;
        struct cred cred;
        uint8_t *fh;
        int *flavors;
        char host[INET6_ADDRSTRLEN];
        int r;

        out->fhs_status = MNT3ERR_NOENT;
        /* Some clients ask for "" when they mean the root. */
        if (!*dir || ((*dir)[0] != '/' && (*dir)[0] != '\0'))
                return;
        e = export_table_find_name(c->exports, (*dir)[0] ? *dir : "/", &rest);
        if (!e)
                return;
        if (export_access(e, c->peer, &cl) < 0) {
                /* Not allowed, or from an unreserved port to a `secure` export. */
                out->fhs_status = MNT3ERR_ACCES;
                return;
        }
        fsobj_cred(c, cl, &cred);
        r = cred_enter(&cred);
        if (r < 0) {
                out->fhs_status = MNT3ERR_SERVERFAULT;
                return;
        }
        r = walk(e->fd, rest, &fd);
        cred_leave();
        if (r < 0) {
                out->fhs_status = errno_to_mountstat(r);
                return;
        }

        fh = nfsd_call_alloc(c, FHANDLE_MAX);
        flavors = nfsd_call_alloc(c, sizeof(int));
        if (!fh || !flavors) {
                out->fhs_status = MNT3ERR_SERVERFAULT;
                return;
        }
        r = fsobj_handle_of_fd(c, e, fd, fh);
        if (r < 0) {
                out->fhs_status = errno_to_mountstat(r);
                return;
        }
        flavors[0] = AUTH_SYS_FLAVOR;
        out->fhs_status = MNT3_OK;
        out->mountres3_u.mountinfo.fhandle.fhandle3_len = (u_int)r;
        out->mountres3_u.mountinfo.fhandle.fhandle3_val = (char *)fh;
        out->mountres3_u.mountinfo.auth_flavors.auth_flavors_len = 1;
        out->mountres3_u.mountinfo.auth_flavors.auth_flavors_val = flavors;

        peer_name(c->peer, host, sizeof(host));
        remember(c->server, host, e->name);
}

static void mount_umnt(struct nfsd_call *c, void *args, void *res)
{
        dirpath3 *dir = args;
        char host[INET6_ADDRSTRLEN];

        peer_name(c->peer, host, sizeof(host));
        forget(c->server, c->exports, host, *dir);
}

static void mount_umntall(struct nfsd_call *c, void *args, void *res)
{
        char host[INET6_ADDRSTRLEN];

        peer_name(c->peer, host, sizeof(host));
        forget(c->server, c->exports, host, NULL);
}

static void mount_dump(struct nfsd_call *c, void *args, void *res)
{
        mountlist3 *out = res;
        struct nfsd_server *s = c->server;
        struct mountbody *prev = NULL;
        size_t used = 4 + 4; /* the list's end, the reply header's slack */

        *out = NULL;
        pthread_mutex_lock(&s->lock);
        /* The newest first, so what is cut is the oldest. */
        for (size_t i = s->n_mounts; i-- > 0;) {
                size_t hl = strlen(s->mounts[i].host), dl = strlen(s->mounts[i].dir);
                struct mountbody *b;
                char *h, *d;

                used += 4 + 4 + ((hl + 3) & ~(size_t)3) + 4 + ((dl + 3) & ~(size_t)3);
                if (used > DUMP_REPLY_MAX)
                        break;
                b = nfsd_call_alloc(c, sizeof(*b));
                h = nfsd_call_alloc(c, hl + 1);
                d = nfsd_call_alloc(c, dl + 1);
                if (!b || !h || !d)
                        break;
                strcpy(h, s->mounts[i].host);
                strcpy(d, s->mounts[i].dir);
                b->ml_hostname = h;
                b->ml_directory = d;
                if (prev)
                        prev->ml_next = b;
                else
                        *out = b;
                prev = b;
        }
        pthread_mutex_unlock(&s->lock);
}

static void mount_export(struct nfsd_call *c, void *args, void *res)
{
        exports3 *out = res;
        struct exportnode *prev = NULL;
        const struct export_table *t = c->exports;

        *out = NULL;
        for (size_t i = 0; t && i < t->n_exports; i++) {
                const struct export *e = &t->exports[i];
                struct exportnode *n = nfsd_call_alloc(c, sizeof(*n));
                struct groupnode *gprev = NULL;

                if (!n)
                        return;
                n->ex_dir = e->name;
                for (size_t j = 0; j < e->n_clients; j++) {
                        struct groupnode *g = nfsd_call_alloc(c, sizeof(*g));
                        if (!g)
                                return;
                        g->gr_name = e->clients[j].spec;
                        if (gprev)
                                gprev->gr_next = g;
                        else
                                n->ex_groups = g;
                        gprev = g;
                }
                if (prev)
                        prev->ex_next = n;
                else
                        *out = n;
                prev = n;
        }
}

static const struct rpc_proc mount3_procs[] = {
    [0] = {"MOUNT NULL", (xdrproc_t)rpc_xdr_void, 0, (xdrproc_t)rpc_xdr_void, 0, mount_null},
    [1] = {"MNT", (xdrproc_t)xdr_dirpath3, sizeof(dirpath3), (xdrproc_t)xdr_mountres3,
           sizeof(mountres3), mount_mnt},
    [2] = {"DUMP", (xdrproc_t)rpc_xdr_void, 0, (xdrproc_t)xdr_mountlist3, sizeof(mountlist3),
           mount_dump},
    [3] = {"UMNT", (xdrproc_t)xdr_dirpath3, sizeof(dirpath3), (xdrproc_t)rpc_xdr_void, 0,
           mount_umnt},
    [4] = {"UMNTALL", (xdrproc_t)rpc_xdr_void, 0, (xdrproc_t)rpc_xdr_void, 0, mount_umntall},
    [5] = {"EXPORT", (xdrproc_t)rpc_xdr_void, 0, (xdrproc_t)xdr_exports3, sizeof(exports3),
           mount_export},
};

const struct rpc_program mount3_program = {
    .prog = MOUNT_PROGRAM,
    .vers = MOUNT_V3,
    .procs = mount3_procs,
    .n_procs = ELEMENTSOF(mount3_procs),
};

/* Portmapper version 2: we answer for the programs served on our own port,
 * so a client that asks the portmapper on this port finds them. */

static void pmap2_null(struct nfsd_call *c, void *args, void *res)
{
}

static bool served(uint32_t prog, uint32_t vers)
{
        return (prog == NFS3_PROGRAM && vers == NFS3_VERSION) ||
               (prog == MOUNT_PROGRAM && vers == MOUNT_V3) ||
               (prog == PMAP_PROGRAM && vers == PMAP_V2);
}

static void pmap2_getport(struct nfsd_call *c, void *args, void *res)
{
        pmap2_mapping *m = args;
        uint32 *port = res;

        *port = m->prot == PMAP_IPPROTO_TCP && served(m->prog, m->vers) ? c->server->port : 0;
}

static void pmap2_set(struct nfsd_call *c, void *args, void *res)
{
        bool_t *ok = res;

        /* Registrations are not accepted: this is not a general portmapper. */
        *ok = FALSE;
}

static void pmap2_dump(struct nfsd_call *c, void *args, void *res)
{
        static const uint32_t progs[][2] = {
            {PMAP_PROGRAM, PMAP_V2},
            {NFS3_PROGRAM, NFS3_VERSION},
            {MOUNT_PROGRAM, MOUNT_V3},
        };
        pmap2_list *out = res;
        struct pmap2_entry *prev = NULL;

        *out = NULL;
        for (size_t i = 0; i < ELEMENTSOF(progs); i++) {
                struct pmap2_entry *e = nfsd_call_alloc(c, sizeof(*e));
                if (!e)
                        return;
                e->map =
                    (pmap2_mapping){progs[i][0], progs[i][1], PMAP_IPPROTO_TCP, c->server->port};
                if (prev)
                        prev->next = e;
                else
                        *out = e;
                prev = e;
        }
}

static const struct rpc_proc pmap2_procs[] = {
    [0] = {"PMAP NULL", (xdrproc_t)rpc_xdr_void, 0, (xdrproc_t)rpc_xdr_void, 0, pmap2_null},
    [1] = {"PMAP SET", (xdrproc_t)xdr_pmap2_mapping, sizeof(pmap2_mapping), (xdrproc_t)xdr_bool,
           sizeof(bool_t), pmap2_set},
    [2] = {"PMAP UNSET", (xdrproc_t)xdr_pmap2_mapping, sizeof(pmap2_mapping), (xdrproc_t)xdr_bool,
           sizeof(bool_t), pmap2_set},
    [3] = {"GETPORT", (xdrproc_t)xdr_pmap2_mapping, sizeof(pmap2_mapping), (xdrproc_t)xdr_uint32,
           sizeof(uint32), pmap2_getport},
    [4] = {"PMAP DUMP", (xdrproc_t)rpc_xdr_void, 0, (xdrproc_t)xdr_pmap2_list, sizeof(pmap2_list),
           pmap2_dump},
};

const struct rpc_program pmap2_program = {
    .prog = PMAP_PROGRAM,
    .vers = PMAP_V2,
    .procs = pmap2_procs,
    .n_procs = ELEMENTSOF(pmap2_procs),
};
