/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "childcache.h"
#include "cleanup.h"
#include "export.h"
#include "log.h"
#include "peer.h"
#include "macro.h"
#include "rpc.h"
#include "transport.h"

/*
 * Leader/follower: every worker waits in epoll_wait() on the same epoll
 * instance. A connection's socket is registered EPOLLIN | EPOLLONESHOT, so
 * exactly one worker reads it at a time; that worker assembles the records
 * that arrived, re-arms the socket (another worker may then read the next
 * calls) and runs the first call itself, without handing it to another
 * thread. Further complete records go to a queue that wakes one idle worker
 * each (an eventfd registered EPOLLEXCLUSIVE). Replies are sent by the
 * worker that ran the call, without blocking: what the socket does not take
 * is queued and sent when it becomes writable, watched through a dup of the
 * socket registered EPOLLOUT | EPOLLONESHOT, so the write side never re-arms
 * the read side behind its owner's back.
 */

#define MAX_INFLIGHT    32 /* calls of one connection queued or running */
#define READ_CHUNK      65536
#define READS_PER_EVENT 8                  /* then the other connections get their turn */
#define OUT_MAX         (4 * 1024 * 1024)  /* queued reply bytes before reading pauses */
#define OUT_LIMIT       (16 * 1024 * 1024) /* queued for one client that does not read: drop it */
#define CONN_MEM_MAX    (8 * 1024 * 1024)  /* request bytes one connection may hold */
#define TICK_MS         500                /* idle reaping, paused reads, listen backoff */
#define WORKER_OUT_SIZE (TRANSPORT_MAX_RECORD + 4)
#define WORKER_SCRATCH  (1024 * 1024)
#define POOL_MIN        (256 * 1024) /* record buffers this large are kept for reuse */

/*
 * Memory: a connection's request bytes (the record being assembled, bytes
 * read past a full in-flight window, records queued or running) are
 * counted in c->mem and t->mem. Each connection may hold a small floor
 * whatever the others do (so small calls always get through); above it, it
 * reads only while all connections together hold less than half the
 * budget, and at most CONN_MEM_MAX. Queued replies may take a quarter of
 * the budget (a client that lets more pile up is dropped). Buffers grow
 * with the bytes that really arrived, not with what a record mark
 * announces.
 *
 * The buffers of large records (WRITEs) are kept for reuse when the call is
 * done, at most one per worker: a connection whose record announces as
 * much takes one, counted at its full size while it holds it; back in the
 * pool it is the server's own memory (given back with the rest once the
 * queues drain after a burst). A stream of 1 MiB WRITEs so reuses
 * buffers whose pages are already there instead of mapping, faulting in
 * and unmapping 1 MiB per call.
 */

/* Epoll events carry no pointers: a worker may dequeue an event for a
 * connection another worker is closing. They carry a slot of the
 * connection table and its generation (looked up under t->lock, which
 * takes a reference), and whether it is the write side. */
#define EV_TAG    (UINT64_C(1) << 63)
#define EV_LISTEN (EV_TAG | 1)
#define EV_STOP   (EV_TAG | 2)
#define EV_JOBS   (EV_TAG | 3)
/* A paused read side watches only for the peer's hangup. */
#define EV_PAUSED (UINT64_C(1) << 31)
#define EV_CONN(slot, gen, write) \
        ((uint64_t)(gen) << 32 | (uint64_t)(slot) << 1 | (uint64_t)(write))

struct conn {
        int fd;
        int wfd; /* dup of fd, for EPOLLOUT */
        unsigned slot;
        uint32_t gen;
        atomic_int refs;
        struct transport *t;
        struct nfsd_peer peer;
        bool unauthorized;           /* in no export's client list (counted in t->n_unauth) */
        struct conn *prev, *next;    /* t->conns, under t->lock */
        _Atomic int64_t last_active; /* monotonic ms of the last bytes in or out */
        _Atomic size_t mem;          /* request bytes held, see above */
        /* Calls queued or running: raised by the owner of the read side
         * without the lock, lowered under it (where a paused read side
         * is resumed). */
        _Atomic unsigned inflight;
        _Atomic bool dead; /* no more replies; set under lock, read anywhere */

        pthread_mutex_t lock; /* everything below but record assembly */
        bool read_paused;     /* the read side is left disarmed (too much in flight) */
        bool write_armed;     /* EPOLLOUT is armed on wfd */
        bool closed;          /* removed from epoll */
        struct outbuf *out_head, *out_tail;
        size_t out_bytes;

        /* Record assembly: only the worker that owns the read side. */
        uint8_t mark[4];
        size_t mark_have;
        uint32_t frag_left;
        bool frag_last;
        bool in_frag;
        uint8_t *rec;
        size_t rec_len, rec_cap;
        /* Bytes read past the record that filled the in-flight window,
         * fed before the socket is read again. stash_len is read under
         * c->lock by whoever resumes a paused read side. */
        uint8_t *stash;
        size_t stash_len, stash_off;
};

/* Reply bytes the socket did not take at once; sent when it becomes
 * writable, so a client that does not read holds up no worker. */
struct outbuf {
        struct outbuf *next;
        size_t len, off;
        uint8_t data[];
};

/* A call to run, or (rec NULL) the read side of conn to serve from its
 * stash. */
struct job {
        struct job *next;
        struct conn *conn;
        uint8_t *rec;
        size_t len, cap;
};

struct transport {
        struct nfsd_server *server;
        int listen_fd;
        int epoll_fd;
        int stop_fd; /* eventfd: readable once stopping, wakes every worker */
        int jobs_fd; /* eventfd semaphore: one count per queued job */

        pthread_mutex_t lock; /* conns, n_conns, n_unauth, slots, job queue */
        struct conn *conns;
        size_t n_conns, n_unauth;
        _Atomic size_t out_total; /* queued reply bytes of all connections */
        _Atomic size_t mem;       /* request bytes of all connections */
        struct {
                struct conn *c;
                uint32_t gen;
        } * slots;
        unsigned max_conns;
        int64_t idle_ms; /* 0: never */
        size_t mem_floor, mem_shared, out_limit, out_limit_all;
        size_t mem_peak; /* since the last trim (tick only) */
        struct job *head, *tail;

