/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "macro.h"
#include "tests.h"

static int setup(void **state)
{
        *state = test_tmpdir();
        return 0;
}

static int teardown(void **state)
{
        test_tmpdir_remove(*state);
        return 0;
}

static int open_dir(const char *p)
{
        int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        return fd;
}

static void test_mkdir_p(void **state)
{
        _cleanup_close_ int fd = open_dir(*state);
        struct stat st;

        assert_int_equal(mkdir_p_at(fd, "a/b//c/", 0755), 0);
        assert_int_equal(fstatat(fd, "a/b/c", &st, 0), 0);
        assert_true(S_ISDIR(st.st_mode));
        /* idempotent */
        assert_int_equal(mkdir_p_at(fd, "a/b/c", 0755), 0);
        /* a file in the way */
        test_write(fd, "a/file", "x");
        assert_int_equal(mkdir_p_at(fd, "a/file/sub", 0755), -ENOTDIR);
        assert_int_equal(mkdir_p_at(fd, "", 0755), -EINVAL);
        assert_int_equal(mkdir_parents_at(fd, "p/q/r", 0755), 0);
        assert_int_equal(fstatat(fd, "p/q", &st, 0), 0);
        assert_int_equal(fstatat(fd, "p/q/r", &st, 0), -1);
}

static void test_atomic_write_and_read(void **state)
{
        _cleanup_close_ int fd = open_dir(*state);
        _cleanup_free_ char *data = NULL;
        size_t len;
        struct stat st;
        DIR *d;
        struct dirent *de;
        int entries = 0;

        assert_int_equal(write_file_atomic_at(fd, "f", "hello", 5, 0600), 0);
        assert_int_equal(read_file_at(fd, "f", 100, &data, &len), 0);
        assert_int_equal(len, 5);
        assert_string_equal(data, "hello");
        free(TAKE_PTR(data));
        assert_int_equal(fstatat(fd, "f", &st, 0), 0);
        assert_int_equal(st.st_mode & 0777, 0600);

        /* replace: readers see the whole new content */
        assert_int_equal(write_file_atomic_at(fd, "f", "bye", 3, 0644), 0);
        assert_int_equal(read_file_at(fd, "f", 100, &data, NULL), 0);
        assert_string_equal(data, "bye");
        free(TAKE_PTR(data));

        /* no temp file is left behind */
        d = opendir(*state);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        entries++;
                else
                        assert_true(strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0);
        closedir(d);
        assert_int_equal(entries, 1);

        /* limits and errors */
        assert_int_equal(read_file_at(fd, "f", 2, &data, NULL), -EFBIG);
        assert_int_equal(read_file_at(fd, "missing", 10, &data, NULL), -ENOENT);
        assert_int_equal(read_file_at(fd, ".", 10, &data, NULL), -EISDIR);
        assert_int_equal(write_file_atomic_at(fd, "nodir/f", "x", 1, 0644), -ENOENT);
        assert_null(data);

        /* /proc files report size 0 but have content */
        assert_int_equal(read_file_at(AT_FDCWD, "/proc/self/mountinfo", 1 << 20, &data, &len), 0);
        assert_true(len > 0);
}

/* Writers killed at random points: the file is always one whole version and,
 * where the filesystem has O_TMPFILE, no partly written temp file is left
 * behind. A writer killed in the instant between giving the finished temp
 * file its name and renaming it over the target leaves that name, holding
 * one whole version: nothing can close that window (linkat() cannot replace
 * a file), and how often a kill lands in it depends on the filesystem's
 * speed, so such leftovers are allowed but must be whole. */
static void test_atomic_write_survives_sigkill(void **state)
{
        _cleanup_close_ int fd = open_dir(*state);
        static char big[256 * 1024];
        struct dirent *de;
        DIR *d;
        int others = 0;

        assert_int_equal(write_file_atomic_at(fd, "f", "A", 1, 0644), 0);
        for (int round = 0; round < 20; round++) {
                _cleanup_free_ char *data = NULL;
                size_t len;
                int status;
                pid_t pid = fork();

                assert_true(pid >= 0);
                if (pid == 0) {
                        for (char c = 'B';; c = c == 'Z' ? 'B' : c + 1) {
                                memset(big, c, sizeof(big));
                                if (write_file_atomic_at(fd, "f", big, sizeof(big), 0644) < 0)
                                        _exit(1);
                        }
                }
                usleep(2000 + round * 500);
                kill(pid, SIGKILL);
                assert_int_equal(waitpid(pid, &status, 0), pid);
                assert_true(WIFSIGNALED(status));
                assert_int_equal(read_file_at(fd, "f", sizeof(big), &data, &len), 0);
                assert_true(len == 1 || len == sizeof(big));
                for (size_t i = 1; i < len; i++)
                        assert_int_equal(data[i], data[0]);
        }
        d = opendir(*state);
        assert_non_null(d);
        while ((de = readdir(d))) {
                _cleanup_free_ char *data = NULL;
                size_t len;

                if (streq(de->d_name, ".") || streq(de->d_name, "..") || streq(de->d_name, "f"))
                        continue;
                others++;
                assert_true(startswith(de->d_name, ".#f."));
                assert_int_equal(read_file_at(fd, de->d_name, sizeof(big), &data, &len), 0);
                assert_int_equal(len, sizeof(big));
                for (size_t i = 1; i < len; i++)
                        assert_int_equal(data[i], data[0]);
        }
        closedir(d);
        assert_true(others <= 20);
}

