/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* strata-nfsd's trust model: what AUTH_SYS credentials a peer may claim.
 * Local peers act through forked children that switch to an unprivileged
 * uid (setresuid), so their sockets belong to that uid; `secure` exports
 * are tried from reserved and unreserved source ports. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <grp.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fhandle.h"
#include "nfsd-test.h"

#define X(t) ((xdrproc_t)xdr_##t)

#define VICTIM   1000 /* a user with a passwd entry on Debian machines, or not: either works */
#define ATTACKER 4242 /* a uid no passwd entry names */

static int port;

/* Connects from a reserved source port (as root). */
static int rc_connect_reserved(struct rc *c, int to)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)to)};
        int one = 1;

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        for (int p = 1023; p >= 600; p--) {
                struct sockaddr_in l = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};

                l.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (c->fd < 0)
                        return -errno;
                setsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                if (bind(c->fd, (struct sockaddr *)&l, sizeof(l)) == 0 &&
                    connect(c->fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
                        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                        c->xid = (uint32_t)getpid() << 16;
                        c->flavor = AUTH_SYS;
                        return 0;
                }
                close(c->fd);
                c->fd = -1;
        }
        return -EADDRINUSE;
}

static int read_status(struct rc *c, struct fh *f)
{
        READ3args a = {.file = fh_arg(f), .offset = 0, .count = 64};
        READ3res res = {};
        int r, s;

        r = nfs_call(c, 6, X(READ3args), &a, X(READ3res), &res);
        if (r != 0)
                return 250;
        s = res.status;
        rc_free(X(READ3res), &res);
        return s;
}

/* What one peer does, in a child process running as `as`: */
struct act {
        const char *export; /* MNT path */
        const char *name;   /* the file to read or create */
        bool create;        /* CREATE it (mode 04755) instead of READ */
        uint32_t claim_uid, claim_gid;
        bool reserved; /* from a reserved port */
};

/* Returns the nfsstat3 of the READ or CREATE, MNT3ERR_* + 100 when MNT
 * fails, 250 for a transport failure. */
static int act(const struct act *a)
{
        struct rc c = {.fd = -1};
        struct fh root, f;
        int r;

        r = a->reserved ? rc_connect_reserved(&c, port) : rc_connect(&c, port);
        if (r < 0)
                return 250;
        c.uid = a->claim_uid;
        c.gid = a->claim_gid;
        r = mnt(&c, a->export, &root);
        if (r != MNT3_OK)
                return r < 0 ? 250 : 100 + r;
        if (a->create) {
                CREATE3args ca = {.where = {.dir = fh_arg(&root), .name = (char *)a->name}};
                CREATE3res res = {};

                ca.how.mode = UNCHECKED;
                ca.how.createhow3_u.obj_attributes.mode.set_it = TRUE;
                ca.how.createhow3_u.obj_attributes.mode.set_mode3_u.mode = 04755;
                r = nfs_call(&c, 8, X(CREATE3args), &ca, X(CREATE3res), &res);
                r = r != 0 ? 250 : (int)res.status;
                rc_free(X(CREATE3res), &res);
        } else {
                r = lookup(&c, &root, a->name, &f, NULL);
                if (r == NFS3_OK)
                        r = read_status(&c, &f);
                else if (r < 0)
                        r = 250;
        }
        rc_close(&c);
        return r;
}

/* Runs act() in a child with uid and gid `as` (no supplementary groups). */
static int act_as(uid_t as, const struct act *a)
{
        int status;
        pid_t pid = fork();

        if (pid < 0)
                return 251;
        if (pid == 0) {
                if (as != 0 && (setgroups(0, NULL) < 0 || setresgid(as, as, as) < 0 ||
                                setresuid(as, as, as) < 0))
                        _exit(252);
                _exit(act(a));
        }
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
                return 253;
        return WEXITSTATUS(status);
}

static void put_file(const char *dir, const char *name, uid_t uid, gid_t gid, mode_t mode)
{
        char path[4200];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, "secret\n", 7) != 7 || fchown(fd, uid, gid) < 0 ||
            fchmod(fd, mode) < 0) {
                perror(path);
                exit(1);
        }
        close(fd);
}

static bool owner_is(const char *dir, const char *name, uid_t uid, mode_t *ret_mode)
{
        char path[4200];
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (lstat(path, &st) < 0)
                return false;
        if (ret_mode)
                *ret_mode = st.st_mode & 07777;
        return st.st_uid == uid;
}

