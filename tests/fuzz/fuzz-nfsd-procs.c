/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the bodies of strata-nfsd's NFSv3 procedures, past
 * the handle checks that stop fuzz-nfsd-request (handles are signed, so
 * fuzzed ones never resolve).
 *
 * The harness serves a real export: a tmpfs of its own, mounted nodev and
 * nosuid in a private mount namespace (so nothing a call makes is visible
 * outside, and the mount goes with the process however it ends), holding
 * a directory "export" (the export: a few files, directories, a symlink,
 * a fifo) and a directory "outside" next to it (not exported). Before each
 * input the export's tree is made anew, so an input does the same whatever
 * ran before.
 *
 * One input is up to MAX_CALLS calls, each
 *   [proc] [cred] [length, 2 bytes big endian] [length bytes of arguments]
 * The arguments are decoded with the procedure's XDR routine; every file
 * handle in them (a non-empty one whose first byte is below 0xf0) is
 * replaced by a valid handle from a table: the tree's objects, the two
 * outside objects (handles signed with the server's key, which the server
 * must refuse) and every handle the replies of this input handed out. The
 * call is encoded again behind an AUTH_SYS header whose uid, gid and groups
 * the cred byte picks (root, a user, nobody, 0xffffffff) and run through
 * rpc_handle() as a connection's call is.
 *
 * After each input the outside objects must be as they were: a call that
 * changed them escaped the export (abort, so libFuzzer keeps the input).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cred.h"
#include "export.h"
#include "fs.h"
#include "fsobj.h"
#include "nfs3.h"
#include "rpc.h"
#include "server.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CALLS   8
#define MAX_HANDLES 48
#define USER        1000

struct handle {
        uint8_t len;
        uint8_t bytes[FHANDLE_MAX];
};

union args {
        GETATTR3args getattr;
        SETATTR3args setattr;
        LOOKUP3args lookup;
        ACCESS3args access;
        READLINK3args readlink;
        READ3args read;
        WRITE3args write;
        CREATE3args create;
        MKDIR3args mkdir;
        SYMLINK3args symlink;
        MKNOD3args mknod;
        REMOVE3args remove;
        RENAME3args rename;
        LINK3args link;
        READDIR3args readdir;
        READDIRPLUS3args readdirplus;
        FSSTAT3args fsstat;
        FSINFO3args fsinfo;
        PATHCONF3args pathconf;
        COMMIT3args commit;
};

/* Procedure numbers (RFC 1813). */
enum {
        P_NULL,
        P_GETATTR,
        P_SETATTR,
        P_LOOKUP,
        P_ACCESS,
        P_READLINK,
        P_READ,
        P_WRITE,
        P_CREATE,
        P_MKDIR,
        P_SYMLINK,
        P_MKNOD,
        P_REMOVE,
        P_RMDIR,
        P_RENAME,
        P_LINK,
        P_READDIR,
        P_READDIRPLUS,
        P_FSSTAT,
        P_FSINFO,
        P_PATHCONF,
        P_COMMIT,
        N_PROCS
};

static struct nfsd_server server;
/* A local peer whose socket root owns: every claim is taken. */
static struct nfsd_peer peer = {.local = true};
static const struct export *export;
static uint8_t out[1024 * 1024 + 65536];
static uint8_t scratch[1024 * 1024];
/* READ's pipe, as a worker has it (-1s: none to be had). */
static int bulk[2] = {-1, -1};
static uint8_t req[8192 + 1024];

static char dir[4096];
static bool private_mount; /* the tmpfs in a mount namespace of our own */
static int top_fd = -1;    /* dir */

static struct handle handles[MAX_HANDLES];
static size_t n_handles, n_fixed, n_replaced;

/* What the outside objects look like; no call may change them. */
static struct stat outside_st[2];
static const char *const outside_names[2] = {"outside", "outside/secret"};

static void cleanup(void)
{
        if (top_fd >= 0)
                close(top_fd);
        if (private_mount)
                (void)umount2(dir, MNT_DETACH);
        (void)rm_rf_at(AT_FDCWD, dir, RM_ROOT | RM_MISSING_OK);
}

static _Noreturn void die(const char *what)
{
        fprintf(stderr, "fuzz-nfsd-procs: %s in '%s': %s\n", what, dir, strerror(errno));
        abort();
}

static void handle_add(const uint8_t *b, size_t len)
{
        size_t i;

        for (i = 0; i < n_handles; i++)
                if (handles[i].len == len && memcmp(handles[i].bytes, b, len) == 0)
                        return;
        if (n_handles < MAX_HANDLES)
                i = n_handles++;
        else
                i = n_fixed + n_replaced++ % (MAX_HANDLES - n_fixed);
        handles[i].len = (uint8_t)len;
        memcpy(handles[i].bytes, b, len);
}

