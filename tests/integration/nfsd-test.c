/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nfsd-test.h"

static int tap_n, tap_failed;
static char *tmp_root, *tmp_export, *tmp_state;
static pid_t tmp_owner;

void tap_ok(bool ok, const char *fmt, ...)
{
        va_list ap;

        printf("%s %d - ", ok ? "ok" : "not ok", ++tap_n);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
        if (!ok)
                tap_failed++;
}

void tap_diag(const char *fmt, ...)
{
        va_list ap;

        printf("# ");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
}

void tap_skip(const char *fmt, ...)
{
        va_list ap;

        printf("ok %d - # SKIP ", ++tap_n);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
}

void tap_skip_all(const char *reason)
{
        printf("1..0 # SKIP %s\n", reason);
        exit(77);
}

int tap_done(void)
{
        printf("1..%d\n", tap_n);
        return tap_failed ? 1 : 0;
}

static void tmp_cleanup(void)
{
        char cmd[4200];

        if (!tmp_root || getpid() != tmp_owner)
                return;
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
        if (system(cmd) != 0)
                fprintf(stderr, "cannot remove '%s'\n", tmp_root);
        free(tmp_root);
        free(tmp_export);
        free(tmp_state);
}

void tmp_setup(struct tmp *t)
{
        /* under TMPDIR: in the test image /tmp is on the overlay root,
         * whose file handles are not persistent (strata-nfsd refuses it) */
        const char *dir = getenv("TMPDIR");
        char *tmpl = NULL;

        if (asprintf(&tmpl, "%s/strata-nfsd-test.XXXXXX", dir && *dir ? dir : "/tmp") < 0) {
                perror("asprintf");
                exit(1);
        }
        if (!mkdtemp(tmpl)) {
                perror("mkdtemp");
                exit(1);
        }
        tmp_root = tmpl;
        tmp_owner = getpid();
        atexit(tmp_cleanup);
        t->root = tmp_root;
        if (asprintf(&t->export, "%s/export", tmpl) < 0 ||
            asprintf(&t->state, "%s/state", tmpl) < 0)
                exit(1);
        tmp_export = t->export;
        tmp_state = t->state;
        if (mkdir(t->export, 0755) < 0 || mkdir(t->state, 0700) < 0) {
                perror("mkdir");
                exit(1);
        }
}

void server_start(struct server *s, const char *const *args)
{
        const char *bin = getenv("STRATA_NFSD");
        const char *argv[32];
        char line[256];
        size_t n = 0, len = 0;
        int pipefd[2];
        pid_t pid;

        if (!bin) {
                fprintf(stderr, "STRATA_NFSD is not set\n");
                exit(1);
        }
        argv[n++] = bin;
        argv[n++] = "--listen";
        argv[n++] = "127.0.0.1:0";
        for (size_t i = 0; args && args[i] && n < sizeof(argv) / sizeof(argv[0]) - 1; i++)
                argv[n++] = args[i];
        argv[n] = NULL;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                exit(1);
        pid = fork();
        if (pid < 0)
                exit(1);
        if (pid == 0) {
                dup2(pipefd[1], STDOUT_FILENO);
                execv(bin, (char *const *)argv);
                _exit(127);
        }
        close(pipefd[1]);
        while (len < sizeof(line) - 1) {
                struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
                ssize_t r;
                if (poll(&p, 1, 20000) <= 0)
                        break;
                r = read(pipefd[0], line + len, 1);
                if (r <= 0)
                        break;
                if (line[len] == '\n')
                        break;
                len++;
        }
        line[len] = '\0';
        close(pipefd[0]);
        char *colon = strrchr(line, ':');
        if (strncmp(line, "listening on ", 13) != 0 || !colon) {
                fprintf(stderr, "strata-nfsd did not start (said '%s')\n", line);
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                exit(1);
        }
        s->pid = pid;
        s->port = atoi(colon + 1);
}

int server_stop(struct server *s)
{
        int status;

        if (s->pid <= 0)
                return -1;
        kill(s->pid, SIGTERM);
        if (waitpid(s->pid, &status, 0) < 0)
                return -1;
        s->pid = 0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void server_signal(struct server *s, int sig)
{
        kill(s->pid, sig);
}

int server_exited(struct server *s)
{
        int status;
        pid_t r = waitpid(s->pid, &status, WNOHANG);

        if (r == 0)
                return -2;
        s->pid = 0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int rc_connect(struct rc *c, int port)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        int one = 1;

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
                return -errno;
        if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
                int r = -errno;
                close(c->fd);
                c->fd = -1;
                return r;
        }
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (!c->xid)
                c->xid = (uint32_t)getpid() << 16;
        if (!c->flavor)
                c->flavor = AUTH_SYS;
        return 0;
}

