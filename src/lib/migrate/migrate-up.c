/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* up: applies pending migrations, one layer each, in named steps. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "changes.h"
#include "audit.h"
#include "baseid.h"
#include "cleanup.h"
#include "fs.h"
#include "log.h"
#include "machine.h"
#include "manifest.h"
#include "macro.h"
#include "migrate-internal.h"
#include "migrate.h"
#include "migration.h"
#include "sandbox.h"
#include "scratch.h"
#include "sha256.h"
#include "statepath.h"
#include "strv.h"

static const char policy_rc_d[] = "#!/bin/sh\n"
                                  "# installed by system-migrate: no daemon starts while a\n"
                                  "# migration installs packages\n"
                                  "exit 101\n";

struct tee {
        int in;
        int out[2];
};

static void *tee_thread(void *p)
{
        struct tee *t = p;
        char buf[8192];
        ssize_t n;

        while ((n = RETRY_EINTR(read(t->in, buf, sizeof(buf)))) > 0)
                for (int i = 0; i < 2; i++) {
                        const char *q = buf;
                        ssize_t left = n, w;

                        if (t->out[i] < 0)
                                continue;
                        while (left > 0 && (w = RETRY_EINTR(write(t->out[i], q, (size_t)left))) > 0)
                                q += w, left -= w;
                }
        return NULL;
}

/* What runs as pid 2 of the sandbox, in the new root. */
struct apply;

struct inside {
        const struct migration *migration;
        char *const *envp;
        int result_fd;
        bool audit;     /* parent: leave the audit session once the init runs */
        pid_t init_pid; /* parent: the sandbox's init, as we see it */
        /* parent: the migration, and the read end of result_fd, for the
         * capture while the sandbox goes (inside_emptied) */
        struct apply *apply;
        int result_read_fd;
};

/* In the parent, once the sandbox's init runs: with --audit, the init (and
 * all it starts) keeps the audited session, and we move to a new one. */
static void inside_started(pid_t init_pid, void *userdata)
{
        struct inside *in = userdata;

        in->init_pid = init_pid;
        if (in->audit)
                audit_session_detach();
}

struct inside_result {
        int status; /* the script's, 128+N for a signal */
        int error;  /* errno installing services, 0 */
        char what[256];
        /* CLOCK_MONOTONIC (shared by the namespaces), for the debug log's
         * phases: when the sandbox's pid 2 started and the script ended */
        uint64_t started_usec, script_done_usec;
};

static uint64_t monotonic_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

static const int dropped_caps[] = {
    CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_BOOT, CAP_SYS_TIME, CAP_WAKE_ALARM,
};

static int inside_main(void *userdata)
{
        struct inside *in = userdata;
        struct inside_result res = {.started_usec = monotonic_usec()};
        char *argv[] = {(char *)"/bin/sh", (char *)MIGRATE_MOUNT_DIR "/" MIGRATION_SCRIPT, NULL};
        pid_t pid;
        int st, r;

        /* What a package install never needs, as podman build drops it:
         * the script (and all it runs) can load no module, set no clock,
         * reboot nothing and do no raw I/O. */
        for (size_t i = 0; i < ELEMENTSOF(dropped_caps); i++)
                if (prctl(PR_CAPBSET_DROP, dropped_caps[i], 0, 0, 0) < 0 && errno != EINVAL) {
                        res.status = 127;
                        res.error = errno;
                        snprintf(res.what, sizeof(res.what),
                                 "drop capability %d from the bounding set", dropped_caps[i]);
                        goto out;
                }
        pid = sandbox_spawn(argv, in->envp, "/", -1);
        if (pid < 0) {
                res.status = 127;
                res.error = -pid;
                snprintf(res.what, sizeof(res.what), "execute '/bin/sh' in the sandbox");
                goto out;
        }
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR) {
                        res.status = 127;
                        goto out;
                }
        res.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        res.script_done_usec = monotonic_usec();
        if (res.status != 0)
                goto out;

        /* Services go into the layer under /etc/s6/<name>; creating them
         * through the overlay copies /etc up the way the kernel does. */
        STRV_FOREACH (s, in->migration->services) {
                _cleanup_free_ char *src = NULL, *dst = NULL;

                if (asprintf(&src, MIGRATE_MOUNT_DIR "/services/%s", *s) < 0 ||
                    asprintf(&dst, "/etc/s6/%s", *s) < 0) {
                        res.error = ENOMEM;
                        goto out;
                }
                r = mkdir_p_at(AT_FDCWD, "/etc/s6", 0755);
                if (r >= 0)
                        r = rm_rf_at(AT_FDCWD, dst, RM_ROOT | RM_MISSING_OK);
                if (r >= 0)
                        r = copy_tree_at(AT_FDCWD, src, AT_FDCWD, dst, COPY_XATTRS);
                if (r < 0) {
                        res.error = -r;
                        snprintf(res.what, sizeof(res.what), "install the service '%s' as '%s'", *s,
                                 dst);
                        goto out;
                }
        }
out:
        (void)!write(in->result_fd, &res, sizeof(res));
        return res.status != 0 ? res.status : res.error != 0 ? 1 : 0;
}

static bool base_is_debian_like(const char *base)
{
        _cleanup_close_ int fd = migrate_open_dir_at(AT_FDCWD, base);
        struct stat st;

        return fd >= 0 && (fstatat(fd, "etc/debian_version", &st, 0) >= 0 ||
                           fstatat(fd, "usr/bin/dpkg", &st, 0) >= 0);
}

/* The plan writes policy-rc.d through the overlay root, so it lands in the
 * upper dir: take it out again (when it is still ours), with the parents
 * that were only copied up for it. */
