/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The change list of a layer, computed from its overlay upper dir alone
 * (the upper dir is exactly what changed):
 *
 *   A  added: no lower layer (nor the base) has the path
 *   M  modified: a lower layer or the base has it (directories that were
 *      only copied up for a change below them are M too)
 *   D  deleted: an overlay whiteout (char device 0/0, or a zero-size file
 *      with the trusted.overlay.whiteout xattr)
 *   R  replaced directory: an opaque dir (trusted.overlay.opaque = "y")
 *
 * changes.list has one line per path sorted by path: the letter, a space,
 * the absolute path as seen inside the machine ("A /opt/app/config"); a
 * newline or backslash in a name is written as "\n" or "\\".
 *
 * A migration's changes to existing state (<data>/state, under a state
 * path) are listed too, with the marker 'S' before the letter
 * ("SM /var/lib/pg/data/postgresql.conf", "SD /var/lib/app/cache"); they are
 * counted in state_counts, not in counts.
 */

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

enum change_kind {
        CHANGE_ADDED,
        CHANGE_MODIFIED,
        CHANGE_DELETED,
        CHANGE_REPLACED,
        _CHANGE_KIND_MAX,
};

struct change {
        enum change_kind kind;
        char *path;
        bool state; /* a change to <data>/state ('S' marker) */
};

struct change_list {
        struct change *items; /* sorted by path after capture */
        size_t n, allocated;
        unsigned counts[_CHANGE_KIND_MAX];
        unsigned state_counts[_CHANGE_KIND_MAX];
        uint64_t bytes; /* sum of the sizes of the regular files in the layer */
};

char change_kind_to_char(enum change_kind k);
int change_kind_from_char(char c);

/* Whether the entry name in dirfd (with its lstat st) is an overlay
 * whiteout, in either form. */
bool changes_is_whiteout_at(int dirfd, const char *name, const struct stat *st);
/* Whether the directory fd is opaque ("y"). */
bool changes_is_opaque_fd(int fd);

/* Reads the next entry of d, the upper's dir at the absolute path prefix
 * ("" for the upper itself), "." and ".." passed over: 1 with its dirent
 * in *ret_de, its lstat in *ret_st and, unless ret_path is NULL, its path
 * "PREFIX/NAME" in *ret_path (the caller's to free; without ret_path,
 * prefix may be NULL); 0 after the last entry; -errno. Each walk of an
 * upper dir or a layer (the capture, the scratch upper's count and
 * overrides, a manifest, a squash, a state path's diff and move) reads
 * its dirs this way. */
int changes_next_entry(DIR *d, const char *prefix, struct dirent **ret_de, struct stat *ret_st,
                       char **ret_path);

/* Whether the absolute path exists in the stack lower_fds (directory fds,
 * newest first, the base last), honouring whiteouts and opaque dirs of
 * the layers above. */
bool changes_path_in_lowers(const int *lower_fds, size_t n_lowers, const char *path);

/* Captures the changes of the upper dir at (dirfd, upper) over the stack
 * lower_fds (newest first, base last; may be empty). Paths in prune
 * (absolute, normalized; may be NULL) are listed but not descended. */
int changes_capture_at(int dirfd, const char *upper, const int *lower_fds, size_t n_lowers,
                       char *const *prune, struct change_list *ret);

/* Called by the capture once for each entry of the upper it looks at
 * (name in the open dir dirfd, its absolute path and lstat), so that one
 * walk of the tree serves more than the change list (manifest_add_at). A
 * negative return stops the capture with it. */
typedef int (*changes_visit_fn)(int dirfd, const char *name, const char *path,
                                const struct stat *st, void *userdata);

/* changes_capture_at, calling visit (may be NULL) for each entry. */
int changes_capture_visit_at(int dirfd, const char *upper, const int *lower_fds, size_t n_lowers,
                             char *const *prune, changes_visit_fn visit, void *userdata,
                             struct change_list *ret);

/* Adds a change (path is copied); the list is sorted by changes_sort. */
int changes_add(struct change_list *l, enum change_kind k, bool state, const char *path);
void changes_sort(struct change_list *l);

/* Writes path to f as the changes.list format does: a newline in it as
 * "\n", a backslash as "\\" (so that a line holds one path). */
void changes_write_path(FILE *f, const char *path);
/* Undoes changes_write_path for the len bytes at s: the path, NUL-ended,
 * in ret (room for len + 1 bytes). */
void changes_unescape_path(const char *s, size_t len, char *ret);

/* Renders the list in the changes.list format. */
int changes_format(const struct change_list *l, char **ret);
/* Parses the changes.list format (counts filled, bytes 0). -EBADMSG with
 * the line number in *ret_line on a malformed line. */
int changes_parse(const char *text, struct change_list *ret, unsigned *ret_line);

void change_list_done(struct change_list *l);
