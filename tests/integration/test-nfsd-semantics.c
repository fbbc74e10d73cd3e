/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a Linux client relies on, through raw RPC calls: CREATE UNCHECKED of
 * an existing file, COMMIT and SETATTR(size) permissions, EXCLUSIVE
 * verifiers, wcc data of failed creates, names with NUL or '/', attributes
 * validated before anything is applied, uid/gid 0xffffffff, stable_how and
 * credential bodies out of range. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nfsd-test.h"

#define X(t) ((xdrproc_t)xdr_##t)

static struct rc c = {.fd = -1};
static struct fh root;
static const char *export;

static void as(uint32_t uid, uint32_t gid)
{
        c.uid = uid;
        c.gid = gid;
}

/* Server-side helpers: a path in the export, a file with owner and mode. */
static const char *path_of(const char *name)
{
        static char buf[4200];
        snprintf(buf, sizeof(buf), "%s/%s", export, name);
        return buf;
}

static void make_file(const char *name, uid_t uid, mode_t mode, const char *content)
{
        const char *p = path_of(name);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        if (fd < 0 || write(fd, content, strlen(content)) < 0 || fchown(fd, uid, uid) < 0 ||
            fchmod(fd, mode) < 0)
                tap_diag("cannot make %s: %m", p);
        if (fd >= 0)
                close(fd);
}

static int stat_of(const char *name, struct stat *st)
{
        return lstat(path_of(name), st);
}

static int create_how(struct fh *dir, const char *name, createmode3 how, const sattr3 *attrs,
                      const char *verf, struct fh *ret, CREATE3res *ret_res)
{
        CREATE3args a = {.where = {.dir = fh_arg(dir), .name = (char *)name}};
        CREATE3res res = {};
        int r, s;

        a.how.mode = how;
        if (how == EXCLUSIVE)
                memcpy(a.how.createhow3_u.verf, verf, NFS3_CREATEVERFSIZE);
        else if (attrs)
                a.how.createhow3_u.obj_attributes = *attrs;
        r = nfs_call(&c, 8, X(CREATE3args), &a, X(CREATE3res), &res);
        if (r != 0)
                return -1000 - r;
        s = res.status;
        if (s == NFS3_OK && ret && res.CREATE3res_u.resok.obj.handle_follows)
                fh_from(ret, &res.CREATE3res_u.resok.obj.post_op_fh3_u.handle);
        if (ret_res)
                *ret_res = res;
        else
                rc_free(X(CREATE3res), &res);
        return s;
}

static sattr3 mode_attrs(uint32_t mode)
{
        sattr3 a = {};
        a.mode.set_it = TRUE;
        a.mode.set_mode3_u.mode = mode;
        return a;
}

static int setattr(struct fh *f, const sattr3 *attrs)
{
        SETATTR3args a = {.object = fh_arg(f), .new_attributes = *attrs};
        SETATTR3res res = {};
        int r, s;

        r = nfs_call(&c, 2, X(SETATTR3args), &a, X(SETATTR3res), &res);
        if (r != 0)
                return -1000 - r;
        s = res.status;
        rc_free(X(SETATTR3res), &res);
        return s;
}

static int write_data(struct fh *f, const char *data, stable_how stable)
{
        WRITE3args a = {.file = fh_arg(f), .count = (count3)strlen(data), .stable = stable};
        WRITE3res res = {};
        int r, s;

        a.data.data_len = (u_int)strlen(data);
        a.data.data_val = (char *)data;
        r = nfs_call(&c, 7, X(WRITE3args), &a, X(WRITE3res), &res);
        if (r != 0)
                return -1000 - r;
        s = res.status;
        rc_free(X(WRITE3res), &res);
        return s;
}

static int commit(struct fh *f)
{
        COMMIT3args a = {.file = fh_arg(f)};
        COMMIT3res res = {};
        int r, s;

        r = nfs_call(&c, 21, X(COMMIT3args), &a, X(COMMIT3res), &res);
        if (r != 0)
                return -1000 - r;
        s = res.status;
        rc_free(X(COMMIT3res), &res);
        return s;
}