static int strip_policy_rc_d(int tfd, int *lower_fds, size_t n_lowers)
{
        static const char *const dirs[] = {"fs/usr/sbin", "fs/usr"};
        _cleanup_free_ char *text = NULL;
        struct stat st;
        int r;

        /* Not a regular file: the script's own (a whiteout when it removed
         * the base's policy-rc.d, which the layer must keep). */
        if (fstatat(tfd, "fs/usr/sbin/policy-rc.d", &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISREG(st.st_mode))
                return 0;
        r = read_file_at(tfd, "fs/usr/sbin/policy-rc.d", 4096, &text, NULL);
        if (r == -ENOENT || r == -EFBIG)
                return 0;
        if (r < 0)
                return r;
        if (!streq(text, policy_rc_d))
                return 0;
        if (unlinkat(tfd, "fs/usr/sbin/policy-rc.d", 0) < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_close_ int fd = -1;

                if (!changes_path_in_lowers(lower_fds, n_lowers, dirs[i] + 2))
                        break;
                fd = openat(tfd, dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0 || changes_is_opaque_fd(fd))
                        break;
                /* Fails with ENOTEMPTY when the script changed more there. */
                if (unlinkat(tfd, dirs[i], AT_REMOVEDIR) < 0)
                        break;
        }
        return 0;
}

/* Copies the migration's source into the record dir (what ran). */
static int snapshot_migration(const struct migration *mi, int tfd, char **ret_error)
{
        struct stat st;
        int r;

        if (mkdirat(tfd, "record", 0755) < 0)
                return set_error_message(ret_error, -errno, "cannot create the record of '%s'",
                                         mi->id);
        r = copy_tree_at(AT_FDCWD, mi->path, tfd, "record/source", COPY_XATTRS);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot copy the migration '%s'", mi->path);
        if (fstatat(tfd, "record/source/" MIGRATION_SCRIPT, &st, 0) < 0)
                return set_error_message(ret_error, -errno, "cannot find '%s/%s'", mi->path,
                                         MIGRATION_SCRIPT);
        return 0;
}

/*
 * Applying one migration, in the steps of the crash protocol. Each step
 * ends at the test kill point of its name (migrate_test_kill_point), so a
 * crash test that kills at "ran" kills right after apply_run_sandbox.
 * Until apply_rename_layer everything lives in .tmp-<id>, which verify
 * removes; apply_commit_metadata is the commit point; apply_finish is
 * idempotent and verify finishes it after a crash.
 */
struct apply {
        struct migrate *m;
        const struct migration *mi;
        char **state_paths;   /* the sandbox's: machine + applied + this one's */
        char **own_state;     /* this migration's, symlinks resolved in its root */
        char **created_state; /* state dirs made for the sandbox, relative */
        char *tmp;            /* ".tmp-<id>", in the layers dir */
        char *tmp_abs, *upper, *work, *scratch, *isolate, *record_src;
        char *dir; /* the layer dir name, once named */
        int tfd, log_fd, state_fd;
        char sha[SHA256_HEX_SIZE];
        usec_t start, now;
        struct change_list changes;
        struct manifest *manifest; /* of fs/, built by the capture's walk */
        /* the script's result, read while the sandbox went */
        struct inside_result early_result;
        bool got_early_result;
        /* the capture, done while the sandbox went: its return value and
         * error message */
        bool captured;
        int capture_r;
        char *capture_error;
        uint64_t capture_usec; /* the walk's own time, for the debug log */
        /* what the walk has seen so far, to start the early sync */
        size_t walk_entries;
        uint64_t walk_bytes;
        /* the early sync of .tmp-<id> (apply_start_sync), joined by
         * apply_sync_layer or apply_done */
        struct early_sync *early_sync;
};

/* A syncfs of the layer's file system started once the capture's walk has
 * seen enough of the upper to be worth it (EARLY_SYNC_ENTRIES entries or
 * EARLY_SYNC_BYTES of files), on a thread, so the writeback of what the
 * script wrote overlaps the rest of the walk and the writing of the layer's
 * own files; apply_sync_layer's syncfs, the one durability rests on, then
 * has little left to write. A small layer gets none: a second syncfs would
 * only cost (it also flushes what others dirtied on that file system
 * meanwhile). The fd is its own (not a dup of tfd): syncfs reports a
 * writeback error once per open file, and the last syncfs must still see
 * it. */
#define EARLY_SYNC_ENTRIES 1000
#define EARLY_SYNC_BYTES   (16 * 1024 * 1024)

struct early_sync {
        pthread_t tid;
        int fd;
        usec_t usec;
};

static void *early_sync_thread(void *p)
{
        struct early_sync *s = p;
        uint64_t t = monotonic_usec();

        /* its result does not count: apply_sync_layer's syncfs does */
        (void)syncfs(s->fd);
        s->usec = monotonic_usec() - t;
        return NULL;
}

/* Starts the early sync of a's layer; without a thread or an fd there is
 * none, and apply_sync_layer's syncfs writes everything. */
static void apply_start_sync(struct apply *a)
{
        struct early_sync *s;
        sigset_t block, old;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return;
        s->fd = openat(a->tfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->fd < 0) {
                free(s);
                return;
        }
        /* as the log thread: the signals are the main thread's */
        sigfillset(&block);
        pthread_sigmask(SIG_BLOCK, &block, &old);
        r = pthread_create(&s->tid, NULL, early_sync_thread, s);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r != 0) {
                safe_close(s->fd);
                free(s);
                return;
        }
        a->early_sync = s;
}

/* Waits for the early sync; its duration in ms, or -1 without one. */
static long long apply_join_sync(struct apply *a)
{
        struct early_sync *s = a->early_sync;
        long long ms;

        if (!s)
                return -1;
        pthread_join(s->tid, NULL);
        ms = (long long)(s->usec / USEC_PER_MSEC);
        safe_close(s->fd);
        free(s);
        a->early_sync = NULL;
        return ms;
}

static void apply_done(struct apply *a)
{
        (void)apply_join_sync(a);
        strv_free(a->state_paths);
        strv_free(a->own_state);
        strv_free(a->created_state);
        free(a->tmp);
        free(a->tmp_abs);
        free(a->upper);
        free(a->work);
        free(a->scratch);
        free(a->isolate);
        free(a->record_src);
        free(a->dir);
        safe_close(a->tfd);
        safe_close(a->log_fd);
        safe_close(a->state_fd);
        change_list_done(&a->changes);
        manifest_free(a->manifest);
        free(a->capture_error);
        *a = (struct apply){.tfd = -1, .log_fd = -1, .state_fd = -1};
}

static long long apply_elapsed_ms(const struct apply *a)
{
        return (long long)((clock_monotonic(a->m->clock) - a->start) / USEC_PER_MSEC);
}

/* Resolves the symlinks of the state paths in the root the migration runs
 * in (never on the host), and refuses a path that resolves into a tree
 * that cannot be state (state_path_refusal). file names the list (NULL:
 * the migration's state file). */
static int apply_resolve_state(struct apply *a, char *const *paths, const char *file, char ***ret,
                               char **ret_error)
{
        _cleanup_(migrate_lowers_done) struct migrate_lowers lowers = {};
        _cleanup_strv_ char **l = NULL;
        int r;

        if (!paths) {
                *ret = NULL;
                return 0;
        }
        r = migrate_lowers_open(a->m, a->m->md.n_layers, &lowers, ret_error);
        if (r < 0)
                return r;
        STRV_FOREACH (p, paths) {
                _cleanup_free_ char *res = NULL, *name = NULL;
                const char *why;
                int line;

                r = state_path_resolve(lowers.fds, lowers.n, *p, &res);
                if (r < 0)
                        return set_error_message(ret_error, r,
                                                 "cannot resolve the state path '%s' of '%s'", *p,
                                                 a->mi->id);
                why = streq(res, *p) ? NULL : state_path_refusal(res);
                if (why) {
                        if (file)
                                line = state_path_file_line(a->m->data_fd, file, *p);
                        else {
                                if (asprintf(&name, "%s/state", a->mi->path) < 0)
                                        return -ENOMEM;
                                line = state_path_file_line(AT_FDCWD, name, *p);
                        }
                        return set_error_message(
                            ret_error, -EINVAL,
                            "'%s%s%s' line %d: '%s' resolves to '%s' in the machine's root, "
                            "which cannot be state: it is or holds %s",
                            file ? a->m->data_dir : a->mi->path, file ? "/" : "/",
                            file ? file : "state", line, *p, res, why);
                }
                r = strv_consume(&l, TAKE_PTR(res));
                if (r < 0)
                        return r;
        }
        if (l)
                strv_sort(l);
        *ret = TAKE_PTR(l);
        return 0;
}

