/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A migration's changes to existing state (specs/migrate.md, "Success"):
 * captured from the state overlays' scratch uppers, applied to <data>/state
 * after the commit point (modified entries replaced by rename, deletions
 * moved away), their pre-images kept in the record (state-before/) for
 * `rollback --state`.
 *
 * The record's state.list says what to apply, one line per change:
 * "K SHA PATH" with K one of M D R, SHA the sha256 of the new content of a
 * regular file or of a symlink's target ("-" otherwise), PATH absolute (a
 * newline or backslash written as "\n" or "\\"). Applying it is idempotent:
 * verify re-runs it after a crash.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "changes.h"
#include "cleanup.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "migrate-internal.h"
#include "sha256.h"
#include "squash.h"
#include "strv.h"

#define STATE_LIST   "state.list"
#define STATE_BEFORE "state-before"
#define STATE_KEPT   "system/state-kept"

/* The sha256 of a regular file's content or a symlink's target. */
static int entry_sha(int dirfd, const char *path, char ret[SHA256_HEX_SIZE])
{
        struct stat st;
        char buf[4096];
        ssize_t n;

        if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (S_ISREG(st.st_mode))
                return sha256_file_hex_at(dirfd, path, ret);
        if (!S_ISLNK(st.st_mode))
                return -ENOTSUP;
        n = readlinkat(dirfd, path, buf, sizeof(buf));
        if (n < 0)
                return -errno;
        sha256_hex(buf, (size_t)n, ret);
        return 0;
}

void migrate_state_list_line(FILE *f, const struct change *c, int dirfd, const char *upper)
{
        char sha[SHA256_HEX_SIZE] = "-";

        if (!c->state || c->kind == CHANGE_ADDED)
                return;
        if (c->kind == CHANGE_MODIFIED && entry_sha(dirfd, upper, sha) < 0)
                strcpy(sha, "-");
        fprintf(f, "%c %s ", change_kind_to_char(c->kind), sha);
        changes_write_path(f, c->path);
        fputc('\n', f);
}

struct state_op {
        enum change_kind kind;
        char sha[SHA256_HEX_SIZE];
        char *rel; /* relative to <data>/state */
};

static void state_ops_free(struct state_op *ops, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(ops[i].rel);
        free(ops);
}

/* Reads records/<id>/state.list; a missing file is no op. */
static int state_ops_load(struct migrate *m, const char *id, struct state_op **ret, size_t *ret_n,
                          char **ret_error)
{
        _cleanup_free_ char *path = NULL, *text = NULL;
        struct state_op *ops = NULL;
        size_t n = 0, lines = 0;
        const char *p;
        int r;

        if (asprintf(&path, "%s/" STATE_LIST, id) < 0)
                return -ENOMEM;
        r = read_file_at(m->records_fd, path, CHANGES_MAX, &text, NULL);
        if (r == -ENOENT) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (r < 0)
                return set_error_message(ret_error, r, "cannot read '%s/%s/%s'", m->data_dir,
                                         MIGRATE_RECORDS, path);
        for (p = text; *p; p++)
                lines += *p == '\n';
        ops = calloc(lines + 1, sizeof(*ops));
        if (!ops)
                return -ENOMEM;
        for (p = text; *p;) {
                size_t len = strcspn(p, "\n");
                int k = len >= 5 && p[1] == ' ' ? change_kind_from_char(p[0]) : -EINVAL;
                const char *sp = k >= 0 ? strchr(p + 2, ' ') : NULL;
                char *rel;

                if (k < 0 || !sp || sp - (p + 2) >= SHA256_HEX_SIZE || sp[1] != '/') {
                        state_ops_free(ops, n);
                        return set_error_message(ret_error, -EBADMSG, "'%s/%s/%s' is malformed",
                                                 m->data_dir, MIGRATE_RECORDS, path);
                }
                memcpy(ops[n].sha, p + 2, (size_t)(sp - (p + 2)));
                rel = malloc(len);
                if (!rel) {
                        state_ops_free(ops, n);
                        return -ENOMEM;
                }
                changes_unescape_path(sp + 2, (size_t)(p + len - (sp + 2)), rel);
                ops[n].kind = (enum change_kind)k;
                ops[n].rel = rel;
                n++;
                p += len;
                if (*p == '\n')
                        p++;
        }
        *ret = ops;
        *ret_n = n;
        return 0;
}

static bool exists_at(int dirfd, const char *path, struct stat *st)
{
        struct stat dummy;

        return fstatat(dirfd, path, st ? st : &dummy, AT_SYMLINK_NOFOLLOW) >= 0;
}

/* One op, idempotently: keep the pre-image (a hard link of a file, so the
 * new content replaces it atomically; a rename otherwise), then rename the
 * new content from state-pending into place. */
