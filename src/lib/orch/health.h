/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The health monitor's decisions, as a pure function: given the containers
 * (podman ps), the restart tracker, the user-stopped set and the time, what
 * to do with each managed container. The loop around it (orch.h) does the
 * IO. Actions come in tier order (database, infra, app), then by name, so
 * databases restart before what depends on them.
 */

#include "clock.h"
#include "nameset.h"
#include "podman.h"
#include "tracker.h"

enum health_verdict {
        HEALTH_RESTART, /* not running and should be: start it */
        HEALTH_NOTIFY,  /* restarted max_attempts times without becoming stable: give up, tell */
        HEALTH_SKIP,    /* nothing to do (running, stopped by the user, given up) */
        _HEALTH_VERDICT_MAX,
};

const char *health_verdict_to_string(enum health_verdict v);

struct health_action {
        enum health_verdict verdict;
        char *name;
        int tier;
        unsigned attempts; /* effective restart attempts so far */
        char *reason;
};

struct health_plan {
        struct health_action *actions;
        size_t n;
};

struct health_limits {
        unsigned max_attempts; /* restarts before giving up */
        usec_t stable_usec;    /* running this long clears the attempts */
};

void health_plan_done(struct health_plan *p);

/* Fills *ret with one action per managed container (unmanaged ones are not
 * ours and are left out). user_stopped may be NULL. */
int health_plan(const struct container_list *containers, const struct tracker *tracker,
                const struct nameset *user_stopped, const struct health_limits *limits, usec_t now,
                struct health_plan *ret);
