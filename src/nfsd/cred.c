/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cred.h"
#include "macro.h"

int cred_enter(const struct cred *c)
{
        /* glibc's setgroups() changes every thread; the syscall only this one. */
        if (syscall(SYS_setgroups, (size_t)c->n_groups, c->groups) < 0)
                return negative_errno();
        setfsgid(c->gid);
        setfsuid(c->uid);
        if ((uid_t)setfsuid((uid_t)-1) != c->uid || (gid_t)setfsgid((gid_t)-1) != c->gid) {
                cred_leave();
                return -EPERM;
        }
        return 0;
}

void cred_leave(void)
{
        setfsuid(0);
        setfsgid(0);
        (void)syscall(SYS_setgroups, (size_t)0, NULL);
}
