/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include "ancestry.h"
#include "cleanup.h"
#include "macro.h"

#define SLOTS_MIN 1024
#define SLOTS_MAX 16384 /* 3/4 of it holds the deepest chain a walk makes (8,192) */

struct slot {
        bool used;
        uint8_t len;
        int32_t type;
        uint32_t depth;
        uint8_t bytes[FHANDLE_KERNEL_MAX];
};

struct ancestry {
        pthread_mutex_t lock;
        int fan_fd;
        uint64_t epoch; /* +1 at every directory move and every emptying */
        struct slot *slots;
        size_t n_slots, n_used;
};

static uint32_t hash(int32_t type, uint8_t len, const uint8_t *bytes)
{
        uint32_t v = 2166136261u ^ (uint32_t)type;

        for (uint8_t i = 0; i < len; i++)
                v = (v ^ bytes[i]) * 16777619u;
        return v;
}

static struct slot *find(struct ancestry *a, int32_t type, uint8_t len, const uint8_t *bytes,
                         bool *ret_found)
{
        size_t mask = a->n_slots - 1, i = hash(type, len, bytes) & mask;

        for (;; i = (i + 1) & mask) {
                struct slot *s = &a->slots[i];
                if (!s->used) {
                        *ret_found = false;
                        return s;
                }
                if (s->type == type && s->len == len && memcmp(s->bytes, bytes, len) == 0) {
                        *ret_found = true;
                        return s;
                }
        }
}

static void empty(struct ancestry *a)
{
        memset(a->slots, 0, a->n_slots * sizeof(*a->slots));
        a->n_used = 0;
        a->epoch++;
}

/* One directory-move event: its fid record carries the handle of the
 * directory that moved. */
static void moved(struct ancestry *a, const struct fanotify_event_metadata *m)
{
        const struct fanotify_event_info_fid *fid = (const void *)(m + 1);
        const struct file_handle *fh;
        bool found;

        a->epoch++;
        if (m->event_len < sizeof(*m) + sizeof(*fid) + sizeof(*fh) ||
            fid->hdr.info_type != FAN_EVENT_INFO_TYPE_FID) {
                empty(a);
                return;
        }
        fh = (const struct file_handle *)fid->handle;
        if (fh->handle_bytes > FHANDLE_KERNEL_MAX ||
            m->event_len < sizeof(*m) + sizeof(*fid) + sizeof(*fh) + fh->handle_bytes) {
                empty(a);
                return;
        }
        find(a, fh->handle_type, (uint8_t)fh->handle_bytes, fh->f_handle, &found);
        if (found)
                empty(a);
}

/* Reads every pending event (under the lock). */
static void drain(struct ancestry *a)
{
        char buf[4096];

        for (;;) {
                ssize_t n = read(a->fan_fd, buf, sizeof(buf));
                size_t off = 0;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        /* Cannot tell what happened: trust nothing. */
                        empty(a);
                        return;
                }
                /* Events with info records have lengths that are not a
                 * multiple of 8: each is copied out to an aligned place. */
                while ((size_t)n - off >= sizeof(struct fanotify_event_metadata)) {
                        union {
                                struct fanotify_event_metadata m;
                                char bytes[sizeof(struct fanotify_event_metadata) + 256];
                        } ev;
                        uint32_t len;

                        memcpy(&len,
                               buf + off + offsetof(struct fanotify_event_metadata, event_len),
                               sizeof(len));
                        if (len < sizeof(ev.m) || len > (size_t)n - off) {
                                empty(a);
                                break;
                        }
                        memcpy(&ev, buf + off, MIN((size_t)len, sizeof(ev)));
                        off += len;
                        if (ev.m.vers != FANOTIFY_METADATA_VERSION ||
                            (ev.m.mask & FAN_Q_OVERFLOW) || len > sizeof(ev))
                                empty(a);
                        else if ((ev.m.mask & FAN_MOVE_SELF) && (ev.m.mask & FAN_ONDIR))
                                moved(a, &ev.m);
                        if (ev.m.fd >= 0)
                                close(ev.m.fd);
                }
        }
}

