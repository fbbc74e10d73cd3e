/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Every NFSv3 and MOUNT procedure of strata-nfsd through raw RPC calls,
 * export confinement, handle forgery, and handles across a restart. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nfsd-test.h"

#define X(t) ((xdrproc_t)xdr_##t)

static struct rc c = {.fd = -1};
static struct fh root;

static sattr3 no_attrs(void)
{
        sattr3 a = {};
        return a;
}

static int create_file(struct fh *dir, const char *name, createmode3 how, const char *verf,
                       struct fh *ret)
{
        CREATE3args a = {.where = {.dir = fh_arg(dir), .name = (char *)name}};
        CREATE3res res = {};
        int r, s;

        a.how.mode = how;
        if (how == EXCLUSIVE)
                memcpy(a.how.createhow3_u.verf, verf, NFS3_CREATEVERFSIZE);
        else {
                a.how.createhow3_u.obj_attributes.mode.set_it = TRUE;
                a.how.createhow3_u.obj_attributes.mode.set_mode3_u.mode = 0644;
        }
        r = nfs_call(&c, 8, X(CREATE3args), &a, X(CREATE3res), &res);
        if (r != 0)
                return -1000 - r;
        s = res.status;
        if (s == NFS3_OK && ret) {
                if (!res.CREATE3res_u.resok.obj.handle_follows)
                        s = -1;
                else
                        fh_from(ret, &res.CREATE3res_u.resok.obj.post_op_fh3_u.handle);
        }
        rc_free(X(CREATE3res), &res);
        return s;
}

static int write_file(struct fh *f, uint64_t off, const void *data, uint32_t len, stable_how stable,
                      WRITE3resok *ret)
{
        WRITE3args a = {.file = fh_arg(f), .offset = off, .count = len, .stable = stable};
        WRITE3res res = {};
        int r, s;

        a.data.data_len = len;
        a.data.data_val = (char *)data;
        r = nfs_call(&c, 7, X(WRITE3args), &a, X(WRITE3res), &res);
        if (r != 0)
                return -1000 - r;
        s = res.status;
        if (s == NFS3_OK && ret)
                *ret = res.WRITE3res_u.resok;
        rc_free(X(WRITE3res), &res);
        return s;
}

/* Reads into buf; returns the nfsstat3, *ret_len and *ret_eof. */
static int read_file(struct fh *f, uint64_t off, uint32_t count, void *buf, uint32_t *ret_len,
                     bool *ret_eof)
{
        READ3args a = {.file = fh_arg(f), .offset = off, .count = count};
        READ3res res = {};
        int r, s;

        r = nfs_call(&c, 6, X(READ3args), &a, X(READ3res), &res);
        if (r != 0)
                return -1000 - r;
        s = res.status;
        if (s == NFS3_OK) {
                *ret_len = res.READ3res_u.resok.data.data_len;
                memcpy(buf, res.READ3res_u.resok.data.data_val, *ret_len);
                *ret_eof = res.READ3res_u.resok.eof;
        }
        rc_free(X(READ3res), &res);
        return s;
}

static int setattr(struct fh *f, sattr3 *attrs, const nfstime3 *guard)
{
        SETATTR3args a = {.object = fh_arg(f), .new_attributes = *attrs};
        SETATTR3res res = {};
        int r, s;

        if (guard) {
                a.guard.check = TRUE;
                a.guard.sattrguard3_u.obj_ctime = *guard;
        }
        r = nfs_call(&c, 2, X(SETATTR3args), &a, X(SETATTR3res), &res);
        if (r != 0)
                return -1000 - r;
        s = res.status;
        if (!res.SETATTR3res_u.resok.obj_wcc.after.attributes_follow)
                s = -2; /* wcc data is required by the tests */
        rc_free(X(SETATTR3res), &res);
        return s;
}

static int remove_name(uint32_t proc, struct fh *dir, const char *name, bool *ret_wcc)
{
        REMOVE3args a = {.object = {.dir = fh_arg(dir), .name = (char *)name}};
        REMOVE3res res = {};
        int r, s;

        r = nfs_call(&c, proc, X(REMOVE3args), &a, X(REMOVE3res), &res);
        if (r != 0)
                return -1000 - r;
        s = res.status;
        if (ret_wcc)
                *ret_wcc = res.REMOVE3res_u.resok.dir_wcc.before.attributes_follow &&
                           res.REMOVE3res_u.resok.dir_wcc.after.attributes_follow;
        rc_free(X(REMOVE3res), &res);
        return s;
}

static int symlink_name(struct fh *dir, const char *name, const char *target)
{
        SYMLINK3args a = {.where = {.dir = fh_arg(dir), .name = (char *)name}};
        SYMLINK3res res = {};
        int r, s;

        a.symlink.symlink_attributes = no_attrs();
        a.symlink.symlink_data = (char *)target;
        r = nfs_call(&c, 10, X(SYMLINK3args), &a, X(SYMLINK3res), &res);
        if (r != 0)
                return -1000 - r;
        s = res.status;
        rc_free(X(SYMLINK3res), &res);
        return s;
}

/* Reads the whole directory with READDIR (count bytes a call); returns the
 * number of entries found, -1 on error; sets *ret_calls. */