void rc_close(struct rc *c)
{
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
}

int rc_send(struct rc *c, const void *buf, size_t len)
{
        const char *p = buf;

        while (len > 0) {
                ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return -errno;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int rc_send_record(struct rc *c, const void *buf, size_t len)
{
        uint32_t mark = htonl(0x80000000u | (uint32_t)len);
        int r = rc_send(c, &mark, 4);

        return r < 0 ? r : rc_send(c, buf, len);
}

static int recv_all(struct rc *c, void *buf, size_t len)
{
        char *p = buf;

        while (len > 0) {
                struct pollfd pf = {.fd = c->fd, .events = POLLIN};
                ssize_t n;
                if (poll(&pf, 1, 30000) <= 0)
                        return -ETIMEDOUT;
                n = recv(c->fd, p, len, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n == 0)
                        return -ECONNRESET;
                if (n < 0)
                        return -errno;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int rc_recv_record(struct rc *c, void **ret, size_t *ret_len)
{
        char *buf = NULL;
        size_t len = 0;
        bool last = false;

        while (!last) {
                uint32_t mark;
                size_t flen;
                char *n;
                int r = recv_all(c, &mark, 4);
                if (r < 0) {
                        free(buf);
                        return r;
                }
                mark = ntohl(mark);
                last = mark & 0x80000000u;
                flen = mark & 0x7fffffffu;
                if (len + flen > 16 * 1024 * 1024) {
                        free(buf);
                        return -EMSGSIZE;
                }
                n = realloc(buf, len + flen + 1);
                if (!n) {
                        free(buf);
                        return -ENOMEM;
                }
                buf = n;
                r = recv_all(c, buf + len, flen);
                if (r < 0) {
                        free(buf);
                        return r;
                }
                len += flen;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

size_t rc_build_call(struct rc *c, uint32_t prog, uint32_t vers, uint32_t proc, xdrproc_t xargs,
                     void *args, void *buf, size_t size)
{
        char credbuf[400];
        gid_t gids[1] = {c->gid};
        struct authunix_parms p = {
            .aup_time = 0,
            .aup_machname = (char *)"test",
            .aup_uid = c->uid,
            .aup_gid = c->gid,
            .aup_len = 1,
            .aup_gids = gids,
        };
        struct rpc_msg m = {};
        XDR x;

        xdrmem_create(&x, credbuf, sizeof(credbuf), XDR_ENCODE);
        if (!xdr_authunix_parms(&x, &p))
                abort();
        m.rm_xid = ++c->xid;
        m.rm_direction = CALL;
        m.rm_call.cb_rpcvers = 2;
        m.rm_call.cb_prog = prog;
        m.rm_call.cb_vers = vers;
        m.rm_call.cb_proc = proc;
        m.rm_call.cb_cred.oa_flavor = c->flavor;
        if (c->flavor == AUTH_SYS) {
                m.rm_call.cb_cred.oa_base = credbuf;
                m.rm_call.cb_cred.oa_length = xdr_getpos(&x);
        }
        m.rm_call.cb_verf.oa_flavor = AUTH_NONE;

        xdrmem_create(&x, buf, (u_int)size, XDR_ENCODE);
        if (!xdr_callmsg(&x, &m) || !xargs(&x, args))
                abort();
        return xdr_getpos(&x);
}

int rc_call(struct rc *c, uint32_t prog, uint32_t vers, uint32_t proc, xdrproc_t xargs, void *args,
            xdrproc_t xres, void *res)
{
        static char buf[2 * 1024 * 1024];
        struct rpc_msg m = {};
        size_t len;
        void *rep;
        size_t rep_len;
        XDR x;
        int r;

        len = rc_build_call(c, prog, vers, proc, xargs, args, buf, sizeof(buf));
        r = rc_send_record(c, buf, len);
        if (r < 0)
                return r;
        r = rc_recv_record(c, &rep, &rep_len);
        if (r < 0)
                return r;
        m.acpted_rply.ar_results.where = res;
        m.acpted_rply.ar_results.proc = xres;
        xdrmem_create(&x, rep, (u_int)rep_len, XDR_DECODE);
        if (!xdr_replymsg(&x, &m)) {
                /* A reply that is not SUCCESS does not decode results. */
                free(rep);
                return -EBADMSG;
        }
        free(rep);
        if (m.rm_xid != c->xid)
                return -EPROTO;
        if (m.rm_reply.rp_stat == MSG_DENIED)
                return 200 + (int)m.rjcted_rply.rj_stat;
        if (m.acpted_rply.ar_stat != SUCCESS)
                return 100 + (int)m.acpted_rply.ar_stat;
        return 0;
}

int nfs_call(struct rc *c, uint32_t proc, xdrproc_t xargs, void *args, xdrproc_t xres, void *res)
{
        return rc_call(c, NFS3_PROGRAM, NFS3_VERSION, proc, xargs, args, xres, res);
}

void rc_free(xdrproc_t xres, void *res)
{
        xdr_free(xres, res);
}

nfs_fh3 fh_arg(struct fh *f)
{
        nfs_fh3 h = {.data = {.data_len = f->len, .data_val = f->data}};
        return h;
}

void fh_from(struct fh *f, const nfs_fh3 *src)
{
        f->len = src->data.data_len > NFS3_FHSIZE ? NFS3_FHSIZE : src->data.data_len;
        memcpy(f->data, src->data.data_val, f->len);
}

int mnt(struct rc *c, const char *dir, struct fh *f)
{
        mountres3 res = {};
        dirpath3 d = (char *)dir;
        int r, s;

        r = rc_call(c, MOUNT_PROGRAM, MOUNT_V3, 1, (xdrproc_t)xdr_dirpath3, &d,
                    (xdrproc_t)xdr_mountres3, &res);
        if (r != 0)
                return -1000 - r;
        s = res.fhs_status;
        if (s == MNT3_OK) {
                f->len = res.mountres3_u.mountinfo.fhandle.fhandle3_len;
                memcpy(f->data, res.mountres3_u.mountinfo.fhandle.fhandle3_val, f->len);
        }
        xdr_free((xdrproc_t)xdr_mountres3, (char *)&res);
        return s;
}

int lookup(struct rc *c, struct fh *dir, const char *name, struct fh *ret, fattr3 *ret_attr)
{
        LOOKUP3args a = {.what = {.dir = fh_arg(dir), .name = (char *)name}};
        LOOKUP3res res = {};
        int r, s;

        r = nfs_call(c, 3, (xdrproc_t)xdr_LOOKUP3args, &a, (xdrproc_t)xdr_LOOKUP3res, &res);
        if (r != 0)
                return -1000 - r;
        s = res.status;
        if (s == NFS3_OK) {
                if (ret)
                        fh_from(ret, &res.LOOKUP3res_u.resok.object);
                if (ret_attr)
                        *ret_attr = res.LOOKUP3res_u.resok.obj_attributes.post_op_attr_u.attributes;
        }
        xdr_free((xdrproc_t)xdr_LOOKUP3res, (char *)&res);
        return s;
}

int getattr(struct rc *c, struct fh *f, fattr3 *ret)
{
        GETATTR3args a = {.object = fh_arg(f)};
        GETATTR3res res = {};
        int r;

        r = nfs_call(c, 1, (xdrproc_t)xdr_GETATTR3args, &a, (xdrproc_t)xdr_GETATTR3res, &res);
        if (r != 0)
                return -1000 - r;
        if (res.status == NFS3_OK && ret)
                *ret = res.GETATTR3res_u.resok.obj_attributes;
        return res.status;
}

int rc_mkdir(struct rc *c, struct fh *dir, const char *name, struct fh *ret)
{
        MKDIR3args a = {.where = {.dir = fh_arg(dir), .name = (char *)name}};
        MKDIR3res res = {};
        int r, s;

        a.attributes.mode.set_it = TRUE;
        a.attributes.mode.set_mode3_u.mode = 0755;
        r = nfs_call(c, 9, (xdrproc_t)xdr_MKDIR3args, &a, (xdrproc_t)xdr_MKDIR3res, &res);
        if (r != 0)
                return -1000 - r;
        s = res.status;
        if (s == NFS3_OK && ret)
                fh_from(ret, &res.MKDIR3res_u.resok.obj.post_op_fh3_u.handle);
        rc_free((xdrproc_t)xdr_MKDIR3res, &res);
        return s;
}