static void dir_mode(struct tmp *t)
{
        struct server srv;
        const char *args[] = {"--state-dir", t->state, t->export, NULL};
        mode_t mode = 0;
        bool ok;
        int r;

        server_start(&srv, args);
        port = srv.port;

        r = act_as(ATTACKER, &(struct act){.export = "/", .name = "root-secret", .claim_uid = 0});
        CHECK(r == NFS3ERR_ACCES,
              "DIR: a local user claiming uid 0 cannot read root's 0600 file "
              "(got %d)",
              r);
        r = act_as(ATTACKER, &(struct act){.export = "/",
                                           .name = "victim-secret",
                                           .claim_uid = VICTIM,
                                           .claim_gid = VICTIM});
        CHECK(r == NFS3ERR_ACCES,
              "DIR: a local user claiming another uid cannot read that user's 0600 file (got %d)",
              r);
        r = act_as(
            ATTACKER,
            &(struct act){
                .export = "/", .name = "evil", .create = true, .claim_uid = 0, .claim_gid = 0});
        ok = owner_is(t->export, "evil", ATTACKER, &mode);
        CHECK(r == NFS3_OK && ok,
              "DIR: a file a local user creates claiming uid 0 belongs to that user (got %d, "
              "mode %o)",
              r, mode);
        CHECK(!(mode & S_ISUID) || !owner_is(t->export, "evil", 0, NULL),
              "DIR: no setuid-root file was made");
        r = act_as(VICTIM, &(struct act){.export = "/",
                                         .name = "victim-secret",
                                         .claim_uid = VICTIM,
                                         .claim_gid = VICTIM});
        CHECK(r == NFS3_OK, "DIR: a local user claiming its own uid reads its own file (got %d)",
              r);
        r = act_as(VICTIM, &(struct act){.export = "/",
                                         .name = "group0-secret",
                                         .claim_uid = VICTIM,
                                         .claim_gid = 0});
        CHECK(r == NFS3ERR_ACCES,
              "DIR: a local user claiming gid 0 cannot read a file only group 0 may (got %d)", r);
        r = act_as(0, &(struct act){.export = "/",
                                    .name = "victim-secret",
                                    .claim_uid = VICTIM,
                                    .claim_gid = VICTIM});
        CHECK(r == NFS3_OK, "DIR: a peer whose socket root owns may act as any uid (got %d)", r);
        r = act_as(0, &(struct act){.export = "/", .name = "root-secret", .claim_uid = 0});
        CHECK(r == NFS3_OK, "DIR: root reads root's file (got %d)", r);
        server_stop(&srv);
}

static void exports_mode(struct tmp *t)
{
        char path[4200], sq[4200];
        struct server srv;
        FILE *f;
        int r;

        snprintf(sq, sizeof(sq), "%s/squash", t->root);
        if (mkdir(sq, 0777) < 0 || chmod(sq, 0777) < 0)
                exit(1);
        put_file(sq, "victim-secret", VICTIM, VICTIM, 0600);
        snprintf(path, sizeof(path), "%s/exports", t->root);
        f = fopen(path, "we");
        if (!f)
                exit(1);
        fprintf(f, "%s 127.0.0.1(rw,no_root_squash)\n%s 127.0.0.1(rw,root_squash,insecure)\n",
                t->export, sq);
        fclose(f);
        const char *args[] = {"--state-dir", t->state, "--exports", path, NULL};
        server_start(&srv, args);
        port = srv.port;

        r = act_as(0, &(struct act){.export = t->export, .name = "root-secret", .reserved = true});
        CHECK(r == NFS3_OK, "secure: a call from a reserved port is served (got %d)", r);
        r = act_as(0, &(struct act){.export = t->export, .name = "root-secret"});
        CHECK(r == 100 + MNT3ERR_ACCES,
              "secure: MNT from an unreserved port is refused with MNT3ERR_ACCES (got %d)", r);
        {
                /* A handle obtained from a reserved port, used from another. */
                struct rc c = {.fd = -1}, d = {.fd = -1};
                struct fh root;
                fattr3 attr;

                r = rc_connect_reserved(&c, port);
                r = r == 0 ? mnt(&c, t->export, &root) : -1;
                rc_connect(&d, port);
                r = r == 0 ? getattr(&d, &root, &attr) : -1;
                CHECK(r == NFS3ERR_PERM,
                      "secure: an NFS call from an unreserved port is NFS3ERR_PERM (got %d)", r);
                rc_close(&c);
                rc_close(&d);
        }
        r = act_as(ATTACKER, &(struct act){.export = sq,
                                           .name = "victim-secret",
                                           .claim_uid = VICTIM,
                                           .claim_gid = VICTIM});
        CHECK(r == NFS3ERR_ACCES,
              "root_squash,insecure: a local user claiming another uid cannot read that user's "
              "0600 file (got %d)",
              r);
        r = act_as(0, &(struct act){.export = sq,
                                    .name = "victim-secret",
                                    .claim_uid = VICTIM,
                                    .claim_gid = VICTIM});
        CHECK(r == NFS3_OK, "root_squash,insecure: root's socket claiming uid %d reads (got %d)",
              VICTIM, r);
        server_stop(&srv);
}

