/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auditlog.h"
#include "cleanup.h"
#include "macro.h"
#include "tests.h"

/* Records as the kernel writes them (fields trimmed to what matters, the
 * order kept): an event is SYSCALL, CWD, PATH..., PROCTITLE. */
#define SYSCALL(id, nr, a0, a2, pid, exe, key, ok)                                                \
        "type=SYSCALL msg=audit(1796188399.060:" id "): arch=c000003e syscall=" nr " success=" ok \
        " exit=0 a0=" a0 " a1=7ffe a2=" a2 " a3=0 items=2 ppid=1 pid=" pid                        \
        " auid=0 uid=0 ses=7 comm=\"x\" exe=" exe " key=" key "\n"
#define CWD(id, dir) "type=CWD msg=audit(1796188399.060:" id "): cwd=" dir "\n"
/* Each record its own inode: the event's serial, then the item. */
#define PATH(id, item, name, type) PATH_INO(id, item, name, type, id item)
#define PATH_INO(id, item, name, type, ino)                                                  \
        "type=PATH msg=audit(1796188399.060:" id "): item=" item " name=" name " inode=" ino \
        " dev=fe:00 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=" type " cap_fp=0\n"

static const char log_text[] =
    /* sh: echo x > /etc/foo (openat O_CREAT) */
    SYSCALL("10", "257", "ffffff9c", "241", "428", "\"/usr/bin/dash\"", "\"strata-m1\"", "yes")
        CWD("10", "\"/\"") PATH("10", "0", "\"/etc/\"", "PARENT")
            PATH("10", "1", "\"/etc/foo\"",
                 "CREATE") "type=PROCTITLE msg=audit(1796188399.060:10): proctitle=7368\n"
    /* another key's event, between */
    SYSCALL("11", "263", "ffffff9c", "0", "999", "\"/usr/bin/rm\"", "\"other\"", "yes")
        CWD("11", "\"/\"") PATH("11", "1", "\"/etc/other\"", "DELETE")
    /* rm bar, relative to the cwd /etc, ENRICHED tail */
    SYSCALL("12", "263", "ffffff9c", "0", "430", "\"/usr/bin/rm\"", "\"strata-m1\"", "yes") CWD(
        "12",
        "\"/etc\"") "type=PATH msg=audit(1796188399.060:12): item=0 name=\"/etc\" nametype=PARENT\n"
                    "type=PATH msg=audit(1796188399.060:12): item=1 name=\"../etc/./bar\" "
                    "nametype=DELETE"
                    "\x1dOUID=\"root\" OGID=\"root\"\n"
    /* a failed unlink: nothing */
    SYSCALL("13", "87", "ffffff9c", "0", "430", "\"/usr/bin/rm\"", "\"strata-m1\"", "no")
        CWD("13", "\"/\"") PATH("13", "1", "\"/etc/nope\"", "DELETE")
    /* dpkg: rename /usr/bin/hello.dpkg-new over /usr/bin/hello; a hex name */
    SYSCALL("14", "82", "55", "0", "500", "\"/usr/bin/dpkg\"", "\"strata-m1\"", "yes")
        CWD("14", "\"/\"") PATH("14", "0", "\"/usr/bin\"", "PARENT")
            PATH("14", "1", "\"/usr/bin\"", "PARENT")
                PATH("14", "2", "\"/usr/bin/hello.dpkg-new\"", "DELETE")
                    PATH("14", "3", "\"/usr/bin/hello\"", "DELETE")
                        PATH("14", "4", "\"/usr/bin/hello\"", "CREATE")
    /* chmod through a name relative to a directory fd: not placed */
    SYSCALL("15", "268", "3", "0", "500", "\"/usr/bin/dpkg\"", "\"strata-m1\"", "yes")
        CWD("15", "\"/\"") PATH("15", "0", "\"baz\"", "NORMAL")
    /* opened for writing, twice (one entry), and /dev/null (left out) */
    SYSCALL("16", "2", "55", "0", "500", "\"/usr/bin/dpkg\"", "\"strata-m1\"",
            "yes") CWD("16", "2F7661722F6C6962") PATH("16", "0", "\"dpkg/status\"", "NORMAL")
        SYSCALL("17", "2", "55", "0", "500", "\"/usr/bin/dpkg\"", "\"strata-m1\"", "yes")
            CWD("17", "\"/\"") PATH("17", "0", "\"/var/lib/dpkg/status\"", "NORMAL")
                SYSCALL("18", "2", "55", "0", "500", "\"/usr/bin/dpkg\"", "\"strata-m1\"", "yes")
                    CWD("18", "\"/\"") PATH("18", "0", "\"/dev/null\"", "NORMAL")
    /* a name with a space, hex-encoded; by the skipped pid 1 as well */
    SYSCALL("19", "83", "55", "0", "431", "2F62696E2F6D6B646972", "\"strata-m1\"", "yes")
        CWD("19", "\"/\"") PATH("19", "1", "2F6F70742F6120622F63", "CREATE")
            SYSCALL("20", "83", "55", "0", "1", "\"/sbin/init\"", "\"strata-m1\"", "yes")
                CWD("20", "\"/\"") PATH("20", "1", "\"/staging\"", "CREATE")
    /* the end marker */
    "type=USER msg=audit(1796188399.080:21): pid=434 uid=0 auid=0 ses=1 "
    "msg='text=strata-audit-end:7:strata-m1 exe=\"/usr/sbin/auditctl\" res=success'\n"
    "not a record at all\n";

