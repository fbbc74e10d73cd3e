/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* auditlog: audit records, rules and auditd.conf, parsed without IO. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auditlog.h"
#include "cleanup.h"
#include "macro.h"

#define ARCH_X86_64  0xc000003eu
#define ARCH_I386    0x40000003u
#define ARCH_AARCH64 0xc00000b7u
#define AT_FDCWD_32  0xffffff9cu
/* How far back a record looks for its event: the kernel emits the records
 * of one event together, other events' records may come between. */
#define EVENT_LOOKBACK 256

void audit_list_done(struct audit_list *l)
{
        for (size_t i = 0; i < l->n; i++) {
                free(l->items[i].exe);
                free(l->items[i].path);
        }
        free(l->items);
        *l = (struct audit_list){};
}

static bool action_valid(char a)
{
        return a && strchr("CWMDFT", a);
}

int audit_list_add(struct audit_list *l, char action, bool state, pid_t pid, const char *exe,
                   const char *path)
{
        char *e, *p;

        if (!action_valid(action))
                return -EINVAL;
        if (l->n == l->allocated) {
                size_t a = l->allocated ? l->allocated * 2 : 64;
                struct audit_entry *m = realloc(l->items, a * sizeof(*m));

                if (!m)
                        return -ENOMEM;
                l->items = m;
                l->allocated = a;
        }
        e = strdup(exe ? exe : "?");
        p = strdup(path);
        if (!e || !p) {
                free(e);
                free(p);
                return -ENOMEM;
        }
        l->items[l->n++] = (struct audit_entry){action, state, pid, e, p};
        return 0;
}

int audit_path_normalize(const char *path, char **ret)
{
        size_t len = strlen(path), n = 0;
        char *out;

        if (path[0] != '/')
                return -EINVAL;
        out = malloc(len + 2);
        if (!out)
                return -ENOMEM;
        for (const char *p = path; *p;) {
                const char *s;
                size_t l;

                while (*p == '/')
                        p++;
                s = p;
                while (*p && *p != '/')
                        p++;
                l = (size_t)(p - s);
                if (l == 0 || (l == 1 && s[0] == '.'))
                        continue;
                if (l == 2 && s[0] == '.' && s[1] == '.') {
                        while (n > 0 && out[n - 1] != '/')
                                n--;
                        if (n > 0)
                                n--;
                        continue;
                }
                out[n++] = '/';
                memcpy(out + n, s, l);
                n += l;
        }
        if (n == 0)
                out[n++] = '/';
        out[n] = 0;
        *ret = out;
        return 0;
}

/* ---- records ---- */

static int hexval(char c)
{
        return c >= '0' && c <= '9'   ? c - '0'
               : c >= 'A' && c <= 'F' ? c - 'A' + 10
               : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                      : -1;
}

/* Finds field name among the "k=v" tokens of [p, end) (quoted values may
 * hold spaces); sets the value's bounds, quotes stripped, and whether it
 * was quoted. */
static bool field_find(const char *p, const char *end, const char *name, const char **ret_v,
                       size_t *ret_len, bool *ret_quoted)
{
        size_t nl = strlen(name);

        while (p < end) {
                const char *k, *eq, *v, *ve;
                bool quoted = false;

                while (p < end && *p == ' ')
                        p++;
                k = p;
                while (p < end && *p != '=' && *p != ' ')
                        p++;
                if (p >= end || *p != '=')
                        continue;
                eq = p;
                v = ++p;
                if (p < end && (*p == '"' || *p == '\'')) {
                        char q = *p++;

                        v = p;
                        while (p < end && *p != q)
                                p++;
                        ve = p;
                        if (p < end)
                                p++;
                        quoted = true;
                } else {
                        while (p < end && *p != ' ')
                                p++;
                        ve = p;
                }
                if ((size_t)(eq - k) == nl && memcmp(k, name, nl) == 0) {
                        *ret_v = v;
                        *ret_len = (size_t)(ve - v);
                        *ret_quoted = quoted;
                        return true;
                }
        }
        return false;
}

/* A string field: quoted as is, or hex-encoded (how audit writes a value
 * with spaces, quotes or control characters); NULL when absent or
 * "(null)". */
static char *field_string(const char *p, const char *end, const char *name)
{
        const char *v;
        size_t len;
        bool quoted;
        char *s;

        if (!field_find(p, end, name, &v, &len, &quoted))
                return NULL;
        if (quoted)
                return strndup(v, len);
        if (len == 0 || len % 2 != 0)
                return NULL;
        s = malloc(len / 2 + 1);
        if (!s)
                return NULL;
        for (size_t i = 0; i < len; i += 2) {
                int h = hexval(v[i]), l = hexval(v[i + 1]);

                if (h < 0 || l < 0) {
                        free(s);
                        return NULL;
                }
                s[i / 2] = (char)(h * 16 + l);
        }
        s[len / 2] = 0;
        if (strlen(s) != len / 2) { /* an embedded NUL */
                free(s);
                return NULL;
        }
        return s;
}

static bool field_u64(const char *p, const char *end, const char *name, int base, uint64_t *ret)
{
        const char *v;
        size_t len;
        bool quoted;
        char buf[32], *e;

        if (!field_find(p, end, name, &v, &len, &quoted) || len == 0 || len >= sizeof(buf))
                return false;
        memcpy(buf, v, len);
        buf[len] = 0;
        errno = 0;
        *ret = strtoull(buf, &e, base);
        return errno == 0 && *e == 0;
}

