/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The export table: which directories are served, to which client networks,
 * with which options. Parsed from exports(5)-style text:
 *
 *   # path      clients...
 *   /srv/data   127.0.0.1(rw,no_root_squash) 10.0.0.0/8(ro) *(ro,all_squash)
 *
 * A client is `*`, an IPv4 or IPv6 address, or a network ADDR/PREFIX (or
 * ADDR/NETMASK for IPv4). Options: rw, ro, root_squash, no_root_squash,
 * all_squash, no_all_squash, anonuid=N, anongid=N, secure (calls only from
 * reserved source ports), insecure; sync, async, subtree_check,
 * no_subtree_check, wdelay, no_wdelay are accepted and change nothing.
 * Defaults as in exports(5): ro, root_squash, secure, anonuid=anongid=65534.
 * Host names are refused (no name service is consulted).
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fhandle.h"

enum export_squash {
        EXPORT_ROOT_SQUASH,
        EXPORT_NO_ROOT_SQUASH,
        EXPORT_ALL_SQUASH,
};

struct export_client {
        char *spec;       /* as written, for MOUNT EXPORT */
        bool any;         /* `*` */
        int family;       /* AF_INET or AF_INET6 */
        uint8_t addr[16]; /* network address (host bits cleared) */
        unsigned prefix;  /* prefix length in bits */
        bool rw;
        bool insecure; /* calls from unreserved source ports (>= 1024) are served */
        enum export_squash squash;
        uid_t anonuid;
        gid_t anongid;
};

struct export_dircache;
struct ancestry;
struct childcache;

struct export
{
        char *name;  /* what clients mount (MNT dirpath) */
        char *path;  /* the directory on this server */
        uint32_t id; /* stable: derived from path and the server key */
        int fd;      /* O_PATH of the root, -1 until opened */
        dev_t dev;
        ino_t ino;
        int mount_id;
        char *canon;   /* the root's path as /proc/self/fd shows it */
        bool whole_fs; /* the root is its filesystem's root: all of it is exported */
        struct export_client *clients;
        size_t n_clients;
        struct export_dircache *dircache; /* NULL until opened, or without memory */
        struct ancestry *ancestry;        /* NULL until opened, or without fanotify */
        struct childcache *childcache;    /* NULL until opened, or without memory */
};

struct export_table {
        atomic_int refs;
        struct export *exports;
        size_t n_exports;
};

/* Parses exports text. On a syntax error returns -EINVAL and stores a
 * message ("line N: ...", owned by the caller) in *ret_error. */
int export_table_parse(const char *text, struct export_table **ret, char **ret_error);

/* A table with one export: dir served as "/" to loopback clients, rw,
 * no_root_squash, insecure (local peers are held to their socket's owner
 * instead, see peer.h). */
int export_table_new_loopback(const char *dir, struct export_table **ret);

/* Opens every export's directory and computes the export ids. On failure
 * *ret_path names the export that failed (borrowed from the table). */
int export_table_open(struct export_table *t, const struct fhandle_key *key, const char **ret_path);

struct export_table *export_table_ref(struct export_table *t);
struct export_table *export_table_unref(struct export_table *t);

/* True when every client spec of every export is a loopback address or
 * network. */
bool export_table_loopback_only(const struct export_table *t);

const struct export *export_table_find_id(const struct export_table *t, uint32_t id);

/* The export whose name is dirpath or the longest name that is a parent
 * directory of it; *ret_rest gets the remaining relative path ("" for the
 * export itself). */
const struct export *export_table_find_name(const struct export_table *t, const char *dirpath,
                                            const char **ret_rest);

/* The first client entry of e that matches the peer address, or NULL. */
const struct export_client *export_match(const struct export *e, const struct sockaddr *peer);

/* The client entry of e that lets peer in: 0 and *ret, -EACCES when no
 * entry matches its address, -EPERM when the entry is `secure` and the
 * peer's source port is not reserved. */
int export_access(const struct export *e, const struct sockaddr *peer,
                  const struct export_client **ret);

/* Parses one client spec (without options) into c->any/family/addr/prefix. */
int export_client_parse_spec(const char *spec, struct export_client *c);

/* A few O_PATH fds of directories of e recently resolved from handles, so
 * the hot ones (the parents of files being created or looked up) need no
 * open_by_handle_at() + close() per call. The cache only saves the opening:
 * callers check every fd it gives as they check a freshly opened one. It
 * lives and dies with the export table, so an old table keeps no directory
 * open once its last call ends.
 *
 * export_dircache_get() returns a cached fd for h (borrowed, the entry in
 * use until export_dircache_put()) or -ENOENT. export_dircache_add() takes
 * over fd, in use by the caller, and returns true; false when there is no
 * room (every entry in use), fd then stays the caller's.
 * export_dircache_put() ends a use; with drop, the entry is also removed
 * (its fd closed once no call uses it), for a directory that failed a
 * check. */
int export_dircache_get(const struct export *e, const struct fhandle *h);
bool export_dircache_add(const struct export *e, const struct fhandle *h, int fd);
void export_dircache_put(const struct export *e, int fd, bool drop);