/* The state paths the sandbox binds: the machine's, every applied
 * migration's (from metadata) and this one's. */
static int apply_state_paths(struct apply *a, char **ret_error)
{
        _cleanup_strv_ char **machine_paths = NULL, **resolved_machine = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        r = state_path_machine_list(a->m->data_fd, &machine_paths, &error);
        if (r < 0)
                return set_error_message(ret_error, r == -ENOMEM ? r : -EINVAL, "%s",
                                         error ? error : "cannot read the machine's state paths");
        r = apply_resolve_state(a, machine_paths, STATE_PATHS_FILE, &resolved_machine, ret_error);
        if (r < 0)
                return r;
        r = apply_resolve_state(a, a->mi->state, NULL, &a->own_state, ret_error);
        if (r < 0)
                return r;
        r = strv_copy(a->m->md.state_paths, &a->state_paths);
        if (r >= 0)
                r = state_path_merge(&a->state_paths, resolved_machine);
        if (r >= 0)
                r = state_path_merge(&a->state_paths, a->own_state);
        return r;
}

/* A state path this migration declares for the first time, over content
 * the layers below already hold (one migration installs a package, a later
 * one declares its data dir as state): that content seeds the state, once,
 * through the state overlay's scratch upper, so the script sees it and the
 * commit moves it to <data>/state like any state the script wrote. */
static int apply_seed_state(struct apply *a, char **ret_error)
{
        _cleanup_(migrate_lowers_done) struct migrate_lowers lowers = {};
        size_t n = 0;
        int r;

        if (!a->own_state)
                return 0;
        r = migrate_lowers_open(a->m, a->m->md.n_layers, &lowers, ret_error);
        if (r < 0)
                return r;
        STRV_FOREACH (p, a->state_paths) {
                _cleanup_free_ char *dir = NULL, *upper = NULL, *msg = NULL;
                size_t i = n++;

                if (!strv_contains(a->own_state, *p) || strv_contains(a->m->md.state_paths, *p))
                        continue;
                if (asprintf(&dir, "state/%zu", i) < 0 || asprintf(&upper, "%s/upper", dir) < 0)
                        return -ENOMEM;
                if (mkdirat(a->tfd, dir, 0755) < 0 && errno != EEXIST)
                        return set_error_message(ret_error, -errno, "cannot create '%s/%s'",
                                                 a->tmp_abs, dir);
                r = migrate_state_seed(a->m, lowers.fds, lowers.n, *p, a->tfd, upper, ret_error);
                if (r <= 0)
                        return r;
                if (asprintf(&msg,
                             "%s declares '%s' as state, which the layers below hold: seeding "
                             "'%s/state%s' from them",
                             a->mi->id, *p, a->m->data_dir, *p) < 0)
                        return -ENOMEM;
                migrate_emit(a->m, MIGRATE_EVENT_NOTICE, a->mi->id, msg, 0, NULL);
        }
        return 0;
}

/* Step "prepared": creates .tmp-<id>/{fs,work,state} (the upper, its work
 * dir, the state scratch uppers), the record with a snapshot of the
 * migration's source, its sha256 and the log, and the empty state dirs the
 * overlays stack on (remembered in created_state, so a failure removes
 * exactly those). */
static int apply_prepare_upper(struct apply *a, char **ret_error)
{
        struct migrate *m = a->m;
        int r;

        if (asprintf(&a->tmp, TMP_PREFIX "%s", a->mi->id) < 0 ||
            asprintf(&a->tmp_abs, "%s/%s/%s", m->data_dir, MIGRATE_LAYERS, a->tmp) < 0 ||
            asprintf(&a->upper, "%s/fs", a->tmp_abs) < 0 ||
            asprintf(&a->work, "%s/work", a->tmp_abs) < 0 ||
            asprintf(&a->scratch, "%s/state", a->tmp_abs) < 0 ||
            asprintf(&a->isolate, "%s/isolate", a->tmp_abs) < 0 ||
            asprintf(&a->record_src, "%s/record/source", a->tmp_abs) < 0)
                return -ENOMEM;
        r = rm_rf_at(m->layers_fd, a->tmp, RM_ROOT | RM_MISSING_OK);
        if (r >= 0 && mkdirat(m->layers_fd, a->tmp, 0755) < 0)
                r = negative_errno();
        if (r < 0)
                return set_error_message(ret_error, r, "cannot create '%s'", a->tmp_abs);
        a->tfd = migrate_open_dir_at(m->layers_fd, a->tmp);
        if (a->tfd < 0)
                return set_error_message(ret_error, a->tfd, "cannot open '%s'", a->tmp_abs);
        if (mkdirat(a->tfd, "fs", 0755) < 0 || mkdirat(a->tfd, "work", 0700) < 0 ||
            mkdirat(a->tfd, "state", 0700) < 0)
                return set_error_message(ret_error, -errno, "cannot create the layer dirs in '%s'",
                                         a->tmp_abs);
        r = snapshot_migration(a->mi, a->tfd, ret_error);
        if (r < 0)
                return r;
        r = migrate_write_uncommitted(a->tfd, ".");
        if (r >= 0)
                r = migrate_write_uncommitted(a->tfd, "record");
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write '%s/%s'", a->tmp_abs,
                                         UNCOMMITTED);
        r = sha256_file_hex_at(a->tfd, "record/source/" MIGRATION_SCRIPT, a->sha);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot read '%s/%s'", a->mi->path,
                                         MIGRATION_SCRIPT);
        a->log_fd =
            openat(a->tfd, "record/log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0644);
        if (a->log_fd < 0)
                return set_error_message(ret_error, -errno, "cannot create '%s/record/log'",
                                         a->tmp_abs);

        a->state_fd = migrate_open_dir_at(m->data_fd, "state");
        if (a->state_fd < 0)
                return set_error_message(ret_error, a->state_fd, "cannot open '%s/state'",
                                         m->data_dir);
        STRV_FOREACH (p, a->state_paths) {
                struct stat st;

                if (fstatat(a->state_fd, *p + 1, &st, 0) >= 0)
                        continue;
                r = mkdir_p_at(a->state_fd, *p + 1, 0755);
                if (r >= 0)
                        r = strv_extend(&a->created_state, *p + 1);
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot create '%s/state%s'",
                                                 m->data_dir, *p);
        }
        r = apply_seed_state(a, ret_error);
        if (r < 0)
                return r;
        log_debug("%s: prepared after %lld ms", a->mi->id, apply_elapsed_ms(a));
        migrate_test_kill_point("prepared");
        return 0;
}

/* The environment of the script: a fixed PATH, HOME, LANG, no prompts,
 * the migration's id, and the caller's TERM. */
