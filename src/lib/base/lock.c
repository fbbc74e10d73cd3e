/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "json.h"
#include "lock.h"
#include "log.h"

/* Holder info is one JSON object: {"pid":N,"purpose":"...","since":T}. */

static int holder_parse(const char *name, const char *data, size_t len, struct lock_holder *ret)
{
        json_t *j = NULL;
        const char *purpose = "";
        int64_t pid, since = 0;
        int r;

        if (len == 0)
                return -ENODATA;
        r = json_load_buffer(name, data, len, &j, NULL);
        if (r < 0)
                return r;
        r = json_get_int(j, "pid", &pid);
        if (r >= 0) {
                (void)json_get_string(j, "purpose", &purpose);
                (void)json_get_int(j, "since", &since);
                *ret = (struct lock_holder){.pid = (pid_t)pid, .since = since};
                snprintf(ret->purpose, sizeof(ret->purpose), "%s", purpose);
        }
        json_decref(j);
        return r < 0 ? -EBADMSG : 0;
}

static int read_holder_fd(int fd, const char *name, struct lock_holder *ret)
{
        char buf[1024];
        ssize_t n;

        n = pread(fd, buf, sizeof(buf) - 1, 0);
        if (n < 0)
                return negative_errno();
        return holder_parse(name, buf, (size_t)n, ret);
}

int lock_read_holder_at(int dirfd, const char *path, struct lock_holder *ret)
{
        _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

        if (fd < 0)
                return negative_errno();
        return read_holder_fd(fd, path, ret);
}

/* Whether the recorded holder is a process that no longer exists. */
static bool holder_gone(const struct lock_holder *h)
{
        return h->pid > 0 && kill(h->pid, 0) < 0 && errno == ESRCH;
}

/* The holder died but something it left holds the lock (a child that got
 * the file before it could close it): that goes away with it, shortly. */
static int wait_gone_holder(int fd)
{
        for (unsigned waited = 0; waited < LOCK_GONE_HOLDER_WAIT_MSEC; waited += 20) {
                (void)nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
                if (flock(fd, LOCK_EX | LOCK_NB) == 0)
                        return 0;
                if (errno != EWOULDBLOCK && errno != EINTR)
                        return negative_errno();
        }
        return -EWOULDBLOCK;
}

int lock_acquire_at(int dirfd, const char *path, const char *purpose, unsigned flags, int *ret_fd,
                    struct lock_holder *ret_holder)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *info = NULL;
        int n;

        fd = openat(dirfd, path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0644);
        if (fd < 0)
                return log_debug_errno(errno, "cannot open the lock file '%s': %m", path);

        if (RETRY_EINTR(flock(fd, LOCK_EX | ((flags & LOCK_NONBLOCK) ? LOCK_NB : 0))) < 0) {
                struct lock_holder h = {};
                int r = negative_errno();

                if (r == -EWOULDBLOCK && read_holder_fd(fd, path, &h) < 0)
                        h = (struct lock_holder){.pid = 0};
                if (r == -EWOULDBLOCK && holder_gone(&h)) {
                        h.gone = true;
                        r = wait_gone_holder(fd);
                }
                if (r < 0) {
                        if (r == -EWOULDBLOCK && ret_holder)
                                *ret_holder = h;
                        return log_debug_errno(r, "cannot lock '%s': %m", path);
                }
        }

        /* Ours now: say who holds it, for humans and for the busy message. */
        json_t *j = json_pack("{s:i,s:s,s:I}", "pid", (int)getpid(), "purpose",
                              purpose ? purpose : "", "since", (json_int_t)time(NULL));
        if (!j)
                return -ENOMEM;
        info = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!info)
                return -ENOMEM;
        n = (int)strlen(info);
        if (ftruncate(fd, 0) < 0 || pwrite(fd, info, (size_t)n, 0) != n)
                return log_debug_errno(errno, "cannot write the holder of '%s': %m", path);

        *ret_fd = TAKE_FD(fd);
        return 0;
}

int lock_release(int fd)
{
        if (fd < 0)
                return -1;
        /* Clear the holder while still holding the lock, then drop it. */
        (void)ftruncate(fd, 0);
        close(fd);
        return -1;
}
