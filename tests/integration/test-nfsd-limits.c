/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a peer may hold of strata-nfsd: calls padded with garbage, idle
 * connections, a full connection table, peers no export allows, running
 * out of file descriptors, and hundreds of hostile connections against
 * the memory budget while a normal client is still served, and how many
 * calls of one pipelining connection the server takes in while every
 * worker is held. The bounds asserted are memory (the server's resident
 * size, the bytes it took off a socket) and CPU time burnt, never how fast
 * something is. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nfsd-test.h"

#define X(t) ((xdrproc_t)xdr_##t)
#define MIB  (1024 * 1024)

static int port;

static bool_t xdr_void_args(XDR *x, void *p)
{
        return TRUE;
}

static int null_call(struct rc *c)
{
        return rc_call(c, NFS3_PROGRAM, NFS3_VERSION, 0, X(void_args), NULL, X(void_args), NULL);
}

/* Whether the server closed c within ms milliseconds. */
static bool closed_within(struct rc *c, int ms)
{
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        char b[256];

        for (;;) {
                ssize_t n;

                if (poll(&p, 1, ms) <= 0)
                        return false;
                n = recv(c->fd, b, sizeof(b), MSG_DONTWAIT);
                if (n == 0 || (n < 0 && errno == ECONNRESET))
                        return true;
                if (n < 0 && errno != EAGAIN)
                        return true;
        }
}

/* A field of /proc/PID/status in KiB. */
static long status_kib(pid_t pid, const char *field)
{
        char path[64], line[256];
        long v = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, field, strlen(field)) == 0 && line[strlen(field)] == ':')
                        v = strtol(line + strlen(field) + 1, NULL, 10);
        fclose(f);
        return v;
}

/* utime + stime of pid, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
        char path[64], buf[1024], *p;
        unsigned long ut, st;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        f = fopen(path, "re");
        if (!f || !fgets(buf, sizeof(buf), f)) {
                if (f)
                        fclose(f);
                return -1;
        }
        fclose(f);
        p = strrchr(buf, ')');
        if (!p ||
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
                return -1;
        return (long)(ut + st);
}

static void garbage(struct tmp *t)
{
        struct server srv;
        const char *args[] = {"--state-dir", t->state, t->export, NULL};
        struct rc c = {.fd = -1};
        uint8_t buf[512];
        struct fh root;
        size_t n;
        void *rep;
        size_t len;
        int r;

        server_start(&srv, args);
        port = srv.port;
        rc_connect(&c, port);
        CHECK(null_call(&c) == 0, "a NULL call is answered");
        n = rc_build_call(&c, NFS3_PROGRAM, NFS3_VERSION, 0, X(void_args), NULL, buf, sizeof(buf));
        memset(buf + n, 0xaa, 8);
        r = rc_send_record(&c, buf, n + 8);
        r = r < 0 ? r : rc_recv_record(&c, &rep, &len);
        /* reply: xid, REPLY, MSG_ACCEPTED, verf (flavor, length), accept_stat */
        CHECK(r == 0 && len >= 24 && ntohl(((uint32_t *)rep)[5]) == GARBAGE_ARGS,
              "a NULL call with 8 bytes after its arguments is GARBAGE_ARGS");
        if (r == 0)
                free(rep);
        CHECK(mnt(&c, "/", &root) == MNT3_OK, "MNT");
        {
                GETATTR3args a = {.object = fh_arg(&root)};

                n = rc_build_call(&c, NFS3_PROGRAM, NFS3_VERSION, 1, X(GETATTR3args), &a, buf,
                                  sizeof(buf));
                memset(buf + n, 0, 64);
                r = rc_send_record(&c, buf, n + 64);
                r = r < 0 ? r : rc_recv_record(&c, &rep, &len);
                CHECK(r == 0 && len >= 24 && ntohl(((uint32_t *)rep)[5]) == GARBAGE_ARGS,
                      "a GETATTR padded with 64 zero bytes is GARBAGE_ARGS");
                if (r == 0)
                        free(rep);
        }
        CHECK(null_call(&c) == 0, "the connection still serves");
        rc_close(&c);
        server_stop(&srv);
}

