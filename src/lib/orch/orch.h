/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The orchestrator engine: packages as podman containers, with their state
 * (restart tracker, user-stopped set, snapshot of what runs, the manager's
 * PID file) in a state dir. The same code drives the mock podman in unit
 * tests and real podman from the CLI. With o->services set, packages can
 * also be native s6 services (services.h), under the same tracker, tiers,
 * health monitor and recovery.
 *
 *   <state dir>/restart-tracker.json   tracker.h
 *   <state dir>/user-stopped.json      nameset.h
 *   <state dir>/snapshot.json          recovery.h
 *   <state dir>/manager.pid            recovery.h
 *   <state dir>/notifications.json     what the monitor gave up on, newest last
 *                                      (the last ORCH_NOTIFICATIONS_MAX)
 *   <state dir>/lock                   held while a command changes state
 *
 * Functions return 0 or -errno; on failure *ret_error (when not NULL) gets a
 * message for humans, owned by the caller.
 */

#include "clock.h"
#include "health.h"
#include "install.h"
#include "nameset.h"
#include "podman.h"
#include "policy.h"
#include "recovery.h"
#include "services.h"
#include "tracker.h"

#define ORCH_TRACKER_FILE       "restart-tracker.json"
#define ORCH_USER_STOPPED_FILE  "user-stopped.json"
#define ORCH_SNAPSHOT_FILE      "snapshot.json"
#define ORCH_PID_FILE           "manager.pid"
#define ORCH_LOCK_FILE          "lock"
#define ORCH_NOTIFICATIONS_FILE "notifications.json"
#define ORCH_NOTIFICATIONS_MAX  100

struct orch {
        struct podman *podman;       /* not owned */
        struct services *services;   /* not owned; NULL: no native services */
        const struct policy *policy; /* not owned */
        struct clock_source *clock;
        int state_fd;
        int lock_fd;
        struct tracker tracker;
        struct nameset user_stopped;
        char **warnings; /* state files found corrupt and set aside, NULL-terminated */
        size_t n_warnings;
};

/* Opens (creating it) the state dir and loads the state. A corrupt state
 * file is moved aside and noted in o->warnings. With lock, an exclusive lock
 * on the state dir is held until orch_free(); -EWOULDBLOCK (without
 * waiting) if another process holds it. */
int orch_open(const char *state_dir, struct podman *pm, const struct policy *policy,
              struct clock_source *clock, bool lock, struct orch **ret, char **ret_error);
struct orch *orch_free(struct orch *o);

/* Failsafe install (install.h), then the state: not user-stopped, counters
 * clear, snapshot updated. */
int orch_install(struct orch *o, const struct install_request *req, char **ret_error);
/* The state half of orch_install, for a caller that ran install_failsafe()
 * itself (with its own podman, outside whatever serializes the engine). */
int orch_installed(struct orch *o, const char *name, char **ret_error);
/* A native service: services_install() of source as name (o->services
 * must be set; -EOPNOTSUPP otherwise), then the state as for a container.
 * -EEXIST when a container or a service has that name. */
int orch_install_service(struct orch *o, const char *name, const char *source, int tier,
                         int64_t grace_s, char **ret_error);
/* Starts a managed container; it is no longer user-stopped. */
int orch_start(struct orch *o, const char *name, char **ret_error);
/* Stops it with its grace period and marks it user-stopped. */
int orch_stop(struct orch *o, const char *name, char **ret_error);
/* Stop (grace period) + start. */
int orch_restart(struct orch *o, const char *name, char **ret_error);
/* Stops (grace period) and removes it, and forgets its state. */
int orch_uninstall(struct orch *o, const char *name, char **ret_error);

/* orch_stop, orch_restart and orch_uninstall in three steps, so that a
 * caller serializing calls into the engine can let other calls in during
 * the grace period: orch_stop_begin (checks it is ours, notes what the
 * stop needs; a stop marks it user-stopped) and orch_stop_end (the state
 * after the stop: snapshot; the start of a restart; the removal of an
 * uninstall) touch the engine; orch_stop_wait between them touches only
 * the runtime, through a podman and services of the caller's own (their
 * last errors are per object). The caller keeps the health monitor and
 * other calls for the same name away meanwhile. */
enum orch_stop_kind { ORCH_STOP, ORCH_RESTART, ORCH_UNINSTALL };
struct orch_stopping {
        enum orch_stop_kind kind;
        char *name;
        int64_t grace; /* seconds */
        bool native;   /* an s6 service */
        bool running;  /* false: an uninstall of a stopped one, no stop to wait for */
};
int orch_stop_begin(struct orch *o, enum orch_stop_kind kind, const char *name,
                    struct orch_stopping *ret, char **ret_error);
int orch_stop_wait(const struct orch_stopping *s, struct podman *pm, struct services *sv,
                   char **ret_error);
int orch_stop_end(struct orch *o, const struct orch_stopping *s, char **ret_error);
void orch_stopping_done(struct orch_stopping *s);
/* The managed containers. */
int orch_list(struct orch *o, struct container_list *ret, char **ret_error);
/* The grace period for a container: its label, else the policy's. */
int64_t orch_grace_for(const struct orch *o, const struct container *c);

/* One pass of the health monitor: podman ps, clear the counters of the
 * stable ones, plan (health.h); with apply, restart and notify
 * (orch_notify) as planned and persist. *ret is the plan; restarts that failed have their reason
 * replaced by the error. */
int orch_health(struct orch *o, bool apply, struct health_plan *ret, char **ret_error);

/* Appends a notification {time_usec, name, message} to notifications.json
 * (a corrupt file is set aside and noted in o->warnings). */
int orch_notify(struct orch *o, const char *name, const char *message);

/* Saves which managed containers run now (snapshot.json). */
int orch_snapshot(struct orch *o, char **ret_error);

/* Crash recovery at manager start: if the PID file names a process that is
 * gone (or force), restart the snapshot's containers in tier order,
 * skipping user-stopped ones (and those already running). Then writes our
 * own PID file. *ret_crashed says whether a crash was detected; *ret the
 * plan that was carried out, each step's error set when its start failed
 * (the others are still tried). -EBUSY when a live manager holds the PID
 * file. */
int orch_recover(struct orch *o, bool force, bool *ret_crashed, struct recovery_plan *ret,
                 char **ret_error);
/* Removes our PID file (clean shutdown). */
int orch_shutdown(struct orch *o);
