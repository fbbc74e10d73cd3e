/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A layer tree to a tar and back: the same bytes twice, the same tree
 * back (manifest, times, xattrs, whiteouts, opaque dirs, links), and what
 * both directions refuse. Whiteouts and trusted.* need root. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "manifest.h"
#include "ocitar.h"
#include "tests.h"

static char *dir;
static int dfd = -1;

static int setup(void **state)
{
        dir = test_tmpdir();
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);
        return 0;
}

static int teardown(void **state)
{
        close(dfd);
        test_tmpdir_remove(dir);
        return 0;
}

static void make_tree(void)
{
        struct timespec ts[2] = {{1577934245, 123456789}, {1577934245, 123456789}};

        assert_int_equal(mkdir_p_at(dfd, "t/opt/app/sub", 0755), 0);
        test_write(dfd, "t/opt/app/file", "hello\n");
        assert_int_equal(fchownat(dfd, "t/opt/app/file", 123, 456, 0), 0);
        assert_int_equal(fchmodat(dfd, "t/opt/app/file", 04750, 0), 0);
        assert_int_equal(linkat(dfd, "t/opt/app/file", dfd, "t/opt/app/hard", 0), 0);
        assert_int_equal(symlinkat("file", dfd, "t/opt/app/link"), 0);
        assert_int_equal(mknodat(dfd, "t/opt/gone", S_IFCHR, makedev(0, 0)), 0);
        assert_int_equal(mkdir_p_at(dfd, "t/etc/skel", 0700), 0);
        test_write(dfd, "t/etc/skel/only", "x");
        assert_int_equal(utimensat(dfd, "t/opt/app/sub", ts, AT_SYMLINK_NOFOLLOW), 0);
        {
                _cleanup_close_ int fd = openat(dfd, "t/etc/skel", O_RDONLY | O_DIRECTORY);
                _cleanup_close_ int ffd = openat(dfd, "t/opt/app/file", O_RDONLY);

                assert_int_equal(fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0), 0);
                assert_int_equal(fsetxattr(ffd, "user.note", "a note", 6, 0), 0);
        }
        /* a symlink's own xattrs (trusted.*: the kernel allows no user.* on
         * a symlink), beside its target's, and a fifo's */
        assert_int_equal(lsetxattr("t/opt/app/link", "trusted.link", "own", 3, 0), 0);
        assert_int_equal(mkfifoat(dfd, "t/opt/app/fifo", 0640), 0);
        assert_int_equal(lsetxattr("t/opt/app/fifo", "trusted.fifo", "pipe", 4, 0), 0);
}

static char *tree_manifest(const char *tree)
{
        _cleanup_free_ char *out = NULL, *text = NULL;

        assert_true(asprintf(&out, "%s.manifest", tree) > 0);
        assert_int_equal(manifest_write_at(dfd, tree, dfd, out), 0);
        assert_int_equal(read_file_at(dfd, out, 1 << 20, &text, NULL), 0);
        return TAKE_PTR(text);
}

