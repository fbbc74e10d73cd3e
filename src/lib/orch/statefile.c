/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "json.h"
#include "log.h"
#include "macro.h"
#include "statefile.h"

int statefile_set_aside_at(int dirfd, const char *path, usec_t now, char **ret_aside)
{
        for (unsigned i = 0; i < 100; i++) {
                _cleanup_free_ char *aside = NULL;
                int r;

                if (i == 0)
                        r = asprintf(&aside, "%s.corrupt-%" PRId64, path, now / USEC_PER_SEC);
                else
                        r = asprintf(&aside, "%s.corrupt-%" PRId64 "-%u", path, now / USEC_PER_SEC,
                                     i);
                if (r < 0)
                        return -ENOMEM;
                /* never replace an earlier corrupt copy */
                if (renameat2(dirfd, path, dirfd, aside, RENAME_NOREPLACE) < 0) {
                        if (errno == EEXIST)
                                continue;
                        return log_debug_errno(errno, "cannot move '%s' aside: %m", path);
                }
                log_debug("moved the unreadable '%s' to '%s'", path, aside);
                if (ret_aside)
                        *ret_aside = TAKE_PTR(aside);
                return 0;
        }
        return -EEXIST;
}

int statefile_load_at(int dirfd, const char *path, usec_t now, json_t **ret, char **ret_aside)
{
        json_error_t e;
        json_t *j;
        int r;

        r = json_load_at(dirfd, path, &j, &e);
        if (r == -EBADMSG) {
                log_debug("%s", json_error_string(&e));
                r = statefile_set_aside_at(dirfd, path, now, ret_aside);
                return r < 0 ? r : -EBADMSG;
        }
        if (r < 0)
                return r;
        *ret = j;
        return 0;
}

int statefile_load_typed_at(int dirfd, const char *path, usec_t now,
                            int (*from_json)(const json_t *j, void *obj),
                            int (*save_clean)(int dirfd, const char *path, usec_t now, void *obj),
                            void *obj, char **ret_aside)
{
        _cleanup_free_ char *aside = NULL;
        json_t *j = NULL;
        int r;

        r = statefile_load_at(dirfd, path, now, &j, &aside);
        if (r == -ENOENT)
                r = 0;
        else if (r >= 0) {
                r = from_json(j, obj);
                json_decref(j);
                if (r == -EBADMSG) {
                        /* parses, but has the wrong shape */
                        int k = statefile_set_aside_at(dirfd, path, now, &aside);
                        if (k < 0)
                                return k;
                }
        }
        if (r == -EBADMSG) {
                /* start clean, and say where the bad file went */
                r = save_clean(dirfd, path, now, obj);
                if (r < 0)
                        return r;
        } else if (r < 0)
                return r;
        if (ret_aside)
                *ret_aside = TAKE_PTR(aside);
        return 0;
}

int statefile_save_at(int dirfd, const char *path, const json_t *j)
{
        return json_save_at(dirfd, path, j, 0644);
}