static bool field_is(const char *p, const char *end, const char *name, const char *value)
{
        const char *v;
        size_t len;
        bool quoted;

        return field_find(p, end, name, &v, &len, &quoted) && len == strlen(value) &&
               memcmp(v, value, len) == 0;
}

/* One record: its type, its event's "TIME:SERIAL" and its fields. */
struct record {
        const char *type;
        size_t type_len;
        const char *id;
        size_t id_len;
        const char *body, *end;
};

static bool record_split(const char *line, const char *end, struct record *ret)
{
        const char *t = NULL, *m, *close;
        const char *sep = memchr(line, 0x1d, (size_t)(end - line));

        /* ENRICHED: the interpreted fields follow a GS character */
        if (sep)
                end = sep;
        if ((size_t)(end - line) > 5 && memcmp(line, "type=", 5) == 0)
                t = line + 5;
        else {
                for (const char *p = line; p + 6 < end; p++)
                        if (memcmp(p, " type=", 6) == 0) {
                                t = p + 6;
                                break;
                        }
        }
        if (!t)
                return false;
        ret->type = t;
        while (t < end && *t != ' ')
                t++;
        ret->type_len = (size_t)(t - ret->type);
        m = t;
        if ((size_t)(end - m) < 11 || memcmp(m, " msg=audit(", 11) != 0)
                return false;
        ret->id = m + 11;
        close = memchr(ret->id, ')', (size_t)(end - ret->id));
        if (!close)
                return false;
        ret->id_len = (size_t)(close - ret->id);
        ret->body = close + 1;
        if (ret->body < end && *ret->body == ':')
                ret->body++;
        ret->end = end;
        return true;
}

static bool record_type_is(const struct record *r, const char *type)
{
        return r->type_len == strlen(type) && memcmp(r->type, type, r->type_len) == 0;
}

/* ---- syscalls ---- */

enum {
        SC_OPEN = 1 << 0,   /* a NORMAL name was opened for writing */
        SC_RENAME = 1 << 1, /* DELETE is the old name, CREATE the new */
        SC_LINK = 1 << 2,   /* a NORMAL name is only the link's target */
        SC_DIRFD0 = 1 << 3, /* a0 is a directory fd */
        SC_DIRFD1 = 1 << 4,
        SC_DIRFD2 = 1 << 5,
};

static const struct syscall_info {
        uint32_t arch;
        unsigned nr;
        unsigned flags;
} syscalls[] = {
    {ARCH_X86_64, 2, SC_OPEN},
    {ARCH_X86_64, 85, SC_OPEN},
    {ARCH_X86_64, 257, SC_OPEN | SC_DIRFD0},
    {ARCH_X86_64, 437, SC_OPEN | SC_DIRFD0},
    {ARCH_X86_64, 76, SC_OPEN},
    {ARCH_X86_64, 82, SC_RENAME},
    {ARCH_X86_64, 264, SC_RENAME | SC_DIRFD0 | SC_DIRFD2},
    {ARCH_X86_64, 316, SC_RENAME | SC_DIRFD0 | SC_DIRFD2},
    {ARCH_X86_64, 86, SC_LINK},
    {ARCH_X86_64, 265, SC_LINK | SC_DIRFD0 | SC_DIRFD2},
    {ARCH_X86_64, 88, SC_LINK},
    {ARCH_X86_64, 266, SC_LINK | SC_DIRFD1},
    {ARCH_X86_64, 258, SC_DIRFD0},
    {ARCH_X86_64, 259, SC_DIRFD0},
    {ARCH_X86_64, 260, SC_DIRFD0},
    {ARCH_X86_64, 261, SC_DIRFD0},
    {ARCH_X86_64, 263, SC_DIRFD0},
    {ARCH_X86_64, 268, SC_DIRFD0},
    {ARCH_X86_64, 280, SC_DIRFD0},
    {ARCH_X86_64, 452, SC_DIRFD0},
    {ARCH_I386, 5, SC_OPEN},
    {ARCH_I386, 8, SC_OPEN},
    {ARCH_I386, 295, SC_OPEN | SC_DIRFD0},
    {ARCH_I386, 437, SC_OPEN | SC_DIRFD0},
    {ARCH_I386, 92, SC_OPEN},
    {ARCH_I386, 193, SC_OPEN},
    {ARCH_I386, 38, SC_RENAME},
    {ARCH_I386, 302, SC_RENAME | SC_DIRFD0 | SC_DIRFD2},
    {ARCH_I386, 353, SC_RENAME | SC_DIRFD0 | SC_DIRFD2},
    {ARCH_I386, 9, SC_LINK},
    {ARCH_I386, 303, SC_LINK | SC_DIRFD0 | SC_DIRFD2},
    {ARCH_I386, 83, SC_LINK},
    {ARCH_I386, 304, SC_LINK | SC_DIRFD1},
    {ARCH_I386, 296, SC_DIRFD0},
    {ARCH_I386, 297, SC_DIRFD0},
    {ARCH_I386, 298, SC_DIRFD0},
    {ARCH_I386, 301, SC_DIRFD0},
    {ARCH_I386, 306, SC_DIRFD0},
    {ARCH_I386, 320, SC_DIRFD0},
    {ARCH_AARCH64, 56, SC_OPEN | SC_DIRFD0},
    {ARCH_AARCH64, 437, SC_OPEN | SC_DIRFD0},
    {ARCH_AARCH64, 45, SC_OPEN},
    {ARCH_AARCH64, 38, SC_RENAME | SC_DIRFD0 | SC_DIRFD2},
    {ARCH_AARCH64, 276, SC_RENAME | SC_DIRFD0 | SC_DIRFD2},
    {ARCH_AARCH64, 37, SC_LINK | SC_DIRFD0 | SC_DIRFD2},
    {ARCH_AARCH64, 36, SC_LINK | SC_DIRFD1},
    {ARCH_AARCH64, 33, SC_DIRFD0},
    {ARCH_AARCH64, 34, SC_DIRFD0},
    {ARCH_AARCH64, 35, SC_DIRFD0},
    {ARCH_AARCH64, 53, SC_DIRFD0},
    {ARCH_AARCH64, 54, SC_DIRFD0},
    {ARCH_AARCH64, 88, SC_DIRFD0},
};

