/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "macro.h"
#include "strv.h"

size_t strv_length(char *const *l)
{
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

bool strv_contains(char *const *l, const char *s)
{
        STRV_FOREACH (i, l)
                if (streq(*i, s))
                        return true;
        return false;
}

int strv_consume(char ***l, char *s)
{
        size_t n = strv_length(*l);
        char **m;

        m = realloc(*l, sizeof(char *) * (n + 2));
        if (!m) {
                free(s);
                return -ENOMEM;
        }
        m[n] = s;
        m[n + 1] = NULL;
        *l = m;
        return 0;
}

int strv_extend(char ***l, const char *s)
{
        char *c = strdup(s);

        if (!c)
                return -ENOMEM;
        return strv_consume(l, c);
}

int strv_copy(char *const *l, char ***ret)
{
        _cleanup_strv_ char **c = NULL;

        if (!l) {
                *ret = NULL;
                return 0;
        }
        c = calloc(strv_length(l) + 1, sizeof(char *));
        if (!c)
                return -ENOMEM;
        for (size_t i = 0; l[i]; i++) {
                c[i] = strdup(l[i]);
                if (!c[i])
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

static int cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

void strv_sort(char **l)
{
        if (!l)
                return; /* qsort wants a pointer even for nothing */
        qsort(l, strv_length(l), sizeof(char *), cmp);
}

char *strv_join(char *const *l, const char *sep)
{
        size_t len = 1, n = 0;
        char *s;

        STRV_FOREACH (p, l)
                len += strlen(*p) + strlen(sep);
        s = malloc(len);
        if (!s)
                return NULL;
        STRV_FOREACH (p, l) {
                if (n > 0) {
                        memcpy(s + n, sep, strlen(sep));
                        n += strlen(sep);
                }
                memcpy(s + n, *p, strlen(*p));
                n += strlen(*p);
        }
        s[n] = 0;
        return s;
}