/* Runs strata-nfsd with a state dir and DIR; returns its exit status and
 * the first line of what it said. */
static int nfsd_once(const char *state, const char *dir, char *out, size_t size)
{
        char cmd[8400];
        FILE *p;
        int status;

        snprintf(cmd, sizeof(cmd),
                 "timeout 10 '%s' --listen 127.0.0.1:0 --state-dir '%s' '%s' 2>&1",
                 getenv("STRATA_NFSD"), state, dir);
        p = popen(cmd, "r");
        if (!p)
                return -1;
        if (!fgets(out, (int)size, p))
                out[0] = '\0';
        out[strcspn(out, "\n")] = '\0';
        status = pclose(p);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void state_checks(struct tmp *t)
{
        char dir[4200], key[4300], out[512];
        int r, fd;

        snprintf(dir, sizeof(dir), "%s/state-open", t->root);
        if (mkdir(dir, 0700) < 0 || chmod(dir, 0777) < 0)
                exit(1);
        r = nfsd_once(dir, t->export, out, sizeof(out));
        CHECK(r == 1 && strstr(out, "refusing state directory"),
              "a world-writable state dir is refused (exit %d: %s)", r, out);
        if (chmod(dir, 0755) < 0 || chown(dir, 1, 1) < 0)
                exit(1);
        r = nfsd_once(dir, t->export, out, sizeof(out));
        CHECK(r == 1 && strstr(out, "refusing state directory"),
              "a state dir owned by another user is refused (exit %d: %s)", r, out);
        if (chown(dir, 0, 0) < 0)
                exit(1);
        snprintf(key, sizeof(key), "%s/handle-key", dir);
        fd = open(key, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, "0123456789abcdef0123456789abcdef", 32) != 32 ||
            fchmod(fd, 0666) < 0)
                exit(1);
        close(fd);
        r = nfsd_once(dir, t->export, out, sizeof(out));
        CHECK(r == 1 && strstr(out, "refusing handle key"),
              "a world-writable handle key is refused (exit %d: %s)", r, out);
        if (chmod(key, 0600) < 0 || chown(key, 1, 1) < 0)
                exit(1);
        r = nfsd_once(dir, t->export, out, sizeof(out));
        CHECK(r == 1 && strstr(out, "refusing handle key"),
              "a handle key owned by another user is refused (exit %d: %s)", r, out);
}

/* A handle made with the server's key for something outside the export,
 * as whoever holds a leaked key could. */
static int forge(struct tmp *t, const struct fh *root, const char *path, struct fh *ret)
{
        struct {
                struct file_handle fh;
                unsigned char buf[MAX_HANDLE_SZ];
        } kh;
        struct fhandle_key key;
        struct fhandle h = {};
        uint8_t out[FHANDLE_MAX];
        int mount_id, fd, n;

        fd = open(t->state, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fhandle_key_load(fd, "handle-key", &key) < 0)
                return -1;
        close(fd);
        kh.fh.handle_bytes = MAX_HANDLE_SZ;
        if (name_to_handle_at(AT_FDCWD, path, &kh.fh, &mount_id, 0) < 0 ||
            kh.fh.handle_bytes > FHANDLE_KERNEL_MAX)
                return -1;
        h.export_id = (uint32_t)(uint8_t)root->data[2] << 24 |
                      (uint32_t)(uint8_t)root->data[3] << 16 |
                      (uint32_t)(uint8_t)root->data[4] << 8 | (uint8_t)root->data[5];
        h.type = kh.fh.handle_type;
        h.len = (uint8_t)kh.fh.handle_bytes;
        memcpy(h.bytes, kh.fh.f_handle, h.len);
        n = fhandle_encode(&key, &h, out);
        if (n < 0)
                return -1;
        ret->len = (uint32_t)n;
        memcpy(ret->data, out, (size_t)n);
        return 0;
}