static int apply_env(const struct apply *a, char ***ret)
{
        static const char *const fixed[] = {
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME=/root",
            "LANG=C.UTF-8",
            "DEBIAN_FRONTEND=noninteractive",
        };
        _cleanup_strv_ char **envp = NULL;
        const char *term = getenv("TERM");
        char *s;

        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                if (strv_extend(&envp, fixed[i]) < 0)
                        return -ENOMEM;
        if (asprintf(&s, "STRATA_MIGRATION=%s", a->mi->id) < 0 || strv_consume(&envp, s) < 0)
                return -ENOMEM;
        if (term && (asprintf(&s, "TERM=%s", term) < 0 || strv_consume(&envp, s) < 0))
                return -ENOMEM;
        *ret = TAKE_PTR(envp);
        return 0;
}

/* The message of a migration that ran and failed (-EPROTO), or 0. */
static int apply_check_result(const struct apply *a, int status, bool got_result,
                              const struct inside_result *res, char **ret_error)
{
        const struct migrate *m = a->m;
        const char *id = a->mi->id;

        if (status == 0 && res->status == 0 && res->error == 0)
                return 0;
        if (status == SANDBOX_EXIT_TIMEOUT && !got_result)
                return set_error_message(
                    ret_error, -EPROTO, "migration '%s' timed out after %llu s and was rolled back",
                    id, (unsigned long long)(m->o.timeout_usec / USEC_PER_SEC));
        if (res->error != 0)
                return set_error_message(ret_error, -EPROTO,
                                         "migration '%s' failed and was rolled back: cannot %s: %s",
                                         id, res->what, strerror(res->error));
        if (res->status > 128)
                return set_error_message(ret_error, -EPROTO,
                                         "migration '%s' failed and was rolled back: %s was killed "
                                         "by signal %d",
                                         id, MIGRATION_SCRIPT, res->status - 128);
        return set_error_message(ret_error, -EPROTO,
                                 "migration '%s' failed and was rolled back: %s exited with "
                                 "status %d",
                                 id, MIGRATION_SCRIPT, res->status ? res->status : status);
}

/* The capture's visitor: the entry goes into the manifest, and the walk's
 * count starts the early sync when it passes the threshold. */
static int capture_visit(int dirfd, const char *name, int fd, const char *path,
                         const struct stat *st, void *userdata)
{
        struct apply *a = userdata;

        if (!a->early_sync && a->walk_entries < EARLY_SYNC_ENTRIES &&
            a->walk_bytes < EARLY_SYNC_BYTES) {
                a->walk_entries++;
                if (S_ISREG(st->st_mode))
                        a->walk_bytes += (uint64_t)st->st_size;
                if (a->walk_entries >= EARLY_SYNC_ENTRIES || a->walk_bytes >= EARLY_SYNC_BYTES)
                        apply_start_sync(a);
        }
        return manifest_visit(dirfd, name, fd, path, st, a->manifest);
}

/* The capture: takes the policy-rc.d the plan wrote back out of the upper
 * and computes the change list of the upper against the lowers (paths
 * under state paths are not changes of the layer); the same walk builds
 * the layer's manifest (one getdents + fstatat pass over the tree). */
static int capture_changes(struct apply *a, char **ret_error)
{
        _cleanup_(migrate_lowers_done) struct migrate_lowers lowers = {};
        uint64_t t;
        int r;

        r = migrate_lowers_open(a->m, a->m->md.n_layers, &lowers, ret_error);
        if (r < 0)
                return r;
        r = strip_policy_rc_d(a->tfd, lowers.fds, lowers.n);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot remove '%s/usr/sbin/policy-rc.d'",
                                         a->upper);
        a->manifest = manifest_new();
        if (!a->manifest)
                return -ENOMEM;
        t = monotonic_usec();
        r = changes_capture_visit_at(a->tfd, "fs", lowers.fds, lowers.n, a->state_paths,
                                     capture_visit, a, &a->changes);
        a->capture_usec = monotonic_usec() - t;
        if (r < 0)
                return set_error_message(ret_error, r, "cannot compute the changes in '%s'",
                                         a->upper);
        return 0;
}

/* In the parent, once the sandbox is down to its init (sandbox_config's
 * emptied): pid 2 and everything the script left are gone, so the upper
 * holds all it will; when the script succeeded, the capture runs now,
 * while the init's exit takes the overlay down (a dentry and an inode
 * freed per path: as long as the walk, on the other CPU). */
static void inside_emptied(void *userdata)
{
        struct inside *in = userdata;
        struct apply *a = in->apply;

        a->got_early_result =
            RETRY_EINTR(read(in->result_read_fd, &a->early_result, sizeof(a->early_result))) ==
            (ssize_t)sizeof(a->early_result);
        if (!a->got_early_result || a->early_result.status != 0 || a->early_result.error != 0)
                return;
        a->capture_r = capture_changes(a, &a->capture_error);
        a->captured = true;
}

/* Step "ran": builds the sandbox (the machine's root plan with the upper,
 * the state scratch uppers and the migration's source bound read-only),
 * runs the script in it with its output teed to the log (and output_fd),
 * then installs the migration's services under /etc/s6 (inside_main).
 * -EPROTO when the script or the service install failed. */