/* How many of n NULL calls, each sent once the last is answered, are. */
static int calls_in_turn(struct rc *c, int n)
{
        int ok = 0;

        for (int i = 0; i < n; i++)
                ok += null_call(c) == 0;
        return ok;
}

/* A worker polls for the next call after each reply (--poll-us), but only
 * for a moment: a server whose client has stopped calling sleeps. */
static void polling(struct tmp *t)
{
        struct server srv;
        const char *args[] = {"--state-dir", t->state, "--poll-us", "10000", t->export, NULL};
        const char *off[] = {"--state-dir", t->state, "--poll-us", "0", t->export, NULL};
        struct rc c = {.fd = -1};
        long before, after;
        int ok;

        server_start(&srv, args);
        rc_connect(&c, srv.port);
        ok = calls_in_turn(&c, 200);
        CHECK(ok == 200, "with --poll-us 10000, 200 calls in turn are answered (%d)", ok);
        before = cpu_ticks(srv.pid);
        usleep(200 * 1000);
        (void)null_call(&c);
        usleep(1000 * 1000);
        after = cpu_ticks(srv.pid);
        /* One 10 ms poll after the last call is one tick; a worker that
         * kept polling would take 100. */
        CHECK(before >= 0 && after - before < 10,
              "a server whose client has stopped calling sleeps: %ld ticks of CPU in 1.2 s "
              "(less than 10)",
              after - before);
        rc_close(&c);
        server_stop(&srv);

        server_start(&srv, off);
        rc_connect(&c, srv.port);
        ok = calls_in_turn(&c, 200);
        CHECK(ok == 200, "with --poll-us 0, 200 calls in turn are answered (%d)", ok);
        rc_close(&c);
        server_stop(&srv);
}

static void connections(struct tmp *t)
{
        struct server srv;
        const char *args[] = {"--state-dir",       t->state, "--idle-timeout", "1",
                              "--max-connections", "8",      t->export,        NULL};
        struct rc c[8], busy = {.fd = -1}, late = {.fd = -1};
        int ok = 0;

        server_start(&srv, args);
        port = srv.port;

        rc_connect(&busy, port);
        CHECK(null_call(&busy) == 0, "a connection is served");
        rc_connect(&c[0], port);
        null_call(&c[0]);
        {
                bool alive = true;
                /* One that keeps talking stays; one that does not is closed. */
                for (int i = 0; i < 6 && alive; i++) {
                        usleep(400 * 1000);
                        alive = null_call(&busy) == 0;
                }
                CHECK(alive, "a connection with a call every 0.4 s outlives --idle-timeout 1");
        }
        CHECK(closed_within(&c[0], 3000), "an idle connection is closed after --idle-timeout");
        rc_close(&c[0]);

        /* A full table: the oldest idle connection makes room. */
        for (int i = 0; i < 7; i++) {
                c[i] = (struct rc){.fd = -1};
                if (rc_connect(&c[i], port) == 0 && null_call(&c[i]) == 0)
                        ok++;
                usleep(20 * 1000);
        }
        CHECK(ok == 7, "8 connections are served (got %d)", ok + 1);
        rc_connect(&late, port);
        CHECK(null_call(&late) == 0, "one more is served: the table keeps room");
        CHECK(closed_within(&busy, 2000), "the connection idle the longest was closed for it");
        for (int i = 0; i < 7; i++)
                rc_close(&c[i]);
        rc_close(&late);
        rc_close(&busy);
        server_stop(&srv);
}

