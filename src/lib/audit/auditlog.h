/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What the kernel's audit says, parsed without IO: the records of an audit
 * log (auditd's RAW or ENRICHED format), the rules `auditctl -l` prints,
 * and the two settings of an auditd.conf strata reads.
 *
 * An audit event is the group of records sharing one "msg=audit(TIME:SERIAL)":
 * a SYSCALL record (pid, exe, syscall, success, key), a CWD record and one
 * PATH record per name the syscall resolved (name, nametype). From the
 * events of one key, audit_log_parse makes the attribution list a migration
 * keeps as audit.list: which program changed which path, and how.
 *
 * audit.list: one line per (action, pid, path), in the order the events
 * happened, four fields separated by tabs:
 *
 *   ACTION  PID  EXE  PATH
 *
 * ACTION is one letter (C created, W opened for writing, M mode, owner or
 * xattrs changed, D removed, F renamed from, T renamed to), with 'S' before
 * it when the path lies under a state path ("SC" a file created in state);
 * EXE and PATH are absolute paths inside the machine; a tab, newline or
 * backslash in them is written "\t", "\n", "\\".
 *
 * A name given relative to a directory fd other than the cwd (openat,
 * unlinkat, renameat... on a dir fd) is placed through the inode the
 * kernel's records give: the PARENT record's (the directory the name is
 * in), or, without one, the named object's own. That inode is looked up
 * among what earlier records of the same events placed (a directory the
 * session created or named by a full path), then through the caller's
 * audit_resolver (the inodes of the machine's trees). A name that neither
 * places has the PATH "?/NAME".
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
        AUDIT_CREATED = 'C',
        AUDIT_WROTE = 'W',
        AUDIT_ATTR = 'M',
        AUDIT_REMOVED = 'D',
        AUDIT_RENAMED_FROM = 'F',
        AUDIT_RENAMED_TO = 'T',
};

struct audit_entry {
        char action; /* AUDIT_* */
        bool state;  /* under a state path */
        pid_t pid;
        char *exe;
        char *path;
};

struct audit_list {
        struct audit_entry *items;
        size_t n, allocated;
};

void audit_list_done(struct audit_list *l);
/* Adds a copy of exe and path; -EINVAL for an action that is not AUDIT_*. */
int audit_list_add(struct audit_list *l, char action, bool state, pid_t pid, const char *exe,
                   const char *path);

/* Places names relative to a directory fd: inode_path returns the machine
 * path (absolute, malloc'd) of the file or directory whose inode number,
 * as the kernel saw it inside the machine, is ino; NULL when it knows
 * none (or on -ENOMEM). */
struct audit_resolver {
        char *(*inode_path)(uint64_t ino, void *userdata);
        void *userdata;
};

/* Adds to l the file changes of the events in text (len bytes, a log or a
 * part of one) whose SYSCALL record has key and succeeded, leaving out the
 * processes in skip[n_skip] and paths of the kernel's pseudo file systems
 * (/proc, /sys, /dev). An (action, pid, path) already in l is not added
 * again. Lines that are not audit records, and records of other keys, are
 * ignored. resolver (may be NULL) places the inodes the records themselves
 * do not. Returns the number of entries added or -ENOMEM. */
int audit_log_parse(const char *text, size_t len, const char *key, const pid_t *skip, size_t n_skip,
                    const struct audit_resolver *resolver, struct audit_list *l);

/* Whether text holds the USER record `auditctl -m MARKER` makes. */
bool audit_log_has_marker(const char *text, size_t len, const char *marker);

/* audit.list, as described above. */
int audit_list_format(const struct audit_list *l, char **ret);
/* Parses audit.list into ret; -EBADMSG for a malformed line, with
 * *ret_line (may be NULL) set to its number. */
int audit_list_parse(const char *text, struct audit_list *ret, unsigned *ret_line);

/* For diff --why: *ret (caller frees) gets the indices of l's entries
 * sorted by path, in list order within a path. */
int audit_list_by_path(const struct audit_list *l, size_t **ret);
/* The programs that changed path: "EXE[PID]:ACTIONS" for each process in
 * the order they first touched it, joined by ", " ("/usr/bin/dpkg[812]:CT");
 * "-" when none did. by_path is from audit_list_by_path. */
int audit_list_why(const struct audit_list *l, const size_t *by_path, const char *path, char **ret);

/* One line of `auditctl -l`: its key (-F key=K or -k K) and the session
 * id it is limited to (-F sessionid=N). -ENOENT when the rule has no key
 * or no session id. */
int audit_rule_parse(const char *line, char **ret_key, uint32_t *ret_sessionid);

/* From an auditd.conf: log_file (default /var/log/audit/audit.log) and
 * whether write_logs is on (default yes). -EINVAL for a relative log_file. */
int audit_conf_parse(const char *text, char **ret_log_file, bool *ret_write_logs);

/* Normalizes path lexically ("//", ".", ".." and a trailing "/" go; ".."
 * above the root stays at the root). path must be absolute. */
int audit_path_normalize(const char *path, char **ret);
