/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "lock.h"
#include "log.h"
#include "macro.h"
#include "orch.h"
#include "statefile.h"

static int add_warning(struct orch *o, const char *file, const char *aside)
{
        char **l = realloc(o->warnings, (o->n_warnings + 2) * sizeof(char *));

        if (!l)
                return -ENOMEM;
        o->warnings = l;
        if (asprintf(&l[o->n_warnings], "'%s' was corrupt: moved it to '%s' and started clean",
                     file, aside) < 0)
                return -ENOMEM;
        l[++o->n_warnings] = NULL;
        return 0;
}

struct orch *orch_free(struct orch *o)
{
        if (!o)
                return NULL;
        tracker_done(&o->tracker);
        nameset_done(&o->user_stopped);
        strv_free(o->warnings);
        if (o->lock_fd >= 0)
                lock_release(o->lock_fd);
        safe_close(o->state_fd);
        free(o);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct orch *, orch_free);

int orch_open(const char *state_dir, struct podman *pm, const struct policy *policy,
              struct clock_source *clock, bool lock, struct orch **ret, char **ret_error)
{
        _cleanup_(orch_freep) struct orch *o = NULL;
        _cleanup_free_ char *aside = NULL;
        usec_t now = clock_now(clock);
        int r;

        o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        o->podman = pm;
        o->policy = policy;
        o->clock = clock;
        o->lock_fd = -1;
        o->state_fd = -1;

        r = mkdir_p_at(AT_FDCWD, state_dir, 0755);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot create the state dir '%s': %s",
                                         state_dir, strerror(-r));
        o->state_fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (o->state_fd < 0)
                return set_error_message(ret_error, negative_errno(),
                                         "cannot open the state dir '%s': %m", state_dir);
        if (lock) {
                struct lock_holder h = {};
                r = lock_acquire_at(o->state_fd, ORCH_LOCK_FILE, "strata pkg", LOCK_NONBLOCK,
                                    &o->lock_fd, &h);
                if (r == -EWOULDBLOCK)
                        return set_error_message(
                            ret_error, r, "the state dir '%s' is busy: pid %d holds it for '%s'",
                            state_dir, (int)h.pid, h.purpose);
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot lock '%s/%s': %s", state_dir,
                                                 ORCH_LOCK_FILE, strerror(-r));
        }

        r = tracker_load_at(o->state_fd, ORCH_TRACKER_FILE, now, &o->tracker, &aside);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot load '%s/%s': %s", state_dir,
                                         ORCH_TRACKER_FILE, strerror(-r));
        if (aside && add_warning(o, ORCH_TRACKER_FILE, aside) < 0)
                return -ENOMEM;
        free(aside);
        aside = NULL;

        r = nameset_load_at(o->state_fd, ORCH_USER_STOPPED_FILE, now, &o->user_stopped, &aside);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot load '%s/%s': %s", state_dir,
                                         ORCH_USER_STOPPED_FILE, strerror(-r));
        if (aside && add_warning(o, ORCH_USER_STOPPED_FILE, aside) < 0)
                return -ENOMEM;

        *ret = TAKE_PTR(o);
        return 0;
}

static int save_state(struct orch *o, char **ret_error)
{
        int r;

        r = tracker_save_at(o->state_fd, ORCH_TRACKER_FILE, &o->tracker);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot save '%s': %s", ORCH_TRACKER_FILE,
                                         strerror(-r));
        r = nameset_save_at(o->state_fd, ORCH_USER_STOPPED_FILE, &o->user_stopped);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot save '%s': %s",
                                         ORCH_USER_STOPPED_FILE, strerror(-r));
        return 0;
}

static bool is_service(struct orch *o, const char *name)
{
        return o->services && services_exists(o->services, name);
}

static const char *last_error(struct orch *o, bool native)
{
        return native ? services_last_error(o->services) : podman_last_error(o->podman);
}