static int apply_run_sandbox(struct apply *a, char **ret_error)
{
        struct migrate *m = a->m;
        _cleanup_(mount_plan_freep) struct mount_plan *plan = NULL;
        _cleanup_strv_ char **envp = NULL;
        _cleanup_free_ char *error = NULL;
        _cleanup_close_ int devnull = -1;
        _cleanup_close_ int out_r = -1, out_w = -1, res_r = -1, res_w = -1;
        int p[2];
        struct machine_bind bind = {a->record_src, MIGRATE_MOUNT_DIR, true};
        struct layer_metadata sandbox_md = m->md;
        struct inside_result res = {};
        struct inside in;
        _cleanup_(audit_session_done) struct audit_session session = {};
        struct tee tee;
        pthread_t tee_tid;
        bool got_result;
        uint64_t run_start, run_end;
        int status = 0, forwarded = 0, r;

        sandbox_md.state_paths = a->state_paths;
        {
                struct machine_options mo = {
                    .data_dir = m->data_dir,
                    .base = m->base,
                    .upper_dir = a->upper,
                    .work_dir = a->work,
                    .state_scratch = a->scratch,
                    .base_scratch = a->isolate,
                    .tmp_tmpfs = true,
                    .dev = MACHINE_DEV_MINIMAL,
                    .policy_rc_d = base_is_debian_like(m->base) ? policy_rc_d : NULL,
                    .read_only_kernel = true,
                    /* .tmp-<id> goes after a crash, and apply_sync_layer
                     * syncs it before the rename and the commit */
                    .volatile_upper = true,
                    .binds = &bind,
                    .n_binds = 1,
                };

                r = machine_root_plan(&mo, &sandbox_md, &plan);
                if (r < 0)
                        return set_error_message(ret_error, r,
                                                 "cannot build the sandbox of '%s' over '%s'",
                                                 a->mi->id, m->base);
        }
        r = apply_env(a, &envp);
        if (r < 0)
                return r;

        if (pipe2(p, O_CLOEXEC) < 0)
                return set_error_message(ret_error, -errno, "cannot create a pipe");
        out_r = p[0], out_w = p[1];
        if (pipe2(p, O_CLOEXEC) < 0)
                return set_error_message(ret_error, -errno, "cannot create a pipe");
        res_r = p[0], res_w = p[1];
        /* read while pid 2 is gone but the init (a writer too) is not */
        if (fcntl(res_r, F_SETFL, O_NONBLOCK) < 0)
                return set_error_message(ret_error, -errno, "cannot set up a pipe");
        tee = (struct tee){out_r, {a->log_fd, m->o.output_fd}};
        {
                /* The log thread never takes the signals the sandbox
                 * forwards: delivered there, they would kill us (or be
                 * lost) instead of reaching the script. */
                sigset_t block, old;

                sigemptyset(&block);
                sigaddset(&block, SIGINT);
                sigaddset(&block, SIGTERM);
                sigaddset(&block, SIGHUP);
                pthread_sigmask(SIG_BLOCK, &block, &old);
                r = -pthread_create(&tee_tid, NULL, tee_thread, &tee);
                pthread_sigmask(SIG_SETMASK, &old, NULL);
        }
        if (r < 0)
                return set_error_message(ret_error, r, "cannot start the log thread");
        in = (struct inside){a->mi, envp, res_w, m->audit != NULL, 0, a, res_r};
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (m->audit) {
                /* last before the sandbox: the session's rules see only
                 * what starts from here (the log thread is not in it) */
                r = migrate_audit_begin(m, a->mi->id, &session, ret_error);
                if (r < 0) {
                        out_w = safe_close(out_w);
                        pthread_join(tee_tid, NULL);
                        return r;
                }
        }
        {
                struct sandbox_config sc = {
                    .flags = SANDBOX_UTS | SANDBOX_IPC,
                    .plan = plan,
                    .hostname = NULL,
                    .callback = inside_main,
                    .userdata = &in,
                    .stdin_fd = devnull >= 0 ? devnull : 0,
                    .stdout_fd = out_w,
                    .stderr_fd = out_w,
                    .timeout_usec = m->o.timeout_usec,
                    /* the locks die with us, not with the sandbox */
                    .close_fds = (const int[]){m->lock_fd, m->machine_lock_fd},
                    .n_close_fds = 2,
                    .ret_forwarded_signal = &forwarded,
                    .started = inside_started,
                    .emptied = inside_emptied,
                };

                run_start = monotonic_usec();
                r = sandbox_run(&sc, &status, &error);
                run_end = monotonic_usec();
        }
        out_w = safe_close(out_w);
        res_w = safe_close(res_w);
        pthread_join(tee_tid, NULL);
        if (m->audit) {
                /* even for a failed script: the rules go now */
                int k = migrate_audit_finish(m, &session, in.init_pid, a->state_paths, a->upper,
                                             a->tfd, a->tmp_abs, r < 0 ? NULL : ret_error);
                if (k < 0 && r >= 0)
                        return k;
        }
        if (r < 0)
                return set_error_message(ret_error, r, "cannot %s: %m",
                                         error ? error : "run the sandbox");
        if (forwarded == SIGINT || forwarded == SIGTERM || forwarded == SIGHUP) {
                migrate_interrupt(forwarded);
                return set_error_message(ret_error, -EINTR,
                                         "migration '%s' was interrupted (SIG%s) and rolled back",
                                         a->mi->id, sigabbrev_np(forwarded));
        }
        got_result = a->got_early_result;
        if (got_result)
                res = a->early_result;
        else
                got_result = RETRY_EINTR(read(res_r, &res, sizeof(res))) == (ssize_t)sizeof(res);
        if (!got_result)
                res = (struct inside_result){.status = status};
        if (got_result && res.started_usec >= run_start &&
            res.script_done_usec >= res.started_usec && run_end >= res.script_done_usec)
                log_debug("%s: sandbox set up in %.1f ms, script ran %.1f ms, sandbox gone %.1f ms "
                          "later",
                          a->mi->id, (double)(res.started_usec - run_start) / 1000.0,
                          (double)(res.script_done_usec - res.started_usec) / 1000.0,
                          (double)(run_end - res.script_done_usec) / 1000.0);
        log_debug("%s: sandbox done after %lld ms", a->mi->id, apply_elapsed_ms(a));
        migrate_test_kill_point("ran");
        return apply_check_result(a, status, got_result, &res, ret_error);
}

/* Step "captured": the capture (done while the sandbox went, or now). */
static int apply_capture_changes(struct apply *a, char **ret_error)
{
        int r;

        if (a->captured) {
                r = a->capture_r;
                if (r < 0 && ret_error) {
                        free(*ret_error);
                        *ret_error = TAKE_PTR(a->capture_error);
                }
        } else
                r = capture_changes(a, ret_error);
        if (r < 0)
                return r;
        log_debug("%s: %zu changes captured after %lld ms (the walk took %.1f ms%s)", a->mi->id,
                  a->changes.n, apply_elapsed_ms(a), (double)a->capture_usec / 1000.0,
                  a->captured ? ", while the sandbox went" : "");
        migrate_test_kill_point("captured");
        return 0;
}

/* Splits the state off the layer: the scratch uppers of the state paths
 * (and anything the upper holds below a state path) move to
 * state-pending/, which waits in the layer until the commit (apply_finish
 * moves it to <data>/state); the sandbox's scratch dirs are removed. */
