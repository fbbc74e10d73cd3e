/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "fs.h"
#include "log.h"
#include "macro.h"
#include "mountplan.h"
#include "slot.h"

#define MARKER "worker.json"
/* ROOT/free-slots/N: the directory (and marker) of slot N once released,
 * renamed back into ROOT/slots when a worker takes N again. */
#define FREE_SLOTS "free-slots"

int64_t worker_proc_start_time(pid_t pid)
{
        _cleanup_free_ char *path = NULL, *buf = NULL;
        long long t = 0;
        char *p;
        int r;

        if (asprintf(&path, "/proc/%d/stat", (int)pid) < 0)
                return -ENOMEM;
        r = read_file_at(AT_FDCWD, path, 4096, &buf, NULL);
        if (r < 0)
                return r;
        /* The command name may hold spaces and parentheses: count from the
         * last ')'. Field 22 is the 20th after it. */
        p = strrchr(buf, ')');
        if (!p)
                return -EBADMSG;
        for (int field = 2; field < 22 && p; field++)
                p = strchr(p + 1, ' ');
        if (!p || sscanf(p + 1, "%lld", &t) != 1)
                return -EBADMSG;
        /* A zombie has ended: it holds no namespace any more. */
        if (strrchr(buf, ')')[1] == ' ' && strrchr(buf, ')')[2] == 'Z')
                return -ESRCH;
        return t;
}

static int write_marker(struct worker_slot *s, pid_t init, int64_t init_start)
{
        _cleanup_free_ char *text = NULL;
        json_t *j;
        size_t len;

        j = json_pack("{s:i,s:i,s:I,s:I,s:I,s:I,s:s}", "strata-worker", 1, "slot", s->slot, "pid",
                      (json_int_t)getpid(), "init", (json_int_t)init, "init-start",
                      (json_int_t)init_start, "started", (json_int_t)s->started, "plan", s->plan);
        if (!j)
                return -ENOMEM;
        text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!text)
                return -ENOMEM;
        len = strlen(text);
        text[len] = '\n';
        /* In place, not renamed over: the lock is on this inode. Written,
         * then cut to its length, not truncated to 0 first: on ext4 a
         * truncate to 0 starts the writeback of what the file held and
         * waits for it (its auto_da_alloc), a disk write of each marker. */
        if (pwrite(s->fd, text, len + 1, 0) != (ssize_t)(len + 1) ||
            ftruncate(s->fd, (off_t)(len + 1)) < 0)
                return -errno;
        return 0;
}

/* Opens and locks dir/worker.json; -EBUSY when another holds it. The
 * inode is checked after the lock: a marker removed (and maybe made anew)
 * while we waited is not the one we want. */
static int lock_marker(const char *marker, bool create, int *ret_fd)
{
        for (int attempt = 0; attempt < 16; attempt++) {
                _cleanup_close_ int fd =
                    open(marker, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0644);
                struct stat a, b;

                if (fd < 0)
                        return -errno;
                struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
                if (fcntl(fd, F_SETLK, &fl) < 0)
                        return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
                if (fstat(fd, &a) < 0)
                        return -errno;
                if (stat(marker, &b) < 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
                        if (!create)
                                return -ENOENT;
                        continue;
                }
                *ret_fd = TAKE_FD(fd);
                return 0;
        }
        return -EBUSY;
}

/* The slots this process holds: opening and closing one's marker again
 * would drop its POSIX lock, and locking it again would succeed. */
static struct worker_slot *held[64];

static struct worker_slot *held_find(const char *marker)
{
        for (size_t i = 0; i < ELEMENTSOF(held); i++)
                if (held[i] && streq(held[i]->marker, marker))
                        return held[i];
        return NULL;
}

static void held_set(struct worker_slot *s, bool on)
{
        for (size_t i = 0; i < ELEMENTSOF(held); i++)
                if (on ? !held[i] : held[i] == s) {
                        held[i] = on ? s : NULL;
                        return;
                }
}