static void leaked_key(struct tmp *t)
{
        char outside[4200], file[4300];
        struct server srv;
        const char *args[] = {"--state-dir", t->state, t->export, NULL};
        struct rc c = {.fd = -1};
        struct fh root, f;
        int r;

        snprintf(outside, sizeof(outside), "%s/outside", t->root);
        if (mkdir(outside, 0755) < 0)
                exit(1);
        put_file(outside, "secret", 0, 0, 0600);
        snprintf(file, sizeof(file), "%s/secret", outside);
        server_start(&srv, args);
        port = srv.port;
        rc_connect(&c, port);
        r = mnt(&c, "/", &root);
        CHECK(r == MNT3_OK && forge(t, &root, file, &f) == 0, "a handle is forged with the key");
        r = read_status(&c, &f);
        CHECK(r == NFS3ERR_STALE,
              "a forged handle of a file outside the export does not resolve (got %d)", r);
        CHECK(forge(t, &root, outside, &f) == 0 && getattr(&c, &f, NULL) == NFS3ERR_STALE,
              "nor one of a directory outside it");
        snprintf(file, sizeof(file), "%s/root-secret", t->export);
        CHECK(forge(t, &root, file, &f) == 0 && read_status(&c, &f) == NFS3_OK,
              "the same forgery of a file inside the export resolves");
        rc_close(&c);
        server_stop(&srv);
}

/* The effective capabilities of the server's only worker thread. */
static bool worker_caps(pid_t pid, uint64_t *ret)
{
        char path[320], line[256];
        bool found = false;
        DIR *d;
        struct dirent *de;

        snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
        d = opendir(path);
        if (!d)
                return false;
        while ((de = readdir(d))) {
                FILE *f;

                if (de->d_name[0] == '.' || atoi(de->d_name) == pid)
                        continue;
                snprintf(path, sizeof(path), "/proc/%d/task/%s/status", (int)pid, de->d_name);
                f = fopen(path, "re");
                if (!f)
                        continue;
                while (fgets(line, sizeof(line), f))
                        if (sscanf(line, "CapEff: %" SCNx64, ret) == 1)
                                found = true;
                fclose(f);
        }
        closedir(d);
        return found;
}

#define CAPBIT(n) (UINT64_C(1) << (n))

static void capabilities(struct tmp *t)
{
        struct server srv;
        const char *args[] = {"--state-dir", t->state, "--threads", "1", t->export, NULL};
        uint64_t caps = 0;
        bool ok;
        int r;

        server_start(&srv, args);
        port = srv.port;
        /* Worker threads change their capabilities only between callers:
         * after a call the set shows what the last caller had. */
        r = act_as(0, &(struct act){.export = "/",
                                    .name = "victim-secret",
                                    .claim_uid = VICTIM,
                                    .claim_gid = VICTIM});
        ok = r == NFS3_OK && worker_caps(srv.pid, &caps);
        CHECK(ok && !(caps & CAPBIT(21)) && !(caps & CAPBIT(24)) && !(caps & CAPBIT(12)) &&
                  (caps & CAPBIT(7)),
              "a worker acting for uid %d has no CAP_SYS_ADMIN, CAP_SYS_RESOURCE, "
              "CAP_NET_ADMIN, keeps CAP_SETUID (CapEff %" PRIx64 ")",
              VICTIM, caps);
        r = act_as(0, &(struct act){.export = "/", .name = "root-secret", .claim_uid = 0});
        ok = r == NFS3_OK && worker_caps(srv.pid, &caps);
        CHECK(ok && (caps & CAPBIT(21)),
              "acting for root again it has them back (CapEff %" PRIx64 ")", caps);
        server_stop(&srv);
}

int main(void)
{
        struct tmp t;

        if (geteuid() != 0)
                tap_skip_all("needs root (open_by_handle_at, setresuid to other users)");
        tmp_setup(&t);
        /* Children running as other users reach the export only through the server. */
        if (chmod(t.export, 0777) < 0)
                return 1;
        put_file(t.export, "root-secret", 0, 0, 0600);
        put_file(t.export, "victim-secret", VICTIM, VICTIM, 0600);
        put_file(t.export, "group0-secret", 0, 0, 0040);

        dir_mode(&t);
        exports_mode(&t);
        state_checks(&t);
        leaked_key(&t);
        capabilities(&t);
        return tap_done();
}
