/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "json.h"
#include "log.h"
#include "macro.h"
#include "services.h"

#define INSTALL_PREFIX  ".strata-install-"
#define REMOVE_PREFIX   ".strata-remove-"
#define POLL_STEP_USEC  (50 * USEC_PER_MSEC)
#define SUPERVISE_USEC  (5 * USEC_PER_SEC)
#define STOP_SLACK_MSEC 5000

int services_new(struct executor *executor, struct clock_source *clock, const char *scan_dir,
                 struct services **ret)
{
        _cleanup_(services_freep) struct services *s = NULL;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->executor = executor;
        s->clock = clock;
        s->scan_fd = -1;
        s->timeout_ms = 30000;
        s->scan_dir = strdup(scan_dir);
        if (!s->scan_dir)
                return -ENOMEM;
        s->scan_fd = open(scan_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->scan_fd < 0)
                return negative_errno();
        *ret = TAKE_PTR(s);
        return 0;
}

struct services *services_free(struct services *s)
{
        if (!s)
                return NULL;
        safe_close(s->scan_fd);
        free(s->scan_dir);
        free(s->last_error);
        free(s);
        return NULL;
}

const char *services_last_error(const struct services *s)
{
        return s->last_error ?: "";
}

static void set_last_error(struct services *s, const char *format, ...) _printf_(2, 3);
static void set_last_error(struct services *s, const char *format, ...)
{
        va_list ap;

        free(s->last_error);
        va_start(ap, format);
        if (vasprintf(&s->last_error, format, ap) < 0)
                s->last_error = NULL;
        va_end(ap);
}

/* Runs an s6 tool; 0 when it exited 0, -EIO (last_error set) otherwise,
 * *ret_status its status when not NULL. */
static int run(struct services *s, const char *const *argv, int *ret_status, char **ret_out)
{
        struct exec_result res = {};
        int r;

        r = executor_run(s->executor,
                         &(struct exec_request){.argv = argv, .timeout_ms = s->timeout_ms}, &res);
        if (r < 0) {
                set_last_error(s, "cannot run %s: %s", argv[0], strerror(-r));
                return r;
        }
        if (ret_status)
                *ret_status = res.status;
        if (res.status != 0) {
                size_t n = strlen(res.err);
                while (n > 0 && res.err[n - 1] == '\n')
                        res.err[--n] = '\0';
                set_last_error(s, "%s exited with status %d%s%s", argv[0], res.status,
                               *res.err ? ": " : "", res.err);
                exec_result_done(&res);
                return -EIO;
        }
        if (ret_out)
                *ret_out = TAKE_PTR(res.out);
        exec_result_done(&res);
        return 0;
}

static char *service_path(struct services *s, const char *name)
{
        char *p;

        if (asprintf(&p, "%s/%s", s->scan_dir, name) < 0)
                return NULL;
        return p;
}

int services_check_source(const char *dir, char **ret_error)
{
        _cleanup_close_ int fd = -1;
        struct stat st;

        size_t n = strlen(dir);

        if (dir[0] != '/' || strstr(dir, "/../") || (n >= 3 && streq(dir + n - 3, "/..")))
                return set_error_message(ret_error, -EINVAL,
                                         "'%s' must be an absolute path without '..'", dir);
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return set_error_message(ret_error, -EINVAL, "'%s' is not a directory: %m", dir);
        if (fstatat(fd, "run", &st, AT_SYMLINK_NOFOLLOW) < 0)
                return set_error_message(ret_error, -EINVAL, "'%s/run' is missing: %m", dir);
        if (!S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0)
                return set_error_message(ret_error, -EINVAL, "'%s/run' is not an executable file",
                                         dir);
        return 0;
}