static void test_create_unchecked(void)
{
        struct fh f;
        struct stat st;
        sattr3 a;

        make_file("shared", 1000, 0666, "hello");
        as(2000, 2000);
        a = mode_attrs(0644);
        a.size.set_it = TRUE;
        a.size.set_size3_u.size = 0;
        CHECK(create_how(&root, "shared", UNCHECKED, &a, NULL, &f, NULL) == NFS3_OK,
              "CREATE UNCHECKED of another user's 0666 file succeeds (open O_CREAT|O_TRUNC)");
        CHECK(stat_of("shared", &st) == 0 && (st.st_mode & 07777) == 0666 && st.st_size == 0 &&
                  st.st_uid == 1000,
              "only the size was applied: mode 0666, owner 1000, size 0");
        as(1000, 1000);
        a = mode_attrs(0600);
        CHECK(create_how(&root, "shared", UNCHECKED, &a, NULL, NULL, NULL) == NFS3_OK &&
                  stat_of("shared", &st) == 0 && (st.st_mode & 07777) == 0666,
              "the owner's CREATE UNCHECKED leaves the mode of the existing file alone");
        as(0, 0);
        a = mode_attrs(0640);
        CHECK(create_how(&root, "fresh", UNCHECKED, &a, NULL, NULL, NULL) == NFS3_OK &&
                  stat_of("fresh", &st) == 0 && (st.st_mode & 07777) == 0640,
              "a new file still gets the requested mode");
}

static void test_commit_write_only(void)
{
        struct fh f;

        make_file("wonly", 0, 0622, "");
        as(1000, 1000);
        CHECK(lookup(&c, &root, "wonly", &f, NULL) == NFS3_OK &&
                  write_data(&f, "data", UNSTABLE) == NFS3_OK,
              "a writer without read permission writes UNSTABLE");
        CHECK(commit(&f) == NFS3_OK, "and its COMMIT succeeds (write access is what counts)");
        make_file("ronly", 0, 0644, "x");
        CHECK(lookup(&c, &root, "ronly", &f, NULL) == NFS3_OK && commit(&f) == NFS3ERR_ACCES,
              "COMMIT of a file the caller cannot write is NFS3ERR_ACCES");
        as(0, 0);
}

static void test_setattr_size_owner(void)
{
        struct fh f;
        struct stat st;
        sattr3 a = {};

        make_file("ro-owned", 1000, 0444, "content");
        a.size.set_it = TRUE;
        a.size.set_size3_u.size = 0;
        CHECK(lookup(&c, &root, "ro-owned", &f, NULL) == NFS3_OK, "a 0444 file of uid 1000");
        as(2000, 2000);
        CHECK(setattr(&f, &a) == NFS3ERR_ACCES, "another user cannot truncate it");
        as(1000, 1000);
        CHECK(setattr(&f, &a) == NFS3_OK && stat_of("ro-owned", &st) == 0 && st.st_size == 0,
              "its owner truncates it with SETATTR(size), as with WRITE");
        as(0, 0);
}

static void test_exclusive_verifier(void)
{
        const char verf[8] = {'\xff', '\xfe', '\xfd', '\xfc', '\x80', 0, 0, 1};
        struct fh f1 = {}, f2 = {};
        fattr3 at;

        CHECK(create_how(&root, "excl", EXCLUSIVE, NULL, verf, &f1, NULL) == NFS3_OK &&
                  getattr(&c, &f1, &at) == NFS3_OK,
              "EXCLUSIVE create with verifier words above 2^31");
        CHECK(at.mtime.seconds == (0xfffefdfcu & 0x7fffffffu) &&
                  at.atime.seconds == (0x80000001u & 0x7fffffffu),
              "the times hold the verifier words masked with 0x7fffffff (%u, %u)", at.mtime.seconds,
              at.atime.seconds);
        CHECK(create_how(&root, "excl", EXCLUSIVE, NULL, verf, &f2, NULL) == NFS3_OK &&
                  f1.len == f2.len && memcmp(f1.data, f2.data, f1.len) == 0,
              "its retransmission succeeds with the same handle");
}

