/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * An injectable clock and sleeper. Policy code takes a struct clock_source *
 * and never calls time() or sleep() itself, so a test of minutes of backoff
 * runs in microseconds against a fake clock.
 */

#include <stddef.h>
#include <stdint.h>

typedef int64_t usec_t;

#define USEC_PER_MSEC ((usec_t)1000)
#define USEC_PER_SEC  ((usec_t)1000000)

struct clock_source {
        /* Wall-clock time (CLOCK_REALTIME), for timestamps that are persisted. */
        usec_t (*now)(struct clock_source *c);
        /* Monotonic time (CLOCK_MONOTONIC), for measuring intervals. */
        usec_t (*monotonic)(struct clock_source *c);
        /* Sleeps for usec (a fake clock records it and advances instead). */
        void (*sleep)(struct clock_source *c, usec_t usec);
};

static inline usec_t clock_now(struct clock_source *c)
{
        return c->now(c);
}

static inline usec_t clock_monotonic(struct clock_source *c)
{
        return c->monotonic(c);
}

static inline void clock_sleep(struct clock_source *c, usec_t usec)
{
        c->sleep(c, usec);
}

/* The real clock: a process-wide singleton. */
struct clock_source *clock_real(void);

#define CLOCK_FAKE_MAX_SLEEPS 64

/* A fake clock: time stands still until advanced or slept; every sleep is
 * recorded (the first CLOCK_FAKE_MAX_SLEEPS of them). */
struct clock_fake {
        struct clock_source source;
        usec_t now;
        usec_t sleeps[CLOCK_FAKE_MAX_SLEEPS];
        size_t n_sleeps;
};

void clock_fake_init(struct clock_fake *f, usec_t start);
void clock_fake_advance(struct clock_fake *f, usec_t usec);
