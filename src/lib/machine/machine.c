/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "fs.h"
#include "log.h"
#include "machine.h"
#include "macro.h"

static bool state_path_ok(const char *p)
{
        if (!p || p[0] != '/' || streq(p, "/"))
                return false;
        /* No ".." component: a state path must stay where it says. */
        for (const char *s = p; (s = strstr(s, "..")); s += 2)
                if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
                        return false;
        return true;
}

static int path_join(const char *a, const char *b, char **ret)
{
        size_t l = strlen(a);

        while (l > 1 && a[l - 1] == '/')
                l--;
        if (asprintf(ret, "%.*s%s%s", (int)l, a, b[0] == '/' ? "" : "/", b) < 0)
                return -ENOMEM;
        return 0;
}

/* Host-side layout of a throwaway system dir, created inside the tmpfs. */
static int add_system_tmpfs(struct mount_plan *p, const char *data)
{
        static const char *const dirs[] = {"upper", "work", "layers", "migrations", "lock"};
        _cleanup_free_ char *system = NULL;
        int r;

        r = path_join(data, "system", &system);
        if (r < 0)
                return r;
        r = mount_plan_add_tmpfs(p, system, "mode=0755", MOUNT_PLAN_HOST | MOUNT_PLAN_CREATE_DEST);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *d = NULL;
                r = path_join(system, dirs[i], &d);
                if (r >= 0)
                        r = mount_plan_add_mkdir(p, d, 0755, MOUNT_PLAN_HOST);
        }
        return r;
}

/* Whether the layers of data_dir lie inside base on the same file system:
 * the kernel refuses such a stack as overlapping layers (ELOOP). */
static bool layers_inside_base(const char *base, const char *data_dir)
{
        struct stat a, b;
        size_t l = strlen(base);

        while (l > 1 && base[l - 1] == '/')
                l--;
        if (!(l == 1 || (strncmp(data_dir, base, l) == 0 && data_dir[l] == '/')))
                return false;
        return stat(base, &a) >= 0 && stat(data_dir, &b) >= 0 && a.st_dev == b.st_dev;
}

/* Mounts base (read-only, with an empty tmpfs as a second lower dir: an
 * overlay needs two without an upper) at <scratch>/base, a file system of
 * its own, and makes that the base of the stack. */
static int add_isolated_base(struct mount_plan *p, const char *scratch, char **lowers, size_t n)
{
        _cleanup_free_ char *empty = NULL, *mnt = NULL;
        char *l[3] = {lowers[n - 1], NULL, NULL};
        int r;

        r = path_join(scratch, "empty", &empty);
        if (r >= 0)
                r = path_join(scratch, "base", &mnt);
        if (r < 0)
                return r;
        l[1] = empty;
        r = mount_plan_add_tmpfs(p, empty, "mode=0755,size=4k",
                                 MOUNT_PLAN_HOST | MOUNT_PLAN_CREATE_DEST | MOUNT_PLAN_RO);
        if (r >= 0)
                r = mount_plan_add_mkdir(p, mnt, 0755, MOUNT_PLAN_HOST);
        if (r >= 0)
                r = mount_plan_add_overlay(p, mnt, l, NULL, NULL, MOUNT_PLAN_HOST);
        if (r < 0)
                return r;
        free(lowers[n - 1]);
        lowers[n - 1] = TAKE_PTR(mnt);
        return 0;
}

/* /dev, /proc, /sys (and the host's cgroup trees), /run, /tmp and /data. */
static int add_kernel_and_scratch(struct mount_plan *p, const struct machine_options *o)
{
        int r;

        if (o->dev == MACHINE_DEV_MINIMAL)
                r = mount_plan_add_dev_minimal(p, "/dev", MOUNT_PLAN_CREATE_DEST);
        else
                r = mount_plan_add_dev(p, "/dev", MOUNT_PLAN_CREATE_DEST);
        if (r >= 0)
                r = mount_plan_add_proc(p, "/proc", MOUNT_PLAN_CREATE_DEST);
        if (r >= 0 && o->read_only_kernel)
                r = mount_plan_add_bind(p, "/proc/sys", "/proc/sys",
                                        MOUNT_PLAN_SRC_IN_ROOT | MOUNT_PLAN_REC | MOUNT_PLAN_RO);
        if (r >= 0 && o->read_only_kernel)
                r = mount_plan_add_bind(p, "/proc/sysrq-trigger", "/proc/sysrq-trigger",
                                        MOUNT_PLAN_SRC_IN_ROOT | MOUNT_PLAN_RO |
                                            MOUNT_PLAN_OPTIONAL);
        if (r >= 0)
                r = mount_plan_add_sysfs(
                    p, "/sys", MOUNT_PLAN_CREATE_DEST | (o->read_only_kernel ? MOUNT_PLAN_RO : 0));
        if (r >= 0 && o->cgroup == MACHINE_CGROUP_HOST)
                r = mount_plan_add_bind(p, "/sys/fs/cgroup", "/sys/fs/cgroup",
                                        MOUNT_PLAN_REC | MOUNT_PLAN_OPTIONAL |
                                            (o->read_only_kernel ? MOUNT_PLAN_RO : 0));
        if (r >= 0)
                r = mount_plan_add_tmpfs(p, "/run", "mode=0755",
                                         MOUNT_PLAN_CREATE_DEST | MOUNT_PLAN_NOSUID |
                                             MOUNT_PLAN_NODEV);
        if (r >= 0 && o->tmp_tmpfs)
                r = mount_plan_add_tmpfs(p, "/tmp", "mode=1777",
                                         MOUNT_PLAN_CREATE_DEST | MOUNT_PLAN_NOSUID |
                                             MOUNT_PLAN_NODEV);
        if (r >= 0 && o->bind_data)
                r = mount_plan_add_bind(p, o->data_dir, "/data",
                                        MOUNT_PLAN_REC | MOUNT_PLAN_CREATE_DEST);
        return r;
}

