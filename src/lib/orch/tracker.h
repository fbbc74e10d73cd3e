/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The restart tracker: per container, how many times the health monitor
 * restarted it since it last ran stably, when the trouble began, the last
 * restart and the last start. Persisted as JSON (atomically) so the count
 * survives a restart of the manager:
 *
 *   { "version": 1,
 *     "containers": { "lnd": { "attempts": 2, "first_failure_usec": ...,
 *                              "last_restart_usec": ..., "last_start_usec": ...,
 *                              "notified": false } } }
 */

#include <stdbool.h>

#include "clock.h"

struct tracker_entry {
        char *name;
        unsigned attempts;    /* restarts by the monitor since the last stable run */
        usec_t first_failure; /* 0: none */
        usec_t last_restart;  /* 0: never */
        usec_t last_start;    /* 0: never (any start: install, user, monitor) */
        bool notified;        /* the give-up notification was raised */
};

struct tracker {
        struct tracker_entry *entries;
        size_t n;
};

void tracker_done(struct tracker *t);
const struct tracker_entry *tracker_find(const struct tracker *t, const char *name);

/* The monitor restarted name at now after a failure. */
int tracker_record_restart(struct tracker *t, const char *name, usec_t now);
/* name was started on purpose (install, user): its counters clear. */
int tracker_record_start(struct tracker *t, const char *name, usec_t now);
/* name has been running since started_at (0: unknown): once that and the
 * last restart are stable_usec in the past, the counters clear. Returns
 * true if they were cleared. */
bool tracker_note_running(struct tracker *t, const char *name, usec_t started_at, usec_t now,
                          usec_t stable_usec);
/* The counters that count at now: zero once the last restart is
 * stable_usec old (the container then ran long enough, or was not
 * restarted by us since). */
unsigned tracker_effective_attempts(const struct tracker_entry *e, usec_t now, usec_t stable_usec);
int tracker_set_notified(struct tracker *t, const char *name);
void tracker_forget(struct tracker *t, const char *name);

/* Loads path; a missing file is an empty tracker. A file that does not
 * parse or has the wrong shape is moved aside (statefile.h), reported
 * through *ret_aside (NULL otherwise) and replaced by an empty tracker. */
int tracker_load_at(int dirfd, const char *path, usec_t now, struct tracker *ret, char **ret_aside);
int tracker_save_at(int dirfd, const char *path, const struct tracker *t);