static void test_failed_create_wcc(void)
{
        struct fh d;
        bool ok;

        {
                CREATE3res res;
                sattr3 a = mode_attrs(0644);
                int s = create_how(&root, "excl", GUARDED, &a, NULL, NULL, &res);
                ok = s == NFS3ERR_EXIST &&
                     res.CREATE3res_u.resfail.dir_wcc.before.attributes_follow &&
                     res.CREATE3res_u.resfail.dir_wcc.after.attributes_follow;
                rc_free(X(CREATE3res), &res);
                CHECK(ok, "a failed CREATE carries the directory's wcc data");
        }
        {
                MKDIR3args a = {.where = {.dir = fh_arg(&root), .name = (char *)"excl"}};
                MKDIR3res res = {};
                int r = nfs_call(&c, 9, X(MKDIR3args), &a, X(MKDIR3res), &res);
                ok = r == 0 && res.status == NFS3ERR_EXIST &&
                     res.MKDIR3res_u.resfail.dir_wcc.before.attributes_follow &&
                     res.MKDIR3res_u.resfail.dir_wcc.after.attributes_follow;
                rc_free(X(MKDIR3res), &res);
                CHECK(ok, "a failed MKDIR carries the directory's wcc data");
        }
        {
                SYMLINK3args a = {.where = {.dir = fh_arg(&root), .name = (char *)"excl"}};
                SYMLINK3res res = {};
                a.symlink.symlink_data = (char *)"target";
                int r = nfs_call(&c, 10, X(SYMLINK3args), &a, X(SYMLINK3res), &res);
                ok = r == 0 && res.status == NFS3ERR_EXIST &&
                     res.SYMLINK3res_u.resfail.dir_wcc.after.attributes_follow;
                rc_free(X(SYMLINK3res), &res);
                CHECK(ok, "a failed SYMLINK carries the directory's wcc data");
        }
        {
                MKNOD3args a = {.where = {.dir = fh_arg(&root), .name = (char *)"excl"}};
                MKNOD3res res = {};
                a.what.type = NF3FIFO;
                int r = nfs_call(&c, 11, X(MKNOD3args), &a, X(MKNOD3res), &res);
                ok = r == 0 && res.status == NFS3ERR_EXIST &&
                     res.MKNOD3res_u.resfail.dir_wcc.after.attributes_follow;
                rc_free(X(MKNOD3res), &res);
                CHECK(ok, "a failed MKNOD carries the directory's wcc data");
        }
        CHECK(lookup(&c, &root, "excl", &d, NULL) == NFS3_OK, "the file is still there");
}

/* diropargs3 + createhow3 with a name given as bytes (embedded NUL). */
struct raw_create {
        struct fh *dir;
        const char *name;
        u_int len;
};

static bool_t xdr_raw_create(XDR *x, void *p)
{
        struct raw_create *r = p;
        nfs_fh3 fh = fh_arg(r->dir);
        char *name = (char *)r->name;
        createhow3 how = {.mode = GUARDED};

        return xdr_nfs_fh3(x, &fh) && xdr_bytes(x, &name, &r->len, 1024) && xdr_createhow3(x, &how);
}

static void test_bad_names(void)
{
        struct raw_create rc = {.dir = &root, .name = "keep\0evil", .len = 9};
        CREATE3res res = {};
        struct stat st;
        int r;

        r = nfs_call(&c, 8, X(raw_create), &rc, X(CREATE3res), &res);
        rc_free(X(CREATE3res), &res);
        CHECK(r == 100 + GARBAGE_ARGS, "CREATE of \"keep\\0evil\" is GARBAGE_ARGS (%d)", r);
        CHECK(stat_of("keep", &st) < 0 && errno == ENOENT, "and \"keep\" was not created");
        rc.name = "sub/file";
        rc.len = 8;
        r = nfs_call(&c, 8, X(raw_create), &rc, X(CREATE3res), &res);
        rc_free(X(CREATE3res), &res);
        CHECK(r == 100 + GARBAGE_ARGS, "a name with '/' is GARBAGE_ARGS (%d)", r);
        CHECK(lookup(&c, &root, "a/b", NULL, NULL) == -1000 - (100 + GARBAGE_ARGS),
              "LOOKUP of a name with '/' is GARBAGE_ARGS");
}