static void test_rm_rf(void **state)
{
        _cleanup_close_ int fd = open_dir(*state);
        struct stat st;

        test_write(fd, "t/a/b/c", "1");
        test_write(fd, "t/a/d", "2");
        assert_int_equal(symlinkat("/etc/passwd", fd, "t/link"), 0);
        assert_int_equal(mkdir_p_at(fd, "t/ro", 0755), 0);
        test_write(fd, "t/ro/file", "3");
        assert_int_equal(fchmodat(fd, "t/ro", 0500, 0), 0);

        /* without RM_ROOT the dir itself stays */
        assert_int_equal(rm_rf_at(fd, "t", 0), 0);
        assert_int_equal(fstatat(fd, "t", &st, 0), 0);
        assert_int_equal(fstatat(fd, "t/a", &st, 0), -1);
        /* the symlink's target was not touched */
        assert_int_equal(stat("/etc/passwd", &st), 0);

        assert_int_equal(rm_rf_at(fd, "t", RM_ROOT), 0);
        assert_int_equal(fstatat(fd, "t", &st, 0), -1);
        assert_int_equal(rm_rf_at(fd, "t", RM_ROOT), -ENOENT);
        assert_int_equal(rm_rf_at(fd, "t", RM_ROOT | RM_MISSING_OK), 0);

        /* a plain file needs RM_ROOT */
        test_write(fd, "plain", "x");
        assert_int_equal(rm_rf_at(fd, "plain", 0), -ENOTDIR);
        assert_int_equal(rm_rf_at(fd, "plain", RM_ROOT), 0);
}

/* In a private mount namespace: a tmpfs inside the tree must survive rm_rf. */
static void test_rm_rf_never_crosses_mounts(void **state)
{
        const char *dir = *state;
        pid_t pid;
        int status;

        if (geteuid() != 0) {
                skip();
                return;
        }
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char sub[4096], inner[4200];
                int fd;
                struct stat st;

                if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
                        _exit(77);
                snprintf(sub, sizeof(sub), "%s/tree/mnt", dir);
                fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (mkdir_p_at(fd, "tree/mnt", 0755) < 0 || mount("tmpfs", sub, "tmpfs", 0, NULL))
                        _exit(10);
                snprintf(inner, sizeof(inner), "%s/keep", sub);
                if (write_file_atomic_at(AT_FDCWD, inner, "k", 1, 0644) < 0)
                        _exit(11);
                test_write(fd, "tree/other/x", "x");
                /* refuses to cross, removes everything else, reports -EXDEV */
                if (rm_rf_at(fd, "tree", RM_ROOT) != -EXDEV)
                        _exit(12);
                if (stat(inner, &st) < 0)
                        _exit(13);
                if (fstatat(fd, "tree/other", &st, 0) == 0)
                        _exit(14);
                _exit(0);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) == 77) {
                skip();
                return;
        }
        assert_int_equal(WEXITSTATUS(status), 0);
}