static void unauthorized(struct tmp *t)
{
        char path[4200];
        struct server srv;
        struct rc c[24];
        int served = 0, refused = 0;
        FILE *f;

        snprintf(path, sizeof(path), "%s/exports-remote", t->root);
        f = fopen(path, "we");
        if (!f)
                exit(1);
        fprintf(f, "%s 10.0.0.0/8(rw)\n", t->export);
        fclose(f);
        const char *args[] = {"--state-dir", t->state, "--exports", path, NULL};
        server_start(&srv, args);
        port = srv.port;
        for (int i = 0; i < 24; i++) {
                c[i] = (struct rc){.fd = -1};
                if (rc_connect(&c[i], port) == 0 && null_call(&c[i]) == 0)
                        served++;
                else
                        refused++;
        }
        CHECK(served == 16 && refused == 8,
              "peers no export allows get 16 connections, the others are refused (%d, %d)", served,
              refused);
        for (int i = 0; i < 24; i++)
                rc_close(&c[i]);
        server_stop(&srv);
}

static void descriptors(struct tmp *t)
{
        struct server srv;
        const char *args[] = {"--state-dir", t->state, t->export, NULL};
        struct rlimit rl, low = {.rlim_cur = 48, .rlim_max = 48};
        struct rc c[120], late = {.fd = -1};
        char path[64], line[256];
        long before, after, soft = -1, hard = -2;
        bool served = false;
        FILE *f;

        server_start(&srv, args);
        port = srv.port;
        snprintf(path, sizeof(path), "/proc/%d/limits", (int)srv.pid);
        f = fopen(path, "re");
        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, "Max open files", 14) == 0)
                        sscanf(line + 14, "%ld %ld", &soft, &hard);
        if (f)
                fclose(f);
        getrlimit(RLIMIT_NOFILE, &rl);
        CHECK(soft == hard, "the open file limit is raised to the hard limit (%ld, %ld)", soft,
              hard);

        /* Out of fds with peers waiting: no spinning on the listen fd. */
        CHECK(prlimit(srv.pid, RLIMIT_NOFILE, &low, NULL) == 0, "the server's fd limit is lowered");
        for (int i = 0; i < 120; i++) {
                c[i] = (struct rc){.fd = -1};
                rc_connect(&c[i], port);
        }
        usleep(300 * 1000);
        before = cpu_ticks(srv.pid);
        sleep(2);
        after = cpu_ticks(srv.pid);
        CHECK(before >= 0 && after - before < 40,
              "out of fds, the server burns %ld ticks of CPU in 2 s (less than 40)",
              after - before);
        for (int i = 0; i < 120; i++)
                rc_close(&c[i]);
        for (int i = 0; i < 30 && !served; i++) {
                usleep(200 * 1000);
                rc_close(&late);
                served = rc_connect(&late, port) == 0 && null_call(&late) == 0;
        }
        CHECK(served, "once fds are free again, a new client is served");
        rc_close(&late);
        server_stop(&srv);
}

/* Sends as much of n bytes as the socket takes without blocking. */
static size_t push(int fd, const void *p, size_t n)
{
        size_t done = 0;

        while (done < n) {
                ssize_t k =
                    send(fd, (const uint8_t *)p + done, n - done, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (k <= 0)
                        break;
                done += (size_t)k;
        }
        return done;
}

/* Bytes waiting in the receive queue of the server's end of the loopback
 * connection from local port cport (/proc/net/tcp), or -1. */
static long server_rx_queue(int sport, int cport)
{
        char line[512];
        long v = -1;
        FILE *f = fopen("/proc/net/tcp", "re");

        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f)) {
                unsigned lp, rp, st;
                unsigned long tx, rx;

                if (sscanf(line, " %*d: %*x:%x %*x:%x %x %lx:%lx", &lp, &rp, &st, &tx, &rx) == 5 &&
                    (int)lp == sport && (int)rp == cport)
                        v = (long)rx;
        }
        fclose(f);
        return v;
}

#define N_PIPELINED 4000
#define WINDOW      32    /* calls of one connection the server may hold */
#define READ_BYTES  65536 /* what one read of a socket takes at most */

/* Answers every pending permission event with FAN_ALLOW; returns how many. */
static int allow_opens(int fan)
{
        char buf[4096];
        int k = 0;
        ssize_t n;

        while ((n = read(fan, buf, sizeof(buf))) > 0) {
                for (struct fanotify_event_metadata *m = (void *)buf; FAN_EVENT_OK(m, n);
                     m = FAN_EVENT_NEXT(m, n)) {
                        struct fanotify_response r = {.fd = m->fd, .response = FAN_ALLOW};

                        if (write(fan, &r, sizeof(r)) < 0)
                                exit(1);
                        close(m->fd);
                        k++;
                }
        }
        return k;
}

