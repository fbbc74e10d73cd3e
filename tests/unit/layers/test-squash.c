/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Squash against the kernel: layers are made by real overlay mounts, and the
 * root assembled from the squashed layer must equal the root assembled from
 * the layers it replaces (content, modes, owners, times, xattrs, symlinks,
 * deletions). Runs in a private mount namespace; needs root and overlayfs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "macro.h"
#include "squash.h"
#include "tests.h"

static char *dir;

static int setup(void **state)
{
        dir = test_tmpdir();
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                test_skip_all("needs root for a private mount namespace");
        return 0;
}

static int teardown(void **state)
{
        test_tmpdir_remove(dir);
        return 0;
}

static void sh(const char *fmt, ...) _printf_(1, 2);
static void sh(const char *fmt, ...)
{
        _cleanup_free_ char *cmd = NULL, *full = NULL;
        va_list ap;

        va_start(ap, fmt);
        assert_true(vasprintf(&cmd, fmt, ap) >= 0);
        va_end(ap);
        assert_true(asprintf(&full, "cd '%s' && set -e && %s", dir, cmd) >= 0);
        if (system(full) != 0)
                fail_msg("command failed: %s", cmd);
}

/* Mounts an overlay of lowers (":"-separated, relative to dir) at mnt, with
 * upper (NULL: read-only). */
static void overlay(const char *lowers, const char *upper, const char *mnt)
{
        _cleanup_free_ char *opts = NULL, *m = NULL;
        char cwd[4096];

        assert_non_null(getcwd(cwd, sizeof(cwd)));
        assert_int_equal(chdir(dir), 0);
        if (upper) {
                sh("mkdir -p %s %s.work %s", upper, upper, mnt);
                assert_true(asprintf(&opts, "lowerdir=%s,upperdir=%s,workdir=%s.work", lowers,
                                     upper, upper) >= 0);
        } else {
                sh("mkdir -p %s", mnt);
                assert_true(asprintf(&opts, "lowerdir=%s", lowers) >= 0);
        }
        if (mount("overlay", mnt, "overlay", 0, opts) < 0) {
                if (errno == ENODEV)
                        test_skip_all("the kernel has no overlayfs");
                fail_msg("cannot mount overlay %s on %s: %s", opts, mnt, strerror(errno));
        }
        assert_int_equal(chdir(cwd), 0);
}

static void unmount(const char *mnt)
{
        _cleanup_free_ char *p = NULL;

        assert_true(asprintf(&p, "%s/%s", dir, mnt) >= 0);
        assert_int_equal(umount2(p, 0), 0);
}

static void manifest_dir(FILE *f, int fd, const char *prefix)
{
        struct dirent **names = NULL;
        int n;
        _cleanup_close_ int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        char proc[64];

        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dup_fd);
        n = scandir(proc, &names, NULL, alphasort);
        assert_true(n >= 0);
        for (int i = 0; i < n; i++) {
                const char *name = names[i]->d_name;
                struct stat st;
                char xattrs[4096] = "", list[4096];
                ssize_t ln;

                if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
                        free(names[i]);
                        continue;
                }
                assert_int_equal(fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
                fprintf(f, "%s/%s mode=%o uid=%u gid=%u", prefix, name, st.st_mode,
                        (unsigned)st.st_uid, (unsigned)st.st_gid);
                if (!S_ISDIR(st.st_mode))
                        fprintf(f, " mtime=%lld.%09ld", (long long)st.st_mtim.tv_sec,
                                st.st_mtim.tv_nsec);
                if (S_ISLNK(st.st_mode)) {
                        char target[4096];
                        ssize_t t = readlinkat(fd, name, target, sizeof(target) - 1);
                        assert_true(t >= 0);
                        target[t] = 0;
                        fprintf(f, " -> %s", target);
                } else {
                        char p[4096];
                        snprintf(p, sizeof(p), "%s/%s", proc, name);
                        ln = llistxattr(p, list, sizeof(list));
                        for (ssize_t o = 0; ln > 0 && o < ln; o += (ssize_t)strlen(list + o) + 1)
                                if (strncmp(list + o, "user.", 5) == 0) {
                                        char v[256];
                                        ssize_t vl = lgetxattr(p, list + o, v, sizeof(v) - 1);
                                        v[vl > 0 ? vl : 0] = 0;
                                        strcat(xattrs, " ");
                                        strcat(xattrs, list + o);
                                        strcat(xattrs, "=");
                                        strcat(xattrs, v);
                                }
                        fputs(xattrs, f);
                }
                if (S_ISREG(st.st_mode)) {
                        _cleanup_free_ char *content = NULL;
                        assert_int_equal(read_file_at(fd, name, 1 << 20, &content, NULL), 0);
                        fprintf(f, " content=%s", content);
                }
                fputc('\n', f);
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_free_ char *sub = NULL;
                        _cleanup_close_ int cfd =
                            openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        assert_true(cfd >= 0);
                        assert_true(asprintf(&sub, "%s/%s", prefix, name) >= 0);
                        manifest_dir(f, cfd, sub);
                }
                free(names[i]);
        }
        free(names);
}