static int apply_split_state(struct apply *a, char **ret_error)
{
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *list = NULL;
        size_t n = 0, list_size = 0;
        int r;

        if (mkdirat(a->tfd, PENDING_STATE, 0755) < 0 && errno != EEXIST)
                return set_error_message(ret_error, -errno, "cannot create '%s/%s'", a->tmp_abs,
                                         PENDING_STATE);
        f = open_memstream(&list, &list_size);
        if (!f)
                return -ENOMEM;
        STRV_FOREACH (p, a->state_paths) {
                _cleanup_(change_list_done) struct change_list sc = {};
                _cleanup_free_ char *su = NULL, *dst = NULL, *lp = NULL;
                struct stat st;

                if (asprintf(&su, "state/%zu/upper", n++) < 0 ||
                    asprintf(&dst, PENDING_STATE "%s", *p) < 0 || asprintf(&lp, "fs%s", *p) < 0)
                        return -ENOMEM;
                /* What the migration did to the state that exists, before
                 * the move below drops the whiteouts. */
                r = state_path_diff_at(a->tfd, su, a->state_fd, *p + 1, *p, &sc);
                if (r < 0)
                        return set_error_message(ret_error, r,
                                                 "cannot compute the state changes of '%s' in '%s'",
                                                 a->mi->id, *p);
                for (size_t i = 0; i < sc.n; i++) {
                        _cleanup_free_ char *up = NULL;

                        if (asprintf(&up, "%s%s", su, sc.items[i].path + strlen(*p)) < 0)
                                return -ENOMEM;
                        migrate_state_list_line(f, &sc.items[i], a->tfd, up);
                        r = changes_add(&a->changes, sc.items[i].kind, true, sc.items[i].path);
                        if (r < 0)
                                return r;
                }
                if (fstatat(a->tfd, su, &st, AT_SYMLINK_NOFOLLOW) >= 0) {
                        r = state_path_move_at(a->tfd, su, a->tfd, dst);
                        if (r < 0)
                                return set_error_message(ret_error, r,
                                                         "cannot keep the state '%s' of '%s'", *p,
                                                         a->mi->id);
                }
                if (fstatat(a->tfd, lp, &st, AT_SYMLINK_NOFOLLOW) >= 0 && S_ISDIR(st.st_mode)) {
                        r = state_path_move_at(a->tfd, lp, a->tfd, dst);
                        if (r < 0)
                                return set_error_message(ret_error, r,
                                                         "cannot keep the state '%s' of '%s'", *p,
                                                         a->mi->id);
                        /* what stays in the layer's tree (whiteouts) */
                        r = manifest_rescan_at(a->manifest, a->tfd, lp, *p);
                        if (r < 0)
                                return r;
                }
        }
        if (fclose(TAKE_PTR(f)) != 0)
                return -ENOMEM;
        changes_sort(&a->changes);
        r = migrate_write_plain_at(a->tfd, "record/state.list", list, list_size, 0644);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write '%s/record/state.list'",
                                         a->tmp_abs);
        r = rm_rf_at(a->tfd, "state", RM_ROOT | RM_MISSING_OK);
        if (r >= 0)
                r = rm_rf_at(a->tfd, "work", RM_ROOT | RM_MISSING_OK);
        if (r >= 0)
                r = rm_rf_at(a->tfd, "isolate", RM_ROOT | RM_MISSING_OK);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot clean up '%s'", a->tmp_abs);
        log_debug("%s: state split after %lld ms", a->mi->id, apply_elapsed_ms(a));
        return 0;
}

/* Step "written": changes.list and layer.json in the layer, and the
 * record's applied time, change list and script. */
static int apply_write_layer(struct apply *a, char **ret_error)
{
        struct migrate *m = a->m;
        _cleanup_strv_ char **one = NULL;
        _cleanup_free_ char *text = NULL, *applied = NULL;
        const char *parent = m->md.n_layers ? m->md.layers[m->md.n_layers - 1].id : NULL;
        char when[64];
        int r;

        r = strv_extend(&one, a->mi->id);
        if (r < 0)
                return r;
        r = migrate_write_layer_files(m, a->tfd, a->mi->id, parent, one, a->sha, &a->changes,
                                      a->mi->services, a->own_state, ret_error);
        if (r < 0)
                return r;
        r = manifest_save_at(a->manifest, a->tfd, MANIFEST_FILE);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write the manifest of '%s'",
                                         a->tmp_abs);
        a->now = clock_monotonic(m->clock);

        migrate_format_time(clock_now(m->clock), when);
        if (asprintf(&applied, "%s\n", when) < 0)
                return -ENOMEM;
        r = migrate_write_plain_at(a->tfd, "record/applied", applied, strlen(applied), 0644);
        if (r >= 0)
                r = changes_format(&a->changes, &text);
        if (r >= 0)
                r = migrate_write_plain_at(a->tfd, "record/changes.list", text, strlen(text), 0644);
        if (r >= 0 && linkat(a->tfd, "record/source/" MIGRATION_SCRIPT, a->tfd,
                             "record/" MIGRATION_SCRIPT, 0) < 0)
                r = negative_errno();
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write the record of '%s'",
                                         a->mi->id);
        migrate_test_kill_point("written");
        log_debug("%s: layer written after %lld ms", a->mi->id, apply_elapsed_ms(a));
        return 0;
}

/* Step "synced": the whole .tmp-<id>, the log (record/log) with it,
 * reaches the disk (one syncfs, no fsync of its own for the log) before
 * anything is renamed into place. The early sync, when there is one, has
 * written most of it already; this syncfs is the one that counts. */
static int apply_sync_layer(struct apply *a, char **ret_error)
{
        long long early = apply_join_sync(a);

        if (syncfs(a->tfd) < 0)
                return set_error_message(ret_error, -errno, "cannot sync '%s'", a->tmp_abs);
        if (early >= 0)
                log_debug("%s: synced after %lld ms (the early sync took %lld ms)", a->mi->id,
                          apply_elapsed_ms(a), early);
        else
                log_debug("%s: synced after %lld ms", a->mi->id, apply_elapsed_ms(a));
        migrate_test_kill_point("synced");
        return 0;
}

/* Step "recorded": names the layer dir and moves the record to
 * system/migrations/<id> (a record without metadata is what verify
 * removes). */
static int apply_move_record(struct apply *a, char **ret_error)
{
        struct migrate *m = a->m;
        int r;

        r = migrate_layer_dir_name(m, a->mi->id, &a->dir);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot name the layer of '%s'", a->mi->id);
        r = rm_rf_at(m->records_fd, a->mi->id, RM_ROOT | RM_MISSING_OK);
        if (r >= 0 && renameat(a->tfd, "record", m->records_fd, a->mi->id) < 0)
                r = negative_errno();
        if (r < 0)
                return set_error_message(ret_error, r,
                                         "cannot move the record of '%s' to '%s/%s/%s'", a->mi->id,
                                         m->data_dir, MIGRATE_RECORDS, a->mi->id);
        migrate_test_kill_point("recorded");
        return 0;
}

/* Step "renamed": .tmp-<id> becomes the layer dir, and the layers and
 * records dirs are synced (on failure the rename is undone). */
static int apply_rename_layer(struct apply *a, char **ret_error)
{
        struct migrate *m = a->m;

        if (renameat(m->layers_fd, a->tmp, m->layers_fd, a->dir) < 0)
                return set_error_message(ret_error, -errno, "cannot rename '%s' to '%s/%s/%s'",
                                         a->tmp_abs, m->data_dir, MIGRATE_LAYERS, a->dir);
        if (fsync(m->layers_fd) < 0 || fsync(m->records_fd) < 0) {
                int r =
                    set_error_message(ret_error, -errno, "cannot sync '%s/system'", m->data_dir);
                (void)renameat(m->layers_fd, a->dir, m->layers_fd, a->tmp);
                return r;
        }
        migrate_test_kill_point("renamed");
        return 0;
}

/* Step "committed", the commit point: metadata gains the layer (and the
 * migration's state paths) and is saved by rename. When it fails, the
 * layer dir is an orphan that verify removes. */