static unsigned syscall_flags(uint32_t arch, uint64_t nr)
{
        for (size_t i = 0; i < ELEMENTSOF(syscalls); i++)
                if (syscalls[i].arch == arch && syscalls[i].nr == nr)
                        return syscalls[i].flags;
        return 0;
}

/* ---- events ---- */

struct ev_name {
        char *name; /* NULL for a record without one (an "anonymous" PARENT) */
        char type;  /* first letter of nametype: C(REATE) D(ELETE) N(ORMAL) P(ARENT) U(NKNOWN) */
        bool has_inode;
        uint64_t ino, dev; /* dev: major << 32 | minor, as the record's "dev=MAJ:MIN" */
};

struct event {
        char *id;
        pid_t pid;
        char *exe;
        unsigned flags;
        uint32_t dirfd[3]; /* the directory fd arguments, AT_FDCWD_32 where none */
        char *cwd;
        struct ev_name *names;
        size_t n_names;
};

struct events {
        struct event *items;
        size_t n, allocated;
};

static void events_done(struct events *e)
{
        for (size_t i = 0; i < e->n; i++) {
                struct event *v = &e->items[i];

                free(v->id);
                free(v->exe);
                free(v->cwd);
                for (size_t j = 0; j < v->n_names; j++)
                        free(v->names[j].name);
                free(v->names);
        }
        free(e->items);
}

static struct event *events_find(struct events *e, const struct record *r)
{
        for (size_t i = e->n, k = 0; i > 0 && k < EVENT_LOOKBACK; i--, k++) {
                struct event *v = &e->items[i - 1];

                if (strlen(v->id) == r->id_len && memcmp(v->id, r->id, r->id_len) == 0)
                        return v;
        }
        return NULL;
}

static bool pid_skipped(pid_t pid, const pid_t *skip, size_t n_skip)
{
        for (size_t i = 0; i < n_skip; i++)
                if (skip[i] == pid)
                        return true;
        return false;
}

static int event_add_syscall(struct events *e, const struct record *r, const char *key,
                             const pid_t *skip, size_t n_skip)
{
        _cleanup_free_ char *k = field_string(r->body, r->end, "key");
        uint64_t pid, arch, nr, a[3] = {AT_FDCWD_32, AT_FDCWD_32, AT_FDCWD_32};
        struct event *v;
        unsigned flags;

        if (!k || strcmp(k, key) != 0 || !field_is(r->body, r->end, "success", "yes") ||
            !field_u64(r->body, r->end, "pid", 10, &pid) ||
            !field_u64(r->body, r->end, "arch", 16, &arch) ||
            !field_u64(r->body, r->end, "syscall", 10, &nr) ||
            pid_skipped((pid_t)pid, skip, n_skip))
                return 0;
        flags = syscall_flags((uint32_t)arch, nr);
        for (int i = 0; i < 3; i++) {
                char an[3] = {'a', (char)('0' + i), 0};

                if ((flags & (SC_DIRFD0 << i)) && !field_u64(r->body, r->end, an, 16, &a[i]))
                        a[i] = 0;
        }
        if (e->n == e->allocated) {
                size_t n = e->allocated ? e->allocated * 2 : 64;
                struct event *m = realloc(e->items, n * sizeof(*m));

                if (!m)
                        return -ENOMEM;
                e->items = m;
                e->allocated = n;
        }
        v = &e->items[e->n];
        *v = (struct event){
            .id = strndup(r->id, r->id_len),
            .pid = (pid_t)pid,
            .exe = field_string(r->body, r->end, "exe"),
            .flags = flags,
            .dirfd = {(uint32_t)a[0], (uint32_t)a[1], (uint32_t)a[2]},
        };
        if (!v->id) {
                free(v->exe);
                return -ENOMEM;
        }
        e->n++;
        return 0;
}

/* "MAJ:MIN" in hex, as PATH records write dev. */
static bool field_dev(const char *p, const char *end, uint64_t *ret)
{
        const char *v;
        size_t len;
        bool quoted;
        char buf[32], *e, *e2;
        unsigned long maj, min;

        if (!field_find(p, end, "dev", &v, &len, &quoted) || len == 0 || len >= sizeof(buf))
                return false;
        memcpy(buf, v, len);
        buf[len] = 0;
        errno = 0;
        maj = strtoul(buf, &e, 16);
        if (errno || e == buf || *e != ':')
                return false;
        min = strtoul(e + 1, &e2, 16);
        if (errno || e2 == e + 1 || *e2)
                return false;
        *ret = (uint64_t)maj << 32 | (uint32_t)min;
        return true;
}

