/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "childcache.h"
#include "cleanup.h"
#include "macro.h"

struct entry {
        struct fhandle dir;
        char name[CHILDCACHE_NAME_MAX + 1];
        int fd; /* -1: free */
        unsigned users;
        bool dead; /* dropped: closed when unused */
        dev_t dev;
        ino_t ino;
        uint8_t handle[FHANDLE_MAX];
        uint8_t len;
        uint64_t use; /* c->clock at the last use: the least recent goes first */
        int64_t last; /* monotonic ms of the last use, for childcache_expire() */
};

struct childcache {
        pthread_mutex_t lock;
        uint64_t clock;
        struct entry entries[CHILDCACHE_SIZE];
};

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct childcache *childcache_new(void)
{
        struct childcache *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        pthread_mutex_init(&c->lock, NULL);
        for (size_t i = 0; i < CHILDCACHE_SIZE; i++)
                c->entries[i].fd = -1;
        return c;
}

struct childcache *childcache_free(struct childcache *c)
{
        if (!c)
                return NULL;
        for (size_t i = 0; i < CHILDCACHE_SIZE; i++)
                safe_close(c->entries[i].fd);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
}

static bool same_dir(const struct fhandle *a, const struct fhandle *b)
{
        return a->type == b->type && a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

/* The live entry of name in dir, or NULL. Called with c->lock held. */
static struct entry *find(struct childcache *c, const struct fhandle *dir, const char *name)
{
        for (size_t i = 0; i < CHILDCACHE_SIZE; i++) {
                struct entry *en = &c->entries[i];
                if (en->fd >= 0 && !en->dead && streq(en->name, name) && same_dir(&en->dir, dir))
                        return en;
        }
        return NULL;
}

/* Frees en when dropped and unused; returns its fd, for the caller to
 * close once it let go of c->lock (the last close of a removed file frees
 * all of it, which may take a while), or -1. Called with c->lock held. */
static int reap(struct entry *en)
{
        int fd = en->fd;

        if (en->users > 0 || !en->dead)
                return -1;
        *en = (struct entry){.fd = -1};
        return fd;
}

/* Ends a use of en (as reap()). */
static int release(struct entry *en)
{
        en->users--;
        return reap(en);
}

/* Drops en (as reap()). */
static int drop(struct entry *en)
{
        en->dead = true;
        return reap(en);
}

static void stat_from_statx(const struct statx *sx, struct stat *st)
{
        *st = (struct stat){
            .st_dev = makedev(sx->stx_dev_major, sx->stx_dev_minor),
            .st_ino = sx->stx_ino,
            .st_mode = sx->stx_mode,
            .st_nlink = sx->stx_nlink,
            .st_uid = sx->stx_uid,
            .st_gid = sx->stx_gid,
            .st_rdev = makedev(sx->stx_rdev_major, sx->stx_rdev_minor),
            .st_size = (off_t)sx->stx_size,
            .st_blksize = (blksize_t)sx->stx_blksize,
            .st_blocks = (blkcnt_t)sx->stx_blocks,
        };
        st->st_atim = (struct timespec){sx->stx_atime.tv_sec, sx->stx_atime.tv_nsec};
        st->st_mtim = (struct timespec){sx->stx_mtime.tv_sec, sx->stx_mtime.tv_nsec};
        st->st_ctim = (struct timespec){sx->stx_ctime.tv_sec, sx->stx_ctime.tv_nsec};
}

int childcache_lookup(struct childcache *c, const struct fhandle *dir, int dirfd, const char *name,
                      int mount_id, uint8_t ret_handle[FHANDLE_MAX], struct stat *ret_st)
{
        const unsigned want = STATX_BASIC_STATS | STATX_MNT_ID;
        uint8_t handle[FHANDLE_MAX];
        struct statx sx;
        struct entry *en;
        dev_t dev;
        ino_t ino;
        size_t len;
        bool hit;
        int fd;

        if (!c || strlen(name) > CHILDCACHE_NAME_MAX)
                return 0;
        pthread_mutex_lock(&c->lock);
        en = find(c, dir, name);
        if (en) {
                /* In use, so its fd (and the inode number) stays while the
                 * name is checked without the lock. */
                en->users++;
                en->use = ++c->clock;
                en->last = now_ms();
                dev = en->dev;
                ino = en->ino;
                len = en->len;
                memcpy(handle, en->handle, len);
        }
        pthread_mutex_unlock(&c->lock);
        if (!en)
                return 0;

        hit = statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_STATX_SYNC_AS_STAT, want, &sx) == 0 &&
              (sx.stx_mask & want) == want && sx.stx_mnt_id == (uint64_t)mount_id &&
              makedev(sx.stx_dev_major, sx.stx_dev_minor) == dev && sx.stx_ino == ino;

        pthread_mutex_lock(&c->lock);
        if (!hit)
                en->dead = true;
        fd = release(en);
        pthread_mutex_unlock(&c->lock);
        safe_close(fd);
        if (!hit)
                return 0;
        memcpy(ret_handle, handle, len);
        stat_from_statx(&sx, ret_st);
        return (int)len;
}

void childcache_add(struct childcache *c, const struct fhandle *dir, const char *name, int fd,
                    const struct stat *st, const uint8_t *handle, size_t len)
{
        struct entry *victim = NULL, *old;
        int old_fd = -1, victim_fd = -1;

        if (!c || strlen(name) > CHILDCACHE_NAME_MAX || len > FHANDLE_MAX) {
                safe_close(fd);
                return;
        }
        pthread_mutex_lock(&c->lock);
        old = find(c, dir, name);
        if (old)
                old_fd = drop(old);
        for (size_t i = 0; i < CHILDCACHE_SIZE; i++) {
                struct entry *en = &c->entries[i];
                if (en->fd < 0) {
                        victim = en;
                        break;
                }
                if (en->users == 0 && (!victim || en->use < victim->use))
                        victim = en;
        }
        if (victim) {
                victim_fd = victim->fd;
                *victim = (struct entry){.dir = *dir,
                                         .fd = fd,
                                         .dev = st->st_dev,
                                         .ino = st->st_ino,
                                         .len = (uint8_t)len,
                                         .use = ++c->clock,
                                         .last = now_ms()};
                strcpy(victim->name, name);
                memcpy(victim->handle, handle, len);
                fd = -1;
        }
        pthread_mutex_unlock(&c->lock);
        safe_close(old_fd);
        safe_close(victim_fd);
        safe_close(fd);
}

void childcache_forget(struct childcache *c, const struct fhandle *dir, const char *name)
{
        struct entry *en;
        int fd = -1;

        if (!c || strlen(name) > CHILDCACHE_NAME_MAX)
                return;
        pthread_mutex_lock(&c->lock);
        en = find(c, dir, name);
        if (en)
                fd = drop(en);
        pthread_mutex_unlock(&c->lock);
        safe_close(fd);
}

void childcache_expire(struct childcache *c, int64_t idle_ms)
{
        int64_t now = now_ms();
        int fds[CHILDCACHE_SIZE];
        size_t n = 0;

        if (!c)
                return;
        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; i < CHILDCACHE_SIZE; i++) {
                struct entry *en = &c->entries[i];
                if (en->fd >= 0 && en->users == 0 && now - en->last > idle_ms)
                        fds[n++] = drop(en);
        }
        pthread_mutex_unlock(&c->lock);
        while (n > 0)
                safe_close(fds[--n]);
}