static int apply_commit_metadata(struct apply *a, char **ret_error)
{
        struct migrate *m = a->m;
        _cleanup_(layer_metadata_done) struct layer_metadata md = {};
        struct layer_entry e = {};
        int r;

        r = migrate_metadata_copy(&m->md, &md);
        if (r < 0)
                return r;
        e.id = strdup(a->mi->id);
        e.dir = TAKE_PTR(a->dir);
        if (!e.id || strv_extend(&e.migrations, a->mi->id) < 0) {
                migrate_layer_entry_free(&e);
                return -ENOMEM;
        }
        e.applied_at = clock_now(m->clock);
        e.duration_ms = (a->now - a->start) / USEC_PER_MSEC;
        memcpy(e.changes, a->changes.counts, sizeof(e.changes));
        md.layers[md.n_layers++] = e;
        migrate_strv_remove(md.rolled_back, a->mi->id);
        r = state_path_merge(&md.state_paths, a->state_paths);
        if (r < 0)
                return r;
        r = migrate_commit(m, &md, ret_error);
        if (r < 0)
                return r;
        log_debug("%s: committed after %lld ms", a->mi->id, apply_elapsed_ms(a));
        migrate_test_kill_point("committed");
        return 0;
}

/* Step "finished", after the commit point: moves the layer's pending state
 * to <data>/state and marks its services (migrate_finish_layer; a crash
 * here is finished by verify). */
static int apply_finish(struct apply *a, char **ret_error)
{
        int r;

        r = migrate_finish_layer(a->m, &a->m->md.layers[a->m->md.n_layers - 1], ret_error);
        if (r < 0)
                return r;
        log_debug("%s: finished after %lld ms", a->mi->id, apply_elapsed_ms(a));
        migrate_test_kill_point("finished");
        return 0;
}

/* Copies the failed migration's log out of .tmp-<id> (which goes) to
 * <migration>/failed-<time>.log, and says where in *ret_error. */
static void keep_failed_log(struct apply *a, char **ret_error)
{
        _cleanup_close_ int src = -1, dst = -1;
        _cleanup_free_ char *path = NULL, *msg = NULL;
        char when[64], buf[65536];
        time_t t = (time_t)(clock_now(a->m->clock) / USEC_PER_SEC);
        struct tm tm;
        ssize_t n;

        if (a->tfd < 0 || a->m->no_failed_log)
                return;
        src = openat(a->tfd, "record/log", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (src < 0)
                return;
        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm);
        if (asprintf(&path, "%s/failed-%s.log", a->mi->path, when) < 0)
                return;
        dst = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (dst < 0) {
                log_debug_errno(errno, "cannot keep the log as '%s': %m", path);
                return;
        }
        while ((n = RETRY_EINTR(read(src, buf, sizeof(buf)))) > 0)
                for (ssize_t done = 0, w; done < n; done += w) {
                        w = RETRY_EINTR(write(dst, buf + done, (size_t)(n - done)));
                        if (w < 0) {
                                log_debug_errno(errno, "cannot write '%s': %m", path);
                                return;
                        }
                }
        if (ret_error && *ret_error && asprintf(&msg, "%s; its log: '%s'", *ret_error, path) >= 0) {
                free(*ret_error);
                *ret_error = TAKE_PTR(msg);
        }
}

/* A step before the rename failed: .tmp-<id> goes (its log kept beside the
 * migration), and of the state only the empty dirs apply_prepare_upper
 * made (never existing state). */
static void apply_fail(struct apply *a, int r, char **ret_error)
{
        keep_failed_log(a, ret_error);
        a->tfd = safe_close(a->tfd);
        if (a->tmp)
                (void)rm_rf_at(a->m->layers_fd, a->tmp, RM_ROOT | RM_MISSING_OK);
        if (a->state_fd >= 0)
                for (size_t n = strv_length(a->created_state); n > 0; n--) {
                        char *p = a->created_state[n - 1], *slash;

                        while (unlinkat(a->state_fd, p, AT_REMOVEDIR) >= 0 &&
                               (slash = strrchr(p, '/')))
                                *slash = 0;
                }
        if (r == -EPROTO)
                migrate_emit(a->m, MIGRATE_EVENT_FAILED, a->mi->id, ret_error ? *ret_error : NULL,
                             0, NULL);
}

/* After the commit: the paths of the new layer that the machine's scratch
 * upper overrides (runtime edits hide the layer's versions), said as a
 * notice naming the first of them. Only a warning: the layer is in. */
static void apply_warn_overrides(struct apply *a)
{
        struct migrate *m = a->m;
        const struct layer_entry *e = &m->md.layers[m->md.n_layers - 1];
        _cleanup_strv_ char **paths = NULL;
        _cleanup_free_ char *fs = NULL, *list = NULL, *msg = NULL;
        size_t size = 0;
        FILE *f;
        int n;

        if (asprintf(&fs, "%s/fs", e->dir) < 0)
                return;
        n = scratch_overrides_at(m->data_fd, SCRATCH_UPPER, m->layers_fd, fs, &a->changes, 10,
                                 &paths);
        if (n < 0)
                log_debug_errno(n, "cannot compare '%s/%s' with the layer: %m", m->data_dir,
                                SCRATCH_UPPER);
        if (n <= 0)
                return;
        f = open_memstream(&list, &size);
        if (!f)
                return;
        STRV_FOREACH (p, paths)
                fprintf(f, "%s%s", p == paths ? "" : ", ", *p);
        if ((size_t)n > strv_length(paths))
                fprintf(f, " and %zu more", (size_t)n - strv_length(paths));
        if (fclose(f) != 0)
                return;
        if (asprintf(&msg,
                     "%s: the machine's scratch upper '%s/%s' overrides %d path%s this layer "
                     "changes (runtime edits hide its version): %s",
                     a->mi->id, m->data_dir, SCRATCH_UPPER, n, n == 1 ? "" : "s", list) < 0)
                return;
        migrate_emit(m, MIGRATE_EVENT_NOTICE, a->mi->id, msg, 0, NULL);
}

static int apply_one(struct migrate *m, const struct migration *mi, char **ret_error)
{
        static int (*const before_rename[])(struct apply *, char **) = {
            apply_prepare_upper, apply_run_sandbox, apply_capture_changes, apply_split_state,
            apply_write_layer,   apply_sync_layer,  apply_move_record,     apply_rename_layer,
        };
        _cleanup_(apply_done) struct apply a = {
            .m = m,
            .mi = mi,
            .tfd = -1,
            .log_fd = -1,
            .state_fd = -1,
            .start = clock_monotonic(m->clock),
        };
        const struct layer_entry *e;
        int r;

        migrate_emit(m, MIGRATE_EVENT_APPLYING, mi->id, NULL, 0, NULL);
        migrate_lock_describe(m, mi->id);

        r = apply_state_paths(&a, ret_error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(before_rename); i++) {
                /* up to the rename, an interruption throws the layer away */
                r = migrate_interrupted()
                        ? set_error_message(
                              ret_error, -EINTR,
                              "migration '%s' was interrupted (SIG%s) and rolled back", mi->id,
                              sigabbrev_np(migrate_interrupted()))
                        : before_rename[i](&a, ret_error);
                if (r < 0) {
                        apply_fail(&a, r, ret_error);
                        return r;
                }
        }
        r = apply_commit_metadata(&a, ret_error);
        if (r < 0)
                return r;
        r = apply_finish(&a, ret_error);
        if (r < 0)
                return r;
        apply_warn_overrides(&a);

        e = &m->md.layers[m->md.n_layers - 1];
        if (m->o.event) {
                struct migrate_event ev = {
                    MIGRATE_EVENT_APPLIED, mi->id,     NULL,
                    e->duration_ms,        e->changes, a.changes.state_counts};

                ev.index = m->run_index;
                ev.total = m->run_total;

                m->o.event(&ev, m->o.userdata);
        }
        return 0;
}

