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
        for (;;) {
                _cleanup_free_ char *child = NULL;
                struct stat st;

                r = changes_next_entry(d, path, &de, &st, &child);
                if (r <= 0)
                        return r;
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
}

/* A squash of the active layers from..to into one, in its steps. */
struct squash {
        struct migrate *m;
        size_t from, to;
        char *id, *dir, *tmp;
        char **migrations, **state_paths;
        int64_t duration;
        int tfd;
        struct change_list changes;
};

static void squash_done(struct squash *q)
{
        free(q->id);
        free(q->dir);
        free(q->tmp);
        strv_free(q->migrations);
        strv_free(q->state_paths);
        safe_close(q->tfd);
        change_list_done(&q->changes);
}

/* The merged layer's migrations, duration and name: "<last id>+<how many
 * before it>", which does not grow with the range (an id is at most 13 +
 * MIGRATION_LABEL_MAX), so it and ".tmp-"/".old-" + it stay far under
 * NAME_MAX. */
static int squash_name(struct squash *q, char **ret_error)
{
        struct migrate *m = q->m;
        int r;

        for (size_t i = q->from; i <= q->to; i++) {
                STRV_FOREACH (s, m->md.layers[i].migrations) {
                        r = strv_extend(&q->migrations, *s);
                        if (r < 0)
                                return r;
                }
                q->duration += m->md.layers[i].duration_ms;
        }
        if (asprintf(&q->id, "%s+%zu", q->migrations[strv_length(q->migrations) - 1],
                     strv_length(q->migrations) - 1) < 0)
                return -ENOMEM;
        r = migrate_layer_dir_name(m, q->id, &q->dir);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot name the squashed layer '%s'",
                                         q->id);
        if (asprintf(&q->tmp, TMP_PREFIX "%s", q->dir) < 0)
                return -ENOMEM;
        return 0;
}

/* .tmp-<dir> with its uncommitted marker, then the layers merged into its
 * fs/ oldest first, without the whiteouts of paths no layer below has. */
