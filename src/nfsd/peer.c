/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "macro.h"
#include "peer.h"

#define ANON_ID 65534

/* An address in the form sock_diag and /proc/net/tcp use: family, 16
 * address bytes (IPv4 in the first 4), port. v4-mapped IPv6 addresses are
 * IPv4: the peer's socket is an IPv4 one. */
struct endpoint {
        int family;
        uint8_t addr[16];
        uint16_t port; /* host order */
};

static void endpoint_of(const struct sockaddr_storage *ss, struct endpoint *ret)
{
        *ret = (struct endpoint){.family = ss->ss_family};
        if (ss->ss_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
                memcpy(ret->addr, &in->sin_addr, 4);
                ret->port = ntohs(in->sin_port);
        } else if (ss->ss_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
                if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
                        ret->family = AF_INET;
                        memcpy(ret->addr, in6->sin6_addr.s6_addr + 12, 4);
                } else
                        memcpy(ret->addr, &in6->sin6_addr, 16);
                ret->port = ntohs(in6->sin6_port);
        }
}

bool peer_addr_is_loopback(const struct sockaddr *sa)
{
        struct endpoint e;

        endpoint_of((const struct sockaddr_storage *)sa, &e);
        if (e.family == AF_INET)
                return e.addr[0] == 127;
        if (e.family == AF_INET6)
                return IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)e.addr);
        return false;
}

bool peer_port_reserved(const struct sockaddr *sa)
{
        struct endpoint e;

        endpoint_of((const struct sockaddr_storage *)sa, &e);
        return e.port != 0 && e.port < 1024;
}

/* States in which a socket still carries its owner: a time-wait socket
 * reports uid 0 whoever made it. */
static bool state_has_owner(unsigned state)
{
        return state != TCP_TIME_WAIT && state != TCP_CLOSE && state != TCP_LISTEN;
}

/* Asks inet_diag for the socket bound to `their` and connected to `ours`.
 * Returns 1 with *ret_uid, 0 when there is no such socket, -ENOTCONN when
 * it is closing, -errno when sock_diag is not usable. */
static int owner_diag(const struct endpoint *their, const struct endpoint *ours, uid_t *ret_uid)
{
        struct {
                struct nlmsghdr nlh;
                struct inet_diag_req_v2 req;
        } msg = {
            .nlh = {.nlmsg_len = sizeof(msg),
                    .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                    .nlmsg_flags = NLM_F_REQUEST},
            .req = {.sdiag_family = (uint8_t)their->family,
                    .sdiag_protocol = IPPROTO_TCP,
                    .idiag_states = ~0u,
                    .id = {.idiag_sport = htons(their->port),
                           .idiag_dport = htons(ours->port),
                           .idiag_cookie = {INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE}}},
        };
        struct sockaddr_nl nl = {.nl_family = AF_NETLINK};
        union {
                struct nlmsghdr h;
                uint8_t buf[1024];
        } rep;
        _cleanup_close_ int fd = -1;
        ssize_t n;

        memcpy(msg.req.id.idiag_src, their->addr, 16);
        memcpy(msg.req.id.idiag_dst, ours->addr, 16);
        fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (fd < 0)
                return negative_errno();
        if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&nl, sizeof(nl)) < 0)
                return negative_errno();
        do
                n = recv(fd, &rep, sizeof(rep), 0);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();
        for (struct nlmsghdr *h = &rep.h; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
                if (h->nlmsg_type == NLMSG_ERROR) {
                        const struct nlmsgerr *err = NLMSG_DATA(h);
                        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*err)))
                                return -EPROTO;
                        return err->error == -ENOENT ? 0 : err->error < 0 ? err->error : -EPROTO;
                }
                if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
                    h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
                        const struct inet_diag_msg *m = NLMSG_DATA(h);
                        /* Exactly that connection, not a listener on the port. */
                        if (ntohs(m->id.idiag_sport) != their->port ||
                            ntohs(m->id.idiag_dport) != ours->port ||
                            memcmp(m->id.idiag_src, their->addr,
                                   their->family == AF_INET ? 4 : 16) != 0)
                                return 0;
                        if (!state_has_owner(m->idiag_state))
                                return -ENOTCONN;
                        *ret_uid = m->idiag_uid;
                        return 1;
                }
        }
        return -EPROTO;
}

/* The same from /proc/net/tcp or tcp6, where addresses are the 32-bit
 * words of the address in host order, in hex. */