/* The handle of path (relative to dir) as the server would sign it. */
static void handle_add_path(const char *path)
{
        struct nfsd_call c = {.server = &server};
        uint8_t h[FHANDLE_MAX];
        int n = fsobj_handle_at(&c, export, top_fd, path, h);

        if (n < 0) {
                errno = -n;
                die(path);
        }
        handle_add(h, (size_t)n);
}

static void put_file(const char *path, mode_t mode, uid_t uid, const char *text)
{
        int fd = openat(top_fd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);

        if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
            fchown(fd, uid, uid) < 0 || fchmod(fd, mode) < 0)
                die(path);
        close(fd);
}

static void put_dir(const char *path, mode_t mode, uid_t uid)
{
        if (mkdirat(top_fd, path, mode) < 0 || fchownat(top_fd, path, uid, uid, 0) < 0 ||
            fchmodat(top_fd, path, mode, 0) < 0)
                die(path);
}

/* The export's tree as every input starts from, and the table of its
 * handles. */
static void reset_tree(void)
{
        static const char *const paths[] = {"export",   "export/d",  "export/d/e",
                                            "export/f", "export/u",  "export/d/g",
                                            "export/l", "export/up", "export/p"};
        struct cred root = {};
        int r;

        /* A call for another user leaves the thread's capabilities
         * dropped until the next root call. */
        if (cred_enter(&root) < 0)
                die("cannot become root again");
        cred_leave();

        r = rm_rf_at(top_fd, "export", 0);
        if (r < 0) {
                errno = -r;
                die("cannot empty the export");
        }
        /* A SETATTR of the root may have changed it. */
        if (fchownat(top_fd, "export", 0, 0, AT_SYMLINK_NOFOLLOW) < 0 ||
            fchmodat(top_fd, "export", 0755, 0) < 0)
                die("cannot reset the export root");
        put_dir("export/d", 0755, 0);
        put_dir("export/d/e", 0700, USER);
        put_file("export/f", 0644, 0, "some text in a file\n");
        put_file("export/u", 0600, USER, "a user's own file\n");
        put_file("export/d/g", 0444, USER, "read only\n");
        if (symlinkat("f", top_fd, "export/l") < 0 ||
            symlinkat("../outside/secret", top_fd, "export/up") < 0 ||
            mknodat(top_fd, "export/p", S_IFIFO | 0666, 0) < 0)
                die("cannot make the export's tree");

        n_handles = n_replaced = 0;
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
                handle_add_path(paths[i]);
        for (size_t i = 0; i < 2; i++)
                handle_add_path(outside_names[i]);
        n_fixed = n_handles;
}