/* Each state path: a bind of <data>/state/<path>, or with state_scratch
 * an overlay over it whose upper and work dirs are created here. */
static int add_state_paths(struct mount_plan *p, const struct machine_options *o,
                           const struct layer_metadata *m, const char *state)
{
        int r;

        for (size_t i = 0; m->state_paths && m->state_paths[i]; i++) {
                const char *sp = m->state_paths[i];
                _cleanup_free_ char *src = NULL;

                r = path_join(state, sp, &src);
                if (r < 0)
                        return r;
                if (o->state_scratch) {
                        _cleanup_free_ char *su = NULL, *sw = NULL;
                        char *lower[] = {src, NULL};

                        if (asprintf(&su, "%s/%zu/upper", o->state_scratch, i) < 0 ||
                            asprintf(&sw, "%s/%zu/work", o->state_scratch, i) < 0)
                                return -ENOMEM;
                        r = mkdir_p_at(AT_FDCWD, su, 0755);
                        if (r >= 0)
                                r = mkdir_p_at(AT_FDCWD, sw, 0755);
                        if (r < 0)
                                return r;
                        r = mount_plan_add_overlay(p, sp, lower, su, sw, MOUNT_PLAN_CREATE_DEST);
                        if (r >= 0 && o->volatile_upper)
                                r = mount_plan_set_options(p, "volatile");
                } else
                        r = mount_plan_add_bind(p, src, sp, MOUNT_PLAN_CREATE_DEST);
                if (r < 0)
                        return r;
        }
        return 0;
}

int machine_root_plan(const struct machine_options *o, const struct layer_metadata *m,
                      struct mount_plan **ret)
{
        _cleanup_(mount_plan_freep) struct mount_plan *p = NULL;
        _cleanup_strv_ char **lowers = NULL;
        _cleanup_free_ char *upper = NULL, *work = NULL, *state = NULL;
        const char *base = o->base ? o->base : "/";
        const struct layer_metadata empty = {};
        size_t n = 0;
        int r;

        if (!o->data_dir || o->data_dir[0] != '/' || base[0] != '/')
                return -EINVAL;
        if (!m)
                m = &empty;
        for (char **s = m->state_paths; s && *s; s++)
                if (!state_path_ok(*s))
                        return -EINVAL;
        if (m->n_layers + 1 > MOUNT_PLAN_OVERLAY_MAX_LOWER)
                return -E2BIG;

        r = layer_metadata_lowerdirs(m, o->data_dir, base, &lowers);
        if (r < 0)
                return r;
        while (lowers[n])
                n++;
        if (n > MOUNT_PLAN_OVERLAY_MAX_LOWER)
                return -E2BIG;

        if (o->upper_dir) {
                upper = strdup(o->upper_dir);
                work = o->work_dir ? strdup(o->work_dir) : NULL;
                if (!upper || !work)
                        return -ENOMEM;
        } else {
                r = path_join(o->data_dir, "system/upper", &upper);
                if (r >= 0)
                        r = path_join(o->data_dir, "system/work", &work);
                if (r < 0)
                        return r;
        }
        r = path_join(o->data_dir, "state", &state);
        if (r < 0)
                return r;

        r = mount_plan_new(&p);
        if (r < 0)
                return r;

        if (o->system_tmpfs) {
                r = add_system_tmpfs(p, o->data_dir);
                if (r < 0)
                        return r;
        }
        if (o->state_tmpfs) {
                r = mount_plan_add_tmpfs(p, state, "mode=0755",
                                         MOUNT_PLAN_HOST | MOUNT_PLAN_CREATE_DEST);
                for (char **s = m->state_paths; r >= 0 && s && *s; s++) {
                        _cleanup_free_ char *d = NULL;
                        r = path_join(state, *s, &d);
                        if (r >= 0)
                                r = mount_plan_add_mkdir(p, d, 0755, MOUNT_PLAN_HOST);
                }
                if (r < 0)
                        return r;
        }

        if (o->base_scratch && m->n_layers > 0 && layers_inside_base(base, o->data_dir)) {
                r = add_isolated_base(p, o->base_scratch, lowers, n);
                if (r < 0)
                        return r;
        }

        r = mount_plan_add_overlay(p, "/", lowers, upper, work, 0);
        if (r >= 0 && o->volatile_upper)
                r = mount_plan_set_options(p, "volatile");
        if (r < 0)
                return r;

        r = add_kernel_and_scratch(p, o);
        if (r >= 0)
                r = add_state_paths(p, o, m, state);
        if (r < 0)
                return r;

        if (o->policy_rc_d) {
                r = mount_plan_add_write_file(p, "/usr/sbin/policy-rc.d", o->policy_rc_d,
                                              strlen(o->policy_rc_d), 0755, 0);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < o->n_binds; i++) {
                r = mount_plan_add_bind(p, o->binds[i].src, o->binds[i].dest,
                                        MOUNT_PLAN_REC | MOUNT_PLAN_CREATE_DEST |
                                            (o->binds[i].read_only ? MOUNT_PLAN_RO : 0));
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(p);
        return 0;
}