static void test_validate_first(void)
{
        struct fh d;
        struct stat st;
        sattr3 a = mode_attrs(0700);

        CHECK(mkdir(path_of("vdir"), 0755) == 0 && chmod(path_of("vdir"), 0755) == 0 &&
                  lookup(&c, &root, "vdir", &d, NULL) == NFS3_OK,
              "a 0755 directory");
        a.size.set_it = TRUE;
        a.size.set_size3_u.size = 0;
        CHECK(setattr(&d, &a) == NFS3ERR_ISDIR, "SETATTR(mode, size) of a directory is ISDIR");
        CHECK(stat_of("vdir", &st) == 0 && (st.st_mode & 07777) == 0755,
              "and the mode was not changed");
        a = mode_attrs(0700);
        a.mtime.set_it = SET_TO_CLIENT_TIME;
        a.mtime.set_mtime_u.mtime.seconds = 1;
        a.mtime.set_mtime_u.mtime.nseconds = 2000000000u;
        CHECK(setattr(&d, &a) == NFS3ERR_INVAL && stat_of("vdir", &st) == 0 &&
                  (st.st_mode & 07777) == 0755,
              "SETATTR(mode, bad mtime) is INVAL and changes nothing");
        {
                MKDIR3args m = {.where = {.dir = fh_arg(&root), .name = (char *)"sized"}};
                MKDIR3res res = {};
                m.attributes = mode_attrs(0755);
                m.attributes.size.set_it = TRUE;
                int r = nfs_call(&c, 9, X(MKDIR3args), &m, X(MKDIR3res), &res);
                bool refused = r == 0 && res.status == NFS3ERR_ISDIR;
                rc_free(X(MKDIR3res), &res);
                CHECK(refused && stat_of("sized", &st) < 0,
                      "MKDIR with a size is ISDIR and creates nothing");
        }
}

static void test_ids(void)
{
        struct fh pub, f;
        fattr3 at;

        CHECK(mkdir(path_of("pub"), 01777) == 0 && chmod(path_of("pub"), 01777) == 0 &&
                  lookup(&c, &root, "pub", &pub, NULL) == NFS3_OK,
              "a 1777 directory");
        as(0xffffffffu, 1000);
        CHECK(create_how(&pub, "u", GUARDED, NULL, NULL, &f, NULL) == NFS3_OK &&
                  getattr(&c, &f, &at) == NFS3_OK && at.uid == 65534 && at.gid == 1000,
              "uid 0xffffffff acts as the anonymous uid (65534)");
        as(1000, 0xffffffffu);
        CHECK(create_how(&pub, "g", GUARDED, NULL, NULL, &f, NULL) == NFS3_OK &&
                  getattr(&c, &f, &at) == NFS3_OK && at.uid == 1000 && at.gid == 65534,
              "gid 0xffffffff acts as the anonymous gid (65534)");
        as(0, 0);
}

static void test_stable_how(void)
{
        struct fh f;
        int r;

        CHECK(lookup(&c, &root, "fresh", &f, NULL) == NFS3_OK, "a file to write");
        r = write_data(&f, "x", (stable_how)99);
        CHECK(r == -1000 - (100 + GARBAGE_ARGS), "WRITE with stable_how 99 is GARBAGE_ARGS (%d)",
              r);
        CHECK(write_data(&f, "x", FILE_SYNC) == NFS3_OK, "FILE_SYNC still works");
}

/* An fd of the directory `levels` levels of "d" below dirfd (made here on
 * the server when missing): paths that deep exceed PATH_MAX. */
static int server_chain(int dirfd, int levels)
{
        int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);

        for (int i = 0; fd >= 0 && i < levels; i++) {
                int n;
                if (mkdirat(fd, "d", 0755) < 0 && errno != EEXIST)
                        break;
                n = openat(fd, "d", O_PATH | O_DIRECTORY | O_CLOEXEC);
                close(fd);
                fd = n;
        }
        return fd;
}

#define DEEP 5000

