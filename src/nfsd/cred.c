/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cred.h"
#include "macro.h"

/* What this thread's filesystem credentials are now, so a request with the
 * same credentials as the previous one costs no system call. Threads start
 * as root with no supplementary groups known: `known` is false until the
 * first switch. */
static __thread struct cred current;
static __thread bool known;

static bool same_groups(const struct cred *a, const struct cred *b)
{
        return a->n_groups == b->n_groups &&
               memcmp(a->groups, b->groups, a->n_groups * sizeof(gid_t)) == 0;
}

int cred_enter(const struct cred *c)
{
        if (c->n_groups > CRED_GROUPS_MAX)
                return -EINVAL;
        if (!known || !same_groups(&current, c)) {
                /* glibc's setgroups() changes every thread; the syscall only this one. */
                if (syscall(SYS_setgroups, (size_t)c->n_groups, c->groups) < 0)
                        return negative_errno();
                current.n_groups = c->n_groups;
                memcpy(current.groups, c->groups, c->n_groups * sizeof(gid_t));
        }
        if (!known || current.gid != c->gid) {
                setfsgid(c->gid);
                if ((gid_t)setfsgid((gid_t)-1) != c->gid) {
                        known = false;
                        cred_leave();
                        return -EPERM;
                }
                current.gid = c->gid;
        }
        if (!known || current.uid != c->uid) {
                setfsuid(c->uid);
                if ((uid_t)setfsuid((uid_t)-1) != c->uid) {
                        known = false;
                        cred_leave();
                        return -EPERM;
                }
                current.uid = c->uid;
        }
        known = true;
        return 0;
}

void cred_leave(void)
{
        /* Back to fsuid 0, which restores the capabilities handle
         * resolution needs. The group credentials are left as they are:
         * nothing is created with them until the next cred_enter(). */
        if (known && current.uid == 0)
                return;
        setfsuid(0);
        if (known)
                current.uid = 0;
}
