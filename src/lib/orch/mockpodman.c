/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "log.h"
#include "macro.h"
#include "mockpodman.h"

/* podman's status for its own errors (bad flags, no such object, ...) */
#define ST_ERROR 125

static int mock_run(struct executor *e, const struct exec_request *req, struct exec_result *ret);

static void mock_container_done(struct mock_container *c)
{
        free(c->name);
        free(c->id);
        free(c->image);
        json_decref(c->labels);
        strv_free(c->command);
        free(c->logs);
        *c = (struct mock_container){};
}

int mock_podman_init(struct mock_podman *m, struct clock_source *clock)
{
        *m = (struct mock_podman){
            .executor = {.run = mock_run},
            .clock = clock,
            .exit_code = 1,
        };
        return 0;
}

void mock_podman_done(struct mock_podman *m)
{
        for (size_t i = 0; i < m->n_images; i++)
                free(m->images[i]);
        free(m->images);
        for (size_t i = 0; i < m->n_containers; i++)
                mock_container_done(&m->containers[i]);
        free(m->containers);
        for (size_t i = 0; i < m->n_calls; i++)
                free(m->calls[i]);
        free(m->calls);
        *m = (struct mock_podman){};
}

bool mock_podman_has_image(const struct mock_podman *m, const char *image)
{
        for (size_t i = 0; i < m->n_images; i++)
                if (streq(m->images[i], image))
                        return true;
        return false;
}

int mock_podman_add_image(struct mock_podman *m, const char *image)
{
        char **l;

        if (mock_podman_has_image(m, image))
                return 0;
        l = realloc(m->images, (m->n_images + 1) * sizeof(char *));
        if (!l)
                return -ENOMEM;
        m->images = l;
        l[m->n_images] = strdup(image);
        if (!l[m->n_images])
                return -ENOMEM;
        m->n_images++;
        return 0;
}

struct mock_container *mock_podman_find(struct mock_podman *m, const char *name)
{
        for (size_t i = 0; i < m->n_containers; i++)
                if (streq(m->containers[i].name, name) || streq(m->containers[i].id, name))
                        return &m->containers[i];
        return NULL;
}

static int append_log(struct mock_container *c, const char *text)
{
        char *n;

        if (asprintf(&n, "%s%s", c->logs ?: "", text) < 0)
                return -ENOMEM;
        free(c->logs);
        c->logs = n;
        return 0;
}

int mock_podman_crash(struct mock_podman *m, const char *name, int exit_code)
{
        struct mock_container *c = mock_podman_find(m, name);

        if (!c)
                return -ENOENT;
        if (c->state != CONTAINER_RUNNING)
                return -ESRCH;
        c->state = CONTAINER_EXITED;
        c->exit_code = exit_code;
        c->finished_at = clock_now(m->clock);
        c->exits_at = 0;
        return append_log(c, "mock: the process crashed\n");
}

size_t mock_podman_count_calls(const struct mock_podman *m, const char *prefix)
{
        size_t n = 0;

        for (size_t i = 0; i < m->n_calls; i++)
                n += startswith(m->calls[i], prefix) != NULL;
        return n;
}

struct reply {
        int status;
        char *out;
        char *err;
};

static int _printf_(3, 4) reply_set(struct reply *r, int status, const char *fmt, ...)
{
        va_list ap;
        char *s;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        if (!s)
                return -ENOMEM;
        r->status = status;
        if (status == 0) {
                free(r->out);
                r->out = s;
        } else {
                free(r->err);
                r->err = s;
        }
        return 0;
}

static int no_such_container(struct reply *r, const char *name)
{
        return reply_set(r, ST_ERROR,
                         "Error: no container with name or ID \"%s\" found: no such container\n",
                         name);
}

