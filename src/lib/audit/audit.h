/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The kernel's audit, driven for one purpose: attributing the file changes
 * of a process tree to the programs that made them (system-migrate --audit).
 *
 *   audit_status_get       the kernel's audit state (netlink AUDIT_GET):
 *                          enabled, the registered daemon's pid
 *   audit_daemon_acquire   uses the auditd that runs, or starts one
 *                          (`auditd -n -c DIR`, as a child of the caller);
 *                          audit_daemon_release stops it again
 *   audit_session_begin    gives the caller a new audit session (it writes
 *                          its own loginuid: the kernel then hands out a
 *                          new session id, which every child inherits) and
 *                          adds the rules keyed KEY for that session:
 *                          every file-changing syscall (-F perm=wa) of the
 *                          session's processes, b64 and b32
 *   audit_session_detach   moves the caller to yet another session, so only
 *                          the children started before it stay audited
 *   audit_session_end      removes the rules, waits until the daemon has
 *                          logged everything (an `auditctl -m` marker) and
 *                          parses the events of KEY (auditlog.h)
 *   audit_rules_sweep      removes the rules keyed PREFIX* whose session no
 *                          process holds any more (a killed run's)
 *
 * Rules and the daemon go through auditctl and auditd (package auditd).
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "auditlog.h"

struct audit_state {
        uint32_t enabled; /* 0 off, 1 on, 2 locked (rules cannot change) */
        pid_t pid;        /* the registered audit daemon, 0 when none */
};

/* AUDIT_GET. -EPROTONOSUPPORT: the kernel has no audit; -ECONNREFUSED:
 * not in the initial pid (and user) namespace, where the kernel refuses
 * audit control (the kernel says EPERM for a pid namespace: with
 * CAP_AUDIT_CONTROL that is what it means); -EPERM: no CAP_AUDIT_CONTROL. */
int audit_status_get(struct audit_state *ret);

/* Why audit cannot be used here (the message for -errno of
 * audit_status_get or for a status), or NULL when it can. */
const char *audit_unusable_reason(int r);

struct audit_daemon {
        pid_t pid;
        bool started;         /* by us: audit_daemon_release stops it */
        uint32_t was_enabled; /* the kernel's state before we started it */
        uint64_t starttime;   /* of pid, in clock ticks after boot (/proc/PID/stat) */
        char *log_file;       /* where it writes */
};

/* Finds the auditd registered with the kernel, or starts `auditd -n -c
 * conf_dir` (NULL: /etc/audit) when none is, and waits until it is
 * registered. Fails (-errno, *ret_error saying which) when audit is
 * unusable, another program than auditd owns it, rules are locked, or the
 * daemon writes no log. */
int audit_daemon_acquire(const char *conf_dir, struct audit_daemon *ret, char **ret_error);
/* Stops the daemon if we started it (and puts back the kernel's enabled
 * flag); frees d's fields. Idempotent. */
void audit_daemon_release(struct audit_daemon *d);
/* Stops the auditd with pid if it still is the process that started at
 * starttime (a killed run's), and puts back the kernel's enabled flag
 * (was_enabled): 1 when it stopped it, 0 when it was gone. */
int audit_daemon_stop_recorded(pid_t pid, uint64_t starttime, uint32_t was_enabled);
/* The start time of pid (field 22 of /proc/PID/stat). */
int audit_process_starttime(pid_t pid, uint64_t *ret);

struct audit_session {
        char *key;
        uint32_t sessionid;
        char *log_file;
        off_t log_start;
        bool rules;
};

int audit_session_begin(const struct audit_daemon *d, const char *key, struct audit_session *ret,
                        char **ret_error);
/* Async-signal-safe: a new session for the caller (errors are ignored:
 * audit_session_end leaves out the caller's pid anyway). */
void audit_session_detach(void);
/* Adds the session's events to l, leaving out the processes in skip;
 * resolver (may be NULL) places names relative to directory fds. */
int audit_session_end(struct audit_session *s, const pid_t *skip, size_t n_skip,
                      const struct audit_resolver *resolver, struct audit_list *l,
                      char **ret_error);
/* Removes the rules if still there; frees s's fields. */
void audit_session_done(struct audit_session *s);

/* Removes the rules keyed prefix* whose session no process holds; sets
 * *ret_keys (may be NULL) to the keys removed. Returns how many rules. */
int audit_rules_sweep(const char *prefix, char ***ret_keys);