static int event_add_path(struct event *v, const struct record *r)
{
        const char *t;
        size_t len;
        bool quoted;
        struct ev_name n = {};
        struct ev_name *m;

        if (!field_find(r->body, r->end, "nametype", &t, &len, &quoted) || len == 0)
                return 0;
        n.type = t[0];
        n.name = field_string(r->body, r->end, "name");
        n.has_inode =
            field_u64(r->body, r->end, "inode", 10, &n.ino) && field_dev(r->body, r->end, &n.dev);
        /* a record with neither says nothing; an anonymous PARENT still
         * gives its directory's inode, and keeps the records' order */
        if (!n.name && !n.has_inode)
                return 0;
        m = realloc(v->names, (v->n_names + 1) * sizeof(*m));
        if (!m) {
                free(n.name);
                return -ENOMEM;
        }
        v->names = m;
        v->names[v->n_names++] = n;
        return 0;
}

/* The PARENT records of v's path arguments: old, the first path's (the
 * only one of most syscalls), new, a rename's or link's new name's (the
 * same record when both are in one directory). Only named ones count:
 * the nameless ones are the overlay's own operations on its upper dir. */
struct event_parents {
        ssize_t old, new;
};

/* What a name record of v refers to: the syscall argument holding the
 * directory fd it is relative to (-1: the syscall takes none), and its
 * PARENT record (-1: none). A rename's first DELETE is the old name, a
 * later one the target it replaced, CREATE the new name; linkat's NORMAL
 * is the old name, looked up without a parent. */
struct name_ref {
        int arg;
        ssize_t parent;
};

static struct name_ref name_ref(const struct event *v, const struct event_parents *ps, size_t j)
{
        const struct ev_name *n = &v->names[j];
        struct name_ref ref = {-1, -1};
        ssize_t first_d = -1;
        bool second = false;

        for (size_t i = 0; i < v->n_names && first_d < 0; i++)
                if (v->names[i].type == 'D')
                        first_d = (ssize_t)i;
        if (v->flags & SC_RENAME)
                second = n->type == 'C' || (n->type == 'D' && (ssize_t)j != first_d) ||
                         (n->type == 'P' && (ssize_t)j == ps->new && ps->new != ps->old);
        else if (v->flags & SC_LINK)
                second = n->type != 'N';
        if (v->flags & SC_DIRFD1)
                ref.arg = 1;
        else if (v->flags & SC_DIRFD0)
                ref.arg = second && (v->flags & SC_DIRFD2) ? 2 : 0;
        if (n->type == 'P')
                ref.parent = (ssize_t)j;
        else if (!(n->type == 'N' && (v->flags & SC_LINK)))
                ref.parent = second ? ps->new : ps->old;
        return ref;
}

static bool name_at_cwd(const struct event *v, const struct name_ref *ref)
{
        return ref->arg < 0 || v->dirfd[ref->arg] == AT_FDCWD_32;
}

/* What the records placed so far: (dev, inode) -> machine path; a pair
 * placed again takes the new path. Open addressing over items. Each is
 * also kept under (DEV_ANY, inode): the overlay's operations on its upper
 * dir rewrite some records with the upper's device, and where all layers
 * share one file system the inode numbers are the same on both. */
#define DEV_ANY UINT64_MAX

struct inode_place {
        uint64_t dev, ino;
        char *path;
};

struct inode_map {
        struct inode_place *items;
        size_t n, allocated;
        size_t *slots; /* index + 1; 0 is empty */
        size_t mask;
        const struct audit_resolver *resolver;
};

static void inode_map_done(struct inode_map *m)
{
        for (size_t i = 0; i < m->n; i++)
                free(m->items[i].path);
        free(m->items);
        free(m->slots);
}

