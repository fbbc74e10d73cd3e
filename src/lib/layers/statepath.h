/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * State paths: directories whose content is mutable state, kept under
 * <data>/state/<path> and bound over <path> at boot, never inside a layer.
 * A machine has a machine-wide list (the file <data>/system/state-paths,
 * one absolute path a line, '#' comments; when missing: /home, /root,
 * /var/log) and each migration may add its own (its `state` file).
 */

#include <stdbool.h>

#include "changes.h"

#define STATE_PATHS_FILE "system/state-paths"

/* Parses the text of a state file: one absolute path a line, '#' comments
 * and blank lines ignored. Paths are normalized ("//" and trailing '/'
 * removed); ".", "..", "/" itself and what state_path_refusal refuses are
 * refused.
 * -EINVAL with *ret_error naming the line. */
int migration_state_parse(const char *name, const char *text, char ***ret, char **ret_error);

/* Why a normalized absolute path cannot be state, or NULL when it can: it
 * is, lies in or holds a tree the machine cannot take from <data>/state
 * (/etc, /proc, /sys, /dev, /run, /var/run, /tmp, /data, /usr, /bin,
 * /sbin, /lib*, /boot, the package databases). */
const char *state_path_refusal(const char *path);

/* Normalizes an absolute path into a new string; -EINVAL when it is not
 * absolute or has "." or ".." components. */
int migration_path_normalize(const char *path, char **ret);

/* The machine-wide list of the data dir at data_fd (sorted). */
int state_path_machine_list(int data_fd, char ***ret, char **ret_error);

/* Whether path equals or lies below one of paths. */
bool state_path_covered(char *const *paths, const char *path);

/* Adds the paths of add to *l that are not there yet, keeping it sorted. */
int state_path_merge(char ***l, char *const *add);

/*
 * Moves the content of the directory (src_fd, src) into (dst_fd, dst)
 * without ever overwriting: an entry missing in dst is renamed there
 * (copied and removed across file systems); where both sides have a
 * directory the move recurses; any other clash keeps dst's entry and
 * leaves src's behind. Overlay whiteouts are not moved (existing state is
 * never deleted). dst and its parents are created as needed, with the
 * mode of the src directory. Nothing is synced: the caller syncs the file
 * system once it has moved everything. Returns the number of entries moved
 * or -errno.
 */
int state_path_move_at(int src_fd, const char *src, int dst_fd, const char *dst);

/*
 * The changes a state overlay's upper dir (upper_fd, upper) makes to its
 * lower, the existing state (lower_fd, lower; may be missing), added to l
 * as state changes (changes_add with state) with paths prefix + "/" +
 * relative path: A added (and everything in an added dir), M a file (or
 * a type change) over an existing entry, D a whiteout over an existing
 * entry, R an opaque dir over an existing dir. A missing upper adds
 * nothing. Directories only copied up are not listed.
 */
int state_path_diff_at(int upper_fd, const char *upper, int lower_fd, const char *lower,
                       const char *prefix, struct change_list *l);

/* Resolves the symlinks of the absolute normalized path inside the root
 * that the stack lower_fds (newest first, base last) assembles, never on
 * the host: an absolute link target restarts at that root. Components that
 * do not exist are kept as they are. -ELOOP after 40 links. */
int state_path_resolve(const int *lower_fds, size_t n_lowers, const char *path, char **ret);

/* The line (1-based) of the state file (dirfd, file) that names path, or 0. */
int state_path_file_line(int dirfd, const char *file, const char *path);