static void pack(const char *tree, const char *file, struct oci_blob_info *ret)
{
        _cleanup_close_ int fd = openat(dfd, file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        _cleanup_free_ char *error = NULL;

        assert_true(fd >= 0);
        assert_int_equal(oci_tar_write_at(dfd, tree, fd, ret, &error), 0);
}

static int unpack(const char *file, const char *tree, const char *digest, char **ret_error)
{
        _cleanup_close_ int fd = openat(dfd, file, O_RDONLY | O_CLOEXEC);

        assert_true(fd >= 0);
        assert_int_equal(mkdirat(dfd, tree, 0755), 0);
        return oci_tar_extract_at(fd, dfd, tree, digest, NULL, ret_error);
}

static void test_round_trip(void **state)
{
        _cleanup_free_ char *a = NULL, *b = NULL, *error = NULL;
        struct oci_blob_info one, two, back;
        char v[16];
        struct stat st;
        ssize_t n;
        _cleanup_close_ int fd = -1, sfd = -1;

        assert_int_equal(fchdir(dfd), 0);
        make_tree();
        pack("t", "one.tar", &one);
        pack("t", "two.tar", &two);
        assert_string_equal(one.digest, two.digest);
        assert_int_equal(unpack("one.tar", "u", one.digest, &error), 0);
        a = tree_manifest("t");
        b = tree_manifest("u");
        assert_string_equal(a, b);
        /* whiteout, opaque, times, xattrs, one inode for the hard link */
        assert_int_equal(fstatat(dfd, "u/opt/gone", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
        sfd = openat(dfd, "u/etc/skel", O_RDONLY | O_DIRECTORY);
        n = fgetxattr(sfd, "trusted.overlay.opaque", v, sizeof(v));
        assert_int_equal(n, 1);
        assert_int_equal(fstatat(dfd, "u/opt/app/sub", &st, 0), 0);
        assert_int_equal(st.st_mtim.tv_sec, 1577934245);
        assert_int_equal(st.st_mtim.tv_nsec, 123456789);
        fd = openat(dfd, "u/opt/app/file", O_RDONLY);
        n = fgetxattr(fd, "user.note", v, sizeof(v));
        assert_int_equal(n, 6);
        assert_memory_equal(v, "a note", 6);
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal(st.st_nlink, 2);
        n = lgetxattr("u/opt/app/link", "trusted.link", v, sizeof(v));
        assert_int_equal(n, 3);
        assert_memory_equal(v, "own", 3);
        assert_int_equal(lgetxattr("u/opt/app/link", "user.note", v, sizeof(v)), -1);
        n = lgetxattr("u/opt/app/fifo", "trusted.fifo", v, sizeof(v));
        assert_int_equal(n, 4);
        assert_memory_equal(v, "pipe", 4);
        /* and the unpacked tree packs to the same bytes */
        pack("u", "back.tar", &back);
        assert_string_equal(back.digest, one.digest);
}

static void test_refused(void **state)
{
        _cleanup_free_ char *error = NULL;
        struct oci_blob_info info;
        _cleanup_close_ int fd = -1;
        struct archive *a;
        struct archive_entry *e;

        assert_int_equal(fchdir(dfd), 0);
        /* a name the format would read as a marker */
        assert_int_equal(mkdir_p_at(dfd, "r/etc", 0755), 0);
        test_write(dfd, "r/etc/.wh.trick", "");
        fd = openat(dfd, "r.tar", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_int_equal(oci_tar_write_at(dfd, "r", fd, &info, &error), -EINVAL);
        assert_non_null(strstr(error, "etc/.wh.trick"));
        fd = safe_close(fd);

        /* a tar entry that leaves the tree, and a wrong digest */
        a = archive_write_new();
        archive_write_set_format_pax(a);
        assert_int_equal(archive_write_open_filename(a, "evil.tar"), ARCHIVE_OK);
        e = archive_entry_new();
        archive_entry_set_pathname(e, "../escape");
        archive_entry_set_mode(e, S_IFREG | 0644);
        archive_entry_set_size(e, 0);
        archive_write_header(a, e);
        archive_entry_free(e);
        archive_write_close(a);
        archive_write_free(a);
        free(error);
        error = NULL;
        assert_int_equal(unpack("evil.tar", "x", NULL, &error), -EINVAL);
        assert_non_null(strstr(error, "leaves the layer"));
        assert_int_equal(faccessat(dfd, "escape", F_OK, 0), -1);
}

static void test_digest(void **state)
{
        _cleanup_free_ char *error = NULL;
        struct oci_blob_info info;
        char bad[] = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

        assert_int_equal(fchdir(dfd), 0);
        assert_int_equal(mkdir_p_at(dfd, "d/x", 0755), 0);
        pack("d", "d.tar", &info);
        assert_int_equal(unpack("d.tar", "e", bad, &error), -EBADMSG);
        assert_non_null(strstr(error, info.digest));
        assert_non_null(strstr(error, bad));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
            cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
            cmocka_unit_test_setup_teardown(test_digest, setup, teardown),
        };

        if (geteuid() != 0)
                test_skip_all("needs root (whiteouts are char devices, trusted.* xattrs)");
        cmocka_set_message_output(CM_OUTPUT_TAP);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
