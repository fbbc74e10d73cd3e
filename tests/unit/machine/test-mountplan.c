/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "macro.h"
#include "mountinfo.h"
#include "mountplan.h"
#include "tests.h"

extern bool mount_plan_force_legacy_overlay;

static void test_builders_reject_bad_input(void **state)
{
        _cleanup_(mount_plan_freep) struct mount_plan *p = NULL;
        char *lowers[] = {(char *)"/l", NULL}, *rel[] = {(char *)"l", NULL}, *none[] = {NULL};

        assert_int_equal(mount_plan_new(&p), 0);
        assert_int_equal(mount_plan_add_tmpfs(p, "relative", NULL, 0), -EINVAL);
        assert_int_equal(mount_plan_add_bind(p, "src", "/d", 0), -EINVAL);
        assert_int_equal(mount_plan_add_overlay(p, "/", none, "/u", "/w", 0), -EINVAL);
        assert_int_equal(mount_plan_add_overlay(p, "/", rel, "/u", "/w", 0), -EINVAL);
        assert_int_equal(mount_plan_add_overlay(p, "/", lowers, "/u", NULL, 0), -EINVAL);
        assert_int_equal(mount_plan_add_symlink(p, "", "/x", 0), -EINVAL);
        assert_int_equal(mount_plan_add_write_file(p, "/", "x", 1, 0644, 0), -EINVAL);
        assert_int_equal(p->n_ops, 0);
        assert_int_equal(mount_plan_add_overlay(p, "/", lowers, NULL, NULL, 0), 0);
        assert_int_equal(p->n_ops, 1);
}

static struct mount_plan *sample_plan(void)
{
        struct mount_plan *p = NULL;
        char *lowers[] = {(char *)"/d/system/layers/b/fs", (char *)"/d/system/layers/a/fs",
                          (char *)"/", NULL};

        assert_int_equal(mount_plan_new(&p), 0);
        assert_int_equal(mount_plan_add_tmpfs(p, "/d/system", "mode=0755",
                                              MOUNT_PLAN_HOST | MOUNT_PLAN_CREATE_DEST),
                         0);
        assert_int_equal(mount_plan_add_overlay(p, "/", lowers, "/d/u", "/d/w", 0), 0);
        assert_int_equal(mount_plan_add_dev_minimal(p, "/dev", MOUNT_PLAN_CREATE_DEST), 0);
        assert_int_equal(mount_plan_add_proc(p, "/proc", 0), 0);
        assert_int_equal(mount_plan_add_bind(p, "/d", "/data", MOUNT_PLAN_REC | MOUNT_PLAN_RO), 0);
        assert_int_equal(mount_plan_add_mkdir(p, "/x/y", 0700, 0), 0);
        assert_int_equal(mount_plan_add_write_file(p, "/usr/sbin/policy-rc.d",
                                                   "#!/bin/sh\nexit 101\n", 20, 0755, 0),
                         0);
        assert_int_equal(mount_plan_add_symlink(p, "/run", "/var/run", 0), 0);
        assert_int_equal(mount_plan_add_remount_ro(p, "/data", MOUNT_PLAN_REC), 0);
        return p;
}

static void test_json_round_trip(void **state)
{
        _cleanup_(mount_plan_freep) struct mount_plan *p = sample_plan(), *q = NULL;
        _cleanup_free_ char *err = NULL;
        json_t *a = NULL, *b = NULL;

        assert_int_equal(mount_plan_to_json(p, &a), 0);
        assert_int_equal(json_array_size(a), 9);
        assert_string_equal(json_string_value(json_object_get(json_array_get(a, 1), "type")),
                            "overlay");
        assert_int_equal(mount_plan_from_json(a, &q, &err), 0);
        assert_int_equal(q->n_ops, p->n_ops);
        assert_int_equal(mount_plan_to_json(q, &b), 0);
        assert_true(json_equal(a, b));
        assert_int_equal(q->ops[6].data_len, 20);
        assert_int_equal(q->ops[6].mode, 0755);
        assert_int_equal(q->ops[4].flags, MOUNT_PLAN_REC | MOUNT_PLAN_RO);
        json_decref(a);
        json_decref(b);
}