static int state_op_apply(int sfd, int pfd, int rfd, const struct state_op *op)
{
        _cleanup_free_ char *pre = NULL;
        struct stat tst, nst;
        bool target, fresh;
        int r;

        if (asprintf(&pre, STATE_BEFORE "/%s", op->rel) < 0)
                return -ENOMEM;
        target = exists_at(sfd, op->rel, &tst);
        fresh = op->kind != CHANGE_DELETED && exists_at(pfd, op->rel, &nst);
        if (op->kind != CHANGE_DELETED && !fresh)
                return 0; /* applied before */
        if (target && !exists_at(rfd, pre, NULL)) {
                r = mkdir_parents_at(rfd, pre, 0755);
                if (r < 0)
                        return r;
                if (op->kind == CHANGE_MODIFIED && !S_ISDIR(tst.st_mode)) {
                        if (linkat(sfd, op->rel, rfd, pre, 0) < 0)
                                return -errno;
                } else {
                        if (renameat(sfd, op->rel, rfd, pre) < 0)
                                return -errno;
                        target = false;
                }
        }
        if (op->kind == CHANGE_DELETED)
                return 0;
        /* A file (linked as pre-image) in the way of a new dir. */
        if (target && S_ISDIR(nst.st_mode) && !S_ISDIR(tst.st_mode) &&
            unlinkat(sfd, op->rel, 0) < 0 && errno != ENOENT)
                return -errno;
        r = mkdir_parents_at(sfd, op->rel, 0755);
        if (r < 0)
                return r;
        if (renameat(pfd, op->rel, sfd, op->rel) < 0)
                return -errno;
        return 0;
}

int migrate_state_apply(struct migrate *m, const char *id, int sfd, int pfd, char **ret_error)
{
        _cleanup_close_ int rfd = -1;
        struct state_op *ops = NULL;
        size_t n = 0;
        int r;

        r = state_ops_load(m, id, &ops, &n, ret_error);
        if (r < 0 || n == 0)
                return r;
        rfd = migrate_open_dir_at(m->records_fd, id);
        if (rfd < 0) {
                state_ops_free(ops, n);
                return set_error_message(ret_error, rfd, "cannot open '%s/%s/%s'", m->data_dir,
                                         MIGRATE_RECORDS, id);
        }
        for (size_t i = 0; i < n; i++) {
                r = state_op_apply(sfd, pfd, rfd, &ops[i]);
                if (r < 0) {
                        set_error_message(ret_error, r,
                                          "cannot apply the state change %c '/%s' of '%s' to "
                                          "'%s/state'",
                                          change_kind_to_char(ops[i].kind), ops[i].rel, id,
                                          m->data_dir);
                        break;
                }
        }
        state_ops_free(ops, n);
        if (r >= 0 && syncfs(rfd) < 0)
                r = set_error_message(ret_error, -errno, "cannot sync '%s/%s/%s'", m->data_dir,
                                      MIGRATE_RECORDS, id);
        return r;
}

/* Moves a pre-image that is not put back to <data>/system/state-kept/<id>/,
 * so that nothing is lost; returns its path there (or NULL). */
static char *keep_pre_image(struct migrate *m, int rfd, const char *id, const char *pre,
                            const char *rel)
{
        _cleanup_free_ char *kept = NULL;

        if (asprintf(&kept, STATE_KEPT "/%s/%s", id, rel) < 0)
                return NULL;
        if (mkdir_parents_at(m->data_fd, kept, 0755) < 0 ||
            renameat(rfd, pre, m->data_fd, kept) < 0)
                return NULL;
        return TAKE_PTR(kept);
}

