/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* strata-nfsd's exports parsing and client matching. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "tests.h"

static struct export_table *parse_ok(const char *text)
{
        struct export_table *t = NULL;
        char *err = NULL;
        int r = export_table_parse(text, &t, &err);

        if (r < 0)
                fail_msg("parse failed: %s", err ? err : "?");
        free(err);
        return t;
}

static char *parse_error(const char *text)
{
        struct export_table *t = NULL;
        char *err = NULL;

        assert_int_equal(export_table_parse(text, &t, &err), -EINVAL);
        assert_null(t);
        assert_non_null(err);
        return err;
}

static struct sockaddr_storage v4(const char *a)
{
        struct sockaddr_storage ss = {};
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;

        in->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, a, &in->sin_addr), 1);
        return ss;
}

static struct sockaddr_storage v6(const char *a)
{
        struct sockaddr_storage ss = {};
        struct sockaddr_in6 *in = (struct sockaddr_in6 *)&ss;

        in->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, a, &in->sin6_addr), 1);
        return ss;
}

static void test_parse_options_and_defaults(void **state)
{
        struct export_table *t = parse_ok(
            "# comment\n"
            "\n"
            "/srv/a  127.0.0.1(rw,no_root_squash)   10.0.0.0/8(ro,all_squash,anonuid=7,anongid=8)\n"
            "/srv/b/ 192.168.1.0/255.255.255.0  # trailing comment\n"
            "/srv/c  *(rw,sync,no_subtree_check,insecure)\n");
        const struct export *a, *b, *c;

        assert_int_equal(t->n_exports, 3);
        a = &t->exports[0];
        b = &t->exports[1];
        c = &t->exports[2];
        assert_string_equal(a->name, "/srv/a");
        assert_int_equal(a->n_clients, 2);
        assert_true(a->clients[0].rw);
        assert_int_equal(a->clients[0].squash, EXPORT_NO_ROOT_SQUASH);
        assert_false(a->clients[1].rw);
        assert_int_equal(a->clients[1].squash, EXPORT_ALL_SQUASH);
        assert_int_equal(a->clients[1].anonuid, 7);
        assert_int_equal(a->clients[1].anongid, 8);
        assert_int_equal(a->clients[1].prefix, 8);
        /* exports(5) defaults: ro, root_squash, nobody */
        assert_string_equal(b->name, "/srv/b");
        assert_false(b->clients[0].rw);
        assert_int_equal(b->clients[0].squash, EXPORT_ROOT_SQUASH);
        assert_int_equal(b->clients[0].anonuid, 65534);
        assert_int_equal(b->clients[0].prefix, 24);
        assert_true(c->clients[0].any);
        assert_true(c->clients[0].rw);
        assert_false(export_table_loopback_only(t));
        export_table_unref(t);
}

static void test_parse_errors(void **state)
{
        char *e;

        e = parse_error("/srv/a 127.0.0.1(rw,bogus)\n");
        assert_string_equal(e, "line 1: unknown option 'bogus'");
        free(e);
        e = parse_error("\n\nrelative 127.0.0.1\n");
        assert_string_equal(e, "line 3: export path 'relative' is not absolute");
        free(e);
        e = parse_error("/srv/a\n");
        assert_string_equal(e, "line 1: export '/srv/a' names no clients");
        free(e);
        e = parse_error("/srv/a host.example.com(rw)\n");
        assert_non_null(strstr(e, "invalid client 'host.example.com'"));
        free(e);
        e = parse_error("/srv/a 10.0.0.0/33\n");
        assert_non_null(strstr(e, "invalid client"));
        free(e);
        e = parse_error("/srv/a 10.0.0.0/255.0.255.0\n");
        assert_non_null(strstr(e, "invalid client"));
        free(e);
        e = parse_error("/srv/a 127.0.0.1(rw\n");
        assert_non_null(strstr(e, "unbalanced parenthesis"));
        free(e);
        e = parse_error("/srv/a 127.0.0.1(anonuid=x)\n");
        assert_non_null(strstr(e, "invalid id"));
        free(e);
        e = parse_error("/srv/a *\n/srv/a *\n");
        assert_string_equal(e, "line 2: '/srv/a' is exported twice");
        free(e);
        e = parse_error("# nothing\n");
        assert_string_equal(e, "no exports");
        free(e);
}

static void test_match_networks(void **state)
{
        struct export_table *t = parse_ok("/x 10.1.2.0/23(rw) fd00::/8(ro) 127.0.0.1\n");
        const struct export *e = &t->exports[0];
        struct sockaddr_storage a;

        a = v4("10.1.3.200");
        assert_ptr_equal(export_match(e, (struct sockaddr *)&a), &e->clients[0]);
        a = v4("10.1.4.1");
        assert_null(export_match(e, (struct sockaddr *)&a));
        a = v6("fd12::1");
        assert_ptr_equal(export_match(e, (struct sockaddr *)&a), &e->clients[1]);
        a = v6("fe80::1");
        assert_null(export_match(e, (struct sockaddr *)&a));
        /* An IPv4 client on an IPv6 socket */
        a = v6("::ffff:127.0.0.1");
        assert_ptr_equal(export_match(e, (struct sockaddr *)&a), &e->clients[2]);
        a = v4("127.0.0.2");
        assert_null(export_match(e, (struct sockaddr *)&a));
        export_table_unref(t);
}

static void test_loopback_and_find_name(void **state)
{
        struct export_table *t = NULL;
        const struct export *e;
        const char *rest;

        assert_int_equal(export_table_new_loopback("/srv/dir", &t), 0);
        assert_true(export_table_loopback_only(t));
        e = export_table_find_name(t, "/", &rest);
        assert_non_null(e);
        assert_string_equal(rest, "");
        e = export_table_find_name(t, "/a/b", &rest);
        assert_non_null(e);
        assert_string_equal(rest, "a/b");
        export_table_unref(t);

        t = parse_ok("/srv 127.0.0.1\n/srv/deep 127.0.0.1\n");
        e = export_table_find_name(t, "/srv/deep/x", &rest);
        assert_string_equal(e->name, "/srv/deep");
        assert_string_equal(rest, "x");
        e = export_table_find_name(t, "/srv/deeper", &rest);
        assert_string_equal(e->name, "/srv");
        assert_string_equal(rest, "deeper");
        assert_null(export_table_find_name(t, "/other", &rest));
        assert_true(export_table_loopback_only(t));
        export_table_unref(t);
}

TEST_MAIN(cmocka_unit_test(test_parse_options_and_defaults), cmocka_unit_test(test_parse_errors),
          cmocka_unit_test(test_match_networks), cmocka_unit_test(test_loopback_and_find_name))
