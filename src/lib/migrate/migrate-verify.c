/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* verify (and its repair) and gc: what the crash protocol can leave. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "migrate-internal.h"
#include "migrate.h"
#include "migration.h"

int migrate_verify(struct migrate *m, bool repair, char **ret_error)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int problems = 0, r;
        bool changed = false;

        /* Active layers: present and whole. An interrupted rollback or
         * squash may have moved them aside before its commit point. */
        for (size_t i = 0; i < m->md.n_layers; i++) {
                const struct layer_entry *e = &m->md.layers[i];
                _cleanup_free_ char *old = NULL, *msg = NULL;
                struct stat st;

                if (asprintf(&old, OLD_PREFIX "%s", e->dir) < 0)
                        return -ENOMEM;
                if (fstatat(m->layers_fd, e->dir, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (repair && fstatat(m->layers_fd, old, &st, AT_SYMLINK_NOFOLLOW) >= 0 &&
                            renameat(m->layers_fd, old, m->layers_fd, e->dir) >= 0) {
                                if (asprintf(&msg,
                                             "restored the layer dir '%s/%s/%s' moved aside "
                                             "by an interrupted run",
                                             m->data_dir, MIGRATE_LAYERS, e->dir) < 0)
                                        return -ENOMEM;
                                migrate_emit(m, MIGRATE_EVENT_REPAIRED, e->id, msg, 0, NULL);
                                changed = true;
                        } else {
                                if (asprintf(&msg,
                                             "the layer dir '%s/%s/%s' of the active layer "
                                             "'%s' is missing",
                                             m->data_dir, MIGRATE_LAYERS, e->dir, e->id) < 0)
                                        return -ENOMEM;
                                migrate_emit(m, MIGRATE_EVENT_PROBLEM, e->id, msg, 0, NULL);
                                problems++;
                                continue;
                        }
                }
                {
                        _cleanup_free_ char *fs = NULL, *lj = NULL;

                        if (asprintf(&fs, "%s/fs", e->dir) < 0 ||
                            asprintf(&lj, "%s/layer.json", e->dir) < 0)
                                return -ENOMEM;
                        if (fstatat(m->layers_fd, fs, &st, 0) < 0 || !S_ISDIR(st.st_mode) ||
                            fstatat(m->layers_fd, lj, &st, 0) < 0) {
                                free(msg);
                                if (asprintf(&msg, "the layer '%s/%s/%s' lacks fs/ or layer.json",
                                             m->data_dir, MIGRATE_LAYERS, e->dir) < 0)
                                        return -ENOMEM;
                                migrate_emit(m, MIGRATE_EVENT_PROBLEM, e->id, msg, 0, NULL);
                                problems++;
                                continue;
                        }
                }
                {
                        _cleanup_free_ char *pending = NULL;

                        if (asprintf(&pending, "%s/" PENDING_STATE, e->dir) < 0)
                                return -ENOMEM;
                        if (fstatat(m->layers_fd, pending, &st, AT_SYMLINK_NOFOLLOW) >= 0) {
                                free(msg);
                                msg = NULL;
                                if (repair) {
                                        r = migrate_finish_layer(m, e, ret_error);
                                        if (r < 0)
                                                return r;
                                        if (asprintf(&msg,
                                                     "finished moving the state of '%s' "
                                                     "to '%s/state'",
                                                     e->id, m->data_dir) < 0)
                                                return -ENOMEM;
                                        migrate_emit(m, MIGRATE_EVENT_REPAIRED, e->id, msg, 0,
                                                     NULL);
                                } else {
                                        if (asprintf(&msg,
                                                     "the state of '%s' is not yet in "
                                                     "'%s/state'",
                                                     e->id, m->data_dir) < 0)
                                                return -ENOMEM;
                                        migrate_emit(m, MIGRATE_EVENT_PROBLEM, e->id, msg, 0, NULL);
                                        problems++;
                                }
                        }
                }
        }
        (void)changed;

        /* Layer dirs nobody references: .tmp-* (an interrupted apply or
         * squash) and plain names (renamed but not committed). .old-* are
         * kept aside for gc. */
        d = fdopendir(fcntl(m->layers_fd, F_DUPFD_CLOEXEC, 3));
        if (!d)
                return set_error_message(ret_error, -errno, "cannot read '%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS);
        rewinddir(d); /* a dup shares its offset with earlier reads */
        while ((errno = 0, de = readdir(d))) {
                _cleanup_free_ char *msg = NULL;
                bool active = false;

                if (streq(de->d_name, ".") || streq(de->d_name, "..") ||
                    startswith(de->d_name, OLD_PREFIX))
                        continue;
                for (size_t i = 0; i < m->md.n_layers; i++)
                        if (streq(m->md.layers[i].dir, de->d_name))
                                active = true;
                if (active)
                        continue;
                if (!repair) {
                        if (asprintf(&msg, "'%s/%s/%s' is a leftover of an interrupted run",
                                     m->data_dir, MIGRATE_LAYERS, de->d_name) < 0)
                                return -ENOMEM;
                        migrate_emit(m, MIGRATE_EVENT_PROBLEM, NULL, msg, 0, NULL);
                        problems++;
                        continue;
                }
                r = rm_rf_at(m->layers_fd, de->d_name, RM_ROOT | RM_MISSING_OK);
                if (r < 0)
                        return set_error_message(ret_error, r,
                                                 "cannot remove the leftover '%s/%s/%s'",
                                                 m->data_dir, MIGRATE_LAYERS, de->d_name);
                if (asprintf(&msg, "removed the leftover '%s/%s/%s' of an interrupted run",
                             m->data_dir, MIGRATE_LAYERS, de->d_name) < 0)
                        return -ENOMEM;
                migrate_emit(m, MIGRATE_EVENT_REPAIRED, NULL, msg, 0, NULL);
        }
        closedir(TAKE_PTR(d));

        /* Migration records: only for applied migrations. */
        d = fdopendir(fcntl(m->records_fd, F_DUPFD_CLOEXEC, 3));
        if (!d)
                return set_error_message(ret_error, -errno, "cannot read '%s/%s'", m->data_dir,
                                         MIGRATE_RECORDS);
        rewinddir(d); /* a dup shares its offset with earlier reads */
        while ((errno = 0, de = readdir(d))) {
                _cleanup_free_ char *msg = NULL;
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISDIR(st.st_mode))
                        continue;
                if (migration_id_valid(de->d_name) && migrate_is_applied(&m->md, de->d_name))
                        continue;
                if (!repair) {
                        if (asprintf(&msg, "'%s/%s/%s' records a migration that is not applied",
                                     m->data_dir, MIGRATE_RECORDS, de->d_name) < 0)
                                return -ENOMEM;
                        migrate_emit(m, MIGRATE_EVENT_PROBLEM, NULL, msg, 0, NULL);
                        problems++;
                        continue;
                }
                r = rm_rf_at(m->records_fd, de->d_name, RM_ROOT | RM_MISSING_OK);
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot remove '%s/%s/%s'",
                                                 m->data_dir, MIGRATE_RECORDS, de->d_name);
                if (asprintf(&msg, "removed '%s/%s/%s' (no applied migration)", m->data_dir,
                             MIGRATE_RECORDS, de->d_name) < 0)
                        return -ENOMEM;
                migrate_emit(m, MIGRATE_EVENT_REPAIRED, NULL, msg, 0, NULL);
        }
        if (repair && (fsync(m->layers_fd) < 0 || fsync(m->records_fd) < 0))
                return set_error_message(ret_error, -errno, "cannot sync '%s/system'", m->data_dir);
        return problems;
}

int migrate_gc(struct migrate *m, char **ret_error)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int n = 0, r;

        d = fdopendir(fcntl(m->layers_fd, F_DUPFD_CLOEXEC, 3));
        if (!d)
                return set_error_message(ret_error, -errno, "cannot read '%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS);
        rewinddir(d); /* a dup shares its offset with earlier reads */
        while ((errno = 0, de = readdir(d))) {
                if (!startswith(de->d_name, OLD_PREFIX) && !startswith(de->d_name, TMP_PREFIX))
                        continue;
                r = rm_rf_at(m->layers_fd, de->d_name, RM_ROOT | RM_MISSING_OK);
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot remove '%s/%s/%s'",
                                                 m->data_dir, MIGRATE_LAYERS, de->d_name);
                n++;
        }
        if (fsync(m->layers_fd) < 0)
                return set_error_message(ret_error, -errno, "cannot sync '%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS);
        return n;
}
