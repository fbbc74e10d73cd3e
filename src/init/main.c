/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * overlayfs-init: the entrypoint of a strata machine. Assembles the layered
 * root of a data dir (machine_root_plan) and hands over to CMD (default
 * `s6-svscan /etc/s6`), staying as the reaper.
 *
 * As PID 1 it works in place (the machine's own mount namespace). As any
 * other process it runs the machine in new mount and pid namespaces, so a
 * failure halfway leaves nothing behind on the host.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

#include "baseid.h"
#include "cleanup.h"
#include "config.h"
#include "fs.h"
#include "layerstore.h"
#include "lock.h"
#include "log.h"
#include "machine.h"
#include "macro.h"
#include "sandbox.h"

enum {
        EXIT_USAGE = 2,
        EXIT_SETUP = 1,
        EXIT_BUSY = 75,
};

static void help(void)
{
        printf("Usage: overlayfs-init [OPTIONS] [--] [CMD...]\n"
               "\n"
               "Assembles the root of a strata machine from its data dir and runs CMD in it\n"
               "(default: s6-svscan /etc/s6):\n"
               "  1. as PID 1, mounts /proc, /sys, /dev, /dev/pts and /dev/shm when missing\n"
               "  2. creates the data dir layout (state/, system/...)\n"
               "  3. mounts the overlay: the active layers of\n"
               "     system/migrations/metadata.json, newest first, over the base, with\n"
               "     system/upper as the writable layer\n"
               "  4. mounts /dev /proc /sys /sys/fs/cgroup /run, binds the data dir on /data\n"
               "     and each state path from /data/state/<path> over <path>\n"
               "  5. pivot_root, detaches the old root and runs CMD, reaping zombies and\n"
               "     forwarding SIGTERM/SIGINT/SIGHUP to it\n"
               "\n"
               "Options:\n"
               "  --data DIR        the data dir (default /data)\n"
               "  --base DIR        the lowest layer (default /)\n"
               "  --system-tmpfs    a tmpfs on DIR/system: a throwaway machine of the base\n"
               "                    alone (the tmpfs hides the layers)\n"
               "  --state-tmpfs     a tmpfs on DIR/state\n"
               "  --dry-run         print the mount plan and exit\n"
               "  --force           boot the layers over a base other than the one they\n"
               "                    were built over (system/base.json)\n"
               "  -h, --help        show this help\n"
               "\n"
               "Not PID 1, it runs the machine in new mount and pid namespaces. Exit status:\n"
               "CMD's, 128+N when CMD was killed by signal N, 1 when the root cannot be\n"
               "assembled (the message names the step and the path) or the base is not the\n"
               "one the layers were built over, 127 when CMD cannot be\n"
               "executed, 75 when the data dir's machine is already running, 2 for a usage\n"
               "error.\n");
}

/* True when PATH is a directory on another file system than its parent's
 * (a mount point), false when it is missing or is not. */
static bool is_mount_point(const char *path, const char *parent)
{
        struct stat st, pst;

        return stat(path, &st) == 0 && S_ISDIR(st.st_mode) && stat(parent, &pst) == 0 &&
               st.st_dev != pst.st_dev;
}

/* Step 1 of a real boot: the kernel filesystems the rest needs, and the
 * two a devtmpfs lacks that programs expect under /dev: the pseudo-terminals
 * (sshd, script, anything that opens /dev/ptmx) and POSIX shared memory.
 * The machine's /dev is a recursive bind of this one, so they go with it. */
static int mount_kernel_fs(void)
{
        static const struct {
                const char *probe, *target, *fstype, *options;
                unsigned long flags;
                mode_t mode;
        } fs[] = {
            {"/proc/self", "/proc", "proc", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC, 0755},
            {"/sys/kernel", "/sys", "sysfs", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC, 0755},
            {"/dev/null", "/dev", "devtmpfs", NULL, MS_NOSUID, 0755},
            {"/dev/pts/ptmx", "/dev/pts", "devpts", "ptmxmode=0666,mode=0620,gid=5",
             MS_NOSUID | MS_NOEXEC, 0755},
            {NULL, "/dev/shm", "tmpfs", "mode=1777", MS_NOSUID | MS_NODEV, 01777},
        };

        for (size_t i = 0; i < ELEMENTSOF(fs); i++) {
                if (fs[i].probe ? access(fs[i].probe, F_OK) == 0
                                : is_mount_point(fs[i].target, "/dev"))
                        continue;
                (void)mkdir(fs[i].target, fs[i].mode);
                if (mount(fs[i].fstype, fs[i].target, fs[i].fstype, fs[i].flags, fs[i].options) < 0)
                        return log_error_errno(errno, "step 1: cannot mount %s on '%s': %m",
                                               fs[i].fstype, fs[i].target);
        }
        return 0;
}

/* The inode of the initial pid namespace is fixed (PROC_PID_INIT_INO). */
#define PID_NS_INIT_INO 0xEFFFFFFCU

/* The init of the whole machine must not exit (the kernel panics): it
 * reports CMD's status on the console and powers off. The init of a pid
 * namespace (a container) just exits with the status. */
static int finish_init(int status)
{
        struct stat st;

        if (stat("/proc/self/ns/pid", &st) < 0 || st.st_ino != PID_NS_INIT_INO)
                return status;
        log_notice("the machine's init is done (status %d); powering off", status);
        sync();
        (void)reboot(RB_POWER_OFF);
        /* Only reached when the kernel refuses: stay, as init must. */
        for (;;)
                pause();
}

/* What the command line asks for. */
struct init_args {
        const char *data, *base;
        bool system_tmpfs, state_tmpfs, dry_run, force;
        char *const *cmd;
};

/* Parses argv into *a. Returns 1 to go on, 0 after --help, or EXIT_USAGE. */
static int parse_args(int argc, char **argv, struct init_args *a)
{
        enum {
                ARG_DATA = 0x100,
                ARG_BASE,
                ARG_SYSTEM_TMPFS,
                ARG_STATE_TMPFS,
                ARG_DRY_RUN,
                ARG_FORCE,
        };
        static const struct option options[] = {
            {"help", no_argument, NULL, 'h'},
            {"data", required_argument, NULL, ARG_DATA},
            {"base", required_argument, NULL, ARG_BASE},
            {"system-tmpfs", no_argument, NULL, ARG_SYSTEM_TMPFS},
            {"state-tmpfs", no_argument, NULL, ARG_STATE_TMPFS},
            {"dry-run", no_argument, NULL, ARG_DRY_RUN},
            {"force", no_argument, NULL, ARG_FORCE},
            {},
        };
        static char *const default_cmd[] = {(char *)"s6-svscan", (char *)"/etc/s6", NULL};
        int opt;

        *a = (struct init_args){.data = "/data", .base = "/"};
        while ((opt = getopt_long(argc, argv, "+h", options, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        help();
                        return 0;
                case ARG_DATA:
                        a->data = optarg;
                        break;
                case ARG_BASE:
                        a->base = optarg;
                        break;
                case ARG_SYSTEM_TMPFS:
                        a->system_tmpfs = true;
                        break;
                case ARG_STATE_TMPFS:
                        a->state_tmpfs = true;
                        break;
                case ARG_DRY_RUN:
                        a->dry_run = true;
                        break;
                case ARG_FORCE:
                        a->force = true;
                        break;
                case '?':
                        return EXIT_USAGE;
                default:
                        return EXIT_USAGE;
                }
        }
        a->cmd = optind < argc ? argv + optind : default_cmd;
        return 1;
}

/* The machine being assembled: its resolved paths, the data dir's fd and
 * the machine lock, and the plan of its root. */
struct boot {
        char *data, *base, *scratch, *isolate;
        int data_fd, lock_fd;
        struct mount_plan *plan;
};

static void boot_done(struct boot *b)
{
        free(b->data);
        free(b->base);
        free(b->scratch);
        free(b->isolate);
        safe_close(b->data_fd);
        safe_close(b->lock_fd);
        mount_plan_free(b->plan);
}

/* Step 2: resolves the data dir and the base, creates the data dir's
 * layout and takes the machine lock (one machine per data dir: the scratch
 * upper is not shared; the lock lives as long as this process and is not
 * passed to CMD). Logs and returns an exit status, or 0 to go on. */
static int open_data_dir(const struct init_args *a, struct boot *b)
{
        int r;

        b->data = realpath(a->data, NULL);
        if (!b->data) {
                log_error_errno(errno, "step 2: cannot open the data dir '%s': %m", a->data);
                return EXIT_SETUP;
        }
        b->base = realpath(a->base, NULL);
        if (!b->base) {
                log_error_errno(errno, "step 3: cannot open the base '%s': %m", a->base);
                return EXIT_SETUP;
        }
        b->data_fd = open(b->data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (b->data_fd < 0) {
                log_error_errno(errno, "step 2: cannot open the data dir '%s': %m", b->data);
                return EXIT_SETUP;
        }
        if (a->dry_run)
                return 0;
        r = layerstore_ensure_layout(b->data_fd);
        if (r < 0) {
                log_error_errno(r, "step 2: cannot create the layout of '%s': %m", b->data);
                return EXIT_SETUP;
        }
        if (!a->system_tmpfs) {
                struct lock_holder h = {};

                r = lock_acquire_at(b->data_fd, MACHINE_LOCK, "overlayfs-init", LOCK_NONBLOCK,
                                    &b->lock_fd, &h);
                if (r == -EWOULDBLOCK) {
                        log_error("step 2: the machine of '%s' is running (pid %d, %s)", b->data,
                                  (int)h.pid, h.purpose);
                        return EXIT_BUSY;
                }
                if (r < 0) {
                        log_error_errno(r, "step 2: cannot lock '%s/%s': %m", b->data,
                                        MACHINE_LOCK);
                        return EXIT_SETUP;
                }
        }
        return 0;
}

/* Step 3 begins with the base: layers are only valid over the base they
 * were built over (system/base.json, recorded by the first `up`), so
 * another one is refused unless --force. Logs and returns an exit status,
 * or 0 to go on. */
static int check_base(const struct init_args *a, const struct boot *b)
{
        _cleanup_free_ char *error = NULL;
        _cleanup_close_ int base_fd = -1;
        int r;

        base_fd = open(b->base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (base_fd < 0) {
                log_error_errno(errno, "step 3: cannot open the base '%s': %m", b->base);
                return EXIT_SETUP;
        }
        r = base_identity_check(b->data_fd, base_fd, NULL, &error);
        if (r == -EMEDIUMTYPE && a->force) {
                log_warning("step 3: %s (--force: booting anyway)", error);
                return 0;
        }
        if (r == -EMEDIUMTYPE) {
                log_error("step 3: cannot boot '%s' over '%s': %s", b->data, b->base, error);
                return EXIT_SETUP;
        }
        if (r < 0) {
                log_error_errno(r, "step 3: cannot check the base of '%s' against '%s/%s': %s%m",
                                b->data, b->data, BASE_ID_FILE, error ? error : "");
                return EXIT_SETUP;
        }
        return 0;
}

/* Step 3: the layers, as the plan of the machine's root in b->plan. A tmpfs
 * on system/ hides the store: the throwaway machine is the base alone.
 * Logs and returns an exit status, or 0 to go on. */
static int plan_root(const struct init_args *a, bool pid1, struct boot *b)
{
        struct machine_options o = {
            .data_dir = b->data,
            .base = b->base,
            .dev = MACHINE_DEV_HOST,
            .bind_data = true,
            .system_tmpfs = a->system_tmpfs,
            .state_tmpfs = a->state_tmpfs,
        };
        struct layer_metadata m = {};
        _cleanup_free_ char *merr = NULL;
        int r;

        r = a->system_tmpfs ? 0 : layer_metadata_load(b->data_fd, &m, &merr);
        if (r < 0) {
                if (merr)
                        log_error("step 3: cannot load '%s/%s': %s", b->data, LAYERSTORE_METADATA,
                                  merr);
                else
                        log_error_errno(r, "step 3: cannot load '%s/%s': %m", b->data,
                                        LAYERSTORE_METADATA);
                return EXIT_SETUP;
        }
        if (!pid1 && !a->dry_run) {
                /* Run as a plain process, the data dir is often a temp dir
                 * on the base's filesystem: give the plan scratch space to
                 * mount the base on its own (machine_options.base_scratch).
                 * As PID 1 the data dir is its own filesystem (see docs). */
                r = mkdtemp_malloc("strata-init", &b->scratch);
                if (r < 0 || asprintf(&b->isolate, "%s/isolate", b->scratch) < 0) {
                        b->isolate = NULL;
                        log_error_errno(r < 0 ? r : -ENOMEM,
                                        "step 3: cannot create a scratch dir: %m");
                        layer_metadata_done(&m);
                        return EXIT_SETUP;
                }
                o.base_scratch = b->isolate;
        }
        r = machine_root_plan(&o, &m, &b->plan);
        if (r == -E2BIG)
                log_error(
                    "step 3: cannot stack the %zu layers of '%s': an overlay takes at most %d "
                    "lower dirs; squash them (system-migrate squash)",
                    m.n_layers, b->data, MOUNT_PLAN_OVERLAY_MAX_LOWER - 1);
        else if (r == -EINVAL)
                log_error("step 3: invalid state path in '%s/%s'", b->data, LAYERSTORE_METADATA);
        else if (r < 0)
                log_error_errno(r, "step 3: cannot plan the root of '%s': %m", b->data);
        layer_metadata_done(&m);
        return r < 0 ? EXIT_SETUP : 0;
}

/* Steps 3-5 as a plain process: the machine in new namespaces
 * (sandbox_run), CMD's status returned. */
static int run_in_namespaces(struct boot *b, char *const *cmd)
{
        struct sandbox_config sc = {.plan = b->plan, .argv = cmd};
        _cleanup_free_ char *error = NULL;
        int r, status;

        r = sandbox_run(&sc, &status, &error);
        /* The namespace and its mounts are gone: plain dirs remain. */
        if (b->scratch)
                (void)rm_rf_at(AT_FDCWD, b->scratch, RM_ROOT | RM_MISSING_OK);
        if (r < 0) {
                log_error_errno(r, "steps 3-5: cannot %s: %m", error ? error : "assemble the root");
                return error && startswith(error, "execute ") ? SANDBOX_EXIT_EXEC : EXIT_SETUP;
        }
        return status;
}

/* Steps 3-5 in place, as PID 1: this is the machine. Returns CMD's status
 * once it is gone and every orphan is reaped. */
static int run_in_place(struct boot *b, char *const *cmd)
{
        _cleanup_free_ char *error = NULL;
        int r, status;
        pid_t pid;

        r = sandbox_enter_root(b->plan, &error);
        if (r < 0) {
                log_error_errno(r, "steps 3-5: cannot %s: %m", error ? error : "assemble the root");
                return EXIT_SETUP;
        }
        pid = sandbox_spawn(cmd, NULL, "/", -1);
        if (pid < 0) {
                log_error_errno(pid, "step 5: cannot execute '%s': %m", cmd[0]);
                return SANDBOX_EXIT_EXEC;
        }
        status = sandbox_reap(pid);
        if (status < 0) {
                log_error_errno(status, "step 5: cannot wait for '%s': %m", cmd[0]);
                status = EXIT_SETUP;
        }
        return status;
}

static int init_main(int argc, char **argv)
{
        struct boot b = {.data_fd = -1, .lock_fd = -1};
        struct init_args a;
        bool pid1 = getpid() == 1;
        int r;

        log_set_program_name("overlayfs-init");

        r = parse_args(argc, argv, &a);
        if (r != 1)
                return r; /* 0 after --help, or EXIT_USAGE */

        if (pid1 && mount_kernel_fs() < 0)
                return EXIT_SETUP;

        r = open_data_dir(&a, &b);
        if (r == 0 && !a.system_tmpfs)
                r = check_base(&a, &b);
        if (r == 0)
                r = plan_root(&a, pid1, &b);
        if (r == 0) {
                if (a.dry_run)
                        mount_plan_describe(b.plan, stdout);
                else
                        r = pid1 ? run_in_place(&b, a.cmd) : run_in_namespaces(&b, a.cmd);
        }
        boot_done(&b);
        return r;
}

int main(int argc, char **argv)
{
        int status = init_main(argc, argv);

        /* Setup failures too: as the machine's init, never just exit. */
        return getpid() == 1 ? finish_init(status) : status;
}
