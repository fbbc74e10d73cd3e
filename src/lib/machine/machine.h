/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The root of a strata machine as a mount plan, built from a data dir (see
 * layerstore.h). overlayfs-init, `strata lab` and system-migrate all use
 * it, each with its options:
 *
 *   overlay on /: lower = active layers newest first, then base
 *                 upper/work = <data>/system/{upper,work} (or the caller's)
 *   /dev          host /dev (recursive bind) or a minimal one
 *   /proc         fresh procfs
 *   /sys          fresh sysfs, then /sys/fs/cgroup (recursive bind of the
 *                 host's, optional; not with MACHINE_CGROUP_NONE)
 *   /run          tmpfs
 *   /tmp          tmpfs (tmp_tmpfs)
 *   /data         bind of <data> (bind_data)
 *   <path>        for each state path: bind of <data>/state/<path> or, with
 *                 state_scratch, an overlay with lower <data>/state/<path>
 *                 and upper/work under state_scratch (state writes are
 *                 captured, the caller decides what to keep)
 *   policy-rc.d   written to /usr/sbin/policy-rc.d (mode 0755) when given
 *   extra binds   appended last
 *
 * With system_tmpfs / state_tmpfs, the plan first mounts a tmpfs over
 * <data>/system (and creates system/{upper,work}) / <data>/state, as
 * MOUNT_PLAN_HOST operations: a throwaway machine. Those only make sense
 * inside a private mount namespace (sandbox_run, or the PID 1 of a VM).
 */

#include <stdbool.h>

#include "layerstore.h"
#include "mountplan.h"

/* Held (lock.h, under the data dir) while a machine of the data dir runs
 * with its scratch upper: two machines must not share one upper dir. */
#define MACHINE_LOCK "system/lock/machine.lock"

enum machine_dev {
        MACHINE_DEV_HOST,    /* recursive bind of the host's /dev */
        MACHINE_DEV_MINIMAL, /* null zero full random urandom tty, pts, shm */
};

enum machine_cgroup {
        MACHINE_CGROUP_HOST, /* recursive bind of the host's /sys/fs/cgroup */
        MACHINE_CGROUP_NONE, /* the fresh sysfs's own (empty) /sys/fs/cgroup */
};

struct machine_bind {
        const char *src;  /* host path */
        const char *dest; /* path in the machine */
        bool read_only;
};

struct machine_options {
        const char *data_dir; /* required, absolute: <data> as the caller sees it */
        const char *base;     /* lowest lower dir; NULL: "/" */

        /* The writable layer of the root. NULL: <data>/system/upper and
         * <data>/system/work. migrate passes .tmp-<id>/{fs,work}. */
        const char *upper_dir;
        const char *work_dir;

        /* Non-NULL: when the layers lie inside the base on the same file
         * system (the host's "/" as base with the data dir on it), which the
         * kernel refuses as overlapping layers, the base is first mounted
         * read-only at "<base_scratch>/base" (a MOUNT_PLAN_HOST overlay of
         * the base and an empty tmpfs at "<base_scratch>/empty") and that
         * mount is the stack's lowest dir. */
        const char *base_scratch;

        bool system_tmpfs; /* tmpfs over <data>/system first (see above) */
        bool state_tmpfs;  /* tmpfs over <data>/state first */

        /* Non-NULL: state paths become overlays with upper/work dirs
         * "<state_scratch>/<n>/{upper,work}" (n = index in state_paths),
         * created by machine_root_plan. NULL: plain rw binds. */
        const char *state_scratch;

        /* The root's upper (and the state_scratch uppers) are thrown away
         * after a crash and synced by the caller (syncfs) before it keeps
         * anything: their overlays are mounted "volatile", so the kernel
         * skips every sync to them (a script's fsync of each file it
         * writes, as dpkg does, costs nothing). For a migration's
         * .tmp-<id>, never for a machine's own upper. */
        bool volatile_upper;

        bool bind_data; /* bind <data> to /data (read-write) */
        bool tmp_tmpfs; /* /tmp as tmpfs */
        enum machine_dev dev;
        /* The host's cgroup trees are what podman, runc or systemd in the
         * machine need; binding them copies every cgroup mount (a dozen
         * on a v1 or hybrid host), so the lab leaves them out unless
         * asked. */
        enum machine_cgroup cgroup;
        const char *policy_rc_d; /* content of /usr/sbin/policy-rc.d, or NULL */
        /* A migration's sandbox rather than a machine: /sys, the host's
         * cgroup trees and /proc/sys (and /proc/sysrq-trigger) read-only. */
        bool read_only_kernel;

        const struct machine_bind *binds; /* appended in order, dests created */
        size_t n_binds;
};

/*
 * Builds the plan for the machine in o, from metadata m (the caller loads
 * it with layer_metadata_load: NULL means an empty store). Lower dirs come
 * from layer_metadata_lowerdirs. Returns 0 with *ret a new plan, -EINVAL
 * for a relative data_dir/base or a state path that is not absolute or
 * contains "..", -E2BIG for more layers than an overlay can stack (see
 * MOUNT_PLAN_OVERLAY_MAX_LOWER; squash them), -errno creating the
 * state_scratch dirs.
 */
int machine_root_plan(const struct machine_options *o, const struct layer_metadata *m,
                      struct mount_plan **ret);
