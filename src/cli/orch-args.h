/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The options `strata pkg` and `strata orchd` share: the state dir, the
 * policy config and how podman is run. Each command puts ORCH_ARGS_OPTIONS
 * in its getopt_long table and hands every option to orch_args_parse()
 * before its own switch.
 */

#include <getopt.h>
#include <stdbool.h>

#include "podman.h"
#include "policy.h"

#define ORCH_DEFAULT_STATE_DIR "/data/state/orchestrator"

struct orch_args {
        const char *state_dir;
        const char *config; /* NULL: STATE_DIR/config.json when it exists */
        const char *podman;
        const char *podman_root;
        const char *podman_runroot;
        const char *podman_runtime;
};

enum {
        ORCH_ARG_STATE_DIR = 0x200,
        ORCH_ARG_CONFIG,
        ORCH_ARG_PODMAN,
        ORCH_ARG_PODMAN_ROOT,
        ORCH_ARG_PODMAN_RUNROOT,
        ORCH_ARG_PODMAN_RUNTIME,
};

/* clang-format off */
#define ORCH_ARGS_OPTIONS                                                       \
        {"state-dir", required_argument, NULL, ORCH_ARG_STATE_DIR},             \
        {"config", required_argument, NULL, ORCH_ARG_CONFIG},                   \
        {"podman", required_argument, NULL, ORCH_ARG_PODMAN},                   \
        {"podman-root", required_argument, NULL, ORCH_ARG_PODMAN_ROOT},         \
        {"podman-runroot", required_argument, NULL, ORCH_ARG_PODMAN_RUNROOT},   \
        {"podman-runtime", required_argument, NULL, ORCH_ARG_PODMAN_RUNTIME}
/* clang-format on */

/* The defaults, from $STRATA_ORCH_STATE_DIR, $STRATA_PODMAN,
 * $STRATA_PODMAN_ROOT, $STRATA_PODMAN_RUNROOT and $STRATA_PODMAN_RUNTIME. */
void orch_args_init(struct orch_args *a);
/* Stores getopt's opt/arg when it is one of ORCH_ARGS_OPTIONS: returns
 * whether it was. */
bool orch_args_parse(struct orch_args *a, int opt, const char *arg);
/* Seconds from min to 86400 (a fraction allowed); -EINVAL otherwise. */
int orch_args_seconds(const char *s, double min, double *ret);
/* The podman these options name, with the policy's command and pull
 * timeouts. Logs and returns -ENOMEM. */
int orch_args_podman(const struct orch_args *a, const struct policy *policy, struct podman **ret);
/* The policy: --config, else STATE_DIR/config.json, else the defaults.
 * Logs what is wrong (naming the file) and returns -errno. */
int orch_args_policy(const struct orch_args *a, struct policy *ret);
