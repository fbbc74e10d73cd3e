/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mountinfo.h"
#include "tests.h"

/* A fixed table: / then /a, then /a/b on it, then /a again on top of /a/b
 * (covering it), then /ab (a sibling name that must not count as "under /a"). */
static const char table[] =
    "20 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
    "30 20 0:40 / /a rw - tmpfs tmpfs rw,size=1024k\n"
    "31 30 0:41 / /a/b rw - tmpfs tmpfs rw\n"
    "32 30 0:42 / /a rw - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w\n"
    "40 20 0:43 / /ab rw - tmpfs tmpfs rw\n";

static char *write_table(const char *content)
{
        char *path = strdup("/tmp/test-mountinfo-XXXXXX");
        int fd = mkstemp(path);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
        close(fd);
        return path;
}

static void test_read_all_in_unmount_order(void **state)
{
        char *path = write_table(table);
        struct mount_list l = {};

        assert_int_equal(mountinfo_read(path, NULL, &l), 0);
        assert_int_equal(l.n, 5);
        /* newest first: what covers comes before what it covers */
        assert_int_equal(l.entries[0].id, 40);
        assert_int_equal(l.entries[1].id, 32);
        assert_int_equal(l.entries[2].id, 31);
        assert_int_equal(l.entries[3].id, 30);
        assert_int_equal(l.entries[4].id, 20);
        assert_string_equal(l.entries[1].fstype, "overlay");
        assert_non_null(strstr(l.entries[1].options, "lowerdir=/l"));
        assert_int_equal(l.entries[2].parent_id, 30);
        mount_list_done(&l);
        unlink(path);
        free(path);
}

static void test_under_filters_by_path_component(void **state)
{
        char *path = write_table(table);
        struct mount_list l = {};

        assert_int_equal(mountinfo_read(path, "/a", &l), 0);
        assert_int_equal(l.n, 3);
        for (size_t i = 0; i < l.n; i++)
                assert_string_not_equal(l.entries[i].target, "/ab");
        mount_list_done(&l);

        assert_int_equal(mountinfo_read(path, "/a/", &l), 0);
        assert_int_equal(l.n, 3);
        mount_list_done(&l);

        assert_int_equal(mountinfo_read(path, "/nothing", &l), 0);
        assert_int_equal(l.n, 0);
        mount_list_done(&l);
        unlink(path);
        free(path);
}

/* What the kernel escapes comes back as it was; an empty source stays
 * empty; the options are the per-mount and superblock ones, "ro" or "rw"
 * first (read-only if either is). */
static void test_fields_unescaped_options_merged(void **state)
{
        char *path =
            write_table("20 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
                        "30 20 0:40 /sub\\134dir /mnt/a\\040b ro,nosuid master:2 - tmpfs  "
                        "rw,size=4k\n");
        struct mount_list l = {};

        assert_int_equal(mountinfo_read(path, NULL, &l), 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.entries[0].target, "/mnt/a b");
        assert_string_equal(l.entries[0].root, "/sub\\dir");
        assert_string_equal(l.entries[0].source, "");
        assert_string_equal(l.entries[0].fstype, "tmpfs");
        assert_string_equal(l.entries[0].options, "ro,nosuid,size=4k");
        assert_int_equal(l.entries[0].parent_id, 20);
        assert_string_equal(l.entries[1].source, "/dev/sda1");
        assert_string_equal(l.entries[1].options, "rw,relatime,errors=remount-ro");
        mount_list_done(&l);
        assert_int_equal(mountinfo_read(path, "/mnt/a b", &l), 0);
        assert_int_equal(l.n, 1);
        mount_list_done(&l);
        unlink(path);
        free(path);
}

static void test_missing_file_is_error(void **state)
{
        struct mount_list l = {};

        assert_true(mountinfo_read("/nonexistent/mountinfo", NULL, &l) < 0);
        assert_null(l.entries);
}

static void test_other_formats_are_rejected(void **state)
{
        static const char *const bad[] = {
            "hello world\nfoo bar baz\n", "/dev/sda1 / ext4 defaults 0 1\n", /* fstab */
            "20 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\nroot:x:0:0:root:/root:/bin/sh\n",
            "20 1 8:1 / / rw,relatime ext4 /dev/sda1 rw\n", /* no separator */
        };
        struct mount_list l = {};
        unsigned line = 0;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char *path = write_table(bad[i]);

                assert_int_equal(mountinfo_read(path, NULL, &l), -EBADMSG);
                assert_null(l.entries);
                assert_int_equal(mountinfo_check_file(path, &line), -EBADMSG);
                assert_int_equal(line, i == 2 ? 2 : 1);
                unlink(path);
                free(path);
        }
        {
                /* a namespace file bound on a path has a root that is no path */
                char *path = write_table("20 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
                                         "57 20 0:4 net:[4026532281] /run/netns/x rw shared:5 - "
                                         "nsfs nsfs rw\n");
                assert_int_equal(mountinfo_check_file(path, &line), 0);
                unlink(path);
                free(path);
        }
        {
                char *path = write_table(table);
                assert_int_equal(mountinfo_check_file(path, &line), 0);
                unlink(path);
                free(path);
        }
        assert_int_equal(mountinfo_check_file("/nonexistent/mountinfo", &line), -ENOENT);
        assert_int_equal(mountinfo_check_file("/proc/self/mountinfo", &line), 0);
}

static void test_live_table_has_root(void **state)
{
        struct mount_list l = {};
        bool root = false;

        assert_int_equal(mountinfo_read(NULL, NULL, &l), 0);
        for (size_t i = 0; i < l.n; i++)
                if (strcmp(l.entries[i].target, "/") == 0)
                        root = true;
        assert_true(root);
        mount_list_done(&l);
        assert_int_equal(mountinfo_is_mountpoint("/"), 1);
        assert_int_equal(mountinfo_is_mountpoint("/proc/self"), 0);
        assert_int_equal(mountinfo_is_mountpoint("/nonexistent-path"), -ENOENT);
}

TEST_MAIN(cmocka_unit_test(test_read_all_in_unmount_order),
          cmocka_unit_test(test_under_filters_by_path_component),
          cmocka_unit_test(test_fields_unescaped_options_merged),
          cmocka_unit_test(test_missing_file_is_error),
          cmocka_unit_test(test_other_formats_are_rejected),
          cmocka_unit_test(test_live_table_has_root))
