/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "macro.h"
#include "rpc.h"
#include "transport.h"

#define MAX_CONNECTIONS 1024
#define MAX_INFLIGHT    32 /* calls of one connection queued or running */
#define READ_CHUNK      65536
#define READS_PER_EVENT 8                 /* then the other connections get their turn */
#define OUT_MAX         (4 * 1024 * 1024) /* queued reply bytes before reading pauses */
#define WORKER_OUT_SIZE (TRANSPORT_MAX_RECORD + 4)
#define WORKER_SCRATCH  (1024 * 1024)

struct conn {
        int fd;
        atomic_int refs;
        struct transport *t;
        struct sockaddr_storage peer;
        struct conn *prev, *next; /* the loop's list of open connections */

        pthread_mutex_t lock; /* output, inflight, events, dead */
        unsigned inflight;
        uint32_t events; /* what epoll watches for */
        bool dead;
        struct outbuf *out_head, *out_tail;
        size_t out_bytes;

        /* Record assembly, touched by the loop thread only. */
        uint8_t mark[4];
        size_t mark_have;
        uint32_t frag_left;
        bool frag_last;
        bool in_frag;
        uint8_t *rec;
        size_t rec_len, rec_cap;
};

/* Reply bytes the socket did not take at once; the loop sends them when it
 * becomes writable, so a client that does not read holds up no worker. */
struct outbuf {
        struct outbuf *next;
        size_t len, off;
        uint8_t data[];
};

struct job {
        struct job *next;
        struct conn *conn;
        uint8_t *rec;
        size_t len;
};

struct transport {
        struct nfsd_server *server;
        int listen_fd;
        int epoll_fd;
        struct conn *conns;
        size_t n_conns;

        pthread_mutex_t qlock;
        pthread_cond_t qcond;
        struct job *head, *tail;
        bool stopping;

        pthread_t *workers;
        unsigned n_workers;
};

static char tag_listen, tag_signal;

static void conn_unref(struct conn *c)
{
        if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
                return;
        safe_close(c->fd);
        while (c->out_head) {
                struct outbuf *o = c->out_head;
                c->out_head = o->next;
                free(o);
        }
        pthread_mutex_destroy(&c->lock);
        free(c->rec);
        free(c);
}

static void job_free(struct job *j)
{
        conn_unref(j->conn);
        free(j->rec);
        free(j);
}

/* Stops reading c and forgets it; in-flight calls keep it alive until they
 * are answered (or fail to be). */
static void conn_close(struct transport *t, struct conn *c, bool abort_io)
{
        pthread_mutex_lock(&c->lock);
        c->dead = abort_io || c->dead;
        pthread_mutex_unlock(&c->lock);
        epoll_ctl(t->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
        if (abort_io)
                shutdown(c->fd, SHUT_RDWR);
        if (c->prev)
                c->prev->next = c->next;
        else
                t->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        t->n_conns--;
        conn_unref(c);
}

/* Recomputes what epoll watches for c; called with c->lock held. */
static void conn_update_events(struct conn *c)
{
        uint32_t ev = 0;

        if (c->dead)
                return;
        if (c->inflight < MAX_INFLIGHT && c->out_bytes < OUT_MAX)
                ev |= EPOLLIN;
        if (c->out_head)
                ev |= EPOLLOUT;
        if (ev != c->events) {
                struct epoll_event e = {.events = ev, .data.ptr = c};
                /* Fails harmlessly (ENOENT) once the loop has closed c. */
                (void)epoll_ctl(c->t->epoll_fd, EPOLL_CTL_MOD, c->fd, &e);
                c->events = ev;
        }
}

/* Marks c broken; the loop notices the shutdown and closes it. */
static void conn_fail(struct conn *c, int r)
{
        log_debug_errno(r, "connection failed: %m");
        c->dead = true;
        shutdown(c->fd, SHUT_RDWR);
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
                c->out_bytes -= (size_t)n;
                if (o->off < o->len)
                        continue;
                c->out_head = o->next;
                if (!c->out_head)
                        c->out_tail = NULL;
                free(o);
        }
        return 0;
}