        pthread_mutex_t pool_lock;
        struct {
                void *buf;
                size_t cap;
        } * pool; /* free record buffers of POOL_MIN or more, at most n_workers */
        unsigned n_pool;

        int reserve_fd;            /* closed to accept-and-close when out of fds */
        atomic_bool listen_paused; /* the listen fd is left disarmed until the next tick */

        pthread_t *workers;
        unsigned n_workers;
        int64_t poll_ns;     /* how long a worker polls after a call; 0: never */
        atomic_bool polling; /* one worker polls at a time */
};

struct worker {
        struct transport *t;
        uint8_t *out;
        void *scratch;
        uint8_t *buf;
        int pipe[2]; /* READ data, see reply() */
};

/* A kept record buffer (its capacity in *ret_cap), or NULL. */
static void *pool_get(struct transport *t, size_t *ret_cap)
{
        void *b = NULL;

        pthread_mutex_lock(&t->pool_lock);
        if (t->n_pool > 0) {
                t->n_pool--;
                b = t->pool[t->n_pool].buf;
                *ret_cap = t->pool[t->n_pool].cap;
        }
        pthread_mutex_unlock(&t->pool_lock);
        return b;
}

/* Frees a record buffer of capacity cap, or keeps it in the pool. */
static void rec_free(struct transport *t, void *b, size_t cap)
{
        if (b && cap >= POOL_MIN) {
                pthread_mutex_lock(&t->pool_lock);
                if (t->n_pool < t->n_workers) {
                        t->pool[t->n_pool].buf = b;
                        t->pool[t->n_pool].cap = cap;
                        t->n_pool++;
                        b = NULL;
                }
                pthread_mutex_unlock(&t->pool_lock);
        }
        free(b);
}

static void pool_drop(struct transport *t)
{
        pthread_mutex_lock(&t->pool_lock);
        while (t->n_pool > 0)
                free(t->pool[--t->n_pool].buf);
        pthread_mutex_unlock(&t->pool_lock);
}

static void conn_unref(struct conn *c)
{
        if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
                return;
        safe_close(c->fd);
        safe_close(c->wfd);
        while (c->out_head) {
                struct outbuf *o = c->out_head;
                c->out_head = o->next;
                atomic_fetch_sub(&c->t->out_total, o->len - o->off);
                free(o);
        }
        pthread_mutex_destroy(&c->lock);
        atomic_fetch_sub(&c->t->mem, c->rec_cap + c->stash_len);
        rec_free(c->t, c->rec, c->rec_cap);
        free(c->stash);
        free(c);
}

static void mem_add(struct conn *c, size_t n)
{
        atomic_fetch_add(&c->mem, n);
        atomic_fetch_add(&c->t->mem, n);
}

static void mem_sub(struct conn *c, size_t n)
{
        atomic_fetch_sub(&c->mem, n);
        atomic_fetch_sub(&c->t->mem, n);
}

static void job_free(struct job *j)
{
        if (j->rec)
                mem_sub(j->conn, j->cap);
        rec_free(j->conn->t, j->rec, j->cap);
        conn_unref(j->conn);
        free(j);
}

static int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * After a call, a client that talks in turns (create, lookup, getattr)
 * sends its next one within microseconds of the reply. A worker that
 * sleeps in epoll_wait() is woken for it on whichever CPU is idle, and
 * waking an idle CPU (an interrupt to it, on a virtual machine an exit to
 * the host) costs more than the call. So the worker that answered polls
 * the epoll instance for up to poll_ns before it sleeps; one worker at a
 * time, so an idle server burns at most that once per reply.
 */