static int readdir_all(struct fh *dir, uint32_t count, const char *want, bool *ret_found,
                       int *ret_calls)
{
        cookie3 cookie = 0;
        char verf[NFS3_COOKIEVERFSIZE] = {};
        int n = 0, calls = 0;

        *ret_found = false;
        for (;;) {
                READDIR3args a = {.dir = fh_arg(dir), .cookie = cookie, .count = count};
                READDIR3res res = {};
                bool eof;

                memcpy(a.cookieverf, verf, sizeof(verf));
                if (nfs_call(&c, 16, X(READDIR3args), &a, X(READDIR3res), &res) != 0)
                        return -1;
                calls++;
                if (res.status != NFS3_OK) {
                        tap_diag("READDIR: status %d", res.status);
                        rc_free(X(READDIR3res), &res);
                        return -1;
                }
                memcpy(verf, res.READDIR3res_u.resok.cookieverf, sizeof(verf));
                for (entry3 *e = res.READDIR3res_u.resok.reply.entries; e; e = e->nextentry) {
                        n++;
                        if (want && strcmp(e->name, want) == 0)
                                *ret_found = true;
                        cookie = e->cookie;
                }
                eof = res.READDIR3res_u.resok.reply.eof;
                rc_free(X(READDIR3res), &res);
                if (eof)
                        break;
                if (calls > 10000)
                        return -1;
        }
        *ret_calls = calls;
        return n;
}

static void test_mount_and_portmap(struct server *srv)
{
        uint32 port = 0;
        pmap2_mapping m = {NFS3_PROGRAM, NFS3_VERSION, PMAP_IPPROTO_TCP, 0};
        exports3 ex = NULL;
        mountlist3 ml = NULL;
        dirpath3 d = (char *)"/";
        int r;

        r = rc_call(&c, NFS3_PROGRAM, NFS3_VERSION, 0, (xdrproc_t)rpc_xdr_void, NULL,
                    (xdrproc_t)rpc_xdr_void, NULL);
        CHECK(r == 0, "NFS NULL answers");
        r = rc_call(&c, MOUNT_PROGRAM, MOUNT_V3, 0, (xdrproc_t)rpc_xdr_void, NULL,
                    (xdrproc_t)rpc_xdr_void, NULL);
        CHECK(r == 0, "MOUNT NULL answers");
        r = rc_call(&c, PMAP_PROGRAM, PMAP_V2, 3, X(pmap2_mapping), &m, X(uint32), &port);
        CHECK(r == 0 && (int)port == srv->port, "portmapper GETPORT of NFS v3/TCP is our port (%u)",
              port);
        m.prog = MOUNT_PROGRAM;
        m.vers = MOUNT_V3;
        r = rc_call(&c, PMAP_PROGRAM, PMAP_V2, 3, X(pmap2_mapping), &m, X(uint32), &port);
        CHECK(r == 0 && (int)port == srv->port, "portmapper GETPORT of MOUNT v3/TCP is our port");
        m.prog = 100021;
        r = rc_call(&c, PMAP_PROGRAM, PMAP_V2, 3, X(pmap2_mapping), &m, X(uint32), &port);
        CHECK(r == 0 && port == 0, "portmapper GETPORT of an unserved program is 0");

        CHECK(mnt(&c, "/", &root) == MNT3_OK, "MNT / gives the root handle");
        r = rc_call(&c, MOUNT_PROGRAM, MOUNT_V3, 5, (xdrproc_t)rpc_xdr_void, NULL, X(exports3),
                    &ex);
        CHECK(r == 0 && ex && strcmp(ex->ex_dir, "/") == 0 && ex->ex_groups &&
                  strcmp(ex->ex_groups->gr_name, "127.0.0.0/8") == 0,
              "EXPORT lists / for 127.0.0.0/8");
        rc_free(X(exports3), &ex);
        r = rc_call(&c, MOUNT_PROGRAM, MOUNT_V3, 2, (xdrproc_t)rpc_xdr_void, NULL, X(mountlist3),
                    &ml);
        CHECK(r == 0 && ml && strcmp(ml->ml_directory, "/") == 0 &&
                  strcmp(ml->ml_hostname, "127.0.0.1") == 0,
              "DUMP lists our mount");
        rc_free(X(mountlist3), &ml);
        r = rc_call(&c, MOUNT_PROGRAM, MOUNT_V3, 3, X(dirpath3), &d, (xdrproc_t)rpc_xdr_void, NULL);
        CHECK(r == 0, "UMNT answers");
        r = rc_call(&c, MOUNT_PROGRAM, MOUNT_V3, 2, (xdrproc_t)rpc_xdr_void, NULL, X(mountlist3),
                    &ml);
        CHECK(r == 0 && ml == NULL, "DUMP is empty after UMNT");
        rc_free(X(mountlist3), &ml);
        CHECK(mnt(&c, "/", &root) == MNT3_OK, "MNT again");
        r = rc_call(&c, MOUNT_PROGRAM, MOUNT_V3, 4, (xdrproc_t)rpc_xdr_void, NULL,
                    (xdrproc_t)rpc_xdr_void, NULL);
        r = r
                ?: rc_call(&c, MOUNT_PROGRAM, MOUNT_V3, 2, (xdrproc_t)rpc_xdr_void, NULL,
                           X(mountlist3), &ml);
        CHECK(r == 0 && ml == NULL, "UMNTALL forgets every mount of the host");
        rc_free(X(mountlist3), &ml);
        CHECK(mnt(&c, "/nonexistent", &(struct fh){}) == MNT3ERR_NOENT,
              "MNT of a missing directory is MNT3ERR_NOENT");
}

