/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Mount plans: the setup of a root as data, a list of operations applied in
 * order (the way bubblewrap's SetupOp list builds its new root). The same
 * engine builds the root of overlayfs-init, of `strata lab`, of a migration
 * sandbox and (later) of workers, whose plans come from files.
 *
 *     _cleanup_(mount_plan_freep) struct mount_plan *p = NULL;
 *     r = mount_plan_new(&p);
 *     r = mount_plan_add_overlay(p, "/", lowers, upper, work, 0);
 *     r = mount_plan_add_proc(p, "/proc", MOUNT_PLAN_CREATE_DEST);
 *     r = mount_plan_add_bind(p, "/srv/data", "/data", MOUNT_PLAN_REC);
 *     r = mount_plan_apply(p, "/newroot", NULL, &error);
 *
 * Paths:
 *   - DEST is a path inside the new root ("/" is the root itself). It is
 *     resolved under ROOT as if ROOT were "/": symlinks in it (/var/run ->
 *     /run, /lib -> usr/lib) stay inside the root and ".." never leaves it.
 *   - SRC (bind sources, overlay dirs) is a path in the caller's view; when
 *     mount_plan_apply() gets a host_prefix, it is prefixed to every SRC (a
 *     sandbox that has moved the host's root to /oldroot passes "/oldroot").
 *   - With MOUNT_PLAN_HOST the DEST of an operation is a path in the caller's
 *     view too (host_prefix applies), not under ROOT: this is how a plan
 *     mounts a tmpfs over <data>/system before the overlay that uses it.
 *     Such mounts live in the caller's mount namespace: run plans with HOST
 *     operations only in a private namespace (sandbox_run does).
 *
 * Operations that create something (CREATE_DEST, mkdir, write_file,
 * symlink) write into whatever is mounted at that place: on an overlay root,
 * that is its upper dir.
 *
 * Overlay lower dirs are given as an array, newest (topmost) first. There
 * is no limit from the option string: on kernels with "lowerdir+" (>= 6.8)
 * layers are passed one at a time through fsconfig(); older kernels get a
 * lowerdir= string of paths relative to their common parent (mounted from a
 * chdir there). More than MOUNT_PLAN_OVERLAY_MAX_LOWER lower dirs is -E2BIG
 * (the kernel's stack limit), reported before anything is mounted.
 *
 * Mounts use the new mount API (fsopen/open_tree/move_mount/mount_setattr,
 * kernel >= 5.12); targets are reached through O_PATH fds, so a symlink
 * swapped in between cannot redirect a mount.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>

#include "cleanup.h"
#include "macro.h"

#define MOUNT_PLAN_OVERLAY_MAX_LOWER 500

enum mount_op_type {
        MOUNT_OP_TMPFS,       /* tmpfs on DEST; options: "size=64m,mode=0755" (may be NULL) */
        MOUNT_OP_OVERLAY,     /* overlay on DEST from lower dirs, upper and work (SRC) */
        MOUNT_OP_BIND,        /* bind SRC on DEST (MOUNT_PLAN_REC: with its submounts) */
        MOUNT_OP_PROC,        /* a fresh procfs (for the current pid namespace) */
        MOUNT_OP_SYSFS,       /* a fresh sysfs (for the current net namespace) */
        MOUNT_OP_DEV,         /* recursive bind of the host's /dev */
        MOUNT_OP_DEV_MINIMAL, /* tmpfs with null zero full random urandom tty (nodes
                               * with the host's numbers, mode and owner; binds of
                               * the host's where mknod is refused), devpts
                               * (newinstance) + ptmx link, shm tmpfs,
                               * fd/stdin/stdout/stderr links */
        MOUNT_OP_MKDIR,       /* mkdir -p DEST with mode */
        MOUNT_OP_WRITE_FILE,  /* write DATA to DEST with mode (parents created) */
        MOUNT_OP_SYMLINK,     /* symlink DEST -> TARGET (parents created) */
        MOUNT_OP_REMOUNT_RO,  /* make the mount at DEST read-only (with MOUNT_PLAN_REC
                               * its submounts too) */
        _MOUNT_OP_MAX,
};

enum {
        /* A missing SRC (bind, overlay dirs) or a mount the kernel refuses
         * with ENOENT/ENODEV/EPERM/EACCES skips the operation instead of
         * failing the plan (e.g. /sys/fs/cgroup on a host without it). */
        MOUNT_PLAN_OPTIONAL = 1 << 0,
        /* Create DEST when it is missing: a directory, or an empty file when
         * a bind's SRC is not a directory. Parents are created too. */
        MOUNT_PLAN_CREATE_DEST = 1 << 1,
        MOUNT_PLAN_RO = 1 << 2,     /* the new mount is read-only */
        MOUNT_PLAN_REC = 1 << 3,    /* bind/remount: submounts too */
        MOUNT_PLAN_NOSUID = 1 << 4, /* nosuid on the new mount */
        MOUNT_PLAN_NODEV = 1 << 5,  /* nodev on the new mount */
        MOUNT_PLAN_NOEXEC = 1 << 6, /* noexec on the new mount */
        MOUNT_PLAN_HOST = 1 << 7,   /* DEST is in the caller's view, not under ROOT */
        /* SRC (bind source, overlay dirs) is a path in the new root as built
         * so far (ROOT is prepended, not host_prefix): e.g. an overlay on
         * /etc/s6 whose lower dir is the root's own /etc/s6. */
        MOUNT_PLAN_SRC_IN_ROOT = 1 << 8,
        /* Overlay: the upper and work dirs are paths in the new root (e.g.
         * on its /run tmpfs) while the lower dirs are host paths. */
        MOUNT_PLAN_UPPER_IN_ROOT = 1 << 9,
        /* Overlay: lower dirs that do not exist are left out; with none
         * left, DEST gets an empty tmpfs instead (what an overlay of nothing
         * with a fresh upper would show). */
        MOUNT_PLAN_LOWER_OPTIONAL = 1 << 10,
};

struct mount_op {
        enum mount_op_type type;
        unsigned flags;
        char *dest;
        char *src;        /* bind source; NULL otherwise */
        char **lowerdirs; /* overlay: NULL-terminated, newest first */
        char *upperdir;   /* overlay; NULL: a read-only overlay */
        char *workdir;    /* overlay; NULL iff upperdir is NULL */
        char *options;    /* tmpfs / overlay extra options, comma separated; may be NULL */
        char *target;     /* symlink target */
        char *data;       /* write_file content */
        size_t data_len;
        mode_t mode; /* mkdir / write_file */
};

struct mount_plan {
        struct mount_op *ops;
        size_t n_ops;
        size_t allocated;
};

/* Returns a new empty plan in *ret, or -ENOMEM. */
int mount_plan_new(struct mount_plan **ret);

/* Frees the plan and everything it owns; accepts NULL, returns NULL. */
struct mount_plan *mount_plan_free(struct mount_plan *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct mount_plan *, mount_plan_free)

/*
 * Builders. Each appends one operation, copying every string it is given,
 * and returns 0, -ENOMEM, or -EINVAL for a DEST that is not absolute, an
 * empty or relative SRC, an overlay without lower dirs, or an upper dir
 * without a work dir (and vice versa). The plan is unchanged on failure.
 */
int mount_plan_add_tmpfs(struct mount_plan *p, const char *dest, const char *options,
                         unsigned flags);
int mount_plan_add_overlay(struct mount_plan *p, const char *dest, char *const *lowerdirs,
                           const char *upperdir, const char *workdir, unsigned flags);
int mount_plan_add_bind(struct mount_plan *p, const char *src, const char *dest, unsigned flags);
int mount_plan_add_proc(struct mount_plan *p, const char *dest, unsigned flags);
int mount_plan_add_sysfs(struct mount_plan *p, const char *dest, unsigned flags);
int mount_plan_add_dev(struct mount_plan *p, const char *dest, unsigned flags);
int mount_plan_add_dev_minimal(struct mount_plan *p, const char *dest, unsigned flags);
int mount_plan_add_mkdir(struct mount_plan *p, const char *dest, mode_t mode, unsigned flags);
int mount_plan_add_write_file(struct mount_plan *p, const char *dest, const void *data, size_t len,
                              mode_t mode, unsigned flags);
int mount_plan_add_symlink(struct mount_plan *p, const char *target, const char *dest,
                           unsigned flags);
int mount_plan_add_remount_ro(struct mount_plan *p, const char *dest, unsigned flags);

/* Sets the extra options of the last operation (an overlay's "volatile",
 * a tmpfs's "size=64m"), replacing any it had. Returns 0, -EINVAL on an
 * empty plan, or -ENOMEM. */
int mount_plan_set_options(struct mount_plan *p, const char *options);

/*
 * Applies the operations in order onto root (an existing directory; the
 * caller usually runs this in a private mount namespace). host_prefix (NULL
 * or "" for none) is prepended to SRC paths and to HOST DESTs.
 *
 * Returns 0, or the -errno of the first operation that failed; operations
 * after it are not attempted and mounts made before it are left in place
 * (the caller's namespace owns them: a sandbox drops them with the
 * namespace). When ret_error is not NULL it receives (on failure only, the
 * caller frees) what failed without the cause, ready for
 * log_error_errno(r, "cannot %s: %m", error):
 *     "mount overlay on '/newroot/' (step 1 of 12)"
 * -E2BIG: an overlay with more lower dirs than the kernel stacks.
 */
int mount_plan_apply(const struct mount_plan *p, const char *root, const char *host_prefix,
                     char **ret_error);

/* The name of an operation type as used in descriptions and JSON ("tmpfs",
 * "overlay", "bind", "proc", "sysfs", "dev", "dev-minimal", "mkdir",
 * "write-file", "symlink", "remount-ro"), or NULL. */
const char *mount_op_type_to_string(enum mount_op_type t);
/* The reverse, or -EINVAL. */
int mount_op_type_from_string(const char *s);

/* Writes a dry-run description, one operation a line, in order:
 *   "  1 overlay     /  lower=/d/system/layers/a/fs:/ upper=... work=..."
 * Returns 0 or -errno of the write. */
int mount_plan_describe(const struct mount_plan *p, FILE *f);

/* Dry run as data: a JSON array of operations, each an object
 *   {"type":"bind","dest":"/data","src":"/srv/d","flags":["rec","create-dest"]}
 * with "lowerdirs" (array), "upperdir", "workdir", "options", "target",
 * "data", "mode" (number) where they apply. *ret is a new reference. */
int mount_plan_to_json(const struct mount_plan *p, json_t **ret);

/* Builds a plan from that JSON form (plans as data). Every operation is
 * checked before the plan is returned: -EBADMSG for an unknown type, flag
 * or field, a field that does not apply to the type, a missing field, a
 * value of the wrong type, a path that is not absolute; *ret_error (may be
 * NULL; caller frees) then names the operation (1-based) and the field:
 *     operation 3, field "src": missing */
int mount_plan_from_json(const json_t *j, struct mount_plan **ret, char **ret_error);

/*
 * Plan files (docs/worker.md, "Plan files"): a JSON document that is either
 * that array, or an object whose "mounts" is that array and whose other
 * keys belong to the program that reads the plan (e.g. a worker's "user").
 * Every string in the document may use ${NAME}, replaced from vars
 * ("NAME=value" strings, NULL-terminated; may be NULL); an unknown name is
 * an error. An operation may carry a "comment" string, which is ignored.
 */

/* Replaces every ${NAME} of s; *ret is new. -ENXIO for a name that is not
 * in vars (*ret_unknown, may be NULL, gets "${NAME}"), -ENOMEM. */
int mount_plan_substitute_string(const char *s, char *const *vars, char **ret, char **ret_unknown);

/* Substitutes vars in doc (in place: the caller reads its other keys with
 * the values substituted) and builds the plan from it. -EBADMSG with
 * *ret_error naming the document, the operation and the field:
 *     'plan.json': operation 3, field "src": unknown variable '${SLOTS}'
 * Nothing is mounted. */
int mount_plan_from_document(const char *name, json_t *doc, char *const *vars,
                             struct mount_plan **ret, char **ret_error);

/* An error in the plan document name, for its readers (the worker reads
 * its own keys of the document too): -EBADMSG with "'NAME': MESSAGE" in
 * *ret_error (unless ret_error is NULL; NULL without memory). */
int mount_plan_document_error(char **ret_error, const char *name, const char *fmt, ...)
    _printf_(3, 4);

/* Reads the plan file at path, as mount_plan_from_document. *ret_doc (may
 * be NULL) gets the substituted document (a new reference). A file that
 * cannot be read is its -errno, one that does not parse -EBADMSG; both
 * with *ret_error ("'plan.json' line 3 column 7: ..."). */
int mount_plan_load(const char *path, char *const *vars, struct mount_plan **ret_plan,
                    json_t **ret_doc, char **ret_error);

/*
 * Teardown: unmounting what a plan built, deepest path first, retrying
 * EBUSY with a bounded backoff, then MNT_DETACH (reported in the result).
 */
struct mount_teardown_policy {
        unsigned tries;            /* attempts per mount before MNT_DETACH */
        uint64_t first_delay_usec; /* sleep after the first EBUSY, doubling */
        uint64_t max_delay_usec;   /* the cap of one sleep */
        /* For tests: umount2() returning 0 or -errno, and the sleep. NULL:
         * the real ones. */
        int (*umount)(const char *path, int flags);
        void (*sleep)(uint64_t usec);
        /* The caller's mount namespace ends right after (a worker's init
         * tearing down its root): a mount that no process uses, that has
         * no mount on it and whose parent stays (under itself, kept) is
         * left for the kernel to drop with the namespace, all at once,
         * and counted as unmounted. Each umount2() waits for an RCU grace
         * period, a namespace's end waits for one: 26 mounts cost ~26 of
         * them otherwise. The kernel says which are unused without unmounting
         * them (umount2 MNT_EXPIRE: EAGAIN); the others are unmounted as
         * always, retried and detached when busy. An unused mount on
         * another mount (/dev/pts on /dev) is moved onto a new directory
         * ".strata-teardown-PID.N" of the kept one and left there: then
         * the mount it was on has nothing on it, and the kernel can say
         * whether that one is used (a move waits for no grace period).
         * Where the kept mount takes no new directory, it is unmounted. */
        bool namespace_ends;
};

/* 10 tries from 50 ms doubling, capped at 1 s: at most 5.55 s a mount. */
#define MOUNT_TEARDOWN_POLICY_DEFAULT                         \
        {                                                     \
                10, 50 * 1000, 1000 * 1000, NULL, NULL, false \
        }

struct mount_teardown_result {
        unsigned found;     /* mounts at or below under when it began (a kept one too) */
        unsigned unmounted; /* cleanly */
        unsigned detached;  /* still busy after every try: MNT_DETACH */
        unsigned retries;   /* EBUSY retries, in all */
        unsigned failed;
        char first_detached[256]; /* the first mount detached */
};

/* The sleep before retry n (1-based): first * 2^(n-1), capped. */
uint64_t mount_teardown_delay(const struct mount_teardown_policy *pol, unsigned retry);

/* Unmounts path (UMOUNT_NOFOLLOW), adding to *res. Returns 0 when it is
 * gone (or was not mounted), 1 when it had to be detached, -errno when it
 * cannot be unmounted at all. */
int mount_teardown_one(const char *path, const struct mount_teardown_policy *pol,
                       struct mount_teardown_result *res);

/* Unmounts every mount at or below under (and under itself unless
 * keep_under) as mount_teardown_one, deepest path first. Returns 0 or the
 * first -errno (it goes on with the rest). */
int mount_teardown_under(const char *under, bool keep_under,
                         const struct mount_teardown_policy *pol,
                         struct mount_teardown_result *res);