/* A pending migration older than the newest applied one would run after
 * it here but before it on a fresh machine: refused (naming them) unless
 * o.out_of_order. */
static int check_order(struct migrate *m, const struct migration_set *set, const char *to,
                       char **ret_error)
{
        _cleanup_strv_ char **late = NULL;
        _cleanup_free_ char *list = NULL;
        const char *newest = NULL;
        size_t len = 1;

        if (m->o.out_of_order)
                return 0;
        for (size_t i = 0; i < m->md.n_layers; i++)
                STRV_FOREACH (s, m->md.layers[i].migrations)
                        if (!newest || strcmp(*s, newest) > 0)
                                newest = *s;
        if (!newest)
                return 0;
        for (size_t i = 0; i < set->n; i++) {
                const char *id = set->items[i].id;

                if (to && strcmp(id, to) > 0)
                        break;
                if (strcmp(id, newest) < 0 && !migrate_is_applied(&m->md, id)) {
                        if (strv_extend(&late, id) < 0)
                                return -ENOMEM;
                        len += strlen(id) + 2;
                }
        }
        if (!late)
                return 0;
        list = calloc(len, 1);
        if (!list)
                return -ENOMEM;
        STRV_FOREACH (s, late) {
                if (*list)
                        strcat(list, ", ");
                strcat(list, *s);
        }
        return set_error_message(ret_error, -EUCLEAN,
                                 "pending migration%s older than the newest applied one ('%s'): "
                                 "%s; a fresh machine would apply %s in another order; "
                                 "'up --out-of-order' applies %s anyway",
                                 strv_length(late) == 1 ? "" : "s", newest, list,
                                 strv_length(late) == 1 ? "it" : "them",
                                 strv_length(late) == 1 ? "it" : "them");
}

/* The layers are tied to the base they were built over: its identity is
 * recorded at the first up (baseid.h) and a later up over another base is
 * refused (-EMEDIUMTYPE) unless o.force. */
static int check_base(struct migrate *m, char **ret_error)
{
        _cleanup_(base_identity_done) struct base_identity cur = {};
        _cleanup_close_ int base_fd = -1;
        _cleanup_free_ char *error = NULL;
        struct base_identity rec = {};
        int r;

        base_fd = migrate_open_dir_at(AT_FDCWD, m->base);
        if (base_fd < 0)
                return set_error_message(ret_error, base_fd, "cannot open the base '%s'", m->base);
        r = base_identity_load(m->data_fd, &rec);
        if (r >= 0) {
                base_identity_done(&rec);
                r = base_identity_check(m->data_fd, base_fd, m->o.base_id, &error);
                if (r == -EMEDIUMTYPE && m->o.force) {
                        _cleanup_free_ char *msg = NULL;

                        if (asprintf(&msg, "%s (--force: applying anyway)", error) < 0)
                                return -ENOMEM;
                        migrate_emit(m, MIGRATE_EVENT_NOTICE, NULL, msg, 0, NULL);
                        return 0;
                }
                if (r < 0)
                        return set_error_message(ret_error, r, "'%s/%s': %s", m->data_dir,
                                                 BASE_ID_FILE, error ? error : strerror(-r));
                return 0;
        }
        if (r != -ENOENT)
                return set_error_message(ret_error, r, "cannot read '%s/%s'", m->data_dir,
                                         BASE_ID_FILE);
        r = base_identity_compute(base_fd, m->o.base_id, &cur);
        if (r >= 0)
                r = base_identity_save(m->data_fd, &cur);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot record the base in '%s/%s'",
                                         m->data_dir, BASE_ID_FILE);
        return 0;
}

/* How many of set up would apply (up to and including to). */
static unsigned count_pending(struct migrate *m, const struct migration_set *set, const char *to)
{
        unsigned n = 0;

        for (size_t i = 0; i < set->n; i++) {
                if (to && strcmp(set->items[i].id, to) > 0)
                        break;
                if (!migrate_is_applied(&m->md, set->items[i].id))
                        n++;
        }
        return n;
}

/* Applies (or, dry run, reports) the pending migrations of set up to to. */
static int up_pending(struct migrate *m, const struct migration_set *set, const char *to,
                      bool dry_run, char **ret_error)
{
        int r, n = 0;

        for (size_t i = 0; i < set->n; i++) {
                const struct migration *mi = &set->items[i];

                if (to && strcmp(mi->id, to) > 0)
                        break;
                if (migrate_is_applied(&m->md, mi->id))
                        continue;
                if (dry_run) {
                        migrate_emit(m, MIGRATE_EVENT_WOULD_APPLY, mi->id, NULL, 0, NULL);
                        n++;
                        continue;
                }
                if (migrate_interrupted())
                        return set_error_message(ret_error, -EINTR,
                                                 "interrupted (SIG%s) before '%s'",
                                                 sigabbrev_np(migrate_interrupted()), mi->id);
                r = migrate_auto_squash(m, ret_error);
                if (r < 0)
                        return r;
                m->run_index = (unsigned)n + 1;
                r = apply_one(m, mi, ret_error);
                if (r < 0)
                        return r;
                n++;
        }
        return n;
}

int migrate_up(struct migrate *m, const char *to, bool dry_run, char **ret_error)
{
        _cleanup_(migration_set_done) struct migration_set set = {};
        int r, n = 0;

        r = migrate_load_migrations(m, &set, ret_error);
        if (r < 0)
                return r;
        if (to && migration_set_find(&set, to) < 0)
                return set_error_message(ret_error, -EINVAL, "there is no migration '%s' in '%s'",
                                         to, m->migrations_dir);
        if (!dry_run) {
                r = check_base(m, ret_error);
                if (r < 0)
                        return r;
        }
        r = check_order(m, &set, to, ret_error);
        if (r < 0)
                return r;
        if (!dry_run && m->problems > 0)
                return set_error_message(
                    ret_error, -EUCLEAN,
                    "the layer stack of '%s' is broken (%u problem%s that verify cannot repair, "
                    "listed above; 'verify' says the same): nothing was applied",
                    m->data_dir, m->problems, m->problems == 1 ? "" : "s");

        m->run_index = 0;
        m->run_total = dry_run ? 0 : count_pending(m, &set, to);
        if (dry_run || !m->o.audit) {
                n = up_pending(m, &set, to, dry_run, ret_error);
                m->run_index = m->run_total = 0;
                return n;
        }
        /* the daemon (started if none runs) serves every migration of this
         * run, and is stopped again when we started it */
        r = migrate_audit_start(m, ret_error);
        if (r < 0)
                return r;
        n = up_pending(m, &set, to, dry_run, ret_error);
        migrate_audit_stop(m);
        m->run_index = m->run_total = 0;
        return n;
}
