/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* NULL-terminated string arrays (freed with strv_free from cleanup.h). */

#include <stdbool.h>
#include <stddef.h>

size_t strv_length(char *const *l);
bool strv_contains(char *const *l, const char *s);
/* Appends s, taking ownership (freed on failure too). 0 or -ENOMEM. */
int strv_consume(char ***l, char *s);
/* Appends a copy of s. 0 or -ENOMEM. */
int strv_extend(char ***l, const char *s);
/* A deep copy (NULL for NULL). 0 or -ENOMEM. */
int strv_copy(char *const *l, char ***ret);
/* Sorts in strcmp order. */
void strv_sort(char **l);
/* The strings of l joined by sep, in a new string ("" for an empty or
 * NULL l); NULL when out of memory. */
char *strv_join(char *const *l, const char *sep);

#define STRV_FOREACH(s, l) for (char *const *s = (l); s && *s; s++)
