/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* up --audit: which program changed which path, kept as the record's
 * audit.list; verify's repair of what a killed audited run left. */
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "cleanup.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "migrate-internal.h"
#include "statepath.h"
#include "strv.h"

static struct audit_daemon *daemon_free(struct audit_daemon *d)
{
        if (d) {
                audit_daemon_release(d);
                free(d);
        }
        return NULL;
}

int migrate_audit_start(struct migrate *m, char **ret_error)
{
        _cleanup_free_ char *line = NULL;
        int r;

        if (m->audit)
                return 0;
        m->audit = calloc(1, sizeof(*m->audit));
        if (!m->audit)
                return -ENOMEM;
        r = audit_daemon_acquire(m->o.audit_config, m->audit, ret_error);
        if (r < 0) {
                /* the message says why audit cannot be used: a failure of
                 * --audit, not of strata (exit 1) */
                m->audit = daemon_free(m->audit);
                return r == -ENOMEM ? r : -EOPNOTSUPP;
        }
        if (!m->audit->started)
                return 0;
        /* what verify stops when we are killed before audit_daemon_release */
        if (asprintf(&line, "%d %llu %u\n", (int)m->audit->pid,
                     (unsigned long long)m->audit->starttime, m->audit->was_enabled) < 0)
                return -ENOMEM;
        r = write_file_atomic_at(m->data_fd, MIGRATE_AUDIT_DAEMON, line, strlen(line), 0644);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write '%s/%s'", m->data_dir,
                                         MIGRATE_AUDIT_DAEMON);
        return 0;
}

void migrate_audit_stop(struct migrate *m)
{
        bool started = m->audit && m->audit->started;

        m->audit = daemon_free(m->audit);
        if (started)
                (void)unlinkat(m->data_fd, MIGRATE_AUDIT_DAEMON, 0);
}

int migrate_audit_begin(struct migrate *m, const char *id, struct audit_session *ret,
                        char **ret_error)
{
        _cleanup_free_ char *key = NULL;

        if (asprintf(&key, MIGRATE_AUDIT_PREFIX "%s", id) < 0)
                return -ENOMEM;
        return audit_session_begin(m->audit, key, ret, ret_error);
}

/* The inodes of the trees the sandbox's root was made of, for the names
 * the audit records place only by inode (relative to a directory fd):
 * built on the first look-up. The overlay shows a directory or file by
 * the inode number of its lower origin or of its upper copy, unchanged
 * when all its layers share one file system; on another file system than
 * the upper's, xino puts the layer's number in the high bits (the low 32
 * still the real inode's). Hard links: the first path found. */
struct tree_inode {
        uint64_t ino;
        size_t order;
        bool upper_fs; /* on the upper's file system */
        char *path;
};

struct tree_index {
        struct migrate *m;
        const char *upper;
        bool built;
        struct tree_inode *items;
        size_t n, allocated;
};

/* Deep enough for any real tree; a loop cannot happen (no symlinks are
 * followed), this only bounds the recursion. */
#define TREE_DEPTH_MAX 256

static int tree_index_add(struct tree_index *x, uint64_t ino, bool upper_fs, char *path)
{
        if (x->n == x->allocated) {
                size_t a = x->allocated ? x->allocated * 2 : 4096;
                struct tree_inode *t = realloc(x->items, a * sizeof(*t));

                if (!t) {
                        free(path);
                        return -ENOMEM;
                }
                x->items = t;
                x->allocated = a;
        }
        x->items[x->n] = (struct tree_inode){ino, x->n, upper_fs, path};
        x->n++;
        return 0;
}

