/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "macro.h"
#include "policy.h"
#include "recovery.h"
#include "statefile.h"

void snapshot_done(struct snapshot *s)
{
        if (!s)
                return;
        for (size_t i = 0; i < s->n; i++)
                free(s->entries[i].name);
        free(s->entries);
        *s = (struct snapshot){};
}

static int snapshot_add(struct snapshot *s, const char *name, int tier)
{
        struct snapshot_entry *e = realloc(s->entries, (s->n + 1) * sizeof(*e));

        if (!e)
                return -ENOMEM;
        s->entries = e;
        e[s->n].name = strdup(name);
        if (!e[s->n].name)
                return -ENOMEM;
        e[s->n].tier = tier;
        s->n++;
        return 0;
}

int snapshot_from_containers(const struct container_list *l, usec_t now, struct snapshot *ret)
{
        struct snapshot s = {.taken_at = now};

        for (size_t i = 0; i < l->n; i++) {
                const struct container *c = &l->items[i];
                if (!c->managed || c->state != CONTAINER_RUNNING)
                        continue;
                if (snapshot_add(&s, c->name, c->tier >= 0 ? c->tier : TIER_APP) < 0) {
                        snapshot_done(&s);
                        return -ENOMEM;
                }
        }
        *ret = s;
        return 0;
}

int snapshot_save_at(int dirfd, const char *path, const struct snapshot *s)
{
        json_t *running = json_array(), *j;
        int r;

        if (!running)
                return -ENOMEM;
        for (size_t i = 0; i < s->n; i++)
                json_array_append_new(running,
                                      json_pack("{s:s,s:s}", "name", s->entries[i].name, "tier",
                                                tier_to_string(s->entries[i].tier)));
        j = json_pack("{s:i,s:I,s:o}", "version", 1, "taken_usec", (json_int_t)s->taken_at,
                      "running", running);
        if (!j)
                return -ENOMEM;
        r = statefile_save_at(dirfd, path, j);
        json_decref(j);
        return r;
}

/* statefile_load_typed_at's from_json: ret is a struct snapshot. */
static int snapshot_from_json(const json_t *j, void *ret)
{
        struct snapshot s = {};
        json_t *running = json_object_get(j, "running"), *o, *t;
        size_t i;

        if (!json_is_array(running))
                return -EBADMSG;
        t = json_object_get(j, "taken_usec");
        if (t && !json_is_integer(t))
                return -EBADMSG;
        s.taken_at = t ? json_integer_value(t) : 0;
        json_array_foreach(running, i, o)
        {
                const char *name = json_string_value(json_object_get(o, "name"));
                int tier = tier_from_string(json_string_value(json_object_get(o, "tier")));

                if (!name || !*name || tier < 0) {
                        snapshot_done(&s);
                        return -EBADMSG;
                }
                if (snapshot_add(&s, name, tier) < 0) {
                        snapshot_done(&s);
                        return -ENOMEM;
                }
        }
        *(struct snapshot *)ret = s;
        return 0;
}

/* A clean snapshot is empty, taken now. */
static int snapshot_save_clean(int dirfd, const char *path, usec_t now, void *obj)
{
        struct snapshot *s = obj;

        s->taken_at = now;
        return snapshot_save_at(dirfd, path, s);
}

int snapshot_load_at(int dirfd, const char *path, usec_t now, struct snapshot *ret,
                     char **ret_aside)
{
        struct snapshot s = {};
        int r;

        r = statefile_load_typed_at(dirfd, path, now, snapshot_from_json, snapshot_save_clean, &s,
                                    ret_aside);
        if (r < 0)
                return r;
        *ret = s;
        return 0;
}

void recovery_plan_done(struct recovery_plan *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n; i++)
                free(p->steps[i].name);
        free(p->steps);
        *p = (struct recovery_plan){};
}

int recovery_plan(const struct snapshot *s, const struct nameset *user_stopped,
                  struct recovery_plan *ret)
{
        struct recovery_plan p = {};

        p.steps = calloc(s->n + 1, sizeof(struct recovery_step));
        if (!p.steps)
                return -ENOMEM;
        /* tiers are few: one pass per tier keeps the snapshot's order */
        for (int tier = 0; tier <= _TIER_MAX; tier++)
                for (size_t i = 0; i < s->n; i++) {
                        const struct snapshot_entry *e = &s->entries[i];
                        int t = e->tier >= 0 && e->tier < _TIER_MAX ? e->tier : _TIER_MAX;
                        struct recovery_step *st = &p.steps[p.n];

                        if (t != tier)
                                continue;
                        st->name = strdup(e->name);
                        if (!st->name) {
                                recovery_plan_done(&p);
                                return -ENOMEM;
                        }
                        st->tier = e->tier;
                        st->skip = nameset_contains(user_stopped, e->name);
                        st->reason =
                            st->skip ? "stopped by the user" : "was running before the crash";
                        p.n++;
                }
        *ret = p;
        return 0;
}

/* Field 22 of /proc/PID/stat: the start time in clock ticks since boot. */
static int pid_starttime(pid_t pid, uint64_t *ret)
{
        char path[64], buf[1024], *p;
        _cleanup_close_ int fd = -1;
        unsigned long long st;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return n < 0 ? negative_errno() : -EIO;
        buf[n] = '\0';
        /* the command name may hold spaces and ')': skip to the last ')' */
        p = strrchr(buf, ')');
        if (!p)
                return -EIO;
        /* after ") " come fields 3..; starttime is field 22 */
        if (sscanf(p + 2,
                   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
                   "%*d %llu",
                   &st) != 1)
                return -EIO;
        *ret = st;
        return 0;
}

int recovery_pidfile_check_at(int dirfd, const char *path, pid_t *ret_pid)
{
        _cleanup_free_ char *data = NULL;
        unsigned long long start;
        uint64_t now_start;
        int pid, r;

        r = read_file_at(dirfd, path, 4096, &data, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (sscanf(data, "%d %llu", &pid, &start) != 2 || pid <= 0)
                return 1;
        r = pid_starttime(pid, &now_start);
        if (r < 0 || now_start != start)
                return 1; /* gone, or the PID now belongs to someone else */
        if (pid == getpid())
                return 0; /* our own, written earlier in this run */
        if (ret_pid)
                *ret_pid = pid;
        return -EBUSY;
}

int recovery_pidfile_write_at(int dirfd, const char *path, pid_t pid)
{
        uint64_t start;
        char buf[64];
        int r, n;

        r = pid_starttime(pid, &start);
        if (r < 0)
                return r;
        n = snprintf(buf, sizeof(buf), "%d %" PRIu64 "\n", (int)pid, start);
        return write_file_atomic_at(dirfd, path, buf, (size_t)n, 0644);
}

int recovery_pidfile_remove_at(int dirfd, const char *path)
{
        if (unlinkat(dirfd, path, 0) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}
