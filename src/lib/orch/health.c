/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"
#include "macro.h"
#include "policy.h"

static const char *const verdict_names[_HEALTH_VERDICT_MAX] = {
    [HEALTH_RESTART] = "restart",
    [HEALTH_NOTIFY] = "notify",
    [HEALTH_SKIP] = "skip",
};

const char *health_verdict_to_string(enum health_verdict v)
{
        return v >= 0 && v < _HEALTH_VERDICT_MAX ? verdict_names[v] : "unknown";
}

void health_plan_done(struct health_plan *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n; i++) {
                free(p->actions[i].name);
                free(p->actions[i].reason);
        }
        free(p->actions);
        *p = (struct health_plan){};
}

static int action_cmp(const void *a, const void *b)
{
        const struct health_action *x = a, *y = b;

        if (x->tier != y->tier)
                return x->tier < y->tier ? -1 : 1;
        return strcmp(x->name, y->name);
}

static void decide(const struct container *c, const struct tracker_entry *e,
                   const struct nameset *user_stopped, const struct health_limits *limits,
                   usec_t now, struct health_action *a, char *reason, size_t size)
{
        unsigned attempts = tracker_effective_attempts(e, now, limits->stable_usec);

        a->attempts = attempts;
        if (c->state == CONTAINER_RUNNING) {
                a->verdict = HEALTH_SKIP;
                snprintf(reason, size, "running");
        } else if (nameset_contains(user_stopped, c->name)) {
                a->verdict = HEALTH_SKIP;
                snprintf(reason, size, "stopped by the user");
        } else if (c->state == CONTAINER_OTHER) {
                a->verdict = HEALTH_SKIP;
                snprintf(reason, size, "in a state the monitor does not handle");
        } else if (attempts >= limits->max_attempts) {
                if (e && e->notified) {
                        a->verdict = HEALTH_SKIP;
                        snprintf(reason, size, "given up after %u restarts (already notified)",
                                 attempts);
                } else {
                        a->verdict = HEALTH_NOTIFY;
                        snprintf(reason, size,
                                 "%s (exit code %d) after %u restarts without running stably: "
                                 "giving up",
                                 container_state_to_string(c->state), c->exit_code, attempts);
                }
        } else {
                a->verdict = HEALTH_RESTART;
                if (c->state == CONTAINER_CREATED)
                        snprintf(reason, size, "created but not running (attempt %u of %u)",
                                 attempts + 1, limits->max_attempts);
                else
                        snprintf(reason, size, "%s with exit code %d (attempt %u of %u)",
                                 container_state_to_string(c->state), c->exit_code, attempts + 1,
                                 limits->max_attempts);
        }
}

int health_plan(const struct container_list *containers, const struct tracker *tracker,
                const struct nameset *user_stopped, const struct health_limits *limits, usec_t now,
                struct health_plan *ret)
{
        struct health_plan p = {};

        p.actions = calloc(containers->n + 1, sizeof(struct health_action));
        if (!p.actions)
                return -ENOMEM;
        for (size_t i = 0; i < containers->n; i++) {
                const struct container *c = &containers->items[i];
                struct health_action *a = &p.actions[p.n];
                char reason[256];

                if (!c->managed)
                        continue;
                a->tier = c->tier >= 0 ? c->tier : TIER_APP;
                decide(c, tracker ? tracker_find(tracker, c->name) : NULL, user_stopped, limits,
                       now, a, reason, sizeof(reason));
                a->name = strdup(c->name);
                a->reason = strdup(reason);
                p.n++;
                if (!a->name || !a->reason) {
                        health_plan_done(&p);
                        return -ENOMEM;
                }
        }
        qsort(p.actions, p.n, sizeof(struct health_action), action_cmp);
        *ret = p;
        return 0;
}
