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
#include "strv.h"

int migrate_rollback(struct migrate *m, const char *to, char **ret_error)
{
        _cleanup_(layer_metadata_done) struct layer_metadata md = {};
        _cleanup_strv_ char **gone = NULL; /* the rolled-back migrations, newest first */
        size_t keep;
        int i, r, n;

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
        if (keep == m->md.n_layers)
                return 0;

        r = migrate_lock_machine(m, "rollback", ret_error);
        if (r < 0)
                return r;
        migrate_lock_describe(m, "rollback");
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
