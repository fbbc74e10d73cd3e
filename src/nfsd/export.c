/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ancestry.h"
#include "childcache.h"
#include "cleanup.h"
#include "export.h"
#include "peer.h"
#include "macro.h"

#define DIRCACHE_SIZE 16

struct dircache_entry {
        struct fhandle handle;
        int fd; /* -1: free */
        unsigned users;
        bool dead; /* removed: close when unused */
        uint64_t last;
};

struct export_dircache {
        pthread_mutex_t lock;
        uint64_t clock;
        struct dircache_entry entries[DIRCACHE_SIZE];
};

static struct export_dircache *dircache_new(void)
{
        struct export_dircache *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        pthread_mutex_init(&c->lock, NULL);
        for (size_t i = 0; i < DIRCACHE_SIZE; i++)
                c->entries[i].fd = -1;
        return c;
}

static void dircache_free(struct export_dircache *c)
{
        if (!c)
                return;
        for (size_t i = 0; i < DIRCACHE_SIZE; i++)
                safe_close(c->entries[i].fd);
        pthread_mutex_destroy(&c->lock);
        free(c);
}

static bool same_handle(const struct fhandle *a, const struct fhandle *b)
{
        return a->export_id == b->export_id && a->type == b->type && a->len == b->len &&
               memcmp(a->bytes, b->bytes, a->len) == 0;
}

int export_dircache_get(const struct export *e, const struct fhandle *h)
{
        struct export_dircache *c = e->dircache;
        int fd = -ENOENT;

        if (!c)
                return -ENOENT;
        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; i < DIRCACHE_SIZE; i++) {
                struct dircache_entry *en = &c->entries[i];
                if (en->fd >= 0 && !en->dead && same_handle(&en->handle, h)) {
                        en->users++;
                        en->last = ++c->clock;
                        fd = en->fd;
                        break;
                }
        }
        pthread_mutex_unlock(&c->lock);
        return fd;
}

bool export_dircache_add(const struct export *e, const struct fhandle *h, int fd)
{
        struct export_dircache *c = e->dircache;
        struct dircache_entry *victim = NULL;

        if (!c)
                return false;
        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; i < DIRCACHE_SIZE; i++) {
                struct dircache_entry *en = &c->entries[i];
                if (en->users > 0)
                        continue;
                if (en->fd < 0) {
                        victim = en;
                        break;
                }
                if (!victim || en->last < victim->last)
                        victim = en;
        }
        if (victim) {
                safe_close(victim->fd);
                *victim =
                    (struct dircache_entry){.handle = *h, .fd = fd, .users = 1, .last = ++c->clock};
        }
        pthread_mutex_unlock(&c->lock);
        return victim != NULL;
}

void export_dircache_put(const struct export *e, int fd, bool drop)
{
        struct export_dircache *c = e->dircache;

        if (!c)
                return;
        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; i < DIRCACHE_SIZE; i++) {
                struct dircache_entry *en = &c->entries[i];
                if (en->fd != fd)
                        continue;
                en->users--;
                if (drop)
                        en->dead = true;
                if (en->dead && en->users == 0) {
                        safe_close(en->fd);
                        *en = (struct dircache_entry){.fd = -1};
                }
                break;
        }
        pthread_mutex_unlock(&c->lock);
}

static void export_done(struct export *e)
{
        dircache_free(e->dircache);
        childcache_free(e->childcache);
        ancestry_free(e->ancestry);
        free(e->name);
        free(e->path);
        free(e->canon);
        safe_close(e->fd);
        for (size_t i = 0; i < e->n_clients; i++)
                free(e->clients[i].spec);
        free(e->clients);
}

static struct export_table *export_table_free(struct export_table *t)
{
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_exports; i++)
                export_done(&t->exports[i]);
        free(t->exports);
        free(t);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct export_table *, export_table_free);

struct export_table *export_table_ref(struct export_table *t)
{
        if (t)
                atomic_fetch_add(&t->refs, 1);
        return t;
}