/* inspect, start and stop for either kind of package */
static int runtime_inspect(struct orch *o, const char *name, struct container *ret)
{
        if (is_service(o, name))
                return services_inspect(o->services, name, ret);
        return podman_inspect(o->podman, name, ret);
}

static int runtime_start(struct orch *o, const char *name, const char **ret_why)
{
        bool native = is_service(o, name);
        int r = native ? services_start(o->services, name) : podman_start(o->podman, name);

        if (r < 0 && ret_why)
                *ret_why = last_error(o, native);
        return r;
}

int orch_notify(struct orch *o, const char *name, const char *message)
{
        _cleanup_free_ char *aside = NULL;
        json_t *j = NULL, *list, *n;
        int r;

        r = statefile_load_at(o->state_fd, ORCH_NOTIFICATIONS_FILE, clock_now(o->clock), &j,
                              &aside);
        if (r == -EBADMSG && aside && add_warning(o, ORCH_NOTIFICATIONS_FILE, aside) < 0)
                return -ENOMEM;
        if (r < 0 && r != -ENOENT && r != -EBADMSG)
                return r;
        list = j ? json_object_get(j, "notifications") : NULL;
        if (!json_is_array(list)) {
                if (j && !aside) {
                        /* parses, but is not ours: keep it aside as well */
                        r = statefile_set_aside_at(o->state_fd, ORCH_NOTIFICATIONS_FILE,
                                                   clock_now(o->clock), &aside);
                        if (r < 0) {
                                json_decref(j);
                                return r;
                        }
                        if (add_warning(o, ORCH_NOTIFICATIONS_FILE, aside) < 0) {
                                json_decref(j);
                                return -ENOMEM;
                        }
                }
                json_decref(j);
                j = json_pack("{s:i,s:[]}", "version", 1, "notifications");
                if (!j)
                        return -ENOMEM;
                list = json_object_get(j, "notifications");
        }
        n = json_pack("{s:I,s:s,s:s}", "time_usec", (json_int_t)clock_now(o->clock), "name", name,
                      "message", message);
        if (!n || json_array_append_new(list, n) < 0) {
                json_decref(j);
                return -ENOMEM;
        }
        while (json_array_size(list) > ORCH_NOTIFICATIONS_MAX)
                json_array_remove(list, 0);
        r = statefile_save_at(o->state_fd, ORCH_NOTIFICATIONS_FILE, j);
        json_decref(j);
        return r;
}

int orch_snapshot(struct orch *o, char **ret_error)
{
        struct container_list l = {};
        struct snapshot s = {};
        int r;

        r = orch_list(o, &l, ret_error);
        if (r < 0)
                return r;
        r = snapshot_from_containers(&l, clock_now(o->clock), &s);
        container_list_done(&l);
        if (r < 0)
                return r;
        r = snapshot_save_at(o->state_fd, ORCH_SNAPSHOT_FILE, &s);
        snapshot_done(&s);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot save '%s': %s", ORCH_SNAPSHOT_FILE,
                                         strerror(-r));
        return 0;
}

/* Inspects name and insists it is one of ours. */
static int inspect_managed(struct orch *o, const char *name, struct container *ret,
                           char **ret_error)
{
        struct container c = {};
        int r;

        r = runtime_inspect(o, name, &c);
        if (r == -ENOENT)
                return set_error_message(ret_error, r, "no package '%s' is installed", name);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot inspect '%s': %s", name,
                                         last_error(o, is_service(o, name)));
        if (!c.managed) {
                container_done(&c);
                return set_error_message(
                    ret_error, -EPERM,
                    "the container '%s' was not installed by strata; leaving it alone", name);
        }
        *ret = c;
        return 0;
}

int64_t orch_grace_for(const struct orch *o, const struct container *c)
{
        if (c->grace_s >= 0)
                return c->grace_s;
        return policy_grace_for(o->policy, c->name, c->image);
}