static void assert_same_meta(int a, int b, const char *path)
{
        struct stat x, y;

        assert_int_equal(fstatat(a, path, &x, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(fstatat(b, path, &y, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(x.st_mode, y.st_mode);
        assert_int_equal(x.st_uid, y.st_uid);
        assert_int_equal(x.st_gid, y.st_gid);
        assert_int_equal(x.st_size, y.st_size);
        assert_int_equal(x.st_rdev, y.st_rdev);
        assert_int_equal(x.st_mtim.tv_sec, y.st_mtim.tv_sec);
        assert_int_equal(x.st_mtim.tv_nsec, y.st_mtim.tv_nsec);
}

static void test_copy_tree_preserves_everything(void **state)
{
        _cleanup_close_ int fd = open_dir(*state), s = -1, d = -1;
        _cleanup_free_ char *data = NULL;
        struct timespec old[2] = {{1000000000, 123456789}, {1000000001, 987654321}};
        struct stat st1, st2;
        char buf[64];
        ssize_t n;
        bool root = geteuid() == 0;

        test_write(fd, "src/dir/file", "content");
        assert_int_equal(fchmodat(fd, "src/dir/file", 04751, 0), 0);
        test_write(fd, "src/secret", "s");
        assert_int_equal(fchmodat(fd, "src/secret", 0600, 0), 0);
        assert_int_equal(linkat(fd, "src/dir/file", fd, "src/hardlink", 0), 0);
        assert_int_equal(symlinkat("dir/file", fd, "src/sym"), 0);
        assert_int_equal(symlinkat("/dangling/target", fd, "src/dangling"), 0);
        assert_int_equal(mkfifoat(fd, "src/fifo", 0640), 0);
        assert_int_equal(mkdir_p_at(fd, "src/empty", 0700), 0);
        assert_int_equal(fchmodat(fd, "src/empty", 0555, 0), 0);
        assert_int_equal(utimensat(fd, "src/dir/file", old, 0), 0);
        assert_int_equal(utimensat(fd, "src/sym", old, AT_SYMLINK_NOFOLLOW), 0);
        if (root) {
                char p[4096];
                /* an overlay whiteout and an opaque dir */
                assert_int_equal(mknodat(fd, "src/whiteout", S_IFCHR | 0000, makedev(0, 0)), 0);
                assert_int_equal(fchownat(fd, "src/secret", 1234, 5678, 0), 0);
                snprintf(p, sizeof(p), "%s/src/dir", (char *)*state);
                assert_int_equal(setxattr(p, "trusted.overlay.opaque", "y", 1, 0), 0);
                snprintf(p, sizeof(p), "%s/src/sym", (char *)*state);
                assert_int_equal(lsetxattr(p, "trusted.test", "on-link", 7, 0), 0);
        }
        assert_int_equal(utimensat(fd, "src/dir", old, 0), 0);

        assert_int_equal(copy_tree_at(fd, "src", fd, "dst", COPY_ALL), 0);

        s = openat(fd, "src", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        d = openat(fd, "dst", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        static const char *const paths[] = {"dir", "dir/file", "secret", "hardlink",
                                            "sym", "dangling", "fifo",   "empty"};
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
                assert_same_meta(s, d, paths[i]);
        assert_int_equal(read_file_at(d, "dir/file", 100, &data, NULL), 0);
        assert_string_equal(data, "content");
        /* the hard link is a hard link again */
        assert_int_equal(fstatat(d, "dir/file", &st1, 0), 0);
        assert_int_equal(fstatat(d, "hardlink", &st2, 0), 0);
        assert_int_equal(st1.st_ino, st2.st_ino);
        assert_int_equal(st1.st_nlink, 2);
        n = readlinkat(d, "dangling", buf, sizeof(buf) - 1);
        assert_int_equal(n, strlen("/dangling/target"));
        if (root) {
                char p[4096];
                assert_same_meta(s, d, "whiteout");
                snprintf(p, sizeof(p), "%s/dst/dir", (char *)*state);
                n = getxattr(p, "trusted.overlay.opaque", buf, sizeof(buf));
                assert_int_equal(n, 1);
                assert_int_equal(buf[0], 'y');
                snprintf(p, sizeof(p), "%s/dst/sym", (char *)*state);
                n = lgetxattr(p, "trusted.test", buf, sizeof(buf));
                assert_int_equal(n, 7);
                assert_memory_equal(buf, "on-link", 7);
        }

        /* the destination must not exist unless merging */
        assert_int_equal(copy_tree_at(fd, "src", fd, "dst", COPY_ALL), -EEXIST);
        test_write(fd, "src2/dir/new", "new");
        test_write(fd, "src2/secret", "replaced");
        assert_int_equal(copy_tree_at(fd, "src2", fd, "dst", COPY_ALL | COPY_MERGE), 0);
        free(TAKE_PTR(data));
        assert_int_equal(read_file_at(d, "secret", 100, &data, NULL), 0);
        assert_string_equal(data, "replaced");
        assert_int_equal(fstatat(d, "dir/file", &st1, 0), 0);
        assert_int_equal(fstatat(d, "dir/new", &st1, 0), 0);

        /* a single file copies too */
        assert_int_equal(copy_tree_at(fd, "src/secret", fd, "one", COPY_ALL), 0);
        assert_same_meta(fd, fd, "one");
        assert_int_equal(copy_tree_at(fd, "nope", fd, "x", COPY_ALL), -ENOENT);
}

static void test_mkdtemp_malloc(void **state)
{
        char *p = NULL;
        struct stat st;

        assert_int_equal(mkdtemp_malloc("strata-x", &p), 0);
        assert_non_null(strstr(p, "/strata-x-"));
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0700);
        rmdir(p);
        free(p);
}

TEST_MAIN(cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
          cmocka_unit_test_setup_teardown(test_atomic_write_and_read, setup, teardown),
          cmocka_unit_test_setup_teardown(test_atomic_write_survives_sigkill, setup, teardown),
          cmocka_unit_test_setup_teardown(test_rm_rf, setup, teardown),
          cmocka_unit_test_setup_teardown(test_rm_rf_never_crosses_mounts, setup, teardown),
          cmocka_unit_test_setup_teardown(test_copy_tree_preserves_everything, setup, teardown),
          cmocka_unit_test(test_mkdtemp_malloc))