static int worker_wait(struct transport *t, struct epoll_event *ev, bool after_call)
{
        bool expected = false;

        if (after_call && t->poll_ns > 0 &&
            atomic_compare_exchange_strong(&t->polling, &expected, true)) {
                int64_t end = now_ns() + t->poll_ns;
                int n;

                do
                        n = epoll_wait(t->epoll_fd, ev, 1, 0);
                while (n == 0 && now_ns() < end);
                atomic_store(&t->polling, false);
                if (n != 0)
                        return n;
        }
        return epoll_wait(t->epoll_fd, ev, 1, -1);
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How many more request bytes c may take in now (see the memory rule). */
static size_t read_allowance(struct conn *c)
{
        struct transport *t = c->t;
        size_t mine = atomic_load(&c->mem), all = atomic_load(&t->mem);

        if (mine < t->mem_floor)
                return t->mem_floor - mine;
        if (all < t->mem_shared && mine < CONN_MEM_MAX)
                return MIN(t->mem_shared - all, CONN_MEM_MAX - mine);
        return 0;
}

static bool conn_may_read(struct conn *c)
{
        return c->dead ||
               (c->inflight < MAX_INFLIGHT && c->out_bytes < OUT_MAX && read_allowance(c) > 0);
}

static void queue_job(struct transport *t, struct job *j)
{
        uint64_t one = 1;

        pthread_mutex_lock(&t->lock);
        if (t->tail)
                t->tail->next = j;
        else
                t->head = j;
        t->tail = j;
        pthread_mutex_unlock(&t->lock);
        if (write(t->jobs_fd, &one, sizeof(one)) < 0)
                log_debug("cannot signal a queued call: %m");
}

static void conn_arm_read(struct conn *c)
{
        struct epoll_event e = {.events = EPOLLIN | EPOLLONESHOT,
                                .data.u64 = EV_CONN(c->slot, c->gen, 0)};

        (void)epoll_ctl(c->t->epoll_fd, EPOLL_CTL_MOD, c->fd, &e);
}

static void conn_fail(struct conn *c, int r);

/* Gives the read side a new owner: epoll, or, when bytes already read
 * wait in the stash (the socket may have nothing more to wake epoll), a
 * worker through the job queue. Called with c->lock held. */
static void conn_resume_read(struct conn *c)
{
        struct job *j;

        if (c->stash_len == 0) {
                conn_arm_read(c);
                return;
        }
        j = calloc(1, sizeof(*j));
        if (!j) {
                conn_fail(c, -ENOMEM);
                conn_arm_read(c);
                return;
        }
        atomic_fetch_add(&c->refs, 1);
        j->conn = c;
        queue_job(c->t, j);
}

/* The owner of the read side is done: re-arm it, or leave it paused.
 * Called with c->lock held. */
static void conn_read_done(struct conn *c)
{
        if (c->closed)
                return;
        if (conn_may_read(c))
                conn_resume_read(c);
        else {
                /* Still told when the peer goes away, which frees what it holds. */
                struct epoll_event e = {.events = EPOLLRDHUP | EPOLLONESHOT,
                                        .data.u64 = EV_CONN(c->slot, c->gen, 0) | EV_PAUSED};

                c->read_paused = true;
                (void)epoll_ctl(c->t->epoll_fd, EPOLL_CTL_MOD, c->fd, &e);
        }
}

static void conn_close(struct transport *t, struct conn *c, bool abort_io);

/* The peer of a paused read side hung up: close it, unless the read side
 * was resumed meanwhile (its new owner sees the hangup). */
static void conn_paused_event(struct transport *t, struct conn *c)
{
        bool take;

        pthread_mutex_lock(&c->lock);
        take = c->read_paused && !c->closed;
        if (take)
                c->read_paused = false;
        pthread_mutex_unlock(&c->lock);
        if (take)
                conn_close(t, c, true);
}

/* Resumes a paused read side once calls completed or replies drained (or
 * the connection broke, so its owner closes it). Called with c->lock held;
 * a paused read side has no owner, so re-arming it is safe. */
static void conn_maybe_resume(struct conn *c)
{
        if (c->read_paused && !c->closed && conn_may_read(c)) {
                c->read_paused = false;
                conn_resume_read(c);
        }
}

/* Watches for writability while replies are queued. Called with c->lock held. */
static void conn_want_write(struct conn *c)
{
        struct epoll_event e = {.events = EPOLLOUT | EPOLLONESHOT,
                                .data.u64 = EV_CONN(c->slot, c->gen, 1)};

        if (!c->out_head || c->write_armed || c->closed || c->dead)
                return;
        c->write_armed = true;
        (void)epoll_ctl(c->t->epoll_fd, EPOLL_CTL_MOD, c->wfd, &e);
}

/* Removes c from epoll and the list; in-flight calls keep it alive until
 * they are answered (or fail to be). Called by the owner of the read side. */
static void conn_close(struct transport *t, struct conn *c, bool abort_io)
{
        pthread_mutex_lock(&c->lock);
        c->closed = true;
        c->dead = c->dead || abort_io;
        pthread_mutex_unlock(&c->lock);
        epoll_ctl(t->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
        epoll_ctl(t->epoll_fd, EPOLL_CTL_DEL, c->wfd, NULL);
        if (abort_io)
                shutdown(c->fd, SHUT_RDWR);
        pthread_mutex_lock(&t->lock);
        t->slots[c->slot].c = NULL;
        t->slots[c->slot].gen++;
        if (c->prev)
                c->prev->next = c->next;
        else
                t->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        t->n_conns--;
        if (c->unauthorized)
                t->n_unauth--;
        pthread_mutex_unlock(&t->lock);
        conn_unref(c);
}

/* Marks c broken; its owner notices the shutdown and closes it. Called
 * with c->lock held. */
static void conn_fail(struct conn *c, int r)
{
        log_debug_errno(r, "connection failed: %m");
        c->dead = true;
        shutdown(c->fd, SHUT_RDWR);
        conn_maybe_resume(c);
}

/* Sends what is queued, without blocking; called with c->lock held. */
static int conn_flush(struct conn *c)
{
        while (c->out_head) {
                struct outbuf *o = c->out_head;
                ssize_t n =
                    send(c->fd, o->data + o->off, o->len - o->off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return 0;
                if (n <= 0)
                        return n < 0 ? negative_errno() : -EPIPE;
                o->off += (size_t)n;
                atomic_store(&c->last_active, now_ms());
                c->out_bytes -= (size_t)n;
                atomic_fetch_sub(&c->t->out_total, (size_t)n);
                if (o->off < o->len)
                        continue;
                c->out_head = o->next;
                if (!c->out_head)
                        c->out_tail = NULL;
                free(o);
        }
        return 0;
}

/* A call of c is answered (the reply, if any, about to be sent): it no
 * longer counts against the window. Called with c->lock held. */
static void call_done_locked(struct conn *c)
{
        atomic_fetch_sub(&c->inflight, 1);
        conn_maybe_resume(c);
}

/* Opens the worker's pipe for READ data (struct nfsd_call), or leaves it
 * at -1s when the system will not give a pipe of WORKER_SCRATCH bytes
 * (pipe-max-size, pipe-user-pages-soft): READ then copies through scratch. */
static void worker_pipe_open(struct worker *w)
{
        if (pipe2(w->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
                w->pipe[0] = w->pipe[1] = -1;
                return;
        }
        if (fcntl(w->pipe[1], F_SETPIPE_SZ, WORKER_SCRATCH) < WORKER_SCRATCH) {
                log_debug("no pipe of %d bytes, READ data is copied: %m", WORKER_SCRATCH);
                w->pipe[0] = safe_close(w->pipe[0]);
                w->pipe[1] = safe_close(w->pipe[1]);
        }
}

/* Discards n bytes in the worker's pipe that no reply takes; a pipe that
 * does not give them back is replaced, so the next READ finds it empty. */
static void worker_pipe_drop(struct worker *w, size_t n)
{
        while (n > 0) {
                ssize_t k = read(w->pipe[0], w->scratch, MIN(n, (size_t)WORKER_SCRATCH));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        w->pipe[0] = safe_close(w->pipe[0]);
                        w->pipe[1] = safe_close(w->pipe[1]);
                        worker_pipe_open(w);
                        return;
                }
                n -= (size_t)k;
        }
}

/* Reads n bytes from the worker's pipe into p. */
static int worker_pipe_read(struct worker *w, uint8_t *p, size_t n)
{
        while (n > 0) {
                ssize_t k = read(w->pipe[0], p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? negative_errno() : -EIO;
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

/* Sends the reply of a call of c and counts the call done, under one
 * hold of c->lock: the client may send its next call as soon as the
 * reply leaves, and the worker that reads it should not wait for this
 * one to finish its bookkeeping. The reply's pieces: the record mark and
 * encoded results (w->out), the bytes waiting in the worker's pipe (moved
 * to the socket with splice(), so READ data is never copied by the
 * server), the tail, the padding. What the socket does not take at once
 * is copied into the connection's queue, the pipe left empty. */
static void reply(struct worker *w, struct conn *c, const struct rpc_reply *rep)
{
        static const uint8_t zeros[4];
        uint8_t *out = w->out;
        size_t bulk = rep->pipe_len + rep->tail_len;
        size_t pad = (4 - bulk % 4) % 4;
        size_t body = rep->len + bulk + pad;
        uint32_t mark = 0x80000000u | (uint32_t)body;
        /* iov[1] stands for the pipe's bytes. */
        struct iovec iov[4] = {
            {.iov_base = out, .iov_len = rep->len + 4},
            {.iov_base = NULL, .iov_len = rep->pipe_len},
            {.iov_base = (void *)rep->tail, .iov_len = rep->tail_len},
            {.iov_base = (void *)zeros, .iov_len = pad},
        };
        size_t total = body + 4, sent = 0, in_pipe = rep->pipe_len;
        size_t pipe_at = iov[0].iov_len, pipe_end = pipe_at + rep->pipe_len;
        struct outbuf *o;
        int r;

        out[0] = mark >> 24;
        out[1] = mark >> 16;
        out[2] = mark >> 8;
        out[3] = mark;
        pthread_mutex_lock(&c->lock);
        call_done_locked(c);
        if (c->dead)
                goto out;
        /* Straight from the worker's buffers when nothing is queued before. */
        while (!c->out_head && sent < total) {
                ssize_t n;

                if (sent >= pipe_at && sent < pipe_end) {
                        n = splice(w->pipe[0], NULL, c->fd, NULL, pipe_end - sent,
                                   SPLICE_F_NONBLOCK | (pipe_end < total ? SPLICE_F_MORE : 0));
                        if (n < 0 && errno == EINVAL)
                                break; /* a socket splice() cannot feed: copied below */
                        if (n > 0)
                                in_pipe -= (size_t)n;
                } else {
                        struct iovec v[3];
                        struct msghdr m = {.msg_iov = v};
                        size_t skip = sent;
                        int flags = MSG_NOSIGNAL | MSG_DONTWAIT;

                        for (size_t i = 0; i < 4; i++) {
                                if (skip >= iov[i].iov_len) {
                                        skip -= iov[i].iov_len;
                                        continue;
                                }
                                if (i == 1) {
                                        /* The pipe's bytes follow: one segment with them. */
                                        flags |= MSG_MORE;
                                        break;
                                }
                                v[m.msg_iovlen++] = (struct iovec){
                                    .iov_base = (uint8_t *)iov[i].iov_base + skip,
                                    .iov_len = iov[i].iov_len - skip,
                                };
                                skip = 0;
                        }
                        n = sendmsg(c->fd, &m, flags);
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n <= 0) {
                        conn_fail(c, n < 0 ? negative_errno() : -EPIPE);
                        goto out;
                }
                sent += (size_t)n;
                atomic_store(&c->last_active, now_ms());
        }
        if (sent < total) {
                size_t at = 0, skip = sent;

                /* A client that lets replies pile up is dropped, so such
                 * clients cannot exhaust the server's memory. */
                if (c->out_bytes + (total - sent) > c->t->out_limit ||
                    atomic_load(&c->t->out_total) + (total - sent) > c->t->out_limit_all) {
                        conn_fail(c, -ENOBUFS);
                        goto out;
                }
                o = malloc(sizeof(*o) + total - sent);
                if (!o) {
                        conn_fail(c, -ENOMEM);
                        goto out;
                }
                *o = (struct outbuf){.len = total - sent};
                for (size_t i = 0; i < 4; i++) {
                        if (skip >= iov[i].iov_len) {
                                skip -= iov[i].iov_len;
                                continue;
                        }
                        if (i == 1) {
                                r = worker_pipe_read(w, o->data + at, iov[i].iov_len - skip);
                                if (r < 0) {
                                        free(o);
                                        conn_fail(c, r);
                                        goto out;
                                }
                                in_pipe -= iov[i].iov_len - skip;
                        } else
                                memcpy(o->data + at, (uint8_t *)iov[i].iov_base + skip,
                                       iov[i].iov_len - skip);
                        at += iov[i].iov_len - skip;
                        skip = 0;
                }
                if (c->out_tail)
                        c->out_tail->next = o;
                else
                        c->out_head = o;
                c->out_tail = o;
                c->out_bytes += o->len;
                atomic_fetch_add(&c->t->out_total, o->len);
                r = conn_flush(c);
                if (r < 0)
                        conn_fail(c, r);
                conn_want_write(c);
        }
out:
        pthread_mutex_unlock(&c->lock);
        if (in_pipe > 0)
                worker_pipe_drop(w, in_pipe);
}

static void conn_read_event(struct worker *w, struct conn *c, uint32_t events);

static void run_job(struct worker *w, struct job *j)
{
        struct rpc_reply rep;
        int n;

        if (!j->rec) {
                /* The read side, handed over with bytes in its stash. */
                conn_read_event(w, j->conn, 0);
                job_free(j);
                return;
        }
        n = rpc_handle(w->t->server, &j->conn->peer, j->rec, j->len, w->out + 4,
                       WORKER_OUT_SIZE - 4, w->scratch, WORKER_SCRATCH,
                       w->pipe[0] >= 0 ? w->pipe : NULL, &rep);
        if (rep.pipe_drop > 0)
                worker_pipe_drop(w, rep.pipe_drop);
        /* The reply is encoded and holds nothing of the request: its memory
         * goes first, so the connection may read again. */
        mem_sub(j->conn, j->cap);
        rec_free(w->t, j->rec, j->cap);
        j->rec = NULL;
        if (n > 0)
                reply(w, j->conn, &rep);
        else {
                pthread_mutex_lock(&j->conn->lock);
                if (n < 0)
                        conn_fail(j->conn, n);
                call_done_locked(j->conn);
                pthread_mutex_unlock(&j->conn->lock);
        }
        job_free(j);
}

/* A record is complete: keep it for the reading worker (*first) or queue
 * it for another. Returns 1 when that fills the connection's in-flight
 * window (no more records until calls complete), 0, or -ENOMEM. */
static int record_done(struct transport *t, struct conn *c, struct job **first)
{
        struct job *j = malloc(sizeof(*j));
        bool full;

        if (!j)
                return -ENOMEM;
        atomic_fetch_add(&c->refs, 1);
        /* Its bytes stay counted for c until the call is answered. */
        *j = (struct job){.conn = c, .rec = c->rec, .len = c->rec_len, .cap = c->rec_cap};
        c->rec = NULL;
        c->rec_len = c->rec_cap = 0;
        full = atomic_fetch_add(&c->inflight, 1) + 1 >= MAX_INFLIGHT;

        if (!*first)
                *first = j;
        else
                queue_job(t, j);
        return full ? 1 : 0;
}

/* Makes room for need bytes of record: grows with what arrives (doubling),
 * never beyond what the current fragment announces. */
static int rec_grow(struct conn *c, size_t need)
{
        size_t cap, end = c->rec_len + c->frag_left;
        uint8_t *n;

        if (need <= c->rec_cap)
                return 0;
        if (end >= POOL_MIN && c->rec_cap < POOL_MIN) {
                n = pool_get(c->t, &cap);
                if (n) {
                        if (c->rec_len > 0)
                                memcpy(n, c->rec, c->rec_len);
                        free(c->rec);
                        mem_add(c, cap - c->rec_cap);
                        c->rec = n;
                        c->rec_cap = cap;
                        if (need <= cap)
                                return 0;
                }
        }
        cap = MAX(MAX(c->rec_cap * 2, (size_t)512), need);
        cap = MIN(cap, MAX(end, need));
        n = realloc(c->rec, cap);
        if (!n)
                return -ENOMEM;
        mem_add(c, cap - c->rec_cap);
        c->rec = n;
        c->rec_cap = cap;
        return 0;
}

/* Ends the current fragment once all its bytes are in; a last fragment
 * completes the record (then as record_done()). */
static int frag_check_done(struct transport *t, struct conn *c, struct job **first)
{
        if (!c->in_frag || c->frag_left > 0)
                return 0;
        c->in_frag = false;
        if (!c->frag_last)
                return 0;
        if (c->rec_len == 0)
                return -EBADMSG;
        return record_done(t, c, first);
}

/* Feeds bytes from the stream into record assembly, up to the record that
 * fills the in-flight window; *ret_used says how many were taken. Returns
 * 0, or -EBADMSG when the stream breaks the rules (the connection is then
 * closed). */
static int conn_feed(struct transport *t, struct conn *c, const uint8_t *p, size_t n,
                     struct job **first, size_t *ret_used)
{
        size_t all = n;
        int r;

        *ret_used = 0;
        while (n > 0) {
                if (!c->in_frag) {
                        size_t take = MIN(n, 4 - c->mark_have);
                        uint32_t m;

                        memcpy(c->mark + c->mark_have, p, take);
                        c->mark_have += take;
                        p += take;
                        n -= take;
                        if (c->mark_have < 4)
                                break;
                        c->mark_have = 0;
                        m = (uint32_t)c->mark[0] << 24 | (uint32_t)c->mark[1] << 16 |
                            (uint32_t)c->mark[2] << 8 | c->mark[3];
                        c->frag_last = m & 0x80000000u;
                        c->frag_left = m & 0x7fffffffu;
                        if (c->rec_len + c->frag_left > TRANSPORT_MAX_RECORD) {
                                log_debug("record of more than %u bytes, closing",
                                          TRANSPORT_MAX_RECORD);
                                return -EBADMSG;
                        }
                        c->in_frag = true;
                }
                if (c->frag_left > 0 && n > 0) {
                        size_t take = MIN(n, (size_t)c->frag_left);
                        r = rec_grow(c, c->rec_len + take);
                        if (r < 0)
                                return r;
                        memcpy(c->rec + c->rec_len, p, take);
                        c->rec_len += take;
                        c->frag_left -= (uint32_t)take;
                        p += take;
                        n -= take;
                }
                r = frag_check_done(t, c, first);
                if (r < 0)
                        return r;
                if (r > 0)
                        break; /* the window is full */
        }
        *ret_used = all - n;
        return 0;
}

/* Keeps bytes read past a full in-flight window for later. */
static int conn_stash(struct conn *c, const uint8_t *p, size_t n)
{
        uint8_t *s = malloc(n);

        if (!s)
                return -ENOMEM;
        memcpy(s, p, n);
        mem_add(c, n);
        c->stash = s;
        c->stash_len = n;
        c->stash_off = 0;
        return 0;
}

static void conn_stash_drop(struct conn *c)
{
        mem_sub(c, c->stash_len);
        free(c->stash);
        c->stash = NULL;
        pthread_mutex_lock(&c->lock);
        c->stash_len = c->stash_off = 0;
        pthread_mutex_unlock(&c->lock);
}

/* Reads what arrived on c, as far as its in-flight window and its memory
 * allow. Returns 0, or < 0 when c must be closed (-ECONNRESET for a plain
 * EOF). */
static int conn_read(struct worker *w, struct conn *c, struct job **first)
{
        size_t used;
        int r;

        if (c->stash) {
                r = conn_feed(w->t, c, c->stash + c->stash_off, c->stash_len - c->stash_off, first,
                              &used);
                if (r < 0)
                        return r;
                c->stash_off += used;
                if (c->stash_off < c->stash_len)
                        return 0; /* the window is full again */
                conn_stash_drop(c);
        }
        for (int i = 0; i < READS_PER_EVENT; i++) {
                size_t allow = read_allowance(c), want;
                ssize_t n;

                if (allow == 0)
                        return 0; /* paused until memory frees */
                if (c->in_frag && c->frag_left >= READ_CHUNK) {
                        /* Bulk data (WRITE): straight into the record. */
                        want = MIN((size_t)c->frag_left, allow);
                        r = rec_grow(c, c->rec_len + want);
                        if (r < 0)
                                return r;
                        n = read(c->fd, c->rec + c->rec_len, want);
                        if (n > 0) {
                                atomic_store(&c->last_active, now_ms());
                                c->rec_len += (size_t)n;
                                c->frag_left -= (uint32_t)n;
                                r = frag_check_done(w->t, c, first);
                                if (r < 0)
                                        return r;
                                if (r > 0)
                                        return 0;
                                continue;
                        }
                } else {
                        want = MIN((size_t)READ_CHUNK, allow);
                        n = read(c->fd, w->buf, want);
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return 0;
                if (n == 0)
                        return -ECONNRESET;
                if (n < 0)
                        return negative_errno();
                atomic_store(&c->last_active, now_ms());
                r = conn_feed(w->t, c, w->buf, (size_t)n, first, &used);
                if (r < 0)
                        return r;
                if (used < (size_t)n) {
                        /* The window filled: the rest waits. */
                        r = conn_stash(c, w->buf + used, (size_t)n - used);
                        if (r < 0)
                                return r;
                        return 0;
                }
                if ((size_t)n < want)
                        return 0;
        }
        return 0;
}

/* The write side became writable: send what is queued. */
static void conn_write_event(struct conn *c)
{
        int r;

        pthread_mutex_lock(&c->lock);
        c->write_armed = false;
        r = conn_flush(c);
        if (r < 0)
                conn_fail(c, r);
        conn_want_write(c);
        conn_maybe_resume(c);
        pthread_mutex_unlock(&c->lock);
}

/* The read side has an event: this worker owns it until it re-arms it. */
static void conn_read_event(struct worker *w, struct conn *c, uint32_t events)
{
        struct job *first = NULL;
        bool dead = atomic_load(&c->dead);
        int r = 0;

        if (!dead)
                r = conn_read(w, c, &first);
        if (dead || r < 0)
                /* EOF: answers to calls still running may yet go out. */
                conn_close(w->t, c, dead || r != -ECONNRESET);
        else {
                pthread_mutex_lock(&c->lock);
                conn_read_done(c);
                pthread_mutex_unlock(&c->lock);
        }
        if (first)
                run_job(w, first);
}

/* Whether any export lets the peer in. */
static bool peer_authorized(struct transport *t, const struct sockaddr *peer)
{
        struct export_table *x = nfsd_server_get_exports(t->server);
        bool ok = false;

        for (size_t i = 0; x && i < x->n_exports && !ok; i++)
                ok = export_match(&x->exports[i], peer) != NULL;
        export_table_unref(x);
        return ok;
}

/* Closes the connection that has been idle longest, other than keep, to
 * make room. */
static void evict_oldest_idle(struct transport *t, struct conn *keep)
{
        struct conn *v = NULL;

        pthread_mutex_lock(&t->lock);
        for (struct conn *c = t->conns; c; c = c->next)
                if (c != keep &&
                    (!v || atomic_load(&c->last_active) < atomic_load(&v->last_active)))
                        v = c;
        if (v)
                atomic_fetch_add(&v->refs, 1);
        pthread_mutex_unlock(&t->lock);
        if (!v)
                return;
        pthread_mutex_lock(&v->lock);
        if (!v->closed && !v->dead && v->inflight == 0 && v->out_bytes == 0) {
                log_debug("connection table full, closing the oldest idle connection");
                conn_fail(v, -EUSERS);
        }
        pthread_mutex_unlock(&v->lock);
        conn_unref(v);
}

/* Accepts what is pending. Returns false when the listen fd must stay
 * disarmed until the next tick (out of fds or memory: re-arming a readable
 * listen fd would spin). */
static bool accept_all(struct transport *t)
{
        for (;;) {
                struct sockaddr_storage peer;
                socklen_t len = sizeof(peer);
                struct epoll_event ev;
                struct conn *c;
                bool authorized, evict;
                int fd, r, one = 1;

                fd = accept4(t->listen_fd, (struct sockaddr *)&peer, &len,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EMFILE || errno == ENFILE) {
                                /* Take one waiting peer with the reserve fd and close
                                 * it, so it learns; the rest wait for the tick. */
                                log_debug("out of file descriptors, refusing connections "
                                          "for a while");
                                t->reserve_fd = safe_close(t->reserve_fd);
                                fd = accept4(t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                                safe_close(fd);
                                t->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                                return false;
                        }
                        if (errno == ENOBUFS || errno == ENOMEM)
                                return false;
                        if (errno != EAGAIN)
                                log_debug("accept failed: %m");
                        return true;
                }
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                authorized = peer_authorized(t, (struct sockaddr *)&peer);
                c = calloc(1, sizeof(*c));
                if (!c) {
                        close(fd);
                        continue;
                }
                /* Before any of its calls is read: what it may claim. */
                r = peer_identify(fd, &peer, &c->peer);
                if (r < 0) {
                        log_debug_errno(r, "cannot tell who owns a local peer's socket, "
                                           "refusing it: %m");
                        close(fd);
                        free(c);
                        continue;
                }
                c->fd = fd;
                c->wfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                c->t = t;
                atomic_init(&c->last_active, now_ms());
                /* The write side starts armed; its first event finds nothing to send. */
                c->write_armed = true;
                atomic_init(&c->refs, 1);
                pthread_mutex_init(&c->lock, NULL);

                pthread_mutex_lock(&t->lock);
                c->slot = t->max_conns;
                if (authorized || t->n_unauth < TRANSPORT_MAX_UNAUTHORIZED)
                        for (unsigned i = 0; i < t->max_conns; i++)
                                if (!t->slots[i].c) {
                                        c->slot = i;
                                        break;
                                }
                if (c->slot == t->max_conns) {
                        pthread_mutex_unlock(&t->lock);
                        log_debug(authorized ? "too many connections, refusing one"
                                             : "too many connections from peers no export "
                                               "allows, refusing one");
                        c->closed = true;
                        conn_unref(c);
                        if (authorized)
                                evict_oldest_idle(t, NULL);
                        continue;
                }
                c->unauthorized = !authorized;
                if (c->unauthorized)
                        t->n_unauth++;
                t->slots[c->slot].c = c;
                c->gen = t->slots[c->slot].gen;
                c->next = t->conns;
                if (t->conns)
                        t->conns->prev = c;
                t->conns = c;
                t->n_conns++;
                /* Keep one slot free for the next peer. */
                evict = t->n_conns + 1 >= t->max_conns;
                pthread_mutex_unlock(&t->lock);
                if (evict)
                        evict_oldest_idle(t, c);

                /* The write side first; the read side last, since from then on
                 * another worker may own c and even close it. */
                ev = (struct epoll_event){.events = EPOLLOUT | EPOLLONESHOT,
                                          .data.u64 = EV_CONN(c->slot, c->gen, 1)};
                r = c->wfd < 0 ? -1 : epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, c->wfd, &ev);
                if (r == 0) {
                        ev = (struct epoll_event){.events = EPOLLIN | EPOLLONESHOT,
                                                  .data.u64 = EV_CONN(c->slot, c->gen, 0)};
                        r = epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
                }
                if (r < 0)
                        conn_close(t, c, true);
        }
}

static void *worker_main(void *userdata)
{
        struct worker w = {.t = userdata};
        struct transport *t = w.t;
        struct epoll_event lev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = EV_LISTEN};

        w.out = malloc(WORKER_OUT_SIZE);
        w.scratch = malloc(WORKER_SCRATCH);
        w.buf = malloc(READ_CHUNK);
        worker_pipe_open(&w);
        if (!w.out || !w.scratch || !w.buf) {
                log_error("worker: out of memory");
                goto out;
        }
        for (bool after_call = false;;) {
                struct epoll_event ev;
                int n = worker_wait(t, &ev, after_call);

                after_call = false;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        log_error("epoll_wait failed: %m");
                        break;
                }
                if (n == 0)
                        continue;
                if (ev.data.u64 == EV_STOP)
                        break;
                if (ev.data.u64 == EV_LISTEN) {
                        if (accept_all(t))
                                (void)epoll_ctl(t->epoll_fd, EPOLL_CTL_MOD, t->listen_fd, &lev);
                        else
                                atomic_store(&t->listen_paused, true);
                } else if (ev.data.u64 == EV_JOBS) {
                        uint64_t v;
                        struct job *j = NULL;

                        if (read(t->jobs_fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
                                continue; /* another worker took it */
                        pthread_mutex_lock(&t->lock);
                        j = t->head;
                        if (j) {
                                t->head = j->next;
                                if (!t->head)
                                        t->tail = NULL;
                        }
                        pthread_mutex_unlock(&t->lock);
                        if (j) {
                                run_job(&w, j);
                                after_call = true;
                        }
                } else {
                        unsigned slot = (unsigned)(ev.data.u64 & 0x7fffffffu) >> 1;
                        uint32_t gen = (uint32_t)(ev.data.u64 >> 32);
                        struct conn *c = NULL;

                        pthread_mutex_lock(&t->lock);
                        if (slot < t->max_conns && t->slots[slot].c && t->slots[slot].gen == gen) {
                                c = t->slots[slot].c;
                                atomic_fetch_add(&c->refs, 1);
                        }
                        pthread_mutex_unlock(&t->lock);
                        if (!c)
                                continue; /* closed meanwhile */
                        if (ev.data.u64 & EV_PAUSED)
                                conn_paused_event(t, c);
                        else if (ev.data.u64 & 1)
                                conn_write_event(c);
                        else {
                                conn_read_event(&w, c, ev.events);
                                after_call = true;
                        }
                        conn_unref(c);
                }
        }
out:
        free(w.out);
        free(w.scratch);
        free(w.buf);
        safe_close(w.pipe[0]);
        safe_close(w.pipe[1]);
        return NULL;
}

int transport_new(struct nfsd_server *s, int listen_fd, unsigned n_workers,
                  const struct transport_limits *limits, struct transport **ret)
{
        struct transport *t;
        struct epoll_event ev;
        int r;

        t = calloc(1, sizeof(*t));
        if (!t) {
                safe_close(listen_fd);
                return -ENOMEM;
        }
        t->server = s;
        t->listen_fd = listen_fd;
        t->stop_fd = t->jobs_fd = -1;
        pthread_mutex_init(&t->lock, NULL);
        pthread_mutex_init(&t->pool_lock, NULL);
        t->pool = calloc(MAX(n_workers, 1u), sizeof(*t->pool));
        t->max_conns = MAX(limits->max_connections, 1u);
        t->idle_ms = (int64_t)limits->idle_timeout * 1000;
        t->poll_ns = (int64_t)limits->poll_us * 1000;
        /* A quarter of the budget for every connection's floor, half shared,
         * a quarter for replies (see the memory rule above). */
        t->mem_floor = MIN(MAX(limits->max_memory / 4 / t->max_conns, (size_t)4096), (size_t)65536);
        t->mem_shared = limits->max_memory / 2;
        t->out_limit_all = limits->max_memory / 4;
        t->out_limit = MIN((size_t)OUT_LIMIT, MAX(t->out_limit_all / 2, (size_t)4 * 1024 * 1024));
        t->slots = calloc(t->max_conns, sizeof(*t->slots));
        t->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (!t->slots || !t->pool) {
                transport_free(t);
                return -ENOMEM;
        }
        t->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        t->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        t->jobs_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
        if (t->epoll_fd < 0 || t->stop_fd < 0 || t->jobs_fd < 0 ||
            fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK) < 0) {
                r = negative_errno();
                transport_free(t);
                return r;
        }
        ev = (struct epoll_event){.events = EPOLLIN | EPOLLONESHOT, .data.u64 = EV_LISTEN};
        if (epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev) < 0)
                goto fail;
        ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = EV_STOP};
        if (epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, t->stop_fd, &ev) < 0)
                goto fail;
        ev = (struct epoll_event){.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = EV_JOBS};
        if (epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, t->jobs_fd, &ev) < 0)
                goto fail;

        t->workers = calloc(n_workers, sizeof(*t->workers));
        if (!t->workers) {
                transport_free(t);
                return -ENOMEM;
        }
        for (unsigned i = 0; i < n_workers; i++) {
                r = pthread_create(&t->workers[i], NULL, worker_main, t);
                if (r != 0) {
                        transport_free(t);
                        return -r;
                }
                t->n_workers++;
        }
        *ret = t;
        return 0;
fail:
        r = negative_errno();
        transport_free(t);
        return r;
}

/* Every TICK_MS: closes connections idle too long, resumes reads paused
 * for memory, re-arms a listen fd left disarmed, gives freed memory back. */
static void transport_tick(struct transport *t)
{
        int64_t now = now_ms();
        size_t n = 0, held = atomic_load(&t->mem) + atomic_load(&t->out_total);
        struct conn **list;
        struct epoll_event lev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = EV_LISTEN};

        if (atomic_exchange(&t->listen_paused, false))
                (void)epoll_ctl(t->epoll_fd, EPOLL_CTL_MOD, t->listen_fd, &lev);

        pthread_mutex_lock(&t->lock);
        list = malloc(MAX(t->n_conns, (size_t)1) * sizeof(*list));
        for (struct conn *c = t->conns; list && c; c = c->next) {
                atomic_fetch_add(&c->refs, 1);
                list[n++] = c;
        }
        pthread_mutex_unlock(&t->lock);
        for (size_t i = 0; i < n; i++) {
                struct conn *c = list[i];

                pthread_mutex_lock(&c->lock);
                if (!c->closed && !c->dead) {
                        if (t->idle_ms > 0 && c->inflight == 0 && c->out_bytes == 0 &&
                            now - atomic_load(&c->last_active) > t->idle_ms) {
                                log_debug("closing a connection idle for %" PRId64 " s",
                                          (now - atomic_load(&c->last_active)) / 1000);
                                conn_fail(c, -ETIMEDOUT);
                        } else
                                conn_maybe_resume(c);
                }
                pthread_mutex_unlock(&c->lock);
                conn_unref(c);
        }
        free(list);

        /* Entries the exports' child caches hold fds of unused for a
         * while are closed (a removed file is freed soon). */
        {
                struct export_table *x = nfsd_server_get_exports(t->server);

                for (size_t i = 0; x && i < x->n_exports; i++)
                        childcache_expire(x->exports[i].childcache, CHILDCACHE_IDLE_MS);
                export_table_unref(x);
        }

        /* Freed request and reply buffers go back to the system once the
         * queues have drained. */
        t->mem_peak = MAX(t->mem_peak, held);
        if (t->mem_peak > 8 * 1024 * 1024 && held < 1024 * 1024) {
                pool_drop(t);
                malloc_trim(0);
                t->mem_peak = held;
        }
}