/* Pushes what is left of buf and collects replies (answering the opens
 * they wait for) until all n calls are answered or nothing moves for 20 s.
 * Returns how many replies were NFS3_OK; *ret_replies how many arrived. */
static int drain(struct rc *c, int fan, const uint8_t *buf, size_t len, size_t *sent, int n,
                 int *ret_replies)
{
        static uint8_t in[256 * 1024];
        size_t have = 0;
        int replies = 0, ok = 0;

        while (replies < n) {
                struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN},
                                      {.fd = fan, .events = POLLIN}};
                ssize_t k;

                if (*sent < len)
                        p[0].events |= POLLOUT;
                if (poll(p, 2, 20000) <= 0)
                        break;
                if (p[1].revents & POLLIN)
                        allow_opens(fan);
                if (p[0].revents & POLLOUT)
                        *sent += push(c->fd, buf + *sent, len - *sent);
                if (!(p[0].revents & POLLIN))
                        continue;
                k = recv(c->fd, in + have, sizeof(in) - have, MSG_DONTWAIT);
                if (k <= 0)
                        break;
                have += (size_t)k;
                /* Whole records: mark, xid, REPLY, MSG_ACCEPTED, verifier, accept_stat, status. */
                for (;;) {
                        uint32_t mark, w[7];
                        size_t rl;

                        if (have < 4)
                                break;
                        memcpy(&mark, in, 4);
                        rl = ntohl(mark) & 0x7fffffffu;
                        if (rl > sizeof(in) - 4)
                                return -1;
                        if (have < 4 + rl)
                                break;
                        if (rl >= sizeof(w)) {
                                memcpy(w, in + 4, sizeof(w));
                                ok += ntohl(w[5]) == SUCCESS && ntohl(w[6]) == NFS3_OK;
                        }
                        replies++;
                        memmove(in, in + 4 + rl, have - 4 - rl);
                        have -= 4 + rl;
                }
        }
        *ret_replies = replies;
        return ok;
}

/* One connection pipelines thousands of READs in one burst while every
 * worker is held (in the open of the file, by a fanotify permission event
 * this test answers): the server takes in at most its in-flight window of
 * whole records (then one socket read's worth, kept for later), not
 * everything one event's reads bring in. Then every call is answered. */
