/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* strata-nfsd's child cache: a recorded entry answers while its name names
 * the same object, and never once the name is removed, replaced or moved,
 * or the entry forgotten or expired. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "childcache.h"
#include "cleanup.h"
#include "tests.h"

static char *dir;
static int dirfd_ = -1, mount_id;
static struct childcache *cc;
static const struct fhandle parent = {.type = 1, .len = 4, .bytes = {1, 2, 3, 4}};
static const uint8_t wire[8] = {9, 8, 7, 6, 5, 4, 3, 2};

static int setup(void **state)
{
        struct {
                struct file_handle fh;
                unsigned char buf[MAX_HANDLE_SZ];
        } kh;

        dir = test_tmpdir();
        dirfd_ = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        assert_true(dirfd_ >= 0);
        kh.fh.handle_bytes = MAX_HANDLE_SZ;
        assert_int_equal(name_to_handle_at(dirfd_, "", &kh.fh, &mount_id, AT_EMPTY_PATH), 0);
        cc = childcache_new();
        assert_non_null(cc);
        return 0;
}

static int teardown(void **state)
{
        cc = childcache_free(cc);
        dirfd_ = safe_close(dirfd_);
        test_tmpdir_remove(dir);
        return 0;
}

/* Creates name (a file) and records it. */
static void add(const char *name)
{
        struct stat st;
        int fd;

        test_write(dirfd_, name, "x");
        fd = openat(dirfd_, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(fstat(fd, &st), 0);
        childcache_add(cc, &parent, name, fd, &st, wire, sizeof(wire));
}

static int lookup(const char *name, struct stat *st)
{
        uint8_t h[FHANDLE_MAX];
        int n = childcache_lookup(cc, &parent, dirfd_, name, mount_id, h, st);

        if (n > 0) {
                assert_int_equal(n, sizeof(wire));
                assert_memory_equal(h, wire, sizeof(wire));
        }
        return n;
}

static void test_hit(void **state)
{
        struct stat st, now;
        const struct fhandle other = {.type = 1, .len = 4, .bytes = {1, 2, 3, 5}};
        uint8_t h[FHANDLE_MAX];

        add("f");
        assert_int_equal(lookup("f", &st), sizeof(wire));
        assert_int_equal(fstatat(dirfd_, "f", &now, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(st.st_ino, now.st_ino);
        assert_int_equal(st.st_size, 1);
        assert_true(S_ISREG(st.st_mode));
        /* Another directory, another name, the wrong mount: misses. */
        assert_int_equal(childcache_lookup(cc, &other, dirfd_, "f", mount_id, h, &st), 0);
        assert_int_equal(lookup("g", &st), 0);
        assert_int_equal(childcache_lookup(cc, &parent, dirfd_, "f", mount_id + 1, h, &st), 0);
        /* The failed check dropped the entry. */
        assert_int_equal(lookup("f", &st), 0);
}

static void test_changed(void **state)
{
        struct stat st;

        /* Replaced by another file: the cached fd pins the old inode, so
         * its number cannot be the new file's. */
        add("f");
        assert_int_equal(unlinkat(dirfd_, "f", 0), 0);
        test_write(dirfd_, "f", "y");
        assert_int_equal(lookup("f", &st), 0);

        add("g");
        assert_int_equal(unlinkat(dirfd_, "g", 0), 0);
        assert_int_equal(lookup("g", &st), 0);

        add("h");
        assert_int_equal(renameat(dirfd_, "h", dirfd_, "i"), 0);
        assert_int_equal(lookup("h", &st), 0);
        assert_int_equal(lookup("i", &st), 0);

        add("j");
        childcache_forget(cc, &parent, "j");
        assert_int_equal(lookup("j", &st), 0);

        add("k");
        usleep(20 * 1000);
        childcache_expire(cc, 0);
        assert_int_equal(lookup("k", &st), 0);
}

static void test_full(void **state)
{
        char name[32], first[32];
        struct stat st;
        int hits = 0;

        /* More entries than room: the least recently used go. */
        for (int i = 0; i < CHILDCACHE_SIZE * 2; i++) {
                snprintf(name, sizeof(name), "n%d", i);
                add(name);
        }
        for (int i = 0; i < CHILDCACHE_SIZE * 2; i++) {
                snprintf(name, sizeof(name), "n%d", i);
                hits += lookup(name, &st) > 0;
        }
        assert_int_equal(hits, CHILDCACHE_SIZE);
        /* Which by use, not by the clock (all came within a few ms): the
         * last ones added are there, and one looked up stays when more
         * come. */
        for (int i = CHILDCACHE_SIZE; i < CHILDCACHE_SIZE * 2; i++) {
                snprintf(name, sizeof(name), "n%d", i);
                assert_int_equal(lookup(name, &st), sizeof(wire));
        }
        snprintf(first, sizeof(first), "n%d", CHILDCACHE_SIZE);
        assert_int_equal(lookup(first, &st), sizeof(wire));
        for (int i = 0; i < CHILDCACHE_SIZE - 1; i++) {
                snprintf(name, sizeof(name), "m%d", i);
                add(name);
        }
        assert_int_equal(lookup(first, &st), sizeof(wire));
        assert_int_equal(lookup("m0", &st), sizeof(wire));
}

static void test_long_name(void **state)
{
        char name[CHILDCACHE_NAME_MAX + 2];
        struct stat st;

        /* Not kept (its fd closed). */
        memset(name, 'l', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        add(name);
        assert_int_equal(lookup(name, &st), 0);
}

TEST_MAIN(cmocka_unit_test_setup_teardown(test_hit, setup, teardown),
          cmocka_unit_test_setup_teardown(test_changed, setup, teardown),
          cmocka_unit_test_setup_teardown(test_full, setup, teardown),
          cmocka_unit_test_setup_teardown(test_long_name, setup, teardown))