static int cmd_pull(struct mock_podman *m, char **a, struct reply *r)
{
        const char *image = NULL;

        for (; *a; a++)
                if (!startswith(*a, "-"))
                        image = *a;
        if (!image)
                return reply_set(r, ST_ERROR,
                                 "Error: requires at least 1 arg(s), only received 0\n");
        m->n_pulls++;
        if (m->pull_delay_ms > 0)
                clock_sleep(m->clock, m->pull_delay_ms * USEC_PER_MSEC);
        if (m->fail_pull != 0) {
                if (m->fail_pull > 0)
                        m->fail_pull--;
                return reply_set(r, ST_ERROR,
                                 "Error: initializing source docker://%s: pinging container "
                                 "registry: connection refused\n",
                                 image);
        }
        if (!m->image_missing_after_pull && mock_podman_add_image(m, image) < 0)
                return -ENOMEM;
        return reply_set(r, 0, "%064x\n", (unsigned)m->n_pulls);
}

static int cmd_image(struct mock_podman *m, char **a, struct reply *r)
{
        if (!a[0] || !streq(a[0], "exists") || !a[1])
                return reply_set(r, ST_ERROR, "Error: unsupported image command\n");
        r->status = mock_podman_has_image(m, a[1]) ? 0 : 1;
        return 0;
}

static int cmd_create(struct mock_podman *m, char **a, struct reply *r)
{
        struct mock_container c = {.stop_timeout = -1, .last_stop_t = -1};
        struct mock_container *l;
        const char *name = NULL;

        c.labels = json_object();
        if (!c.labels)
                return -ENOMEM;
        for (; *a && startswith(*a, "-"); a++) {
                const char *opt = *a, *val = a[1];
                if (!val) {
                        mock_container_done(&c);
                        return reply_set(r, ST_ERROR, "Error: flag needs an argument: %s\n", opt);
                }
                a++;
                if (streq(opt, "--name"))
                        name = val;
                else if (streq(opt, "--label")) {
                        const char *eq = strchr(val, '=');
                        _cleanup_free_ char *k =
                            strndup(val, eq ? (size_t)(eq - val) : strlen(val));
                        if (!k) {
                                mock_container_done(&c);
                                return -ENOMEM;
                        }
                        json_object_set_new(c.labels, k, json_string(eq ? eq + 1 : ""));
                } else if (streq(opt, "--stop-timeout"))
                        c.stop_timeout = strtoll(val, NULL, 10);
                else if (streq(opt, "--network") || streq(opt, "--env") || streq(opt, "--volume") ||
                         streq(opt, "--publish"))
                        ;
                else {
                        mock_container_done(&c);
                        return reply_set(r, ST_ERROR, "Error: unknown flag: %s\n", opt);
                }
        }
        if (!*a) {
                mock_container_done(&c);
                return reply_set(r, ST_ERROR, "Error: requires at least 1 arg(s)\n");
        }
        if (!mock_podman_has_image(m, *a)) {
                mock_container_done(&c);
                return reply_set(r, ST_ERROR, "Error: %s: image not known\n", *a);
        }
        if (name && mock_podman_find(m, name)) {
                mock_container_done(&c);
                return reply_set(r, ST_ERROR,
                                 "Error: creating container storage: the container name \"%s\" is "
                                 "already in use\n",
                                 name);
        }
        if (asprintf(&c.id, "%064x", ++m->next_id) < 0) {
                c.id = NULL;
                mock_container_done(&c);
                return -ENOMEM;
        }
        if (name)
                c.name = strdup(name);
        else if (asprintf(&c.name, "mock_%u", m->next_id) < 0)
                c.name = NULL;
        c.image = strdup(*a);
        {
                size_t n = 0;
                char **cmd = a + 1;
                while (cmd[n])
                        n++;
                c.command = calloc(n + 1, sizeof(char *));
                for (size_t i = 0; c.command && i < n; i++)
                        c.command[i] = strdup(cmd[i]);
        }
        if (!c.name || !c.image || !c.command) {
                mock_container_done(&c);
                return -ENOMEM;
        }
        c.state = CONTAINER_CREATED;
        c.created_at = clock_now(m->clock);
        l = realloc(m->containers, (m->n_containers + 1) * sizeof(*l));
        if (!l) {
                mock_container_done(&c);
                return -ENOMEM;
        }
        m->containers = l;
        l[m->n_containers++] = c;
        return reply_set(r, 0, "%s\n", c.id);
}