struct export_table *export_table_unref(struct export_table *t)
{
        if (t && atomic_fetch_sub(&t->refs, 1) == 1)
                export_table_free(t);
        return NULL;
}

static void mask_prefix(uint8_t *addr, size_t len, unsigned prefix)
{
        for (size_t i = 0; i < len; i++) {
                unsigned bits = prefix > i * 8 ? prefix - i * 8 : 0;
                if (bits >= 8)
                        continue;
                addr[i] &= (uint8_t)(0xff00 >> bits);
        }
}

int export_client_parse_spec(const char *spec, struct export_client *c)
{
        _cleanup_free_ char *a = strdup(spec);
        char *slash;
        unsigned max;

        if (!a)
                return -ENOMEM;
        if (streq(spec, "*")) {
                c->any = true;
                return 0;
        }
        slash = strchr(a, '/');
        if (slash)
                *slash++ = '\0';
        if (inet_pton(AF_INET, a, c->addr) == 1) {
                c->family = AF_INET;
                max = 32;
        } else if (inet_pton(AF_INET6, a, c->addr) == 1) {
                c->family = AF_INET6;
                max = 128;
        } else
                return -EINVAL;

        c->prefix = max;
        if (slash) {
                struct in_addr m;
                char *end;
                unsigned long p;

                if (c->family == AF_INET && strchr(slash, '.')) {
                        uint32_t v;
                        if (inet_pton(AF_INET, slash, &m) != 1)
                                return -EINVAL;
                        v = ntohl(m.s_addr);
                        /* A netmask must be contiguous ones. */
                        if (v != 0 && (~v & (~v + 1)) != 0)
                                return -EINVAL;
                        p = (unsigned long)__builtin_popcount(v);
                } else {
                        errno = 0;
                        p = strtoul(slash, &end, 10);
                        if (errno || end == slash || *end || p > max)
                                return -EINVAL;
                }
                c->prefix = (unsigned)p;
        }
        mask_prefix(c->addr, max / 8, c->prefix);
        return 0;
}

static int parse_options(char *opts, struct export_client *c, char **ret_error)
{
        char *save = NULL;

        for (char *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
                const char *v;

                if (streq(o, "rw"))
                        c->rw = true;
                else if (streq(o, "ro"))
                        c->rw = false;
                else if (streq(o, "root_squash"))
                        c->squash = EXPORT_ROOT_SQUASH;
                else if (streq(o, "no_root_squash") || streq(o, "no_all_squash"))
                        c->squash = EXPORT_NO_ROOT_SQUASH;
                else if (streq(o, "all_squash"))
                        c->squash = EXPORT_ALL_SQUASH;
                else if ((v = startswith(o, "anonuid=")) || (v = startswith(o, "anongid="))) {
                        char *end;
                        unsigned long n;

                        errno = 0;
                        n = strtoul(v, &end, 10);
                        if (errno || end == v || *end || n >= UINT32_MAX) {
                                if (asprintf(ret_error, "invalid id in '%s'", o) < 0)
                                        *ret_error = NULL;
                                return -EINVAL;
                        }
                        if (o[4] == 'u')
                                c->anonuid = (uid_t)n;
                        else
                                c->anongid = (gid_t)n;
                } else if (streq(o, "secure"))
                        c->insecure = false;
                else if (streq(o, "insecure"))
                        c->insecure = true;
                else if (streq(o, "sync") || streq(o, "async") || streq(o, "subtree_check") ||
                         streq(o, "no_subtree_check") || streq(o, "wdelay") ||
                         streq(o, "no_wdelay"))
                        ;
                else {
                        if (asprintf(ret_error, "unknown option '%s'", o) < 0)
                                *ret_error = NULL;
                        return -EINVAL;
                }
        }
        return 0;
}

