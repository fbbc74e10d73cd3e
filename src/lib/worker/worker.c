/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "fs.h"
#include "json.h"
#include "log.h"
#include "macro.h"
#include "mountplan.h"
#include "sandbox.h"
#include "slot.h"
#include "strv.h"
#include "worker.h"

/* A ports builder's worker slot: the system read-only, a private /etc, the
 * scratch dirs on tmpfs, fresh kernel filesystems, the caches shared by
 * every slot read-write and the source tree read-only. */
const char worker_default_plan[] =
    "{\n"
    "  \"comment\": \"strata's default worker plan\",\n"
    "  \"hostname\": \"strata-worker-${SLOT}\",\n"
    "  \"network\": \"none\",\n"
    "  \"host-dirs\": [\"${WORKER_ROOT}/packages\", \"${WORKER_ROOT}/distfiles\",\n"
    "                \"${WORKER_ROOT}/options\", \"${WORKER_ROOT}/xports\"],\n"
    "  \"mounts\": [\n"
    "    {\"type\": \"tmpfs\", \"dest\": \"/\", \"options\": \"mode=0755,size=64m\"},\n"
    "    {\"type\": \"bind\", \"src\": \"/bin\", \"dest\": \"/bin\", \"flags\": [\"ro\", "
    "\"nodev\", \"create-dest\"]},\n"
    "    {\"type\": \"bind\", \"src\": \"/sbin\", \"dest\": \"/sbin\", \"flags\": [\"ro\", "
    "\"nodev\", \"create-dest\"]},\n"
    "    {\"type\": \"bind\", \"src\": \"/lib\", \"dest\": \"/lib\", \"flags\": [\"ro\", "
    "\"nodev\", \"create-dest\"]},\n"
    "    {\"type\": \"bind\", \"src\": \"/lib64\", \"dest\": \"/lib64\", \"flags\": [\"ro\", "
    "\"nodev\", \"create-dest\", \"optional\"]},\n"
    "    {\"type\": \"bind\", \"src\": \"/usr/bin\", \"dest\": \"/usr/bin\", \"flags\": [\"ro\", "
    "\"nodev\", \"create-dest\"]},\n"
    "    {\"type\": \"bind\", \"src\": \"/usr/sbin\", \"dest\": \"/usr/sbin\", \"flags\": "
    "[\"ro\", \"nodev\", \"create-dest\"]},\n"
    "    {\"type\": \"bind\", \"src\": \"/usr/lib\", \"dest\": \"/usr/lib\", \"flags\": [\"ro\", "
    "\"nodev\", \"create-dest\"]},\n"
    "    {\"type\": \"bind\", \"src\": \"/usr/libexec\", \"dest\": \"/usr/libexec\", "
    "\"flags\": [\"ro\", \"nodev\", \"create-dest\", \"optional\"]},\n"
    "    {\"type\": \"bind\", \"src\": \"/usr/include\", \"dest\": \"/usr/include\", "
    "\"flags\": [\"ro\", \"nodev\", \"create-dest\", \"optional\"]},\n"
    "    {\"type\": \"bind\", \"src\": \"/usr/share\", \"dest\": \"/usr/share\", \"flags\": "
    "[\"ro\", \"nodev\", \"create-dest\"]},\n"
    "    {\"type\": \"tmpfs\", \"dest\": \"/run\", \"options\": \"mode=0755,size=16m\", "
    "\"flags\": [\"nosuid\", \"nodev\", \"create-dest\"]},\n"
    "    {\"type\": \"mkdir\", \"dest\": \"/run/strata/etc/upper\", \"mode\": 493},\n"
    "    {\"type\": \"mkdir\", \"dest\": \"/run/strata/etc/work\", \"mode\": 493},\n"
    "    {\"type\": \"overlay\", \"dest\": \"/etc\", \"lowerdirs\": [\"/etc\"], "
    "\"upperdir\": \"/run/strata/etc/upper\", \"workdir\": \"/run/strata/etc/work\", "
    "\"flags\": [\"upper-in-root\", \"nodev\", \"create-dest\"], \"comment\": \"a private "
    "copy of the host's /etc: writes stay in the worker\"},\n"
    "    {\"type\": \"tmpfs\", \"dest\": \"/tmp\", \"options\": \"mode=1777,size=256m\", "
    "\"flags\": [\"nosuid\", \"nodev\", \"create-dest\"]},\n"
    "    {\"type\": \"tmpfs\", \"dest\": \"/var/tmp\", \"options\": \"mode=1777,size=256m\", "
    "\"flags\": [\"nosuid\", \"nodev\", \"create-dest\"]},\n"
    "    {\"type\": \"tmpfs\", \"dest\": \"/usr/local\", \"options\": \"mode=0755,size=64m\", "
    "\"flags\": [\"nosuid\", \"nodev\", \"create-dest\"]},\n"
    "    {\"type\": \"tmpfs\", \"dest\": \"/construction\", \"options\": "
    "\"mode=1777,size=512m\", \"flags\": [\"nosuid\", \"nodev\", \"create-dest\"], "
    "\"comment\": \"where ports are built: size-limited\"},\n"
    "    {\"type\": \"proc\", \"dest\": \"/proc\", \"flags\": [\"nosuid\", \"nodev\", "
    "\"noexec\", \"create-dest\"]},\n"
    "    {\"type\": \"dev-minimal\", \"dest\": \"/dev\", \"flags\": [\"create-dest\"]},\n"
    "    {\"type\": \"sysfs\", \"dest\": \"/sys\", \"flags\": [\"ro\", \"nosuid\", \"nodev\", "
    "\"noexec\", \"create-dest\"]},\n"
    "    {\"type\": \"bind\", \"src\": \"${WORKER_ROOT}/packages\", \"dest\": \"/packages\", "
    "\"flags\": [\"nosuid\", \"nodev\", \"create-dest\"], \"comment\": \"shared by every "
    "slot\"},\n"
    "    {\"type\": \"bind\", \"src\": \"${WORKER_ROOT}/distfiles\", \"dest\": \"/distfiles\", "
    "\"flags\": [\"nosuid\", \"nodev\", \"create-dest\"]},\n"
    "    {\"type\": \"bind\", \"src\": \"${WORKER_ROOT}/options\", \"dest\": \"/options\", "
    "\"flags\": [\"nosuid\", \"nodev\", \"create-dest\"]},\n"
    "    {\"type\": \"bind\", \"src\": \"${WORKER_ROOT}/xports\", \"dest\": \"/xports\", "
    "\"flags\": [\"ro\", \"nosuid\", \"nodev\", \"create-dest\"], \"comment\": \"the source "
    "tree (--bind DIR:/xports:ro replaces it)\"}\n"
    "  ]\n"
    "}\n";

