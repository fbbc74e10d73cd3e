/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "changes.h"
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

static int open_dir_at(int dfd, const char *p)
{
        int fd = openat(dfd, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        return fd;
}

static void set_xattr(int dfd, const char *path, const char *key, const char *value)
{
        _cleanup_close_ int fd = openat(dfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

        assert_true(fd >= 0);
        if (fsetxattr(fd, key, value, strlen(value), 0) < 0) {
                if (errno == EPERM || errno == ENOTSUP)
                        test_skip_all("trusted.* xattrs need root and a file system with xattrs");
                fail_msg("cannot set %s on %s: %s", key, path, strerror(errno));
        }
}

/* base: /etc/{hosts,motd,old.conf}, /opt/app/{a,b}, /srv/
 * lower layer: adds /etc/extra, deletes /etc/motd (whiteout), /srv opaque
 * upper (the layer under test):
 *   /etc            copied up (M)
 *   /etc/hosts      modified (M, in base)
 *   /etc/extra      modified (M, in the lower layer)
 *   /etc/motd       re-added (A: whiteout in the lower layer hides the base)
 *   /etc/new        added (A)
 *   /etc/old.conf   deleted (D, char 0/0)
 *   /etc/gone       deleted (D, xattr form)
 *   /etc/link       symlink (A)
 *   /opt/app        replaced (R, opaque)
 *   /opt/app/c      inside a replaced dir (A)
 *   /var/lib/pg     a state path: listed, not descended
 */
static void build_stack(int fd)
{
        assert_int_equal(mkdir_p_at(fd, "base/etc", 0755), 0);
        assert_int_equal(mkdir_p_at(fd, "base/opt/app", 0755), 0);
        assert_int_equal(mkdir_p_at(fd, "base/srv/x", 0755), 0);
        test_write(fd, "base/etc/hosts", "base");
        test_write(fd, "base/etc/motd", "base");
        test_write(fd, "base/etc/old.conf", "base");
        test_write(fd, "base/etc/gone", "base");
        test_write(fd, "base/opt/app/a", "a");

        assert_int_equal(mkdir_p_at(fd, "lower/etc", 0755), 0);
        assert_int_equal(mkdir_p_at(fd, "lower/srv", 0755), 0);
        test_write(fd, "lower/etc/extra", "lower");
        assert_int_equal(mknodat(fd, "lower/etc/motd", S_IFCHR | 0, makedev(0, 0)), 0);
        set_xattr(fd, "lower/srv", "trusted.overlay.opaque", "y");

        assert_int_equal(mkdir_p_at(fd, "upper/etc", 0755), 0);
        assert_int_equal(mkdir_p_at(fd, "upper/opt/app", 0755), 0);
        assert_int_equal(mkdir_p_at(fd, "upper/var/lib/pg/base", 0755), 0);
        assert_int_equal(mkdir_p_at(fd, "upper/srv/x", 0755), 0);
        test_write(fd, "upper/etc/hosts", "new");
        test_write(fd, "upper/etc/extra", "new");
        test_write(fd, "upper/etc/motd", "again");
        test_write(fd, "upper/etc/new", "12345");
        assert_int_equal(mknodat(fd, "upper/etc/old.conf", S_IFCHR | 0, makedev(0, 0)), 0);
        test_write(fd, "upper/etc/gone", "");
        set_xattr(fd, "upper/etc/gone", "trusted.overlay.whiteout", "y");
        assert_int_equal(symlinkat("hosts", fd, "upper/etc/link"), 0);
        set_xattr(fd, "upper/opt/app", "trusted.overlay.opaque", "y");
        test_write(fd, "upper/opt/app/c", "c");
        test_write(fd, "upper/var/lib/pg/base/1", "state");
}

static void test_capture(void **state)
{
        _cleanup_close_ int fd = open_dir_at(AT_FDCWD, *state);
        _cleanup_(change_list_done) struct change_list l = {};
        _cleanup_free_ char *text = NULL;
        char *prune[] = {(char *)"/var/lib/pg", NULL};
        int lowers[2];

        build_stack(fd);
        lowers[0] = open_dir_at(fd, "lower");
        lowers[1] = open_dir_at(fd, "base");

        assert_int_equal(changes_capture_at(fd, "upper", lowers, 2, prune, &l), 0);
        assert_int_equal(changes_format(&l, &text), 0);
        assert_string_equal(text, "M /etc\n"
                                  "M /etc/extra\n"
                                  "D /etc/gone\n"
                                  "M /etc/hosts\n"
                                  "A /etc/link\n"
                                  "A /etc/motd\n"
                                  "A /etc/new\n"
                                  "D /etc/old.conf\n"
                                  "M /opt\n"
                                  "R /opt/app\n"
                                  "A /opt/app/c\n"
                                  "M /srv\n"
                                  "A /srv/x\n"
                                  "A /var\n"
                                  "A /var/lib\n"
                                  "A /var/lib/pg\n");
        assert_int_equal(l.counts[CHANGE_ADDED], 8);
        assert_int_equal(l.counts[CHANGE_MODIFIED], 5);
        assert_int_equal(l.counts[CHANGE_DELETED], 2);
        assert_int_equal(l.counts[CHANGE_REPLACED], 1);
        /* hosts 3 + extra 3 + motd 5 + new 5 + c 1, nothing under the state path */
        assert_int_equal(l.bytes, 17);
        close(lowers[0]);
        close(lowers[1]);
}

/* Every entry once, "." and ".." passed over, with its lstat and its path
 * below the prefix; then 0, and 0 again; the same entries without a path. */
static void test_next_entry(void **state)
{
        _cleanup_close_ int fd = open_dir_at(AT_FDCWD, *state);
        _cleanup_closedir_ DIR *d = NULL;
        bool seen_file = false, seen_dir = false;
        struct dirent *de;
        struct stat st;
        char *path;
        int n, r;

        assert_int_equal(mkdirat(fd, "etc", 0755), 0);
        assert_int_equal(mkdirat(fd, "etc/sub", 0755), 0);
        assert_int_equal(write_file_atomic_at(fd, "etc/hosts", "abc", 3, 0644), 0);
        d = fdopendir(open_dir_at(fd, "etc"));
        assert_non_null(d);
        while ((r = changes_next_entry(d, "/etc", &de, &st, &path)) > 0) {
                if (streq(de->d_name, "hosts")) {
                        assert_false(seen_file);
                        seen_file = true;
                        assert_true(S_ISREG(st.st_mode));
                        assert_int_equal(st.st_size, 3);
                        assert_string_equal(path, "/etc/hosts");
                } else {
                        assert_string_equal(de->d_name, "sub");
                        assert_false(seen_dir);
                        seen_dir = true;
                        assert_true(S_ISDIR(st.st_mode));
                        assert_string_equal(path, "/etc/sub");
                }
                free(path);
        }
        assert_int_equal(r, 0);
        assert_true(seen_file && seen_dir);
        assert_int_equal(changes_next_entry(d, "/etc", &de, &st, &path), 0);
        /* without a path, and without a prefix */
        rewinddir(d);
        n = 0;
        while ((r = changes_next_entry(d, NULL, &de, &st, NULL)) > 0)
                n++;
        assert_int_equal(r, 0);
        assert_int_equal(n, 2);
}

static void test_lookup_honours_whiteouts(void **state)
{
        _cleanup_close_ int fd = open_dir_at(AT_FDCWD, *state);
        int lowers[2];

        build_stack(fd);
        lowers[0] = open_dir_at(fd, "lower");
        lowers[1] = open_dir_at(fd, "base");
        assert_true(changes_path_in_lowers(lowers, 2, "/etc/hosts"));
        assert_true(changes_path_in_lowers(lowers, 2, "/etc/extra"));
        assert_false(changes_path_in_lowers(lowers, 2, "/etc/motd"));
        assert_false(changes_path_in_lowers(lowers, 2, "/srv/x")); /* opaque /srv */
        assert_true(changes_path_in_lowers(lowers, 2, "/srv"));
        assert_false(changes_path_in_lowers(lowers, 2, "/nope"));
        assert_false(changes_path_in_lowers(lowers, 2, "/etc/hosts/under-a-file"));
        assert_true(changes_path_in_lowers(lowers + 1, 1, "/etc/motd"));
        close(lowers[0]);
        close(lowers[1]);
}

static void test_parse_roundtrip(void **state)
{
        _cleanup_(change_list_done) struct change_list l = {};
        _cleanup_free_ char *text = NULL;
        const char *in = "A /a\nD /b c\nM /new\\nline\nR /back\\\\slash\n";
        unsigned line = 0;

        assert_int_equal(changes_parse(in, &l, &line), 0);
        assert_int_equal(l.n, 4);
        assert_string_equal(l.items[2].path, "/new\nline");
        assert_string_equal(l.items[3].path, "/back\\slash");
        assert_int_equal(l.counts[CHANGE_DELETED], 1);
        assert_int_equal(changes_format(&l, &text), 0);
        assert_string_equal(text, in);
        change_list_done(&l);
        assert_int_equal(changes_parse("A /ok\nX /bad\n", &l, &line), -EBADMSG);
        assert_int_equal(line, 2);
        assert_int_equal(changes_parse("A relative\n", &l, &line), -EBADMSG);
}

/* changes_unescape_path undoes changes_write_path; a backslash before
 * anything else (or at the end) is kept as it is. */
static void test_path_escapes(void **state)
{
        const char *path = "/a\nb\\c";
        _cleanup_free_ char *buf = NULL;
        char out[32];
        size_t size = 0;
        FILE *f;

        (void)state;
        f = open_memstream(&buf, &size);
        assert_non_null(f);
        changes_write_path(f, path);
        assert_int_equal(fclose(f), 0);
        assert_string_equal(buf, "/a\\nb\\\\c");
        changes_unescape_path(buf, strlen(buf), out);
        assert_string_equal(out, path);
        changes_unescape_path("/x\\ty\\", 6, out);
        assert_string_equal(out, "/x\\ty\\");
        changes_unescape_path("/plainXX", 6, out);
        assert_string_equal(out, "/plain");
}

TEST_MAIN(cmocka_unit_test_setup_teardown(test_capture, setup, teardown),
          cmocka_unit_test_setup_teardown(test_next_entry, setup, teardown),
          cmocka_unit_test_setup_teardown(test_lookup_honours_whiteouts, setup, teardown),
          cmocka_unit_test(test_parse_roundtrip), cmocka_unit_test(test_path_escapes))
