/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A podman that lives in memory: an executor that answers the sub-commands
 * the runtime (podman.h) uses -- pull, image exists, create, start,
 * stop -t N, rm -f, inspect, ps -a --format json, logs -- with the same exit
 * statuses and JSON shapes as podman 4, on in-memory images and containers.
 * Time comes from an injectable clock, so a pull delay or a watch period
 * costs nothing in a test.
 *
 * Knobs (set them between calls):
 *   fail_pull                 the next n pulls fail; -1: every pull fails
 *   fail_start                every start fails (OCI runtime error)
 *   exit_immediately          a started container exits at once with
 *                             exit_code, printing exit_logs
 *   image_missing_after_pull  a pull succeeds but stores nothing
 *   pull_delay_ms             each pull sleeps this long on the clock
 *   exit_after_ms             a started container exits (exit_code) once
 *                             this long has passed on the clock
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "clock.h"
#include "exec.h"
#include "podman.h"

struct mock_container {
        char *name;
        char *id;
        char *image;
        enum container_state state;
        int exit_code;
        usec_t created_at, started_at, finished_at;
        json_t *labels;
        int64_t stop_timeout; /* --stop-timeout, -1 if not given */
        int64_t last_stop_t;  /* the -t of the last stop, -1 if never stopped */
        char **command;
        char *logs;
        unsigned starts;
        usec_t exits_at; /* exit_after_ms: when it exits on its own, 0 never */
};

struct mock_podman {
        struct executor executor;
        struct clock_source *clock;

        char **images;
        size_t n_images;
        struct mock_container *containers;
        size_t n_containers;
        unsigned next_id;

        int fail_pull;
        bool fail_start;
        bool exit_immediately;
        int exit_code;         /* for exit_immediately; default 1 */
        const char *exit_logs; /* for exit_immediately; NULL: a default line */
        bool image_missing_after_pull;
        int64_t pull_delay_ms;
        int64_t exit_after_ms;

        unsigned n_pulls; /* attempts, failed or not */
        char **calls;     /* every command line received (argv after "podman") */
        size_t n_calls;
};

int mock_podman_init(struct mock_podman *m, struct clock_source *clock);
void mock_podman_done(struct mock_podman *m);

int mock_podman_add_image(struct mock_podman *m, const char *image);
bool mock_podman_has_image(const struct mock_podman *m, const char *image);
struct mock_container *mock_podman_find(struct mock_podman *m, const char *name);
/* Makes a running container exit with exit_code (a crash). */
int mock_podman_crash(struct mock_podman *m, const char *name, int exit_code);
/* Number of recorded calls whose command line starts with prefix. */
size_t mock_podman_count_calls(const struct mock_podman *m, const char *prefix);