static void test_fs_procedures(const char *export)
{
        struct fh f = {}, f2 = {}, d = {}, sub = {}, lnk = {};
        fattr3 attr, attr2;
        WRITE3resok w1, w2;
        char buf[70000], verf_a[8] = "verfAAAA", verf_b[8] = "verfBBBB";
        uint32_t len;
        bool eof, wcc_ok, found;
        int r, calls = 0;

        /* GETATTR, FSINFO, FSSTAT, PATHCONF */
        r = getattr(&c, &root, &attr);
        CHECK(r == NFS3_OK && attr.type == NF3DIR, "GETATTR of the root: a directory");
        {
                FSINFO3args a = {.fsroot = fh_arg(&root)};
                FSINFO3res res = {};
                r = nfs_call(&c, 19, X(FSINFO3args), &a, X(FSINFO3res), &res);
                CHECK(r == 0 && res.status == NFS3_OK && res.FSINFO3res_u.resok.rtmax == 1048576 &&
                          res.FSINFO3res_u.resok.wtmax == 1048576,
                      "FSINFO advertises 1 MiB rtmax and wtmax");
                rc_free(X(FSINFO3res), &res);
        }
        {
                FSSTAT3args a = {.fsroot = fh_arg(&root)};
                FSSTAT3res res = {};
                r = nfs_call(&c, 18, X(FSSTAT3args), &a, X(FSSTAT3res), &res);
                CHECK(r == 0 && res.status == NFS3_OK && res.FSSTAT3res_u.resok.tbytes > 0 &&
                          res.FSSTAT3res_u.resok.tbytes >= res.FSSTAT3res_u.resok.fbytes,
                      "FSSTAT reports sizes");
                rc_free(X(FSSTAT3res), &res);
        }
        {
                PATHCONF3args a = {.object = fh_arg(&root)};
                PATHCONF3res res = {};
                r = nfs_call(&c, 20, X(PATHCONF3args), &a, X(PATHCONF3res), &res);
                CHECK(r == 0 && res.status == NFS3_OK && res.PATHCONF3res_u.resok.name_max == 255 &&
                          res.PATHCONF3res_u.resok.no_trunc,
                      "PATHCONF answers name_max 255");
                rc_free(X(PATHCONF3res), &res);
        }

        /* CREATE in its three modes */
        CHECK(create_file(&root, "a.txt", UNCHECKED, NULL, &f) == NFS3_OK, "CREATE UNCHECKED");
        CHECK(create_file(&root, "a.txt", UNCHECKED, NULL, NULL) == NFS3_OK,
              "CREATE UNCHECKED of an existing file succeeds");
        CHECK(create_file(&root, "a.txt", GUARDED, NULL, NULL) == NFS3ERR_EXIST,
              "CREATE GUARDED of an existing file is NFS3ERR_EXIST");
        CHECK(create_file(&root, "excl", EXCLUSIVE, verf_a, &f2) == NFS3_OK, "CREATE EXCLUSIVE");
        r = create_file(&root, "excl", EXCLUSIVE, verf_a, &d);
        CHECK(r == NFS3_OK && d.len == f2.len && memcmp(d.data, f2.data, d.len) == 0,
              "a retransmitted EXCLUSIVE create succeeds with the same handle");
        CHECK(create_file(&root, "excl", EXCLUSIVE, verf_b, NULL) == NFS3ERR_EXIST,
              "EXCLUSIVE create with another verifier is NFS3ERR_EXIST");

        /* WRITE with each stability, COMMIT, READ */
        memset(buf, 'x', sizeof(buf));
        r = write_file(&f, 0, buf, 70000, UNSTABLE, &w1);
        CHECK(r == NFS3_OK && w1.count == 70000 && w1.committed == UNSTABLE, "WRITE UNSTABLE");
        r = write_file(&f, 70000, "tail", 4, DATA_SYNC, &w2);
        CHECK(r == NFS3_OK && w2.committed >= DATA_SYNC &&
                  memcmp(w1.verf, w2.verf, NFS3_WRITEVERFSIZE) == 0,
              "WRITE DATA_SYNC, same verifier");
        r = write_file(&f, 70004, "!", 1, FILE_SYNC, &w2);
        CHECK(r == NFS3_OK && w2.committed == FILE_SYNC, "WRITE FILE_SYNC");
        {
                COMMIT3args a = {.file = fh_arg(&f)};
                COMMIT3res res = {};
                r = nfs_call(&c, 21, X(COMMIT3args), &a, X(COMMIT3res), &res);
                CHECK(r == 0 && res.status == NFS3_OK &&
                          memcmp(res.COMMIT3res_u.resok.verf, w1.verf, 8) == 0 &&
                          res.COMMIT3res_u.resok.file_wcc.after.attributes_follow,
                      "COMMIT returns the write verifier and wcc data");
                rc_free(X(COMMIT3res), &res);
        }
        r = read_file(&f, 69998, 100, buf, &len, &eof);
        CHECK(r == NFS3_OK && len == 7 && memcmp(buf, "xxtail!", 7) == 0 && eof,
              "READ returns the data and eof");
        {
                struct stat st;
                char path[4200];
                snprintf(path, sizeof(path), "%s/a.txt", export);
                CHECK(stat(path, &st) == 0 && st.st_size == 70005,
                      "the file on the server has the written size");
        }

        /* holes read as zeros */
        r = write_file(&f, 1 << 20, "end", 3, UNSTABLE, NULL);
        r = r ?: read_file(&f, 200000, 1000, buf, &len, &eof);
        CHECK(r == NFS3_OK && len == 1000 && buf[0] == 0 && buf[999] == 0 && !eof,
              "a hole reads as zeros");

        /* attribute semantics: mtime/ctime after write, atime after read */
        {
                sattr3 s = no_attrs();
                s.atime.set_it = SET_TO_CLIENT_TIME;
                s.atime.set_atime_u.atime.seconds = 1000;
                s.mtime.set_it = SET_TO_CLIENT_TIME;
                s.mtime.set_mtime_u.mtime.seconds = 2000;
                r = setattr(&f, &s, NULL);
                r = r ?: getattr(&c, &f, &attr);
                CHECK(r == NFS3_OK && attr.atime.seconds == 1000 && attr.mtime.seconds == 2000,
                      "SETATTR sets atime and mtime");
                r = read_file(&f, 0, 10, buf, &len, &eof);
                r = r ?: getattr(&c, &f, &attr2);
                CHECK(r == NFS3_OK && attr2.atime.seconds > 1000, "READ updates atime");
                r = write_file(&f, 0, "y", 1, UNSTABLE, NULL);
                r = r ?: getattr(&c, &f, &attr2);
                CHECK(r == NFS3_OK && attr2.mtime.seconds > 2000 &&
                          (attr2.ctime.seconds > attr.ctime.seconds ||
                           (attr2.ctime.seconds == attr.ctime.seconds &&
                            attr2.ctime.nseconds > attr.ctime.nseconds)),
                      "WRITE updates mtime and ctime");
        }

        /* SETATTR: mode, size, guard */
        {
                sattr3 s = no_attrs();
                s.mode.set_it = TRUE;
                s.mode.set_mode3_u.mode = 0600;
                s.size.set_it = TRUE;
                s.size.set_size3_u.size = 10;
                r = setattr(&f, &s, NULL);
                r = r ?: getattr(&c, &f, &attr);
                CHECK(r == NFS3_OK && attr.mode == 0600 && attr.size == 10,
                      "SETATTR sets mode and size");
                nfstime3 wrong = {.seconds = 1, .nseconds = 2};
                CHECK(setattr(&f, &s, &wrong) == NFS3ERR_NOT_SYNC,
                      "SETATTR with a wrong ctime guard is NFS3ERR_NOT_SYNC");
                CHECK(setattr(&f, &s, &attr.ctime) == NFS3_OK,
                      "SETATTR with the right ctime guard succeeds");
        }

        /* LOOKUP, ACCESS */
        r = lookup(&c, &root, "a.txt", &f2, &attr);
        CHECK(r == NFS3_OK && f2.len == f.len && memcmp(f2.data, f.data, f.len) == 0 &&
                  attr.size == 10,
              "LOOKUP finds the file with the same handle");
        CHECK(lookup(&c, &root, "nope", NULL, NULL) == NFS3ERR_NOENT,
              "LOOKUP of a missing name is NFS3ERR_NOENT");
        {
                ACCESS3args a = {.object = fh_arg(&f), .access = 0x3f};
                ACCESS3res res = {};
                r = nfs_call(&c, 4, X(ACCESS3args), &a, X(ACCESS3res), &res);
                CHECK(r == 0 && res.status == NFS3_OK &&
                          (res.ACCESS3res_u.resok.access & (ACCESS3_READ | ACCESS3_MODIFY)) ==
                              (ACCESS3_READ | ACCESS3_MODIFY) &&
                          !(res.ACCESS3res_u.resok.access & ACCESS3_EXECUTE),
                      "ACCESS grants read and modify but not execute on a 0600 file");
                rc_free(X(ACCESS3res), &res);
        }

        /* MKDIR, SYMLINK, READLINK, MKNOD */
        CHECK(rc_mkdir(&c, &root, "dir", &d) == NFS3_OK, "MKDIR");
        CHECK(rc_mkdir(&c, &root, "dir", NULL) == NFS3ERR_EXIST, "MKDIR of an existing name");
        CHECK(symlink_name(&d, "link", "../a.txt") == NFS3_OK, "SYMLINK");
        r = lookup(&c, &d, "link", &lnk, &attr);
        CHECK(r == NFS3_OK && attr.type == NF3LNK, "LOOKUP of a symlink gives the symlink");
        {
                READLINK3args a = {.symlink = fh_arg(&lnk)};
                READLINK3res res = {};
                r = nfs_call(&c, 5, X(READLINK3args), &a, X(READLINK3res), &res);
                CHECK(r == 0 && res.status == NFS3_OK &&
                          strcmp(res.READLINK3res_u.resok.data, "../a.txt") == 0,
                      "READLINK returns the target");
                rc_free(X(READLINK3res), &res);
        }
        {
                MKNOD3args a = {.where = {.dir = fh_arg(&d), .name = (char *)"fifo"}};
                MKNOD3res res = {};
                a.what.type = NF3FIFO;
                a.what.mknoddata3_u.pipe_attributes.mode.set_it = TRUE;
                a.what.mknoddata3_u.pipe_attributes.mode.set_mode3_u.mode = 0640;
                r = nfs_call(&c, 11, X(MKNOD3args), &a, X(MKNOD3res), &res);
                CHECK(r == 0 && res.status == NFS3_OK &&
                          res.MKNOD3res_u.resok.obj_attributes.post_op_attr_u.attributes.type ==
                              NF3FIFO,
                      "MKNOD makes a fifo");
                rc_free(X(MKNOD3res), &res);
                a.what.type = NF3DIR;
                r = nfs_call(&c, 11, X(MKNOD3args), &a, X(MKNOD3res), &res);
                CHECK(r == 0 && res.status == NFS3ERR_BADTYPE, "MKNOD of a directory is BADTYPE");
                rc_free(X(MKNOD3res), &res);
        }

        /* LINK, REMOVE: ctime of the surviving link */
        {
                LINK3args a = {.file = fh_arg(&f),
                               .link = {.dir = fh_arg(&d), .name = (char *)"hard"}};
                LINK3res res = {};
                r = nfs_call(&c, 15, X(LINK3args), &a, X(LINK3res), &res);
                CHECK(r == 0 && res.status == NFS3_OK &&
                          res.LINK3res_u.resok.file_attributes.post_op_attr_u.attributes.nlink ==
                              2 &&
                          res.LINK3res_u.resok.linkdir_wcc.after.attributes_follow,
                      "LINK makes a second link (nlink 2, wcc data)");
                rc_free(X(LINK3res), &res);
        }
        r = getattr(&c, &f, &attr);
        usleep(20000);
        r = r ?: remove_name(12, &root, "a.txt", &wcc_ok);
        CHECK(r == NFS3_OK && wcc_ok, "REMOVE with wcc data");
        r = lookup(&c, &d, "hard", &f2, &attr2);
        CHECK(r == NFS3_OK && attr2.nlink == 1 &&
                  (attr2.ctime.seconds > attr.ctime.seconds ||
                   (attr2.ctime.seconds == attr.ctime.seconds &&
                    attr2.ctime.nseconds > attr.ctime.nseconds)),
              "the surviving link has nlink 1 and a newer ctime");
        CHECK(getattr(&c, &f, &attr) == NFS3_OK, "the handle of the file still works via its link");

        /* RENAME */
        {
                RENAME3args a = {.from = {.dir = fh_arg(&d), .name = (char *)"hard"},
                                 .to = {.dir = fh_arg(&root), .name = (char *)"moved"}};
                RENAME3res res = {};
                r = nfs_call(&c, 14, X(RENAME3args), &a, X(RENAME3res), &res);
                CHECK(r == 0 && res.status == NFS3_OK &&
                          res.RENAME3res_u.resok.fromdir_wcc.after.attributes_follow &&
                          res.RENAME3res_u.resok.todir_wcc.after.attributes_follow,
                      "RENAME across directories with wcc data for both");
                rc_free(X(RENAME3res), &res);
                CHECK(lookup(&c, &root, "moved", NULL, NULL) == NFS3_OK &&
                          lookup(&c, &d, "hard", NULL, NULL) == NFS3ERR_NOENT,
                      "the renamed file is under its new name only");
        }

        /* RMDIR */
        CHECK(remove_name(13, &root, "dir", NULL) == NFS3ERR_NOTEMPTY,
              "RMDIR of a non-empty directory is NFS3ERR_NOTEMPTY");
        CHECK(rc_mkdir(&c, &root, "empty", &sub) == NFS3_OK &&
                  remove_name(13, &root, "empty", &wcc_ok) == NFS3_OK && wcc_ok,
              "RMDIR of an empty directory");
        CHECK(getattr(&c, &sub, NULL) == NFS3ERR_STALE,
              "the handle of a removed directory is NFS3ERR_STALE");

        /* READDIR with small pages, cookies, verifier */
        CHECK(rc_mkdir(&c, &root, "many", &sub) == NFS3_OK, "MKDIR many");
        for (int i = 0; i < 300; i++) {
                char name[64];
                snprintf(name, sizeof(name), "file-with-a-longish-name-%03d", i);
                if (create_file(&sub, name, GUARDED, NULL, NULL) != NFS3_OK) {
                        tap_diag("cannot create %s", name);
                        break;
                }
        }
        r = readdir_all(&sub, 1024, "file-with-a-longish-name-299", &found, &calls);
        CHECK(r == 302 && found && calls > 5,
              "READDIR in 1 KiB pages returns all 300 entries plus . and .. (%d in %d calls)", r,
              calls);
        {
                READDIR3args a = {.dir = fh_arg(&sub), .cookie = 0, .count = 1024};
                READDIR3res res = {};
                cookie3 ck = 0;
                r = nfs_call(&c, 16, X(READDIR3args), &a, X(READDIR3res), &res);
                for (entry3 *e = res.READDIR3res_u.resok.reply.entries; e; e = e->nextentry)
                        ck = e->cookie;
                rc_free(X(READDIR3res), &res);
                a.cookie = ck;
                memcpy(a.cookieverf, "bad-verf", 8);
                r = r ?: nfs_call(&c, 16, X(READDIR3args), &a, X(READDIR3res), &res);
                CHECK(r == 0 && res.status == NFS3ERR_BAD_COOKIE,
                      "READDIR with a wrong cookie verifier is NFS3ERR_BAD_COOKIE");
                rc_free(X(READDIR3res), &res);
                a.cookie = 0;
                a.count = 10;
                r = nfs_call(&c, 16, X(READDIR3args), &a, X(READDIR3res), &res);
                CHECK(r == 0 && res.status == NFS3ERR_TOOSMALL,
                      "READDIR with a tiny count is NFS3ERR_TOOSMALL");
                rc_free(X(READDIR3res), &res);
        }
        {
                READDIRPLUS3args a = {.dir = fh_arg(&sub), .dircount = 8192, .maxcount = 32768};
                READDIRPLUS3res res = {};
                int n = 0, with_handle = 0;
                bool handles_work = true;
                r = nfs_call(&c, 17, X(READDIRPLUS3args), &a, X(READDIRPLUS3res), &res);
                for (entryplus3 *e = res.READDIRPLUS3res_u.resok.reply.entries; e;
                     e = e->nextentry) {
                        n++;
                        if (e->name_handle.handle_follows && e->name_attributes.attributes_follow) {
                                struct fh h;
                                fattr3 at;
                                with_handle++;
                                fh_from(&h, &e->name_handle.post_op_fh3_u.handle);
                                if (with_handle < 5 &&
                                    (getattr(&c, &h, &at) != NFS3_OK || at.fileid != e->fileid))
                                        handles_work = false;
                        }
                }
                CHECK(r == 0 && res.status == NFS3_OK && n > 10 && with_handle >= n - 1 &&
                          handles_work,
                      "READDIRPLUS returns attributes and working handles (%d entries)", n);
                rc_free(X(READDIRPLUS3res), &res);
        }
}