struct worker_plan *worker_plan_free(struct worker_plan *wp)
{
        if (!wp)
                return NULL;
        mount_plan_free(wp->plan);
        free(wp->hostname);
        strv_free(wp->host_dirs);
        free(wp);
        return NULL;
}

/* The worker's own keys of a plan document. */
static int parse_worker_keys(const char *name, const json_t *doc, struct worker_plan *wp,
                             char **ret_error)
{
        static const char *const known[] = {"comment", "mounts", "hostname",
                                            "network", "user",   "host-dirs"};
        const json_t *v, *e;
        const char *key;
        size_t i;
        int r;

        if (!json_is_object(doc))
                return 0; /* a bare array: only mounts */
        json_object_foreach((json_t *)doc, key, v)
        {
                bool ok = false;
                for (i = 0; i < ELEMENTSOF(known); i++)
                        ok = ok || streq(key, known[i]);
                if (!ok)
                        return mount_plan_document_error(ret_error, name,
                                                         "field \"%s\": unknown field", key);
        }
        v = json_object_get(doc, "hostname");
        if (v) {
                if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 64)
                        return mount_plan_document_error(ret_error, name, "field \"hostname\": %s",
                                                         "not a host name (1 to 64 characters)");
                wp->hostname = strdup(json_string_value(v));
                if (!wp->hostname)
                        return -ENOMEM;
        }
        v = json_object_get(doc, "network");
        if (v) {
                if (!json_is_string(v) ||
                    (!streq(json_string_value(v), "none") && !streq(json_string_value(v), "host")))
                        return mount_plan_document_error(ret_error, name, "field \"network\": %s",
                                                         "not \"none\" or \"host\"");
                wp->network_host = streq(json_string_value(v), "host");
        }
        v = json_object_get(doc, "user");
        if (v) {
                const json_t *uid = json_object_get(v, "uid"), *gid = json_object_get(v, "gid");
                if (!json_is_object(v) || !json_is_integer(uid) || !json_is_integer(gid) ||
                    json_integer_value(uid) < 0 || json_integer_value(gid) < 0 ||
                    json_integer_value(uid) > 0x7fffffff || json_integer_value(gid) > 0x7fffffff ||
                    json_object_size(v) != 2)
                        return mount_plan_document_error(ret_error, name, "field \"user\": %s",
                                                         "not {\"uid\": N, \"gid\": N}");
                wp->has_user = true;
                wp->uid = (uid_t)json_integer_value(uid);
                wp->gid = (gid_t)json_integer_value(gid);
        }
        v = json_object_get(doc, "host-dirs");
        if (v && !json_is_array(v))
                return mount_plan_document_error(ret_error, name, "field \"host-dirs\": %s",
                                                 "not an array");
        json_array_foreach(v, i, e)
        {
                if (!json_is_string(e) || json_string_value(e)[0] != '/')
                        return mount_plan_document_error(ret_error, name,
                                                         "field \"host-dirs\": entry %zu is %s",
                                                         i + 1, "not an absolute path");
                r = strv_extend(&wp->host_dirs, json_string_value(e));
                if (r < 0)
                        return r;
        }
        return 0;
}