static void test_json_errors_name_the_operation(void **state)
{
        struct mount_plan *p = NULL;
        char *err = NULL;
        json_error_t e;
        json_t *j;

        j = json_loads(
            "[{\"type\":\"proc\",\"dest\":\"/proc\"},{\"type\":\"nfs\",\"dest\":\"/x\"}]", 0, &e);
        assert_non_null(j);
        assert_int_equal(mount_plan_from_json(j, &p, &err), -EBADMSG);
        assert_null(p);
        assert_string_equal(err, "operation 2, field \"type\": unknown type 'nfs'");
        free(err);
        json_decref(j);

        j = json_loads("[{\"type\":\"bind\",\"dest\":\"/x\",\"flags\":[\"rec\",\"bogus\"]}]", 0,
                       &e);
        assert_int_equal(mount_plan_from_json(j, &p, &err), -EBADMSG);
        assert_string_equal(err, "operation 1, field \"flags\": unknown flag 'bogus'");
        free(err);
        json_decref(j);

        j = json_loads("[{\"type\":\"bind\",\"dest\":\"/x\"}]", 0, &e);
        assert_int_equal(mount_plan_from_json(j, &p, &err), -EBADMSG);
        assert_string_equal(err, "operation 1, field \"src\": missing");
        free(err);
        json_decref(j);
}