/* Directory handles resolve at any depth (up to 8,192 levels), their
 * cost does not grow with it, and a directory moved out of the export on
 * the server is STALE however its verdict was cached. */
static void test_depth(void)
{
        static struct fh chain[DEEP + 1];
        struct fh x, y;
        fattr3 at;
        int efd = open(export, O_PATH | O_DIRECTORY | O_CLOEXEC), top, mid, deep, made = 0, bad = 0;
        int r1, r2;

        CHECK(rc_mkdir(&c, &root, "deep", &chain[0]) == NFS3_OK, "MKDIR deep");
        for (int i = 1; i <= DEEP; i++) {
                if (rc_mkdir(&c, &chain[i - 1], "d", &chain[i]) != NFS3_OK)
                        break;
                made = i;
        }
        CHECK(made == DEEP, "MKDIR makes a chain %d levels deep (%d made)", DEEP, made);
        for (int i = 0; i <= made; i += 97)
                if (getattr(&c, &chain[i], NULL) != NFS3_OK)
                        bad++;
        CHECK(made == DEEP && getattr(&c, &chain[DEEP], &at) == NFS3_OK && at.type == NF3DIR &&
                  bad == 0,
              "every handle of the chain resolves, the deepest too");
        CHECK(create_how(&chain[DEEP], "leaf", GUARDED, NULL, NULL, NULL, NULL) == NFS3_OK &&
                  lookup(&c, &chain[DEEP], "leaf", NULL, NULL) == NFS3_OK,
              "CREATE and LOOKUP work %d levels down", DEEP);

        /* Moved out on the server, after the verdicts were cached. */
        CHECK(renameat(efd, "deep", efd, "../deep-out") == 0, "the chain's top moves out (server)");
        CHECK(getattr(&c, &chain[DEEP], NULL) == NFS3ERR_STALE &&
                  getattr(&c, &chain[0], NULL) == NFS3ERR_STALE &&
                  lookup(&c, &chain[DEEP / 2], "d", NULL, NULL) == NFS3ERR_STALE,
              "its handles are NFS3ERR_STALE, top, middle and bottom");
        CHECK(renameat(efd, "../deep-out", efd, "deep") == 0 &&
                  getattr(&c, &chain[DEEP], NULL) == NFS3_OK,
              "moved back in, the deepest handle works again");
        top = openat(efd, "deep", O_PATH | O_DIRECTORY | O_CLOEXEC);
        mid = top >= 0 ? server_chain(top, DEEP / 2) : -1;
        CHECK(mid >= 0 && renameat(mid, "d", efd, "../mid-out") == 0 &&
                  getattr(&c, &chain[DEEP], NULL) == NFS3ERR_STALE &&
                  getattr(&c, &chain[DEEP / 2], NULL) == NFS3_OK,
              "a middle directory moved out: below it STALE, above it served");
        CHECK(renameat(efd, "../mid-out", mid, "d") == 0 &&
                  getattr(&c, &chain[DEEP], NULL) == NFS3_OK,
              "moved back, served again");
        CHECK(renameat(efd, "deep/d", efd, "lifted") == 0 &&
                  getattr(&c, &chain[DEEP], NULL) == NFS3_OK &&
                  getattr(&c, &chain[1], NULL) == NFS3_OK,
              "a directory moved within the export is still served at its new depth");
        if (mid >= 0)
                close(mid);
        if (top >= 0)
                close(top);

        /* The limit: 8,192 levels are served; deeper is refused, never
         * handed out. */
        CHECK(rc_mkdir(&c, &root, "x", &x) == NFS3_OK && rc_mkdir(&c, &x, "y", &y) == NFS3_OK,
              "directories x and x/y");
        deep = server_chain(efd, 8191);
        CHECK(deep >= 0 && renameat(efd, "x", deep, "x") == 0,
              "x moved 8,192 levels down (server)");
        CHECK(getattr(&c, &x, NULL) == NFS3_OK, "x is served at depth 8,192");
        CHECK(rc_mkdir(&c, &x, "z", NULL) == NFS3ERR_NAMETOOLONG,
              "MKDIR below it is NFS3ERR_NAMETOOLONG (its handle would not resolve)");
        r1 = getattr(&c, &y, NULL);
        r2 = lookup(&c, &x, "y", NULL, NULL);
        CHECK(r1 == NFS3ERR_STALE && r2 == NFS3ERR_NAMETOOLONG,
              "x/y, 8,193 levels down, is STALE (%d) and LOOKUP does not hand it out (%d)", r1, r2);
        if (deep >= 0)
                close(deep);
        close(efd);
}