/* Parses "SPEC" or "SPEC(OPTS)" or "(OPTS)" (meaning every client). */
static int parse_client(const char *word, struct export_client *c, char **ret_error)
{
        _cleanup_free_ char *w = strdup(word);
        char *paren, *opts = NULL;
        int r;

        if (!w)
                return -ENOMEM;
        *c = (struct export_client){
            .squash = EXPORT_ROOT_SQUASH,
            .anonuid = 65534,
            .anongid = 65534,
        };
        paren = strchr(w, '(');
        if (paren) {
                size_t l = strlen(paren);
                if (l < 2 || paren[l - 1] != ')') {
                        if (asprintf(ret_error, "unbalanced parenthesis in '%s'", word) < 0)
                                *ret_error = NULL;
                        return -EINVAL;
                }
                paren[l - 1] = '\0';
                *paren = '\0';
                opts = paren + 1;
        }
        c->spec = strdup(*w ? w : "*");
        if (!c->spec)
                return -ENOMEM;
        r = export_client_parse_spec(c->spec, c);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                if (asprintf(ret_error,
                             "invalid client '%s' (expected *, an address or ADDR/PREFIX)",
                             c->spec) < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }
        if (opts)
                return parse_options(opts, c, ret_error);
        return 0;
}

static int add_export(struct export_table *t, struct export **ret)
{
        struct export *n = realloc(t->exports, (t->n_exports + 1) * sizeof(*n));

        if (!n)
                return -ENOMEM;
        t->exports = n;
        n[t->n_exports] = (struct export){.fd = -1};
        *ret = &n[t->n_exports++];
        return 0;
}

static int table_new(struct export_table **ret)
{
        struct export_table *t = calloc(1, sizeof(*t));

        if (!t)
                return -ENOMEM;
        atomic_init(&t->refs, 1);
        *ret = t;
        return 0;
}

