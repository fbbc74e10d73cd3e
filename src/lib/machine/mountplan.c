/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "macro.h"
#include "json.h"
#include "mountinfo.h"
#include "mountplan.h"

/* Set by tests to exercise the path for kernels without "lowerdir+". */
bool mount_plan_force_legacy_overlay = false;

static const char *const op_names[_MOUNT_OP_MAX] = {
    [MOUNT_OP_TMPFS] = "tmpfs",
    [MOUNT_OP_OVERLAY] = "overlay",
    [MOUNT_OP_BIND] = "bind",
    [MOUNT_OP_PROC] = "proc",
    [MOUNT_OP_SYSFS] = "sysfs",
    [MOUNT_OP_DEV] = "dev",
    [MOUNT_OP_DEV_MINIMAL] = "dev-minimal",
    [MOUNT_OP_MKDIR] = "mkdir",
    [MOUNT_OP_WRITE_FILE] = "write-file",
    [MOUNT_OP_SYMLINK] = "symlink",
    [MOUNT_OP_REMOUNT_RO] = "remount-ro",
};

static const struct {
        unsigned flag;
        const char *name;
} flag_names[] = {
    {MOUNT_PLAN_OPTIONAL, "optional"},
    {MOUNT_PLAN_CREATE_DEST, "create-dest"},
    {MOUNT_PLAN_RO, "ro"},
    {MOUNT_PLAN_REC, "rec"},
    {MOUNT_PLAN_NOSUID, "nosuid"},
    {MOUNT_PLAN_NODEV, "nodev"},
    {MOUNT_PLAN_NOEXEC, "noexec"},
    {MOUNT_PLAN_HOST, "host"},
    {MOUNT_PLAN_SRC_IN_ROOT, "src-in-root"},
    {MOUNT_PLAN_UPPER_IN_ROOT, "upper-in-root"},
    {MOUNT_PLAN_LOWER_OPTIONAL, "lower-optional"},
};

const char *mount_op_type_to_string(enum mount_op_type t)
{
        if ((int)t < 0 || t >= _MOUNT_OP_MAX)
                return NULL;
        return op_names[t];
}

int mount_op_type_from_string(const char *s)
{
        for (int i = 0; i < _MOUNT_OP_MAX; i++)
                if (streq(op_names[i], s))
                        return i;
        return -EINVAL;
}

static void mount_op_done(struct mount_op *op)
{
        free(op->dest);
        free(op->src);
        strv_free(op->lowerdirs);
        free(op->upperdir);
        free(op->workdir);
        free(op->options);
        free(op->target);
        free(op->data);
}

int mount_plan_new(struct mount_plan **ret)
{
        struct mount_plan *p = calloc(1, sizeof(*p));

        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

struct mount_plan *mount_plan_free(struct mount_plan *p)
{
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_ops; i++)
                mount_op_done(&p->ops[i]);
        free(p->ops);
        free(p);
        return NULL;
}