/* The state of a container or service that was installed or started: not
 * user-stopped, its start recorded, the state saved, the snapshot updated. */
static int record_started(struct orch *o, const char *name, char **ret_error)
{
        int r;

        nameset_remove(&o->user_stopped, name);
        r = tracker_record_start(&o->tracker, name, clock_now(o->clock));
        if (r < 0)
                return r;
        r = save_state(o, ret_error);
        if (r < 0)
                return r;
        return orch_snapshot(o, ret_error);
}

int orch_installed(struct orch *o, const char *name, char **ret_error)
{
        return record_started(o, name, ret_error);
}

int orch_install_service(struct orch *o, const char *name, const char *source, int tier,
                         int64_t grace_s, char **ret_error)
{
        int r;

        if (!o->services)
                return set_error_message(ret_error, -EOPNOTSUPP,
                                         "native services need an s6 scan dir");
        struct container c = {};

        r = podman_inspect(o->podman, name, &c);
        container_done(&c);
        if (r >= 0)
                return set_error_message(ret_error, -EEXIST,
                                         "a container named '%s' exists already", name);
        r = services_install(o->services, o->policy, name, source, tier, grace_s, ret_error);
        if (r < 0)
                return r;
        return orch_installed(o, name, ret_error);
}

int orch_install(struct orch *o, const struct install_request *req, char **ret_error)
{
        int r;

        r = install_failsafe(o->podman, o->policy, o->clock, req, ret_error);
        if (r < 0)
                return r;
        return orch_installed(o, req->name, ret_error);
}

int orch_start(struct orch *o, const char *name, char **ret_error)
{
        struct container c = {};
        int r;

        const char *why = "";

        r = inspect_managed(o, name, &c, ret_error);
        if (r < 0)
                return r;
        container_done(&c);
        r = runtime_start(o, name, &why);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot start '%s': %s", name, why);
        return record_started(o, name, ret_error);
}

static int runtime_stop(struct podman *pm, struct services *sv, bool native, const char *name,
                        int64_t grace, char **ret_error)
{
        int r = native ? services_stop(sv, name, grace) : podman_stop(pm, name, grace);

        if (r < 0)
                return set_error_message(ret_error, r, "cannot stop '%s': %s", name,
                                         native ? services_last_error(sv) : podman_last_error(pm));
        return 0;
}

void orch_stopping_done(struct orch_stopping *s)
{
        free(s->name);
        *s = (struct orch_stopping){};
}

int orch_stop_begin(struct orch *o, enum orch_stop_kind kind, const char *name,
                    struct orch_stopping *ret, char **ret_error)
{
        struct container c = {};
        struct orch_stopping s = {.kind = kind};
        int r;

        r = inspect_managed(o, name, &c, ret_error);
        if (r < 0)
                return r;
        s.grace = orch_grace_for(o, &c);
        s.native = c.native;
        s.running = kind != ORCH_UNINSTALL || c.state == CONTAINER_RUNNING;
        container_done(&c);
        s.name = strdup(name);
        if (!s.name)
                return -ENOMEM;
        if (kind == ORCH_STOP) {
                /* Mark it first: a monitor pass during the stop must not
                 * restart it. */
                r = nameset_add(&o->user_stopped, name);
                if (r >= 0)
                        r = save_state(o, ret_error);
                if (r < 0) {
                        orch_stopping_done(&s);
                        return r;
                }
        }
        *ret = s;
        return 0;
}

int orch_stop_wait(const struct orch_stopping *s, struct podman *pm, struct services *sv,
                   char **ret_error)
{
        if (!s->running)
                return 0;
        return runtime_stop(pm, sv, s->native, s->name, s->grace, ret_error);
}

static int uninstall_end(struct orch *o, const char *name, bool native, char **ret_error)
{
        int r;

        r = native ? services_remove(o->services, name) : podman_rm(o->podman, name);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot remove '%s': %s", name,
                                         last_error(o, native));
        tracker_forget(&o->tracker, name);
        nameset_remove(&o->user_stopped, name);
        r = save_state(o, ret_error);
        if (r < 0)
                return r;
        return orch_snapshot(o, ret_error);
}