static void inflight(struct tmp *t)
{
        char path[4200];
        struct server srv;
        const char *args[] = {"--state-dir", t->state, "--threads", "2", t->export, NULL};
        struct rc c = {.fd = -1};
        struct sockaddr_in me;
        socklen_t me_len = sizeof(me);
        struct fh root, slow;
        uint8_t *buf;
        size_t rec_len = 0, len = 0, sent = 0;
        long rx = -1;
        int outq = -1, fan, held = 0, held_fd[2], replies = 0, ok, fd;

        snprintf(path, sizeof(path), "%s/slow", t->export);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || ftruncate(fd, 4096) < 0)
                exit(1);
        close(fd);
        fan = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_CLOEXEC);
        if (fan < 0 || fanotify_mark(fan, FAN_MARK_ADD, FAN_OPEN_PERM, AT_FDCWD, path) < 0) {
                /* The other parts still run; this one cannot hold a worker. */
                tap_skip("in-flight window: no fanotify permission events here (%s)",
                         strerror(errno));
                if (fan >= 0)
                        close(fan);
                return;
        }

        server_start(&srv, args);
        port = srv.port;
        rc_connect(&c, port);
        CHECK(mnt(&c, "/", &root) == 0 && lookup(&c, &root, "slow", &slow, NULL) == 0,
              "LOOKUP of the file every READ will wait on");
        getsockname(c.fd, (struct sockaddr *)&me, &me_len);

        buf = malloc((size_t)N_PIPELINED * 512);
        if (!buf)
                exit(1);
        for (int i = 0; i < N_PIPELINED; i++) {
                READ3args a = {.file = fh_arg(&slow), .count = 512};
                size_t n = rc_build_call(&c, NFS3_PROGRAM, NFS3_VERSION, 6, X(READ3args), &a,
                                         buf + len + 4, 508);
                uint32_t mark = htonl(0x80000000u | (uint32_t)n);

                memcpy(buf + len, &mark, 4);
                len += n + 4;
                rec_len = n + 4;
        }
        sent = push(c.fd, buf, len);

        /* Both workers in the open of the file: nothing else runs. */
        for (int i = 0; i < 100 && held < 2; i++) {
                struct pollfd p = {.fd = fan, .events = POLLIN};
                char ev[4096];
                ssize_t n;

                if (poll(&p, 1, 100) <= 0)
                        continue;
                n = read(fan, ev, sizeof(ev));
                for (struct fanotify_event_metadata *m = (void *)ev; n > 0 && FAN_EVENT_OK(m, n);
                     m = FAN_EVENT_NEXT(m, n)) {
                        struct fanotify_response r = {.fd = m->fd, .response = FAN_ALLOW};

                        if (held < 2) {
                                held_fd[held++] = m->fd; /* left unanswered for now */
                                continue;
                        }
                        if (write(fan, &r, sizeof(r)) < 0)
                                exit(1);
                        close(m->fd);
                }
        }
        CHECK(held == 2, "both workers wait in the open of the file (%d)", held);
        usleep(200 * 1000);
        if (ioctl(c.fd, SIOCOUTQ, &outq) < 0)
                outq = -1;
        rx = server_rx_queue(srv.port, ntohs(me.sin_port));
        {
                long taken = (long)sent - outq - rx;
                long bound = WINDOW * (long)rec_len + READ_BYTES;

                tap_diag("pushed %zu of %zu bytes (%zu-byte calls); %d unsent here, %ld unread "
                         "there: the server took %ld",
                         sent, len, rec_len, outq, rx, taken);
                CHECK(outq >= 0 && rx >= 0 && taken >= WINDOW * (long)rec_len && taken <= bound,
                      "the server took in %ld bytes of %zu-byte calls: its window of %d calls and "
                      "at most one %d-byte read (%ld), not everything one event reads",
                      taken, rec_len, WINDOW, READ_BYTES, bound);
        }

        /* Let the held opens and every later one through. */
        for (int i = 0; i < held; i++) {
                struct fanotify_response r = {.fd = held_fd[i], .response = FAN_ALLOW};

                if (write(fan, &r, sizeof(r)) < 0)
                        exit(1);
                close(held_fd[i]);
        }
        ok = drain(&c, fan, buf, len, &sent, N_PIPELINED, &replies);
        CHECK(replies == N_PIPELINED && ok == N_PIPELINED,
              "once the opens go through, all %d calls are answered, NFS3_OK (%d replies, %d OK)",
              N_PIPELINED, replies, ok);
        CHECK(null_call(&c) == 0, "the connection still serves");
        close(fan);
        free(buf);
        rc_close(&c);
        server_stop(&srv);
}

/* The status of a READ, WRITE or SETATTR(size) of f. */
static int io_status(struct rc *c, struct fh *f, int proc)
{
        char data[4] = "abc";
        int r;

        if (proc == 6) {
                READ3args a = {.file = fh_arg(f), .count = 4};
                READ3res res = {};
                r = nfs_call(c, 6, X(READ3args), &a, X(READ3res), &res);
                r = r == 0 ? (int)res.status : -1000 - r;
                rc_free(X(READ3res), &res);
        } else if (proc == 7) {
                WRITE3args a = {.file = fh_arg(f), .count = 3, .stable = UNSTABLE};
                WRITE3res res = {};
                a.data.data_len = 3;
                a.data.data_val = data;
                r = nfs_call(c, 7, X(WRITE3args), &a, X(WRITE3res), &res);
                r = r == 0 ? (int)res.status : -1000 - r;
                rc_free(X(WRITE3res), &res);
        } else {
                SETATTR3args a = {.object = fh_arg(f)};
                SETATTR3res res = {};
                a.new_attributes.size.set_it = TRUE;
                a.new_attributes.size.set_size3_u.size = 2;
                r = nfs_call(c, 2, X(SETATTR3args), &a, X(SETATTR3res), &res);
                r = r == 0 ? (int)res.status : -1000 - r;
                rc_free(X(SETATTR3res), &res);
        }
        return r;
}