static void test_confinement(const char *root_dir, const char *export)
{
        struct fh f = {}, lnk = {}, h = {};
        fattr3 rattr, attr;
        char path[4200];
        int r, bad = 0;

        /* A symlink planted on the server pointing out of the export. */
        snprintf(path, sizeof(path), "%s/out", export);
        if (symlink("/etc", path) < 0)
                tap_diag("symlink: %m");
        snprintf(path, sizeof(path), "%s/secret", root_dir);
        FILE *fp = fopen(path, "w");
        if (fp) {
                fputs("secret\n", fp);
                fclose(fp);
        }

        r = getattr(&c, &root, &rattr);
        r = r ?: lookup(&c, &root, "..", &h, &attr);
        CHECK(r == NFS3_OK && attr.fileid == rattr.fileid,
              "LOOKUP .. at the export root stays at the root");
        CHECK(lookup(&c, &root, "../secret", NULL, NULL) == -1000 - (100 + GARBAGE_ARGS),
              "a name with a slash is refused (GARBAGE_ARGS)");
        r = lookup(&c, &root, "out", &lnk, &attr);
        CHECK(r == NFS3_OK && attr.type == NF3LNK, "a symlink out of the export is not followed");
        CHECK(lookup(&c, &lnk, "passwd", NULL, NULL) == NFS3ERR_NOTDIR,
              "LOOKUP through a symlink handle is NFS3ERR_NOTDIR");
        {
                READ3args a = {.file = fh_arg(&lnk), .count = 100};
                READ3res res = {};
                r = nfs_call(&c, 6, X(READ3args), &a, X(READ3res), &res);
                CHECK(r == 0 && res.status == NFS3ERR_INVAL, "READ of a symlink is NFS3ERR_INVAL");
                rc_free(X(READ3res), &res);
        }
        CHECK(create_file(&lnk, "x", GUARDED, NULL, NULL) == NFS3ERR_NOTDIR,
              "CREATE under a symlink handle is NFS3ERR_NOTDIR");
        {
                LINK3args a = {.file = fh_arg(&lnk),
                               .link = {.dir = fh_arg(&root), .name = (char *)"out-link"}};
                LINK3res res = {};
                r = nfs_call(&c, 15, X(LINK3args), &a, X(LINK3res), &res);
                rc_free(X(LINK3res), &res);
                r = r ?: lookup(&c, &root, "out-link", NULL, &attr);
                CHECK(r == NFS3_OK && attr.type == NF3LNK,
                      "LINK of a symlink links the symlink, not what it points to");
        }
        {
                sattr3 s = no_attrs();
                s.size.set_it = TRUE;
                s.size.set_size3_u.size = 0;
                CHECK(setattr(&lnk, &s, NULL) == NFS3ERR_INVAL,
                      "SETATTR size on a symlink is NFS3ERR_INVAL (the target is untouched)");
                struct stat st;
                CHECK(stat("/etc/passwd", &st) == 0 && st.st_size > 0, "/etc/passwd is intact");
        }
        CHECK(mnt(&c, "/..", &h) != MNT3_OK && mnt(&c, "/out", &h) != MNT3_OK,
              "MNT of /.. or of a symlink out is refused");

        /* A directory moved out of the export on the server: its handle,
         * still valid for the kernel, does not lead outside. */
        {
                struct fh moving = {};
                char from[4200], to[4200];
                CHECK(rc_mkdir(&c, &root, "moving", &moving) == NFS3_OK &&
                          create_file(&moving, "inside", GUARDED, NULL, NULL) == NFS3_OK,
                      "a directory with a file");
                snprintf(from, sizeof(from), "%s/moving", export);
                snprintf(to, sizeof(to), "%s/moved-out", root_dir);
                if (rename(from, to) < 0)
                        tap_diag("rename: %m");
                CHECK(getattr(&c, &moving, NULL) == NFS3ERR_STALE &&
                          lookup(&c, &moving, "inside", NULL, NULL) == NFS3ERR_STALE,
                      "after it moved out of the export its handle is NFS3ERR_STALE");
                if (rename(to, from) < 0)
                        tap_diag("rename back: %m");
                CHECK(lookup(&c, &moving, "inside", NULL, NULL) == NFS3_OK,
                      "moved back in, the same handle works again");
        }

        /* The same deep down: the ".." chain of a directory 150 levels
         * below the root is followed all the way. */
        {
                struct fh deep = {}, cur = root, next;
                char from[4200], to[4200];
                bool made = rc_mkdir(&c, &root, "deep", &deep) == NFS3_OK;
                cur = deep;
                for (int i = 0; made && i < 150; i++) {
                        made = rc_mkdir(&c, &cur, "d", &next) == NFS3_OK;
                        cur = next;
                }
                CHECK(made && getattr(&c, &cur, NULL) == NFS3_OK &&
                          create_file(&cur, "leaf", GUARDED, NULL, NULL) == NFS3_OK,
                      "a directory 150 levels deep is served");
                snprintf(from, sizeof(from), "%s/deep", export);
                snprintf(to, sizeof(to), "%s/deep-out", root_dir);
                if (rename(from, to) < 0)
                        tap_diag("rename: %m");
                CHECK(getattr(&c, &cur, NULL) == NFS3ERR_STALE &&
                          lookup(&c, &cur, "leaf", NULL, NULL) == NFS3ERR_STALE,
                      "after its top moved out of the export, its handle is NFS3ERR_STALE");
                if (rename(to, from) < 0)
                        tap_diag("rename back: %m");
                CHECK(lookup(&c, &cur, "leaf", NULL, NULL) == NFS3_OK,
                      "moved back in, the deep handle works again");
        }

        /* Every single-bit change of a valid handle is refused. */
        CHECK(lookup(&c, &root, "moved", &f, NULL) == NFS3_OK, "a valid file handle");
        for (uint32_t i = 0; i < f.len * 8; i++) {
                struct fh m = f;
                m.data[i / 8] ^= (char)(1 << (i % 8));
                r = getattr(&c, &m, NULL);
                if (r != NFS3ERR_BADHANDLE && r != NFS3ERR_STALE)
                        bad++;
        }
        CHECK(bad == 0, "all %u bit-flipped handles get BADHANDLE or STALE", f.len * 8);
        {
                struct fh m = f;
                m.len = f.len - 1;
                r = getattr(&c, &m, NULL);
                CHECK(r == NFS3ERR_BADHANDLE, "a truncated handle is NFS3ERR_BADHANDLE");
                m.len = 0;
                CHECK(getattr(&c, &m, NULL) == NFS3ERR_BADHANDLE,
                      "an empty handle is NFS3ERR_BADHANDLE");
                srand(42);
                bad = 0;
                for (int i = 0; i < 200; i++) {
                        m.len = (uint32_t)(rand() % 65);
                        for (uint32_t j = 0; j < m.len; j++)
                                m.data[j] = (char)rand();
                        if (m.len > 1 && i % 2)
                                m.data[0] = 1, m.data[1] = (char)(m.len - 26);
                        r = getattr(&c, &m, NULL);
                        if (r != NFS3ERR_BADHANDLE && r != NFS3ERR_STALE)
                                bad++;
                }
                CHECK(bad == 0, "200 random handles are all refused");
        }
}

