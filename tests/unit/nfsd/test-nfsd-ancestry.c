/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* strata-nfsd's ancestry cache: verdicts recorded and found, forgotten
 * when a cached directory moves (a real fanotify mark on a temp dir),
 * kept when another moves, and a walk that saw a move records nothing. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ancestry.h"
#include "cleanup.h"
#include "tests.h"

static char *dir;
static struct ancestry *a;

static struct fhandle handle_of(const char *name)
{
        struct {
                struct file_handle fh;
                unsigned char buf[MAX_HANDLE_SZ];
        } kh;
        struct fhandle h = {};
        char path[4200];
        int mount_id;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        kh.fh.handle_bytes = MAX_HANDLE_SZ;
        assert_int_equal(name_to_handle_at(AT_FDCWD, path, &kh.fh, &mount_id, 0), 0);
        assert_true(kh.fh.handle_bytes <= FHANDLE_KERNEL_MAX);
        h.type = kh.fh.handle_type;
        h.len = (uint8_t)kh.fh.handle_bytes;
        memcpy(h.bytes, kh.fh.f_handle, h.len);
        return h;
}

static void mv(const char *from, const char *to)
{
        char f[4200], t[4200];

        snprintf(f, sizeof(f), "%s/%s", dir, from);
        snprintf(t, sizeof(t), "%s/%s", dir, to);
        assert_int_equal(rename(f, t), 0);
}

/* Records a chain; a directory moved anywhere on the file system (this
 * machine is shared) in between makes a put a no-op, so try again. */
static void record(const struct fhandle *chain, size_t n, unsigned depth0)
{
        uint64_t epoch;

        for (int i = 0; i < 1000; i++) {
                ancestry_get(a, &chain[0], &epoch);
                ancestry_put(a, epoch, chain, n, depth0);
                if (ancestry_get(a, &chain[0], &epoch) == (int)depth0)
                        return;
        }
        fail_msg("the chain was never recorded");
}

static int setup(void **state)
{
        _cleanup_close_ int fd = -1;

        dir = test_tmpdir();
        fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(mkdirat(fd, "a", 0755), 0);
        assert_int_equal(mkdirat(fd, "a/b", 0755), 0);
        assert_int_equal(mkdirat(fd, "a/b/c", 0755), 0);
        assert_int_equal(mkdirat(fd, "x", 0755), 0);
        assert_int_equal(mkdirat(fd, "z", 0755), 0);
        if (ancestry_new(dir, &a) < 0) {
                test_tmpdir_remove(dir);
                test_skip_all("no fanotify here (needs CAP_SYS_ADMIN and a file system that "
                              "reports handles)");
        }
        return 0;
}

static int teardown(void **state)
{
        a = ancestry_free(a);
        test_tmpdir_remove(dir);
        return 0;
}

static void test_moves(void **state)
{
        struct fhandle chain[3] = {handle_of("a/b/c"), handle_of("a/b"), handle_of("a")};
        struct fhandle z = handle_of("z");
        uint64_t epoch, before;

        assert_int_equal(ancestry_get(a, &chain[0], &epoch), -ENOENT);
        record(chain, 3, 3);
        assert_int_equal(ancestry_get(a, &chain[0], &epoch), 3);
        assert_int_equal(ancestry_get(a, &chain[2], &epoch), 1);

        /* A walk (of z) during which an uncached directory moves records
         * nothing, and the cached verdicts stay. */
        assert_int_equal(ancestry_get(a, &z, &before), -ENOENT);
        mv("x", "y");
        ancestry_put(a, before, &z, 1, 1);
        assert_int_equal(ancestry_get(a, &z, &epoch), -ENOENT);
        assert_int_equal(ancestry_get(a, &chain[0], &epoch), 3);
        record(&z, 1, 1);

        /* A cached directory moves: every verdict goes. */
        mv("a/b", "b");
        assert_int_equal(ancestry_get(a, &chain[0], &epoch), -ENOENT);
        assert_int_equal(ancestry_get(a, &chain[2], &epoch), -ENOENT);
        assert_int_equal(ancestry_get(a, &z, &epoch), -ENOENT);
}

static void test_full(void **state)
{
        size_t n = 10000;
        _cleanup_free_ struct fhandle *chain = calloc(n, sizeof(*chain));
        struct fhandle probe;
        uint64_t epoch;

        assert_non_null(chain);
        for (size_t i = 0; i < n; i++) {
                chain[i] = (struct fhandle){.type = 0x7777, .len = 8};
                memcpy(chain[i].bytes, &i, sizeof(i));
        }
        record(chain, n, (unsigned)n);
        assert_int_equal(ancestry_get(a, &chain[n - 1], &epoch), 1);

        /* No room for another chain as long: the cache is emptied, not
         * trimmed (a trimmed chain would lose its ancestors). */
        for (size_t i = 0; i < n; i++)
                chain[i].type = 0x7778;
        ancestry_put(a, epoch, chain, n, (unsigned)n);
        assert_int_equal(ancestry_get(a, &chain[0], &epoch), -ENOENT);
        probe = chain[5];
        probe.type = 0x7777;
        assert_int_equal(ancestry_get(a, &probe, &epoch), -ENOENT);
}

TEST_MAIN(cmocka_unit_test_setup_teardown(test_moves, setup, teardown),
          cmocka_unit_test_setup_teardown(test_full, setup, teardown))