/* A local process holding a lease on a file in the export does not hold
 * a worker until it lets go (or the kernel's lease-break-time, 45 s by
 * default, runs out): a call that would break it is NFS3ERR_JUKEBOX at
 * once, the client tries again, and once the lease is gone it succeeds. */
static void leases(struct tmp *t)
{
        char path[4200];
        struct server srv;
        const char *args[] = {"--state-dir", t->state, "--threads", "1", t->export, NULL};
        struct rc c = {.fd = -1};
        struct fh root, f;
        int fd, wr, rd, sz, lease;

        snprintf(path, sizeof(path), "%s/leased", t->export);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, "0123", 4) != 4)
                exit(1);
        close(fd);
        server_start(&srv, args);
        rc_connect(&c, srv.port);
        CHECK(mnt(&c, "/", &root) == 0 && lookup(&c, &root, "leased", &f, NULL) == 0,
              "LOOKUP of the file to lease");

        /* The lease breaker's signal would end this process. */
        signal(SIGIO, SIG_IGN);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        lease = fd >= 0 ? fcntl(fd, F_SETLEASE, F_RDLCK) : -1;
        if (lease < 0) {
                tap_skip("leases: no read lease here (%s)", strerror(errno));
                tap_skip("leases");
                tap_skip("leases");
        } else {
                rd = io_status(&c, &f, 6);
                wr = io_status(&c, &f, 7);
                sz = io_status(&c, &f, 2);
                CHECK(rd == NFS3_OK, "a READ of a file under a read lease is served (%d)", rd);
                CHECK(wr == NFS3ERR_JUKEBOX && sz == NFS3ERR_JUKEBOX,
                      "a WRITE and a SETATTR(size), which break the lease, are NFS3ERR_JUKEBOX "
                      "at once (%d, %d), with the only worker not held",
                      wr, sz);
                CHECK(fcntl(fd, F_GETLEASE) == F_UNLCK,
                      "the lease is being broken: its holder is told to let go");
                fcntl(fd, F_SETLEASE, F_UNLCK);
        }
        if (fd >= 0)
                close(fd);
        wr = io_status(&c, &f, 7);
        sz = io_status(&c, &f, 2);
        CHECK(wr == NFS3_OK && sz == NFS3_OK,
              "once the lease is gone the retried WRITE and SETATTR succeed (%d, %d)", wr, sz);
        rc_close(&c);
        server_stop(&srv);
        signal(SIGIO, SIG_DFL);
}

#define N_PARTIAL  300
#define N_PIPELINE 40
#define BUDGET_MIB 64

