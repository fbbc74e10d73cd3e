/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* strata-nfsd's rule for what a local peer may claim, and telling who owns
 * the other end of a loopback connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "peer.h"
#include "tests.h"

static struct nfsd_peer local_user(void)
{
        struct nfsd_peer p = {.local = true, .uid = 1000, .gid = 1000, .n_groups = 2};

        p.groups[0] = 1000;
        p.groups[1] = 27;
        return p;
}

static void test_clamp(void **state)
{
        struct nfsd_peer p = local_user(), root = {.local = true, .uid = 0}, remote = {};
        struct cred c = {.uid = 0, .gid = 0, .n_groups = 2, .groups = {0, 27}};

        /* Another uid: the owner, with its own groups. */
        peer_clamp_cred(&p, &c);
        assert_int_equal(c.uid, 1000);
        assert_int_equal(c.gid, 1000);
        assert_int_equal(c.n_groups, 2);
        assert_int_equal(c.groups[0], 1000);
        assert_int_equal(c.groups[1], 27);

        /* Its own uid: a gid or groups it does not have are dropped. */
        c = (struct cred){.uid = 1000, .gid = 0, .n_groups = 3, .groups = {27, 0, 4}};
        peer_clamp_cred(&p, &c);
        assert_int_equal(c.uid, 1000);
        assert_int_equal(c.gid, 1000);
        assert_int_equal(c.n_groups, 1);
        assert_int_equal(c.groups[0], 27);
        c = (struct cred){.uid = 1000, .gid = 27};
        peer_clamp_cred(&p, &c);
        assert_int_equal(c.gid, 27);

        /* Root's sockets and remote peers claim what they like. */
        c = (struct cred){.uid = 5, .gid = 6, .n_groups = 1, .groups = {7}};
        peer_clamp_cred(&root, &c);
        assert_int_equal(c.uid, 5);
        assert_int_equal(c.groups[0], 7);
        peer_clamp_cred(&remote, &c);
        assert_int_equal(c.uid, 5);
        peer_clamp_cred(NULL, &c);
        assert_int_equal(c.gid, 6);
}

static void test_addresses(void **state)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(1023)};
        struct sockaddr_in6 b = {.sin6_family = AF_INET6, .sin6_port = htons(1024)};

        a.sin_addr.s_addr = htonl(0x7f000102);
        assert_true(peer_addr_is_loopback((struct sockaddr *)&a));
        assert_true(peer_port_reserved((struct sockaddr *)&a));
        a.sin_addr.s_addr = htonl(0x0a000001);
        assert_false(peer_addr_is_loopback((struct sockaddr *)&a));
        b.sin6_addr = in6addr_loopback;
        assert_true(peer_addr_is_loopback((struct sockaddr *)&b));
        assert_false(peer_port_reserved((struct sockaddr *)&b));
        inet_pton(AF_INET6, "::ffff:127.0.0.1", &b.sin6_addr);
        assert_true(peer_addr_is_loopback((struct sockaddr *)&b));
        inet_pton(AF_INET6, "2001:db8::1", &b.sin6_addr);
        assert_false(peer_addr_is_loopback((struct sockaddr *)&b));
}

/* A loopback connection made here: its owner is this process's uid. */
static void test_identify(void **state)
{
        struct sockaddr_in addr = {.sin_family = AF_INET};
        socklen_t len = sizeof(addr);
        struct sockaddr_storage peer;
        struct nfsd_peer p;
        _cleanup_close_ int l = -1, c = -1, s = -1;

        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(l >= 0);
        assert_int_equal(bind(l, (struct sockaddr *)&addr, sizeof(addr)), 0);
        assert_int_equal(listen(l, 1), 0);
        assert_int_equal(getsockname(l, (struct sockaddr *)&addr, &len), 0);
        c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(connect(c, (struct sockaddr *)&addr, sizeof(addr)), 0);
        len = sizeof(peer);
        s = accept4(l, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
        assert_true(s >= 0);
        assert_int_equal(peer_identify(s, &peer, &p), 0);
        assert_true(p.local);
        assert_int_equal(p.uid, geteuid());
}

TEST_MAIN(cmocka_unit_test(test_clamp), cmocka_unit_test(test_addresses),
          cmocka_unit_test(test_identify))