static void test_parse(void **state)
{
        _cleanup_(audit_list_done) struct audit_list l = {};
        const pid_t skip[] = {1};
        static const struct {
                char action;
                int pid;
                const char *exe, *path;
        } want[] = {
            {'C', 428, "/usr/bin/dash", "/etc/foo"},
            {'D', 430, "/usr/bin/rm", "/etc/bar"},
            {'F', 500, "/usr/bin/dpkg", "/usr/bin/hello.dpkg-new"},
            {'T', 500, "/usr/bin/dpkg", "/usr/bin/hello"},
            {'M', 500, "/usr/bin/dpkg", "?/baz"},
            {'W', 500, "/usr/bin/dpkg", "/var/lib/dpkg/status"},
            {'C', 431, "/bin/mkdir", "/opt/a b/c"},
        };
        int r;

        r = audit_log_parse(log_text, strlen(log_text), "strata-m1", skip, 1, NULL, &l);
        assert_int_equal(r, (int)(sizeof(want) / sizeof(want[0])));
        assert_int_equal(l.n, sizeof(want) / sizeof(want[0]));
        for (size_t i = 0; i < l.n; i++) {
                assert_int_equal(l.items[i].action, want[i].action);
                assert_int_equal(l.items[i].pid, want[i].pid);
                assert_string_equal(l.items[i].exe, want[i].exe);
                assert_string_equal(l.items[i].path, want[i].path);
                assert_false(l.items[i].state);
        }
        /* parsing the same text again adds nothing */
        assert_int_equal(
            audit_log_parse(log_text, strlen(log_text), "strata-m1", skip, 1, NULL, &l), 0);
        /* no key, no events */
        assert_int_equal(
            audit_log_parse(log_text, strlen(log_text), "strata-m2", NULL, 0, NULL, &l), 0);
}

/* Names relative to directory fds (3: /etc/d, made by the session; 4: /srv,
 * which only the resolver knows; 5: a directory nobody knows). For a plain
 * name the kernel writes the cwd ("/") as the PARENT record's name. */