static size_t inode_slot(const struct inode_map *m, uint64_t dev, uint64_t ino)
{
        uint64_t h = (ino ^ (dev * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
        size_t i = (size_t)(h >> 17) & m->mask;

        while (m->slots[i] != 0) {
                const struct inode_place *x = &m->items[m->slots[i] - 1];

                if (x->dev == dev && x->ino == ino)
                        break;
                i = (i + 1) & m->mask;
        }
        return i;
}

static const char *inode_map_get(const struct inode_map *m, uint64_t dev, uint64_t ino)
{
        size_t i;

        if (!m->slots)
                return NULL;
        i = inode_slot(m, dev, ino);
        return m->slots[i] ? m->items[m->slots[i] - 1].path : NULL;
}

static int inode_map_put_one(struct inode_map *m, uint64_t dev, uint64_t ino, const char *path)
{
        size_t i;
        char *p;

        if (m->n * 2 >= m->mask) {
                size_t size = m->slots ? (m->mask + 1) * 2 : 256;
                size_t *slots = calloc(size, sizeof(size_t));

                if (!slots)
                        return -ENOMEM;
                free(m->slots);
                m->slots = slots;
                m->mask = size - 1;
                for (size_t k = 0; k < m->n; k++)
                        m->slots[inode_slot(m, m->items[k].dev, m->items[k].ino)] = k + 1;
        }
        i = inode_slot(m, dev, ino);
        if (m->slots[i]) {
                struct inode_place *x = &m->items[m->slots[i] - 1];

                if (streq(x->path, path))
                        return 0;
                p = strdup(path);
                if (!p)
                        return -ENOMEM;
                free(x->path);
                x->path = p;
                return 0;
        }
        if (m->n == m->allocated) {
                size_t a = m->allocated ? m->allocated * 2 : 64;
                struct inode_place *x = realloc(m->items, a * sizeof(*x));

                if (!x)
                        return -ENOMEM;
                m->items = x;
                m->allocated = a;
        }
        p = strdup(path);
        if (!p)
                return -ENOMEM;
        m->items[m->n++] = (struct inode_place){dev, ino, p};
        m->slots[i] = m->n;
        return 0;
}

static int inode_map_put(struct inode_map *m, uint64_t dev, uint64_t ino, const char *path)
{
        int r = inode_map_put_one(m, dev, ino, path);

        return r < 0 ? r : inode_map_put_one(m, DEV_ANY, ino, path);
}

/* The path of (dev, ino): what the records placed (on that device, else
 * on any), else the resolver's answer (kept for the next look-up); NULL
 * when unknown. */
static const char *inode_map_find(struct inode_map *m, uint64_t dev, uint64_t ino)
{
        const char *have = inode_map_get(m, dev, ino);

        if (!have)
                have = inode_map_get(m, DEV_ANY, ino);
        _cleanup_free_ char *p = NULL;

        if (have || !m->resolver || !m->resolver->inode_path)
                return have;
        p = m->resolver->inode_path(ino, m->resolver->userdata);
        if (!p || p[0] != '/' || inode_map_put(m, dev, ino, p) < 0)
                return NULL;
        return inode_map_get(m, dev, ino);
}

/* path/last component of name (trailing slashes dropped), normalized. */
static char *path_join_last(const char *dir, const char *name)
{
        _cleanup_free_ char *joined = NULL;
        size_t len = strlen(name);
        const char *last;
        char *p = NULL;

        while (len > 1 && name[len - 1] == '/')
                len--;
        last = name + len;
        while (last > name && last[-1] != '/')
                last--;
        if (asprintf(&joined, "%s/%.*s", dir, (int)(name + len - last), last) < 0)
                return NULL;
        (void)audit_path_normalize(joined, &p);
        return p;
}

static const char *inode_map_find(struct inode_map *m, uint64_t dev, uint64_t ino);

/* Whether name's directory part is dir (a PARENT record's name: the kernel
 * writes the first part of the child's own name, up to its last '/'). */
static bool name_in_dir(const char *name, const char *dir)
{
        size_t l = strlen(dir);
        const char *slash = strrchr(name, '/');

        return l > 0 && dir[l - 1] == '/' && slash && (size_t)(slash - name + 1) == l &&
               strncmp(name, dir, l) == 0;
}

/* Which named PARENT record is the old name's and which the new name's.
 * The kernel writes them in the order it took the names, which for
 * rename is the compiler's order of evaluating the syscall's arguments
 * (Debian's x86-64 kernel: the new name first); so they are told apart by
 * what they name: a PARENT name that is the directory part of one child's
 * name, or the directory the old name's object is known to be in (placed
 * by an earlier record, or by the resolver); failing both, the kernel's
 * order on x86-64. */
static struct event_parents event_parents(const struct event *v, struct inode_map *map)
{
        struct event_parents ps = {-1, -1};
        ssize_t named[2] = {-1, -1}, old_child = -1;
        size_t n = 0;

        for (size_t i = 0; i < v->n_names; i++) {
                const struct ev_name *x = &v->names[i];

                if (x->type == 'P' && x->name && n < 2)
                        named[n++] = (ssize_t)i;
                else if (x->type == 'D' && x->name && old_child < 0)
                        old_child = (ssize_t)i;
        }
        ps.old = ps.new = named[0];
        if (n < 2 || !(v->flags & SC_RENAME))
                return ps;
        /* x86-64: the new name's first */
        ps.new = named[0];
        ps.old = named[1];
        if (old_child >= 0) {
                const char *oname = v->names[old_child].name;
                const char *a = v->names[named[0]].name, *b = v->names[named[1]].name;

                if (!streq(a, b) && (name_in_dir(oname, a) || name_in_dir(oname, b))) {
                        ps.old = name_in_dir(oname, a) ? named[0] : named[1];
                        ps.new = ps.old == named[0] ? named[1] : named[0];
                        return ps;
                }
        }
        if (old_child >= 0 && v->names[old_child].has_inode) {
                const struct ev_name *o = &v->names[old_child];
                const char *where = inode_map_find(map, o->dev, o->ino);
                const char *slash = where ? strrchr(where, '/') : NULL;

                for (size_t k = 0; slash && k < 2; k++) {
                        const struct ev_name *p = &v->names[named[k]];
                        const char *dir = p->has_inode ? inode_map_find(map, p->dev, p->ino) : NULL;
                        size_t dl = slash == where ? 1 : (size_t)(slash - where);

                        if (dir && strlen(dir) == dl && strncmp(dir, where, dl) == 0) {
                                ps.old = named[k];
                                ps.new = named[1 - k];
                                return ps;
                        }
                }
        }
        return ps;
}

/* The machine path names[j] of v stands for (for a PARENT record: its
 * directory), or NULL when it cannot be placed. */
static char *name_place(const struct event *v, const struct event_parents *ps, size_t j,
                        struct inode_map *map)
{
        const struct ev_name *n = &v->names[j];
        struct name_ref ref = name_ref(v, ps, j);
        bool by_name = name_at_cwd(v, &ref);
        _cleanup_free_ char *joined = NULL;
        const char *dir;
        char *p = NULL;

        if (n->type == 'P' && !by_name) {
                /* its name is no help (the kernel writes the cwd for a
                 * plain name), unless a child's is absolute */
                for (size_t i = 0; i < v->n_names; i++)
                        if (i != j && v->names[i].type != 'P' && v->names[i].name &&
                            v->names[i].name[0] == '/' && name_ref(v, ps, i).parent == (ssize_t)j)
                                by_name = true;
        } else if (n->name && n->name[0] == '/')
                by_name = true;
        if (by_name && n->name) {
                if (n->name[0] == '/')
                        (void)audit_path_normalize(n->name, &p);
                else if (v->cwd && v->cwd[0] == '/' &&
                         asprintf(&joined, "%s/%s", v->cwd, n->name) >= 0)
                        (void)audit_path_normalize(joined, &p);
                return p;
        }
        if (by_name)
                return NULL;
        /* relative to a directory fd: through its directory's inode, or
         * the object's own */
        if (n->type == 'P')
                return n->has_inode && (dir = inode_map_find(map, n->dev, n->ino)) ? strdup(dir)
                                                                                   : NULL;
        if (ref.parent >= 0 && v->names[ref.parent].has_inode && n->name &&
            (dir = inode_map_find(map, v->names[ref.parent].dev, v->names[ref.parent].ino)))
                return path_join_last(dir, n->name);
        if (n->type != 'C' && n->has_inode && (dir = inode_map_find(map, n->dev, n->ino)))
                return strdup(dir);
        return NULL;
}

static bool path_pseudo(const char *p)
{
        static const char *const pseudo[] = {"/proc", "/sys", "/dev"};

        for (size_t i = 0; i < ELEMENTSOF(pseudo); i++) {
                size_t l = strlen(pseudo[i]);

                if (strncmp(p, pseudo[i], l) == 0 && (p[l] == 0 || p[l] == '/'))
                        return true;
        }
        return false;
}

static char name_action(const struct event *v, size_t i)
{
        const struct ev_name *n = &v->names[i];

        if (!n->name)
                return 0;
        switch (n->type) {
        case 'C':
                return v->flags & SC_RENAME ? AUDIT_RENAMED_TO : AUDIT_CREATED;
        case 'D':
                if (!(v->flags & SC_RENAME))
                        return AUDIT_REMOVED;
                /* the first is the old name; a later one the target the
                 * rename replaced, the new name, not a removal of its own */
                for (size_t j = 0; j < i; j++)
                        if (v->names[j].type == 'D')
                                return 0;
                return AUDIT_RENAMED_FROM;
        case 'N':
                if (v->flags & (SC_RENAME | SC_LINK))
                        return 0;
                return v->flags & SC_OPEN ? AUDIT_WROTE : AUDIT_ATTR;
        default:
                return 0;
        }
}

/* A set of (action, pid, path) over the entries of l: open addressing. */
struct seen {
        size_t *slots; /* index + 1; 0 is empty */
        size_t mask;
};

static uint64_t entry_hash(char action, pid_t pid, const char *path)
{
        uint64_t h = 1469598103934665603ull;

        h = (h ^ (unsigned char)action) * 1099511628211ull;
        h = (h ^ (uint32_t)pid) * 1099511628211ull;
        for (const char *p = path; *p; p++)
                h = (h ^ (unsigned char)*p) * 1099511628211ull;
        return h;
}

/* Returns true when the entry is new (and records it as l's entry idx). */
static bool seen_add(struct seen *s, const struct audit_list *l, size_t idx, char action, pid_t pid,
                     const char *path)
{
        for (size_t i = entry_hash(action, pid, path) & s->mask;; i = (i + 1) & s->mask) {
                const struct audit_entry *e;

                if (s->slots[i] == 0) {
                        s->slots[i] = idx + 1;
                        return true;
                }
                e = &l->items[s->slots[i] - 1];
                if (e->action == action && e->pid == pid && streq(e->path, path))
                        return false;
        }
}

/* Places v's names with map, and adds what they placed to it: the
 * directories of PARENT records, the objects created, renamed to or
 * opened; *ret_paths[j] (freed by the caller) is names[j]'s place. */
static int event_place(const struct event *v, struct inode_map *map, char ***ret_paths)
{
        char **paths = calloc(v->n_names + 1, sizeof(char *));
        struct event_parents ps;

        if (!paths)
                return -ENOMEM;
        ps = event_parents(v, map);
        /* the PARENT records first: the children are placed through them */
        for (int pass = 0; pass < 2; pass++)
                for (size_t j = 0; j < v->n_names; j++) {
                        const struct ev_name *n = &v->names[j];

                        /* a nameless PARENT is the overlay's own */
                        if ((n->type == 'P') != (pass == 0) || !n->name)
                                continue;
                        paths[j] = name_place(v, &ps, j, map);
                        if (paths[j] && n->has_inode && n->type != 'D' &&
                            inode_map_put(map, n->dev, n->ino, paths[j]) < 0) {
                                for (size_t k = 0; k < v->n_names; k++)
                                        free(paths[k]);
                                free(paths);
                                return -ENOMEM;
                        }
                }
        *ret_paths = paths;
        return 0;
}

static int events_emit(const struct events *e, const struct audit_resolver *resolver,
                       struct audit_list *l)
{
        struct inode_map map = {.resolver = resolver};
        struct seen s = {};
        size_t total = l->n, size = 64;
        int added = 0, r = 0;

        for (size_t i = 0; i < e->n; i++)
                total += e->items[i].n_names;
        while (size < total * 2)
                size *= 2;
        s.slots = calloc(size, sizeof(size_t));
        if (!s.slots)
                return -ENOMEM;
        s.mask = size - 1;
        for (size_t i = 0; i < l->n; i++)
                (void)seen_add(&s, l, i, l->items[i].action, l->items[i].pid, l->items[i].path);
        for (size_t i = 0; i < e->n && r >= 0; i++) {
                const struct event *v = &e->items[i];
                char **paths = NULL;

                r = event_place(v, &map, &paths);
                for (size_t j = 0; j < v->n_names && r >= 0; j++) {
                        _cleanup_free_ char *unplaced = NULL;
                        const char *p = paths[j];
                        char a = name_action(v, j);

                        if (!a)
                                continue;
                        if (!p) {
                                if (asprintf(&unplaced, "?/%s", v->names[j].name) < 0) {
                                        r = -ENOMEM;
                                        break;
                                }
                                p = unplaced;
                        }
                        if (path_pseudo(p) || !seen_add(&s, l, l->n, a, v->pid, p))
                                continue;
                        r = audit_list_add(l, a, false, v->pid, v->exe, p);
                        if (r >= 0)
                                added++;
                }
                if (paths)
                        for (size_t j = 0; j < v->n_names; j++)
                                free(paths[j]);
                free(paths);
        }
        free(s.slots);
        inode_map_done(&map);
        return r < 0 ? r : added;
}

int audit_log_parse(const char *text, size_t len, const char *key, const pid_t *skip, size_t n_skip,
                    const struct audit_resolver *resolver, struct audit_list *l)
{
        struct events e = {};
        const char *end = text + len;
        int r = 0;

        for (const char *line = text; line < end && r >= 0;) {
                const char *nl = memchr(line, '\n', (size_t)(end - line));
                const char *le = nl ? nl : end;
                struct record rec;
                struct event *v;

                if (record_split(line, le, &rec)) {
                        if (record_type_is(&rec, "SYSCALL"))
                                r = event_add_syscall(&e, &rec, key, skip, n_skip);
                        else if ((record_type_is(&rec, "CWD") || record_type_is(&rec, "PATH")) &&
                                 (v = events_find(&e, &rec))) {
                                if (rec.type[0] == 'C') {
                                        free(v->cwd);
                                        v->cwd = field_string(rec.body, rec.end, "cwd");
                                } else
                                        r = event_add_path(v, &rec);
                        }
                }
                line = le + 1;
        }
        if (r >= 0)
                r = events_emit(&e, resolver, l);
        events_done(&e);
        return r;
}

bool audit_log_has_marker(const char *text, size_t len, const char *marker)
{
        _cleanup_free_ char *needle = NULL;
        size_t nl;

        if (asprintf(&needle, "text=%s ", marker) < 0)
                return false;
        nl = strlen(needle);
        for (const char *p = text; (size_t)(text + len - p) >= nl;) {
                const char *hit = memmem(p, (size_t)(text + len - p), needle, nl);
                const char *ls;

                if (!hit)
                        return false;
                for (ls = hit; ls > text && ls[-1] != '\n'; ls--)
                        ;
                if (strncmp(ls, "type=USER ", 10) == 0 ||
                    memmem(ls, (size_t)(hit - ls), " type=USER ", 11))
                        return true;
                p = hit + nl;
        }
        return false;
}

/* ---- audit.list ---- */

static void put_escaped(FILE *f, const char *s)
{
        for (; *s; s++)
                switch (*s) {
                case '\t':
                        fputs("\\t", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                case '\\':
                        fputs("\\\\", f);
                        break;
                default:
                        fputc(*s, f);
                }
}

int audit_list_format(const struct audit_list *l, char **ret)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++) {
                const struct audit_entry *e = &l->items[i];

                fprintf(f, "%s%c\t%d\t", e->state ? "S" : "", e->action, (int)e->pid);
                put_escaped(f, e->exe);
                fputc('\t', f);
                put_escaped(f, e->path);
                fputc('\n', f);
        }
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}

/* Unescapes [s, e) into a new string; NULL for a bad escape. */
static char *unescape(const char *s, const char *e)
{
        char *out = malloc((size_t)(e - s) + 1), *o = out;

        if (!out)
                return NULL;
        for (; s < e; s++) {
                if (*s != '\\') {
                        *o++ = *s;
                        continue;
                }
                if (++s >= e || !strchr("tn\\", *s)) {
                        free(out);
                        return NULL;
                }
                *o++ = *s == 't' ? '\t' : *s == 'n' ? '\n' : '\\';
        }
        *o = 0;
        return out;
}

static int list_parse_line(const char *line, const char *end, struct audit_list *l)
{
        const char *f[4], *fe[4], *p = line;
        _cleanup_free_ char *exe = NULL, *path = NULL;
        char *num_end;
        bool state = false;
        long pid;

        for (int i = 0; i < 4; i++) {
                f[i] = p;
                while (p < end && *p != '\t')
                        p++;
                fe[i] = p;
                if (i < 3) {
                        if (p >= end)
                                return -EBADMSG;
                        p++;
                }
        }
        if (fe[0] - f[0] == 2 && f[0][0] == 'S')
                state = true, f[0]++;
        if (fe[0] - f[0] != 1 || !action_valid(f[0][0]))
                return -EBADMSG;
        errno = 0;
        pid = strtol(f[1], &num_end, 10);
        if (errno || num_end != fe[1] || f[1] == fe[1] || pid < 0)
                return -EBADMSG;
        exe = unescape(f[2], fe[2]);
        path = unescape(f[3], fe[3]);
        if (!exe || !path || (path[0] != '/' && strncmp(path, "?/", 2) != 0))
                return -EBADMSG;
        return audit_list_add(l, f[0][0], state, (pid_t)pid, exe, path);
}

int audit_list_parse(const char *text, struct audit_list *ret, unsigned *ret_line)
{
        struct audit_list l = {};
        unsigned n = 0;

        for (const char *line = text; *line;) {
                const char *nl = strchr(line, '\n');
                const char *le = nl ? nl : line + strlen(line);
                int r;

                n++;
                if (le > line) {
                        r = list_parse_line(line, le, &l);
                        if (r < 0) {
                                audit_list_done(&l);
                                if (ret_line)
                                        *ret_line = n;
                                return r;
                        }
                }
                line = nl ? nl + 1 : le;
        }
        *ret = l;
        return 0;
}

/* ---- diff --why ---- */

static const struct audit_list *sort_list;

static int by_path_cmp(const void *a, const void *b)
{
        size_t x = *(const size_t *)a, y = *(const size_t *)b;
        int c = strcmp(sort_list->items[x].path, sort_list->items[y].path);

        return c != 0 ? c : x < y ? -1 : x > y;
}

int audit_list_by_path(const struct audit_list *l, size_t **ret)
{
        size_t *idx = malloc((l->n ? l->n : 1) * sizeof(size_t));

        if (!idx)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++)
                idx[i] = i;
        sort_list = l;
        qsort(idx, l->n, sizeof(size_t), by_path_cmp);
        sort_list = NULL;
        *ret = idx;
        return 0;
}

