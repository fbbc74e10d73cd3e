/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "install.h"
#include "log.h"
#include "macro.h"

/* How often the watch looks at the container. */
#define WATCH_STEP_USEC (250 * USEC_PER_MSEC)

int install_pull(struct podman *pm, const struct policy *policy, struct clock_source *clock,
                 const char *image, char **ret_error)
{
        int r = -EINVAL;

        for (unsigned attempt = 1; attempt <= policy->pull_attempts; attempt++) {
                r = podman_pull(pm, image);
                if (r >= 0)
                        return 0;
                log_debug("pull of '%s' failed (attempt %u of %u): %s", image, attempt,
                          policy->pull_attempts, podman_last_error(pm));
                if (attempt < policy->pull_attempts)
                        clock_sleep(clock, policy_pull_delay(policy, attempt));
        }
        return set_error_message(ret_error, r, "cannot pull '%s' (%u attempts): %s", image,
                                 policy->pull_attempts, podman_last_error(pm));
}

/* Removes the container after a failed install; the caller's error stands. */
static void rollback(struct podman *pm, const char *name)
{
        int r = podman_rm(pm, name);
        if (r < 0)
                log_debug("cannot remove '%s' after a failed install: %s", name,
                          podman_last_error(pm));
}

static int watch(struct podman *pm, const struct policy *policy, struct clock_source *clock,
                 const struct install_request *req, char **ret_error)
{
        usec_t start = clock_monotonic(clock), elapsed;
        struct container c = {};
        int r;

        for (;;) {
                r = podman_inspect(pm, req->name, &c);
                if (r < 0)
                        return set_error_message(ret_error, r,
                                                 "cannot inspect '%s' after starting it: %s",
                                                 req->name, podman_last_error(pm));
                if (c.state != CONTAINER_RUNNING)
                        break;
                container_done(&c);
                elapsed = clock_monotonic(clock) - start;
                if (elapsed >= policy->install_watch_usec)
                        return 0;
                clock_sleep(clock, MIN(WATCH_STEP_USEC, policy->install_watch_usec - elapsed));
        }

        /* It exited (or never ran): keep what it said, then clean up. */
        {
                _cleanup_free_ char *logs = NULL;
                int exit_code = c.exit_code;
                const char *state = container_state_to_string(c.state);
                double secs = (double)(clock_monotonic(clock) - start) / USEC_PER_SEC;

                container_done(&c);
                if (policy->install_log_lines > 0 &&
                    podman_logs(pm, req->name, policy->install_log_lines, &logs) < 0)
                        logs = NULL;
                while (logs && *logs && logs[strlen(logs) - 1] == '\n')
                        logs[strlen(logs) - 1] = '\0';
                return set_error_message(
                    ret_error, -ESRCH,
                    "'%s' %s with exit code %d within %.1f s of starting (watched "
                    "for %.1f s); it was removed%s%s",
                    req->name, state, exit_code, secs,
                    (double)policy->install_watch_usec / USEC_PER_SEC,
                    logs && *logs ? "; its last log lines:\n" : "", logs && *logs ? logs : "");
        }
}

int install_failsafe(struct podman *pm, const struct policy *policy, struct clock_source *clock,
                     const struct install_request *req, char **ret_error)
{
        struct container existing = {};
        int r;

        if (!req->name || !req->image || !tier_to_string(req->tier) || req->grace_s < 0)
                return set_error_message(ret_error, -EINVAL, "invalid install request");

        r = podman_inspect(pm, req->name, &existing);
        if (r >= 0) {
                container_done(&existing);
                return set_error_message(
                    ret_error, -EEXIST,
                    "a container named '%s' exists already (uninstall it first)", req->name);
        }
        if (r != -ENOENT)
                return set_error_message(ret_error, r, "cannot inspect '%s': %s", req->name,
                                         podman_last_error(pm));

        if (!req->skip_pull) {
                r = install_pull(pm, policy, clock, req->image, ret_error);
                if (r < 0)
                        return r;
        }
        r = podman_image_exists(pm, req->image);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot check image '%s': %s", req->image,
                                         podman_last_error(pm));
        if (r == 0 && req->skip_pull)
                return set_error_message(ret_error, -ENOENT,
                                         "'%s' is not in the image store (and was not pulled)",
                                         req->image);
        if (r == 0)
                return set_error_message(ret_error, -ENOENT,
                                         "'%s' is not in the image store after a pull that "
                                         "succeeded",
                                         req->image);

        r = podman_create(pm, &(struct container_spec){
                                  .name = req->name,
                                  .image = req->image,
                                  .tier = req->tier,
                                  .grace_s = req->grace_s,
                                  .network = req->network,
                                  .command = req->command,
                              });
        if (r < 0) {
                set_error_message(ret_error, r, "cannot create '%s' from '%s': %s", req->name,
                                  req->image, podman_last_error(pm));
                rollback(pm, req->name); /* a create can fail half-way */
                return r;
        }

        r = podman_start(pm, req->name);
        if (r < 0) {
                set_error_message(ret_error, r, "cannot start '%s': %s; it was removed", req->name,
                                  podman_last_error(pm));
                rollback(pm, req->name);
                return r;
        }

        r = watch(pm, policy, clock, req, ret_error);
        if (r < 0) {
                rollback(pm, req->name);
                return r;
        }
        return 0;
}
