/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* squash: merges consecutive active layers into one (and auto-squash). */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "changes.h"
#include "cleanup.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "manifest.h"
#include "migrate-internal.h"
#include "migrate.h"
#include "squash.h"
#include "statepath.h"
#include "strv.h"

/* Drops the whiteouts of the merge (fd, at path) for paths that never
 * existed below the squashed range: they were created and deleted inside
 * it, and would show as deletions of nothing. */
static int prune_whiteouts(int fd, const char *path, const struct migrate_lowers *lowers)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int r;

        d = fdopendir(fcntl(fd, F_DUPFD_CLOEXEC, 3));
        if (!d)
                return -errno;
        while ((errno = 0, de = readdir(d))) {
                _cleanup_free_ char *child = NULL;
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                if (asprintf(&child, "%s/%s", path, de->d_name) < 0)
                        return -ENOMEM;
                if (changes_is_whiteout_at(dirfd(d), de->d_name, &st)) {
                        if (!changes_path_in_lowers(lowers->fds, lowers->n, child) &&
                            unlinkat(dirfd(d), de->d_name, 0) < 0)
                                return -errno;
                        continue;
                }
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int cfd = openat(
                            dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

                        if (cfd < 0)
                                return -errno;
                        r = prune_whiteouts(cfd, child, lowers);
                        if (r < 0)
                                return r;
                }
        }
        return errno ? -errno : 0;
}