/* Each malformed operation is refused with its index and field. */
static void test_json_errors_name_the_field(void **state)
{
        static const struct {
                const char *json, *error;
        } cases[] = {
            {"[{\"dest\":\"/x\"}]", "operation 1, field \"type\": missing"},
            {"[{\"type\":\"tmpfs\"}]", "operation 1, field \"dest\": missing"},
            {"[{\"type\":\"tmpfs\",\"dest\":\"x\"}]",
             "operation 1, field \"dest\": 'x' is not an absolute path"},
            {"[{\"type\":\"tmpfs\",\"dest\":5}]", "operation 1, field \"dest\": not a string"},
            {"[{\"type\":\"proc\",\"dest\":\"/proc\"},{\"type\":\"bind\",\"dest\":\"/x\","
             "\"sorce\":\"/y\"}]",
             "operation 2, field \"sorce\": unknown field"},
            {"[{\"type\":\"tmpfs\",\"dest\":\"/x\",\"src\":\"/y\"}]",
             "operation 1, field \"src\": does not apply to a tmpfs operation"},
            {"[{\"type\":\"bind\",\"dest\":\"/x\",\"src\":\"y\"}]",
             "operation 1, field \"src\": 'y' is not an absolute path"},
            {"[{\"type\":\"overlay\",\"dest\":\"/\"}]",
             "operation 1, field \"lowerdirs\": missing"},
            {"[{\"type\":\"overlay\",\"dest\":\"/\",\"lowerdirs\":[\"/a\",\"b\"]}]",
             "operation 1, field \"lowerdirs\": entry 2 is not an absolute path"},
            {"[{\"type\":\"overlay\",\"dest\":\"/\",\"lowerdirs\":[\"/a\"],\"upperdir\":\"/u\"}]",
             "operation 1, field \"workdir\": missing (upperdir and workdir go together)"},
            {"[{\"type\":\"mkdir\",\"dest\":\"/x\",\"mode\":\"0755\"}]",
             "operation 1, field \"mode\": not a mode (an integer from 0 to 4095, 0o7777)"},
            {"[{\"type\":\"write-file\",\"dest\":\"/x\"}]", "operation 1, field \"data\": missing"},
            {"[{\"type\":\"symlink\",\"dest\":\"/x\"}]", "operation 1, field \"target\": missing"},
            {"[{\"type\":\"tmpfs\",\"dest\":\"/x\",\"flags\":\"ro\"}]",
             "operation 1, field \"flags\": not an array"},
            {"[3]", "operation 1: not an object"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct mount_plan *p = NULL;
                char *err = NULL;
                json_error_t e;
                json_t *j = json_loads(cases[i].json, 0, &e);

                assert_non_null(j);
                assert_int_equal(mount_plan_from_json(j, &p, &err), -EBADMSG);
                assert_null(p);
                assert_string_equal(err, cases[i].error);
                free(err);
                json_decref(j);
        }
}

static void test_substitute_string(void **state)
{
        char *vars[] = {(char *)"SLOT=3", (char *)"WORKER_ROOT=/run/w", (char *)"S=x", NULL};
        char *out = NULL, *unknown = NULL;

        assert_int_equal(
            mount_plan_substitute_string("${WORKER_ROOT}/slots/${SLOT}/a${S}$b", vars, &out, NULL),
            0);
        assert_string_equal(out, "/run/w/slots/3/ax$b");
        free(out);
        assert_int_equal(mount_plan_substitute_string("plain", vars, &out, NULL), 0);
        assert_string_equal(out, "plain");
        free(out);
        assert_int_equal(mount_plan_substitute_string("/a/${SLOTS}", vars, &out, &unknown), -ENXIO);
        assert_string_equal(unknown, "${SLOTS}");
        free(unknown);
        unknown = NULL;
        assert_int_equal(mount_plan_substitute_string("/a/${SLOT", vars, &out, &unknown), -ENXIO);
        assert_string_equal(unknown, "${SLOT");
        free(unknown);
}

static void test_load_file(void **state)
{
        _cleanup_free_ char *dir = test_tmpdir(), *path = NULL;
        _cleanup_close_ int dfd = open(dir, O_DIRECTORY | O_CLOEXEC);
        char *vars[] = {(char *)"SLOT=7", (char *)"WORKER_ROOT=/w", NULL};
        struct mount_plan *p = NULL;
        json_t *doc = NULL;
        char *err = NULL, *expected = NULL;

        assert_true(asprintf(&path, "%s/plan.json", dir) > 0);
        test_write(dfd, "plan.json",
                   "{\"hostname\":\"w-${SLOT}\",\"mounts\":[\n"
                   " {\"type\":\"tmpfs\",\"dest\":\"/\",\"comment\":\"the root\"},\n"
                   " {\"type\":\"bind\",\"src\":\"${WORKER_ROOT}/s/${SLOT}\",\"dest\":\"/s\","
                   "\"flags\":[\"ro\",\"create-dest\"]}]}\n");
        assert_int_equal(mount_plan_load(path, vars, &p, &doc, &err), 0);
        assert_int_equal(p->n_ops, 2);
        assert_string_equal(p->ops[1].src, "/w/s/7");
        assert_int_equal(p->ops[1].flags, MOUNT_PLAN_RO | MOUNT_PLAN_CREATE_DEST);
        assert_string_equal(json_string_value(json_object_get(doc, "hostname")), "w-7");
        p = mount_plan_free(p);
        json_decref(doc);

        /* A bare array (the --dry-run --json form) is a plan file too. */
        test_write(dfd, "plan.json", "[{\"type\":\"proc\",\"dest\":\"/proc\"}]");
        assert_int_equal(mount_plan_load(path, NULL, &p, NULL, &err), 0);
        assert_int_equal(p->n_ops, 1);
        p = mount_plan_free(p);

        test_write(dfd, "plan.json",
                   "{\"mounts\":[{\"type\":\"tmpfs\",\"dest\":\"/\"},"
                   "{\"type\":\"bind\",\"src\":\"/x/${SLOTS}\",\"dest\":\"/s\"}]}");
        assert_int_equal(mount_plan_load(path, vars, &p, &doc, &err), -EBADMSG);
        assert_null(p);
        assert_true(asprintf(&expected,
                             "'%s': operation 2, field \"src\": unknown variable '${SLOTS}'",
                             path) > 0);
        assert_string_equal(err, expected);
        free(err);
        free(expected);

        test_write(dfd, "plan.json", "{\"mounts\":[{\"type\":\"tmpfs\",\"dest\":\"/\",\"x\":1}]}");
        assert_int_equal(mount_plan_load(path, vars, &p, NULL, &err), -EBADMSG);
        assert_true(asprintf(&expected, "'%s': operation 1, field \"x\": unknown field", path) > 0);
        assert_string_equal(err, expected);
        free(err);
        free(expected);

        test_write(dfd, "plan.json", "{\"user\":\"${NOPE}\",\"mounts\":[]}");
        assert_int_equal(mount_plan_load(path, vars, &p, NULL, &err), -EBADMSG);
        assert_true(asprintf(&expected, "'%s': field \"user\": unknown variable '${NOPE}'", path) >
                    0);
        assert_string_equal(err, expected);
        free(err);
        free(expected);

        test_write(dfd, "plan.json", "{\"mounts\":[}");
        assert_int_equal(mount_plan_load(path, vars, &p, NULL, &err), -EBADMSG);
        assert_non_null(strstr(err, path));
        assert_non_null(strstr(err, "line 1"));
        free(err);

        test_write(dfd, "plan.json", "{\"mount\":[]}");
        assert_int_equal(mount_plan_load(path, vars, &p, NULL, &err), -EBADMSG);
        assert_non_null(strstr(err, "no \"mounts\" array"));
        free(err);
        test_tmpdir_remove(TAKE_PTR(dir));
}

/* A fake umount2: EBUSY for the first fake_busy calls on a path. */
static int fake_busy, fake_calls, fake_detach;
static uint64_t fake_slept[16];
static int fake_n_slept;

static int fake_umount(const char *path, int flags)
{
        fake_calls++;
        if (flags & MNT_DETACH) {
                fake_detach++;
                return 0;
        }
        if (fake_busy < 0 || fake_calls <= fake_busy)
                return -EBUSY;
        return 0;
}

static void fake_sleep(uint64_t usec)
{
        if (fake_n_slept < 16)
                fake_slept[fake_n_slept++] = usec;
}

static void test_teardown_backoff(void **state)
{
        struct mount_teardown_policy pol = MOUNT_TEARDOWN_POLICY_DEFAULT;
        static const uint64_t ms[] = {50, 100, 200, 400, 800, 1000, 1000, 1000, 1000};
        struct mount_teardown_result res = {};

        for (unsigned k = 1; k <= ELEMENTSOF(ms); k++)
                assert_int_equal(mount_teardown_delay(&pol, k), ms[k - 1] * 1000);

        pol.umount = fake_umount;
        pol.sleep = fake_sleep;

        /* Busy three times, then gone: three sleeps, no detach. */
        fake_busy = 3;
        assert_int_equal(mount_teardown_one("/m", &pol, &res), 0);
        assert_int_equal(fake_calls, 4);
        assert_int_equal(res.unmounted, 1);
        assert_int_equal(res.retries, 3);
        assert_int_equal(res.detached, 0);
        assert_int_equal(fake_n_slept, 3);
        assert_int_equal(fake_slept[2], 200 * 1000);

        /* Always busy: ten tries, nine sleeps, then MNT_DETACH, said so. */
        fake_busy = -1;
        fake_calls = fake_n_slept = 0;
        res = (struct mount_teardown_result){};
        assert_int_equal(mount_teardown_one("/busy", &pol, &res), 1);
        assert_int_equal(fake_calls, 11);
        assert_int_equal(fake_detach, 1);
        assert_int_equal(fake_n_slept, 9);
        assert_int_equal(res.detached, 1);
        assert_int_equal(res.unmounted, 0);
        assert_string_equal(res.first_detached, "/busy");
        {
                uint64_t sum = 0;
                for (int i = 0; i < fake_n_slept; i++)
                        sum += fake_slept[i];
                assert_int_equal(sum, 5550 * 1000);
        }
}

static void test_describe(void **state)
{
        _cleanup_(mount_plan_freep) struct mount_plan *p = sample_plan();
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        assert_int_equal(mount_plan_describe(p, f), 0);
        fclose(f);
        assert_non_null(
            strstr(buf, "  2 overlay     /  lower=/d/system/layers/b/fs:/d/system/layers/a/fs:/ "
                        "upper=/d/u work=/d/w\n"));
        assert_non_null(strstr(buf, "  5 bind        /data <- /d ro rec\n"));
        assert_non_null(
            strstr(buf, "  1 tmpfs       /d/system options=mode=0755 create-dest host\n"));
        free(buf);
}

/* Runs fn in a child in its own mount namespace; returns its exit status. */
static int in_mount_ns(int (*fn)(const char *dir), const char *dir)
{
        pid_t pid = fork();
        int st;

        assert_true(pid >= 0);
        if (pid == 0) {
                if (unshare(CLONE_NEWNS) < 0 ||
                    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                        _exit(99);
                _exit(fn(dir));
        }
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        return WEXITSTATUS(st);
}

static char *tmpdir(void)
{
        char *d = NULL;

        assert_int_equal(mkdtemp_malloc("test-mountplan", &d), 0);
        return d;
}

static void need_root(void)
{
        if (geteuid() != 0)
                skip();
}

static int check_file(const char *path, const char *content)
{
        _cleanup_free_ char *s = NULL;

        if (read_file_at(AT_FDCWD, path, 4096, &s, NULL) < 0)
                return 0;
        return streq(s, content);
}

static int check_dir(const char *root, const char *path, mode_t mode)
{
        _cleanup_free_ char *f = NULL;
        struct stat st;

        if (asprintf(&f, "%s%s", root, path) < 0 || stat(f, &st) < 0)
                return 0;
        return S_ISDIR(st.st_mode) && (st.st_mode & 07777) == mode;
}

#define CHECK(n, cond)                                                        \
        do {                                                                  \
                if (!(cond)) {                                                \
                        fprintf(stderr, "# check %d failed: %s\n", n, #cond); \
                        return n;                                             \
                }                                                             \
        } while (0)

static int apply_basic(const char *dir)
{
        _cleanup_(mount_plan_freep) struct mount_plan *p = NULL;
        _cleanup_free_ char *root = NULL, *src = NULL, *err = NULL, *f = NULL;
        int r;

        if (asprintf(&root, "%s/root", dir) < 0 || asprintf(&src, "%s/src", dir) < 0 ||
            mkdir(root, 0755) < 0 || mkdir(src, 0755) < 0)
                return 90;
        if (mount_plan_new(&p) < 0)
                return 91;
        mount_plan_add_tmpfs(p, "/", "mode=0755", 0);
        mount_plan_add_mkdir(p, "/a/b/c", 0700, 0);
        mount_plan_add_write_file(p, "/etc/hello", "hi\n", 3, 0640, 0);
        mount_plan_add_symlink(p, "/etc", "/link", 0);
        /* Through an absolute symlink: must land in the root's /etc. */
        mount_plan_add_write_file(p, "/link/via-link", "x", 1, 0644, 0);
        mount_plan_add_bind(p, src, "/mnt/src", MOUNT_PLAN_CREATE_DEST | MOUNT_PLAN_RO);
        mount_plan_add_bind(p, "/nonexistent-src", "/opt", MOUNT_PLAN_OPTIONAL);
        mount_plan_add_tmpfs(p, "/ro", NULL, MOUNT_PLAN_CREATE_DEST);
        mount_plan_add_remount_ro(p, "/ro", 0);
        r = mount_plan_apply(p, root, NULL, &err);
        if (r < 0) {
                fprintf(stderr, "# apply: %s: %s\n", err, strerror(-r));
                return 1;
        }
        CHECK(2, check_dir(root, "/a/b/c", 0700));
        CHECK(3, asprintf(&f, "%s/etc/hello", root) > 0 && check_file(f, "hi\n"));
        free(f);
        CHECK(4, asprintf(&f, "%s/etc/via-link", root) > 0 && check_file(f, "x"));
        CHECK(5, access("/etc/via-link", F_OK) < 0);
        free(f);
        /* The ro bind refuses writes; the source is still writable. */
        CHECK(6, asprintf(&f, "%s/mnt/src/x", root) > 0 && open(f, O_CREAT | O_WRONLY, 0644) < 0 &&
                     errno == EROFS);
        free(f);
        CHECK(7, asprintf(&f, "%s/ro/x", root) > 0 && open(f, O_CREAT | O_WRONLY, 0644) < 0 &&
                     errno == EROFS);
        free(f);
        f = NULL;
        CHECK(8, !check_dir(root, "/opt", 0755));
        return 0;
}

static void test_apply_basic(void **state)
{
        _cleanup_free_ char *d = NULL;

        need_root();
        d = tmpdir();
        assert_int_equal(in_mount_ns(apply_basic, d), 0);
        assert_int_equal(rm_rf_at(AT_FDCWD, d, RM_ROOT), 0);
}

static void no_sleep(uint64_t usec)
{
}

/* namespace_ends: of three mounts on a kept one, the unused leaf is left
 * for the namespace's end (counted unmounted, still mounted), the one a
 * process holds is retried and detached, the one with a mount on it loses
 * that (moved onto the kept one first, being deeper, and left there: no
 * umount2) and is then left too; a held mount on a mount is retried and
 * detached, and the mount it was on left. */
static int teardown_namespace_ends(const char *dir)
{
        struct mount_teardown_policy pol = MOUNT_TEARDOWN_POLICY_DEFAULT;
        struct mount_teardown_result res = {};
        _cleanup_free_ char *free_m = NULL, *held = NULL, *parent = NULL, *child = NULL,
                            *other = NULL, *held2 = NULL;
        _cleanup_close_ int hold = -1, hold2 = -1;
        struct mount_list l = {};
        unsigned moved = 0;

        if (mount("t", dir, "tmpfs", 0, NULL) < 0 || asprintf(&free_m, "%s/free", dir) < 0 ||
            asprintf(&held, "%s/held", dir) < 0 || asprintf(&parent, "%s/parent", dir) < 0 ||
            asprintf(&child, "%s/parent/child", dir) < 0)
                return 90;
        if (mkdir(free_m, 0755) < 0 || mkdir(held, 0755) < 0 || mkdir(parent, 0755) < 0 ||
            mount("t", free_m, "tmpfs", 0, NULL) < 0 || mount("t", held, "tmpfs", 0, NULL) < 0 ||
            mount("t", parent, "tmpfs", 0, NULL) < 0 || mkdir(child, 0755) < 0 ||
            mount("t", child, "tmpfs", 0, NULL) < 0 || asprintf(&other, "%s/other", dir) < 0 ||
            asprintf(&held2, "%s/other/held", dir) < 0 || mkdir(other, 0755) < 0 ||
            mount("t", other, "tmpfs", 0, NULL) < 0 || mkdir(held2, 0755) < 0 ||
            mount("t", held2, "tmpfs", 0, NULL) < 0)
                return 91;
        hold = open(held, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        hold2 = open(held2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(1, hold >= 0 && hold2 >= 0);
        pol.tries = 2;
        pol.sleep = no_sleep;
        pol.namespace_ends = true;
        CHECK(2, mount_teardown_under(dir, true, &pol, &res) == 0);
        /* free, child, parent, other left; held and other/held detached */
        CHECK(3, res.found == 7 && res.unmounted == 4 && res.detached == 2 && res.failed == 0);
        CHECK(4, streq(res.first_detached, held2)); /* the deeper one first */
        CHECK(5, mountinfo_is_mountpoint(free_m) == 1 && mountinfo_is_mountpoint(parent) == 1 &&
                     mountinfo_is_mountpoint(other) == 1);
        CHECK(6, mountinfo_is_mountpoint(child) == 0 && mountinfo_is_mountpoint(held) == 0 &&
                     mountinfo_is_mountpoint(held2) == 0);
        /* the child sits on the kept mount now, still mounted */
        CHECK(7, mountinfo_read(NULL, dir, &l) == 0);
        for (size_t i = 0; i < l.n; i++)
                moved += strstr(l.entries[i].target, "/.strata-teardown-") != NULL;
        CHECK(8, l.n == 5 && moved == 1);
        mount_list_done(&l);
        return 0;
}

static void test_teardown_namespace_ends(void **state)
{
        _cleanup_free_ char *d = NULL;

        need_root();
        d = tmpdir();
        assert_int_equal(in_mount_ns(teardown_namespace_ends, d), 0);
        assert_int_equal(rm_rf_at(AT_FDCWD, d, RM_ROOT), 0);
}

static int apply_missing_source(const char *dir)
{
        _cleanup_(mount_plan_freep) struct mount_plan *p = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        if (mount_plan_new(&p) < 0)
                return 91;
        mount_plan_add_mkdir(p, "/x", 0755, 0);
        mount_plan_add_bind(p, "/nonexistent-src", "/x", 0);
        r = mount_plan_apply(p, dir, NULL, &err);
        CHECK(1, r == -ENOENT);
        CHECK(2, err && streq(err, "bind '/nonexistent-src' on '/x' (step 2 of 2)"));
        return 0;
}

static void test_apply_error_names_step(void **state)
{
        _cleanup_free_ char *d = NULL;

        need_root();
        d = tmpdir();
        assert_int_equal(in_mount_ns(apply_missing_source, d), 0);
        assert_int_equal(rm_rf_at(AT_FDCWD, d, RM_ROOT), 0);
}

/* n layers, each with its own file and a shared one ("top" wins). */
static int make_layers(const char *dir, size_t n, char ***ret)
{
        char **l = calloc(n + 1, sizeof(char *));

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *f = NULL, *g = NULL, *content = NULL;
                char name[64];

                snprintf(name, sizeof(name), "layer-number-%04zu/fs", i);
                if (asprintf(&l[i], "%s/%s", dir, name) < 0 ||
                    mkdir_p_at(AT_FDCWD, l[i], 0755) < 0 ||
                    asprintf(&f, "%s/only-%zu", l[i], i) < 0 ||
                    asprintf(&g, "%s/shared", l[i]) < 0 || asprintf(&content, "%zu", i) < 0 ||
                    write_file_atomic_at(AT_FDCWD, f, "x", 1, 0644) < 0 ||
                    write_file_atomic_at(AT_FDCWD, g, content, strlen(content), 0644) < 0)
                        return -EIO;
        }
        *ret = l;
        return 0;
}

static size_t overlay_layers;

static int apply_overlay_layers(const char *dir)
{
        _cleanup_(mount_plan_freep) struct mount_plan *p = NULL;
        _cleanup_free_ char *err = NULL, *root = NULL, *f = NULL, *ld = NULL;
        _cleanup_strv_ char **l = NULL;
        int r;

        if (asprintf(&root, "%s/root", dir) < 0 || mkdir(root, 0755) < 0 ||
            asprintf(&ld, "%s/a-rather-long-directory-name-for-the-layers-of-this-test", dir) < 0)
                return 90;
        if (make_layers(ld, overlay_layers, &l) < 0)
                return 91;
        if (mount_plan_new(&p) < 0 || mount_plan_add_overlay(p, "/", l, NULL, NULL, 0) < 0)
                return 92;
        r = mount_plan_apply(p, root, NULL, &err);
        if (overlay_layers > MOUNT_PLAN_OVERLAY_MAX_LOWER) {
                CHECK(3, r == -E2BIG);
                CHECK(4, err && strstr(err, "lower dirs, the kernel stacks at most 500"));
                return 0;
        }
        if (r < 0) {
                fprintf(stderr, "# apply: %s: %s\n", err, strerror(-r));
                return 1;
        }
        CHECK(5, asprintf(&f, "%s/shared", root) > 0 && check_file(f, "0"));
        free(f);
        CHECK(6, asprintf(&f, "%s/only-%zu", root, overlay_layers - 1) > 0 && check_file(f, "x"));
        return 0;
}

static void run_layers(size_t n, bool legacy)
{
        _cleanup_free_ char *d = NULL;

        need_root();
        d = tmpdir();
        overlay_layers = n;
        mount_plan_force_legacy_overlay = legacy;
        assert_int_equal(in_mount_ns(apply_overlay_layers, d), 0);
        mount_plan_force_legacy_overlay = false;
        assert_int_equal(rm_rf_at(AT_FDCWD, d, RM_ROOT), 0);
}

/* 300 absolute paths of ~110 bytes: far beyond one page of options. */
static void test_overlay_many_layers(void **state)
{
        run_layers(300, false);
}

static void test_overlay_too_many_layers(void **state)
{
        run_layers(600, false);
}

/* Without "lowerdir+" (kernels before 6.8), the whole stack of 500 lower
 * dirs of ~110-byte paths fits the one page of options: they go by the
 * numbers of fds opened on them. */
static void test_overlay_legacy_fd_numbers(void **state)
{
        run_layers(MOUNT_PLAN_OVERLAY_MAX_LOWER, true);
}

TEST_MAIN(cmocka_unit_test(test_builders_reject_bad_input), cmocka_unit_test(test_json_round_trip),
          cmocka_unit_test(test_json_errors_name_the_operation),
          cmocka_unit_test(test_json_errors_name_the_field),
          cmocka_unit_test(test_substitute_string), cmocka_unit_test(test_load_file),
          cmocka_unit_test(test_teardown_backoff), cmocka_unit_test(test_describe),
          cmocka_unit_test(test_apply_basic), cmocka_unit_test(test_teardown_namespace_ends),
          cmocka_unit_test(test_apply_error_names_step), cmocka_unit_test(test_overlay_many_layers),
          cmocka_unit_test(test_overlay_too_many_layers),
          cmocka_unit_test(test_overlay_legacy_fd_numbers))
