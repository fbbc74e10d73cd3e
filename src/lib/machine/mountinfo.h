/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The mount table, parsed from /proc/self/mountinfo (or any file in that
 * format, for tests). No libmount: linked, it and the three libraries it
 * needs cost every strata command about 0.8 ms of CPU at start.
 */

#include <stddef.h>

struct mount_entry {
        int id;
        int parent_id;
        char *target; /* mount point */
        char *source; /* device or "none" */
        char *fstype;
        char *options; /* per-mount and superblock options, comma separated */
        char *root;    /* path inside the filesystem that is mounted (binds) */
};

struct mount_list {
        struct mount_entry *entries;
        size_t n;
};

/* Reads the mount table at `file` (NULL: /proc/self/mountinfo). Fills
 * *ret in unmount order: a mount always comes before the mounts it covers
 * or sits on, so unmounting in list order never hits EBUSY for children.
 * Only mounts at or below `under` are kept (NULL or "/": all).
 * Paths and names have the kernel's octal escapes undone; options are the
 * per-mount and superblock ones in one list, "ro," or "rw," first.
 * Returns 0, or -errno (-EBADMSG for a file that is not in mountinfo
 * format, see mountinfo_check_file). */
int mountinfo_read(const char *file, const char *under, struct mount_list *ret);

/* Checks that every non-empty line of `file` has the mountinfo format of
 * proc(5): "ID PARENT MAJ:MIN ROOT TARGET OPTIONS [FIELDS...] - TYPE SOURCE
 * SUPEROPTIONS" (other tables, e.g. fstab, or any text, are not one).
 * Returns 0; -EBADMSG with *ret_line (1-based, may be
 * NULL) set to the first line that is not; -errno if it cannot be read. */
int mountinfo_check_file(const char *file, unsigned *ret_line);

void mount_list_done(struct mount_list *l);

/* Returns 1 if path is a mount point, 0 if not, -errno on failure. */
int mountinfo_is_mountpoint(const char *path);

/* Unmounts everything at or below path, children first, using MNT_DETACH
 * for mounts that stay busy. Returns the number of mounts removed or -errno
 * (the first failure; it continues with the rest). */
int mountinfo_umount_under(const char *path);
