/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "macro.h"
#include "statefile.h"
#include "tracker.h"

void tracker_done(struct tracker *t)
{
        if (!t)
                return;
        for (size_t i = 0; i < t->n; i++)
                free(t->entries[i].name);
        free(t->entries);
        *t = (struct tracker){};
}

const struct tracker_entry *tracker_find(const struct tracker *t, const char *name)
{
        for (size_t i = 0; i < t->n; i++)
                if (streq(t->entries[i].name, name))
                        return &t->entries[i];
        return NULL;
}

static struct tracker_entry *tracker_ensure(struct tracker *t, const char *name)
{
        struct tracker_entry *e = (struct tracker_entry *)tracker_find(t, name);

        if (e)
                return e;
        e = realloc(t->entries, (t->n + 1) * sizeof(*e));
        if (!e)
                return NULL;
        t->entries = e;
        e = &t->entries[t->n];
        *e = (struct tracker_entry){.name = strdup(name)};
        if (!e->name)
                return NULL;
        t->n++;
        return e;
}

int tracker_record_restart(struct tracker *t, const char *name, usec_t now)
{
        struct tracker_entry *e = tracker_ensure(t, name);

        if (!e)
                return -ENOMEM;
        if (e->attempts == 0)
                e->first_failure = now;
        e->attempts++;
        e->last_restart = now;
        e->last_start = now;
        return 0;
}

int tracker_record_start(struct tracker *t, const char *name, usec_t now)
{
        struct tracker_entry *e = tracker_ensure(t, name);

        if (!e)
                return -ENOMEM;
        e->attempts = 0;
        e->first_failure = 0;
        e->notified = false;
        e->last_start = now;
        return 0;
}

unsigned tracker_effective_attempts(const struct tracker_entry *e, usec_t now, usec_t stable_usec)
{
        if (!e || e->attempts == 0)
                return 0;
        if (e->last_restart > 0 && now - e->last_restart >= stable_usec)
                return 0;
        return e->attempts;
}

bool tracker_note_running(struct tracker *t, const char *name, usec_t started_at, usec_t now,
                          usec_t stable_usec)
{
        struct tracker_entry *e = (struct tracker_entry *)tracker_find(t, name);
        usec_t since;

        if (!e || (e->attempts == 0 && !e->notified))
                return false;
        since = MAX(e->last_restart, started_at);
        if (since <= 0 || now - since < stable_usec)
                return false;
        e->attempts = 0;
        e->first_failure = 0;
        e->notified = false;
        return true;
}

int tracker_set_notified(struct tracker *t, const char *name)
{
        struct tracker_entry *e = tracker_ensure(t, name);

        if (!e)
                return -ENOMEM;
        e->notified = true;
        return 0;
}

void tracker_forget(struct tracker *t, const char *name)
{
        for (size_t i = 0; i < t->n; i++)
                if (streq(t->entries[i].name, name)) {
                        free(t->entries[i].name);
                        t->entries[i] = t->entries[--t->n];
                        return;
                }
}

static json_t *tracker_to_json(const struct tracker *t)
{
        json_t *containers = json_object();

        if (!containers)
                return NULL;
        for (size_t i = 0; i < t->n; i++) {
                const struct tracker_entry *e = &t->entries[i];
                json_t *o = json_pack(
                    "{s:i,s:I,s:I,s:I,s:b}", "attempts", (int)e->attempts, "first_failure_usec",
                    (json_int_t)e->first_failure, "last_restart_usec", (json_int_t)e->last_restart,
                    "last_start_usec", (json_int_t)e->last_start, "notified", e->notified);
                if (!o || json_object_set_new(containers, e->name, o) < 0) {
                        json_decref(containers);
                        return NULL;
                }
        }
        return json_pack("{s:i,s:o}", "version", 1, "containers", containers);
}

static int get_usec(const json_t *o, const char *key, usec_t *ret)
{
        json_t *v = json_object_get(o, key);

        if (!v) {
                *ret = 0;
                return 0;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EBADMSG;
        *ret = json_integer_value(v);
        return 0;
}

/* statefile_load_typed_at's from_json: ret is a struct tracker. */
static int tracker_from_json(const json_t *j, void *ret)
{
        struct tracker t = {};
        json_t *containers = json_object_get(j, "containers"), *o;
        const char *name;

        if (!json_is_object(j) || !json_is_object(containers))
                return -EBADMSG;
        json_object_foreach(containers, name, o)
        {
                json_t *a = json_object_get(o, "attempts"), *n = json_object_get(o, "notified");
                struct tracker_entry *e;

                if (!json_is_object(o) || !json_is_integer(a) || json_integer_value(a) < 0 ||
                    json_integer_value(a) > 1000000 || (n && !json_is_boolean(n)))
                        goto bad;
                e = tracker_ensure(&t, name);
                if (!e) {
                        tracker_done(&t);
                        return -ENOMEM;
                }
                e->attempts = (unsigned)json_integer_value(a);
                e->notified = json_is_true(n);
                if (get_usec(o, "first_failure_usec", &e->first_failure) < 0 ||
                    get_usec(o, "last_restart_usec", &e->last_restart) < 0 ||
                    get_usec(o, "last_start_usec", &e->last_start) < 0)
                        goto bad;
        }
        *(struct tracker *)ret = t;
        return 0;
bad:
        tracker_done(&t);
        return -EBADMSG;
}

int tracker_save_at(int dirfd, const char *path, const struct tracker *t)
{
        json_t *j = tracker_to_json(t);
        int r;

        if (!j)
                return -ENOMEM;
        r = statefile_save_at(dirfd, path, j);
        json_decref(j);
        return r;
}

static int tracker_save_clean(int dirfd, const char *path, usec_t now, void *obj)
{
        (void)now;
        return tracker_save_at(dirfd, path, obj);
}

int tracker_load_at(int dirfd, const char *path, usec_t now, struct tracker *ret, char **ret_aside)
{
        struct tracker t = {};
        int r;

        r = statefile_load_typed_at(dirfd, path, now, tracker_from_json, tracker_save_clean, &t,
                                    ret_aside);
        if (r < 0)
                return r;
        *ret = t;
        return 0;
}