static int squash_merge(struct squash *q, char **ret_error)
{
        struct migrate *m = q->m;
        _cleanup_(migrate_lowers_done) struct migrate_lowers lowers = {};
        _cleanup_close_ int fd = -1;
        int r;

        r = rm_rf_at(m->layers_fd, q->tmp, RM_ROOT | RM_MISSING_OK);
        if (r >= 0 && mkdirat(m->layers_fd, q->tmp, 0755) < 0)
                r = negative_errno();
        if (r < 0)
                return set_error_message(ret_error, r, "cannot create '%s/%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS, q->tmp);
        q->tfd = migrate_open_dir_at(m->layers_fd, q->tmp);
        if (q->tfd < 0)
                return set_error_message(ret_error, q->tfd, "cannot open '%s/%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS, q->tmp);
        r = migrate_write_uncommitted(q->tfd, ".");
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write '%s/%s/%s/%s'", m->data_dir,
                                         MIGRATE_LAYERS, q->tmp, UNCOMMITTED);
        for (size_t i = q->from; i <= q->to; i++) {
                _cleanup_free_ char *src = NULL;

                if (asprintf(&src, "%s/fs", m->md.layers[i].dir) < 0)
                        return -ENOMEM;
                r = i == q->from ? squash_start_at(m->layers_fd, src, q->tfd, "fs")
                                 : squash_apply_at(m->layers_fd, src, q->tfd, "fs");
                if (r < 0)
                        return set_error_message(ret_error, r,
                                                 "cannot merge the layer '%s/%s/%s' into '%s'",
                                                 m->data_dir, MIGRATE_LAYERS, src, q->tmp);
        }
        r = migrate_lowers_open(m, q->from, &lowers, ret_error);
        if (r < 0)
                return r;
        fd = openat(q->tfd, "fs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        r = fd < 0 ? -errno : prune_whiteouts(fd, "", &lowers);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot drop the whiteouts of '%s/%s/%s'",
                                         m->data_dir, MIGRATE_LAYERS, q->tmp);
        return 0;
}

/* The merged layer's change list and manifest (one walk; what lies below
 * a state path, not walked by the capture, rescanned), its state paths,
 * layer files, and one syncfs. */
static int squash_write(struct squash *q, char **ret_error)
{
        struct migrate *m = q->m;
        _cleanup_(migrate_lowers_done) struct migrate_lowers lowers = {};
        _cleanup_(manifest_freep) struct manifest *mf = manifest_new();
        int r;

        if (!mf)
                return -ENOMEM;
        r = migrate_lowers_open(m, q->from, &lowers, ret_error);
        if (r < 0)
                return r;
        r = changes_capture_visit_at(q->tfd, "fs", lowers.fds, lowers.n, m->md.state_paths,
                                     manifest_add_at, mf, &q->changes);
        STRV_FOREACH (p, m->md.state_paths) {
                _cleanup_free_ char *rel = NULL;

                if (r >= 0 && asprintf(&rel, "fs%s", *p) < 0)
                        r = -ENOMEM;
                if (r >= 0)
                        r = manifest_rescan_at(mf, q->tfd, rel, *p);
        }
        if (r >= 0)
                r = manifest_save_at(mf, q->tfd, MANIFEST_FILE);
        if (r < 0)
                return set_error_message(ret_error, r,
                                         "cannot compute the changes and the manifest of "
                                         "'%s/%s/%s'",
                                         m->data_dir, MIGRATE_LAYERS, q->tmp);
        for (size_t i = q->from; i <= q->to; i++) {
                _cleanup_strv_ char **sp = NULL;

                r = migrate_layer_state_paths(m, &m->md.layers[i], &sp);
                if (r >= 0)
                        r = state_path_merge(&q->state_paths, sp);
                if (r < 0)
                        return set_error_message(ret_error, r,
                                                 "cannot read the state paths of '%s/%s/%s'",
                                                 m->data_dir, MIGRATE_LAYERS, m->md.layers[i].dir);
        }
        r = migrate_write_layer_files(
            m, q->tfd, q->id, q->from > 0 ? m->md.layers[q->from - 1].id : NULL, q->migrations,
            NULL, &q->changes, NULL, q->state_paths, ret_error);
        if (r < 0)
                return r;
        if (syncfs(q->tfd) < 0)
                return set_error_message(ret_error, -errno, "cannot sync '%s'", m->data_dir);
        return 0;
}

/* The merged layer takes its name, the old ones move aside, and metadata
 * lists the one layer instead of the range (the commit point). */
static int squash_commit(struct squash *q, char **ret_error)
{
        struct migrate *m = q->m;
        _cleanup_(layer_metadata_done) struct layer_metadata md = {};
        struct layer_entry e = {};
        int r;

        if (renameat(m->layers_fd, q->tmp, m->layers_fd, q->dir) < 0)
                return set_error_message(ret_error, -errno, "cannot rename '%s' to '%s' in '%s/%s'",
                                         q->tmp, q->dir, m->data_dir, MIGRATE_LAYERS);
        r = migrate_move_layers_aside(m, q->from, q->to + 1, ret_error);
        if (r < 0)
                return r;
        migrate_test_kill_point("squash-renamed");

        r = migrate_metadata_copy(&m->md, &md);
        if (r < 0)
                return r;
        e.id = TAKE_PTR(q->id);
        e.dir = TAKE_PTR(q->dir);
        e.migrations = TAKE_PTR(q->migrations);
        e.applied_at = md.layers[q->to].applied_at;
        e.duration_ms = q->duration;
        memcpy(e.changes, q->changes.counts, sizeof(e.changes));
        for (size_t i = q->from; i <= q->to; i++)
                migrate_layer_entry_free(&md.layers[i]);
        md.layers[q->from] = e;
        memmove(&md.layers[q->from + 1], &md.layers[q->to + 1],
                (md.n_layers - q->to - 1) * sizeof(struct layer_entry));
        md.n_layers -= q->to - q->from;
        return migrate_commit(m, &md, ret_error);
}

int migrate_squash_range(struct migrate *m, size_t from, size_t to, char **ret_error)
{
        _cleanup_(squash_done) struct squash q = {.m = m, .from = from, .to = to, .tfd = -1};
        int r;

        if (from >= to || to >= m->md.n_layers)
                return set_error_message(ret_error, -EINVAL, "nothing to squash");
        r = squash_name(&q, ret_error);
        if (r >= 0)
                r = squash_merge(&q, ret_error);
        if (r >= 0)
                r = squash_write(&q, ret_error);
        if (r >= 0)
                r = squash_commit(&q, ret_error);
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
