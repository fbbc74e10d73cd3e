/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "changes.h"
#include "cleanup.h"
#include "fs.h"
#include "manifest.h"
#include "sha256.h"
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

static void put(int dfd, const char *path, const char *data, size_t len)
{
        _cleanup_close_ int fd = -1;

        assert_int_equal(mkdir_parents_at(dfd, path, 0755), 0);
        fd = openat(dfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t)len);
}

static char *slurp(int dfd, const char *path)
{
        char *text = NULL;

        assert_int_equal(read_file_at(dfd, path, 1 << 20, &text, NULL), 0);
        return text;
}

/* A size hint (exact, missing, too small, too large) never changes the
 * digest: a small file is read in one call, the rest as before. */
static void test_sha256_size_hint(void **state)
{
        _cleanup_close_ int root = open(*state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        static const size_t sizes[] = {0, 5, 65536, 65537, 200000};
        _cleanup_free_ char *big = malloc(200000);

        assert_true(root >= 0 && big);
        for (size_t i = 0; i < 200000; i++)
                big[i] = (char)(i * 7);
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
                char want[SHA256_HEX_SIZE], got[SHA256_HEX_SIZE];
                const int64_t hints[] = {(int64_t)sizes[k], -1, sizes[k] / 2,
                                         (int64_t)sizes[k] + 10};

                sha256_hex(big, sizes[k], want);
                put(root, "f", big, sizes[k]);
                for (size_t h = 0; h < sizeof(hints) / sizeof(hints[0]); h++) {
                        _cleanup_close_ int fd = openat(root, "f", O_RDONLY | O_CLOEXEC);

                        assert_true(fd >= 0);
                        assert_int_equal(sha256_fd_hex(fd, hints[h], got), 0);
                        assert_string_equal(got, want);
                }
        }
}

/* The manifest built by the capture's walk is the one a walk of its own
 * writes; a pruned subtree that changed is rescanned. */
static void test_built_by_capture(void **state)
{
        _cleanup_(change_list_done) struct change_list l = {};
        _cleanup_(manifest_freep) struct manifest *mf = NULL;
        _cleanup_free_ char *walked = NULL, *built = NULL, *walked2 = NULL, *built2 = NULL;
        _cleanup_close_ int root = open(*state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char *const prune[] = {(char *)"/var/lib/st", NULL};

        assert_true(root >= 0);
        put(root, "up/etc/a", "alpha", 5);
        put(root, "up/etc/new\nline", "odd name", 8);
        put(root, "up/opt/app/bin/tool", "#!/bin/sh\n", 10);
        put(root, "up/var/lib/st/data", "state", 5);
        assert_int_equal(symlinkat("../etc/a", root, "up/opt/link"), 0);
        assert_int_equal(fchmodat(root, "up/opt/app/bin/tool", 04755, 0), 0);

        mf = manifest_new();
        assert_non_null(mf);
        assert_int_equal(
            changes_capture_visit_at(root, "up", NULL, 0, prune, manifest_visit, mf, &l), 0);
        /* the state's content leaves the tree after the capture */
        assert_int_equal(unlinkat(root, "up/var/lib/st/data", 0), 0);
        assert_int_equal(manifest_rescan_at(mf, root, "up/var/lib/st", "/var/lib/st"), 0);
        assert_int_equal(manifest_save_at(mf, root, "built"), 0);
        assert_int_equal(manifest_write_at(root, "up", root, "walked"), 0);
        built = slurp(root, "built");
        walked = slurp(root, "walked");
        assert_string_equal(built, walked);
        assert_non_null(strstr(built, " /opt/app/bin/tool\n"));
        assert_non_null(strstr(built, "f 4755 "));
        assert_non_null(strstr(built, " /etc/new\\nline\n"));
        assert_null(strstr(built, "/var/lib/st/data"));
        assert_non_null(strstr(built, " /var/lib/st\n"));

        /* a path through a symlink is not in the tree: never followed */
        assert_int_equal(symlinkat("/etc", root, "up/hostetc"), 0);
        assert_int_equal(manifest_add_at(root, "up/hostetc", "/hostetc",
                                         &(struct stat){.st_mode = S_IFLNK | 0777, .st_size = 4},
                                         mf),
                         0);
        assert_int_equal(manifest_rescan_at(mf, root, "up/hostetc/passwd", "/hostetc/passwd"), 0);

        /* a subtree gone entirely is dropped with what was below it */
        assert_int_equal(rm_rf_at(root, "up/opt/app", RM_ROOT), 0);
        assert_int_equal(manifest_rescan_at(mf, root, "up/opt/app", "/opt/app"), 0);
        assert_int_equal(manifest_save_at(mf, root, "built2"), 0);
        assert_int_equal(manifest_write_at(root, "up", root, "walked2"), 0);
        built2 = slurp(root, "built2");
        walked2 = slurp(root, "walked2");
        assert_string_equal(built2, walked2);
        assert_null(strstr(built2, "/opt/app"));
        assert_null(strstr(built2, "/hostetc/passwd"));
        assert_non_null(strstr(built2, " /hostetc\n"));
}

TEST_MAIN(cmocka_unit_test_setup_teardown(test_sha256_size_hint, setup, teardown),
          cmocka_unit_test_setup_teardown(test_built_by_capture, setup, teardown))
