/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "fs.h"
#include "machine.h"
#include "macro.h"
#include "tests.h"

static const struct mount_op *find_op(const struct mount_plan *p, enum mount_op_type t,
                                      const char *dest)
{
        for (size_t i = 0; i < p->n_ops; i++)
                if (p->ops[i].type == t && streq(p->ops[i].dest, dest))
                        return &p->ops[i];
        return NULL;
}

static void metadata(struct layer_metadata *m, size_t n, char **state_paths)
{
        *m = (struct layer_metadata){.n_layers = n, .state_paths = state_paths};
        m->layers = calloc(n, sizeof(*m->layers));
        assert_non_null(m->layers);
        for (size_t i = 0; i < n; i++) {
                assert_true(asprintf(&m->layers[i].dir, "layer-%zu", i) > 0);
                m->layers[i].id = m->layers[i].dir;
        }
}

static void metadata_free(struct layer_metadata *m)
{
        for (size_t i = 0; i < m->n_layers; i++)
                free(m->layers[i].dir);
        free(m->layers);
}

static void test_machine_plan(void **state)
{
        _cleanup_(mount_plan_freep) struct mount_plan *p = NULL;
        char *sp[] = {(char *)"/var/lib/pg", NULL};
        struct machine_bind b = {.src = "/src", .dest = "/src", .read_only = true};
        struct machine_options o = {.data_dir = "/d",
                                    .base = "/base",
                                    .bind_data = true,
                                    .binds = &b,
                                    .n_binds = 1,
                                    .policy_rc_d = "#!/bin/sh\nexit 101\n"};
        struct layer_metadata m;
        const struct mount_op *op;

        metadata(&m, 2, sp);
        assert_int_equal(machine_root_plan(&o, &m, &p), 0);
        /* The root first: newest layer first, the base last. */
        assert_int_equal(p->ops[0].type, MOUNT_OP_OVERLAY);
        assert_string_equal(p->ops[0].dest, "/");
        assert_string_equal(p->ops[0].lowerdirs[0], "/d/system/layers/layer-1/fs");
        assert_string_equal(p->ops[0].lowerdirs[1], "/d/system/layers/layer-0/fs");
        assert_string_equal(p->ops[0].lowerdirs[2], "/base");
        assert_null(p->ops[0].lowerdirs[3]);
        assert_string_equal(p->ops[0].upperdir, "/d/system/upper");
        assert_string_equal(p->ops[0].workdir, "/d/system/work");
        /* a machine's own upper is kept: never volatile */
        assert_null(p->ops[0].options);
        assert_non_null(find_op(p, MOUNT_OP_DEV, "/dev"));
        assert_non_null(find_op(p, MOUNT_OP_PROC, "/proc"));
        assert_non_null(find_op(p, MOUNT_OP_SYSFS, "/sys"));
        assert_non_null(find_op(p, MOUNT_OP_BIND, "/sys/fs/cgroup"));
        assert_non_null(find_op(p, MOUNT_OP_TMPFS, "/run"));
        assert_null(find_op(p, MOUNT_OP_TMPFS, "/tmp"));
        op = find_op(p, MOUNT_OP_BIND, "/data");
        assert_non_null(op);
        assert_string_equal(op->src, "/d");
        op = find_op(p, MOUNT_OP_BIND, "/var/lib/pg");
        assert_non_null(op);
        assert_string_equal(op->src, "/d/state/var/lib/pg");
        op = find_op(p, MOUNT_OP_WRITE_FILE, "/usr/sbin/policy-rc.d");
        assert_non_null(op);
        assert_int_equal(op->mode, 0755);
        op = find_op(p, MOUNT_OP_BIND, "/src");
        assert_true(op && (op->flags & MOUNT_PLAN_RO));
        /* State binds come after /data, extra binds last. */
        assert_true(find_op(p, MOUNT_OP_BIND, "/data") < find_op(p, MOUNT_OP_BIND, "/var/lib/pg"));
        assert_ptr_equal(op, &p->ops[p->n_ops - 1]);
        metadata_free(&m);
}