static void reply(struct conn *c, uint8_t *out, const struct rpc_reply *rep)
{
        static const uint8_t zeros[4];
        size_t pad = (4 - rep->tail_len % 4) % 4;
        size_t body = rep->len + rep->tail_len + pad;
        uint32_t mark = 0x80000000u | (uint32_t)body;
        struct iovec iov[3] = {
            {.iov_base = out, .iov_len = rep->len + 4},
            {.iov_base = (void *)rep->tail, .iov_len = rep->tail_len},
            {.iov_base = (void *)zeros, .iov_len = pad},
        };
        size_t total = body + 4, sent = 0;
        struct outbuf *o;
        int r;

        out[0] = mark >> 24;
        out[1] = mark >> 16;
        out[2] = mark >> 8;
        out[3] = mark;
        pthread_mutex_lock(&c->lock);
        if (c->dead)
                goto out;
        /* Straight from the worker's buffers when nothing is queued before. */
        while (!c->out_head && sent < total) {
                struct iovec v[3];
                struct msghdr m = {.msg_iov = v};
                size_t skip = sent;
                ssize_t n;

                for (size_t i = 0; i < 3; i++) {
                        if (skip >= iov[i].iov_len) {
                                skip -= iov[i].iov_len;
                                continue;
                        }
                        v[m.msg_iovlen++] = (struct iovec){
                            .iov_base = (uint8_t *)iov[i].iov_base + skip,
                            .iov_len = iov[i].iov_len - skip,
                        };
                        skip = 0;
                }
                n = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n <= 0) {
                        conn_fail(c, n < 0 ? negative_errno() : -EPIPE);
                        goto out;
                }
                sent += (size_t)n;
        }
        if (sent < total) {
                size_t at = 0, skip = sent;

                o = malloc(sizeof(*o) + total - sent);
                if (!o) {
                        conn_fail(c, -ENOMEM);
                        goto out;
                }
                *o = (struct outbuf){.len = total - sent};
                for (size_t i = 0; i < 3; i++) {
                        if (skip >= iov[i].iov_len) {
                                skip -= iov[i].iov_len;
                                continue;
                        }
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
                r = conn_flush(c);
                if (r < 0)
                        conn_fail(c, r);
        }
out:
        pthread_mutex_unlock(&c->lock);
}

static void conn_writable(struct conn *c)
{
        int r;

        pthread_mutex_lock(&c->lock);
        r = conn_flush(c);
        if (r < 0)
                conn_fail(c, r);
        conn_update_events(c);
        pthread_mutex_unlock(&c->lock);
}

static void call_done(struct conn *c)
{
        pthread_mutex_lock(&c->lock);
        c->inflight--;
        conn_update_events(c);
        pthread_mutex_unlock(&c->lock);
}

static void *worker_main(void *userdata)
{
        struct transport *t = userdata;
        _cleanup_free_ uint8_t *out = malloc(WORKER_OUT_SIZE);
        _cleanup_free_ void *scratch = malloc(WORKER_SCRATCH);

        if (!out || !scratch) {
                log_error("worker: out of memory");
                return NULL;
        }
        for (;;) {
                struct job *j;
                struct rpc_reply rep;
                int n;

                pthread_mutex_lock(&t->qlock);
                while (!t->head && !t->stopping)
                        pthread_cond_wait(&t->qcond, &t->qlock);
                if (t->stopping) {
                        pthread_mutex_unlock(&t->qlock);
                        break;
                }
                j = t->head;
                t->head = j->next;
                if (!t->head)
                        t->tail = NULL;
                pthread_mutex_unlock(&t->qlock);

                n = rpc_handle(t->server, (const struct sockaddr *)&j->conn->peer, j->rec, j->len,
                               out + 4, WORKER_OUT_SIZE - 4, scratch, WORKER_SCRATCH, &rep);
                if (n > 0)
                        reply(j->conn, out, &rep);
                else if (n < 0) {
                        pthread_mutex_lock(&j->conn->lock);
                        conn_fail(j->conn, (int)n);
                        pthread_mutex_unlock(&j->conn->lock);
                }
                call_done(j->conn);
                job_free(j);
        }
        return NULL;
}

static void enqueue(struct transport *t, struct conn *c, uint8_t *rec, size_t len)
{
        struct job *j = malloc(sizeof(*j));

        if (!j) {
                free(rec);
                return;
        }
        atomic_fetch_add(&c->refs, 1);
        *j = (struct job){.conn = c, .rec = rec, .len = len};

        pthread_mutex_lock(&c->lock);
        c->inflight++;
        conn_update_events(c);
        pthread_mutex_unlock(&c->lock);

        pthread_mutex_lock(&t->qlock);
        if (t->tail)
                t->tail->next = j;
        else
                t->head = j;
        t->tail = j;
        pthread_cond_signal(&t->qcond);
        pthread_mutex_unlock(&t->qlock);
}

/* Ends the current fragment once all its bytes are in; a last fragment
 * completes the record, which goes to the workers. */
static int frag_check_done(struct transport *t, struct conn *c)
{
        if (!c->in_frag || c->frag_left > 0)
                return 0;
        c->in_frag = false;
        if (!c->frag_last)
                return 0;
        if (c->rec_len == 0)
                return -EBADMSG;
        enqueue(t, c, c->rec, c->rec_len);
        c->rec = NULL;
        c->rec_len = c->rec_cap = 0;
        return 0;
}

/* Feeds bytes from the stream into record assembly. Returns 0, or -EBADMSG
 * when the stream breaks the rules (the connection is then closed). */