static int cmd_start(struct mock_podman *m, char **a, struct reply *r)
{
        struct mock_container *c;

        if (!a[0])
                return reply_set(r, ST_ERROR, "Error: start requires at least one argument\n");
        c = mock_podman_find(m, a[0]);
        if (!c)
                return no_such_container(r, a[0]);
        if (c->state == CONTAINER_RUNNING)
                return reply_set(r, 0, "%s\n", c->name);
        if (m->fail_start)
                return reply_set(r, ST_ERROR,
                                 "Error: unable to start container %s: crun: executable file "
                                 "not found in $PATH: OCI runtime attempted to invoke a command "
                                 "that was not found\n",
                                 c->id);
        c->starts++;
        c->started_at = clock_now(m->clock);
        c->exit_code = 0;
        if (append_log(c, "mock: started\n") < 0)
                return -ENOMEM;
        if (m->exit_immediately) {
                c->state = CONTAINER_EXITED;
                c->exit_code = m->exit_code;
                c->finished_at = c->started_at;
                if (append_log(c, m->exit_logs ?: "fatal: cannot open the database\n") < 0)
                        return -ENOMEM;
        } else {
                c->state = CONTAINER_RUNNING;
                c->exits_at =
                    m->exit_after_ms > 0 ? c->started_at + m->exit_after_ms * USEC_PER_MSEC : 0;
        }
        return reply_set(r, 0, "%s\n", c->name);
}

static int cmd_stop(struct mock_podman *m, char **a, struct reply *r)
{
        struct mock_container *c;
        int64_t t = 10; /* podman's default */

        for (; *a && startswith(*a, "-"); a++) {
                if ((streq(*a, "-t") || streq(*a, "--time")) && a[1])
                        t = strtoll(*++a, NULL, 10);
                else
                        return reply_set(r, ST_ERROR, "Error: unknown flag: %s\n", *a);
        }
        if (!a[0])
                return reply_set(r, ST_ERROR, "Error: stop requires a container\n");
        c = mock_podman_find(m, a[0]);
        if (!c)
                return no_such_container(r, a[0]);
        c->last_stop_t = t;
        if (c->state == CONTAINER_RUNNING) {
                c->state = CONTAINER_STOPPED;
                c->exit_code = 143;
                c->finished_at = clock_now(m->clock);
        }
        return reply_set(r, 0, "%s\n", c->name);
}

static int cmd_rm(struct mock_podman *m, char **a, struct reply *r)
{
        bool force = false;
        struct mock_container *c;

        for (; *a && startswith(*a, "-"); a++) {
                if (streq(*a, "-f") || streq(*a, "--force"))
                        force = true;
                else
                        return reply_set(r, ST_ERROR, "Error: unknown flag: %s\n", *a);
        }
        if (!a[0])
                return reply_set(r, ST_ERROR, "Error: rm requires a container\n");
        c = mock_podman_find(m, a[0]);
        if (!c) {
                if (force) /* podman rm -f of a missing container succeeds */
                        return reply_set(r, 0, "%s", "");
                return reply_set(r, 1,
                                 "Error: no container with ID or name \"%s\" found: no "
                                 "such container\n",
                                 a[0]);
        }
        if (c->state == CONTAINER_RUNNING && !force)
                return reply_set(r, 2, "Error: cannot remove container %s as it is running\n",
                                 c->id);
        mock_container_done(c);
        *c = m->containers[--m->n_containers];
        return reply_set(r, 0, "%s\n", a[0]);
}

static void iso_time(usec_t u, char *buf, size_t size)
{
        time_t t = (time_t)(u / USEC_PER_SEC);
        struct tm tm;

        if (u <= 0) {
                snprintf(buf, size, "0001-01-01T00:00:00Z");
                return;
        }
        gmtime_r(&t, &tm);
        strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + strlen(buf), size - strlen(buf), ".%06dZ", (int)(u % USEC_PER_SEC));
}

static int64_t unix_time(usec_t u)
{
        return u > 0 ? u / USEC_PER_SEC : -62135596800LL;
}

static int reply_json(struct reply *r, json_t *j, int status)
{
        char *s;

        if (!j)
                return -ENOMEM;
        s = json_dumps(j, JSON_INDENT(4));
        json_decref(j);
        if (!s)
                return -ENOMEM;
        free(r->out);
        r->out = s;
        r->status = status;
        return 0;
}

