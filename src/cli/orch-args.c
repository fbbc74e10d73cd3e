/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "exec.h"
#include "log.h"
#include "macro.h"
#include "orch-args.h"

/* The options `strata pkg` and `strata orchd` share, in one place. */

void orch_args_init(struct orch_args *a)
{
        *a = (struct orch_args){
            .state_dir = getenv("STRATA_ORCH_STATE_DIR") ?: ORCH_DEFAULT_STATE_DIR,
            .podman = getenv("STRATA_PODMAN") ?: "podman",
            .podman_root = getenv("STRATA_PODMAN_ROOT"),
            .podman_runroot = getenv("STRATA_PODMAN_RUNROOT"),
            .podman_runtime = getenv("STRATA_PODMAN_RUNTIME"),
        };
}

bool orch_args_parse(struct orch_args *a, int opt, const char *arg)
{
        switch (opt) {
        case ORCH_ARG_STATE_DIR:
                a->state_dir = arg;
                return true;
        case ORCH_ARG_CONFIG:
                a->config = arg;
                return true;
        case ORCH_ARG_PODMAN:
                a->podman = arg;
                return true;
        case ORCH_ARG_PODMAN_ROOT:
                a->podman_root = arg;
                return true;
        case ORCH_ARG_PODMAN_RUNROOT:
                a->podman_runroot = arg;
                return true;
        case ORCH_ARG_PODMAN_RUNTIME:
                a->podman_runtime = arg;
                return true;
        default:
                return false;
        }
}

int orch_args_seconds(const char *s, double min, double *ret)
{
        char *end;
        double d;

        errno = 0;
        d = strtod(s, &end);
        if (errno != 0 || end == s || *end != '\0' || d < min || d > 86400)
                return -EINVAL;
        *ret = d;
        return 0;
}

int orch_args_podman(const struct orch_args *a, const struct policy *policy, struct podman **ret)
{
        const char *argv[8];
        size_t n = 0;
        int r;

        argv[n++] = a->podman;
        if (a->podman_root) {
                argv[n++] = "--root";
                argv[n++] = a->podman_root;
        }
        if (a->podman_runroot) {
                argv[n++] = "--runroot";
                argv[n++] = a->podman_runroot;
        }
        if (a->podman_runtime && *a->podman_runtime) {
                argv[n++] = "--runtime";
                argv[n++] = a->podman_runtime;
        }
        argv[n] = NULL;
        r = podman_new(executor_real(), argv, ret);
        if (r < 0)
                return log_oom();
        (*ret)->timeout_ms = policy->command_timeout_usec / USEC_PER_MSEC;
        (*ret)->pull_timeout_ms = policy->pull_timeout_usec / USEC_PER_MSEC;
        return 0;
}

int orch_args_policy(const struct orch_args *a, struct policy *ret)
{
        _cleanup_free_ char *error = NULL, *path = NULL;
        int r;

        if (a->config)
                path = strdup(a->config);
        else if (asprintf(&path, "%s/config.json", a->state_dir) < 0)
                path = NULL;
        if (!path)
                return log_oom();
        r = policy_load_at(AT_FDCWD, path, ret, &error);
        if (r == -ENOENT && !a->config)
                return policy_init_default(ret);
        if (r == -ENOENT)
                return log_error_errno(r, "cannot read the config '%s': %m", path);
        if (r < 0)
                return log_error_errno(r, "invalid config: %s", error ?: strerror(-r));
        return 0;
}