int migrate_state_restore(struct migrate *m, const char *id, char **ret_error)
{
        _cleanup_close_ int rfd = -1, sfd = -1;
        struct state_op *ops = NULL;
        size_t n = 0;
        int r, restored = 0;

        r = state_ops_load(m, id, &ops, &n, ret_error);
        if (r < 0 || n == 0)
                return r;
        rfd = migrate_open_dir_at(m->records_fd, id);
        sfd = migrate_open_dir_at(m->data_fd, "state");
        if (rfd < 0 || sfd < 0) {
                state_ops_free(ops, n);
                return set_error_message(ret_error, rfd < 0 ? rfd : sfd,
                                         "cannot open the record of '%s' or '%s/state'", id,
                                         m->data_dir);
        }
        for (size_t i = n; i > 0; i--) {
                const struct state_op *op = &ops[i - 1];
                _cleanup_free_ char *pre = NULL, *msg = NULL, *kept = NULL;
                char sha[SHA256_HEX_SIZE];
                struct stat st;
                const char *why = NULL;

                if (asprintf(&pre, STATE_BEFORE "/%s", op->rel) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (!exists_at(rfd, pre, NULL))
                        continue; /* nothing was there before */
                if (op->kind == CHANGE_DELETED) {
                        if (exists_at(sfd, op->rel, NULL))
                                why = "it was created again since";
                } else if (!exists_at(sfd, op->rel, &st))
                        why = "it was deleted since";
                else if (S_ISDIR(st.st_mode))
                        why = "a replaced directory is not compared";
                else if (streq(op->sha, "-") || entry_sha(sfd, op->rel, sha) < 0 ||
                         !streq(sha, op->sha))
                        why = "it changed since";
                if (why) {
                        kept = keep_pre_image(m, rfd, id, pre, op->rel);
                        if (asprintf(&msg,
                                     "kept '%s/state/%s' as it is (%s): its content before '%s' is "
                                     "in '%s/%s'",
                                     m->data_dir, op->rel, why, id, m->data_dir,
                                     kept ? kept : "(could not be moved)") < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        migrate_emit(m, MIGRATE_EVENT_PROBLEM, id, msg, 0, NULL);
                        continue;
                }
                r = mkdir_parents_at(sfd, op->rel, 0755);
                if (r >= 0 && renameat(rfd, pre, sfd, op->rel) < 0)
                        r = negative_errno();
                if (r < 0) {
                        set_error_message(ret_error, r, "cannot put back '%s/state/%s' from '%s'",
                                          m->data_dir, op->rel, id);
                        break;
                }
                if (asprintf(&msg, "put back '%s/state/%s' as it was before '%s'", m->data_dir,
                             op->rel, id) < 0) {
                        r = -ENOMEM;
                        break;
                }
                migrate_emit(m, MIGRATE_EVENT_REPAIRED, id, msg, 0, NULL);
                restored++;
        }
        state_ops_free(ops, n);
        if (r >= 0 && syncfs(sfd) < 0)
                r = set_error_message(ret_error, -errno, "cannot sync '%s/state'", m->data_dir);
        return r < 0 ? r : restored;
}

/* Removes what only an overlay upper needs from a merged tree: whiteouts
 * (the merge already starts at the bottom of the stack) and the overlay's
 * own xattrs (opaque). */
static int strip_overlay_marks(int dfd)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int r;

        (void)fremovexattr(dfd, "trusted.overlay.opaque");
        d = fdopendir(fcntl(dfd, F_DUPFD_CLOEXEC, 3));
        if (!d)
                return -errno;
        while ((errno = 0, de = readdir(d))) {
                _cleanup_close_ int cfd = -1;
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                if (changes_is_whiteout_at(dirfd(d), de->d_name, &st)) {
                        if (unlinkat(dirfd(d), de->d_name, 0) < 0)
                                return -errno;
                        continue;
                }
                if (!S_ISDIR(st.st_mode))
                        continue;
                cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                if (cfd < 0)
                        return -errno;
                r = strip_overlay_marks(cfd);
                if (r < 0)
                        return r;
        }
        return errno ? -errno : 0;
}

static bool dir_empty_at(int dirfd, const char *path)
{
        _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;

        if (fd < 0)
                return errno == ENOENT;
        d = fdopendir(TAKE_FD(fd));
        if (!d)
                return false;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        return false;
        return true;
}

int migrate_state_seed(struct migrate *m, const int *lower_fds, size_t n_lowers, const char *path,
                       int dst_fd, const char *dst, char **ret_error)
{
        const char *rel = path + 1;
        size_t bottom = 0, top;
        bool found = false;
        int r;

        /* The state dir must be new (missing or empty) and the stack must
         * show a non-empty directory at path. */
        if (!changes_path_in_lowers(lower_fds, n_lowers, path))
                return 0;
        {
                _cleanup_free_ char *sp = NULL;

                if (asprintf(&sp, "state%s", path) < 0)
                        return -ENOMEM;
                if (!dir_empty_at(m->data_fd, sp))
                        return 0;
        }
        /* The layers that contribute, newest first: down to the first that
         * has an opaque dir (or the base). */
        for (top = 0; top < n_lowers; top++) {
                _cleanup_close_ int fd = -1;
                struct stat st;

                if (fstatat(lower_fds[top], rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (!S_ISDIR(st.st_mode))
                        break;
                if (!found)
                        found = true;
                bottom = top;
                fd = openat(lower_fds[top], rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                if (fd >= 0 && changes_is_opaque_fd(fd))
                        break;
        }
        if (!found)
                return 0;
        /* Oldest first, with overlay semantics (squash.h). */
        r = rm_rf_at(dst_fd, dst, RM_ROOT | RM_MISSING_OK);
        for (size_t i = bottom + 1; r >= 0 && i > 0; i--) {
                struct stat st;

                if (fstatat(lower_fds[i - 1], rel, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISDIR(st.st_mode))
                        continue;
                if (!exists_at(dst_fd, dst, NULL))
                        r = squash_start_at(lower_fds[i - 1], rel, dst_fd, dst);
                else
                        r = squash_apply_at(lower_fds[i - 1], rel, dst_fd, dst);
        }
        if (r >= 0) {
                _cleanup_close_ int fd =
                    openat(dst_fd, dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

                r = fd < 0 ? -errno : strip_overlay_marks(fd);
        }
        if (r < 0)
                return set_error_message(
                    ret_error, r, "cannot seed the state path '%s' from the layers below", path);
        return dir_empty_at(dst_fd, dst) ? 0 : 1;
}