static int slot_paths(const char *root, int slot, char **ret_dir, char **ret_marker)
{
        if (asprintf(ret_dir, "%s/slots/%d", root, slot) < 0)
                return -ENOMEM;
        if (asprintf(ret_marker, "%s/" MARKER, *ret_dir) < 0) {
                free(*ret_dir);
                return -ENOMEM;
        }
        return 0;
}

static int try_slot(const char *root, int slot, const char *plan, struct worker_slot **ret)
{
        _cleanup_free_ char *dir = NULL, *marker = NULL, *free_dir = NULL;
        struct worker_slot *s;
        int r, fd = -1;

        r = slot_paths(root, slot, &dir, &marker);
        if (r < 0)
                return r;
        if (held_find(marker))
                return -EBUSY;
        if (asprintf(&free_dir, "%s/" FREE_SLOTS "/%d", root, slot) < 0)
                return -ENOMEM;
        /* The slot's directory and marker as its last worker left them,
         * taken back with a rename: making them anew allocates two inodes,
         * the costliest step of a whole worker run on an ext4 without a
         * journal (its allocator skips recently deleted inodes one by one).
         * Not there, or the slot there already: made or found as always;
         * the lock decides who holds it. */
        for (int attempt = 0;; attempt++) {
                if (renameat2(AT_FDCWD, free_dir, AT_FDCWD, dir, RENAME_NOREPLACE) < 0) {
                        r = mkdir_p_at(AT_FDCWD, dir, 0755);
                        if (r < 0)
                                return r;
                }
                r = lock_marker(marker, true, &fd);
                /* ENOENT: the dir was released (moved or removed) between
                 * the two steps; take it again. */
                if (r != -ENOENT || attempt >= 3)
                        break;
        }
        if (r < 0)
                return r;
        s = calloc(1, sizeof(*s));
        if (!s || !(s->plan = strdup(plan ? plan : "(default)"))) {
                free(s);
                close(fd);
                return -ENOMEM;
        }
        s->slot = slot;
        s->fd = fd;
        s->dir = TAKE_PTR(dir);
        s->marker = TAKE_PTR(marker);
        s->free_dir = TAKE_PTR(free_dir);
        s->started = (int64_t)time(NULL);
        r = write_marker(s, 0, 0);
        if (r < 0) {
                worker_slot_release(s);
                return r;
        }
        held_set(s, true);
        *ret = s;
        return 0;
}

int worker_slot_acquire(const char *root, int slot, const char *plan, struct worker_slot **ret)
{
        int r;

        if (slot >= WORKER_SLOT_MAX)
                return -EINVAL;
        if (slot >= 0)
                return try_slot(root, slot, plan, ret);
        for (int n = 0; n < WORKER_SLOT_MAX; n++) {
                r = try_slot(root, n, plan, ret);
                if (r != -EBUSY)
                        return r;
        }
        return -EBUSY;
}

/* Moves the slot's dir to ROOT/free-slots/N for the next worker of the
 * slot; false when it stays (then it is removed as before). */
static bool free_slot_keep(const struct worker_slot *s)
{
        _cleanup_free_ char *parent = NULL;
        char *slash;

        if (!s->free_dir)
                return false;
        if (renameat2(AT_FDCWD, s->dir, AT_FDCWD, s->free_dir, RENAME_NOREPLACE) == 0)
                return true;
        if (errno != ENOENT)
                return false;
        /* the first release under this root */
        parent = strdup(s->free_dir);
        slash = parent ? strrchr(parent, '/') : NULL;
        if (!slash)
                return false;
        *slash = '\0';
        if (mkdir(parent, 0755) < 0 && errno != EEXIST)
                return false;
        return renameat2(AT_FDCWD, s->dir, AT_FDCWD, s->free_dir, RENAME_NOREPLACE) == 0;
}

