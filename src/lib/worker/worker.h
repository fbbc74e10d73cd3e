/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Workers: isolated build roots, each a mount plan applied by the
 * mount-plan engine in its own mount, pid, ipc and uts namespaces (and net
 * unless the plan shares the host's), run by the namespace runner.
 *
 *   worker_run():
 *     take a slot (marker ROOT/slots/N/worker.json, flock()ed)
 *     read the plan file (${SLOT}, ${WORKER_ROOT}), add the --bind's:
 *         a malformed plan fails here, before anything is mounted
 *     create its "host-dirs"
 *     sandbox_run: the plan onto a tmpfs root, pivot_root, CMD as pid 2
 *         (as the plan's "user"), the init reaps; when CMD exits the init
 *         kills everything left in the pid namespace, then unmounts every
 *         mount deepest first (EBUSY retried, MNT_DETACH last) and exits
 *     remove the marker
 *
 * Plan files: docs/worker.md. The default plan is worker_default_plan.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mountplan.h"

#define WORKER_ROOT_DEFAULT "/run/strata/worker"

/* Exit statuses besides CMD's own (128+N for a signal). */
#define WORKER_EXIT_TIMEOUT 124
#define WORKER_EXIT_SETUP   125 /* the worker could not be set up */
#define WORKER_EXIT_EXEC    127 /* CMD could not be executed */

/* The default plan, as the text of a plan file. */
extern const char worker_default_plan[];

struct worker_plan {
        struct mount_plan *plan;
        char *hostname;    /* NULL: unchanged */
        bool network_host; /* "network": "host"; default "none" */
        bool has_user;     /* "user": {"uid": U, "gid": G} */
        uid_t uid;
        gid_t gid;
        char **host_dirs; /* created on the host before the plan is applied */
};

/* Reads the plan file (NULL: the default plan) for slot under root.
 * -EBADMSG (and others) with *ret_error naming the file, the operation and
 * the field; nothing is mounted. */
int worker_plan_load(const char *file, const char *root, int slot, struct worker_plan **ret,
                     char **ret_error);
struct worker_plan *worker_plan_free(struct worker_plan *wp);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct worker_plan *, worker_plan_free)

/* Binds host path src on dest: replaces the plan's bind on dest if it has
 * one (its source and read-only flag), else appends one (creating dest). */
int worker_plan_add_bind(struct worker_plan *wp, const char *src, const char *dest, bool read_only);

struct worker_bind {
        const char *src, *dest;
        bool read_only;
};

struct worker_options {
        const char *root;      /* NULL: WORKER_ROOT_DEFAULT */
        const char *plan_file; /* NULL: the default plan */
        int slot;              /* < 0: the lowest free */
        const struct worker_bind *binds;
        size_t n_binds;
        uint64_t timeout_usec; /* 0: none */
        char *const *argv;
        int stdin_fd, stdout_fd, stderr_fd; /* 0: inherit */
};

struct worker_result {
        int slot;
        int status;      /* CMD's exit status (see the WORKER_EXIT_*) */
        bool timed_out;  /* the namespace was killed: the kernel dropped its mounts */
        unsigned mounts; /* the worker's mounts when CMD ended (its root included) */
        struct mount_teardown_result teardown;
        uint64_t usec; /* wall time, setup to teardown */
};

/*
 * Runs one worker. Returns 0 once CMD ran (its status in ret->status), or
 * -errno: -EBUSY when the slot is in use, -EBADMSG for a malformed plan,
 * others when the worker cannot be set up or CMD not executed; *ret_error
 * (may be NULL; caller frees) then says what failed without the cause, for
 * log_error_errno(r, "%s: %m", error). ret->slot is set in every case where
 * a slot was taken.
 */
int worker_run(const struct worker_options *o, struct worker_result *ret, char **ret_error);

/* The worker's exit status for a worker_run() failure: 75 busy, 125 setup,
 * 127 exec. */
int worker_status_of_error(int r, bool exec_failed);
