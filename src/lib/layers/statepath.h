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

#define STATE_PATHS_FILE "system/state-paths"

/* Parses the text of a state file: one absolute path a line, '#' comments
 * and blank lines ignored. Paths are normalized ("//" and trailing '/'
 * removed); ".", "..", "/" itself and the package manager's own database
 * (/var/lib/dpkg, /var/lib/apt and anything under them) are refused.
 * -EINVAL with *ret_error naming the line. */
int migration_state_parse(const char *name, const char *text, char ***ret, char **ret_error);

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