int worker_plan_load(const char *file, const char *root, int slot, struct worker_plan **ret,
                     char **ret_error)
{
        _cleanup_(worker_plan_freep) struct worker_plan *wp = NULL;
        _cleanup_free_ char *v_slot = NULL, *v_root = NULL;
        const char *name = file ? file : "(default plan)";
        json_t *doc = NULL;
        int r;

        if (asprintf(&v_slot, "SLOT=%d", slot) < 0 || asprintf(&v_root, "WORKER_ROOT=%s", root) < 0)
                return -ENOMEM;
        char *vars[] = {v_slot, v_root, NULL};

        wp = calloc(1, sizeof(*wp));
        if (!wp)
                return -ENOMEM;
        if (file) {
                r = mount_plan_load(file, vars, &wp->plan, &doc, ret_error);
        } else {
                json_error_t e;
                r = json_load_buffer(name, worker_default_plan, strlen(worker_default_plan), &doc,
                                     &e);
                if (r < 0) {
                        if (ret_error)
                                *ret_error = strdup(json_error_string(&e));
                        return r;
                }
                r = mount_plan_from_document(name, doc, vars, &wp->plan, ret_error);
        }
        if (r >= 0)
                r = parse_worker_keys(name, doc, wp, ret_error);
        json_decref(doc);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(wp);
        return 0;
}

int worker_plan_add_bind(struct worker_plan *wp, const char *src, const char *dest, bool read_only)
{
        for (size_t i = wp->plan->n_ops; i > 0; i--) {
                struct mount_op *op = &wp->plan->ops[i - 1];
                char *s;

                if (op->type != MOUNT_OP_BIND || op->flags & MOUNT_PLAN_HOST ||
                    !streq(op->dest, dest))
                        continue;
                if (src[0] != '/')
                        return -EINVAL;
                s = strdup(src);
                if (!s)
                        return -ENOMEM;
                free(op->src);
                op->src = s;
                op->flags &= ~(MOUNT_PLAN_RO | MOUNT_PLAN_OPTIONAL);
                if (read_only)
                        op->flags |= MOUNT_PLAN_RO;
                return 0;
        }
        return mount_plan_add_bind(wp->plan, src, dest,
                                   MOUNT_PLAN_CREATE_DEST | MOUNT_PLAN_NOSUID | MOUNT_PLAN_NODEV |
                                       (read_only ? MOUNT_PLAN_RO : 0));
}

/* What the worker's processes tell the caller, in memory shared with it
 * (MAP_SHARED survives the fork; no fd to keep track of). */
struct report {
        int exec_errno; /* pid 2 could not become the user or exec CMD */
        char exec_what[256];
        bool torn_down;
        unsigned mounts;
        struct mount_teardown_result teardown;
};

struct run_ctx {
        const struct worker_plan *wp;
        char *const *argv;
        char **envp;
        struct report *report;
        struct worker_slot *slot;
};

extern char **environ;

/* pid 2 of the worker: become the build user, exec CMD. */
static int run_cmd(void *userdata)
{
        struct run_ctx *c = userdata;

        if (c->wp->has_user &&
            (setgroups(0, NULL) < 0 || setgid(c->wp->gid) < 0 || setuid(c->wp->uid) < 0)) {
                c->report->exec_errno = errno;
                snprintf(c->report->exec_what, sizeof(c->report->exec_what),
                         "become user %u (group %u)", (unsigned)c->wp->uid, (unsigned)c->wp->gid);
                return WORKER_EXIT_SETUP;
        }
        environ = c->envp;
        execvp(c->argv[0], c->argv);
        c->report->exec_errno = errno;
        snprintf(c->report->exec_what, sizeof(c->report->exec_what), "execute '%s'", c->argv[0]);
        return WORKER_EXIT_EXEC;
}

/* The worker's init, once every other process of the namespace is gone. */
static void teardown(void *userdata)
{
        struct run_ctx *c = userdata;
        struct mount_teardown_policy pol = MOUNT_TEARDOWN_POLICY_DEFAULT;

        /* This init is the last process of the worker's mount namespace:
         * the unused mounts go with it, the busy ones are retried. */
        pol.namespace_ends = true;
        (void)mount_teardown_under("/", true, &pol, &c->report->teardown);
        c->report->mounts = c->report->teardown.found;
        c->report->torn_down = true;
}

static void started(pid_t init, void *userdata)
{
        struct run_ctx *c = userdata;
        (void)worker_slot_set_init(c->slot, init);
}

