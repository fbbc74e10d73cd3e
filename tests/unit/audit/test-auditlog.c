/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auditlog.h"
#include "cleanup.h"
#include "tests.h"

/* Records as the kernel writes them (fields trimmed to what matters, the
 * order kept): an event is SYSCALL, CWD, PATH..., PROCTITLE. */
#define SYSCALL(id, nr, a0, a2, pid, exe, key, ok)                                                \
        "type=SYSCALL msg=audit(1796188399.060:" id "): arch=c000003e syscall=" nr " success=" ok \
        " exit=0 a0=" a0 " a1=7ffe a2=" a2 " a3=0 items=2 ppid=1 pid=" pid                        \
        " auid=0 uid=0 ses=7 comm=\"x\" exe=" exe " key=" key "\n"
#define CWD(id, dir) "type=CWD msg=audit(1796188399.060:" id "): cwd=" dir "\n"
#define PATH(id, item, name, type)                                             \
        "type=PATH msg=audit(1796188399.060:" id "): item=" item " name=" name \
        " inode=5 dev=fe:00 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=" type " cap_fp=0\n"

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

        r = audit_log_parse(log_text, strlen(log_text), "strata-m1", skip, 1, &l);
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
        assert_int_equal(audit_log_parse(log_text, strlen(log_text), "strata-m1", skip, 1, &l), 0);
        /* no key, no events */
        assert_int_equal(audit_log_parse(log_text, strlen(log_text), "strata-m2", NULL, 0, &l), 0);
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

TEST_MAIN(cmocka_unit_test(test_why), cmocka_unit_test(test_parse), cmocka_unit_test(test_marker),
          cmocka_unit_test(test_format_roundtrip), cmocka_unit_test(test_parse_bad),
          cmocka_unit_test(test_rule_parse), cmocka_unit_test(test_conf_parse),
          cmocka_unit_test(test_normalize))