static const char dirfd_text[] =
    /* mkdir /etc/d */
    SYSCALL("30", "83", "ffffff9c", "0", "600", "\"/usr/bin/mkdir\"", "\"k\"", "yes")
        CWD("30", "\"/\"") PATH_INO("30", "0", "\"/etc/\"", "PARENT", "20")
            PATH_INO("30", "1", "\"/etc/d\"", "CREATE", "300")
    /* openat(3, "new", O_CREAT) */
    SYSCALL("31", "257", "3", "241", "601", "\"/opt/dirfd\"", "\"k\"", "yes") CWD("31", "\"/\"")
        PATH_INO("31", "0", "\"/\"", "PARENT", "300")
            PATH_INO("31", "1", "\"new\"", "CREATE", "310")
    /* unlinkat(3, "old") */
    SYSCALL("32", "263", "3", "0", "601", "\"/opt/dirfd\"", "\"k\"", "yes") CWD("32", "\"/\"")
        PATH_INO("32", "0", "\"/\"", "PARENT", "300")
            PATH_INO("32", "1", "\"old\"", "DELETE", "320")
    /* renameat(3, "a", 3, "b"): one PARENT for both */
    SYSCALL("33", "264", "3", "3", "601", "\"/opt/dirfd\"", "\"k\"", "yes") CWD("33", "\"/\"")
        PATH_INO("33", "0", "\"/\"", "PARENT", "300") PATH_INO("33", "1", "\"a\"", "DELETE", "330")
            PATH_INO("33", "2", "\"b\"", "CREATE", "330")
    /* renameat(3, "x", 4, "x"): the same name in another directory; the
     * new name's PARENT first (x86-64), then a nameless one of the
     * overlay's own rename in its upper dir */
    SYSCALL("34", "264", "3", "4", "601", "\"/opt/dirfd\"", "\"k\"", "yes") CWD("34", "\"/\"")
        PATH_INO("34", "0", "\"/\"", "PARENT", "40") PATH_INO("34", "1", "\"/\"", "PARENT", "300")
            PATH_INO("34", "2", "\"x\"", "DELETE", "340")
                PATH_INO("34", "3", "\"x\"", "CREATE", "340")
                    PATH_INO("34", "4", "(null)", "PARENT", "41")
    /* fchmodat(4, "sub/f"): no PARENT, the object's own inode */
    SYSCALL("35", "268", "4", "0", "601", "\"/opt/dirfd\"", "\"k\"", "yes") CWD("35", "\"/\"")
        PATH_INO("35", "0", "\"sub/f\"", "NORMAL", "41")
    /* openat(3, "b", O_WRONLY): the file renamed to /etc/d/b above */
    SYSCALL("36", "257", "3", "1", "601", "\"/opt/dirfd\"", "\"k\"", "yes") CWD("36", "\"/\"")
        PATH_INO("36", "0", "\"b\"", "NORMAL", "330")
    /* unlinkat(5, "gone"): nobody knows 50 */
    SYSCALL("37", "263", "5", "0", "601", "\"/opt/dirfd\"", "\"k\"", "yes") CWD("37", "\"/\"")
        PATH_INO("37", "0", "\"/\"", "PARENT", "50")
            PATH_INO("37", "1", "\"gone\"", "DELETE", "370")
    /* openat(5, "/etc/abs", O_CREAT): an absolute name ignores the fd */
    SYSCALL("38", "257", "5", "241", "601", "\"/opt/dirfd\"", "\"k\"", "yes") CWD("38", "\"/\"")
        PATH_INO("38", "0", "\"/etc/\"", "PARENT", "20")
            PATH_INO("38", "1", "\"/etc/abs\"", "CREATE", "380")
    /* renameat(3, "b", 4, "c"): told apart by where b is known to be */
    SYSCALL("39", "264", "3", "4", "601", "\"/opt/dirfd\"", "\"k\"", "yes") CWD("39", "\"/\"")
        PATH_INO("39", "0", "\"/\"", "PARENT", "300") PATH_INO("39", "1", "\"/\"", "PARENT", "40")
            PATH_INO("39", "2", "\"b\"", "DELETE", "330")
                PATH_INO("39", "3", "\"c\"", "CREATE", "330");

static unsigned resolver_calls;

static char *test_inode_path(uint64_t ino, void *userdata)
{
        assert_string_equal(userdata, "u");
        resolver_calls++;
        return ino == 40 ? strdup("/srv") : ino == 41 ? strdup("/srv/sub/f") : NULL;
}

