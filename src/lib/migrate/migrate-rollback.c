/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* rollback: deactivates the layers above a migration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "migrate-internal.h"
#include "migrate.h"
#include "statepath.h"
#include "strv.h"

/* A state path that a rolled-back layer declared (gone) leaves the
 * metadata when no active layer declares it and the machine-wide list does
 * not name it. When a layer.json cannot be read, every path stays (keeping
 * a binding loses nothing). */
static int keep_declared_state_paths(struct migrate *m, struct layer_metadata *md,
                                     char *const *gone)
{
        _cleanup_strv_ char **keep = NULL, **kept = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        r = state_path_machine_list(m->data_fd, &keep, &error);
        if (r < 0)
                return 0;
        for (size_t i = 0; i < md->n_layers; i++) {
                _cleanup_strv_ char **sp = NULL;

                if (migrate_layer_state_paths(m, &md->layers[i], &sp) < 0)
                        return 0;
                r = state_path_merge(&keep, sp);
                if (r < 0)
                        return r;
        }
        STRV_FOREACH (p, md->state_paths)
                if ((!strv_contains(gone, *p) || strv_contains(keep, *p)) &&
                    strv_extend(&kept, *p) < 0)
                        return -ENOMEM;
        strv_free(md->state_paths);
        md->state_paths = TAKE_PTR(kept);
        return 0;
}

static int rollback_keep(struct migrate *m, size_t keep, char **ret_error);

int migrate_rollback_all(struct migrate *m, char **ret_error)
{
        if (m->md.n_layers == 0)
                return set_error_message(ret_error, -ENOENT, "no migration is applied");
        return rollback_keep(m, 0, ret_error);
}

int migrate_rollback(struct migrate *m, const char *to, char **ret_error)
{
        size_t keep;
        int i;

        if (m->md.n_layers == 0)
                return set_error_message(ret_error, -ENOENT, "no migration is applied");
        if (to) {
                const struct layer_entry *e;

                i = layer_metadata_find_migration(&m->md, to);
                if (i < 0)
                        return set_error_message(ret_error, -ENOENT,
                                                 "migration '%s' is not applied", to);
                e = &m->md.layers[i];
                if (!streq(e->migrations[strv_length(e->migrations) - 1], to))
                        return set_error_message(
                            ret_error, -EINVAL,
                            "'%s' is inside the squashed layer '%s': roll back to its "
                            "last migration or below it",
                            to, e->id);
                keep = (size_t)i + 1;
        } else
                keep = m->md.n_layers - 1;
        return rollback_keep(m, keep, ret_error);
}

/* Deactivates the active layers [keep, n_layers). */
static int rollback_keep(struct migrate *m, size_t keep, char **ret_error)
{
        _cleanup_(layer_metadata_done) struct layer_metadata md = {};
        _cleanup_strv_ char **gone = NULL;       /* the rolled-back migrations, newest first */
        _cleanup_strv_ char **gone_state = NULL; /* the state paths they declared */
        int r, n;

        if (keep == m->md.n_layers)
                return 0;

        r = migrate_lock_machine(m, "rollback", ret_error);
        if (r < 0)
                return r;
        migrate_lock_describe(m, "rollback");
        for (size_t k = keep; k < m->md.n_layers; k++) {
                _cleanup_strv_ char **sp = NULL;

                if (migrate_layer_state_paths(m, &m->md.layers[k], &sp) >= 0 &&
                    state_path_merge(&gone_state, sp) < 0)
                        return -ENOMEM;
        }
        r = migrate_move_layers_aside(m, keep, m->md.n_layers, ret_error);
        if (r < 0)
                return r;
        migrate_test_kill_point("rollback-renamed");

        r = migrate_metadata_copy(&m->md, &md);
        if (r < 0)
                return r;
        for (size_t k = md.n_layers; k > keep; k--)
                for (size_t j = strv_length(md.layers[k - 1].migrations); j > 0; j--)
                        if (strv_extend(&gone, md.layers[k - 1].migrations[j - 1]) < 0)
                                return -ENOMEM;
        for (size_t k = keep; k < md.n_layers; k++) {
                STRV_FOREACH (s, md.layers[k].migrations) {
                        if (strv_contains(md.rolled_back, *s))
                                continue;
                        r = strv_extend(&md.rolled_back, *s);
                        if (r < 0)
                                return r;
                }
                migrate_layer_entry_free(&md.layers[k]);
        }
        n = (int)(md.n_layers - keep);
        md.n_layers = keep;
        r = keep_declared_state_paths(m, &md, gone_state);
        if (r < 0)
                return r;
        r = migrate_commit(m, &md, ret_error);
        if (r < 0)
                return r;
        /* With restore_state, the state the rolled-back migrations changed
         * is put back from their records, newest first, before the records
         * go. */
        if (m->o.restore_state)
                STRV_FOREACH (s, gone) {
                        r = migrate_state_restore(m, *s, ret_error);
                        if (r < 0)
                                return r;
                }
        /* The records of the rolled-back migrations go (verify would too). */
        STRV_FOREACH (s, m->md.rolled_back)
                if (!migrate_is_applied(&m->md, *s))
                        (void)rm_rf_at(m->records_fd, *s, RM_ROOT | RM_MISSING_OK);
        return n;
}
