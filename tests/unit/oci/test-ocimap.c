/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The layer <-> OCI mapping as pure decisions: whiteout names, xattrs,
 * entry paths, digests, which layers an image adds to a stack, refs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "strv.h"
#include "ocimap.h"
#include "ociregistry.h"
#include "tests.h"

static void test_classify(void **state)
{
        enum oci_entry_kind k;
        const char *t = NULL;

        assert_int_equal(oci_entry_classify("file", &k, &t), 0);
        assert_int_equal(k, OCI_ENTRY_PLAIN);
        assert_int_equal(oci_entry_classify(".whx", &k, &t), 0);
        assert_int_equal(k, OCI_ENTRY_PLAIN);
        assert_int_equal(oci_entry_classify(".wh.motd", &k, &t), 0);
        assert_int_equal(k, OCI_ENTRY_WHITEOUT);
        assert_string_equal(t, "motd");
        assert_int_equal(oci_entry_classify(".wh..hidden", &k, &t), 0);
        assert_int_equal(k, OCI_ENTRY_WHITEOUT);
        assert_string_equal(t, ".hidden");
        assert_int_equal(oci_entry_classify(".wh..wh..opq", &k, &t), 0);
        assert_int_equal(k, OCI_ENTRY_OPAQUE);
        assert_int_equal(oci_entry_classify(".wh.", &k, &t), -EINVAL);
        assert_int_equal(oci_entry_classify(".wh..", &k, &t), -EINVAL);
        assert_int_equal(oci_entry_classify(".wh...", &k, &t), -EINVAL);
}

static void test_xattrs_and_names(void **state)
{
        assert_true(oci_xattr_exported("user.test"));
        assert_true(oci_xattr_exported("security.capability"));
        assert_true(oci_xattr_exported("trusted.other"));
        assert_false(oci_xattr_exported("trusted.overlay.opaque"));
        assert_false(oci_xattr_exported("trusted.overlay.origin"));
        assert_false(oci_xattr_exported("user.overlay.whiteout"));
        assert_true(oci_name_reserved(".wh.x"));
        assert_true(oci_name_reserved(".wh..wh..opq"));
        assert_false(oci_name_reserved(".w"));
        assert_false(oci_name_reserved("wh.x"));
}

static void check_norm(const char *in, const char *want)
{
        _cleanup_free_ char *got = NULL;

        assert_int_equal(oci_entry_path_normalize(in, &got), 0);
        assert_string_equal(got, want);
}

static void test_path_normalize(void **state)
{
        char *s = NULL;

        check_norm("etc/motd", "etc/motd");
        check_norm("./etc/motd", "etc/motd");
        check_norm("/etc//motd/", "etc/motd");
        check_norm("./", "");
        check_norm(".", "");
        check_norm("a/./b", "a/b");
        check_norm("..a/b..", "..a/b..");
        assert_int_equal(oci_entry_path_normalize("../etc", &s), -EINVAL);
        assert_int_equal(oci_entry_path_normalize("a/../../etc", &s), -EINVAL);
        assert_int_equal(oci_entry_path_normalize("a/..", &s), -EINVAL);
        assert_null(s);
}