static int strdup_opt(const char *s, char **ret)
{
        if (!s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

/* Appends op (taking its strings) or frees them and fails. */
static int plan_push(struct mount_plan *p, struct mount_op *op)
{
        if (p->n_ops == p->allocated) {
                size_t n = p->allocated ? p->allocated * 2 : 16;
                struct mount_op *a = reallocarray(p->ops, n, sizeof(*a));
                if (!a) {
                        mount_op_done(op);
                        return -ENOMEM;
                }
                p->ops = a;
                p->allocated = n;
        }
        p->ops[p->n_ops++] = *op;
        return 0;
}

static bool path_ok(const char *path)
{
        return path && path[0] == '/';
}

static int op_init(struct mount_op *op, enum mount_op_type type, const char *dest, unsigned flags)
{
        *op = (struct mount_op){.type = type, .flags = flags};
        if (!path_ok(dest))
                return -EINVAL;
        return strdup_opt(dest, &op->dest);
}

int mount_plan_add_tmpfs(struct mount_plan *p, const char *dest, const char *options,
                         unsigned flags)
{
        struct mount_op op;
        int r;

        r = op_init(&op, MOUNT_OP_TMPFS, dest, flags);
        if (r >= 0)
                r = strdup_opt(options, &op.options);
        if (r < 0) {
                mount_op_done(&op);
                return r;
        }
        return plan_push(p, &op);
}

int mount_plan_add_overlay(struct mount_plan *p, const char *dest, char *const *lowerdirs,
                           const char *upperdir, const char *workdir, unsigned flags)
{
        struct mount_op op;
        size_t n = 0;
        int r;

        if (!lowerdirs || !lowerdirs[0] || !upperdir != !workdir)
                return -EINVAL;
        if ((upperdir && !path_ok(upperdir)) || (workdir && !path_ok(workdir)))
                return -EINVAL;
        while (lowerdirs[n]) {
                if (!path_ok(lowerdirs[n]))
                        return -EINVAL;
                n++;
        }

        r = op_init(&op, MOUNT_OP_OVERLAY, dest, flags);
        if (r >= 0)
                r = strdup_opt(upperdir, &op.upperdir);
        if (r >= 0)
                r = strdup_opt(workdir, &op.workdir);
        if (r >= 0) {
                op.lowerdirs = calloc(n + 1, sizeof(char *));
                if (!op.lowerdirs)
                        r = -ENOMEM;
                for (size_t i = 0; r >= 0 && i < n; i++)
                        r = strdup_opt(lowerdirs[i], &op.lowerdirs[i]);
        }
        if (r < 0) {
                mount_op_done(&op);
                return r;
        }
        return plan_push(p, &op);
}

/* Sets the extra options of the last op (overlay: "redirect_dir=on"...). */
static int plan_last_set_options(struct mount_plan *p, const char *options)
{
        char *s;

        if (!options)
                return 0;
        s = strdup(options);
        if (!s)
                return -ENOMEM;
        free(p->ops[p->n_ops - 1].options);
        p->ops[p->n_ops - 1].options = s;
        return 0;
}

int mount_plan_set_options(struct mount_plan *p, const char *options)
{
        if (!p || p->n_ops == 0)
                return -EINVAL;
        return plan_last_set_options(p, options);
}

int mount_plan_add_bind(struct mount_plan *p, const char *src, const char *dest, unsigned flags)
{
        struct mount_op op;
        int r;

        if (!path_ok(src))
                return -EINVAL;
        r = op_init(&op, MOUNT_OP_BIND, dest, flags);
        if (r >= 0)
                r = strdup_opt(src, &op.src);
        if (r < 0) {
                mount_op_done(&op);
                return r;
        }
        return plan_push(p, &op);
}

static int add_simple(struct mount_plan *p, enum mount_op_type type, const char *dest,
                      unsigned flags)
{
        struct mount_op op;
        int r;

        r = op_init(&op, type, dest, flags);
        if (r < 0) {
                mount_op_done(&op);
                return r;
        }
        return plan_push(p, &op);
}

int mount_plan_add_proc(struct mount_plan *p, const char *dest, unsigned flags)
{
        return add_simple(p, MOUNT_OP_PROC, dest, flags);
}

int mount_plan_add_sysfs(struct mount_plan *p, const char *dest, unsigned flags)
{
        return add_simple(p, MOUNT_OP_SYSFS, dest, flags);
}

int mount_plan_add_dev(struct mount_plan *p, const char *dest, unsigned flags)
{
        return add_simple(p, MOUNT_OP_DEV, dest, flags);
}

int mount_plan_add_dev_minimal(struct mount_plan *p, const char *dest, unsigned flags)
{
        return add_simple(p, MOUNT_OP_DEV_MINIMAL, dest, flags);
}

int mount_plan_add_remount_ro(struct mount_plan *p, const char *dest, unsigned flags)
{
        return add_simple(p, MOUNT_OP_REMOUNT_RO, dest, flags);
}

int mount_plan_add_mkdir(struct mount_plan *p, const char *dest, mode_t mode, unsigned flags)
{
        struct mount_op op;
        int r;

        r = op_init(&op, MOUNT_OP_MKDIR, dest, flags);
        if (r < 0) {
                mount_op_done(&op);
                return r;
        }
        op.mode = mode;
        return plan_push(p, &op);
}

int mount_plan_add_write_file(struct mount_plan *p, const char *dest, const void *data, size_t len,
                              mode_t mode, unsigned flags)
{
        struct mount_op op;
        int r;

        if (!data && len > 0)
                return -EINVAL;
        r = op_init(&op, MOUNT_OP_WRITE_FILE, dest, flags);
        if (r >= 0 && streq(dest, "/"))
                r = -EINVAL;
        if (r >= 0) {
                op.data = malloc(len + 1);
                if (!op.data)
                        r = -ENOMEM;
                else {
                        if (len)
                                memcpy(op.data, data, len);
                        op.data[len] = '\0';
                        op.data_len = len;
                }
        }
        if (r < 0) {
                mount_op_done(&op);
                return r;
        }
        op.mode = mode;
        return plan_push(p, &op);
}

int mount_plan_add_symlink(struct mount_plan *p, const char *target, const char *dest,
                           unsigned flags)
{
        struct mount_op op;
        int r;

        if (!target || !*target)
                return -EINVAL;
        r = op_init(&op, MOUNT_OP_SYMLINK, dest, flags);
        if (r >= 0 && streq(dest, "/"))
                r = -EINVAL;
        if (r >= 0)
                r = strdup_opt(target, &op.target);
        if (r < 0) {
                mount_op_done(&op);
                return r;
        }
        return plan_push(p, &op);
}

/* ---- applying ---------------------------------------------------------- */

struct apply_ctx {
        int root_fd; /* the new root */
        int host_fd; /* host_prefix, or "/" */
        const char *root_path;
        const char *prefix;   /* "" or host_prefix without a trailing slash */
        char kernel_msg[512]; /* last fs context message, if any */
};

static int resolve_in(int dirfd, const char *path, int flags, int *ret)
{
        struct open_how how = {
            .flags = (uint64_t)(flags | O_CLOEXEC),
            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        int fd;

        while (*path == '/')
                path++;
        fd = (int)syscall(SYS_openat2, dirfd, *path ? path : ".", &how, sizeof(how));
        if (fd < 0)
                return -errno;
        *ret = fd;
        return 0;
}

static int mkdir_p_in_fd(int dirfd, const char *path, mode_t mode, int *ret_fd);

/* mkdir_p_in_fd() for a path a lookup has just found missing. */
static int mkdir_missing_in_fd(int dirfd, const char *path, mode_t mode, int *ret_fd)
{
        _cleanup_free_ char *parent = NULL;
        _cleanup_close_ int pfd = -1;
        const char *name;
        size_t l;
        int r, fd;

        l = strlen(path);
        while (l > 0 && path[l - 1] == '/')
                l--;
        parent = strndup(path, l);
        if (!parent)
                return -ENOMEM;
        name = strrchr(parent, '/');
        if (!name)
                return -ENOENT;
        parent[name - parent] = '\0';
        name = path + (name - parent) + 1;
        if (!*name)
                return -ENOENT;
        {
                /* name points into path: cut its trailing slashes. */
                _cleanup_free_ char *n = strndup(name, l - (size_t)(name - path));

                if (!n)
                        return -ENOMEM;
                r = mkdir_p_in_fd(dirfd, parent, 0755, &pfd);
                if (r < 0)
                        return r;
                if (mkdirat(pfd, n, mode) < 0) {
                        if (errno != EEXIST)
                                return -errno;
                } else if (fchmodat(pfd, n, mode, 0) < 0) /* not the umask's */
                        return -errno;
                fd = openat(pfd, n, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0 && errno == ELOOP) /* a symlink raced in: resolve it in the root */
                        return resolve_in(dirfd, path, O_PATH | O_DIRECTORY, ret_fd);
                if (fd < 0)
                        return -errno;
        }
        *ret_fd = fd;
        return 0;
}

/* Opens the directory path under dirfd, creating it and its missing parents
 * (0755) first; a directory it creates gets exactly mode. Existing parts
 * cost one lookup: the walk back only happens for missing ones. */
static int mkdir_p_in_fd(int dirfd, const char *path, mode_t mode, int *ret_fd)
{
        int r = resolve_in(dirfd, path, O_PATH | O_DIRECTORY, ret_fd);

        return r == -ENOENT ? mkdir_missing_in_fd(dirfd, path, mode, ret_fd) : r;
}

static int mkdir_p_in(int dirfd, const char *path, mode_t mode)
{
        int fd, r;

        r = mkdir_p_in_fd(dirfd, path, mode, &fd);
        if (r < 0)
                return r;
        close(fd);
        return 0;
}

/* Splits dest into its parent (created when create) and returns an fd of the
 * parent and a pointer to the last component in dest. */
static int open_parent_in(int dirfd, const char *dest, bool create, int *ret_fd,
                          const char **ret_name)
{
        _cleanup_free_ char *parent = NULL;
        const char *slash = strrchr(dest, '/');
        int r;

        if (!slash || slash[1] == '\0')
                return -EINVAL;
        parent = strndup(dest, (size_t)(slash - dest));
        if (!parent)
                return -ENOMEM;
        if (create)
                r = mkdir_p_in_fd(dirfd, parent, 0755, ret_fd);
        else
                r = resolve_in(dirfd, parent, O_PATH | O_DIRECTORY, ret_fd);
        if (r < 0)
                return r;
        *ret_name = slash + 1;
        return 0;
}

/* Opens the mount target dest under dirfd; with create, makes it a directory
 * (or an empty file when !dir) first. */
static int open_target(int dirfd, const char *dest, bool create, bool dir, int *ret)
{
        int r;

        r = resolve_in(dirfd, dest, O_PATH, ret);
        if (r != -ENOENT || !create)
                return r;
        if (dir)
                return mkdir_missing_in_fd(dirfd, dest, 0755, ret);
        else {
                _cleanup_close_ int parent = -1;
                const char *name;
                int fd;

                r = open_parent_in(dirfd, dest, true, &parent, &name);
                if (r < 0)
                        return r;
                fd = openat(parent, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (fd < 0)
                        return -errno;
                close(fd);
        }
        return resolve_in(dirfd, dest, O_PATH, ret);
}

static void save_kernel_msg(struct apply_ctx *c, int fsfd)
{
        char buf[256];
        ssize_t n;
        size_t l = 0;

        c->kernel_msg[0] = '\0';
        while ((n = read(fsfd, buf, sizeof(buf) - 1)) > 0) {
                buf[n] = '\0';
                if (n > 0 && buf[n - 1] == '\n')
                        buf[n - 1] = '\0';
                /* Messages are "e overlay: ...", "w ...", "i ...". */
                l +=
                    (size_t)snprintf(c->kernel_msg + l, sizeof(c->kernel_msg) - l, "%s%s",
                                     l ? "; " : "kernel: ", buf + (n > 2 && buf[1] == ' ' ? 2 : 0));
                if (l >= sizeof(c->kernel_msg) - 1)
                        break;
        }
}

static unsigned mount_attrs(unsigned flags)
{
        unsigned a = 0;

        if (flags & MOUNT_PLAN_RO)
                a |= MOUNT_ATTR_RDONLY;
        if (flags & MOUNT_PLAN_NOSUID)
                a |= MOUNT_ATTR_NOSUID;
        if (flags & MOUNT_PLAN_NODEV)
                a |= MOUNT_ATTR_NODEV;
        if (flags & MOUNT_PLAN_NOEXEC)
                a |= MOUNT_ATTR_NOEXEC;
        return a;
}

/* Passes "a=b,c" to the fs context, one fsconfig() per option. */
static int fs_set_options(int fsfd, const char *options)
{
        _cleanup_free_ char *buf = NULL;
        char *save = NULL;

        if (!options || !*options)
                return 0;
        buf = strdup(options);
        if (!buf)
                return -ENOMEM;
        for (char *o = strtok_r(buf, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(o, '=');
                int r;

                if (eq) {
                        *eq = '\0';
                        r = fsconfig(fsfd, FSCONFIG_SET_STRING, o, eq + 1, 0);
                } else
                        r = fsconfig(fsfd, FSCONFIG_SET_FLAG, o, NULL, 0);
                if (r < 0)
                        return -errno;
        }
        return 0;
}

/* Creates the superblock of fsfd, makes a mount of it and moves it onto
 * target_fd. */
static int fs_finish(struct apply_ctx *c, int fsfd, unsigned flags, int target_fd)
{
        _cleanup_close_ int mfd = -1;

        if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
                int r = -errno;
                save_kernel_msg(c, fsfd);
                return r;
        }
        mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, mount_attrs(flags));
        if (mfd < 0) {
                int r = -errno;
                save_kernel_msg(c, fsfd);
                return r;
        }
        if (move_mount(mfd, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) <
            0)
                return -errno;
        return 0;
}

static int mount_fs(struct apply_ctx *c, const char *fstype, const char *options, unsigned flags,
                    int target_fd)
{
        _cleanup_close_ int fsfd = fsopen(fstype, FSOPEN_CLOEXEC);
        int r;

        if (fsfd < 0)
                return -errno;
        r = fs_set_options(fsfd, options);
        if (r < 0) {
                save_kernel_msg(c, fsfd);
                return r;
        }
        return fs_finish(c, fsfd, flags, target_fd);
}

/* The dir (or root) fd an operation's dest is resolved under. */
static int dest_base(const struct apply_ctx *c, const struct mount_op *op)
{
        return (op->flags & MOUNT_PLAN_HOST) ? c->host_fd : c->root_fd;
}

static size_t prefix_len(const struct apply_ctx *c, unsigned flags)
{
        const char *prefix = (flags & MOUNT_PLAN_SRC_IN_ROOT) ? c->root_path : c->prefix;
        size_t l = strlen(prefix);

        while (l > 0 && prefix[l - 1] == '/')
                l--;
        return l;
}

static int host_path(const struct apply_ctx *c, unsigned flags, const char *path, char **ret)
{
        const char *prefix = (flags & MOUNT_PLAN_SRC_IN_ROOT) ? c->root_path : c->prefix;
        size_t l = prefix_len(c, flags);
        char *s;

        if (asprintf(&s, "%.*s%s", (int)l, prefix, path) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* Bind of a host path (prefixed) onto target_fd. */
static int bind_tree(const struct apply_ctx *c, const char *src, unsigned flags, int target_fd)
{
        _cleanup_free_ char *full = NULL;
        _cleanup_close_ int tfd = -1;
        unsigned attrs = mount_attrs(flags);
        int r;

        r = host_path(c, flags, src, &full);
        if (r < 0)
                return r;
        tfd = open_tree(AT_FDCWD, full,
                        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
                            ((flags & MOUNT_PLAN_REC) ? AT_RECURSIVE : 0));
        if (tfd < 0)
                return -errno;
        if (attrs) {
                struct mount_attr a = {.attr_set = attrs};
                if (mount_setattr(tfd, "",
                                  AT_EMPTY_PATH | ((flags & MOUNT_PLAN_REC) ? AT_RECURSIVE : 0), &a,
                                  sizeof(a)) < 0)
                        return -errno;
        }
        if (move_mount(tfd, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) <
            0)
                return -errno;
        return 0;
}

static int apply_bind(struct apply_ctx *c, const struct mount_op *op)
{
        _cleanup_free_ char *full = NULL;
        _cleanup_close_ int target = -1;
        struct stat st;
        int r;

        r = host_path(c, op->flags, op->src, &full);
        if (r < 0)
                return r;
        if (stat(full, &st) < 0)
                return -errno;
        r = open_target(dest_base(c, op), op->dest, op->flags & MOUNT_PLAN_CREATE_DEST,
                        S_ISDIR(st.st_mode), &target);
        if (r < 0)
                return r;
        return bind_tree(c, op->src, op->flags, target);
}

/* Escapes the characters overlayfs splits lowerdir= on. */
static int append_escaped(char **buf, size_t *len, size_t *cap, const char *s)
{
        for (; *s; s++) {
                if (*len + 3 > *cap) {
                        size_t n = *cap ? *cap * 2 : 256;
                        char *b = realloc(*buf, n);
                        if (!b)
                                return -ENOMEM;
                        *buf = b;
                        *cap = n;
                }
                if (*s == ':' || *s == ',' || *s == '\\')
                        (*buf)[(*len)++] = '\\';
                (*buf)[(*len)++] = *s;
                (*buf)[*len] = '\0';
        }
        return 0;
}

static int append_raw(char **buf, size_t *len, size_t *cap, const char *s)
{
        size_t l = strlen(s);

        if (*len + l + 1 > *cap) {
                size_t n = MAX(*cap * 2, *len + l + 256);
                char *b = realloc(*buf, n);
                if (!b)
                        return -ENOMEM;
                *buf = b;
                *cap = n;
        }
        memcpy(*buf + *len, s, l + 1);
        *len += l;
        return 0;
}

/* Longest common directory of the lower dirs ("/a/b/x", "/a/b/y" -> "/a/b"). */
static size_t common_dir_len(char *const *dirs)
{
        size_t l = strlen(dirs[0]);

        for (size_t i = 1; dirs[i]; i++) {
                size_t k = 0;
                while (k < l && dirs[i][k] == dirs[0][k])
                        k++;
                l = k;
        }
        /* Back up to a '/' that ends a whole component in every dir. */
        for (;;) {
                bool ok = true;
                while (l > 0 && dirs[0][l - 1] != '/')
                        l--;
                if (l <= 1)
                        return l;
                for (size_t i = 0; dirs[i]; i++)
                        if (dirs[i][l - 1] != '/')
                                ok = false;
                if (ok)
                        return l - 1;
                l--;
        }
}

/* Appends the lower dirs to s: each by the number of an fd of it when fds
 * is set (the cwd is then /proc/self/fd, so "12:13:14" names them in 500 x
 * 4 bytes whatever their paths), else relative to their common parent of
 * length cl (the cwd then). */
static int append_lowers(char **s, size_t *len, size_t *cap, char **full_lowers, size_t cl,
                         const int *fds)
{
        int r = 0;

        for (size_t i = 0; r >= 0 && full_lowers[i]; i++) {
                const char *rel = full_lowers[i] + (cl > 1 ? cl + 1 : 0);
                char num[16];

                if (i > 0)
                        r = append_raw(s, len, cap, ":");
                if (r >= 0 && fds) {
                        snprintf(num, sizeof(num), "%d", fds[i]);
                        r = append_raw(s, len, cap, num);
                } else if (r >= 0)
                        r = append_escaped(s, len, cap, *rel ? rel : ".");
        }
        return r;
}

/* The path for kernels without "lowerdir+" (before 6.8): mount(2) with one
 * page of options. The lower dirs go as the numbers of fds opened on them,
 * looked up from /proc/self/fd as the cwd while mounting (the kernel follows
 * the links and keeps the dirs, not the names); without /proc, relative to
 * their common parent as the cwd, which fits fewer. The target is reached by
 * its path. */
static int overlay_legacy(struct apply_ctx *c, const struct mount_op *op, char **full_lowers,
                          const char *upper, const char *work)
{
        _cleanup_free_ char *s = NULL, *common = NULL, *target = NULL;
        _cleanup_free_ int *fds = NULL;
        _cleanup_close_ int cwd = -1, proc_fd = -1;
        size_t len = 0, cap = 0, cl = 0, n = 0;
        unsigned long mflags = 0;
        int r;

        while (full_lowers[n])
                n++;
        proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (proc_fd >= 0) {
                fds = malloc(n * sizeof(int));
                if (!fds)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++)
                        fds[i] = -1;
                for (size_t i = 0; i < n; i++) {
                        fds[i] = open(full_lowers[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
                        if (fds[i] < 0) {
                                r = -errno;
                                goto out;
                        }
                }
        } else {
                cl = common_dir_len(full_lowers);
                common = cl > 1 ? strndup(full_lowers[0], cl) : strdup("/");
                if (!common)
                        return -ENOMEM;
        }
        r = append_raw(&s, &len, &cap, "lowerdir=");
        if (r >= 0)
                r = append_lowers(&s, &len, &cap, full_lowers, cl, fds);
        if (r >= 0 && upper) {
                r = append_raw(&s, &len, &cap, ",upperdir=");
                if (r >= 0)
                        r = append_escaped(&s, &len, &cap, upper);
                if (r >= 0)
                        r = append_raw(&s, &len, &cap, ",workdir=");
                if (r >= 0)
                        r = append_escaped(&s, &len, &cap, work);
        }
        if (r >= 0 && op->options) {
                r = append_raw(&s, &len, &cap, ",");
                if (r >= 0)
                        r = append_raw(&s, &len, &cap, op->options);
        }
        if (r < 0)
                goto out;
        if (len >= (size_t)sysconf(_SC_PAGESIZE)) {
                snprintf(c->kernel_msg, sizeof(c->kernel_msg),
                         "%zu bytes of overlay options, the kernel takes one page; squash layers",
                         len);
                r = -E2BIG;
                goto out;
        }
        if (asprintf(&target, "%s%s", (op->flags & MOUNT_PLAN_HOST) ? c->prefix : c->root_path,
                     op->dest) < 0) {
                r = -ENOMEM;
                goto out;
        }
        if (op->flags & MOUNT_PLAN_RO)
                mflags |= MS_RDONLY;
        if (op->flags & MOUNT_PLAN_NOSUID)
                mflags |= MS_NOSUID;
        if (op->flags & MOUNT_PLAN_NODEV)
                mflags |= MS_NODEV;
        if (op->flags & MOUNT_PLAN_NOEXEC)
                mflags |= MS_NOEXEC;

        cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cwd < 0) {
                r = -errno;
                goto out;
        }
        if (fds ? fchdir(proc_fd) < 0 : chdir(common) < 0) {
                r = -errno;
                goto out;
        }
        r = mount("overlay", target, "overlay", mflags, s) < 0 ? -errno : 0;
        if (fchdir(cwd) < 0 && r >= 0)
                r = -errno;
out:
        for (size_t i = 0; fds && i < n; i++)
                safe_close(fds[i]);
        return r;
}

/* The overlay's dirs as paths to mount from: *ret_lowers (n of them,
 * those missing left out with MOUNT_PLAN_LOWER_OPTIONAL), upper and work
 * (NULL for a read-only overlay). */
static int overlay_paths(struct apply_ctx *c, const struct mount_op *op, char ***ret_lowers,
                         size_t *ret_n, char **ret_upper, char **ret_work)
{
        _cleanup_strv_ char **lowers = NULL;
        _cleanup_free_ char *upper = NULL, *work = NULL;
        size_t n = 0;
        int r;

        while (op->lowerdirs[n])
                n++;
        if (n > MOUNT_PLAN_OVERLAY_MAX_LOWER) {
                snprintf(c->kernel_msg, sizeof(c->kernel_msg),
                         "%zu lower dirs, the kernel stacks at most %d", n,
                         MOUNT_PLAN_OVERLAY_MAX_LOWER);
                return -E2BIG;
        }
        lowers = calloc(n + 1, sizeof(char *));
        if (!lowers)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = host_path(c, op->flags, op->lowerdirs[i], &lowers[i]);
                if (r < 0)
                        return r;
        }
        if (op->upperdir) {
                unsigned f = op->flags |
                             ((op->flags & MOUNT_PLAN_UPPER_IN_ROOT) ? MOUNT_PLAN_SRC_IN_ROOT : 0);
                r = host_path(c, f, op->upperdir, &upper);
                if (r >= 0)
                        r = host_path(c, f, op->workdir, &work);
                if (r < 0)
                        return r;
        }
        if (op->flags & MOUNT_PLAN_LOWER_OPTIONAL) {
                size_t k = 0;
                for (size_t i = 0; i < n; i++) {
                        if (access(lowers[i], F_OK) < 0 && errno == ENOENT) {
                                free(lowers[i]);
                                lowers[i] = NULL;
                                continue;
                        }
                        lowers[k++] = lowers[i];
                }
                lowers[k] = NULL;
                n = k;
        }
        *ret_lowers = TAKE_PTR(lowers);
        *ret_n = n;
        *ret_upper = TAKE_PTR(upper);
        *ret_work = TAKE_PTR(work);
        return 0;
}

/* Names the missing (or not a directory) dir of the overlay in
 * c->kernel_msg: the kernel only says ENOENT. */
static int overlay_check_dirs(struct apply_ctx *c, const struct mount_op *op, char **lowers,
                              size_t n, const char *upper, const char *work)
{
        for (size_t i = 0; i <= n + 1; i++) {
                const char *full = i < n ? lowers[i] : i == n ? upper : work;
                const char *shown = i < n    ? lowers[i] + prefix_len(c, op->flags)
                                    : i == n ? op->upperdir
                                             : op->workdir;
                struct stat st;
                int r;

                if (!full)
                        continue;
                if (stat(full, &st) < 0)
                        r = -errno;
                else if (!S_ISDIR(st.st_mode))
                        r = -ENOTDIR;
                else
                        continue;
                snprintf(c->kernel_msg, sizeof(c->kernel_msg), "%s dir '%s'",
                         i < n    ? "lower"
                         : i == n ? "upper"
                                  : "work",
                         shown);
                return r;
        }
        return 0;
}

/* Passes the lower dirs one at a time ("lowerdir+"). -EINVAL with
 * c->kernel_msg naming "lowerdir+" on a kernel without it. */
static int overlay_set_lowers(struct apply_ctx *c, int fsfd, char **lowers, size_t n)
{
        if (mount_plan_force_legacy_overlay)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", lowers[i], 0) < 0) {
                        int r = -errno;
                        save_kernel_msg(c, fsfd);
                        return r;
                }
        return 0;
}

static int apply_overlay(struct apply_ctx *c, const struct mount_op *op)
{
        _cleanup_strv_ char **lowers = NULL;
        _cleanup_free_ char *upper = NULL, *work = NULL;
        _cleanup_close_ int target = -1, fsfd = -1;
        size_t n = 0;
        int r;

        r = overlay_paths(c, op, &lowers, &n, &upper, &work);
        if (r < 0)
                return r;
        if (n == 0) {
                /* LOWER_OPTIONAL and none there: what an overlay of nothing
                 * with a fresh upper would show. */
                r = open_target(dest_base(c, op), op->dest, op->flags & MOUNT_PLAN_CREATE_DEST,
                                true, &target);
                if (r < 0)
                        return r;
                return mount_fs(c, "tmpfs", "mode=0755", op->flags, target);
        }
        r = overlay_check_dirs(c, op, lowers, n, upper, work);
        if (r < 0)
                return r;
        r = open_target(dest_base(c, op), op->dest, op->flags & MOUNT_PLAN_CREATE_DEST, true,
                        &target);
        if (r < 0)
                return r;

        fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
        if (fsfd < 0)
                return -errno;
        r = overlay_set_lowers(c, fsfd, lowers, n);
        if (r == -EINVAL &&
            (mount_plan_force_legacy_overlay || strstr(c->kernel_msg, "lowerdir+"))) {
                /* An older kernel that does not know "lowerdir+". */
                c->kernel_msg[0] = '\0';
                return overlay_legacy(c, op, lowers, upper, work);
        }
        if (r < 0)
                return r;
        if (upper) {
                if (fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
                    fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir", work, 0) < 0) {
                        r = -errno;
                        save_kernel_msg(c, fsfd);
                        return r;
                }
        }
        r = fs_set_options(fsfd, op->options);
        if (r < 0) {
                save_kernel_msg(c, fsfd);
                return r;
        }
        r = fs_finish(c, fsfd, op->flags, target);
        if (r == -EINVAL && !c->kernel_msg[0] && !mount_plan_force_legacy_overlay)
                /* Before 6.5 overlayfs took its options as one string: the
                 * fs context accepts "lowerdir+" and the kernel refuses it
                 * only here, saying why in its log alone. */
                return overlay_legacy(c, op, lowers, upper, work);
        if (r == -ELOOP && !c->kernel_msg[0])
                /* The kernel says why only in its log. */
                snprintf(c->kernel_msg, sizeof(c->kernel_msg),
                         "overlapping layers: one dir lies inside another layer on the same "
                         "filesystem (a data dir under the base?)");
        return r;
}

/* /dev/NAME of the host as a node of dev: a character device made with the
 * host's node's numbers (one mknod, no mount), or where mknod is refused (no
 * CAP_MKNOD, a device cgroup) a bind of the host's node, as bubblewrap does
 * without privileges. */
static int add_dev_node(struct apply_ctx *c, int dev, const char *name)
{
        _cleanup_free_ char *src = NULL, *full = NULL;
        _cleanup_close_ int node = -1;
        struct stat st;
        int fd, r;

        if (asprintf(&src, "/dev/%s", name) < 0)
                return -ENOMEM;
        r = host_path(c, 0, src, &full);
        if (r < 0)
                return r;
        if (stat(full, &st) < 0)
                return -errno;
        if (!S_ISCHR(st.st_mode))
                return -ENODEV;
        if (mknodat(dev, name, S_IFCHR | (st.st_mode & 0777), st.st_rdev) == 0) {
                /* the host node's mode (not the umask's) and owner (tty: group tty) */
                if (fchmodat(dev, name, st.st_mode & 0777, 0) < 0 ||
                    fchownat(dev, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                return 0;
        }
        if (errno != EPERM && errno != EACCES)
                return -errno;
        fd = openat(dev, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0)
                return -errno;
        close(fd);
        node = openat(dev, name, O_PATH | O_CLOEXEC | O_NOFOLLOW);
        if (node < 0)
                return -errno;
        return bind_tree(c, src, 0, node);
}

static int apply_dev_minimal(struct apply_ctx *c, const struct mount_op *op)
{
        static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
        static const char *const links[][2] = {
            {"fd", "/proc/self/fd"},       {"stdin", "/proc/self/fd/0"},
            {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"},
            {"ptmx", "pts/ptmx"},          {"core", "/proc/kcore"},
        };
        _cleanup_close_ int target = -1, dev = -1;
        int r;

        r = open_target(dest_base(c, op), op->dest, op->flags & MOUNT_PLAN_CREATE_DEST, true,
                        &target);
        if (r < 0)
                return r;
        r = mount_fs(c, "tmpfs", "mode=0755", MOUNT_PLAN_NOSUID | MOUNT_PLAN_NOEXEC, target);
        if (r < 0)
                return r;
        target = safe_close(target);
        r = resolve_in(dest_base(c, op), op->dest, O_PATH | O_DIRECTORY, &dev);
        if (r < 0)
                return r;

        for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
                r = add_dev_node(c, dev, nodes[i]);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(links); i++)
                if (symlinkat(links[i][1], dev, links[i][0]) < 0)
                        return -errno;

        if (mkdirat(dev, "pts", 0755) < 0 || mkdirat(dev, "shm", 01777) < 0)
                return -errno;
        {
                _cleanup_close_ int pts = openat(dev, "pts", O_PATH | O_DIRECTORY | O_CLOEXEC);
                _cleanup_close_ int shm = openat(dev, "shm", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (pts < 0 || shm < 0)
                        return -errno;
                r = mount_fs(c, "devpts", "newinstance,ptmxmode=0666,mode=0620",
                             MOUNT_PLAN_NOSUID | MOUNT_PLAN_NOEXEC, pts);
                if (r < 0)
                        return r;
                r = mount_fs(c, "tmpfs", "mode=1777", MOUNT_PLAN_NOSUID | MOUNT_PLAN_NODEV, shm);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int apply_write_file(struct apply_ctx *c, const struct mount_op *op)
{
        _cleanup_close_ int parent = -1, fd = -1;
        const char *name;
        size_t done = 0;
        int r;

        r = open_parent_in(dest_base(c, op), op->dest, true, &parent, &name);
        if (r < 0)
                return r;
        /* An O_PATH parent cannot create files: reopen it as a directory. */
        {
                int d = openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (d < 0)
                        return -errno;
                safe_close(parent);
                parent = d;
        }
        fd = openat(parent, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, op->mode);
        if (fd < 0)
                return -errno;
        while (done < op->data_len) {
                ssize_t n = write(fd, op->data + done, op->data_len - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t)n;
        }
        if (fchmod(fd, op->mode) < 0)
                return -errno;
        return 0;
}

static int apply_symlink(struct apply_ctx *c, const struct mount_op *op)
{
        _cleanup_close_ int parent = -1;
        const char *name;
        int r;

        r = open_parent_in(dest_base(c, op), op->dest, true, &parent, &name);
        if (r < 0)
                return r;
        if (symlinkat(op->target, parent, name) < 0) {
                char buf[4096];
                ssize_t n;

                if (errno != EEXIST)
                        return -errno;
                /* The same link already there is fine. */
                n = readlinkat(parent, name, buf, sizeof(buf) - 1);
                if (n < 0)
                        return -EEXIST;
                buf[n] = '\0';
                if (!streq(buf, op->target))
                        return -EEXIST;
        }
        return 0;
}

static int apply_remount_ro(struct apply_ctx *c, const struct mount_op *op)
{
        _cleanup_close_ int target = -1;
        struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY};
        int r;

        r = resolve_in(dest_base(c, op), op->dest, O_PATH, &target);
        if (r < 0)
                return r;
        if (mount_setattr(target, "",
                          AT_EMPTY_PATH | ((op->flags & MOUNT_PLAN_REC) ? AT_RECURSIVE : 0), &a,
                          sizeof(a)) < 0)
                return -errno;
        return 0;
}

static int apply_one(struct apply_ctx *c, const struct mount_op *op)
{
        _cleanup_close_ int target = -1;
        bool create = op->flags & MOUNT_PLAN_CREATE_DEST;
        int r;

        switch (op->type) {
        case MOUNT_OP_TMPFS:
        case MOUNT_OP_PROC:
        case MOUNT_OP_SYSFS:
        case MOUNT_OP_DEV:
                r = open_target(dest_base(c, op), op->dest, create, true, &target);
                if (r < 0)
                        return r;
                if (op->type == MOUNT_OP_TMPFS)
                        return mount_fs(c, "tmpfs", op->options, op->flags, target);
                if (op->type == MOUNT_OP_PROC)
                        return mount_fs(c, "proc", NULL,
                                        op->flags | MOUNT_PLAN_NOSUID | MOUNT_PLAN_NODEV |
                                            MOUNT_PLAN_NOEXEC,
                                        target);
                if (op->type == MOUNT_OP_SYSFS)
                        return mount_fs(c, "sysfs", NULL,
                                        op->flags | MOUNT_PLAN_NOSUID | MOUNT_PLAN_NODEV |
                                            MOUNT_PLAN_NOEXEC,
                                        target);
                return bind_tree(c, "/dev", op->flags | MOUNT_PLAN_REC, target);
        case MOUNT_OP_OVERLAY:
                return apply_overlay(c, op);
        case MOUNT_OP_BIND:
                return apply_bind(c, op);
        case MOUNT_OP_DEV_MINIMAL:
                return apply_dev_minimal(c, op);
        case MOUNT_OP_MKDIR:
                return mkdir_p_in(dest_base(c, op), op->dest, op->mode);
        case MOUNT_OP_WRITE_FILE:
                return apply_write_file(c, op);
        case MOUNT_OP_SYMLINK:
                return apply_symlink(c, op);
        case MOUNT_OP_REMOUNT_RO:
                return apply_remount_ro(c, op);
        case _MOUNT_OP_MAX:
        default:
                return -EINVAL;
        }
}

static bool is_optional_error(int r)
{
        return r == -ENOENT || r == -ENODEV || r == -EPERM || r == -EACCES;
}

/* "mount overlay on '/' (step 1 of 12)", with paths as the plan names them. */
static char *describe_failure(const struct mount_plan *p, size_t i, const char *kernel_msg)
{
        const struct mount_op *op = &p->ops[i];
        char *s = NULL;
        int k;

        switch (op->type) {
        case MOUNT_OP_BIND:
                k = asprintf(&s, "bind '%s' on '%s'", op->src, op->dest);
                break;
        case MOUNT_OP_DEV:
                k = asprintf(&s, "bind the host's /dev on '%s'", op->dest);
                break;
        case MOUNT_OP_DEV_MINIMAL:
                k = asprintf(&s, "set up a minimal /dev on '%s'", op->dest);
                break;
        case MOUNT_OP_MKDIR:
                k = asprintf(&s, "create directory '%s'", op->dest);
                break;
        case MOUNT_OP_WRITE_FILE:
                k = asprintf(&s, "write '%s'", op->dest);
                break;
        case MOUNT_OP_SYMLINK:
                k = asprintf(&s, "create symlink '%s'", op->dest);
                break;
        case MOUNT_OP_REMOUNT_RO:
                k = asprintf(&s, "make '%s' read-only", op->dest);
                break;
        case MOUNT_OP_TMPFS:
        case MOUNT_OP_OVERLAY:
        case MOUNT_OP_PROC:
        case MOUNT_OP_SYSFS:
        case _MOUNT_OP_MAX:
        default:
                k = asprintf(&s, "mount %s on '%s'", mount_op_type_to_string(op->type), op->dest);
                break;
        }
        if (k < 0)
                return NULL;
        {
                char *t = NULL;
                k = asprintf(&t, "%s (step %zu of %zu%s%s)", s, i + 1, p->n_ops,
                             kernel_msg && *kernel_msg ? ": " : "", kernel_msg ? kernel_msg : "");
                free(s);
                return k < 0 ? NULL : t;
        }
}

int mount_plan_apply(const struct mount_plan *p, const char *root, const char *host_prefix,
                     char **ret_error)
{
        struct apply_ctx c = {.root_fd = -1, .host_fd = -1, .prefix = "", .root_path = root};
        _cleanup_free_ char *prefix = NULL;
        int r = 0;

        if (host_prefix && *host_prefix && !streq(host_prefix, "/")) {
                size_t l = strlen(host_prefix);
                while (l > 1 && host_prefix[l - 1] == '/')
                        l--;
                prefix = strndup(host_prefix, l);
                if (!prefix)
                        return -ENOMEM;
                c.prefix = prefix;
        }

        c.root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (c.root_fd < 0) {
                r = -errno;
                if (ret_error && asprintf(ret_error, "open the new root '%s'", root) < 0)
                        *ret_error = NULL;
                return r;
        }
        c.host_fd = open(*c.prefix ? c.prefix : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (c.host_fd < 0) {
                r = -errno;
                close(c.root_fd);
                if (ret_error && asprintf(ret_error, "open '%s'", *c.prefix ? c.prefix : "/") < 0)
                        *ret_error = NULL;
                return r;
        }

        for (size_t i = 0; i < p->n_ops; i++) {
                const struct mount_op *op = &p->ops[i];

                c.kernel_msg[0] = '\0';
                r = apply_one(&c, op);
                if (r >= 0 && !(op->flags & MOUNT_PLAN_HOST) && streq(op->dest, "/") &&
                    op->type != MOUNT_OP_MKDIR) {
                        /* Something now sits on the root: later operations
                         * must resolve in it, not in what it covers. */
                        int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
                        if (fd < 0)
                                r = -errno;
                        else {
                                close(c.root_fd);
                                c.root_fd = fd;
                        }
                }
                if (r < 0 && (op->flags & MOUNT_PLAN_OPTIONAL) && is_optional_error(r)) {
                        log_debug_errno(r, "skipping optional %s on '%s': %m",
                                        mount_op_type_to_string(op->type), op->dest);
                        r = 0;
                        continue;
                }
                if (r < 0) {
                        log_debug_errno(r, "mount plan step %zu (%s on '%s') failed: %m", i + 1,
                                        mount_op_type_to_string(op->type), op->dest);
                        if (ret_error)
                                *ret_error = describe_failure(p, i, c.kernel_msg);
                        break;
                }
        }
        close(c.root_fd);
        close(c.host_fd);
        return r;
}

/* ---- dry run ----------------------------------------------------------- */

static int flags_to_json(unsigned flags, json_t **ret)
{
        json_t *a = json_array();

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(flag_names); i++)
                if ((flags & flag_names[i].flag) &&
                    json_array_append_new(a, json_string(flag_names[i].name)) < 0) {
                        json_decref(a);
                        return -ENOMEM;
                }
        *ret = a;
        return 0;
}

static int set_string(json_t *o, const char *key, const char *value)
{
        if (!value)
                return 0;
        return json_object_set_new(o, key, json_string(value)) < 0 ? -ENOMEM : 0;
}

int mount_plan_to_json(const struct mount_plan *p, json_t **ret)
{
        json_t *a = json_array();
        int r = 0;

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; r >= 0 && i < p->n_ops; i++) {
                const struct mount_op *op = &p->ops[i];
                json_t *o = json_object(), *flags = NULL;

                if (!o || json_array_append_new(a, o) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = set_string(o, "type", mount_op_type_to_string(op->type));
                if (r >= 0)
                        r = set_string(o, "dest", op->dest);
                if (r >= 0)
                        r = set_string(o, "src", op->src);
                if (r >= 0 && op->lowerdirs) {
                        json_t *l = json_array();
                        if (!l || json_object_set_new(o, "lowerdirs", l) < 0)
                                r = -ENOMEM;
                        for (size_t k = 0; r >= 0 && op->lowerdirs[k]; k++)
                                if (json_array_append_new(l, json_string(op->lowerdirs[k])) < 0)
                                        r = -ENOMEM;
                }
                if (r >= 0)
                        r = set_string(o, "upperdir", op->upperdir);
                if (r >= 0)
                        r = set_string(o, "workdir", op->workdir);
                if (r >= 0)
                        r = set_string(o, "options", op->options);
                if (r >= 0)
                        r = set_string(o, "target", op->target);
                if (r >= 0 && op->data &&
                    json_object_set_new(o, "data", json_stringn(op->data, op->data_len)) < 0)
                        r = -ENOMEM;
                if (r >= 0 && (op->type == MOUNT_OP_MKDIR || op->type == MOUNT_OP_WRITE_FILE) &&
                    json_object_set_new(o, "mode", json_integer(op->mode)) < 0)
                        r = -ENOMEM;
                if (r >= 0)
                        r = flags_to_json(op->flags, &flags);
                if (r >= 0 && json_object_set_new(o, "flags", flags) < 0)
                        r = -ENOMEM;
        }
        if (r < 0) {
                json_decref(a);
                return r;
        }
        *ret = a;
        return 0;
}

int mount_plan_describe(const struct mount_plan *p, FILE *f)
{
        for (size_t i = 0; i < p->n_ops; i++) {
                const struct mount_op *op = &p->ops[i];

                fprintf(f, "%3zu %-11s %s", i + 1, mount_op_type_to_string(op->type), op->dest);
                if (op->src)
                        fprintf(f, " <- %s", op->src);
                if (op->lowerdirs) {
                        fputs("  lower=", f);
                        for (size_t k = 0; op->lowerdirs[k]; k++)
                                fprintf(f, "%s%s", k ? ":" : "", op->lowerdirs[k]);
                }
                if (op->upperdir)
                        fprintf(f, " upper=%s work=%s", op->upperdir, op->workdir);
                if (op->options)
                        fprintf(f, " options=%s", op->options);
                if (op->target)
                        fprintf(f, " -> %s", op->target);
                if (op->type == MOUNT_OP_MKDIR || op->type == MOUNT_OP_WRITE_FILE)
                        fprintf(f, " mode=%04o", (unsigned)op->mode);
                if (op->type == MOUNT_OP_WRITE_FILE)
                        fprintf(f, " (%zu bytes)", op->data_len);
                for (size_t k = 0; k < ELEMENTSOF(flag_names); k++)
                        if (op->flags & flag_names[k].flag)
                                fprintf(f, " %s", flag_names[k].name);
                fputc('\n', f);
        }
        fflush(f);
        return ferror(f) ? -EIO : 0;
}

/* ---- plans as data ------------------------------------------------------ */

/* The fields an operation may have, and the types they apply to ("type",
 * "dest", "flags" and "comment" apply to all). */
static const struct {
        const char *name;
        unsigned types; /* bit per enum mount_op_type; 0: every type */
} op_fields[] = {
    {"type", 0},
    {"dest", 0},
    {"flags", 0},
    {"comment", 0},
    {"src", 1u << MOUNT_OP_BIND},
    {"lowerdirs", 1u << MOUNT_OP_OVERLAY},
    {"upperdir", 1u << MOUNT_OP_OVERLAY},
    {"workdir", 1u << MOUNT_OP_OVERLAY},
    {"options", (1u << MOUNT_OP_TMPFS) | (1u << MOUNT_OP_OVERLAY)},
    {"target", 1u << MOUNT_OP_SYMLINK},
    {"data", 1u << MOUNT_OP_WRITE_FILE},
    {"mode", (1u << MOUNT_OP_MKDIR) | (1u << MOUNT_OP_WRITE_FILE)},
};

/* "operation 3, field "src": missing" (field may be NULL). */
_printf_(4, 5) static int fail_json(char **ret_error, size_t i, const char *field, const char *fmt,
                                    ...)
{
        if (ret_error) {
                _cleanup_free_ char *m = NULL;
                va_list ap;
                int k;

                va_start(ap, fmt);
                k = vasprintf(&m, fmt, ap);
                va_end(ap);
                if (field)
                        k = k < 0 ? k
                                  : asprintf(ret_error, "operation %zu, field \"%s\": %s", i + 1,
                                             field, m);
                else
                        k = k < 0 ? k : asprintf(ret_error, "operation %zu: %s", i + 1, m);
                if (k < 0)
                        *ret_error = NULL;
        }
        return -EBADMSG;
}

/* *ret: the string at key, or NULL when absent; -EBADMSG when not a string
 * (or, with must_be_path, not an absolute path). */
static int get_field(const json_t *o, const char *key, size_t i, bool must_be_path,
                     const char **ret, char **ret_error)
{
        const json_t *v = json_object_get(o, key);

        *ret = NULL;
        if (!v)
                return 0;
        if (!json_is_string(v))
                return fail_json(ret_error, i, key, "%s", "not a string");
        if (must_be_path && !path_ok(json_string_value(v)))
                return fail_json(ret_error, i, key, "'%s' is not an absolute path",
                                 json_string_value(v));
        *ret = json_string_value(v);
        return 0;
}

/* Every field of operation i (of type t) is one of op_fields and applies
 * to the type. */
static int check_op_fields(const json_t *o, size_t i, int t, const char *type, char **ret_error)
{
        const char *key;
        const json_t *v;

        json_object_foreach((json_t *)o, key, v)
        {
                size_t n;
                for (n = 0; n < ELEMENTSOF(op_fields); n++)
                        if (streq(key, op_fields[n].name))
                                break;
                if (n == ELEMENTSOF(op_fields))
                        return fail_json(ret_error, i, key, "%s", "unknown field");
                if (op_fields[n].types && !(op_fields[n].types & (1u << t)))
                        return fail_json(ret_error, i, key, "does not apply to a %s operation",
                                         type);
        }
        return 0;
}

/* The "flags" array of operation i as MOUNT_PLAN_* bits. */
static int parse_op_flags(const json_t *o, size_t i, unsigned *ret_flags, char **ret_error)
{
        const json_t *fl, *f;
        unsigned flags = 0;
        size_t k;

        fl = json_object_get(o, "flags");
        if (fl && !json_is_array(fl))
                return fail_json(ret_error, i, "flags", "%s", "not an array");
        json_array_foreach(fl, k, f)
        {
                size_t n;
                for (n = 0; n < ELEMENTSOF(flag_names); n++)
                        if (json_is_string(f) && streq(json_string_value(f), flag_names[n].name))
                                break;
                if (n == ELEMENTSOF(flag_names))
                        return fail_json(ret_error, i, "flags", "unknown flag '%s'",
                                         json_is_string(f) ? json_string_value(f) : "?");
                flags |= flag_names[n].flag;
        }
        *ret_flags = flags;
        return 0;
}

/* An overlay operation: its "lowerdirs" checked, then added. */
static int parse_overlay(struct mount_plan *p, const json_t *o, size_t i, const char *dest,
                         const char *upper, const char *work, const char *options, unsigned flags,
                         char **ret_error)
{
        const json_t *l = json_object_get(o, "lowerdirs"), *e;
        _cleanup_free_ char **lowers = NULL;
        size_t n;
        int r;

        if (!l)
                return fail_json(ret_error, i, "lowerdirs", "%s", "missing");
        if (!json_is_array(l) || json_array_size(l) == 0)
                return fail_json(ret_error, i, "lowerdirs", "%s", "not a non-empty array of paths");
        if (!upper != !work)
                return fail_json(ret_error, i, upper ? "workdir" : "upperdir", "%s",
                                 "missing (upperdir and workdir go together)");
        lowers = calloc(json_array_size(l) + 1, sizeof(char *));
        if (!lowers)
                return -ENOMEM;
        json_array_foreach(l, n, e)
        {
                if (!json_is_string(e) || !path_ok(json_string_value(e)))
                        return fail_json(ret_error, i, "lowerdirs",
                                         "entry %zu is not an absolute path", n + 1);
                lowers[n] = (char *)json_string_value(e);
        }
        r = mount_plan_add_overlay(p, dest, lowers, upper, work, flags);
        if (r >= 0)
                r = plan_last_set_options(p, options);
        return r;
}

static int parse_op(struct mount_plan *p, const json_t *o, size_t i, char **ret_error)
{
        const char *type, *dest, *src, *upper, *work, *options, *target;
        const json_t *v;
        unsigned flags = 0;
        mode_t mode = 0;
        int r, t;

        if (!json_is_object(o))
                return fail_json(ret_error, i, NULL, "%s", "not an object");
        r = get_field(o, "type", i, false, &type, ret_error);
        if (r < 0)
                return r;
        if (!type)
                return fail_json(ret_error, i, "type", "%s", "missing");
        t = mount_op_type_from_string(type);
        if (t < 0)
                return fail_json(ret_error, i, "type", "unknown type '%s'", type);
        r = check_op_fields(o, i, t, type, ret_error);
        if (r < 0)
                return r;

        r = get_field(o, "dest", i, true, &dest, ret_error);
        if (r < 0)
                return r;
        if (!dest)
                return fail_json(ret_error, i, "dest", "%s", "missing");

        r = parse_op_flags(o, i, &flags, ret_error);
        if (r < 0)
                return r;

        v = json_object_get(o, "mode");
        if (v) {
                if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                    json_integer_value(v) > 07777)
                        return fail_json(ret_error, i, "mode", "%s",
                                         "not a mode (an integer from 0 to 4095, 0o7777)");
                mode = (mode_t)json_integer_value(v);
        }

        r = get_field(o, "src", i, true, &src, ret_error);
        if (r >= 0)
                r = get_field(o, "upperdir", i, true, &upper, ret_error);
        if (r >= 0)
                r = get_field(o, "workdir", i, true, &work, ret_error);
        if (r >= 0)
                r = get_field(o, "options", i, false, &options, ret_error);
        if (r >= 0)
                r = get_field(o, "target", i, false, &target, ret_error);
        if (r < 0)
                return r;

        switch (t) {
        case MOUNT_OP_TMPFS:
                r = mount_plan_add_tmpfs(p, dest, options, flags);
                break;
        case MOUNT_OP_OVERLAY:
                return parse_overlay(p, o, i, dest, upper, work, options, flags, ret_error);
        case MOUNT_OP_BIND:
                if (!src)
                        return fail_json(ret_error, i, "src", "%s", "missing");
                r = mount_plan_add_bind(p, src, dest, flags);
                break;
        case MOUNT_OP_PROC:
        case MOUNT_OP_SYSFS:
        case MOUNT_OP_DEV:
        case MOUNT_OP_DEV_MINIMAL:
        case MOUNT_OP_REMOUNT_RO:
                r = add_simple(p, (enum mount_op_type)t, dest, flags);
                break;
        case MOUNT_OP_MKDIR:
                r = mount_plan_add_mkdir(p, dest, v ? mode : 0755, flags);
                break;
        case MOUNT_OP_WRITE_FILE: {
                const json_t *d = json_object_get(o, "data");
                if (!d)
                        return fail_json(ret_error, i, "data", "%s", "missing");
                if (!json_is_string(d))
                        return fail_json(ret_error, i, "data", "%s", "not a string");
                r = mount_plan_add_write_file(p, dest, json_string_value(d), json_string_length(d),
                                              v ? mode : 0644, flags);
                if (r == -EINVAL)
                        return fail_json(ret_error, i, "dest", "%s", "cannot be the root");
                break;
        }
        case MOUNT_OP_SYMLINK:
                if (!target || !*target)
                        return fail_json(ret_error, i, "target", "%s", "missing");
                r = mount_plan_add_symlink(p, target, dest, flags);
                break;
        default:
                r = -EINVAL;
                break;
        }
        if (r == -EINVAL)
                return fail_json(ret_error, i, NULL, "%s", "invalid operation");
        return r;
}

int mount_plan_from_json(const json_t *j, struct mount_plan **ret, char **ret_error)
{
        _cleanup_(mount_plan_freep) struct mount_plan *p = NULL;
        const json_t *o;
        size_t i;
        int r;

        if (!json_is_array(j)) {
                if (ret_error)
                        *ret_error = strdup("a mount plan is a JSON array of operations");
                return -EBADMSG;
        }
        r = mount_plan_new(&p);
        if (r < 0)
                return r;

        json_array_foreach(j, i, o)
        {
                r = parse_op(p, o, i, ret_error);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(p);
        return 0;
}

/* ---- plan files --------------------------------------------------------- */

static const char *var_lookup(char *const *vars, const char *name, size_t len)
{
        for (size_t i = 0; vars && vars[i]; i++)
                if (strncmp(vars[i], name, len) == 0 && vars[i][len] == '=')
                        return vars[i] + len + 1;
        return NULL;
}

int mount_plan_substitute_string(const char *s, char *const *vars, char **ret, char **ret_unknown)
{
        _cleanup_free_ char *out = NULL;
        size_t len = 0, cap = 0;
        const char *p = s;

        if (append_raw(&out, &len, &cap, "") < 0)
                return -ENOMEM;
        for (;;) {
                const char *d = strstr(p, "${"), *e, *val;
                _cleanup_free_ char *seg = strndup(p, d ? (size_t)(d - p) : strlen(p));

                if (!seg || append_raw(&out, &len, &cap, seg) < 0)
                        return -ENOMEM;
                if (!d)
                        break;
                e = strchr(d + 2, '}');
                val = e ? var_lookup(vars, d + 2, (size_t)(e - d - 2)) : NULL;
                if (!val) {
                        if (ret_unknown)
                                *ret_unknown = e ? strndup(d, (size_t)(e - d + 1)) : strdup(d);
                        return -ENXIO;
                }
                if (append_raw(&out, &len, &cap, val) < 0)
                        return -ENOMEM;
                p = e + 1;
        }
        *ret = TAKE_PTR(out);
        return 0;
}

/* Substitutes in place in every string of v (arrays and objects walked). */
static int substitute_value(json_t *v, char *const *vars, char **ret_unknown)
{
        const char *key;
        json_t *e;
        size_t i;
        int r;

        if (json_is_string(v)) {
                _cleanup_free_ char *s = NULL;
                if (!strstr(json_string_value(v), "${"))
                        return 0;
                r = mount_plan_substitute_string(json_string_value(v), vars, &s, ret_unknown);
                if (r < 0)
                        return r;
                return json_string_set(v, s) < 0 ? -ENOMEM : 0;
        }
        if (json_is_array(v))
                json_array_foreach(v, i, e)
                {
                        r = substitute_value(e, vars, ret_unknown);
                        if (r < 0)
                                return r;
                }
        if (json_is_object(v))
                json_object_foreach(v, key, e)
                {
                        r = substitute_value(e, vars, ret_unknown);
                        if (r < 0)
                                return r;
                }
        return 0;
}

int mount_plan_document_error(char **ret_error, const char *name, const char *fmt, ...)
{
        if (ret_error) {
                _cleanup_free_ char *m = NULL;
                va_list ap;
                int k;

                va_start(ap, fmt);
                k = vasprintf(&m, fmt, ap);
                va_end(ap);
                if (k < 0 || asprintf(ret_error, "'%s': %s", name, m) < 0)
                        *ret_error = NULL;
        }
        return -EBADMSG;
}

int mount_plan_from_document(const char *name, json_t *doc, char *const *vars,
                             struct mount_plan **ret, char **ret_error)
{
        json_t *ops = doc, *o, *v;
        const char *key;
        size_t i;
        int r;

        if (json_is_object(doc)) {
                ops = json_object_get(doc, "mounts");
                if (!ops)
                        return mount_plan_document_error(ret_error, name, "%s",
                                                         "no \"mounts\" array");
                json_object_foreach(doc, key, v)
                {
                        _cleanup_free_ char *unknown = NULL;
                        if (v == ops)
                                continue;
                        r = substitute_value(v, vars, &unknown);
                        if (r == -ENXIO)
                                return mount_plan_document_error(
                                    ret_error, name, "field \"%s\": unknown variable '%s'", key,
                                    unknown ? unknown : "?");
                        if (r < 0)
                                return r;
                }
        }
        if (!json_is_array(ops))
                return mount_plan_document_error(
                    ret_error, name, "%s",
                    "a plan is a JSON array of operations or an object whose "
                    "\"mounts\" is one");
        json_array_foreach(ops, i, o)
        {
                if (!json_is_object(o))
                        continue; /* parse_op names it */
                json_object_foreach(o, key, v)
                {
                        _cleanup_free_ char *unknown = NULL;
                        r = substitute_value(v, vars, &unknown);
                        if (r == -ENXIO)
                                return mount_plan_document_error(
                                    ret_error, name,
                                    "operation %zu, field \"%s\": unknown variable "
                                    "'%s'",
                                    i + 1, key, unknown ? unknown : "?");
                        if (r < 0)
                                return r;
                }
        }
        {
                _cleanup_free_ char *err = NULL;
                r = mount_plan_from_json(ops, ret, &err);
                if (r == -EBADMSG)
                        return mount_plan_document_error(ret_error, name, "%s",
                                                         err ? err : "invalid plan");
        }
        return r;
}

int mount_plan_load(const char *path, char *const *vars, struct mount_plan **ret_plan,
                    json_t **ret_doc, char **ret_error)
{
        json_error_t e;
        json_t *doc = NULL;
        int r;

        r = json_load_at(AT_FDCWD, path, &doc, &e);
        if (r < 0) {
                if (ret_error)
                        *ret_error = strdup(json_error_string(&e));
                return r;
        }
        r = mount_plan_from_document(path, doc, vars, ret_plan, ret_error);
        if (r < 0 || !ret_doc)
                json_decref(doc);
        else
                *ret_doc = doc;
        return r;
}

/* ---- teardown ----------------------------------------------------------- */

uint64_t mount_teardown_delay(const struct mount_teardown_policy *pol, unsigned retry)
{
        uint64_t d = pol->first_delay_usec;

        for (unsigned k = 1; k < retry && d < pol->max_delay_usec; k++)
                d *= 2;
        return d > pol->max_delay_usec ? pol->max_delay_usec : d;
}

static int sys_umount(const char *path, int flags)
{
        return umount2(path, flags) < 0 ? -errno : 0;
}

static void sys_sleep(uint64_t usec)
{
        struct timespec ts = {.tv_sec = (time_t)(usec / 1000000),
                              .tv_nsec = (long)(usec % 1000000) * 1000};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

int mount_teardown_one(const char *path, const struct mount_teardown_policy *pol,
                       struct mount_teardown_result *res)
{
        int (*um)(const char *, int) = pol->umount ? pol->umount : sys_umount;
        void (*sl)(uint64_t) = pol->sleep ? pol->sleep : sys_sleep;
        unsigned tries = pol->tries ? pol->tries : 1;
        int r = 0;

        for (unsigned k = 1; k <= tries; k++) {
                r = um(path, UMOUNT_NOFOLLOW);
                if (r != -EBUSY)
                        break;
                if (k < tries) {
                        res->retries++;
                        sl(mount_teardown_delay(pol, k));
                }
        }
        if (r == 0) {
                res->unmounted++;
                return 0;
        }
        /* Gone already (with a parent that was detached): nothing to do. */
        if (r == -EINVAL || r == -ENOENT)
                return 0;
        if (r == -EBUSY) {
                r = um(path, UMOUNT_NOFOLLOW | MNT_DETACH);
                if (r == 0) {
                        if (res->detached++ == 0)
                                snprintf(res->first_detached, sizeof(res->first_detached), "%s",
                                         path);
                        return 1;
                }
        }
        res->failed++;
        return r;
}

static int depth_cmp(const void *a, const void *b)
{
        const struct mount_entry *x = a, *y = b;
        size_t lx = strlen(x->target), ly = strlen(y->target);

        /* Deepest path first; on the same path the newest (on top) first. */
        if (lx != ly)
                return lx > ly ? -1 : 1;
        if (!streq(x->target, y->target))
                return strcmp(y->target, x->target);
        return y->id - x->id;
}

/* Whether the parent of entry i is the mount at under. */
static bool teardown_parent_is(const struct mount_list *l, size_t i, const char *under)
{
        for (size_t k = 0; k < l->n; k++)
                if (l->entries[k].id == l->entries[i].parent_id)
                        return streq(l->entries[k].target, under);
        return false;
}

/* Whether the kernel finds the mount at path unused: MNT_EXPIRE answers
 * EAGAIN only for a mount nobody holds and with nothing mounted on it (it
 * unmounts nothing on a first call). */
static bool teardown_unused(const char *path, const struct mount_teardown_policy *pol)
{
        int (*um)(const char *, int) = pol->umount ? pol->umount : sys_umount;

        return um(path, UMOUNT_NOFOLLOW | MNT_EXPIRE) == -EAGAIN;
}

/* For a mount on a mount (/dev/pts on /dev) that is unused (its own
 * children went first): moves it onto a new directory of the kept mount
 * under_fd, where it is left for the end of the namespace as well. Its
 * parent then has one mount less on it, so the kernel can tell whether
 * that one is used too (a mount with a mount on it always looks used). A
 * move waits for no RCU grace period; an unmount waits for one. Returns
 * true when moved; false leaves it to be unmounted as any other (one in
 * use, a read-only kept mount, a mount of a file, a test's fake umount). */
static bool teardown_move_to_kept(const char *path, int under_fd,
                                  const struct mount_teardown_policy *pol, unsigned *n_moved)
{
        char name[64];

        if (under_fd < 0 || pol->umount || !teardown_unused(path, pol))
                return false;
        snprintf(name, sizeof(name), ".strata-teardown-%d.%u", (int)getpid(), (*n_moved)++);
        if (mkdirat(under_fd, name, 0700) < 0)
                return false;
        if (move_mount(AT_FDCWD, path, under_fd, name, 0) < 0) {
                log_debug_errno(errno, "cannot move '%s' for the end of its namespace: %m", path);
                (void)unlinkat(under_fd, name, AT_REMOVEDIR);
                return false;
        }
        return true;
}

/* With pol->namespace_ends: whether entry i can be left to the end of the
 * namespace, unused, on the kept mount at under (moved onto it if it was
 * on another mount). */
static bool teardown_can_leave(const struct mount_list *l, size_t i, const char *under,
                               int under_fd, const struct mount_teardown_policy *pol,
                               unsigned *n_moved)
{
        const char *path = l->entries[i].target;

        if (teardown_parent_is(l, i, under))
                return teardown_unused(path, pol);
        return teardown_move_to_kept(path, under_fd, pol, n_moved);
}

int mount_teardown_under(const char *under, bool keep_under,
                         const struct mount_teardown_policy *pol, struct mount_teardown_result *res)
{
        _cleanup_close_ int under_fd = -1;
        bool leave = pol->namespace_ends && keep_under;
        struct mount_list l = {};
        unsigned n_moved = 0;
        int r, first = 0;

        r = mountinfo_read(NULL, under, &l);
        if (r < 0)
                return r;
        res->found += (unsigned)l.n;
        if (l.n > 1)
                qsort(l.entries, l.n, sizeof(l.entries[0]), depth_cmp);
        if (leave)
                under_fd = open(under, O_PATH | O_DIRECTORY | O_CLOEXEC);
        for (size_t i = 0; i < l.n; i++) {
                if (keep_under && streq(l.entries[i].target, under))
                        continue;
                if (leave && teardown_can_leave(&l, i, under, under_fd, pol, &n_moved)) {
                        res->unmounted++;
                        continue;
                }
                r = mount_teardown_one(l.entries[i].target, pol, res);
                if (r < 0 && first == 0)
                        first = r;
        }
        mount_list_done(&l);
        return first;
}