/* Requests run with the caller's credentials, switching per request. */
static void test_credentials(void)
{
        struct fh pub = {}, mine = {}, theirs = {}, secret = {};
        fattr3 attr;
        char buf[16];
        uint32_t len;
        bool eof;
        int r;

        CHECK(rc_mkdir(&c, &root, "pub", &pub) == NFS3_OK, "MKDIR pub as root");
        {
                sattr3 s = no_attrs();
                s.mode.set_it = TRUE;
                s.mode.set_mode3_u.mode = 01777;
                CHECK(setattr(&pub, &s, NULL) == NFS3_OK, "chmod 1777 pub");
        }
        CHECK(create_file(&root, "rootonly", GUARDED, NULL, &secret) == NFS3_OK,
              "root creates a 0644 file in the root");
        {
                sattr3 s = no_attrs();
                s.mode.set_it = TRUE;
                s.mode.set_mode3_u.mode = 0600;
                CHECK(setattr(&secret, &s, NULL) == NFS3_OK, "chmod 0600");
        }

        c.uid = 1000;
        c.gid = 1000;
        CHECK(create_file(&root, "nope", GUARDED, NULL, NULL) == NFS3ERR_ACCES,
              "uid 1000 cannot create in a root-owned 0755 directory");
        r = create_file(&pub, "mine", GUARDED, NULL, &mine);
        r = r ?: getattr(&c, &mine, &attr);
        CHECK(r == NFS3_OK && attr.uid == 1000 && attr.gid == 1000,
              "uid 1000 creates in a 1777 directory, the file is 1000:1000");
        CHECK(read_file(&secret, 0, 10, buf, &len, &eof) == NFS3ERR_ACCES,
              "uid 1000 cannot read root's 0600 file");
        CHECK(remove_name(12, &root, "rootonly", NULL) == NFS3ERR_ACCES,
              "uid 1000 cannot remove in a root-owned 0755 directory");

        c.uid = 0;
        c.gid = 0;
        r = create_file(&pub, "theirs", GUARDED, NULL, &theirs);
        r = r ?: getattr(&c, &theirs, &attr);
        CHECK(r == NFS3_OK && attr.uid == 0 && attr.gid == 0, "back to root: the next file is 0:0");
        CHECK(read_file(&secret, 0, 10, buf, &len, &eof) == NFS3_OK, "root reads its file");

        c.uid = 1000;
        c.gid = 1000;
        r = remove_name(12, &pub, "theirs", NULL);
        CHECK(r == NFS3ERR_PERM || r == NFS3ERR_ACCES,
              "the sticky bit keeps uid 1000 from removing root's file (%d)", r);
        CHECK(remove_name(12, &pub, "mine", NULL) == NFS3_OK, "uid 1000 removes its own file");
        c.uid = 0;
        c.gid = 0;
}