int ancestry_new(const char *path, struct ancestry **ret)
{
        _cleanup_free_ struct ancestry *a = calloc(1, sizeof(*a));
        _cleanup_close_ int fd = -1;

        if (!a)
                return -ENOMEM;
        fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID | FAN_NONBLOCK | FAN_CLOEXEC, O_RDONLY);
        if (fd < 0)
                return negative_errno();
        if (fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_MOVE_SELF | FAN_ONDIR,
                          AT_FDCWD, path) < 0)
                return negative_errno();
        a->slots = calloc(SLOTS_MIN, sizeof(*a->slots));
        if (!a->slots)
                return -ENOMEM;
        a->n_slots = SLOTS_MIN;
        pthread_mutex_init(&a->lock, NULL);
        a->fan_fd = TAKE_FD(fd);
        *ret = TAKE_PTR(a);
        return 0;
}

struct ancestry *ancestry_free(struct ancestry *a)
{
        if (!a)
                return NULL;
        safe_close(a->fan_fd);
        pthread_mutex_destroy(&a->lock);
        free(a->slots);
        free(a);
        return NULL;
}

int ancestry_get(struct ancestry *a, const struct fhandle *h, uint64_t *ret_epoch)
{
        struct slot *s;
        bool found;
        int r;

        pthread_mutex_lock(&a->lock);
        drain(a);
        s = find(a, h->type, h->len, h->bytes, &found);
        r = found ? (int)s->depth : -ENOENT;
        *ret_epoch = a->epoch;
        pthread_mutex_unlock(&a->lock);
        return r;
}

int ancestry_peek(struct ancestry *a, const struct fhandle *h)
{
        struct slot *s;
        bool found;
        int r;

        pthread_mutex_lock(&a->lock);
        s = find(a, h->type, h->len, h->bytes, &found);
        r = found ? (int)s->depth : -ENOENT;
        pthread_mutex_unlock(&a->lock);
        return r;
}

bool ancestry_current(struct ancestry *a, uint64_t epoch)
{
        bool r;

        pthread_mutex_lock(&a->lock);
        drain(a);
        r = a->epoch == epoch;
        pthread_mutex_unlock(&a->lock);
        return r;
}

/* Room for n more entries at most 3/4 full; false when there is none. */
static bool reserve(struct ancestry *a, size_t n)
{
        struct slot *old = a->slots, *s;
        size_t old_n = a->n_slots, size = a->n_slots;
        bool found;

        while ((a->n_used + n) * 4 > size * 3 && size < SLOTS_MAX)
                size *= 2;
        if ((a->n_used + n) * 4 > size * 3)
                return false;
        if (size == a->n_slots)
                return true;
        a->slots = calloc(size, sizeof(*a->slots));
        if (!a->slots) {
                a->slots = old;
                return false;
        }
        a->n_slots = size;
        for (size_t i = 0; i < old_n; i++)
                if (old[i].used) {
                        s = find(a, old[i].type, old[i].len, old[i].bytes, &found);
                        *s = old[i];
                }
        free(old);
        return true;
}

void ancestry_put(struct ancestry *a, uint64_t epoch, const struct fhandle *chain, size_t n,
                  unsigned depth0)
{
        pthread_mutex_lock(&a->lock);
        drain(a);
        if (a->epoch != epoch)
                goto out;
        if (!reserve(a, n)) {
                /* Emptied, not trimmed: the chain's upper part may be what
                 * would go. The next walk starts over from the root. */
                empty(a);
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                bool found;
                struct slot *s = find(a, chain[i].type, chain[i].len, chain[i].bytes, &found);

                if (!found)
                        a->n_used++;
                *s = (struct slot){.used = true,
                                   .len = chain[i].len,
                                   .type = chain[i].type,
                                   .depth = depth0 - (unsigned)i};
                memcpy(s->bytes, chain[i].bytes, chain[i].len);
        }
out:
        pthread_mutex_unlock(&a->lock);
}
