/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "macro.h"
#include "nameset.h"
#include "statefile.h"

void nameset_done(struct nameset *s)
{
        if (!s)
                return;
        for (size_t i = 0; i < s->n; i++)
                free(s->names[i]);
        free(s->names);
        *s = (struct nameset){};
}

/* Index of name, or of where it would go (and *found false). */
static size_t nameset_index(const struct nameset *s, const char *name, bool *found)
{
        size_t lo = 0, hi = s->n;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int c = strcmp(s->names[mid], name);
                if (c == 0) {
                        *found = true;
                        return mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = false;
        return lo;
}

bool nameset_contains(const struct nameset *s, const char *name)
{
        bool found;

        if (!s)
                return false;
        nameset_index(s, name, &found);
        return found;
}

int nameset_add(struct nameset *s, const char *name)
{
        bool found;
        size_t i = nameset_index(s, name, &found);
        char **l, *copy;

        if (found)
                return 0;
        copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        l = realloc(s->names, (s->n + 1) * sizeof(char *));
        if (!l) {
                free(copy);
                return -ENOMEM;
        }
        s->names = l;
        memmove(&l[i + 1], &l[i], (s->n - i) * sizeof(char *));
        l[i] = copy;
        s->n++;
        return 1;
}

int nameset_remove(struct nameset *s, const char *name)
{
        bool found;
        size_t i = nameset_index(s, name, &found);

        if (!found)
                return 0;
        free(s->names[i]);
        memmove(&s->names[i], &s->names[i + 1], (s->n - i - 1) * sizeof(char *));
        s->n--;
        return 1;
}

int nameset_save_at(int dirfd, const char *path, const struct nameset *s)
{
        json_t *names = json_array(), *j;
        int r;

        if (!names)
                return -ENOMEM;
        for (size_t i = 0; i < s->n; i++)
                json_array_append_new(names, json_string(s->names[i]));
        j = json_pack("{s:i,s:o}", "version", 1, "names", names);
        if (!j)
                return -ENOMEM;
        r = statefile_save_at(dirfd, path, j);
        json_decref(j);
        return r;
}

/* statefile_load_typed_at's from_json: ret is a struct nameset. */
static int nameset_from_json(const json_t *j, void *ret)
{
        struct nameset s = {};
        json_t *names = json_object_get(j, "names"), *v;
        size_t i;
        int r;

        if (!json_is_array(names))
                return -EBADMSG;
        json_array_foreach(names, i, v)
        {
                if (!json_is_string(v) || !*json_string_value(v)) {
                        nameset_done(&s);
                        return -EBADMSG;
                }
                r = nameset_add(&s, json_string_value(v));
                if (r < 0) {
                        nameset_done(&s);
                        return r;
                }
        }
        *(struct nameset *)ret = s;
        return 0;
}

static int nameset_save_clean(int dirfd, const char *path, usec_t now, void *obj)
{
        (void)now;
        return nameset_save_at(dirfd, path, obj);
}

int nameset_load_at(int dirfd, const char *path, usec_t now, struct nameset *ret, char **ret_aside)
{
        struct nameset s = {};
        int r;

        r = statefile_load_typed_at(dirfd, path, now, nameset_from_json, nameset_save_clean, &s,
                                    ret_aside);
        if (r < 0)
                return r;
        *ret = s;
        return 0;
}