static char *manifest(const char *mnt)
{
        _cleanup_free_ char *p = NULL;
        _cleanup_close_ int fd = -1;
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        assert_true(asprintf(&p, "%s/%s", dir, mnt) >= 0);
        fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        f = open_memstream(&buf, &size);
        assert_non_null(f);
        manifest_dir(f, fd, "");
        fclose(f);
        return buf;
}

static void build_layers(void)
{
        sh("mkdir -p base/etc base/opt/app base/srv/data base/usr/bin && "
           "echo hosts > base/etc/hosts && echo motd > base/etc/motd && "
           "echo a > base/opt/app/a && echo b > base/opt/app/b && echo d > base/srv/data/d && "
           "echo tool > base/usr/bin/tool && chmod 755 base/usr/bin/tool && "
           "touch -d @1000000000 base/etc/hosts base/etc/motd base/opt/app/a");

        /* layer 1: add, modify, delete, owner, mode, xattr, symlink */
        overlay("base", "l1", "m");
        sh("echo new > m/etc/new && echo changed >> m/etc/hosts && rm m/etc/motd && "
           "chown 123:456 m/opt/app/a && chmod 600 m/opt/app/b && "
           "setfattr -n user.note -v one m/usr/bin/tool && ln -s ../etc/hosts m/opt/link && "
           "mkdir -p m/var/lib/x && echo x > m/var/lib/x/f");
        unmount("m");

        /* layer 2: delete a dir from layer 1, replace a base dir (opaque),
         * re-create the file layer 1 deleted, change a layer-1 file */
        overlay("l1:base", "l2", "m");
        sh("rm -rf m/var/lib/x && rm -rf m/opt/app && mkdir m/opt/app && echo c > m/opt/app/c && "
           "echo motd2 > m/etc/motd && echo newer > m/etc/new && "
           "setfattr -n user.note -v two m/usr/bin/tool && rm m/opt/link && "
           "ln -s /etc/motd m/opt/link && chmod 700 m/srv");
        unmount("m");

        /* layer 3: a dir over a deleted file, delete a base file, change a
         * dir in the opaque dir, file to dir */
        overlay("l2:l1:base", "l3", "m");
        sh("rm m/etc/hosts && mkdir m/etc/hosts && echo inside > m/etc/hosts/f && "
           "echo c2 > m/opt/app/c && rm -rf m/srv/data && mkdir -p m/srv/data/new && "
           "chown 7:7 m/srv/data/new && echo last > m/etc/new");
        unmount("m");
}

static void squash_layers(const char **layers, size_t n, const char *out)
{
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        assert_int_equal(squash_start_at(fd, layers[0], fd, out), 0);
        for (size_t i = 1; i < n; i++)
                assert_int_equal(squash_apply_at(fd, layers[i], fd, out), 0);
}

static void test_squash_all(void **state)
{
        _cleanup_free_ char *want = NULL, *got = NULL;
        const char *layers[] = {"l1", "l2", "l3"};

        build_layers();
        overlay("l3:l2:l1:base", NULL, "stack");
        want = manifest("stack");
        unmount("stack");
        /* sanity: the stack shows the changes */
        assert_non_null(strstr(want, "/etc/hosts/f mode"));
        assert_null(strstr(want, "/var/lib/x"));
        assert_null(strstr(want, "/opt/app/a "));
        assert_non_null(strstr(want, "user.note=two"));

        squash_layers(layers, 3, "s123");
        overlay("s123:base", NULL, "squashed");
        got = manifest("squashed");
        unmount("squashed");
        assert_string_equal(got, want);
}

static void test_squash_upper_part(void **state)
{
        _cleanup_free_ char *want = NULL, *got = NULL;
        const char *layers[] = {"l2", "l3"};

        build_layers();
        overlay("l3:l2:l1:base", NULL, "stack");
        want = manifest("stack");
        unmount("stack");

        squash_layers(layers, 2, "s23");
        overlay("s23:l1:base", NULL, "squashed");
        got = manifest("squashed");
        unmount("squashed");
        assert_string_equal(got, want);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_squash_all, setup, teardown),
            cmocka_unit_test_setup_teardown(test_squash_upper_part, setup, teardown),
        };

        if (geteuid() != 0)
                test_skip_all("needs root (overlay mounts)");
        if (system("command -v setfattr >/dev/null") != 0)
                test_skip_all("'setfattr' is not installed (Debian package attr)");
        cmocka_set_message_output(CM_OUTPUT_TAP);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
