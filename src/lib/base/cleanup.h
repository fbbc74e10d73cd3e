/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Scope-bound cleanup helpers built on __attribute__((cleanup)).
 *
 *   _cleanup_free_ char *p = strdup(x);      free()d when p leaves scope
 *   _cleanup_close_ int fd = open(...);      close()d unless negative
 *   return TAKE_PTR(p);                      hand ownership to the caller
 *
 * Every destructor here accepts NULL / -1 and preserves errno, so a cleanup
 * that runs on an error path never clobbers the error being reported.
 */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p)
{
        int saved = errno;
        free(*(void **)p);
        errno = saved;
}

static inline void closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}

static inline void fclosep(FILE **f)
{
        if (*f) {
                int saved = errno;
                fclose(*f);
                errno = saved;
        }
}

static inline void closedirp(DIR **d)
{
        if (*d) {
                int saved = errno;
                closedir(*d);
                errno = saved;
        }
}

/* Frees a NULL-terminated array of strings and the array itself. */
static inline void strv_free(char **l)
{
        if (!l)
                return;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
}

static inline void strv_freep(char ***l)
{
        int saved = errno;
        strv_free(*l);
        errno = saved;
}

#define _cleanup_free_     _cleanup_(freep)
#define _cleanup_close_    _cleanup_(closep)
#define _cleanup_fclose_   _cleanup_(fclosep)
#define _cleanup_closedir_ _cleanup_(closedirp)
#define _cleanup_strv_     _cleanup_(strv_freep)

/* Declares a cleanup function for a type whose destructor returns NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func) \
        static inline void func##p(type *p)     \
        {                                       \
                if (*p) {                       \
                        int saved_ = errno;     \
                        *p = func(*p);          \
                        errno = saved_;         \
                }                               \
        }

/* Returns the pointer and leaves NULL behind, so the cleanup does nothing. */
#define TAKE_PTR(p)                      \
        ({                               \
                __typeof__(p) _p_ = (p); \
                (p) = NULL;              \
                _p_;                     \
        })

/* Returns the fd and leaves -1 behind. */
#define TAKE_FD(fd)              \
        ({                       \
                int _fd_ = (fd); \
                (fd) = -1;       \
                _fd_;            \
        })

/* Closes fd (if valid) and returns -1, for `fd = safe_close(fd);`. */
static inline int safe_close(int fd)
{
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -1;
}