int orch_stop_end(struct orch *o, const struct orch_stopping *s, char **ret_error)
{
        switch (s->kind) {
        case ORCH_STOP:
                return orch_snapshot(o, ret_error);
        case ORCH_RESTART:
                return orch_start(o, s->name, ret_error);
        case ORCH_UNINSTALL:
                return uninstall_end(o, s->name, s->native, ret_error);
        default:
                return -EINVAL;
        }
}

/* The three steps in one, for a caller that holds the engine throughout. */
static int stop_kind(struct orch *o, enum orch_stop_kind kind, const char *name, char **ret_error)
{
        struct orch_stopping s = {};
        int r;

        r = orch_stop_begin(o, kind, name, &s, ret_error);
        if (r < 0)
                return r;
        r = orch_stop_wait(&s, o->podman, o->services, ret_error);
        if (r >= 0)
                r = orch_stop_end(o, &s, ret_error);
        orch_stopping_done(&s);
        return r;
}

int orch_stop(struct orch *o, const char *name, char **ret_error)
{
        return stop_kind(o, ORCH_STOP, name, ret_error);
}

int orch_restart(struct orch *o, const char *name, char **ret_error)
{
        return stop_kind(o, ORCH_RESTART, name, ret_error);
}

int orch_uninstall(struct orch *o, const char *name, char **ret_error)
{
        return stop_kind(o, ORCH_UNINSTALL, name, ret_error);
}

int orch_list(struct orch *o, struct container_list *ret, char **ret_error)
{
        struct container_list all = {}, l = {};
        int r;

        r = podman_ps(o->podman, &all);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot list containers: %s",
                                         podman_last_error(o->podman));
        l.items = calloc(all.n + 1, sizeof(struct container));
        if (!l.items) {
                container_list_done(&all);
                return -ENOMEM;
        }
        for (size_t i = 0; i < all.n; i++)
                if (all.items[i].managed) {
                        l.items[l.n++] = all.items[i];
                        all.items[i] = (struct container){};
                }
        container_list_done(&all);
        if (o->services) {
                struct container_list sl = {};
                struct container *items;

                r = services_list(o->services, &sl);
                if (r < 0) {
                        container_list_done(&l);
                        return set_error_message(ret_error, r, "cannot list services: %s",
                                                 services_last_error(o->services));
                }
                items = realloc(l.items, (l.n + sl.n + 1) * sizeof(struct container));
                if (!items) {
                        container_list_done(&sl);
                        container_list_done(&l);
                        return -ENOMEM;
                }
                l.items = items;
                for (size_t i = 0; i < sl.n; i++)
                        l.items[l.n++] = sl.items[i];
                free(sl.items);
        }
        *ret = l;
        return 0;
}