static void test_digest_valid(void **state)
{
        const char *ok = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

        assert_true(oci_digest_valid(ok));
        assert_false(oci_digest_valid(NULL));
        assert_false(oci_digest_valid("sha256:"));
        assert_false(oci_digest_valid(ok + 1));
        assert_false(oci_digest_valid(
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        assert_false(oci_digest_valid(
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
        assert_false(oci_digest_valid(
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"));
        assert_false(oci_digest_valid(
            "sha256:../../../../etc/passwd0000000000000000000000000000000000000000"));
}

static void test_stack_plan(void **state)
{
        char *a[] = {(char *)"a", (char *)"b", (char *)"c"}, *x[] = {(char *)"a", (char *)"x"},
             *bc[] = {(char *)"b", (char *)"c"};
        const char *dl = NULL, *di = NULL;

        /* an empty data dir takes everything */
        assert_int_equal(oci_stack_plan(NULL, 0, a, 3, NULL, &dl, &di), 0);
        /* a data dir with the first two takes the third */
        assert_int_equal(oci_stack_plan(a, 2, a, 3, NULL, &dl, &di), 2);
        /* one that has them all takes nothing; one with more too */
        assert_int_equal(oci_stack_plan(a, 3, a, 3, NULL, &dl, &di), 3);
        assert_int_equal(oci_stack_plan(a, 3, a, 2, NULL, &dl, &di), 2);
        /* stacks that differ: the first difference is named */
        assert_int_equal(oci_stack_plan(x, 2, a, 3, NULL, &dl, &di), -EUCLEAN);
        assert_string_equal(dl, "x");
        assert_string_equal(di, "b");
        assert_int_equal(oci_stack_plan(a, 1, x, 2, NULL, &dl, &di), 1);
        /* an image of the upper layers sits on its parent */
        assert_int_equal(oci_stack_plan(a, 1, bc, 2, "a", &dl, &di), 0);
        assert_int_equal(oci_stack_plan(a, 2, bc, 2, "a", &dl, &di), 1);
        assert_int_equal(oci_stack_plan(x, 2, bc, 2, "a", &dl, &di), -EUCLEAN);
        assert_string_equal(dl, "x");
        assert_string_equal(di, "b");
        assert_int_equal(oci_stack_plan(NULL, 0, bc, 2, "a", &dl, &di), -ESRCH);
        assert_string_equal(di, "a");
}

static void test_ref_parse(void **state)
{
        char *dir = NULL, *tag = NULL, *t = NULL;

        assert_int_equal(oci_ref_parse("oci:/tmp/x:v1", &dir, &tag, &t), 1);
        assert_string_equal(dir, "/tmp/x");
        assert_string_equal(tag, "v1");
        free(dir);
        free(tag);
        assert_int_equal(oci_ref_parse("oci:/tmp/x", &dir, &tag, &t), 1);
        assert_string_equal(dir, "/tmp/x");
        assert_string_equal(tag, "latest");
        free(dir);
        free(tag);
        assert_int_equal(oci_ref_parse("127.0.0.1:5000/strata/m:v1", &dir, &tag, &t), 0);
        assert_string_equal(t, "docker://127.0.0.1:5000/strata/m:v1");
        free(t);
        assert_int_equal(oci_ref_parse("docker://reg/m", &dir, &tag, &t), 0);
        assert_string_equal(t, "docker://reg/m");
        free(t);
        assert_int_equal(oci_ref_parse("", &dir, &tag, &t), -EINVAL);
        assert_int_equal(oci_ref_parse("oci:", &dir, &tag, &t), -EINVAL);
        assert_int_equal(oci_ref_parse("reg/m x", &dir, &tag, &t), -EINVAL);
        assert_int_equal(oci_ref_parse("http://reg/m", &dir, &tag, &t), -EINVAL);
        assert_int_equal(oci_ref_parse("docker:///m", &dir, &tag, &t), -EINVAL);
}

static void test_ldd_parse(void **state)
{
        static const char out[] =
            "\tlinux-vdso.so.1 (0x00007ffd)\n"
            "\tlibjansson.so.4 => /lib/x86_64-linux-gnu/libjansson.so.4 (0x00007f0c)\n"
            "\tlibfoo.so.1 => not found\n"
            "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0c)\n"
            "\t/lib64/ld-linux-x86-64.so.2 (0x00007f0c)\n";
        _cleanup_strv_ char **l = NULL, **none = NULL;

        assert_int_equal(oci_ldd_parse(out, &l), 0);
        assert_string_equal(l[0], "/lib/x86_64-linux-gnu/libjansson.so.4");
        assert_string_equal(l[1], "/lib/x86_64-linux-gnu/libc.so.6");
        assert_string_equal(l[2], "/lib64/ld-linux-x86-64.so.2");
        assert_null(l[3]);
        assert_int_equal(oci_ldd_parse("\tstatically linked\n", &none), 0);
        assert_null(none[0]);
        assert_false(oci_lib_is_libc(l[0]));
        assert_true(oci_lib_is_libc(l[1]));
        assert_true(oci_lib_is_libc(l[2]));
        assert_true(oci_lib_is_libc("/usr/lib/x86_64-linux-gnu/libm.so.6"));
}

TEST_MAIN(cmocka_unit_test(test_ldd_parse), cmocka_unit_test(test_classify),
          cmocka_unit_test(test_xattrs_and_names), cmocka_unit_test(test_path_normalize),
          cmocka_unit_test(test_digest_valid), cmocka_unit_test(test_stack_plan),
          cmocka_unit_test(test_ref_parse))