static const char *podman_state_name(enum container_state s)
{
        /* what podman prints; a stopped container reads "exited" once cleaned up */
        return s == CONTAINER_STOPPED ? "exited" : container_state_to_string(s);
}

static int cmd_inspect(struct mock_podman *m, char **a, struct reply *r)
{
        struct mock_container *c;
        char created[64], started[64], finished[64];
        json_t *j;

        for (; *a && startswith(*a, "-"); a++)
                if (streq(*a, "--type") && a[1])
                        a++;
        if (!a[0])
                return reply_set(r, ST_ERROR, "Error: inspect requires a name\n");
        c = mock_podman_find(m, a[0]);
        if (!c) {
                r->out = strdup("[]\n");
                if (!r->out)
                        return -ENOMEM;
                r->err = NULL;
                return reply_set(r, ST_ERROR, "Error: inspecting object: no such container %s\n",
                                 a[0]);
        }
        iso_time(c->created_at, created, sizeof(created));
        iso_time(c->started_at, started, sizeof(started));
        iso_time(c->finished_at, finished, sizeof(finished));
        j = json_pack("[{s:s,s:s,s:s,s:{s:s,s:b,s:i,s:s,s:s},s:s,s:s,s:{s:s,s:O,s:I}}]", "Id",
                      c->id, "Created", created, "Name", c->name, "State", "Status",
                      podman_state_name(c->state), "Running", c->state == CONTAINER_RUNNING,
                      "ExitCode", c->exit_code, "StartedAt", started, "FinishedAt", finished,
                      "Image", "0123456789abcdef", "ImageName", c->image, "Config", "Image",
                      c->image, "Labels", c->labels, "StopTimeout",
                      (json_int_t)(c->stop_timeout >= 0 ? c->stop_timeout : 10));
        return reply_json(r, j, 0);
}

static int cmd_ps(struct mock_podman *m, char **a, struct reply *r)
{
        bool all = false, json = false;
        json_t *arr = json_array();

        if (!arr)
                return -ENOMEM;
        for (; *a; a++) {
                if (streq(*a, "-a") || streq(*a, "--all"))
                        all = true;
                else if (streq(*a, "--format") && a[1] && streq(a[1], "json")) {
                        json = true;
                        a++;
                } else {
                        json_decref(arr);
                        return reply_set(r, ST_ERROR, "Error: unknown flag: %s\n", *a);
                }
        }
        if (!json) {
                json_decref(arr);
                return reply_set(r, ST_ERROR, "Error: the mock only speaks --format json\n");
        }
        for (size_t i = 0; i < m->n_containers; i++) {
                struct mock_container *c = &m->containers[i];
                if (!all && c->state != CONTAINER_RUNNING)
                        continue;
                json_array_append_new(
                    arr, json_pack("{s:s,s:[s],s:s,s:s,s:i,s:b,s:I,s:I,s:I,s:O}", "Id", c->id,
                                   "Names", c->name, "Image", c->image, "State",
                                   podman_state_name(c->state), "ExitCode", c->exit_code, "Exited",
                                   c->state == CONTAINER_EXITED || c->state == CONTAINER_STOPPED,
                                   "Created", (json_int_t)unix_time(c->created_at), "StartedAt",
                                   (json_int_t)unix_time(c->started_at), "ExitedAt",
                                   (json_int_t)unix_time(c->finished_at), "Labels", c->labels));
        }
        return reply_json(r, arr, 0);
}

static int cmd_logs(struct mock_podman *m, char **a, struct reply *r)
{
        struct mock_container *c;
        long tail = -1;
        const char *logs, *p;

        for (; *a && startswith(*a, "-"); a++) {
                if (streq(*a, "--tail") && a[1])
                        tail = strtol(*++a, NULL, 10);
                else
                        return reply_set(r, ST_ERROR, "Error: unknown flag: %s\n", *a);
        }
        if (!a[0])
                return reply_set(r, ST_ERROR, "Error: logs requires a container\n");
        c = mock_podman_find(m, a[0]);
        if (!c)
                return no_such_container(r, a[0]);
        logs = c->logs ?: "";
        p = logs + strlen(logs);
        if (tail >= 0) {
                /* back up over `tail` lines */
                long n = 0;
                if (p > logs && p[-1] == '\n')
                        p--;
                while (p > logs) {
                        if (p[-1] == '\n' && ++n == tail)
                                break;
                        p--;
                }
                if (tail == 0)
                        p = logs + strlen(logs);
        } else
                p = logs;
        return reply_set(r, 0, "%s", p);
}