/* migrate's variant: its own upper, state as overlays over a scratch dir. */
static void test_migrate_variant(void **state)
{
        _cleanup_(mount_plan_freep) struct mount_plan *p = NULL;
        _cleanup_free_ char *scratch = NULL, *d = NULL;
        char *sp[] = {(char *)"/var/lib/a", (char *)"/srv/b", NULL};
        struct machine_options o = {.data_dir = "/d",
                                    .upper_dir = "/d/system/layers/.tmp-x/fs",
                                    .work_dir = "/d/system/layers/.tmp-x/work",
                                    .tmp_tmpfs = true,
                                    .volatile_upper = true,
                                    .dev = MACHINE_DEV_MINIMAL};
        struct layer_metadata m;
        const struct mount_op *op;
        struct stat st;

        assert_int_equal(mkdtemp_malloc("test-machine", &scratch), 0);
        o.state_scratch = scratch;
        metadata(&m, 0, sp);
        assert_int_equal(machine_root_plan(&o, &m, &p), 0);
        assert_string_equal(p->ops[0].upperdir, "/d/system/layers/.tmp-x/fs");
        assert_string_equal(p->ops[0].lowerdirs[0], "/");
        /* thrown away after a crash, synced by migrate before its commit */
        assert_string_equal(p->ops[0].options, "volatile");
        assert_non_null(find_op(p, MOUNT_OP_DEV_MINIMAL, "/dev"));
        assert_non_null(find_op(p, MOUNT_OP_TMPFS, "/tmp"));
        assert_null(find_op(p, MOUNT_OP_BIND, "/data"));
        op = find_op(p, MOUNT_OP_OVERLAY, "/srv/b");
        assert_non_null(op);
        assert_string_equal(op->lowerdirs[0], "/d/state/srv/b");
        assert_string_equal(op->options, "volatile");
        assert_true(asprintf(&d, "%s/1/upper", scratch) > 0);
        assert_string_equal(op->upperdir, d);
        assert_int_equal(stat(d, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(rm_rf_at(AT_FDCWD, scratch, RM_ROOT), 0);
        metadata_free(&m);
}

static void test_ephemeral_tmpfs_first(void **state)
{
        _cleanup_(mount_plan_freep) struct mount_plan *p = NULL;
        struct machine_options o = {.data_dir = "/d", .system_tmpfs = true, .state_tmpfs = true};

        assert_int_equal(machine_root_plan(&o, NULL, &p), 0);
        assert_int_equal(p->ops[0].type, MOUNT_OP_TMPFS);
        assert_string_equal(p->ops[0].dest, "/d/system");
        assert_true(p->ops[0].flags & MOUNT_PLAN_HOST);
        assert_non_null(find_op(p, MOUNT_OP_MKDIR, "/d/system/upper"));
        assert_non_null(find_op(p, MOUNT_OP_TMPFS, "/d/state"));
        assert_true(find_op(p, MOUNT_OP_TMPFS, "/d/state") < find_op(p, MOUNT_OP_OVERLAY, "/"));
}

static void test_rejects(void **state)
{
        struct mount_plan *p = NULL;
        char *bad1[] = {(char *)"var/lib", NULL}, *bad2[] = {(char *)"/var/../etc", NULL};
        struct machine_options o = {.data_dir = "/d"}, rel = {.data_dir = "d"};
        struct layer_metadata m;

        assert_int_equal(machine_root_plan(&rel, NULL, &p), -EINVAL);
        metadata(&m, 0, bad1);
        assert_int_equal(machine_root_plan(&o, &m, &p), -EINVAL);
        m.state_paths = bad2;
        assert_int_equal(machine_root_plan(&o, &m, &p), -EINVAL);
        metadata_free(&m);
        metadata(&m, MOUNT_PLAN_OVERLAY_MAX_LOWER, NULL);
        assert_int_equal(machine_root_plan(&o, &m, &p), -E2BIG);
        assert_null(p);
        metadata_free(&m);
}

TEST_MAIN(cmocka_unit_test(test_machine_plan), cmocka_unit_test(test_migrate_variant),
          cmocka_unit_test(test_ephemeral_tmpfs_first), cmocka_unit_test(test_rejects))