static int make_env(int slot, const struct worker_plan *wp, char ***ret)
{
        _cleanup_strv_ char **env = NULL;
        const char *term = getenv("TERM");
        char *s;
        int r;

        r = strv_extend(&env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        if (r >= 0)
                r = strv_extend(&env, "HOME=/construction");
        if (r >= 0)
                r = strv_extend(&env, "TMPDIR=/tmp");
        if (r >= 0)
                r = strv_extend(&env, wp->has_user ? "USER=build" : "USER=root");
        if (r >= 0 && term) {
                if (asprintf(&s, "TERM=%s", term) < 0)
                        return -ENOMEM;
                r = strv_consume(&env, s);
        }
        if (r >= 0) {
                if (asprintf(&s, "STRATA_WORKER_SLOT=%d", slot) < 0)
                        return -ENOMEM;
                r = strv_consume(&env, s);
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(env);
        return 0;
}

static uint64_t now_usec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

int worker_status_of_error(int r, bool exec_failed)
{
        if (r == -EBUSY)
                return 75;
        return exec_failed ? WORKER_EXIT_EXEC : WORKER_EXIT_SETUP;
}

int worker_run(const struct worker_options *o, struct worker_result *ret, char **ret_error)
{
        _cleanup_(worker_slot_releasep) struct worker_slot *slot = NULL;
        _cleanup_(worker_plan_freep) struct worker_plan *wp = NULL;
        _cleanup_strv_ char **env = NULL;
        const char *root = o->root ? o->root : WORKER_ROOT_DEFAULT;
        uint64_t t0 = now_usec();
        struct report *rep;
        int r, status = -1;

        *ret = (struct worker_result){.slot = -1, .status = -1};
        if (!o->argv || !o->argv[0])
                return -EINVAL;

        r = mkdir_p_at(AT_FDCWD, root, 0755);
        if (r < 0)
                return set_error_message(ret_error, r, "create the worker root '%s'", root);
        r = worker_slot_acquire(root, o->slot, o->plan_file, &slot);
        if (r == -EBUSY && o->slot >= 0)
                return set_error_message(ret_error, r, "take slot %d (in use)", o->slot);
        if (r == -EBUSY)
                return set_error_message(ret_error, r, "find a free slot under '%s'", root);
        if (r < 0)
                return set_error_message(ret_error, r, "take a slot under '%s'", root);
        ret->slot = slot->slot;

        r = worker_plan_load(o->plan_file, root, slot->slot, &wp, ret_error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < o->n_binds; i++) {
                r = worker_plan_add_bind(wp, o->binds[i].src, o->binds[i].dest,
                                         o->binds[i].read_only);
                if (r < 0)
                        return set_error_message(ret_error, r, "bind '%s' on '%s'", o->binds[i].src,
                                                 o->binds[i].dest);
        }
        STRV_FOREACH (d, wp->host_dirs) {
                r = mkdir_p_at(AT_FDCWD, *d, 0755);
                if (r < 0)
                        return set_error_message(ret_error, r, "create host dir '%s'", *d);
        }
        r = make_env(slot->slot, wp, &env);
        if (r < 0)
                return r;

        rep = mmap(NULL, sizeof(*rep), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (rep == MAP_FAILED)
                return -errno;
        *rep = (struct report){};

        struct run_ctx ctx = {.wp = wp, .argv = o->argv, .envp = env, .report = rep, .slot = slot};
        struct sandbox_config c = {
            .flags = SANDBOX_UTS | SANDBOX_IPC | (wp->network_host ? 0 : SANDBOX_NET),
            .plan = wp->plan,
            .hostname = wp->hostname,
            .callback = run_cmd,
            .userdata = &ctx,
            .stdin_fd = o->stdin_fd,
            .stdout_fd = o->stdout_fd,
            .stderr_fd = o->stderr_fd,
            .timeout_usec = o->timeout_usec,
            .started = started,
            .teardown = teardown,
        };
        _cleanup_free_ char *error = NULL;
        r = sandbox_run(&c, &status, &error);
        if (r < 0) {
                munmap(rep, sizeof(*rep));
                if (ret_error)
                        *ret_error = TAKE_PTR(error);
                return r;
        }
        if (rep->exec_errno) {
                r = -rep->exec_errno;
                if (ret_error)
                        *ret_error = strdup(rep->exec_what);
                ret->status = status;
                munmap(rep, sizeof(*rep));
                return r;
        }
        ret->status = status;
        ret->timed_out = status == WORKER_EXIT_TIMEOUT && !rep->torn_down;
        ret->mounts = rep->mounts;
        ret->teardown = rep->teardown;
        munmap(rep, sizeof(*rep));
        ret->usec = now_usec() - t0;
        return 0;
}