static void memory(struct tmp *t)
{
        char path[4200];
        struct server srv;
        const char *args[] = {"--state-dir", t->state, "--max-memory", "64",
                              "--threads",   "2",      t->export,      NULL};
        static struct rc partial[N_PARTIAL], pipe_[N_PIPELINE];
        struct rc c = {.fd = -1};
        struct fh root, big;
        static uint8_t buf[2 * MIB];
        long base, peak, after;
        size_t sent = 0;
        int fd, r;

        snprintf(path, sizeof(path), "%s/big", t->export);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || ftruncate(fd, 4 * MIB) < 0)
                exit(1);
        close(fd);

        server_start(&srv, args);
        port = srv.port;
        /* What a normal client makes the server hold: the baseline. */
        rc_connect(&c, port);
        r = mnt(&c, "/", &root);
        r = r == 0 ? lookup(&c, &root, "big", &big, NULL) : r;
        for (int i = 0; i < 4 && r == 0; i++) {
                READ3args a = {.file = fh_arg(&big), .offset = (uint64_t)i * MIB, .count = MIB};
                READ3res res = {};
                r = nfs_call(&c, 6, X(READ3args), &a, X(READ3res), &res);
                r = r == 0 ? (int)res.status : r;
                rc_free(X(READ3res), &res);
        }
        CHECK(r == 0, "a normal client reads 4 MiB");
        base = status_kib(srv.pid, "VmRSS");

        /* Hundreds of connections each sending most of a 1 MiB record and
         * stopping there. */
        memset(buf, 0, sizeof(buf));
        for (int i = 0; i < N_PARTIAL; i++) {
                uint32_t mark = htonl(0x80000000u | MIB);

                partial[i] = (struct rc){.fd = -1};
                if (rc_connect(&partial[i], port) < 0)
                        continue;
                sent += push(partial[i].fd, &mark, 4);
                sent += push(partial[i].fd, buf, 900 * 1024);
        }
        /* Others pipelining 1 MiB READs without reading a reply. */
        for (int i = 0; i < N_PIPELINE; i++) {
                READ3args a = {.file = fh_arg(&big), .count = MIB};
                size_t n;

                pipe_[i] = (struct rc){.fd = -1};
                if (rc_connect(&pipe_[i], port) < 0)
                        continue;
                for (int k = 0; k < 64; k++) {
                        uint32_t mark;

                        a.offset = (uint64_t)(k % 4) * MIB;
                        n = rc_build_call(&pipe_[i], NFS3_PROGRAM, NFS3_VERSION, 6, X(READ3args),
                                          &a, buf + 4, 4096);
                        mark = htonl(0x80000000u | (uint32_t)n);
                        memcpy(buf, &mark, 4);
                        sent += push(pipe_[i].fd, buf, n + 4);
                }
        }
        tap_diag("hostile peers sent %zu MiB", sent / MIB);
        sleep(2);

        {
                struct rc d = {.fd = -1};
                fattr3 attr;
                READ3args a = {.file = fh_arg(&big), .count = 4096};
                READ3res res = {};

                r = rc_connect(&d, port);
                r = r == 0 ? mnt(&d, "/", &root) : -1;
                r = r == 0 ? getattr(&d, &big, &attr) : -1;
                if (r == 0) {
                        r = nfs_call(&d, 6, X(READ3args), &a, X(READ3res), &res);
                        r = r == 0 ? (int)res.status : r;
                        rc_free(X(READ3res), &res);
                }
                CHECK(r == 0, "meanwhile a new client mounts, gets attributes and reads (%d)", r);
                rc_close(&d);
        }
        peak = status_kib(srv.pid, "VmHWM");
        CHECK(base > 0 && peak - base < BUDGET_MIB * 1024,
              "the server's resident size grew by %ld MiB over its %ld MiB baseline, within "
              "--max-memory %d",
              (peak - base) / 1024, base / 1024, BUDGET_MIB);

        for (int i = 0; i < N_PARTIAL; i++)
                rc_close(&partial[i]);
        for (int i = 0; i < N_PIPELINE; i++)
                rc_close(&pipe_[i]);
        sleep(2);
        after = status_kib(srv.pid, "VmRSS");
        CHECK(after - base < 16 * 1024,
              "once they are gone it holds %ld MiB over its baseline again (less than 16)",
              (after - base) / 1024);
        CHECK(null_call(&c) == 0, "the first client is still served");
        rc_close(&c);
        server_stop(&srv);
}

int main(void)
{
        struct tmp t;
        struct rlimit rl;

        if (geteuid() != 0)
                tap_skip_all("needs root (open_by_handle_at needs CAP_DAC_READ_SEARCH)");
        /* This process holds a few hundred sockets. */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
        tmp_setup(&t);
        garbage(&t);
        polling(&t);
        connections(&t);
        unauthorized(&t);
        descriptors(&t);
        memory(&t);
        inflight(&t);
        leases(&t);
        return tap_done();
}