int orch_health(struct orch *o, bool apply, struct health_plan *ret, char **ret_error)
{
        struct container_list l = {};
        struct health_plan plan = {};
        usec_t now = clock_now(o->clock);
        bool changed = false;
        int r;

        r = orch_list(o, &l, ret_error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l.n; i++)
                if (l.items[i].state == CONTAINER_RUNNING)
                        changed |= tracker_note_running(&o->tracker, l.items[i].name,
                                                        l.items[i].started_at * USEC_PER_SEC, now,
                                                        o->policy->stable_usec);
        r = health_plan(&l, &o->tracker, &o->user_stopped,
                        &(struct health_limits){.max_attempts = o->policy->max_restart_attempts,
                                                .stable_usec = o->policy->stable_usec},
                        now, &plan);
        container_list_done(&l);
        if (r < 0)
                return r;

        for (size_t i = 0; apply && i < plan.n; i++) {
                struct health_action *a = &plan.actions[i];

                if (a->verdict == HEALTH_RESTART) {
                        r = tracker_record_restart(&o->tracker, a->name, now);
                        if (r < 0)
                                goto fail;
                        const char *err = "";

                        changed = true;
                        r = runtime_start(o, a->name, &err);
                        if (r < 0) {
                                char *why;
                                if (asprintf(&why, "restart failed: %s", err) < 0) {
                                        r = -ENOMEM;
                                        goto fail;
                                }
                                free(a->reason);
                                a->reason = why;
                        }
                } else if (a->verdict == HEALTH_NOTIFY) {
                        r = orch_notify(o, a->name, a->reason);
                        if (r < 0) {
                                set_error_message(ret_error, r, "cannot save '%s': %s",
                                                  ORCH_NOTIFICATIONS_FILE, strerror(-r));
                                goto fail;
                        }
                        r = tracker_set_notified(&o->tracker, a->name);
                        if (r < 0)
                                goto fail;
                        changed = true;
                }
        }
        if (changed) {
                r = save_state(o, ret_error);
                if (r < 0)
                        goto fail;
        }
        if (apply) {
                r = orch_snapshot(o, ret_error);
                if (r < 0)
                        goto fail;
        }
        *ret = plan;
        return 0;
fail:
        health_plan_done(&plan);
        return r;
}

int orch_recover(struct orch *o, bool force, bool *ret_crashed, struct recovery_plan *ret,
                 char **ret_error)
{
        _cleanup_free_ char *aside = NULL;
        struct recovery_plan plan = {};
        struct snapshot s = {};
        pid_t holder = 0;
        int crashed, r;

        crashed = recovery_pidfile_check_at(o->state_fd, ORCH_PID_FILE, &holder);
        if (crashed == -EBUSY)
                return set_error_message(ret_error, crashed,
                                         "a manager is running already (pid %d)", (int)holder);
        if (crashed < 0)
                return set_error_message(ret_error, crashed, "cannot read '%s': %s", ORCH_PID_FILE,
                                         strerror(-crashed));

        if (crashed || force) {
                r = snapshot_load_at(o->state_fd, ORCH_SNAPSHOT_FILE, clock_now(o->clock), &s,
                                     &aside);
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot load '%s': %s",
                                                 ORCH_SNAPSHOT_FILE, strerror(-r));
                if (aside && add_warning(o, ORCH_SNAPSHOT_FILE, aside) < 0) {
                        snapshot_done(&s);
                        return -ENOMEM;
                }
                r = recovery_plan(&s, &o->user_stopped, &plan);
                snapshot_done(&s);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < plan.n; i++) {
                        struct recovery_step *st = &plan.steps[i];
                        struct container c = {};

                        if (st->skip)
                                continue;
                        r = runtime_inspect(o, st->name, &c);
                        if (r >= 0 && c.state == CONTAINER_RUNNING) {
                                st->skip = true;
                                st->reason = "running already";
                        } else if (r == -ENOENT) {
                                st->skip = true;
                                st->reason = "no longer exists";
                        } else {
                                st->error = runtime_start(o, st->name, NULL);
                                if (st->error >= 0)
                                        (void)tracker_record_start(&o->tracker, st->name,
                                                                   clock_now(o->clock));
                        }
                        container_done(&c);
                }
        }

        r = recovery_pidfile_write_at(o->state_fd, ORCH_PID_FILE, getpid());
        if (r < 0) {
                recovery_plan_done(&plan);
                return set_error_message(ret_error, r, "cannot write '%s': %s", ORCH_PID_FILE,
                                         strerror(-r));
        }
        r = save_state(o, ret_error);
        if (r < 0) {
                recovery_plan_done(&plan);
                return r;
        }
        if (ret_crashed)
                *ret_crashed = crashed > 0;
        *ret = plan;
        return 0;
}

int orch_shutdown(struct orch *o)
{
        return recovery_pidfile_remove_at(o->state_fd, ORCH_PID_FILE);
}