static int dump(struct rc *rc, int *ret_n, bool *ret_all_root)
{
        mountlist3 ml = NULL;
        int r, n = 0;
        bool all = true;

        r = rc_call(rc, MOUNT_PROGRAM, MOUNT_V3, 2, (xdrproc_t)rpc_xdr_void, NULL, X(mountlist3),
                    &ml);
        for (mountlist3 m = ml; r == 0 && m; m = m->ml_next) {
                n++;
                if (strcmp(m->ml_directory, "/") != 0 || strcmp(m->ml_hostname, "127.0.0.1") != 0)
                        all = false;
        }
        rc_free(X(mountlist3), &ml);
        *ret_n = n;
        if (ret_all_root)
                *ret_all_root = all;
        return r;
}

/* MOUNT's list holds each client's export once, however the path was
 * spelled, and DUMP answers however long the list is. */
static void test_mount_list(void)
{
        char path[1100];
        struct fh f;
        bool all_root;
        int n = 0, bad = 0, r;

        for (int i = 0; i < 5000; i++) {
                /* "/", "//", "/./", "/.//" ...: 5,000 spellings of the root. */
                size_t len = 0;
                path[len++] = '/';
                for (int k = 0; k < i % 400; k++) {
                        path[len++] = '.';
                        path[len++] = '/';
                }
                for (int k = 0; k < i / 400; k++)
                        path[len++] = '/';
                path[len] = '\0';
                if (mnt(&c, path, &f) != MNT3_OK)
                        bad++;
        }
        CHECK(bad == 0, "MNT of 5,000 spellings of / succeeds");
        r = dump(&c, &n, &all_root);
        CHECK(r == 0 && n == 1 && all_root, "DUMP lists 127.0.0.1 / once (%d, %d entries)", r, n);
        r = rc_call(&c, MOUNT_PROGRAM, MOUNT_V3, 3, X(dirpath3), &(dirpath3){(char *)"/./"},
                    (xdrproc_t)rpc_xdr_void, NULL);
        r = r ?: dump(&c, &n, NULL);
        CHECK(r == 0 && n == 0, "UMNT of another spelling forgets it (%d entries)", n);
}

/* Many clients with long export paths: DUMP's reply stays within what a
 * reply can hold. */