static const char *const global_options_with_value[] = {
    "--root",
    "--runroot",
    "--runtime",
    "--cgroup-manager",
    "--events-backend",
    "--storage-driver",
    "--storage-opt",
    "--tmpdir",
    "--log-level",
    "--conmon",
    NULL,
};

static int mock_run(struct executor *e, const struct exec_request *req, struct exec_result *ret)
{
        struct mock_podman *m = (struct mock_podman *)e;
        struct reply r = {};
        char **a = (char **)req->argv + 1, **calls;
        const char *cmd;
        int k;

        if (!req->argv || !req->argv[0])
                return -EINVAL;

        /* global options */
        while (*a && startswith(*a, "--")) {
                bool known = false;
                for (const char *const *o = global_options_with_value; *o; o++)
                        known = known || streq(*o, *a) ||
                                (startswith(*a, *o) && (*a)[strlen(*o)] == '=');
                if (!known) {
                        k = reply_set(&r, ST_ERROR, "Error: unknown flag: %s\n", *a);
                        goto done;
                }
                if (!strchr(*a, '=') && !a[1]) {
                        k = reply_set(&r, ST_ERROR, "Error: flag needs an argument: %s\n", *a);
                        goto done;
                }
                a += strchr(*a, '=') ? 1 : 2;
        }

        /* containers that exit on their own (exit_after_ms) do so lazily */
        for (size_t i = 0; i < m->n_containers; i++) {
                struct mock_container *c = &m->containers[i];
                if (c->state == CONTAINER_RUNNING && c->exits_at > 0 &&
                    clock_now(m->clock) >= c->exits_at) {
                        c->state = CONTAINER_EXITED;
                        c->exit_code = m->exit_code;
                        c->finished_at = c->exits_at;
                        c->exits_at = 0;
                        if (append_log(c, m->exit_logs ?: "fatal: lost the database\n") < 0)
                                return -ENOMEM;
                }
        }

        calls = realloc(m->calls, (m->n_calls + 1) * sizeof(char *));
        if (!calls)
                return -ENOMEM;
        m->calls = calls;
        m->calls[m->n_calls] = exec_argv_to_string((const char *const *)a);
        if (!m->calls[m->n_calls])
                return -ENOMEM;
        m->n_calls++;

        cmd = *a;
        if (!cmd)
                k = reply_set(&r, ST_ERROR, "Error: missing command\n");
        else if (streq(cmd, "pull"))
                k = cmd_pull(m, a + 1, &r);
        else if (streq(cmd, "image"))
                k = cmd_image(m, a + 1, &r);
        else if (streq(cmd, "create"))
                k = cmd_create(m, a + 1, &r);
        else if (streq(cmd, "start"))
                k = cmd_start(m, a + 1, &r);
        else if (streq(cmd, "stop"))
                k = cmd_stop(m, a + 1, &r);
        else if (streq(cmd, "rm"))
                k = cmd_rm(m, a + 1, &r);
        else if (streq(cmd, "inspect"))
                k = cmd_inspect(m, a + 1, &r);
        else if (streq(cmd, "ps"))
                k = cmd_ps(m, a + 1, &r);
        else if (streq(cmd, "logs"))
                k = cmd_logs(m, a + 1, &r);
        else
                k = reply_set(&r, ST_ERROR, "Error: unrecognized command `podman %s`\n", cmd);

done:
        if (k >= 0 && !r.out)
                r.out = strdup("");
        if (k >= 0 && !r.err)
                r.err = strdup("");
        if (k < 0 || !r.out || !r.err) {
                free(r.out);
                free(r.err);
                return k < 0 ? k : -ENOMEM;
        }
        *ret = (struct exec_result){
            .status = r.status,
            .out = r.out,
            .out_len = strlen(r.out),
            .err = r.err,
            .err_len = strlen(r.err),
        };
        return 0;
}