static void test_parse_dirfd(void **state)
{
        _cleanup_(audit_list_done) struct audit_list l = {}, plain = {};
        const struct audit_resolver resolver = {test_inode_path, (void *)"u"};
        static const struct {
                char action;
                const char *path;
        } want[] = {
            {'C', "/etc/d"},   {'C', "/etc/d/new"}, {'D', "/etc/d/old"}, {'F', "/etc/d/a"},
            {'T', "/etc/d/b"}, {'F', "/etc/d/x"},   {'T', "/srv/x"},     {'M', "/srv/sub/f"},
            {'W', "/etc/d/b"}, {'D', "?/gone"},     {'C', "/etc/abs"},   {'F', "/etc/d/b"},
            {'T', "/srv/c"},
        };

        assert_int_equal(
            audit_log_parse(dirfd_text, strlen(dirfd_text), "k", NULL, 0, &resolver, &l),
            (int)ELEMENTSOF(want));
        for (size_t i = 0; i < l.n; i++) {
                assert_int_equal(l.items[i].action, want[i].action);
                assert_string_equal(l.items[i].path, want[i].path);
        }
        /* 340 (where the renamed x was: unknown), 40 once (then kept),
         * 41; 50 (the PARENT, then again for the child) and 370 (the
         * removed file's own), which it does not know */
        assert_int_equal(resolver_calls, 6);
        /* without a resolver, what the records alone place */
        assert_int_equal(
            audit_log_parse(dirfd_text, strlen(dirfd_text), "k", NULL, 0, NULL, &plain),
            (int)ELEMENTSOF(want));
        assert_string_equal(plain.items[6].path, "?/x");
        assert_string_equal(plain.items[7].path, "?/sub/f");
        assert_string_equal(plain.items[4].path, "/etc/d/b");
        assert_string_equal(plain.items[8].path, "/etc/d/b");
}

static void test_marker(void **state)
{
        assert_true(
            audit_log_has_marker(log_text, strlen(log_text), "strata-audit-end:7:strata-m1"));
        assert_false(
            audit_log_has_marker(log_text, strlen(log_text), "strata-audit-end:7:strata-m"));
        assert_false(
            audit_log_has_marker(log_text, strlen(log_text), "strata-audit-end:8:strata-m1"));
        /* the text in a record of another type is not the marker */
        assert_false(audit_log_has_marker("type=SYSCALL msg=audit(1:2): text=m x\n", 38, "m"));
        assert_true(
            audit_log_has_marker("node=h type=USER msg=audit(1:2): msg='text=m x'\n", 47, "m"));
}

static void test_format_roundtrip(void **state)
{
        _cleanup_(audit_list_done) struct audit_list l = {}, back = {};
        _cleanup_free_ char *text = NULL, *again = NULL;
        unsigned line = 0;

        assert_int_equal(audit_list_add(&l, 'C', false, 12, "/usr/bin/dash", "/etc/foo"), 0);
        assert_int_equal(audit_list_add(&l, 'W', true, 13, "/bin/a\tb", "/var/log/x\ny\\z"), 0);
        assert_int_equal(audit_list_add(&l, 'D', false, 14, "/bin/rm", "?/rel"), 0);
        assert_int_equal(audit_list_add(&l, 'X', false, 14, "/bin/rm", "/x"), -EINVAL);
        assert_int_equal(audit_list_format(&l, &text), 0);
        assert_string_equal(text, "C\t12\t/usr/bin/dash\t/etc/foo\n"
                                  "SW\t13\t/bin/a\\tb\t/var/log/x\\ny\\\\z\n"
                                  "D\t14\t/bin/rm\t?/rel\n");
        assert_int_equal(audit_list_parse(text, &back, &line), 0);
        assert_int_equal(back.n, 3);
        assert_true(back.items[1].state);
        assert_string_equal(back.items[1].exe, "/bin/a\tb");
        assert_string_equal(back.items[1].path, "/var/log/x\ny\\z");
        assert_int_equal(audit_list_format(&back, &again), 0);
        assert_string_equal(text, again);
}

static void test_parse_bad(void **state)
{
        static const char *const bad[] = {
            "C\t12\t/bin/sh\n",           /* three fields */
            "Q\t12\t/bin/sh\t/etc/a\n",   /* unknown action */
            "C\tx\t/bin/sh\t/etc/a\n",    /* pid */
            "C\t-1\t/bin/sh\t/etc/a\n",   /* negative pid */
            "C\t12\t/bin/sh\tetc/a\n",    /* relative path */
            "C\t12\t/bin/sh\t/etc/\\q\n", /* bad escape */
            "SSC\t12\t/bin/sh\t/etc/a\n", /* two markers */
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                _cleanup_free_ char *text = NULL;
                struct audit_list l = {};
                unsigned line = 0;

                assert_true(asprintf(&text, "C\t1\t/bin/sh\t/etc/ok\n%s", bad[i]) > 0);
                assert_int_equal(audit_list_parse(text, &l, &line), -EBADMSG);
                assert_int_equal(line, 2);
                assert_int_equal(l.n, 0);
        }
}