int worker_slot_set_init(struct worker_slot *s, pid_t init)
{
        int64_t t = worker_proc_start_time(init);
        return write_marker(s, init, t < 0 ? 0 : t);
}

struct worker_slot *worker_slot_release(struct worker_slot *s)
{
        if (!s)
                return NULL;
        held_set(s, false);
        if (s->fd >= 0) {
                /* Renamed away while locked: nobody can take the slot with
                 * this marker (lock_marker checks the path's inode). */
                if (!free_slot_keep(s))
                        (void)unlink(s->marker);
                close(s->fd);
        }
        (void)rmdir(s->dir);
        free(s->dir);
        free(s->marker);
        free(s->free_dir);
        free(s->plan);
        free(s);
        return NULL;
}

static bool same_ns(pid_t a_pid, const char *a_link)
{
        char path[64], buf[64];
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)a_pid);
        n = readlink(path, buf, sizeof(buf) - 1);
        if (n < 0)
                return false;
        buf[n] = '\0';
        return streq(buf, a_link);
}

/* Mounts and processes of a live worker, from its init. */
static void count_worker(struct worker_slot_info *i)
{
        _cleanup_free_ char *mi = NULL, *buf = NULL;
        _cleanup_closedir_ DIR *d = NULL;
        char path[64], ns[64];
        struct dirent *de;
        ssize_t n;

        if (asprintf(&mi, "/proc/%d/mountinfo", (int)i->init) >= 0 &&
            read_file_at(AT_FDCWD, mi, 16 << 20, &buf, NULL) >= 0)
                for (char *p = buf; *p; p++)
                        if (*p == '\n')
                                i->mounts++;
        snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)i->init);
        n = readlink(path, ns, sizeof(ns) - 1);
        if (n < 0)
                return;
        ns[n] = '\0';
        d = opendir("/proc");
        while (d && (de = readdir(d))) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                if (*end || pid <= 0)
                        continue;
                if (same_ns((pid_t)pid, ns))
                        i->processes++;
        }
}

static int read_info(const char *root, int slot, struct worker_slot_info *i)
{
        _cleanup_free_ char *dir = NULL, *marker = NULL, *text = NULL;
        _cleanup_close_ int fd = -1;
        json_t *j = NULL;
        int r;

        r = slot_paths(root, slot, &dir, &marker);
        if (r < 0)
                return r;
        *i = (struct worker_slot_info){.slot = slot};
        if (held_find(marker)) {
                /* Ours: read through the locked fd. */
                struct worker_slot *h = held_find(marker);
                char buf[4096];
                ssize_t k = pread(h->fd, buf, sizeof(buf) - 1, 0);
                i->in_use = true;
                text = k >= 0 ? strndup(buf, (size_t)k) : NULL;
        } else {
                struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
                fd = open(marker, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0)
                        return -errno;
                i->in_use = fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
                (void)read_file_at(AT_FDCWD, marker, 1 << 16, &text, NULL);
        }
        j = text ? json_loads(text, 0, NULL) : NULL;
        if (j && json_integer_value(json_object_get(j, "strata-worker")) == 1 &&
            json_integer_value(json_object_get(j, "slot")) == slot) {
                int64_t start = json_integer_value(json_object_get(j, "init-start"));
                const char *plan = json_string_value(json_object_get(j, "plan"));

                i->valid = true;
                i->pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
                i->init = (pid_t)json_integer_value(json_object_get(j, "init"));
                i->started = json_integer_value(json_object_get(j, "started"));
                i->plan = plan ? strdup(plan) : NULL;
                i->init_alive =
                    i->init > 0 && start > 0 && worker_proc_start_time(i->init) == start;
                if (i->init_alive)
                        count_worker(i);
        }
        json_decref(j);
        i->dir = TAKE_PTR(dir);
        return 0;
}

static int info_cmp(const void *a, const void *b)
{
        const struct worker_slot_info *x = a, *y = b;
        return x->slot - y->slot;
}