bool services_exists(struct services *s, const char *id)
{
        _cleanup_free_ char *marker = NULL;

        if (asprintf(&marker, "%s/" SERVICES_MARKER, id) < 0)
                return false;
        return faccessat(s->scan_fd, marker, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Waits until s6-supervise runs for dir (s6-svok). */
static int wait_supervised(struct services *s, const char *dir, bool want)
{
        usec_t start = clock_monotonic(s->clock);

        for (;;) {
                int status = -1;
                (void)run(s, (const char *const[]){"s6-svok", dir, NULL}, &status, NULL);
                if ((status == 0) == want)
                        return 0;
                if (clock_monotonic(s->clock) - start >= SUPERVISE_USEC) {
                        set_last_error(s, "s6-supervise %s for '%s' after %d s",
                                       want ? "did not start" : "did not exit", dir,
                                       (int)(SUPERVISE_USEC / USEC_PER_SEC));
                        return -ETIMEDOUT;
                }
                clock_sleep(s->clock, POLL_STEP_USEC);
        }
}

static int rescan(struct services *s, bool nuke)
{
        return run(s, (const char *const[]){"s6-svscanctl", nuke ? "-an" : "-a", s->scan_dir, NULL},
                   NULL, NULL);
}

int services_start(struct services *s, const char *id)
{
        _cleanup_free_ char *dir = service_path(s, id);
        char t[32];

        if (!dir)
                return -ENOMEM;
        if (!services_exists(s, id)) {
                set_last_error(s, "no service '%s' in '%s'", id, s->scan_dir);
                return -ENOENT;
        }
        /* listening before the command, so a service that dies at once is
         * still seen to come up (the watch then sees it down) */
        snprintf(t, sizeof(t), "%d", 5000);
        return run(
            s, (const char *const[]){"s6-svlisten1", "-u", "-t", t, dir, "s6-svc", "-o", dir, NULL},
            NULL, NULL);
}

static int stop_dir(struct services *s, const char *dir, int64_t grace_s)
{
        char t[32];
        int r;

        r = run(s, (const char *const[]){"s6-svc", "-d", dir, NULL}, NULL, NULL);
        if (r < 0)
                return r;
        snprintf(t, sizeof(t), "%lld", (long long)(grace_s * 1000 + STOP_SLACK_MSEC));
        return run(s, (const char *const[]){"s6-svwait", "-D", "-t", t, dir, NULL}, NULL, NULL);
}

int services_stop(struct services *s, const char *id, int64_t grace_s)
{
        _cleanup_free_ char *dir = service_path(s, id);

        if (!dir)
                return -ENOMEM;
        if (!services_exists(s, id)) {
                set_last_error(s, "no service '%s' in '%s'", id, s->scan_dir);
                return -ENOENT;
        }
        return stop_dir(s, dir, grace_s);
}

/* Takes the dir name (in the scan dir) out of supervision and removes it. */
static int remove_dir(struct services *s, const char *name, const char *id, int64_t grace_s)
{
        _cleanup_free_ char *dir = service_path(s, name), *aside_name = NULL, *aside = NULL;
        int r;

        if (!dir)
                return -ENOMEM;
        if (asprintf(&aside_name, REMOVE_PREFIX "%s", id) < 0)
                return -ENOMEM;
        aside = service_path(s, aside_name);
        if (!aside)
                return -ENOMEM;
        (void)rm_rf_at(s->scan_fd, aside_name, RM_ROOT | RM_MISSING_OK);
        r = stop_dir(s, dir, grace_s);
        if (r < 0)
                log_debug("stopping '%s' before removing it: %s", dir, services_last_error(s));
        /* out of the scan dir first, so no rescan brings it back */
        if (renameat(s->scan_fd, name, s->scan_fd, aside_name) < 0)
                return negative_errno();
        r = rescan(s, true);
        if (r < 0)
                return r;
        r = wait_supervised(s, aside, false);
        if (r < 0)
                return r;
        return rm_rf_at(s->scan_fd, aside_name, RM_ROOT | RM_MISSING_OK);
}

static int read_marker(struct services *s, const char *id, int *ret_tier, int64_t *ret_grace,
                       char **ret_source)
{
        _cleanup_free_ char *marker = NULL;
        json_t *j = NULL;
        const char *tier = NULL, *source = NULL;
        int64_t grace = -1;
        int r;

        if (asprintf(&marker, "%s/" SERVICES_MARKER, id) < 0)
                return -ENOMEM;
        r = json_load_at(s->scan_fd, marker, &j, NULL);
        if (r < 0)
                return r == -ENOENT ? -ENOENT : -EBADMSG;
        if (json_get_string(j, "tier", &tier) < 0 || json_get_int(j, "grace_seconds", &grace) < 0 ||
            json_get_string(j, "source", &source) < 0) {
                json_decref(j);
                return -EBADMSG;
        }
        *ret_tier = tier_from_string(tier);
        *ret_grace = grace;
        *ret_source = strdup(source);
        json_decref(j);
        return *ret_source ? 0 : -ENOMEM;
}

int services_inspect(struct services *s, const char *id, struct container *ret)
{
        _cleanup_free_ char *dir = service_path(s, id), *out = NULL, *source = NULL;
        struct container c = {.stop_timeout_s = -1, .managed = true, .native = true};
        char up[16] = "";
        long long pid = -1, exitcode = -1, signum = -1, since = 0;
        usec_t now = clock_now(s->clock);
        int r;

        if (!dir)
                return -ENOMEM;
        r = read_marker(s, id, &c.tier, &c.grace_s, &source);
        if (r == -ENOENT) {
                set_last_error(s, "no service '%s' in '%s'", id, s->scan_dir);
                return r;
        }
        if (r < 0) {
                set_last_error(s, "'%s/%s/" SERVICES_MARKER "' is not valid", s->scan_dir, id);
                return r;
        }
        r = run(
            s,
            (const char *const[]){"s6-svstat", "-o", "up,pid,exitcode,signum,updownfor", dir, NULL},
            NULL, &out);
        if (r < 0)
                return r;
        if (sscanf(out, "%15s %lld %lld %lld %lld", up, &pid, &exitcode, &signum, &since) != 5) {
                set_last_error(s, "cannot parse s6-svstat's output for '%s': '%s'", dir, out);
                return -EBADMSG;
        }
        c.name = strdup(id);
        c.id = strdup("s6");
        if (asprintf(&c.image, "s6:%s", source) < 0)
                c.image = NULL;
        if (!c.name || !c.id || !c.image) {
                container_done(&c);
                return -ENOMEM;
        }
        if (streq(up, "true")) {
                c.state = CONTAINER_RUNNING;
                c.started_at = (now / USEC_PER_SEC) - since;
        } else {
                /* down: never started since install (no exit code, no
                 * signal), or exited */
                c.state = exitcode < 0 && signum < 0 ? CONTAINER_CREATED : CONTAINER_EXITED;
                c.exit_code = exitcode >= 0 ? (int)exitcode : signum >= 0 ? 128 + (int)signum : 0;
                c.finished_at = (now / USEC_PER_SEC) - since;
        }
        c.stop_timeout_s = c.grace_s;
        *ret = c;
        return 0;
}

int services_list(struct services *s, struct container_list *ret)
{
        struct container_list l = {};
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int fd, r;

        fd = openat(s->scan_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return negative_errno();
        }
        while ((de = readdir(d))) {
                struct container c = {};
                struct container *items;

                if (de->d_name[0] == '.' || !services_exists(s, de->d_name))
                        continue;
                r = services_inspect(s, de->d_name, &c);
                if (r == -ENOENT)
                        continue;
                if (r < 0) {
                        container_list_done(&l);
                        return r;
                }
                items = realloc(l.items, (l.n + 1) * sizeof(*items));
                if (!items) {
                        container_done(&c);
                        container_list_done(&l);
                        return -ENOMEM;
                }
                l.items = items;
                l.items[l.n++] = c;
        }
        *ret = l;
        return 0;
}

int services_remove(struct services *s, const char *id)
{
        int64_t grace = 30;
        _cleanup_free_ char *source = NULL;
        int tier;

        if (!services_exists(s, id))
                return 0;
        if (read_marker(s, id, &tier, &grace, &source) < 0)
                grace = 30;
        return remove_dir(s, id, id, grace);
}

int services_install(struct services *s, const struct policy *policy, const char *id,
                     const char *source, int tier, int64_t grace_s, char **ret_error)
{
        _cleanup_free_ char *tmp = NULL, *dir = NULL, *text = NULL, *kill_ms = NULL;
        _cleanup_close_ int tmp_fd = -1;
        struct container c = {};
        json_t *marker;
        usec_t start;
        int r;

        r = services_check_source(source, ret_error);
        if (r < 0)
                return r;
        if (faccessat(s->scan_fd, id, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return set_error_message(ret_error, -EEXIST, "'%s/%s' exists already", s->scan_dir,
                                         id);
        if (asprintf(&tmp, INSTALL_PREFIX "%s", id) < 0)
                return -ENOMEM;
        dir = service_path(s, id);
        if (!dir)
                return -ENOMEM;

        /* a copy under a dot name, which s6-svscan ignores, moved in whole */
        (void)rm_rf_at(s->scan_fd, tmp, RM_ROOT | RM_MISSING_OK);
        r = copy_tree_at(AT_FDCWD, source, s->scan_fd, tmp, 0);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot copy '%s' to '%s/%s': %s", source,
                                         s->scan_dir, tmp, strerror(-r));
        tmp_fd = openat(s->scan_fd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (tmp_fd < 0) {
                r = negative_errno();
                goto fail_tmp;
        }
        /* a service dir copied from a live one brings its supervise state */
        (void)rm_rf_at(tmp_fd, "supervise", RM_ROOT | RM_MISSING_OK);
        (void)rm_rf_at(tmp_fd, "event", RM_ROOT | RM_MISSING_OK);
        marker = json_pack("{s:i,s:s,s:I,s:s}", "version", 1, "tier", tier_to_string(tier),
                           "grace_seconds", (json_int_t)grace_s, "source", source);
        if (!marker) {
                r = -ENOMEM;
                goto fail_tmp;
        }
        r = json_save_at(tmp_fd, SERVICES_MARKER, marker, 0644);
        json_decref(marker);
        if (r < 0)
                goto fail_tmp;
        if (asprintf(&kill_ms, "%lld\n", (long long)grace_s * 1000) < 0) {
                r = -ENOMEM;
                goto fail_tmp;
        }
        r = write_file_atomic_at(tmp_fd, "timeout-kill", kill_ms, strlen(kill_ms), 0644);
        if (r >= 0)
                r = write_file_atomic_at(tmp_fd, "down", "", 0, 0644);
        if (r < 0)
                goto fail_tmp;
        if (renameat(s->scan_fd, tmp, s->scan_fd, id) < 0) {
                r = negative_errno();
                goto fail_tmp;
        }

        r = rescan(s, false);
        if (r >= 0)
                r = wait_supervised(s, dir, true);
        if (r >= 0)
                r = services_start(s, id);
        if (r < 0) {
                set_error_message(ret_error, r, "cannot start the service '%s': %s", id,
                                  services_last_error(s));
                goto fail;
        }

        /* the watch: it must stay up */
        start = clock_monotonic(s->clock);
        for (;;) {
                usec_t elapsed;
                r = services_inspect(s, id, &c);
                if (r < 0) {
                        set_error_message(ret_error, r, "cannot read the state of '%s': %s", id,
                                          services_last_error(s));
                        goto fail;
                }
                if (c.state != CONTAINER_RUNNING) {
                        r = set_error_message(
                            ret_error, -ESRCH,
                            "the service '%s' went down with exit code %d within %.1f s of "
                            "starting (watched %.0f s); removed it again",
                            id, c.exit_code,
                            (double)(clock_monotonic(s->clock) - start) / USEC_PER_SEC,
                            (double)policy->install_watch_usec / USEC_PER_SEC);
                        container_done(&c);
                        goto fail;
                }
                container_done(&c);
                elapsed = clock_monotonic(s->clock) - start;
                if (elapsed >= policy->install_watch_usec)
                        return 0;
                clock_sleep(s->clock,
                            MIN(250 * USEC_PER_MSEC, policy->install_watch_usec - elapsed));
        }

fail:
        if (remove_dir(s, id, id, grace_s) < 0)
                log_debug("cannot remove '%s' after a failed install: %s", dir,
                          services_last_error(s));
        return r;
fail_tmp:
        (void)rm_rf_at(s->scan_fd, tmp, RM_ROOT | RM_MISSING_OK);
        if (ret_error && !*ret_error)
                set_error_message(ret_error, r, "cannot install '%s' in '%s': %s", id, s->scan_dir,
                                  strerror(-r));
        return r;
}
