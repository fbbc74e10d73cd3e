/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Native services: packages that are s6 service dirs instead of images,
 * kept beside the containers by the same engine (orch.h). A package is
 * installed as <scan dir>/<id>, a copy of the given service dir with
 *
 *   down           so s6-supervise never starts it on its own: the engine
 *                  does (s6-svc -o: once, so a crash is the health
 *                  monitor's to repair, with the tracker and tiers)
 *   timeout-kill   the stop grace period in ms (SIGTERM to SIGKILL)
 *   strata.json    { "version": 1, "tier": "app", "grace_seconds": 30,
 *                    "source": DIR }: what marks it as strata's
 *
 * and s6-svscan is told to rescan. State comes from s6-svstat, starting
 * and stopping from s6-svc, as struct container (podman.h) with native
 * set, so the health plan, the tracker and recovery treat both alike.
 *
 * Returns 0 or -errno; when an s6 tool fails, what it printed is kept:
 * services_last_error().
 */

#include <stdbool.h>

#include "clock.h"
#include "exec.h"
#include "podman.h"
#include "policy.h"

#define SERVICES_MARKER "strata.json"

struct services {
        struct executor *executor;
        char *scan_dir;
        int scan_fd;
        struct clock_source *clock;
        int64_t timeout_ms; /* per s6 command */
        char *last_error;
};

int services_new(struct executor *executor, struct clock_source *clock, const char *scan_dir,
                 struct services **ret);
struct services *services_free(struct services *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct services *, services_free);

const char *services_last_error(const struct services *s);

/* Checks that dir can be installed: an absolute path to a directory whose
 * run is an executable regular file. -EINVAL with *ret_error saying what
 * is wrong. */
int services_check_source(const char *dir, char **ret_error);

/* true if the scan dir holds a service strata installed as id. */
bool services_exists(struct services *s, const char *id);

/* Installs source as id, starts it and watches it for the policy's watch
 * period; a service that goes down meanwhile is removed again (-ESRCH,
 * with its exit code). -EEXIST if the scan dir has id already. */
int services_install(struct services *s, const struct policy *policy, const char *id,
                     const char *source, int tier, int64_t grace_s, char **ret_error);
/* s6-svc -o, waiting until it is up. */
int services_start(struct services *s, const char *id);
/* s6-svc -d, waiting (grace period and a little) until it is down. */
int services_stop(struct services *s, const char *id, int64_t grace_s);
/* Stops it, takes it out of the scan dir (s6-svscanctl -an) and removes
 * its dir. A missing service is success. */
int services_remove(struct services *s, const char *id);
/* -ENOENT when there is no such service of ours. */
int services_inspect(struct services *s, const char *id, struct container *ret);
/* Every service of ours in the scan dir. */
int services_list(struct services *s, struct container_list *ret);
