/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Failsafe install: pull (with retry) -> check the image exists -> create
 * -> start -> watch it for a while. If anything fails after the create, or
 * the container exits during the watch, it is removed: nothing
 * half-installed stays behind, and the error says what happened (with the
 * container's exit code and last log lines when it exited).
 */

#include <stdbool.h>

#include "clock.h"
#include "podman.h"
#include "policy.h"

/* podman pull with the policy's attempts and delays (slept on clock).
 * Returns 0 or the last error; *ret_error (may be NULL) then says why. */
int install_pull(struct podman *pm, const struct policy *policy, struct clock_source *clock,
                 const char *image, char **ret_error);

struct install_request {
        const char *name;
        const char *image;
        int tier;                   /* TIER_* */
        int64_t grace_s;            /* stop grace period */
        const char *network;        /* NULL: podman's default */
        const char *const *command; /* NULL: the image's */
        bool skip_pull;             /* the image is local (imported, loaded): do not pull */
};

/* Returns 0 when the container runs at the end of the watch. Errors:
 * -EEXIST a container of that name exists (left alone), -ENOENT the image
 * is not there after the pull, -ESRCH it exited during the watch, or the
 * error of the failing step. *ret_error (may be NULL) says what happened. */
int install_failsafe(struct podman *pm, const struct policy *policy, struct clock_source *clock,
                     const struct install_request *req, char **ret_error);