static int tree_index_walk(struct tree_index *x, int dfd, dev_t dev, const char *path,
                           bool upper_fs, unsigned depth)
{
        _cleanup_strv_ char **names = NULL;
        int r;

        r = dir_list_fd(dfd, &names);
        if (r < 0 || !names)
                return r == -ENOMEM ? r : 0;
        STRV_FOREACH (n, names) {
                _cleanup_close_ int sub = -1;
                struct stat st;
                char *p;

                if (fstatat(dfd, *n, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (S_ISCHR(st.st_mode) && st.st_rdev == 0) /* a whiteout */
                        continue;
                if (asprintf(&p, "%s/%s", path, *n) < 0)
                        return -ENOMEM;
                r = tree_index_add(x, st.st_ino, upper_fs, p);
                if (r < 0)
                        return r;
                if (!S_ISDIR(st.st_mode) || st.st_dev != dev || depth >= TREE_DEPTH_MAX)
                        continue;
                sub = openat(dfd, *n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0)
                        continue;
                r = tree_index_walk(x, sub, dev, x->items[x->n - 1].path, upper_fs, depth + 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int tree_inode_cmp(const void *a, const void *b)
{
        const struct tree_inode *x = a, *y = b;

        if (x->ino != y->ino)
                return x->ino < y->ino ? -1 : 1;
        return x->order < y->order ? -1 : x->order > y->order;
}

static int tree_index_build(struct tree_index *x)
{
        _cleanup_(migrate_lowers_done) struct migrate_lowers lowers = {};
        _cleanup_close_ int ufd = -1;
        struct stat ust;
        int r;

        x->built = true;
        ufd = migrate_open_dir_at(AT_FDCWD, x->upper);
        if (ufd < 0 || fstat(ufd, &ust) < 0)
                return 0;
        r = migrate_lowers_open(x->m, x->m->md.n_layers, &lowers, NULL);
        if (r < 0)
                return r == -ENOMEM ? r : 0;
        for (size_t i = 0; i <= lowers.n; i++) {
                int fd = i == 0 ? ufd : lowers.fds[i - 1];
                struct stat st;
                char *root;

                if (fstat(fd, &st) < 0)
                        continue;
                root = strdup("/");
                if (!root)
                        return -ENOMEM;
                r = tree_index_add(x, st.st_ino, st.st_dev == ust.st_dev, root);
                if (r >= 0)
                        r = tree_index_walk(x, fd, st.st_dev, "", st.st_dev == ust.st_dev, 0);
                if (r < 0)
                        return r;
        }
        qsort(x->items, x->n, sizeof(*x->items), tree_inode_cmp);
        log_debug("audit: %zu inodes of '%s' and its %zu lower dirs indexed", x->n, x->upper,
                  lowers.n);
        return 0;
}

/* The first entry (in tree order) with inode ino and the given upper_fs;
 * real is the inode to look for (ino, or its low 32 bits under xino). */
static const struct tree_inode *tree_index_find(const struct tree_index *x, uint64_t real,
                                                bool upper_fs)
{
        size_t lo = 0, hi = x->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (x->items[mid].ino < real)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (; lo < x->n && x->items[lo].ino == real; lo++)
                if (x->items[lo].upper_fs == upper_fs)
                        return &x->items[lo];
        return NULL;
}

static char *tree_inode_path(uint64_t ino, void *userdata)
{
        struct tree_index *x = userdata;
        const struct tree_inode *t;

        if (!x->built && tree_index_build(x) < 0)
                return NULL;
        t = tree_index_find(x, ino, true);
        if (!t && (ino >> 32) != 0)
                t = tree_index_find(x, ino & 0xffffffffu, false);
        return t ? strdup(t->path[0] ? t->path : "/") : NULL;
}

static void tree_index_done(struct tree_index *x)
{
        for (size_t i = 0; i < x->n; i++)
                free(x->items[i].path);
        free(x->items);
}

int migrate_audit_finish(struct migrate *m, struct audit_session *s, pid_t init_pid,
                         char *const *state_paths, const char *upper, int tfd, const char *tmp_abs,
                         char **ret_error)
{
        _cleanup_(audit_list_done) struct audit_list l = {};
        _cleanup_(tree_index_done) struct tree_index index = {.m = m, .upper = upper};
        const struct audit_resolver resolver = {tree_inode_path, &index};
        _cleanup_free_ char *text = NULL;
        /* our own processes: this one (its log thread too) and the
         * sandbox's init, which builds the root before the script runs */
        const pid_t skip[] = {getpid(), init_pid};
        int r;

        r = audit_session_end(s, skip, init_pid > 0 ? 2 : 1, &resolver, &l, ret_error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l.n; i++)
                l.items[i].state = state_path_covered(state_paths, l.items[i].path);
        r = audit_list_format(&l, &text);
        if (r >= 0)
                r = migrate_write_plain_at(tfd, "record/" MIGRATE_AUDIT_LIST, text, strlen(text),
                                           0644);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write '%s/record/%s'", tmp_abs,
                                         MIGRATE_AUDIT_LIST);
        log_debug("%s: %zu audited changes", s->key, l.n);
        return 0;
}

/* verify: the rules of audited runs that were killed (their session is
 * gone) and the auditd such a run started. Without a usable audit there is
 * nothing to repair from here. */
int migrate_audit_repair(struct migrate *m)
{
        _cleanup_strv_ char **keys = NULL;
        _cleanup_free_ char *text = NULL;
        int r;

        r = audit_rules_sweep(MIGRATE_AUDIT_PREFIX, &keys);
        if (r < 0)
                log_debug_errno(r, "no audit rules checked: %m");
        STRV_FOREACH (k, keys) {
                _cleanup_free_ char *msg = NULL;

                if (asprintf(&msg, "removed the audit rules keyed '%s' of a run that is gone", *k) <
                    0)
                        return -ENOMEM;
                migrate_emit(m, MIGRATE_EVENT_REPAIRED, *k + strlen(MIGRATE_AUDIT_PREFIX), msg, 0,
                             NULL);
        }
        if (read_file_at(m->data_fd, MIGRATE_AUDIT_DAEMON, 4096, &text, NULL) >= 0) {
                _cleanup_free_ char *msg = NULL;
                unsigned long long start = 0;
                unsigned enabled = 1;
                int pid = 0;

                if (m->audit && m->audit->started) /* our own, running now */
                        return 0;
                if (sscanf(text, "%d %llu %u", &pid, &start, &enabled) >= 2 && pid > 0 &&
                    audit_daemon_stop_recorded(pid, start, enabled) > 0 &&
                    asprintf(&msg,
                             "stopped the audit daemon (pid %d) an interrupted --audit run "
                             "started",
                             pid) >= 0)
                        migrate_emit(m, MIGRATE_EVENT_REPAIRED, NULL, msg, 0, NULL);
                (void)unlinkat(m->data_fd, MIGRATE_AUDIT_DAEMON, 0);
        }
        return 0;
}

int migrate_audit_list(struct migrate *m, const char *id, struct audit_list *ret, char **ret_error)
{
        const struct layer_entry *e = NULL;
        struct audit_list l = {};
        bool any = false;
        int i;

        i = layer_metadata_find_migration(&m->md, id);
        if (i < 0)
                for (size_t k = 0; k < m->md.n_layers; k++)
                        if (streq(m->md.layers[k].id, id))
                                i = (int)k;
        if (i < 0)
                return set_error_message(ret_error, -ENOENT, "migration '%s' is not applied", id);
        e = &m->md.layers[i];
        STRV_FOREACH (mid, e->migrations) {
                _cleanup_free_ char *path = NULL, *text = NULL;
                _cleanup_(audit_list_done) struct audit_list one = {};
                unsigned line = 0;
                int r;

                if (asprintf(&path, "%s/" MIGRATE_AUDIT_LIST, *mid) < 0)
                        return -ENOMEM;
                r = read_file_at(m->records_fd, path, CHANGES_MAX, &text, NULL);
                if (r == -ENOENT)
                        continue;
                if (r >= 0)
                        r = audit_list_parse(text, &one, &line);
                if (r < 0) {
                        audit_list_done(&l);
                        if (r == -EBADMSG)
                                return set_error_message(ret_error, r,
                                                         "'%s/%s/%s' line %u is malformed",
                                                         m->data_dir, MIGRATE_RECORDS, path, line);
                        return set_error_message(ret_error, r, "cannot read '%s/%s/%s'",
                                                 m->data_dir, MIGRATE_RECORDS, path);
                }
                any = true;
                for (size_t k = 0; k < one.n; k++) {
                        const struct audit_entry *x = &one.items[k];

                        r = audit_list_add(&l, x->action, x->state, x->pid, x->exe, x->path);
                        if (r < 0) {
                                audit_list_done(&l);
                                return r;
                        }
                }
        }
        if (!any)
                return set_error_message(ret_error, -EOPNOTSUPP,
                                         "migration '%s' was not applied with --audit: it has no "
                                         "%s",
                                         id, MIGRATE_AUDIT_LIST);
        *ret = l;
        return 0;
}