/* The byte at offset i of the file test_read_bulk() reads. */
static uint8_t bulk_byte(size_t i)
{
        return (uint8_t)(i * 131 + (i >> 12) * 7 + (i >> 20));
}

/* READ data goes from the file to the socket through a pipe: ranges off a
 * page boundary (one page more than the pipe holds), odd lengths, and
 * replies a client lets pile up (copied out of the pipe into the queue)
 * all carry the file's bytes. */
static void test_read_bulk(const char *export, int port)
{
        enum { N_PIPELINED = 10 };
        static const struct {
                uint64_t off;
                uint32_t count;
        } ranges[] = {{0, 1 << 20},
                      {1000, 1 << 20},
                      {4095, (1 << 20) - 3},
                      {3 << 20, 1 << 20},
                      {(4 << 20) + 100, 1 << 20}};
        const size_t size = (4 << 20) + 123;
        uint8_t *data = malloc(size), *buf = malloc(1 << 20);
        struct rc p = {.fd = -1};
        struct fh f;
        uint32_t xids[N_PIPELINED];
        char path[4200];
        bool ok = true;
        int fd;

        if (!data || !buf)
                exit(1);
        for (size_t i = 0; i < size; i++)
                data[i] = bulk_byte(i);
        snprintf(path, sizeof(path), "%s/bulk", export);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, data, size) != (ssize_t)size || close(fd) < 0)
                exit(1);
        CHECK(lookup(&c, &root, "bulk", &f, NULL) == NFS3_OK, "LOOKUP of a 4 MiB file");
        for (size_t k = 0; k < sizeof(ranges) / sizeof(ranges[0]); k++) {
                uint64_t off = ranges[k].off;
                uint32_t want = off >= size                    ? 0
                                : ranges[k].count < size - off ? ranges[k].count
                                                               : (uint32_t)(size - off),
                         len;
                bool eof;
                int r = read_file(&f, off, ranges[k].count, buf, &len, &eof);

                CHECK(r == NFS3_OK && len == want && memcmp(buf, data + off, len) == 0 &&
                          eof == (off + len >= size),
                      "READ of %" PRIu32 " bytes at %" PRIu64 " returns %" PRIu32
                      " bytes of the file",
                      ranges[k].count, off, want);
        }

        /* Calls sent without reading a reply: the socket fills and the
         * rest of the replies waits in the server's queue (less than the
         * 16 MiB a client may let pile up). */
        if (rc_connect(&p, port) < 0)
                exit(1);
        for (int k = 0; k < N_PIPELINED; k++) {
                static uint8_t m[4096];
                READ3args a = {.file = fh_arg(&f),
                               .offset = (uint64_t)k * 333331 % size,
                               .count = (1 << 20) - (uint32_t)k};
                size_t n = rc_build_call(&p, NFS3_PROGRAM, NFS3_VERSION, 6, X(READ3args), &a, m,
                                         sizeof(m));

                xids[k] = p.xid;
                ok = ok && rc_send_record(&p, m, n) == 0;
        }
        sleep(1);
        for (int k = 0; k < N_PIPELINED && ok; k++) {
                READ3res res = {};
                struct rpc_msg msg = {
                    .acpted_rply.ar_results = {.where = (caddr_t)&res, .proc = X(READ3res)}};
                void *rep;
                size_t rep_len;
                int i;
                XDR x;

                if (rc_recv_record(&p, &rep, &rep_len) < 0) {
                        ok = false;
                        break;
                }
                xdrmem_create(&x, rep, (u_int)rep_len, XDR_DECODE);
                ok = xdr_replymsg(&x, &msg) && msg.acpted_rply.ar_stat == SUCCESS &&
                     res.status == NFS3_OK;
                for (i = 0; ok && i < N_PIPELINED && xids[i] != msg.rm_xid; i++)
                        ;
                if (ok && i < N_PIPELINED) {
                        uint64_t off = (uint64_t)i * 333331 % size;
                        size_t want = (1 << 20) - (size_t)i;

                        if (want > size - off)
                                want = size - off;

                        ok = res.READ3res_u.resok.data.data_len == want &&
                             memcmp(res.READ3res_u.resok.data.data_val, data + off, want) == 0;
                        xids[i] = 0;
                } else
                        ok = false;
                rc_free(X(READ3res), &res);
                free(rep);
        }
        CHECK(ok,
              "%d pipelined 1 MiB READs, answered while the client was not reading, carry "
              "the file's bytes",
              N_PIPELINED);
        rc_close(&p);
        free(data);
        free(buf);
}