int audit_list_why(const struct audit_list *l, const size_t *by_path, const char *path, char **ret)
{
        size_t lo = 0, hi = l->n, first;
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (strcmp(l->items[by_path[mid]].path, path) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        first = lo;
        if (first >= l->n || !streq(l->items[by_path[first]].path, path)) {
                *ret = strdup("-");
                return *ret ? 0 : -ENOMEM;
        }
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        for (size_t i = first; i < l->n && streq(l->items[by_path[i]].path, path); i++) {
                const struct audit_entry *e = &l->items[by_path[i]];
                bool seen = false;

                for (size_t j = first; j < i; j++) {
                        const struct audit_entry *o = &l->items[by_path[j]];

                        if (o->pid == e->pid && streq(o->exe, e->exe))
                                seen = true;
                }
                if (seen)
                        continue;
                fprintf(f, "%s%s[%d]:", i > first ? ", " : "", e->exe, (int)e->pid);
                for (size_t j = i; j < l->n && streq(l->items[by_path[j]].path, path); j++) {
                        const struct audit_entry *o = &l->items[by_path[j]];

                        if (o->pid == e->pid && streq(o->exe, e->exe))
                                fputc(o->action, f);
                }
        }
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}

/* ---- rules and config ---- */

int audit_rule_parse(const char *line, char **ret_key, uint32_t *ret_sessionid)
{
        _cleanup_free_ char *key = NULL;
        const char *end = line + strlen(line), *v;
        uint64_t ses = UINT64_MAX;

        for (const char *p = line; p < end;) {
                const char *t;
                size_t len;

                while (p < end && *p == ' ')
                        p++;
                t = p;
                while (p < end && *p != ' ')
                        p++;
                len = (size_t)(p - t);
                if (len == 2 && memcmp(t, "-k", 2) == 0) {
                        while (p < end && *p == ' ')
                                p++;
                        v = p;
                        while (p < end && *p != ' ')
                                p++;
                        free(key);
                        key = strndup(v, (size_t)(p - v));
                } else if (len > 6 && memcmp(t, "key=", 4) == 0) {
                        free(key);
                        key = strndup(t + 4, len - 4);
                } else if (len > 10 && memcmp(t, "sessionid=", 10) == 0) {
                        char buf[16], *e;

                        if (len - 10 >= sizeof(buf))
                                return -ENOENT;
                        memcpy(buf, t + 10, len - 10);
                        buf[len - 10] = 0;
                        errno = 0;
                        ses = strtoull(buf, &e, 10);
                        if (errno || *e || ses > UINT32_MAX)
                                ses = UINT64_MAX;
                }
        }
        if (!key || ses == UINT64_MAX)
                return -ENOENT;
        if (ret_key)
                *ret_key = TAKE_PTR(key);
        if (ret_sessionid)
                *ret_sessionid = (uint32_t)ses;
        return 0;
}

int audit_conf_parse(const char *text, char **ret_log_file, bool *ret_write_logs)
{
        _cleanup_free_ char *log_file = NULL;
        bool write_logs = true;

        for (const char *line = text; *line;) {
                const char *nl = strchr(line, '\n');
                const char *le = nl ? nl : line + strlen(line), *k = line, *ke, *v, *ve;

                line = nl ? nl + 1 : le;
                while (k < le && (*k == ' ' || *k == '\t'))
                        k++;
                if (k >= le || *k == '#')
                        continue;
                ke = k;
                while (ke < le && *ke != '=' && *ke != ' ' && *ke != '\t')
                        ke++;
                v = memchr(ke, '=', (size_t)(le - ke));
                if (!v)
                        continue;
                v++;
                while (v < le && (*v == ' ' || *v == '\t'))
                        v++;
                ve = le;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r'))
                        ve--;
                if ((size_t)(ke - k) == 8 && memcmp(k, "log_file", 8) == 0) {
                        free(log_file);
                        log_file = strndup(v, (size_t)(ve - v));
                        if (!log_file)
                                return -ENOMEM;
                } else if ((size_t)(ke - k) == 10 && memcmp(k, "write_logs", 10) == 0)
                        write_logs = !((ve - v == 2 && strncasecmp(v, "no", 2) == 0));
        }
        if (!log_file) {
                log_file = strdup("/var/log/audit/audit.log");
                if (!log_file)
                        return -ENOMEM;
        }
        if (log_file[0] != '/')
                return -EINVAL;
        *ret_log_file = TAKE_PTR(log_file);
        *ret_write_logs = write_logs;
        return 0;
}