int migrate_squash_range(struct migrate *m, size_t from, size_t to, char **ret_error)
{
        _cleanup_(layer_metadata_done) struct layer_metadata md = {};
        _cleanup_(change_list_done) struct change_list changes = {};
        _cleanup_(migrate_lowers_done) struct migrate_lowers lowers = {};
        _cleanup_free_ char *id = NULL, *dir = NULL, *tmp = NULL, *fs = NULL;
        _cleanup_strv_ char **migrations = NULL, **state_paths = NULL;
        _cleanup_close_ int tfd = -1;
        struct layer_entry e = {};
        int64_t duration = 0;
        int r;

        if (from >= to || to >= m->md.n_layers)
                return set_error_message(ret_error, -EINVAL, "nothing to squash");

        for (size_t i = from; i <= to; i++) {
                STRV_FOREACH (s, m->md.layers[i].migrations) {
                        r = strv_extend(&migrations, *s);
                        if (r < 0)
                                return r;
                }
                duration += m->md.layers[i].duration_ms;
        }
        /* "<last id>+<how many before it>": the name does not grow with the
         * range (an id is at most 13 + MIGRATION_LABEL_MAX), so it and
         * ".tmp-"/".old-" + it stay far under NAME_MAX */
        if (asprintf(&id, "%s+%zu", migrations[strv_length(migrations) - 1],
                     strv_length(migrations) - 1) < 0)
                return -ENOMEM;
        r = migrate_layer_dir_name(m, id, &dir);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot name the squashed layer '%s'", id);
        if (asprintf(&tmp, TMP_PREFIX "%s", dir) < 0 || asprintf(&fs, "%s/fs", tmp) < 0)
                return -ENOMEM;

        r = rm_rf_at(m->layers_fd, tmp, RM_ROOT | RM_MISSING_OK);
        if (r >= 0 && mkdirat(m->layers_fd, tmp, 0755) < 0)
                r = negative_errno();
        if (r < 0)
                return set_error_message(ret_error, r, "cannot create '%s/%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS, tmp);
        tfd = migrate_open_dir_at(m->layers_fd, tmp);
        if (tfd < 0)
                return set_error_message(ret_error, tfd, "cannot open '%s/%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS, tmp);
        r = migrate_write_uncommitted(tfd, ".");
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write '%s/%s/%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS, tmp, UNCOMMITTED);

        for (size_t i = from; i <= to; i++) {
                _cleanup_free_ char *src = NULL;

                if (asprintf(&src, "%s/fs", m->md.layers[i].dir) < 0)
                        return -ENOMEM;
                r = i == from ? squash_start_at(m->layers_fd, src, tfd, "fs")
                              : squash_apply_at(m->layers_fd, src, tfd, "fs");
                if (r < 0)
                        return set_error_message(ret_error, r,
                                                 "cannot merge the layer '%s/%s/%s' into '%s'",
                                                 m->data_dir, MIGRATE_LAYERS, src, tmp);
        }

        r = migrate_lowers_open(m, from, &lowers, ret_error);
        if (r < 0)
                return r;
        {
                _cleanup_close_ int fd = openat(tfd, "fs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

                r = fd < 0 ? -errno : prune_whiteouts(fd, "", &lowers);
                if (r < 0)
                        return set_error_message(ret_error, r,
                                                 "cannot drop the whiteouts of '%s/%s/%s'",
                                                 m->data_dir, MIGRATE_LAYERS, tmp);
        }
        r = manifest_write_at(tfd, "fs", tfd, MANIFEST_FILE);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write the manifest of '%s/%s/%s'",
                                         m->data_dir, MIGRATE_LAYERS, tmp);
        r = changes_capture_at(tfd, "fs", lowers.fds, lowers.n, m->md.state_paths, &changes);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot compute the changes of '%s/%s/%s'",
                                         m->data_dir, MIGRATE_LAYERS, tmp);
        for (size_t i = from; i <= to; i++) {
                _cleanup_strv_ char **sp = NULL;

                r = migrate_layer_state_paths(m, &m->md.layers[i], &sp);
                if (r >= 0)
                        r = state_path_merge(&state_paths, sp);
                if (r < 0)
                        return set_error_message(ret_error, r,
                                                 "cannot read the state paths of '%s/%s/%s'",
                                                 m->data_dir, MIGRATE_LAYERS, m->md.layers[i].dir);
        }
        r = migrate_write_layer_files(m, tfd, id, from > 0 ? m->md.layers[from - 1].id : NULL,
                                      migrations, NULL, &changes, NULL, state_paths, ret_error);
        if (r < 0)
                return r;
        if (syncfs(tfd) < 0)
                return set_error_message(ret_error, -errno, "cannot sync '%s'", m->data_dir);

        if (renameat(m->layers_fd, tmp, m->layers_fd, dir) < 0)
                return set_error_message(ret_error, -errno, "cannot rename '%s' to '%s' in '%s/%s'",
                                         tmp, dir, m->data_dir, MIGRATE_LAYERS);
        r = migrate_move_layers_aside(m, from, to + 1, ret_error);
        if (r < 0)
                return r;
        migrate_test_kill_point("squash-renamed");

        r = migrate_metadata_copy(&m->md, &md);
        if (r < 0)
                return r;
        e.id = TAKE_PTR(id);
        e.dir = TAKE_PTR(dir);
        e.migrations = TAKE_PTR(migrations);
        e.applied_at = md.layers[to].applied_at;
        e.duration_ms = duration;
        memcpy(e.changes, changes.counts, sizeof(e.changes));
        for (size_t i = from; i <= to; i++)
                migrate_layer_entry_free(&md.layers[i]);
        md.layers[from] = e;
        memmove(&md.layers[from + 1], &md.layers[to + 1],
                (md.n_layers - to - 1) * sizeof(struct layer_entry));
        md.n_layers -= to - from;
        r = migrate_commit(m, &md, ret_error);
        if (r < 0)
                return r;
        r = migrate_finish_layer(m, &m->md.layers[from], ret_error);
        if (r < 0)
                return r;
        migrate_emit(m, MIGRATE_EVENT_SQUASHED, m->md.layers[from].id, m->md.layers[from].dir, 0,
                     m->md.layers[from].changes);
        return 0;
}

int migrate_squash(struct migrate *m, const char *from, const char *to, char **ret_error)
{
        int i, j, r;

        i = layer_metadata_find_migration(&m->md, from);
        if (i < 0)
                return set_error_message(ret_error, -ENOENT, "migration '%s' is not applied", from);
        j = layer_metadata_find_migration(&m->md, to);
        if (j < 0)
                return set_error_message(ret_error, -ENOENT, "migration '%s' is not applied", to);
        if (i > j)
                return set_error_message(ret_error, -EINVAL,
                                         "'%s' is applied after '%s': swap them", from, to);
        if (i == j)
                return set_error_message(ret_error, -EINVAL,
                                         "'%s' and '%s' are already in one layer ('%s')", from, to,
                                         m->md.layers[i].id);
        r = migrate_lock_machine(m, "squash", ret_error);
        if (r < 0)
                return r;
        migrate_lock_describe(m, "squash");
        return migrate_squash_range(m, (size_t)i, (size_t)j, ret_error);
}

/* Keeps the lower stack below the kernel's limit: squashes the oldest
 * layers when one more would not fit. */
int migrate_auto_squash(struct migrate *m, char **ret_error)
{
        size_t max = m->o.max_layers ? m->o.max_layers : MIGRATE_MAX_LAYERS;
        int r;

        if (max < 2)
                max = 2;
        if (m->md.n_layers + 1 <= max)
                return 0;
        r = migrate_lock_machine(m, "auto-squash (--max-layers)", ret_error);
        if (r < 0)
                return r;
        /* Merge the oldest ones down to half the limit, so this happens
         * once every max/2 migrations, not at each. */
        return migrate_squash_range(m, 0, m->md.n_layers - max / 2, ret_error);
}
