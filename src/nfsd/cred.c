/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdint.h>
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

/* Capabilities beyond the filesystem ones (which setfsuid() drops and
 * restores by itself) are dropped while the thread acts for a caller other
 * than root, as the kernel's nfsd does: such a caller must get no
 * CAP_SYS_RESOURCE (quotas, reserved blocks), CAP_SYS_ADMIN and so on from
 * the server. CAP_SETUID and CAP_SETGID stay, to switch back. The switch
 * happens only between root and non-root callers, so a run of calls of
 * non-root callers costs no capset(). `full` is the thread's effective set
 * as it started. */
static __thread struct __user_cap_data_struct full[_LINUX_CAPABILITY_U32S_3];
static __thread bool full_known, dropped;

static int caps_set(bool drop)
{
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

        if (drop == dropped)
                return 0;
        if (!full_known) {
                if (syscall(SYS_capget, &h, full) < 0)
                        return negative_errno();
                full_known = true;
        }
        memcpy(d, full, sizeof(d));
        if (drop)
                for (unsigned i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
                        uint32_t keep = 0;
                        if (i == CAP_TO_INDEX(CAP_SETUID))
                                keep |= CAP_TO_MASK(CAP_SETUID);
                        if (i == CAP_TO_INDEX(CAP_SETGID))
                                keep |= CAP_TO_MASK(CAP_SETGID);
                        d[i].effective &= keep;
                }
        /* Only this thread: the raw syscall with pid 0. */
        h.pid = 0;
        if (syscall(SYS_capset, &h, d) < 0)
                return negative_errno();
        dropped = drop;
        return 0;
}

static bool same_groups(const struct cred *a, const struct cred *b)
{
        return a->n_groups == b->n_groups &&
               memcmp(a->groups, b->groups, a->n_groups * sizeof(gid_t)) == 0;
}

int cred_enter(const struct cred *c)
{
        if (c->n_groups > CRED_GROUPS_MAX)
                return -EINVAL;
        /* Before the fsuid changes: setfsuid(0) later raises only the
         * filesystem capabilities again. */
        if (caps_set(c->uid != 0) < 0)
                return -EPERM;
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