static int exists(const char *root_dir, const char *name)
{
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", root_dir, name);
        return access(path, F_OK) == 0;
}

int main(void)
{
        struct tmp t;
        struct server srv;
        struct fh f;
        fattr3 attr;
        WRITE3resok w1, w2;
        int r;

        if (geteuid() != 0)
                tap_skip_all("needs root (open_by_handle_at needs CAP_DAC_READ_SEARCH)");
        tmp_setup(&t);
        const char *args[] = {"--state-dir", t.state, t.export, NULL};
        server_start(&srv, args);
        if (rc_connect(&c, srv.port) < 0) {
                tap_diag("cannot connect: %m");
                return 1;
        }
        test_mount_and_portmap(&srv);
        test_fs_procedures(t.export);
        test_confinement(t.root, t.export);
        test_credentials();
        test_read_bulk(t.export, srv.port);
        CHECK(!exists(t.root, "x") && !exists(t.root, "secret2"), "nothing appeared outside");

        /* Restart: handles survive, the write verifier changes. */
        CHECK(lookup(&c, &root, "moved", &f, NULL) == NFS3_OK, "handle before restart");
        r = write_file(&f, 0, "a", 1, UNSTABLE, &w1);
        rc_close(&c);
        CHECK(server_stop(&srv) == 0, "SIGTERM stops the server with status 0");
        server_start(&srv, args);
        rc_connect(&c, srv.port);
        r = getattr(&c, &f, &attr);
        CHECK(r == NFS3_OK && attr.type == NF3REG, "a file handle is valid after a restart");
        CHECK(getattr(&c, &root, NULL) == NFS3_OK, "the root handle is valid after a restart");
        r = write_file(&f, 0, "a", 1, UNSTABLE, &w2);
        CHECK(r == NFS3_OK && memcmp(w1.verf, w2.verf, 8) != 0,
              "the write verifier changed across the restart");
        rc_close(&c);
        CHECK(server_stop(&srv) == 0, "stops cleanly");

        /* A new key (state dir) makes the old handles invalid. */
        const char *args2[] = {"--state-dir", t.root, t.export, NULL};
        server_start(&srv, args2);
        rc_connect(&c, srv.port);
        CHECK(getattr(&c, &f, NULL) == NFS3ERR_BADHANDLE,
              "a handle made under another key is NFS3ERR_BADHANDLE");
        rc_close(&c);
        server_stop(&srv);
        return tap_done();
}