static int conn_feed(struct transport *t, struct conn *c, const uint8_t *p, size_t n)
{
        int r;

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
                        if (c->rec_len + c->frag_left > c->rec_cap) {
                                size_t cap = MAX(c->rec_len + c->frag_left, (size_t)512);
                                uint8_t *nr = realloc(c->rec, cap);
                                if (!nr)
                                        return -ENOMEM;
                                c->rec = nr;
                                c->rec_cap = cap;
                        }
                        c->in_frag = true;
                }
                if (c->frag_left > 0) {
                        size_t take = MIN(n, (size_t)c->frag_left);
                        memcpy(c->rec + c->rec_len, p, take);
                        c->rec_len += take;
                        c->frag_left -= (uint32_t)take;
                        p += take;
                        n -= take;
                }
                r = frag_check_done(t, c);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void conn_readable(struct transport *t, struct conn *c)
{
        static uint8_t buf[READ_CHUNK]; /* the loop thread's alone */

        for (int i = 0; i < READS_PER_EVENT; i++) {
                ssize_t n;

                if (c->in_frag && c->frag_left >= sizeof(buf)) {
                        /* Bulk data (WRITE): straight into the record. */
                        n = read(c->fd, c->rec + c->rec_len, c->frag_left);
                        if (n > 0) {
                                c->rec_len += (size_t)n;
                                c->frag_left -= (uint32_t)n;
                                if (frag_check_done(t, c) < 0) {
                                        conn_close(t, c, true);
                                        return;
                                }
                                continue;
                        }
                } else
                        n = read(c->fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        /* EOF: answers to calls still running may yet go out. */
                        conn_close(t, c, n < 0);
                        return;
                }
                if (conn_feed(t, c, buf, (size_t)n) < 0) {
                        conn_close(t, c, true);
                        return;
                }
                pthread_mutex_lock(&c->lock);
                bool paused = !(c->events & EPOLLIN);
                pthread_mutex_unlock(&c->lock);
                if (paused || (size_t)n < sizeof(buf))
                        return;
        }
}

static void accept_one(struct transport *t)
{
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        struct epoll_event ev;
        struct conn *c;
        int fd, one = 1;

        fd = accept4(t->listen_fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        log_debug("accept failed: %m");
                return;
        }
        if (t->n_conns >= MAX_CONNECTIONS) {
                log_debug("too many connections, refusing one");
                close(fd);
                return;
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = calloc(1, sizeof(*c));
        if (!c) {
                close(fd);
                return;
        }
        c->fd = fd;
        c->t = t;
        c->peer = peer;
        atomic_init(&c->refs, 1);
        pthread_mutex_init(&c->lock, NULL);
        c->events = EPOLLIN;
        ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                conn_unref(c);
                return;
        }
        c->next = t->conns;
        if (t->conns)
                t->conns->prev = c;
        t->conns = c;
        t->n_conns++;
}

int transport_new(struct nfsd_server *s, int listen_fd, unsigned n_workers, struct transport **ret)
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
        pthread_mutex_init(&t->qlock, NULL);
        pthread_cond_init(&t->qcond, NULL);
        t->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (t->epoll_fd < 0) {
                r = negative_errno();
                transport_free(t);
                return r;
        }
        if (fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK) < 0) {
                r = negative_errno();
                transport_free(t);
                return r;
        }
        ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &tag_listen};
        if (epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev) < 0) {
                r = negative_errno();
                transport_free(t);
                return r;
        }
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
}

int transport_run(struct transport *t, int signal_fd, transport_signal_fn on_signal, void *userdata)
{
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &tag_signal};

        if (signal_fd >= 0 && epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, signal_fd, &ev) < 0)
                return negative_errno();
        for (;;) {
                struct epoll_event evs[64];
                int n = epoll_wait(t->epoll_fd, evs, ELEMENTSOF(evs), -1);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                for (int i = 0; i < n; i++) {
                        void *p = evs[i].data.ptr;

                        if (p == &tag_listen)
                                accept_one(t);
                        else if (p == &tag_signal) {
                                struct signalfd_siginfo si;
                                if (read(signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si) &&
                                    on_signal(si.ssi_signo, userdata) < 0)
                                        return 0;
                        } else {
                                if (evs[i].events & EPOLLOUT)
                                        conn_writable(p);
                                if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                                        conn_readable(t, p);
                        }
                }
        }
}

struct transport *transport_free(struct transport *t)
{
        if (!t)
                return NULL;
        pthread_mutex_lock(&t->qlock);
        t->stopping = true;
        pthread_cond_broadcast(&t->qcond);
        pthread_mutex_unlock(&t->qlock);
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
        pthread_mutex_destroy(&t->qlock);
        pthread_cond_destroy(&t->qcond);
        free(t);
        return NULL;
}