int worker_slots_list(const char *root, struct worker_slot_info **ret, size_t *ret_n)
{
        _cleanup_free_ char *slots = NULL;
        _cleanup_closedir_ DIR *d = NULL;
        struct worker_slot_info *l = NULL;
        struct dirent *de;
        size_t n = 0;

        if (asprintf(&slots, "%s/slots", root) < 0)
                return -ENOMEM;
        d = opendir(slots);
        if (!d && errno != ENOENT)
                return -errno;
        while (d && (de = readdir(d))) {
                struct worker_slot_info *a;
                char *end;
                long slot = strtol(de->d_name, &end, 10);

                if (*end || end == de->d_name || slot < 0 || slot >= WORKER_SLOT_MAX)
                        continue;
                a = reallocarray(l, n + 1, sizeof(*l));
                if (!a) {
                        worker_slot_infos_free(l, n);
                        return -ENOMEM;
                }
                l = a;
                /* No marker in it: not a slot (or one being released). */
                if (read_info(root, (int)slot, &l[n]) < 0)
                        continue;
                n++;
        }
        if (n > 1)
                qsort(l, n, sizeof(*l), info_cmp);
        *ret = l;
        *ret_n = n;
        return 0;
}

void worker_slot_infos_free(struct worker_slot_info *l, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(l[i].plan);
                free(l[i].dir);
        }
        free(l);
}

static int kill_init(const struct worker_slot_info *i)
{
        int pidfd = (int)syscall(SYS_pidfd_open, i->init, 0);
        int r = 0;

        if (pidfd < 0)
                return errno == ESRCH ? 0 : -errno;
        /* Checked again with the pidfd held: the pid cannot be reused now. */
        if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0)
                r = errno == ESRCH ? 0 : -errno;
        /* Wait (bounded) until it is gone: then so is its namespace. */
        if (r == 0) {
                struct pollfd p = {pidfd, POLLIN, 0};
                (void)poll(&p, 1, 5000);
        }
        close(pidfd);
        return r;
}

int worker_slot_clean(const char *root, int slot, unsigned flags, struct worker_clean_result *ret)
{
        struct mount_teardown_policy pol = MOUNT_TEARDOWN_POLICY_DEFAULT;
        struct mount_teardown_result tr = {};
        struct worker_clean_result res = {};
        _cleanup_free_ char *dir = NULL, *marker = NULL;
        struct worker_slot_info info = {};
        int r, fd = -1;

        r = slot_paths(root, slot, &dir, &marker);
        if (r < 0)
                return r;
        r = read_info(root, slot, &info);
        if (r < 0)
                return r;
        if (held_find(marker)) {
                res.skipped_in_use = true; /* ours: never cleaned from under us */
                goto done;
        }
        if (info.in_use && !(flags & WORKER_CLEAN_ALL)) {
                res.skipped_in_use = true;
                goto done;
        }
        if (info.init_alive) {
                r = kill_init(&info);
                if (r < 0)
                        goto done;
                res.killed = true;
        }
        /* A killed worker's strata releases the slot itself; wait for it
         * (bounded), then take the lock: nobody else may clean it too. */
        for (int k = 0; k < 100; k++) {
                r = lock_marker(marker, false, &fd);
                if (r != -EBUSY)
                        break;
                struct timespec ts = {0, 50 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        if (r == -ENOENT) {
                r = 0; /* released meanwhile */
                goto done;
        }
        if (r < 0)
                goto done;
        /* The default plan mounts nothing on the host, but a plan may
         * ("host" operations): whatever is mounted below the slot dir. */
        r = mount_teardown_under(dir, false, &pol, &tr);
        res.unmounted = tr.unmounted;
        res.detached = tr.detached;
        (void)unlink(marker);
        close(fd);
        (void)rmdir(dir);
done:
        free(info.plan);
        free(info.dir);
        if (ret)
                *ret = res;
        return r;
}