static void test_rule_parse(void **state)
{
        _cleanup_free_ char *key = NULL, *key2 = NULL;
        uint32_t ses = 0;

        assert_int_equal(audit_rule_parse("-a always,exit -F arch=b64 -S all -F perm=wa "
                                          "-F sessionid=41 -F key=strata-20260101-001_x",
                                          &key, &ses),
                         0);
        assert_string_equal(key, "strata-20260101-001_x");
        assert_int_equal(ses, 41);
        assert_int_equal(audit_rule_parse("-a always,exit -F sessionid=3 -k k1", &key2, &ses), 0);
        assert_string_equal(key2, "k1");
        assert_int_equal(ses, 3);
        assert_int_equal(audit_rule_parse("-w /etc/passwd -p wa -k identity", NULL, NULL), -ENOENT);
        assert_int_equal(audit_rule_parse("-a always,exit -F sessionid=3", NULL, NULL), -ENOENT);
        assert_int_equal(audit_rule_parse("No rules", NULL, NULL), -ENOENT);
        assert_int_equal(audit_rule_parse("-a always,exit -F sessionid=x -k k", NULL, NULL),
                         -ENOENT);
}

static void test_conf_parse(void **state)
{
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
        bool w = false;

        assert_int_equal(
            audit_conf_parse("# c\nlog_file = /tmp/x/audit.log  \nwrite_logs = yes\n", &a, &w), 0);
        assert_string_equal(a, "/tmp/x/audit.log");
        assert_true(w);
        assert_int_equal(audit_conf_parse("write_logs=no\n", &b, &w), 0);
        assert_string_equal(b, "/var/log/audit/audit.log");
        assert_false(w);
        assert_int_equal(audit_conf_parse("log_file = relative.log\n", &c, &w), -EINVAL);
}

static void test_normalize(void **state)
{
        static const char *const cases[][2] = {
            {"/", "/"},
            {"//etc//foo/", "/etc/foo"},
            {"/etc/./a/../b", "/etc/b"},
            {"/../..", "/"},
            {"/a/..", "/"},
            {"/a/b/../../c", "/c"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                _cleanup_free_ char *p = NULL;

                assert_int_equal(audit_path_normalize(cases[i][0], &p), 0);
                assert_string_equal(p, cases[i][1]);
        }
        {
                char *p = NULL;
                assert_int_equal(audit_path_normalize("rel", &p), -EINVAL);
        }
}

static void test_why(void **state)
{
        _cleanup_(audit_list_done) struct audit_list l = {};
        _cleanup_free_ size_t *idx = NULL;
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

        assert_int_equal(audit_list_add(&l, 'F', false, 7, "/usr/bin/dpkg", "/usr/bin/h.new"), 0);
        assert_int_equal(audit_list_add(&l, 'C', false, 7, "/usr/bin/dpkg", "/usr/bin/h"), 0);
        assert_int_equal(audit_list_add(&l, 'W', false, 9, "/bin/sh", "/usr/bin/h"), 0);
        assert_int_equal(audit_list_add(&l, 'T', false, 7, "/usr/bin/dpkg", "/usr/bin/h"), 0);
        assert_int_equal(audit_list_add(&l, 'D', false, 9, "/bin/sh", "/etc/x"), 0);
        assert_int_equal(audit_list_by_path(&l, &idx), 0);
        assert_int_equal(audit_list_why(&l, idx, "/usr/bin/h", &a), 0);
        assert_string_equal(a, "/usr/bin/dpkg[7]:CT, /bin/sh[9]:W");
        assert_int_equal(audit_list_why(&l, idx, "/etc/x", &b), 0);
        assert_string_equal(b, "/bin/sh[9]:D");
        assert_int_equal(audit_list_why(&l, idx, "/etc", &c), 0);
        assert_string_equal(c, "-");
}

TEST_MAIN(cmocka_unit_test(test_why), cmocka_unit_test(test_parse),
          cmocka_unit_test(test_parse_dirfd), cmocka_unit_test(test_marker),
          cmocka_unit_test(test_format_roundtrip), cmocka_unit_test(test_parse_bad),
          cmocka_unit_test(test_rule_parse), cmocka_unit_test(test_conf_parse),
          cmocka_unit_test(test_normalize))
