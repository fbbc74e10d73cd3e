/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Per-thread filesystem credentials. The server runs as root; each request
 * runs its filesystem calls with the client's uid, gid and groups (after
 * squashing), so the kernel does the permission checks. Linux keeps
 * credentials per thread; setfsuid/setfsgid and the raw setgroups syscall
 * change only the calling thread. For a caller other than root, the thread
 * also drops every capability but CAP_SETUID and CAP_SETGID from its
 * effective set (capset on the calling thread), until a root caller comes.
 */

#include <stdbool.h>
#include <sys/types.h>

#define CRED_GROUPS_MAX 16

struct cred {
        uid_t uid;
        gid_t gid;
        unsigned n_groups;
        gid_t groups[CRED_GROUPS_MAX];
};

/* Switches the calling thread to c (system calls only for what differs
 * from its current credentials). Returns 0 or -errno. */
int cred_enter(const struct cred *c);
/* Back to filesystem uid 0 (and its capabilities); the filesystem gid and
 * groups stay until the next cred_enter(). */
void cred_leave(void);