static void check_outside(void)
{
        for (size_t i = 0; i < 2; i++) {
                struct stat st;
                const struct stat *o = &outside_st[i];

                if (fstatat(top_fd, outside_names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
                        die("the object outside the export is gone");
                if (st.st_ino != o->st_ino || st.st_mode != o->st_mode || st.st_uid != o->st_uid ||
                    st.st_gid != o->st_gid || st.st_nlink != o->st_nlink ||
                    st.st_size != o->st_size || st.st_mtim.tv_sec != o->st_mtim.tv_sec ||
                    st.st_mtim.tv_nsec != o->st_mtim.tv_nsec ||
                    st.st_ctim.tv_sec != o->st_ctim.tv_sec ||
                    st.st_ctim.tv_nsec != o->st_ctim.tv_nsec) {
                        fprintf(stderr,
                                "fuzz-nfsd-procs: a call changed '%s/%s', outside the export\n",
                                dir, outside_names[i]);
                        abort();
                }
        }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        const char *tmp = getenv("TMPDIR");
        struct fhandle_key key;
        struct export_table *t;
        const char *failed;
        char path[4200];
        int r;

        snprintf(dir, sizeof(dir), "%s/strata-nfsd-fuzz-procs.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir))
                die("cannot make a temp dir");
        atexit(cleanup);
        /* Without the namespace (not root): a plain directory, and MKNOD
         * makes no device nodes (see rewrite()). */
        if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
            mount("strata-nfsd-fuzz", dir, "tmpfs", MS_NODEV | MS_NOSUID | MS_NOEXEC,
                  "size=64m,mode=0755") == 0)
                private_mount = true;
        else
                fprintf(stderr, "fuzz-nfsd-procs: no private tmpfs (%s), a plain directory\n",
                        strerror(errno));
        top_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (top_fd < 0 || mkdirat(top_fd, "export", 0755) < 0 ||
            mkdirat(top_fd, "outside", 0700) < 0)
                die("cannot make the export");
        r = openat(top_fd, "outside/secret", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (r < 0 || write(r, "secret\n", 7) != 7)
                die("cannot make the outside file");
        close(r);
        for (size_t i = 0; i < 2; i++)
                if (fstatat(top_fd, outside_names[i], &outside_st[i], AT_SYMLINK_NOFOLLOW) < 0)
                        die("cannot stat the outside objects");

        /* A fixed key: a crash's input replays with the same handles. */
        memset(key.key, 0x5a, sizeof(key.key));
        snprintf(path, sizeof(path), "%s/export", dir);
        if (export_table_new_loopback(path, &t) < 0 || export_table_open(t, &key, &failed) < 0)
                die("cannot set up the export");
        nfsd_server_init(&server, &key);
        nfsd_server_set_exports(&server, t);
        export = &t->exports[0];
        if (pipe2(bulk, O_CLOEXEC | O_NONBLOCK) == 0 &&
            fcntl(bulk[1], F_SETPIPE_SZ, (int)sizeof(scratch)) < (int)sizeof(scratch)) {
                close(bulk[0]);
                close(bulk[1]);
                bulk[0] = bulk[1] = -1;
        }
        server.port = 4000;
        ((struct sockaddr_in *)&peer.addr)->sin_family = AF_INET;
        ((struct sockaddr_in *)&peer.addr)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        peer.uid = 0;
        return 0;
}

/* The handle fields of a procedure's arguments. */
static size_t fh_fields(uint32_t proc, union args *a, nfs_fh3 *ret[2])
{
        switch (proc) {
        case P_GETATTR:
                ret[0] = &a->getattr.object;
                return 1;
        case P_SETATTR:
                ret[0] = &a->setattr.object;
                return 1;
        case P_LOOKUP:
                ret[0] = &a->lookup.what.dir;
                return 1;
        case P_ACCESS:
                ret[0] = &a->access.object;
                return 1;
        case P_READLINK:
                ret[0] = &a->readlink.symlink;
                return 1;
        case P_READ:
                ret[0] = &a->read.file;
                return 1;
        case P_WRITE:
                ret[0] = &a->write.file;
                return 1;
        case P_CREATE:
                ret[0] = &a->create.where.dir;
                return 1;
        case P_MKDIR:
                ret[0] = &a->mkdir.where.dir;
                return 1;
        case P_SYMLINK:
                ret[0] = &a->symlink.where.dir;
                return 1;
        case P_MKNOD:
                ret[0] = &a->mknod.where.dir;
                return 1;
        case P_REMOVE:
        case P_RMDIR: /* REMOVE3args too */
                ret[0] = &a->remove.object.dir;
                return 1;
        case P_RENAME:
                ret[0] = &a->rename.from.dir;
                ret[1] = &a->rename.to.dir;
                return 2;
        case P_LINK:
                ret[0] = &a->link.file;
                ret[1] = &a->link.link.dir;
                return 2;
        case P_READDIR:
                ret[0] = &a->readdir.dir;
                return 1;
        case P_READDIRPLUS:
                ret[0] = &a->readdirplus.dir;
                return 1;
        case P_FSSTAT:
                ret[0] = &a->fsstat.fsroot;
                return 1;
        case P_FSINFO:
                ret[0] = &a->fsinfo.fsroot;
                return 1;
        case P_PATHCONF:
                ret[0] = &a->pathconf.object;
                return 1;
        case P_COMMIT:
                ret[0] = &a->commit.file;
                return 1;
        }
        return 0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The call header: NFS v3 proc, AUTH_SYS credentials the cred byte picks.
 * Returns its length. */
static size_t put_header(uint8_t *p, uint32_t xid, uint32_t proc, uint8_t cred)
{
        static const uint32_t ids[4] = {0, USER, 65534, 0xffffffffu};
        static const uint32_t groups[3] = {USER, 0, 65534};
        unsigned n_groups = (cred >> 4) & 3;
        size_t n = 0;

        put_be32(p + n, xid), n += 4;
        put_be32(p + n, 0), n += 4; /* CALL */
        put_be32(p + n, 2), n += 4; /* RPC version */
        put_be32(p + n, 100003), n += 4;
        put_be32(p + n, 3), n += 4;
        put_be32(p + n, proc), n += 4;
        put_be32(p + n, 1), n += 4;                 /* AUTH_SYS */
        put_be32(p + n, 20 + 4 * n_groups), n += 4; /* its body's length */
        put_be32(p + n, 0), n += 4;                 /* stamp */
        put_be32(p + n, 0), n += 4;                 /* machine name "" */
        put_be32(p + n, ids[cred & 3]), n += 4;
        put_be32(p + n, ids[(cred >> 2) & 3]), n += 4;
        put_be32(p + n, n_groups), n += 4;
        for (unsigned i = 0; i < n_groups; i++)
                put_be32(p + n, groups[i]), n += 4;
        put_be32(p + n, 0), n += 4; /* verifier AUTH_NONE, empty */
        put_be32(p + n, 0), n += 4;
        return n;
}

/* Every handle of the export in a reply goes to the table: its opaque
 * length word, then version 1, the kernel handle's length, the export id,
 * and a MAC the server's key verifies. */
static void harvest(const uint8_t *p, size_t len)
{
        for (size_t i = 0; i + 4 + FHANDLE_HEADER + FHANDLE_MAC_SIZE <= len; i += 4) {
                uint32_t n = get_be32(p + i);
                struct fhandle h;

                if (n < FHANDLE_HEADER + FHANDLE_MAC_SIZE || n > FHANDLE_MAX || i + 4 + n > len ||
                    p[i + 4] != 1 || p[i + 5] != n - FHANDLE_HEADER - FHANDLE_MAC_SIZE ||
                    get_be32(p + i + 6) != export->id)
                        continue;
                if (fhandle_decode(&server.key, p + i + 4, n, &h) == 0)
                        handle_add(p + i + 4, n);
        }
}

/* Decodes one call's arguments, puts valid handles in, encodes the call.
 * Returns the record's length, or 0 when the arguments do not decode. */
static size_t rewrite(uint32_t xid, uint32_t proc, uint8_t cred, const uint8_t *args, size_t len)
{
        /* The server's routines, but for WRITE's, which decodes in place
         * and so cannot encode. */
        xdrproc_t x =
            proc == P_WRITE ? (xdrproc_t)xdr_WRITE3args : nfs3_program.procs[proc].xdr_args;
        union args a = {};
        nfs_fh3 *fh[2];
        struct {
                u_int len;
                char *val;
        } saved[2];
        size_t n_fh, hdr;
        bool ok;
        XDR in, enc;

        xdrmem_create(&in, (char *)args, (u_int)len, XDR_DECODE);
        if (!x(&in, &a)) {
                xdr_free(x, (char *)&a);
                return 0;
        }
        n_fh = fh_fields(proc, &a, fh);
        for (size_t i = 0; i < n_fh; i++) {
                saved[i].len = fh[i]->data.data_len;
                saved[i].val = fh[i]->data.data_val;
                if (saved[i].len > 0 && (uint8_t)saved[i].val[0] < 0xf0) {
                        const struct handle *h = &handles[(uint8_t)saved[i].val[0] % n_handles];
                        fh[i]->data.data_len = h->len;
                        fh[i]->data.data_val = (char *)h->bytes;
                }
        }
        /* No device nodes where the file system would honour them. */
        if (!private_mount && proc == P_MKNOD &&
            (a.mknod.what.type == NF3CHR || a.mknod.what.type == NF3BLK))
                a.mknod.what.type = NF3FIFO;

        hdr = put_header(req, xid, proc, cred);
        xdrmem_create(&enc, (char *)req + hdr, (u_int)(sizeof(req) - hdr), XDR_ENCODE);
        ok = x(&enc, &a);
        len = hdr + xdr_getpos(&enc);
        for (size_t i = 0; i < n_fh; i++) {
                fh[i]->data.data_len = saved[i].len;
                fh[i]->data.data_val = saved[i].val;
        }
        xdr_free(x, (char *)&a);
        return ok ? len : 0;
}

/* Takes the n bytes a reply says are in the pipe; there must be no more. */
static void empty_pipe(size_t n)
{
        int left = 0;

        while (n > 0) {
                ssize_t k = read(bulk[0], scratch, n < sizeof(scratch) ? n : sizeof(scratch));
                if (k <= 0)
                        die("the pipe holds less than the reply says");
                n -= (size_t)k;
        }
        if (bulk[0] >= 0 && (ioctl(bulk[0], FIONREAD, &left) < 0 || left != 0))
                die("the pipe holds bytes no reply accounts for");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        reset_tree();
        for (uint32_t call = 0; call < MAX_CALLS && size >= 4; call++) {
                uint32_t proc = data[0] % N_PROCS;
                uint8_t cred = data[1];
                size_t len = (size_t)data[2] << 8 | data[3];
                struct rpc_reply rep;
                size_t n;

                data += 4;
                size -= 4;
                if (len > size)
                        len = size;
                n = proc == P_NULL ? 0 : rewrite(call + 1, proc, cred, data, len);
                data += len;
                size -= len;
                if (n == 0)
                        continue;
                if (rpc_handle(&server, &peer, req, n, out, sizeof(out), scratch, sizeof(scratch),
                               bulk[0] >= 0 ? bulk : NULL, &rep) > 0)
                        harvest(out, rep.len);
                empty_pipe(rep.pipe_len + rep.pipe_drop);
        }
        check_outside();
        return 0;
}
