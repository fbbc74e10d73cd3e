/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <time.h>

#include "clock.h"

static usec_t timespec_to_usec(const struct timespec *ts)
{
        return (usec_t)ts->tv_sec * USEC_PER_SEC + ts->tv_nsec / 1000;
}

static usec_t real_now(struct clock_source *c)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return timespec_to_usec(&ts);
}

static usec_t real_monotonic(struct clock_source *c)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return timespec_to_usec(&ts);
}

static void real_sleep(struct clock_source *c, usec_t usec)
{
        struct timespec ts;

        if (usec <= 0)
                return;
        ts.tv_sec = usec / USEC_PER_SEC;
        ts.tv_nsec = (usec % USEC_PER_SEC) * 1000;
        /* Sleep the whole interval even when a signal interrupts it. */
        while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
                ;
}

struct clock_source *clock_real(void)
{
        static struct clock_source real = {
            .now = real_now,
            .monotonic = real_monotonic,
            .sleep = real_sleep,
        };
        return &real;
}

static usec_t fake_now(struct clock_source *c)
{
        return ((struct clock_fake *)c)->now;
}

static void fake_sleep(struct clock_source *c, usec_t usec)
{
        struct clock_fake *f = (struct clock_fake *)c;

        if (f->n_sleeps < CLOCK_FAKE_MAX_SLEEPS)
                f->sleeps[f->n_sleeps] = usec;
        f->n_sleeps++;
        if (usec > 0)
                f->now += usec;
}

void clock_fake_init(struct clock_fake *f, usec_t start)
{
        *f = (struct clock_fake){
            .source = {.now = fake_now, .monotonic = fake_now, .sleep = fake_sleep},
            .now = start,
        };
}

void clock_fake_advance(struct clock_fake *f, usec_t usec)
{
        f->now += usec;
}
