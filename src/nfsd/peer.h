/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Who is at the other end of a connection. A peer whose socket lives on
 * this host (a loopback connection, or one to a local address) has an
 * owner the kernel knows: the uid that created the socket, found through
 * sock_diag (NETLINK_SOCK_DIAG, inet_diag) or /proc/net/tcp{,6}. Such a
 * peer may not claim, in AUTH_SYS credentials, to be anybody else unless
 * that owner is root. Remote peers are what their address and the
 * exports make of them.
 */

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "cred.h"

#define PEER_GROUPS_MAX 64

struct nfsd_peer {
        struct sockaddr_storage addr;
        bool local; /* the peer's socket is on this host, owned by uid */
        uid_t uid;
        /* The owner's primary group and groups (from the user database);
         * 65534 and none when it has no entry. Unused for root. */
        gid_t gid;
        unsigned n_groups;
        gid_t groups[PEER_GROUPS_MAX];
};

/* Fills ret for the connected socket fd whose peer address is addr.
 * Returns 0; -ENOTCONN when the peer is local but its owner cannot be
 * known (the socket is already closing), so the connection must be
 * refused; or another -errno. */
int peer_identify(int fd, const struct sockaddr_storage *addr, struct nfsd_peer *ret);

/* Whether addr is a loopback address (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104). */
bool peer_addr_is_loopback(const struct sockaddr *addr);

/* Whether the peer's source port is reserved (below 1024). */
bool peer_port_reserved(const struct sockaddr *addr);

/* Limits credentials c (already squashed by the export) to what the peer
 * is: for a local peer not owned by root, another uid becomes the owner
 * (with its primary group and groups), and a gid or groups the owner does
 * not have are dropped. Other peers are left as they are. */
void peer_clamp_cred(const struct nfsd_peer *p, struct cred *c);
