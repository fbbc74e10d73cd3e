/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* strata-nfsd's authenticated file handles and the handle key file. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fhandle.h"
#include "fs.h"
#include "tests.h"

static struct fhandle sample(void)
{
        struct fhandle h = {.export_id = 0x01020304, .type = 1, .len = 8};

        memcpy(h.bytes, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
        return h;
}

static void test_roundtrip_and_forgery(void **state)
{
        struct fhandle_key k1 = {{1}}, k2 = {{2}};
        struct fhandle h = sample(), back;
        uint8_t buf[FHANDLE_MAX];
        int n;

        n = fhandle_encode(&k1, &h, buf);
        assert_int_equal(n, FHANDLE_HEADER + 8 + FHANDLE_MAC_SIZE);
        assert_int_equal(fhandle_decode(&k1, buf, (size_t)n, &back), 0);
        assert_int_equal(back.export_id, h.export_id);
        assert_int_equal(back.type, h.type);
        assert_int_equal(back.len, h.len);
        assert_memory_equal(back.bytes, h.bytes, h.len);

        /* Another key, any flipped bit, a wrong length: refused. */
        assert_int_equal(fhandle_decode(&k2, buf, (size_t)n, &back), -EBADMSG);
        for (int i = 0; i < n * 8; i++) {
                uint8_t m[FHANDLE_MAX];
                memcpy(m, buf, (size_t)n);
                m[i / 8] ^= (uint8_t)(1 << (i % 8));
                assert_int_equal(fhandle_decode(&k1, m, (size_t)n, &back), -EBADMSG);
        }
        assert_int_equal(fhandle_decode(&k1, buf, (size_t)n - 1, &back), -EBADMSG);
        assert_int_equal(fhandle_decode(&k1, buf, 0, &back), -EBADMSG);
        assert_int_equal(fhandle_decode(&k1, buf, FHANDLE_MAX + 1, &back), -EBADMSG);
}

static void test_too_long(void **state)
{
        struct fhandle_key k = {{3}};
        struct fhandle h = sample();
        uint8_t buf[FHANDLE_MAX];

        h.len = FHANDLE_KERNEL_MAX;
        assert_int_equal(fhandle_encode(&k, &h, buf), FHANDLE_MAX);
        h.len = FHANDLE_KERNEL_MAX + 1;
        assert_int_equal(fhandle_encode(&k, &h, buf), -EOVERFLOW);
}

static void test_key_file(void **state)
{
        _cleanup_free_ char *dir = NULL;
        struct fhandle_key a, b;
        _cleanup_close_ int fd = -1;
        struct stat st;

        assert_int_equal(mkdtemp_malloc("strata-test-fhandle", &dir), 0);
        fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(fhandle_key_load(fd, "key", &a), 0);
        assert_int_equal(fstatat(fd, "key", &st, 0), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(st.st_size, FHANDLE_KEY_SIZE);
        /* Loaded again: the same key, so handles survive a restart. */
        assert_int_equal(fhandle_key_load(fd, "key", &b), 0);
        assert_memory_equal(a.key, b.key, FHANDLE_KEY_SIZE);
        /* A damaged key is an error, never silently replaced. */
        assert_int_equal(write_file_atomic_at(fd, "key", "short", 5, 0600), 0);
        assert_int_equal(fhandle_key_load(fd, "key", &b), -EBADMSG);
        /* A key others may read or write, or not the server's, is refused. */
        assert_int_equal(write_file_atomic_at(fd, "key", a.key, FHANDLE_KEY_SIZE, 0640), 0);
        assert_int_equal(fhandle_key_load(fd, "key", &b), -EPERM);
        assert_int_equal(fchmodat(fd, "key", 0606, 0), 0);
        assert_int_equal(fhandle_key_load(fd, "key", &b), -EPERM);
        assert_int_equal(fchmodat(fd, "key", 0600, 0), 0);
        assert_int_equal(fhandle_key_load(fd, "key", &b), 0);
        {
                struct stat other = {.st_mode = S_IFREG | 0600, .st_uid = geteuid() + 1};
                assert_int_equal(fhandle_key_check(&other), -EPERM);
                other.st_mode = S_IFLNK | 0600;
                other.st_uid = geteuid();
                assert_int_equal(fhandle_key_check(&other), -EPERM);
        }
        assert_int_equal(unlinkat(fd, "key", 0), 0);
        assert_int_equal(symlinkat("/dev/null", fd, "key"), 0);
        assert_int_equal(fhandle_key_load(fd, "key", &b), -EPERM);
        assert_int_equal(rm_rf_at(AT_FDCWD, dir, RM_ROOT), 0);
}

TEST_MAIN(cmocka_unit_test(test_roundtrip_and_forgery), cmocka_unit_test(test_too_long),
          cmocka_unit_test(test_key_file))