static int parse_line(struct export_table *t, char *line, char **ret_error)
{
        char *save = NULL, *word;
        struct export *e;
        int r;

        word = strtok_r(line, " \t", &save);
        if (!word)
                return 0;
        if (word[0] != '/') {
                if (asprintf(ret_error, "export path '%s' is not absolute", word) < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }
        for (size_t i = 0; i < t->n_exports; i++)
                if (streq(t->exports[i].name, word)) {
                        if (asprintf(ret_error, "'%s' is exported twice", word) < 0)
                                *ret_error = NULL;
                        return -EINVAL;
                }
        r = add_export(t, &e);
        if (r < 0)
                return r;
        e->path = strdup(word);
        e->name = strdup(word);
        if (!e->path || !e->name)
                return -ENOMEM;
        /* Drop trailing slashes (but keep "/"). */
        for (size_t l = strlen(e->name); l > 1 && e->name[l - 1] == '/'; l--)
                e->name[l - 1] = '\0';

        while ((word = strtok_r(NULL, " \t", &save))) {
                struct export_client *n = realloc(e->clients, (e->n_clients + 1) * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                e->clients = n;
                r = parse_client(word, &n[e->n_clients], ret_error);
                if (n[e->n_clients].spec)
                        e->n_clients++;
                if (r < 0)
                        return r;
        }
        if (e->n_clients == 0) {
                if (asprintf(ret_error, "export '%s' names no clients", e->name) < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }
        return 0;
}

int export_table_parse(const char *text, struct export_table **ret, char **ret_error)
{
        _cleanup_(export_table_freep) struct export_table *t = NULL;
        _cleanup_free_ char *copy = strdup(text);
        char *line, *next;
        unsigned lineno = 0;
        int r;

        if (!copy)
                return -ENOMEM;
        r = table_new(&t);
        if (r < 0)
                return r;

        for (line = copy; line; line = next) {
                _cleanup_free_ char *err = NULL;
                char *hash;

                lineno++;
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                hash = strchr(line, '#');
                if (hash)
                        *hash = '\0';
                r = parse_line(t, line, &err);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        if (asprintf(ret_error, "line %u: %s", lineno, err ? err : "invalid") < 0)
                                return -ENOMEM;
                        return r;
                }
        }
        if (t->n_exports == 0) {
                *ret_error = strdup("no exports");
                return *ret_error ? -EINVAL : -ENOMEM;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

int export_table_new_loopback(const char *dir, struct export_table **ret)
{
        static const char *const specs[] = {"127.0.0.0/8", "::1"};
        _cleanup_(export_table_freep) struct export_table *t = NULL;
        struct export *e;
        int r;

        r = table_new(&t);
        if (r < 0)
                return r;
        r = add_export(t, &e);
        if (r < 0)
                return r;
        e->name = strdup("/");
        e->path = strdup(dir);
        e->clients = calloc(ELEMENTSOF(specs), sizeof(*e->clients));
        if (!e->name || !e->path || !e->clients)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(specs); i++) {
                struct export_client *c = &e->clients[e->n_clients];
                *c = (struct export_client){
                    .rw = true,
                    .insecure = true,
                    .squash = EXPORT_NO_ROOT_SQUASH,
                    .anonuid = 65534,
                    .anongid = 65534,
                };
                c->spec = strdup(specs[i]);
                if (!c->spec)
                        return -ENOMEM;
                e->n_clients++;
                r = export_client_parse_spec(c->spec, c);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

/* Whether the mount mount_id shows its filesystem's root at `canon`
 * (/proc/self/mountinfo: id parent major:minor root mountpoint ...). */
static bool mount_shows_fs_root(int mount_id, const char *canon)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[4096];

        if (!f)
                return false;
        while (fgets(line, sizeof(line), f)) {
                char root[2048], point[2048];
                int id;

                if (sscanf(line, "%d %*d %*s %2047s %2047s", &id, root, point) != 3 ||
                    id != mount_id)
                        continue;
                /* A mount point with escaped characters (\040) does not
                 * compare equal: the export is then checked as a subtree. */
                return streq(root, "/") && streq(point, canon);
        }
        return false;
}

int export_table_open(struct export_table *t, const struct fhandle_key *key, const char **ret_path)
{
        for (size_t i = 0; i < t->n_exports; i++) {
                struct export *e = &t->exports[i];
                struct {
                        struct file_handle fh;
                        unsigned char buf[MAX_HANDLE_SZ];
                } h;
                struct stat st;
                uint8_t mac[32];
                int mount_id;

                if (!e->dircache)
                        e->dircache = dircache_new(); /* without memory, no cache */
                if (!e->childcache)
                        e->childcache = childcache_new();
                /* Not O_PATH: open_by_handle_at() needs a real fd as its mount fd. */
                e->fd = open(e->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (e->fd < 0 || fstat(e->fd, &st) < 0) {
                        *ret_path = e->path;
                        return negative_errno();
                }
                h.fh.handle_bytes = MAX_HANDLE_SZ;
                if (name_to_handle_at(e->fd, "", &h.fh, &mount_id, AT_EMPTY_PATH) < 0) {
                        *ret_path = e->path;
                        return negative_errno();
                }
                if (h.fh.handle_bytes > FHANDLE_KERNEL_MAX) {
                        *ret_path = e->path;
                        return -EOVERFLOW;
                }
                e->dev = st.st_dev;
                e->ino = st.st_ino;
                e->mount_id = mount_id;
                {
                        char proc[32], canon[PATH_MAX];
                        ssize_t n;

                        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", e->fd);
                        n = readlink(proc, canon, sizeof(canon) - 1);
                        if (n <= 0 || canon[0] != '/') {
                                *ret_path = e->path;
                                return n < 0 ? negative_errno() : -EIO;
                        }
                        canon[n] = '\0';
                        free(e->canon);
                        e->canon = strdup(canon);
                        if (!e->canon)
                                return -ENOMEM;
                        e->whole_fs = mount_shows_fs_root(mount_id, e->canon);
                }
                /* Without it, every directory resolve walks to the root. */
                if (!e->ancestry && ancestry_new(e->path, &e->ancestry) < 0)
                        e->ancestry = NULL;
                fhandle_key_mac(key, e->path, strlen(e->path), mac);
                e->id = (uint32_t)mac[0] << 24 | (uint32_t)mac[1] << 16 | (uint32_t)mac[2] << 8 |
                        mac[3];
                for (size_t j = 0; j < i; j++)
                        if (t->exports[j].id == e->id) {
                                *ret_path = e->path;
                                return -EEXIST;
                        }
        }
        return 0;
}

static bool client_is_loopback(const struct export_client *c)
{
        static const uint8_t v6_loopback[16] = {[15] = 1};

        if (c->any)
                return false;
        if (c->family == AF_INET)
                return c->addr[0] == 127 && c->prefix >= 8;
        return c->prefix == 128 && memcmp(c->addr, v6_loopback, 16) == 0;
}

bool export_table_loopback_only(const struct export_table *t)
{
        for (size_t i = 0; i < t->n_exports; i++)
                for (size_t j = 0; j < t->exports[i].n_clients; j++)
                        if (!client_is_loopback(&t->exports[i].clients[j]))
                                return false;
        return true;
}

const struct export *export_table_find_id(const struct export_table *t, uint32_t id)
{
        for (size_t i = 0; i < t->n_exports; i++)
                if (t->exports[i].id == id && t->exports[i].fd >= 0)
                        return &t->exports[i];
        return NULL;
}

const struct export *export_table_find_name(const struct export_table *t, const char *dirpath,
                                            const char **ret_rest)
{
        const struct export *best = NULL;
        const char *best_rest = NULL;
        size_t best_len = 0;

        for (size_t i = 0; i < t->n_exports; i++) {
                const struct export *e = &t->exports[i];
                size_t l = strlen(e->name);
                const char *rest;

                if (streq(e->name, "/"))
                        l = 0;
                if (strncmp(dirpath, e->name, l) != 0)
                        continue;
                rest = dirpath + l;
                if (*rest != '\0' && *rest != '/')
                        continue;
                if (!best || l > best_len) {
                        best = e;
                        best_len = l;
                        best_rest = rest;
                }
        }
        if (best) {
                while (*best_rest == '/')
                        best_rest++;
                *ret_rest = best_rest;
        }
        return best;
}

static bool prefix_match(const uint8_t *a, const uint8_t *net, unsigned prefix)
{
        unsigned bytes = prefix / 8, bits = prefix % 8;

        if (memcmp(a, net, bytes) != 0)
                return false;
        if (bits == 0)
                return true;
        return ((a[bytes] ^ net[bytes]) & (uint8_t)(0xff00 >> bits)) == 0;
}

const struct export_client *export_match(const struct export *e, const struct sockaddr *peer)
{
        uint8_t v4[4], v6[16];
        bool have4 = false, have6 = false;

        if (peer->sa_family == AF_INET) {
                memcpy(v4, &((const struct sockaddr_in *)peer)->sin_addr, 4);
                have4 = true;
        } else if (peer->sa_family == AF_INET6) {
                const struct in6_addr *a = &((const struct sockaddr_in6 *)peer)->sin6_addr;
                memcpy(v6, a, 16);
                have6 = true;
                if (IN6_IS_ADDR_V4MAPPED(a)) {
                        memcpy(v4, a->s6_addr + 12, 4);
                        have4 = true;
                }
        }
        for (size_t i = 0; i < e->n_clients; i++) {
                const struct export_client *c = &e->clients[i];
                if (c->any)
                        return c;
                if (c->family == AF_INET && have4 && prefix_match(v4, c->addr, c->prefix))
                        return c;
                if (c->family == AF_INET6 && have6 && prefix_match(v6, c->addr, c->prefix))
                        return c;
        }
        return NULL;
}

int export_access(const struct export *e, const struct sockaddr *peer,
                  const struct export_client **ret)
{
        const struct export_client *cl = export_match(e, peer);

        if (!cl)
                return -EACCES;
        if (!cl->insecure && !peer_port_reserved(peer))
                return -EPERM;
        *ret = cl;
        return 0;
}