static int owner_proc(const struct endpoint *their, const struct endpoint *ours, uid_t *ret_uid)
{
        _cleanup_fclose_ FILE *f = NULL;
        char line[512];
        size_t words = their->family == AF_INET ? 1 : 4;

        f = fopen(their->family == AF_INET ? "/proc/net/tcp" : "/proc/net/tcp6", "re");
        if (!f)
                return negative_errno();
        if (!fgets(line, sizeof(line), f)) /* the header */
                return -EPROTO;
        while (fgets(line, sizeof(line), f)) {
                char local[40], remote[40];
                unsigned lport, rport, state, uid;
                uint32_t w[4];
                bool match = true;

                if (sscanf(line, "%*u: %39[0-9A-Fa-f]:%x %39[0-9A-Fa-f]:%x %x %*s %*s %*s %u",
                           local, &lport, remote, &rport, &state, &uid) != 6)
                        continue;
                if (lport != their->port || rport != ours->port || strlen(local) != words * 8 ||
                    strlen(remote) != words * 8)
                        continue;
                for (size_t i = 0; i < words && match; i++) {
                        char a[9] = {}, b[9] = {};
                        uint32_t x, y;

                        memcpy(a, local + i * 8, 8);
                        memcpy(b, remote + i * 8, 8);
                        x = (uint32_t)strtoul(a, NULL, 16);
                        y = (uint32_t)strtoul(b, NULL, 16);
                        memcpy(&w[i], their->addr + i * 4, 4);
                        match = x == w[i];
                        memcpy(&w[i], ours->addr + i * 4, 4);
                        match = match && y == w[i];
                }
                if (!match)
                        continue;
                if (!state_has_owner(state))
                        return -ENOTCONN;
                *ret_uid = uid;
                return 1;
        }
        return 0;
}

static void owner_groups(struct nfsd_peer *p)
{
        _cleanup_free_ char *buf = NULL;
        struct passwd pw, *res = NULL;
        long size = sysconf(_SC_GETPW_R_SIZE_MAX);
        gid_t groups[PEER_GROUPS_MAX];
        int n = PEER_GROUPS_MAX;

        p->gid = ANON_ID;
        p->n_groups = 0;
        if (size <= 0)
                size = 16384;
        buf = malloc((size_t)size);
        if (!buf || getpwuid_r(p->uid, &pw, buf, (size_t)size, &res) != 0 || !res)
                return;
        p->gid = pw.pw_gid;
        /* A user in more groups than that gets the first ones only. */
        if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
                n = PEER_GROUPS_MAX;
        for (int i = 0; i < n && i < PEER_GROUPS_MAX; i++)
                p->groups[p->n_groups++] = groups[i];
}

int peer_identify(int fd, const struct sockaddr_storage *addr, struct nfsd_peer *ret)
{
        struct sockaddr_storage self;
        socklen_t len = sizeof(self);
        struct endpoint their, ours;
        uid_t uid = 0;
        int r;

        *ret = (struct nfsd_peer){.addr = *addr};
        if (getsockname(fd, (struct sockaddr *)&self, &len) < 0)
                return negative_errno();
        endpoint_of(addr, &their);
        endpoint_of(&self, &ours);
        if (their.family != AF_INET && their.family != AF_INET6)
                return 0;

        r = owner_diag(&their, &ours, &uid);
        /* Without sock_diag, or when it finds no socket for a loopback
         * peer (which must be on this host), ask /proc. */
        if ((r < 0 && r != -ENOTCONN) || (r == 0 && peer_addr_is_loopback((struct sockaddr *)addr)))
                r = owner_proc(&their, &ours, &uid);
        if (r == 0 && peer_addr_is_loopback((struct sockaddr *)addr))
                r = -ENOTCONN; /* gone already */
        if (r < 0)
                return r;
        if (r == 0)
                return 0; /* a remote peer */
        ret->local = true;
        ret->uid = uid;
        if (uid != 0)
                owner_groups(ret);
        return 0;
}

static bool has_group(const struct nfsd_peer *p, gid_t g)
{
        if (g == p->gid)
                return true;
        for (unsigned i = 0; i < p->n_groups; i++)
                if (p->groups[i] == g)
                        return true;
        return false;
}

void peer_clamp_cred(const struct nfsd_peer *p, struct cred *c)
{
        unsigned n = 0;

        if (!p || !p->local || p->uid == 0)
                return;
        if (c->uid != p->uid) {
                c->uid = p->uid;
                c->gid = p->gid;
                c->n_groups = 0;
                for (unsigned i = 0; i < p->n_groups && i < CRED_GROUPS_MAX; i++)
                        c->groups[c->n_groups++] = p->groups[i];
                return;
        }
        if (!has_group(p, c->gid))
                c->gid = p->gid;
        for (unsigned i = 0; i < c->n_groups; i++)
                if (has_group(p, c->groups[i]))
                        c->groups[n++] = c->groups[i];
        c->n_groups = n;
}