int transport_run(struct transport *t, int signal_fd, transport_signal_fn on_signal, void *userdata)
{
        for (;;) {
                struct signalfd_siginfo si;
                struct pollfd p = {.fd = signal_fd, .events = POLLIN};
                ssize_t n;

                if (poll(&p, 1, TICK_MS) == 0) {
                        transport_tick(t);
                        continue;
                }
                n = read(signal_fd, &si, sizeof(si));
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n != (ssize_t)sizeof(si))
                        return n < 0 ? negative_errno() : -EIO;
                if (on_signal(si.ssi_signo, userdata) < 0)
                        return 0;
        }
}

struct transport *transport_free(struct transport *t)
{
        uint64_t one = 1;

        if (!t)
                return NULL;
        if (t->stop_fd >= 0 && write(t->stop_fd, &one, sizeof(one)) < 0)
                log_debug("cannot signal the workers: %m");
        for (unsigned i = 0; i < t->n_workers; i++)
                pthread_join(t->workers[i], NULL);
        free(t->workers);
        while (t->head) {
                struct job *j = t->head;
                t->head = j->next;
                job_free(j);
        }
        while (t->conns)
                conn_close(t, t->conns, true);
        safe_close(t->epoll_fd);
        safe_close(t->listen_fd);
        safe_close(t->stop_fd);
        safe_close(t->jobs_fd);
        safe_close(t->reserve_fd);
        free(t->slots);
        pool_drop(t);
        free(t->pool);
        pthread_mutex_destroy(&t->pool_lock);
        pthread_mutex_destroy(&t->lock);
        free(t);
        return NULL;
}