static void test_dump_size(const char *root_dir)
{
        char dirs[4][1200], conf[5000], file[4200];
        const char *args[8];
        struct server srv;
        struct rc rc = {.fd = -1};
        size_t len = 0;
        int mounted = 0, n = 0, r;
        FILE *fp;

        for (int e = 0; e < 4; e++) {
                int k = snprintf(dirs[e], sizeof(dirs[e]), "%s/", root_dir);
                for (int part = 0; part < 4; part++) {
                        memset(dirs[e] + k, 'a' + part, 240);
                        k += 240;
                        dirs[e][k] = '\0';
                        mkdir(dirs[e], 0755);
                        dirs[e][k++] = '/';
                }
                k += snprintf(dirs[e] + k, sizeof(dirs[e]) - (size_t)k, "e%d", e);
                mkdir(dirs[e], 0755);
                len += (size_t)snprintf(conf + len, sizeof(conf) - len,
                                        "%s 127.0.0.0/8(rw,no_root_squash,insecure)\n", dirs[e]);
        }
        snprintf(file, sizeof(file), "%s/exports", root_dir);
        fp = fopen(file, "w");
        if (fp) {
                fputs(conf, fp);
                fclose(fp);
        }
        args[0] = "--state-dir";
        args[1] = root_dir;
        args[2] = "--exports";
        args[3] = file;
        args[4] = NULL;
        server_start(&srv, args);
        /* 300 client addresses x 4 exports of 970 bytes: 1.2 MB of list. */
        for (int h = 0; h < 300; h++) {
                struct sockaddr_in a = {.sin_family = AF_INET};
                struct fh f;
                rc.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                a.sin_addr.s_addr = htonl(0x7f010000u + (uint32_t)h + 1);
                if (rc.fd < 0 || bind(rc.fd, (struct sockaddr *)&a, sizeof(a)) < 0)
                        break;
                a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                a.sin_port = htons((uint16_t)srv.port);
                if (connect(rc.fd, (struct sockaddr *)&a, sizeof(a)) < 0)
                        break;
                setsockopt(rc.fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
                rc.flavor = AUTH_SYS;
                for (int e = 0; e < 4; e++)
                        if (mnt(&rc, dirs[e], &f) == MNT3_OK)
                                mounted++;
                rc_close(&rc);
        }
        CHECK(mounted == 1200, "1,200 mounts from 300 addresses (%d)", mounted);
        r = rc_connect(&rc, srv.port);
        r = r ?: dump(&rc, &n, NULL);
        CHECK(r == 0 && n > 500 && n <= 1200, "DUMP answers with what fits in a reply (%d, %d)", r,
              n);
        rc_close(&rc);
        CHECK(server_stop(&srv) == 0, "that server stops cleanly");
}

static size_t put32(uint8_t *p, uint32_t v)
{
        v = htonl(v);
        memcpy(p, &v, 4);
        return 4;
}

static void test_long_credentials(void)
{
        uint8_t buf[1024] = {};
        struct rpc_msg m = {};
        void *rep = NULL;
        size_t n = 0, len = 0;
        bool denied = false;
        XDR x;

        n += put32(buf + n, 0x5e5e0001);
        n += put32(buf + n, CALL);
        n += put32(buf + n, 2);
        n += put32(buf + n, NFS3_PROGRAM);
        n += put32(buf + n, NFS3_VERSION);
        n += put32(buf + n, 0);
        n += put32(buf + n, AUTH_SYS);
        n += put32(buf + n, 420);
        /* stamp, machine name of 396 bytes, uid, gid, no groups */
        n += put32(buf + n, 0);
        n += put32(buf + n, 396);
        memset(buf + n, 'm', 396);
        n += 396;
        n += put32(buf + n, 0);
        n += put32(buf + n, 0);
        n += put32(buf + n, 0);
        n += put32(buf + n, AUTH_NONE);
        n += put32(buf + n, 0);
        if (rc_send_record(&c, buf, n) == 0 && rc_recv_record(&c, &rep, &len) == 0) {
                xdrmem_create(&x, rep, (u_int)len, XDR_DECODE);
                denied = xdr_replymsg(&x, &m) && m.rm_xid == 0x5e5e0001 &&
                         m.rm_reply.rp_stat == MSG_DENIED && m.rjcted_rply.rj_stat == AUTH_ERROR &&
                         m.rjcted_rply.rj_why == AUTH_BADCRED;
                free(rep);
        }
        CHECK(denied, "an AUTH_SYS body of 420 bytes gets AUTH_ERROR (AUTH_BADCRED)");
}

int main(void)
{
        struct tmp t;
        struct server srv;

        if (geteuid() != 0)
                tap_skip_all("needs root (open_by_handle_at needs CAP_DAC_READ_SEARCH)");
        tmp_setup(&t);
        export = t.export;
        const char *args[] = {"--state-dir", t.state, t.export, NULL};
        server_start(&srv, args);
        if (rc_connect(&c, srv.port) < 0) {
                tap_diag("cannot connect: %m");
                return 1;
        }
        CHECK(mnt(&c, "/", &root) == MNT3_OK, "MNT /");
        test_create_unchecked();
        test_commit_write_only();
        test_setattr_size_owner();
        test_exclusive_verifier();
        test_failed_create_wcc();
        test_bad_names();
        test_validate_first();
        test_ids();
        test_stable_how();
        test_long_credentials();
        test_depth();
        test_mount_list();
        rc_close(&c);
        CHECK(server_stop(&srv) == 0, "the server stops cleanly");
        test_dump_size(t.root);
        return tap_done();
}
