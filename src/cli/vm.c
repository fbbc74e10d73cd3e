/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * strata vm: the VM lab. QEMU guests booted from base images (vm image
 * build), long-lived copy-on-write instances (start/stop/status/ssh/sync/
 * snapshot/restore/destroy) and throwaway ones (run), whose command's exit
 * status comes back through a virtio-serial port.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "cleanup.h"
#include "config.h"
#include "exec.h"
#include "fs.h"
#include "json.h"
#include "lock.h"
#include "log.h"
#include "macro.h"
#include "progress.h"
#include "strata.h"
#include "strv.h"
#include "vm.h"
#include "vmimage.h"
#include "vmrun.h"

#define EXIT_BUSY             75
#define CONSOLE_TAIL_LINES    20
#define READY_TIMEOUT_DEFAULT 300  /* s, on a machine with a CPU to spare */
#define READY_TIMEOUT_MAX     3600 /* s, however loaded it is */
#define READY_RECHECK_USEC    (10 * 1000000)
#define STOP_GRACE_DEFAULT    30
#define KVM_PROBE_TIMEOUT_MS  8000
#define INSTANCE_DEFAULT      "default"
#define RUN_KEPT              "kept" /* in a run's dir: --keep kept it */

static volatile sig_atomic_t arg_stop;

static void on_signal(int sig)
{
        arg_stop = sig;
}

static void catch_signals(void)
{
        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
}

void help_vm(void)
{
        printf("Usage: strata vm COMMAND [OPTIONS] NAME ...\n"
               "\n"
               "QEMU guests that boot a Debian image with overlayfs-init as PID 1 and an s6\n"
               "tree (sshd, the ready marker, the command runner).\n"
               "\n"
               "  image build NAME [--suite S] [--packages LIST] [--size 4G] [--kernel PATH]\n"
               "              [--initrd PATH] [--rootfs DIR] [--init strata|image] [--force]\n"
               "                         build (or find cached) the base image NAME\n"
               "  run NAME [--sync DIR] [--timeout S] [--mem MB] [--cpus N] [--seed FILE]\n"
               "           [--drive FILE[,ro]]... -- CMD...\n"
               "                         boot a fresh throwaway instance, run CMD, exit with\n"
               "                         its status\n"
               "  start NAME [--instance I] [--mem MB] [--cpus N] [--forward HOST:GUEST]...\n"
               "             [--snapshot S] [--timeout S] [--seed FILE] [--drive FILE[,ro]]...\n"
               "                         boot instance I (default 'default'), created on its\n"
               "                         first start, and wait until sshd is up\n"
               "  stop NAME [--instance I] [--grace S]   ACPI power-down, kill after S seconds\n"
               "  status [NAME] [--json]                  instances: state, pid, accel, ports\n"
               "  ssh NAME [--instance I] [-- CMD...]     ssh into a running instance\n"
               "  ssh-config NAME [--instance I]          an ssh_config block for ssh/scp -F\n"
               "  sync NAME DIR [--instance I] [--dest PATH]  rsync DIR to the guest (/work)\n"
               "  snapshot NAME S [--instance I] | snapshot --list NAME   of a stopped instance\n"
               "  restore NAME S [--instance I]           return a stopped instance to S\n"
               "  destroy NAME [--instance I] [--image] [--yes]   remove the instance (and image)\n"
               "  accel [--json]                          the KVM probe's answer (cached)\n"
               "\n"
               "Every command takes --vm-dir DIR (default $STRATA_VM_DIR, else " VM_DIR_DEFAULT
               ").\n"
               "\n"
               "Exit status: 0 success, 1 failure, 2 usage error (a bad NAME), 70 internal\n"
               "error, 75 busy (the instance runs, or the image is being built); vm run: CMD's\n"
               "status (128+N for signal N), 255 when the guest dies without a result (panic),\n"
               "124 on --timeout. See docs/vm.md.\n");
}

/* Options every subcommand shares. */
struct common {
        const char *vm_dir;
        const char *instance;
        bool json;
};

enum {
        ARG_VM_DIR = 0x100,
        ARG_INSTANCE,
        ARG_JSON,
        ARG_SUITE,
        ARG_PACKAGES,
        ARG_SIZE,
        ARG_KERNEL,
        ARG_INITRD,
        ARG_ROOTFS,
        ARG_INIT,
        ARG_FORCE,
        ARG_SYNC,
        ARG_TIMEOUT,
        ARG_MEM,
        ARG_CPUS,
        ARG_FORWARD,
        ARG_SNAPSHOT,
        ARG_GRACE,
        ARG_DEST,
        ARG_LIST,
        ARG_YES,
        ARG_IMAGE,
        ARG_KEEP,
        ARG_SEED,
        ARG_DRIVE,
};

static const struct option all_options[] = {
    {"help", no_argument, NULL, 'h'},
    {"vm-dir", required_argument, NULL, ARG_VM_DIR},
    {"instance", required_argument, NULL, ARG_INSTANCE},
    {"json", no_argument, NULL, ARG_JSON},
    {"suite", required_argument, NULL, ARG_SUITE},
    {"debootstrap", required_argument, NULL, ARG_SUITE},
    {"packages", required_argument, NULL, ARG_PACKAGES},
    {"size", required_argument, NULL, ARG_SIZE},
    {"kernel", required_argument, NULL, ARG_KERNEL},
    {"initrd", required_argument, NULL, ARG_INITRD},
    {"rootfs", required_argument, NULL, ARG_ROOTFS},
    {"init", required_argument, NULL, ARG_INIT},
    {"force", no_argument, NULL, ARG_FORCE},
    {"sync", required_argument, NULL, ARG_SYNC},
    {"timeout", required_argument, NULL, ARG_TIMEOUT},
    {"mem", required_argument, NULL, ARG_MEM},
    {"cpus", required_argument, NULL, ARG_CPUS},
    {"forward", required_argument, NULL, ARG_FORWARD},
    {"snapshot", required_argument, NULL, ARG_SNAPSHOT},
    {"grace", required_argument, NULL, ARG_GRACE},
    {"dest", required_argument, NULL, ARG_DEST},
    {"list", no_argument, NULL, ARG_LIST},
    {"yes", no_argument, NULL, ARG_YES},
    {"image", no_argument, NULL, ARG_IMAGE},
    {"keep", no_argument, NULL, ARG_KEEP},
    {"seed", required_argument, NULL, ARG_SEED},
    {"drive", required_argument, NULL, ARG_DRIVE},
    {},
};

struct args {
        struct common c;
        const char *suite, *packages, *size, *kernel, *initrd, *rootfs, *init;
        bool force, list, yes, image, keep;
        const char *sync, *dest, *snapshot;
        unsigned timeout, mem, cpus, grace;
        uint16_t fwd_host[VM_FORWARDS_MAX], fwd_guest[VM_FORWARDS_MAX];
        size_t n_forwards;
        char **pos; /* positional arguments (before "--") */
        size_t n_pos;
        char **cmd;                            /* after "--" */
        struct vm_drive drives[VM_DRIVES_MAX]; /* --seed, --drive */
        size_t n_drives;
        char *drive_abs[VM_DRIVES_MAX]; /* their absolute paths (drives_open) */
};

static void args_done(struct args *a)
{
        for (size_t k = 0; k < a->n_drives; k++)
                free(a->drive_abs[k]);
}

static int parse_uint(const char *opt, const char *s, unsigned min, unsigned max, unsigned *ret)
{
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max) {
                log_error("invalid %s '%s' (%u..%u)", opt, s, min, max);
                return -EINVAL;
        }
        *ret = (unsigned)v;
        return 0;
}

/* Parses argv (from the subcommand's name on) into a; allowed is a string
 * of the option ids this subcommand takes (besides --help and --vm-dir). */
static int parse_args(int argc, char **argv, const int *allowed, size_t n_allowed,
                      void (*help)(void), struct args *a)
{
        int opt, n_opts = argc;

        /* Options may follow NAME (getopt permutes); everything after the
         * first "--" is CMD and is never parsed. */
        for (int k = 1; k < argc; k++)
                if (streq(argv[k], "--")) {
                        a->cmd = argv + k + 1;
                        n_opts = k;
                        break;
                }
        optind = 0;
        while ((opt = getopt_long(n_opts, argv, "h", all_options, NULL)) >= 0) {
                bool ok = opt == 'h' || opt == ARG_VM_DIR || opt == '?';

                for (size_t i = 0; i < n_allowed && !ok; i++)
                        ok = allowed[i] == opt;
                if (!ok) {
                        log_error("'%s' does not take that option; see --help", argv[0]);
                        return -EINVAL;
                }
                switch (opt) {
                case 'h':
                        help();
                        return 1;
                case ARG_VM_DIR:
                        a->c.vm_dir = optarg;
                        break;
                case ARG_INSTANCE:
                        a->c.instance = optarg;
                        break;
                case ARG_JSON:
                        a->c.json = true;
                        break;
                case ARG_SUITE:
                        a->suite = optarg;
                        break;
                case ARG_PACKAGES:
                        a->packages = optarg;
                        break;
                case ARG_SIZE:
                        a->size = optarg;
                        break;
                case ARG_KERNEL:
                        a->kernel = optarg;
                        break;
                case ARG_INITRD:
                        a->initrd = optarg;
                        break;
                case ARG_ROOTFS:
                        a->rootfs = optarg;
                        break;
                case ARG_INIT:
                        a->init = optarg;
                        break;
                case ARG_FORCE:
                        a->force = true;
                        break;
                case ARG_SYNC:
                        a->sync = optarg;
                        break;
                case ARG_TIMEOUT:
                        if (parse_uint("--timeout", optarg, 1, 86400, &a->timeout) < 0)
                                return -EINVAL;
                        break;
                case ARG_MEM:
                        if (parse_uint("--mem (MB)", optarg, 128, 1 << 20, &a->mem) < 0)
                                return -EINVAL;
                        break;
                case ARG_CPUS:
                        if (parse_uint("--cpus", optarg, 1, 64, &a->cpus) < 0)
                                return -EINVAL;
                        break;
                case ARG_GRACE:
                        if (parse_uint("--grace", optarg, 0, 3600, &a->grace) < 0)
                                return -EINVAL;
                        break;
                case ARG_FORWARD:
                        if (a->n_forwards >= VM_FORWARDS_MAX) {
                                log_error("at most %d --forward", VM_FORWARDS_MAX);
                                return -EINVAL;
                        }
                        if (vm_forward_parse(optarg, &a->fwd_host[a->n_forwards],
                                             &a->fwd_guest[a->n_forwards]) < 0) {
                                log_error("invalid --forward '%s' (HOST:GUEST, TCP ports)", optarg);
                                return -EINVAL;
                        }
                        a->n_forwards++;
                        break;
                case ARG_SNAPSHOT:
                        a->snapshot = optarg;
                        break;
                case ARG_DEST:
                        a->dest = optarg;
                        break;
                case ARG_LIST:
                        a->list = true;
                        break;
                case ARG_YES:
                        a->yes = true;
                        break;
                case ARG_IMAGE:
                        a->image = true;
                        break;
                case ARG_KEEP:
                        a->keep = true;
                        break;
                case ARG_SEED:
                case ARG_DRIVE:
                        if (a->n_drives >= VM_DRIVES_MAX) {
                                log_error("at most %d --seed and --drive", VM_DRIVES_MAX);
                                return -EINVAL;
                        }
                        if (opt == ARG_SEED)
                                a->drives[a->n_drives] = (struct vm_drive){
                                    .path = optarg, .readonly = true, .seed = true};
                        else if (vm_drive_parse(optarg, &a->drives[a->n_drives]) < 0) {
                                log_error("invalid --drive '%s' (FILE or FILE,ro)", optarg);
                                return -EINVAL;
                        }
                        a->n_drives++;
                        break;
                case '?':
                default:
                        return -EINVAL;
                }
        }
        a->pos = argv + optind;
        a->n_pos = (size_t)(n_opts - optind);
        if (!a->c.instance)
                a->c.instance = INSTANCE_DEFAULT;
        if (!vm_name_valid(a->c.instance)) {
                log_error("invalid instance name '%s' (1..%d of A-Z a-z 0-9 . _ -, not starting "
                          "with . or -)",
                          a->c.instance, VM_NAME_MAX);
                return -EINVAL;
        }
        if (a->snapshot && !vm_name_valid(a->snapshot)) {
                log_error("invalid snapshot name '%s'", a->snapshot);
                return -EINVAL;
        }
        a->c.vm_dir = vm_dir_pick(a->c.vm_dir);
        if (a->c.vm_dir[0] != '/') {
                /* Backing files and QEMU's paths must not depend on the cwd. */
                static char *abs_dir;
                _cleanup_free_ char *cwd = get_current_dir_name();

                if (!cwd || asprintf(&abs_dir, "%s/%s", cwd, a->c.vm_dir) < 0)
                        return log_oom();
                a->c.vm_dir = abs_dir;
        }
        return 0;
}

#define PARSE(help, ...)                                                                   \
        do {                                                                               \
                static const int allowed_[] = {0, __VA_ARGS__};                            \
                int r_ = parse_args(argc, argv, allowed_, ELEMENTSOF(allowed_), help, &a); \
                if (r_ > 0)                                                                \
                        return EXIT_OK;                                                    \
                if (r_ < 0)                                                                \
                        return EXIT_USAGE;                                                 \
        } while (0)

/* NAME as the first positional argument. */
static int want_name(struct args *a, const char *what, size_t n_more, const char **ret)
{
        if (a->n_pos < 1 || !a->pos[0]) {
                log_error("%s: missing NAME; see --help", what);
                return -EINVAL;
        }
        if (!vm_name_valid(a->pos[0])) {
                log_error("invalid name '%s' (1..%d of A-Z a-z 0-9 . _ -, not starting with . "
                          "or -)",
                          a->pos[0], VM_NAME_MAX);
                return -EINVAL;
        }
        if (a->n_pos != 1 + n_more) {
                log_error("%s: expected %zu argument%s after the options, got %zu; see --help",
                          what, 1 + n_more, n_more ? "s" : "", a->n_pos);
                return -EINVAL;
        }
        *ret = a->pos[0];
        return 0;
}

static bool tool_present(const char *tool)
{
        _cleanup_free_ char *path = NULL;
        const char *p = getenv("PATH");
        _cleanup_free_ char *copy = strdup(p ? p : "/usr/bin:/bin");
        char *save = NULL;

        if (!copy)
                return false;
        for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                free(path);
                if (asprintf(&path, "%s/%s", d, tool) < 0)
                        return false;
                if (access(path, X_OK) == 0)
                        return true;
        }
        return false;
}

/* A missing tool names the Debian package that has it. */
static int need_tools(const char *const *tools)
{
        static const struct {
                const char *tool, *package;
        } pkgs[] = {
            {"qemu-system-x86_64", "qemu-system-x86"},
            {"qemu-img", "qemu-utils"},
            {"ssh", "openssh-client"},
            {"ssh-keygen", "openssh-client"},
            {"rsync", "rsync"},
            {"debootstrap", "debootstrap"},
            {"mkfs.ext4", "e2fsprogs"},
        };

        for (size_t i = 0; tools[i]; i++) {
                if (tool_present(tools[i]))
                        continue;
                for (size_t k = 0; k < ELEMENTSOF(pkgs); k++)
                        if (streq(pkgs[k].tool, tools[i])) {
                                log_error("'%s' is not installed: install the Debian package %s "
                                          "(scripts/install-deps)",
                                          tools[i], pkgs[k].package);
                                return -ENOENT;
                        }
                log_error("'%s' is not installed", tools[i]);
                return -ENOENT;
        }
        return 0;
}

static const char *guest_dir(void)
{
        const char *e = getenv("STRATA_VM_GUEST_DIR");

        if (e && *e)
                return e;
        if (access(STRATA_DATADIR "/vm-guest/usr/lib/strata/vm-init", R_OK) == 0)
                return STRATA_DATADIR "/vm-guest";
        return STRATA_SOURCE_ROOT "/src/vm-guest";
}

static const char *init_binary(void)
{
        static const char *const paths[] = {STRATA_BUILD_ROOT "/src/init/overlayfs-init",
                                            "/usr/local/sbin/overlayfs-init",
                                            "/usr/sbin/overlayfs-init"};
        const char *e = getenv("OVERLAYFS_INIT");

        if (e && *e)
                return e;
        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                if (access(paths[i], X_OK) == 0)
                        return paths[i];
        return paths[0];
}

/* ---- image build ---- */

static void help_image(void)
{
        printf("Usage: strata vm image build NAME [OPTIONS]\n"
               "\n"
               "Builds the base image NAME in VM-DIR/images/NAME: a Debian root\n"
               "(debootstrap --variant=minbase from this machine's apt sources) with\n"
               "" VM_IMAGE_PACKAGES "\n"
               "and --packages, the lab's guest files, overlayfs-init, a new ssh host key\n"
               "(recorded in known_hosts) and the lab's client key; then base.qcow2\n"
               "(mkfs.ext4 -d, qemu-img convert) and an empty data.qcow2. The host's kernel\n"
               "and initrd boot it directly. An image whose inputs have not changed is\n"
               "reused (\"cached\").\n"
               "\n"
               "  --suite SUITE       Debian suite (default: the apt sources' first)\n"
               "  --packages LIST     more packages, comma or space separated\n"
               "  --size SIZE         root filesystem size (default 4G)\n"
               "  --kernel PATH       kernel (default: the newest /boot/vmlinuz-*)\n"
               "  --initrd PATH       initrd (default: the kernel's /boot/initrd.img-*)\n"
               "  --rootfs DIR        copy DIR as the root instead of debootstrap\n"
               "  --init strata|image PID 1: vm-init + overlayfs-init (default) or the\n"
               "                      image's own /sbin/init\n"
               "  --force             rebuild even when cached\n"
               "  --vm-dir DIR        the vm dir\n");
}

static void progress(const char *stage, double elapsed, const char *detail, void *ud)
{
        const char *name = ud;

        /* on a terminal, one line redrawn in place; elsewhere a line each */
        if (progress_drawn())
                progress_step(stage, 0, 0, detail);
        else
                fprintf(stderr, "strata vm image build %s: [%6.1fs] %s%s%s\n", name, elapsed, stage,
                        detail ? ": " : "", detail ? detail : "");
}

static int vm_image(int argc, char **argv)
{
        struct args a = {};
        _cleanup_strv_ char **pkgs = NULL;
        _cleanup_free_ char *error = NULL;
        struct vm_image_config c = {};
        const char *name;
        bool was_cached = false;
        int r;

        if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h")) {
                help_image();
                return argc < 2 ? EXIT_USAGE : EXIT_OK;
        }
        if (!streq(argv[1], "build")) {
                log_error("unknown 'vm image' command '%s' (build)", argv[1]);
                return EXIT_USAGE;
        }
        argc--;
        argv++;
        PARSE(help_image, ARG_SUITE, ARG_PACKAGES, ARG_SIZE, ARG_KERNEL, ARG_INITRD, ARG_ROOTFS,
              ARG_INIT, ARG_FORCE);
        if (want_name(&a, "vm image build", 0, &name) < 0)
                return EXIT_USAGE;
        c.vm_dir = a.c.vm_dir;
        c.name = name;
        c.suite = a.suite;
        c.kernel = a.kernel;
        c.initrd = a.initrd;
        c.rootfs = a.rootfs;
        c.force = a.force;
        if (a.size && vm_size_parse(a.size, &c.size) < 0) {
                log_error("invalid --size '%s' (like 4G or 512M, at least 64M)", a.size);
                return EXIT_USAGE;
        }
        if (a.packages && vm_packages_parse(a.packages, &pkgs) < 0) {
                log_error("invalid --packages '%s' (Debian package names)", a.packages);
                return EXIT_USAGE;
        }
        c.packages = pkgs;
        if (a.init && !streq(a.init, "strata") && !streq(a.init, "image")) {
                log_error("invalid --init '%s' (strata or image)", a.init);
                return EXIT_USAGE;
        }
        c.own_init = a.init && streq(a.init, "image");
        if (a.rootfs && access(a.rootfs, R_OK | X_OK) < 0) {
                log_error_errno(errno, "cannot read the --rootfs '%s': %m", a.rootfs);
                return EXIT_FAILURE_;
        }
        {
                const char *tools[] = {"qemu-img", "mkfs.ext4", "ssh-keygen",
                                       a.rootfs ? NULL : "debootstrap", NULL};
                if (need_tools(tools) < 0)
                        return EXIT_FAILURE_;
        }
        c.guest_dir = guest_dir();
        c.init_binary = init_binary();
        progress_init("strata vm image build", false);
        r = vm_image_build(&c, progress, (void *)name, &was_cached, &error);
        progress_end();
        if (r == -EWOULDBLOCK) {
                log_error("%s", error);
                return EXIT_BUSY;
        }
        if (r < 0) {
                log_error("cannot build image '%s': %s", name, error ? error : strerror(-r));
                return EXIT_FAILURE_;
        }
        printf("%s: %s/images/%s/base.qcow2%s\n", name, a.c.vm_dir, name,
               was_cached ? " (cached)" : "");
        return EXIT_OK;
}

/* ---- acceleration ---- */

/* KVM when a short boot of the kernel reaches its first words under it,
 * TCG otherwise; the answer is cached per kernel (path, size, mtime). */
static int accel_pick(const char *vm_dir, const char *kernel, enum vm_accel *ret, bool *ret_cached)
{
        _cleanup_free_ char *dir = NULL, *path = NULL, *have = NULL, *tmp = NULL, *con = NULL,
                            *text = NULL, *id = NULL;
        _cleanup_strv_ char **argv = NULL;
        const char *e = getenv("STRATA_VM_ACCEL");
        struct stat st;
        pid_t pid;
        int fd, r;
        bool ok = false;

        *ret_cached = false;
        if (e && streq(e, "tcg")) {
                *ret = VM_ACCEL_TCG;
                return 0;
        }
        if (e && streq(e, "kvm")) {
                *ret = VM_ACCEL_KVM;
                return 0;
        }
        fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                *ret = VM_ACCEL_TCG;
                return 0;
        }
        close(fd);
        if (stat(kernel, &st) < 0)
                return -errno;
        {
                const char *base = strrchr(kernel, '/');
                if (asprintf(&id, "%s-%" PRIu64 "-%" PRId64, base ? base + 1 : kernel,
                             (uint64_t)st.st_size, (int64_t)st.st_mtime) < 0)
                        return -ENOMEM;
        }
        if (asprintf(&dir, "%s/kvm-probe", vm_dir) < 0 || asprintf(&path, "%s/%s", dir, id) < 0)
                return -ENOMEM;
        if (read_file_at(AT_FDCWD, path, 64, &have, NULL) == 0) {
                *ret = startswith(have, "kvm") ? VM_ACCEL_KVM : VM_ACCEL_TCG;
                *ret_cached = true;
                return 0;
        }
        r = mkdir_p_at(AT_FDCWD, dir, 0755);
        if (r < 0)
                return r;
        if (asprintf(&tmp, "%s/probe-XXXXXX", dir) < 0 || !mkdtemp(tmp))
                return -errno;
        if (asprintf(&con, "%s/console", tmp) < 0)
                return -ENOMEM;
        /* No root, no initrd: the kernel panics at once, which under a
         * working KVM is well within the timeout. */
        {
                const char *probe[] = {"qemu-system-x86_64",
                                       "-nodefaults",
                                       "-no-user-config",
                                       "-display",
                                       "none",
                                       "-no-reboot",
                                       "-machine",
                                       "q35,accel=kvm",
                                       "-cpu",
                                       "host",
                                       "-m",
                                       "256",
                                       "-kernel",
                                       kernel,
                                       "-append",
                                       "console=ttyS0 panic=-1 loglevel=4",
                                       "-serial",
                                       NULL,
                                       NULL};
                _cleanup_free_ char *ser = NULL;
                if (asprintf(&ser, "file:%s", con) < 0)
                        return -ENOMEM;
                probe[17] = ser;
                r = strv_copy((char *const *)probe, &argv);
                if (r < 0)
                        return r;
        }
        {
                _cleanup_free_ char *log = NULL;
                if (asprintf(&log, "%s/qemu.log", tmp) < 0)
                        return -ENOMEM;
                r = vm_spawn(argv, log, -1, true, &pid);
        }
        if (r >= 0) {
                struct vm_watch w = {.pid = pid, .child = true, .out_fd = -1, .err_fd = -1};
                r = vm_watch_run(&w, VM_WAIT_EXIT, vm_now_usec() + KVM_PROBE_TIMEOUT_MS * 1000,
                                 &arg_stop);
                if (r != VM_EVENT_EXITED)
                        vm_kill(pid);
                if (r == VM_EVENT_EXITED && vm_read_tail(con, 1 << 20, &text, NULL) == 0)
                        ok = strstr(text, "Linux version") || strstr(text, "Kernel panic");
        }
        (void)rm_rf_at(AT_FDCWD, tmp, RM_ROOT | RM_MISSING_OK);
        *ret = ok ? VM_ACCEL_KVM : VM_ACCEL_TCG;
        (void)write_file_atomic_at(AT_FDCWD, path, ok ? "kvm\n" : "tcg\n", 4, 0644);
        return 0;
}

static int vm_accel(int argc, char **argv)
{
        struct args a = {};
        _cleanup_free_ char *kernel = NULL, *initrd = NULL, *version = NULL;
        enum vm_accel accel;
        bool was_cached;
        int r;

        PARSE(help_vm, ARG_JSON, ARG_KERNEL);
        if (a.kernel)
                kernel = strdup(a.kernel);
        else if ((r = vm_kernel_find("/boot", &kernel, &initrd, &version)) < 0) {
                log_error_errno(r, "no kernel in '/boot': install linux-image-amd64 (%m)");
                return EXIT_FAILURE_;
        }
        if (!kernel)
                return EXIT_SOFTWARE;
        r = accel_pick(a.c.vm_dir, kernel, &accel, &was_cached);
        if (r < 0) {
                log_error_errno(r, "cannot probe KVM with '%s': %m", kernel);
                return EXIT_FAILURE_;
        }
        if (a.c.json)
                printf("{\"accel\": \"%s\", \"kernel\": \"%s\", \"cached\": %s}\n",
                       vm_accel_to_string(accel), kernel, was_cached ? "true" : "false");
        else
                printf("%s (%s%s)\n", vm_accel_to_string(accel), kernel,
                       was_cached ? ", cached" : "");
        return EXIT_OK;
}

/* ---- instances ---- */

struct instance {
        char *dir, *root, *data, *console, *qmp, *pidfile, *state, *lock, *log, *ssh_config;
};

static void instance_done(struct instance *i)
{
        free(i->dir);
        free(i->root);
        free(i->data);
        free(i->console);
        free(i->qmp);
        free(i->pidfile);
        free(i->state);
        free(i->lock);
        free(i->log);
        free(i->ssh_config);
}

static int instance_paths(const char *dir, struct instance *ret)
{
        struct instance i = {};

        if (!(i.dir = strdup(dir)) || asprintf(&i.root, "%s/root.qcow2", dir) < 0 ||
            asprintf(&i.data, "%s/data.qcow2", dir) < 0 ||
            asprintf(&i.console, "%s/console.log", dir) < 0 ||
            asprintf(&i.qmp, "%s/qmp.sock", dir) < 0 ||
            asprintf(&i.pidfile, "%s/qemu.pid", dir) < 0 ||
            asprintf(&i.state, "%s/state.json", dir) < 0 || asprintf(&i.lock, "%s/lock", dir) < 0 ||
            asprintf(&i.log, "%s/qemu.log", dir) < 0 ||
            asprintf(&i.ssh_config, "%s/ssh_config", dir) < 0) {
                instance_done(&i);
                return -ENOMEM;
        }
        *ret = i;
        return 0;
}

static int instance_dir(const char *vm_dir, const char *name, const char *inst, char **ret)
{
        return asprintf(ret, "%s/instances/%s/%s", vm_dir, name, inst) < 0 ? -ENOMEM : 0;
}

/* Writes the ssh_config of an instance: the lab's key, the image's
 * recorded host key, the forwarded port; strict host key checking. */
static int write_ssh_config(const struct instance *i, const struct vm_image *img,
                            const char *vm_dir, const char *host, uint16_t port)
{
        _cleanup_free_ char *key = NULL, *error = NULL, *text = NULL;
        int r;

        r = vm_client_key(vm_dir, &key, &error);
        if (r < 0)
                return log_error_errno(r, "%s", error ? error : "cannot make the ssh key");
        if (asprintf(&text,
                     "# strata vm: ssh -F '%s' %s\n"
                     "Host %s\n"
                     "  HostName 127.0.0.1\n"
                     "  Port %u\n"
                     "  User root\n"
                     "  IdentityFile \"%s\"\n"
                     "  IdentitiesOnly yes\n"
                     "  UserKnownHostsFile \"%s\"\n"
                     "  HostKeyAlias %s\n"
                     "  StrictHostKeyChecking yes\n"
                     "  BatchMode yes\n"
                     "  ConnectTimeout 30\n"
                     "  LogLevel ERROR\n",
                     i->ssh_config, host, host, port, key, img->known_hosts, img->host_alias) < 0)
                return log_oom();
        r = write_file_atomic_at(AT_FDCWD, i->ssh_config, text, strlen(text), 0644);
        if (r < 0)
                return log_error_errno(r, "cannot write '%s': %m", i->ssh_config);
        return 0;
}

static void print_console_tail(const char *console, const char *why)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;

        if (vm_read_tail(console, 1 << 20, &text, &len) < 0 || len == 0) {
                fprintf(stderr, "strata vm: %s; the serial console is empty\n", why);
                return;
        }
        {
                /* A panic's first line scrolls out of the tail under its trace. */
                const char *p = strstr(text, "Kernel panic");
                if (p)
                        fprintf(stderr, "strata vm: %s: %.*s\n", why, (int)strcspn(p, "\n"), p);
        }
        fprintf(stderr, "strata vm: %s; the serial console's last lines:\n", why);
        fputs(vm_text_tail(text, len, CONSOLE_TAIL_LINES), stderr);
        if (text[len - 1] != '\n')
                fputc('\n', stderr);
}

static void print_qemu_log(const char *log)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;

        if (vm_read_tail(log, 1 << 16, &text, &len) == 0 && len > 0) {
                fprintf(stderr, "strata vm: qemu said:\n");
                fputs(vm_text_tail(text, len, 10), stderr);
                if (text[len - 1] != '\n')
                        fputc('\n', stderr);
        }
}

static int rsync_to(const struct instance *i, const char *host, const char *src, const char *dest)
{
        _cleanup_free_ char *e = NULL, *from = NULL, *to = NULL, *error = NULL;
        size_t n = strlen(src);
        int r;

        if (asprintf(&e, "ssh -F '%s'", i->ssh_config) < 0 ||
            asprintf(&from, "%s%s", src, n && src[n - 1] == '/' ? "" : "/") < 0 ||
            asprintf(&to, "%s:%s/", host, dest) < 0)
                return log_oom();
        const char *argv[] = {"rsync",
                              "-a",
                              "--delete",
                              "--exclude=.git",
                              "--exclude=/build*/",
                              "--exclude=/builddir/",
                              "-e",
                              e,
                              from,
                              to,
                              NULL};
        r = vm_run_tool(argv, NULL, &error);
        if (r < 0)
                return log_error_errno(r, "cannot sync '%s' to the guest: %s", src,
                                       error ? error : "rsync failed");
        return 0;
}

static int ssh_run(const struct instance *i, const char *host, const char *cmd)
{
        _cleanup_free_ char *error = NULL;
        const char *argv[] = {"ssh", "-F", i->ssh_config, host, cmd, NULL};
        int r;

        r = vm_run_tool(argv, NULL, &error);
        if (r < 0)
                return log_error_errno(r, "%s", error ? error : "ssh failed");
        return 0;
}

/* ---- what run and start share ---- */

/* The tools a boot needs, then the image (a message says what is missing). */
static int boot_load_image(const char *vm_dir, const char *name, bool rsync, struct vm_image *ret)
{
        const char *tools[] = {"qemu-system-x86_64", "qemu-img", rsync ? "rsync" : NULL, NULL};
        _cleanup_free_ char *error = NULL;
        int r;

        if (need_tools(tools) < 0)
                return -ENOENT;
        r = vm_image_load(vm_dir, name, ret, &error);
        if (r < 0) {
                log_error("%s", error ? error : strerror(-r));
                return r;
        }
        return 0;
}

/* The acceleration for the image's kernel; said on stderr when what (the
 * instance) is given, else at info level. */
static int boot_accel(const char *vm_dir, const struct vm_image *img, const char *what,
                      enum vm_accel *ret)
{
        bool cached;
        int r;

        r = accel_pick(vm_dir, img->kernel, ret, &cached);
        if (r < 0)
                return log_error_errno(r, "cannot probe KVM: %m");
        if (what)
                fprintf(stderr, "strata vm: %s: accel %s%s\n", what, vm_accel_to_string(*ret),
                        cached ? " (cached probe)" : "");
        else
                log_info("accel: %s%s", vm_accel_to_string(*ret), cached ? " (cached probe)" : "");
        return 0;
}

/* --seed and --drive files: absolute paths, their format, a seed's label
 * checked. Each message names the file. */
static int drives_open(struct args *a)
{
        for (size_t k = 0; k < a->n_drives; k++) {
                struct vm_drive *d = &a->drives[k];
                _cleanup_close_ int fd = -1;
                _cleanup_free_ unsigned char *head = malloc(65536);
                char label[VM_LABEL_MAX + 1];
                ssize_t n;

                if (!head)
                        return log_oom();
                fd = open(d->path, (d->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return log_error_errno(errno, "cannot open the %s '%s'%s: %m",
                                               d->seed ? "--seed" : "--drive", d->path,
                                               d->readonly ? "" : " for writing");
                n = pread(fd, head, 65536, 0);
                if (n < 0)
                        return log_error_errno(errno, "cannot read '%s': %m", d->path);
                vm_drive_probe(head, (size_t)n, &d->format, label);
                if (d->seed && !vm_label_is_seed(label))
                        return log_error_errno(EINVAL,
                                               "the --seed '%s' is not a NoCloud seed: its "
                                               "label is '%s', not cidata (genisoimage -V "
                                               "cidata, mkfs.vfat -n cidata)",
                                               d->path, label);
                a->drive_abs[k] = realpath(d->path, NULL);
                if (!a->drive_abs[k])
                        return log_error_errno(errno, "cannot resolve '%s': %m", d->path);
                d->path = a->drive_abs[k];
        }
        return 0;
}

/* What every boot of a lab guest has: the image's kernel, the instance's
 * disks, console and QMP socket, the ssh port, the extra drives. */
static void boot_init(struct vm_boot *b, const struct vm_image *img, const struct instance *i,
                      const struct args *a, enum vm_accel accel, uint16_t ssh_port)
{
        b->kernel = img->kernel;
        b->initrd = img->initrd;
        b->append = img->append;
        b->root_disk = i->root;
        b->data_disk = i->data;
        b->mem_mb = a->mem;
        b->cpus = a->cpus;
        b->accel = accel;
        b->console = i->console;
        b->ssh_port = ssh_port;
        b->qmp = i->qmp;
        memcpy(b->drives, a->drives, sizeof(a->drives));
        b->n_drives = a->n_drives;
}

static int boot_spawn(const struct vm_boot *b, const char *log, int keep_fd, bool die_with_parent,
                      pid_t *ret_pid)
{
        _cleanup_strv_ char **argv = NULL;
        int r;

        r = vm_qemu_argv(b, &argv);
        if (r < 0)
                return log_oom();
        r = vm_spawn(argv, log, keep_fd, die_with_parent, ret_pid);
        if (r < 0)
                return log_error_errno(r, "cannot start '%s': %m", argv[0]);
        return 0;
}

/* Says why the guest did not get to what was waited for. */
static void report_event(int ev, const struct instance *i, const char *exited, const char *timeout)
{
        if (ev == VM_EVENT_EXITED)
                print_console_tail(i->console, exited);
        else if (ev == VM_EVENT_TIMEOUT)
                print_console_tail(i->console, timeout);
        else if (ev == VM_EVENT_INTERRUPTED)
                log_error("interrupted by signal %d; the guest was killed", (int)arg_stop);
        else
                log_error_errno(ev, "cannot watch the guest: %m");
}

static void help_run(void)
{
        printf("Usage: strata vm run NAME [OPTIONS] -- CMD...\n"
               "\n"
               "Boots a fresh throwaway instance of image NAME (copy-on-write over its disks,\n"
               "in VM-DIR/runs/), runs CMD in the guest (through sh, as root, in /work when\n"
               "it exists), copies its stdout and stderr to this command's, and exits with\n"
               "its status. The instance is removed afterwards, whatever happens.\n"
               "\n"
               "  --sync DIR      rsync DIR to the guest's /work over ssh first (excludes\n"
               "                  .git and build dirs)\n"
               "  --timeout S     kill the guest after S seconds (boot included), exit 124\n"
               "  --mem MB        guest memory (default 1024)\n"
               "  --cpus N        guest CPUs (default 1)\n"
               "  --keep          keep the instance dir (console.log, qemu.log) for debugging\n"
               "  --seed FILE     attach FILE, a NoCloud seed (labelled cidata), read-only\n"
               "  --drive FILE[,ro]  attach FILE as a disk (raw or qcow2), writable unless ,ro;\n"
               "                  after the two disks: /dev/vdc, /dev/vdd... (repeatable)\n"
               "  --vm-dir DIR    the vm dir\n"
               "\n"
               "Exit status: CMD's (128+N when killed by signal N); 255 when the guest\n"
               "stops without a result (a panic, a power-off); 124 on timeout; 1 when the\n"
               "guest cannot be started (the message says why); 2 usage error.\n");
}

/* One `vm run`: the throwaway instance and its ports' files. */
struct run {
        struct args *a;
        const char *name;
        struct vm_image img;
        struct instance i;
        char *dir, *cmdfile, *result, *out, *err, *host;
        uint16_t port;
        pid_t pid;
        int lock_fd; /* the instance's lock, held by this process and QEMU */
        int64_t deadline;
        struct vm_watch w;
};

/* Kills the guest and removes the instance, whatever happened. */
static void run_done(struct run *x)
{
        if (x->pid > 0)
                vm_kill(x->pid);
        if (x->dir && x->a->keep) {
                _cleanup_free_ char *kept = NULL;
                /* A kept dir is not a stale one (runs_sweep). */
                if (asprintf(&kept, "%s/" RUN_KEPT, x->dir) >= 0)
                        (void)write_file_atomic_at(AT_FDCWD, kept, "", 0, 0644);
                fprintf(stderr, "strata vm: kept the instance in '%s'\n", x->dir);
        } else if (x->dir)
                (void)rm_rf_at(AT_FDCWD, x->dir, RM_ROOT | RM_MISSING_OK);
        x->lock_fd = safe_close(x->lock_fd);
        vm_image_done(&x->img);
        instance_done(&x->i);
        free(x->dir);
        free(x->cmdfile);
        free(x->result);
        free(x->out);
        free(x->err);
        free(x->host);
}

/* VM-DIR/runs (created when create), locked: an flock on the directory
 * itself, held while stale instances are swept and while a run creates its
 * dir and takes the lock in it, so a sweep never finds a live run's dir
 * without its lock. The fd (closing it unlocks) or -errno; *ret_runs is
 * the path. */
static int runs_lock(const char *vm_dir, bool create, char **ret_runs)
{
        _cleanup_free_ char *runs = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        if (asprintf(&runs, "%s/runs", vm_dir) < 0)
                return -ENOMEM;
        if (create && (r = mkdir_p_at(AT_FDCWD, runs, 0755)) < 0)
                return r;
        fd = open(runs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (RETRY_EINTR(flock(fd, LOCK_EX)) < 0)
                return -errno;
        *ret_runs = TAKE_PTR(runs);
        return TAKE_FD(fd);
}

/* Removes the instances in VM-DIR/runs whose run is gone. A `vm run` holds
 * the lock in its instance dir, and its QEMU inherits it, for as long as
 * either lives; killed with SIGKILL, strata cannot remove the dir, but its
 * QEMU dies with it (PR_SET_PDEATHSIG) and the lock comes free. So a dir
 * whose lock can be taken is stale, unless the run kept it (--keep). */
static void runs_sweep(const char *vm_dir)
{
        _cleanup_free_ char *runs = NULL;
        _cleanup_close_ int fd = -1;
        DIR *d;
        struct dirent *de;

        fd = runs_lock(vm_dir, false, &runs);
        if (fd < 0) {
                if (fd != -ENOENT)
                        log_warning_errno(fd, "cannot lock '%s/runs' to sweep it: %m", vm_dir);
                return;
        }
        d = opendir(runs);
        if (!d)
                return;
        while ((de = readdir(d))) {
                _cleanup_free_ char *lock = NULL, *kept = NULL;
                _cleanup_close_ int lock_fd = -1;

                if (de->d_name[0] == '.' || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
                        continue;
                if (asprintf(&lock, "%s/lock", de->d_name) < 0 ||
                    asprintf(&kept, "%s/" RUN_KEPT, de->d_name) < 0)
                        break;
                if (faccessat(fd, kept, F_OK, 0) == 0 ||
                    lock_acquire_at(fd, lock, "strata vm run (sweep)", LOCK_NONBLOCK, &lock_fd,
                                    NULL) < 0)
                        continue;
                log_info("removing '%s/%s': its vm run is gone", runs, de->d_name);
                (void)rm_rf_at(fd, de->d_name, RM_ROOT | RM_MISSING_OK);
        }
        closedir(d);
}

/* The instance: a temp dir in VM-DIR/runs with disks over the image, the
 * command, the ports' empty files, a free ssh port (and its ssh_config
 * for --sync). */
static int run_prepare(struct run *x)
{
        _cleanup_free_ char *runs = NULL, *dir = NULL, *quoted = NULL, *script = NULL,
                            *error = NULL;
        _cleanup_close_ int runs_fd = -1;
        int r;

        runs_fd = runs_lock(x->a->c.vm_dir, true, &runs);
        if (runs_fd < 0)
                return runs_fd == -ENOMEM
                           ? log_oom()
                           : log_error_errno(runs_fd, "cannot lock '%s/runs': %m", x->a->c.vm_dir);
        if (asprintf(&dir, "%s/%s-XXXXXX", runs, x->name) < 0)
                return log_oom();
        if (!mkdtemp(dir))
                return log_error_errno(errno, "cannot create an instance dir in '%s': %m", runs);
        x->dir = TAKE_PTR(dir);
        if (instance_paths(x->dir, &x->i) < 0)
                return log_oom();
        r = lock_acquire_at(AT_FDCWD, x->i.lock, "strata vm run", LOCK_NONBLOCK, &x->lock_fd, NULL);
        if (r < 0)
                return log_error_errno(r, "cannot lock '%s': %m", x->i.lock);
        runs_fd = safe_close(runs_fd);
        if (asprintf(&x->cmdfile, "%s/command", x->dir) < 0 ||
            asprintf(&x->result, "%s/result", x->dir) < 0 ||
            asprintf(&x->out, "%s/stdout", x->dir) < 0 ||
            asprintf(&x->err, "%s/stderr", x->dir) < 0 ||
            asprintf(&x->host, "strata-vm-%s", x->name) < 0 ||
            vm_shell_quote(x->a->cmd, &quoted) < 0 || asprintf(&script, "exec %s\n", quoted) < 0)
                return log_oom();
        r = vm_instance_create_disks(&x->img, x->dir, true, &error);
        if (r < 0) {
                log_error("cannot create the instance's disks: %s", error);
                return r;
        }
        {
                const char *files[] = {x->cmdfile, x->result, x->out, x->err};
                for (size_t k = 0; k < ELEMENTSOF(files); k++) {
                        r = write_file_atomic_at(AT_FDCWD, files[k], k ? "" : script,
                                                 k ? 0 : strlen(script), 0644);
                        if (r < 0)
                                return log_error_errno(r, "cannot write '%s': %m", files[k]);
                }
        }
        r = vm_free_port(&x->port);
        if (r < 0)
                return log_error_errno(r, "cannot find a free TCP port on 127.0.0.1: %m");
        if (x->a->sync)
                return write_ssh_config(&x->i, &x->img, x->a->c.vm_dir, x->host, x->port);
        return 0;
}

static int run_boot(struct run *x)
{
        struct vm_boot b = {};
        enum vm_accel accel;
        int r;

        r = boot_accel(x->a->c.vm_dir, &x->img, NULL, &accel);
        if (r < 0)
                return r;
        boot_init(&b, &x->img, &x->i, x->a, accel, x->port);
        b.result = x->result;
        b.out = x->out;
        b.err = x->err;
        b.command = x->cmdfile;
        b.wait_sync = x->a->sync != NULL;
        return boot_spawn(&b, x->i.log, x->lock_fd, true, &x->pid);
}

/* Whether the guest is killed as soon as its status is on the result
 * port: a throwaway instance needs no orderly power-off (its disks go),
 * unless it is kept (--keep) or has a writable --drive, which the
 * guest's power-off syncs. */
static bool run_kill_at_result(const struct run *x)
{
        if (x->a->keep)
                return false;
        for (size_t k = 0; k < x->a->n_drives; k++)
                if (!x->a->drives[k].readonly && !x->a->drives[k].seed)
                        return false;
        return true;
}

/* With --sync: waits for the marker, syncs, lets the command go. Then
 * until QEMU exits, or until the result is in (run_kill_at_result: then
 * QEMU is killed). A vm_event, or -errno (-ECANCELED: the sync failed,
 * said). */
static int run_wait(struct run *x)
{
        int ev = VM_EVENT_READY;

        x->w = (struct vm_watch){.pid = x->pid,
                                 .child = true,
                                 .console = x->i.console,
                                 .out = x->out,
                                 .err = x->err,
                                 .out_fd = STDOUT_FILENO,
                                 .err_fd = STDERR_FILENO,
                                 .result = run_kill_at_result(x) ? x->result : NULL};
        if (x->a->sync) {
                ev = vm_watch_run(&x->w, VM_WAIT_READY, x->deadline, &arg_stop);
                if (ev == VM_EVENT_READY &&
                    (rsync_to(&x->i, x->host, x->a->sync, VM_GUEST_SYNC_DIR) < 0 ||
                     ssh_run(&x->i, x->host, "touch /run/strata/go") < 0))
                        return -ECANCELED;
        }
        if (ev == VM_EVENT_READY)
                ev = vm_watch_run(&x->w, VM_WAIT_EXIT, x->deadline, &arg_stop);
        if (ev == VM_EVENT_RESULT) {
                vm_kill(x->pid);
                ev = VM_EVENT_EXITED;
        }
        if (ev == VM_EVENT_EXITED)
                x->pid = 0;
        return ev;
}

/* The exit status of `vm run` for what run_wait returned. */
static int run_status(struct run *x, int ev)
{
        _cleanup_free_ char *res = NULL, *con = NULL;
        size_t len = 0, clen = 0;
        int s;

        if (ev == -ECANCELED)
                return EXIT_FAILURE_;
        if (ev != VM_EVENT_EXITED) {
                report_event(ev, &x->i, NULL, "timeout: the guest was killed");
                return ev == VM_EVENT_TIMEOUT       ? VM_STATUS_TIMEOUT
                       : ev == VM_EVENT_INTERRUPTED ? 128 + (int)arg_stop
                                                    : EXIT_SOFTWARE;
        }
        (void)vm_read_tail(x->result, 4096, &res, &len);
        if (vm_result_parse(res, len, &s) == 0)
                return s;
        if (x->w.status != 0 &&
            (vm_read_tail(x->i.console, 1 << 20, &con, &clen) < 0 || clen == 0)) {
                log_error("the guest did not start (qemu exited with status %d)", x->w.status);
                print_qemu_log(x->i.log);
                return EXIT_FAILURE_;
        }
        print_console_tail(x->i.console, "the guest stopped without a result");
        return VM_STATUS_NO_RESULT;
}

static int vm_run(int argc, char **argv)
{
        _cleanup_(args_done) struct args a = {};
        _cleanup_(run_done) struct run x = {.a = &a, .lock_fd = -1};
        int r;

        PARSE(help_run, ARG_SYNC, ARG_TIMEOUT, ARG_MEM, ARG_CPUS, ARG_KEEP, ARG_SEED, ARG_DRIVE);
        if (want_name(&a, "vm run", 0, &x.name) < 0)
                return EXIT_USAGE;
        if (!a.cmd || !a.cmd[0]) {
                log_error("vm run: missing CMD after '--'; see --help");
                return EXIT_USAGE;
        }
        runs_sweep(a.c.vm_dir);
        if (a.sync && access(a.sync, R_OK | X_OK) < 0) {
                log_error_errno(errno, "cannot read the --sync dir '%s': %m", a.sync);
                return EXIT_FAILURE_;
        }
        if (drives_open(&a) < 0 || boot_load_image(a.c.vm_dir, x.name, a.sync, &x.img) < 0)
                return EXIT_FAILURE_;
        if (a.timeout)
                x.deadline = vm_now_usec() + (int64_t)a.timeout * 1000000;
        catch_signals();
        r = run_prepare(&x);
        if (r >= 0)
                r = run_boot(&x);
        if (r < 0)
                return r == -ENOMEM ? EXIT_SOFTWARE : EXIT_FAILURE_;
        return run_status(&x, run_wait(&x));
}

/* The state an instance's state.json records while it runs. */
struct inst_state {
        pid_t pid;
        uint16_t ssh_port;
        char accel[8];
        int64_t started;
        json_t *forwards;
};

static int state_load(const struct instance *i, struct inst_state *ret)
{
        json_t *j = NULL;
        int64_t v;
        const char *s;
        int r;

        r = json_load_at(AT_FDCWD, i->state, &j, NULL);
        if (r < 0)
                return r;
        *ret = (struct inst_state){};
        if (json_get_int(j, "pid", &v) == 0)
                ret->pid = (pid_t)v;
        if (json_get_int(j, "ssh_port", &v) == 0)
                ret->ssh_port = (uint16_t)v;
        if (json_get_int(j, "started", &v) == 0)
                ret->started = v;
        if (json_get_string(j, "accel", &s) == 0)
                snprintf(ret->accel, sizeof(ret->accel), "%s", s);
        ret->forwards = json_incref(json_object_get(j, "forwards"));
        json_decref(j);
        return 0;
}

/* Whether QEMU runs for the instance: it holds the instance's lock. */
static bool instance_running(const struct instance *i)
{
        _cleanup_close_ int fd = -1;
        int r;

        if (access(i->lock, F_OK) < 0)
                return false;
        r = lock_acquire_at(AT_FDCWD, i->lock, "strata vm probe", LOCK_NONBLOCK, &fd, NULL);
        if (r == -EWOULDBLOCK)
                return true;
        if (r >= 0)
                fd = lock_release(TAKE_FD(fd));
        return false;
}

/* pid is the QEMU of this instance (not a recycled pid). */
static bool pid_is_instance(pid_t pid, const struct instance *i)
{
        _cleanup_free_ char *p = NULL, *cmd = NULL;
        size_t len = 0;

        if (pid <= 0 || asprintf(&p, "/proc/%d/cmdline", (int)pid) < 0)
                return false;
        if (read_file_at(AT_FDCWD, p, 1 << 20, &cmd, &len) < 0)
                return false;
        return memmem(cmd, len, i->root, strlen(i->root)) != NULL;
}

static void instance_cleanup_runtime(const struct instance *i)
{
        (void)unlink(i->qmp);
        (void)unlink(i->pidfile);
}

static void help_start(void)
{
        printf("Usage: strata vm start NAME [OPTIONS]\n"
               "\n"
               "Boots instance I of image NAME (VM-DIR/instances/NAME/I, created\n"
               "copy-on-write over the image on its first start and kept across stops) in\n"
               "the background and waits for the ready marker (sshd is up). Prints the\n"
               "acceleration and the ssh port.\n"
               "\n"
               "  --instance I          the instance (default 'default')\n"
               "  --mem MB              guest memory (default 1024)\n"
               "  --cpus N              guest CPUs (default 1)\n"
               "  --forward HOST:GUEST  forward TCP port HOST on 127.0.0.1 to GUEST; the\n"
               "                        first forward to guest port 22 is the ssh port\n"
               "                        (default: a free one); repeatable\n"
               "  --snapshot S          restore snapshot S first\n"
               "  --timeout S           wait at most S seconds for the marker (default 300,\n"
               "                        times the load per CPU when it is above 1, at most\n"
               "                        3600)\n"
               "  --seed FILE           attach FILE, a NoCloud seed (labelled cidata), read-only\n"
               "  --drive FILE[,ro]     attach FILE as a disk (raw or qcow2), writable unless\n"
               "                        ,ro; /dev/vdc, /dev/vdd... in order (repeatable)\n"
               "  --vm-dir DIR          the vm dir\n"
               "\n"
               "Exit status: 0 ready; 75 the instance already runs; 1 failure (the last\n"
               "console lines are shown when the marker never came).\n");
}

static int snapshot_apply(const struct instance *i, const char *op, const char *snap);

/* Takes the instance's lock (QEMU inherits it and holds it while it runs).
 * 0, or the exit status after saying why not: 75 when it runs. */
static int instance_lock(const struct instance *i, const char *who, const char *name,
                         const char *inst, int *ret_fd)
{
        struct lock_holder h = {};
        int r;

        r = lock_acquire_at(AT_FDCWD, i->lock, who, LOCK_NONBLOCK, ret_fd, &h);
        if (r == -EWOULDBLOCK) {
                struct inst_state s = {};
                (void)state_load(i, &s);
                json_decref(s.forwards);
                log_error("instance '%s' of '%s' is running (pid %d); stop it first (strata vm "
                          "stop %s)",
                          inst, name, (int)(s.pid ? s.pid : h.pid), name);
                return EXIT_BUSY;
        }
        if (r < 0) {
                log_error_errno(r, "cannot lock '%s': %m", i->lock);
                return EXIT_FAILURE_;
        }
        return 0;
}

/* The ssh port (the first --forward to guest port 22, else a free one);
 * the other forwards go into b. Each host port must be free. */
static int start_ports(const struct args *a, struct vm_boot *b, uint16_t *ret_ssh)
{
        uint16_t ssh_port = 0;
        int r;

        for (size_t k = 0; k < a->n_forwards; k++) {
                if (!vm_port_free(a->fwd_host[k]))
                        return log_error_errno(EADDRINUSE,
                                               "port %u on 127.0.0.1 is in use (--forward %u:%u)",
                                               a->fwd_host[k], a->fwd_host[k], a->fwd_guest[k]);
                if (a->fwd_guest[k] == 22 && !ssh_port)
                        ssh_port = a->fwd_host[k];
                else {
                        b->fwd_host[b->n_forwards] = a->fwd_host[k];
                        b->fwd_guest[b->n_forwards++] = a->fwd_guest[k];
                }
        }
        if (!ssh_port && (r = vm_free_port(&ssh_port)) < 0)
                return log_error_errno(r, "cannot find a free TCP port on 127.0.0.1: %m");
        *ret_ssh = ssh_port;
        return 0;
}

/* Starts QEMU daemonized, holding lock_fd; its first process exits once
 * the guest runs, and the pid file names the one that stays. */
static int start_spawn(const struct vm_boot *b, const struct instance *i, const char *name,
                       int lock_fd, pid_t *ret_pid)
{
        _cleanup_free_ char *pidtext = NULL;
        pid_t spawned;
        int ws = -1, r;

        r = boot_spawn(b, i->log, lock_fd, false, &spawned);
        if (r < 0)
                return r;
        while (waitpid(spawned, &ws, 0) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0 ||
            read_file_at(AT_FDCWD, i->pidfile, 64, &pidtext, NULL) < 0) {
                log_error("cannot start the guest of '%s' (qemu exited with status %d)", name,
                          WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws));
                print_qemu_log(i->log);
                instance_cleanup_runtime(i);
                return -EIO;
        }
        *ret_pid = (pid_t)strtol(pidtext, NULL, 10);
        return 0;
}

/* state.json of the running instance (what status prints). */
static int start_record(const struct args *a, const struct instance *i, pid_t pid,
                        uint16_t ssh_port, enum vm_accel accel)
{
        json_t *fw = json_array(), *st;
        int r;

        for (size_t k = 0; k < a->n_forwards; k++)
                json_array_append_new(
                    fw, json_pack("{s:i, s:i}", "host", a->fwd_host[k], "guest", a->fwd_guest[k]));
        st =
            json_pack("{s:i, s:i, s:s, s:I, s:o, s:i, s:i}", "pid", (int)pid, "ssh_port", ssh_port,
                      "accel", vm_accel_to_string(accel), "started", (json_int_t)time(NULL),
                      "forwards", fw, "mem", a->mem ? a->mem : 1024, "cpus", a->cpus ? a->cpus : 1);
        r = st ? json_save_at(AT_FDCWD, i->state, st, 0644) : -ENOMEM;
        json_decref(st);
        if (r < 0) {
                log_error_errno(r, "cannot write '%s': %m", i->state);
                vm_kill(pid);
                instance_cleanup_runtime(i);
        }
        return r;
}

/* The 1-minute load average, or -1 when /proc/loadavg cannot be read. */
static double load_average(void)
{
        _cleanup_free_ char *text = NULL;
        char *end;
        double v;

        if (read_file_at(AT_FDCWD, "/proc/loadavg", 4096, &text, NULL) < 0)
                return -1;
        v = strtod(text, &end);
        return end == text ? -1 : v;
}

/* Waits for the ready marker; kills the guest when it does not come. The
 * default wait stretches with the load (vm_ready_timeout), looked at
 * again every few seconds while it lasts: the longest one seen counts. */
static int start_wait(const struct args *a, const char *name, const struct instance *i, pid_t pid,
                      uint16_t ssh_port)
{
        struct vm_watch w = {.pid = pid, .console = i->console, .out_fd = -1, .err_fd = -1};
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        int64_t start = vm_now_usec(), timeout = a->timeout, end;
        bool dflt = streq(a->c.instance, INSTANCE_DEFAULT);
        double load = 0;
        int ev;

        for (;;) {
                if (!a->timeout) {
                        double l = load_average();
                        int64_t t =
                            vm_ready_timeout(READY_TIMEOUT_DEFAULT, l, cpus, READY_TIMEOUT_MAX);
                        if (t > timeout) {
                                timeout = t;
                                load = l;
                        }
                }
                end = start + timeout * 1000000;
                ev = vm_watch_run(&w, VM_WAIT_READY,
                                  a->timeout ? end : MIN(end, vm_now_usec() + READY_RECHECK_USEC),
                                  &arg_stop);
                if (ev != VM_EVENT_TIMEOUT || vm_now_usec() >= end)
                        break;
        }
        if (ev == VM_EVENT_READY) {
                printf("%s instance '%s' is ready: pid %d, ssh port %u (strata vm ssh %s%s%s)\n",
                       name, a->c.instance, (int)pid, ssh_port, name, dflt ? "" : " --instance ",
                       dflt ? "" : a->c.instance);
                return EXIT_OK;
        }
        if (ev == VM_EVENT_TIMEOUT) {
                _cleanup_free_ char *why = NULL;
                int n = a->timeout ? asprintf(&why,
                                              "timeout: no ready marker in %" PRId64
                                              " s (--timeout); the guest was killed",
                                              timeout)
                                   : asprintf(&why,
                                              "timeout: no ready marker in %" PRId64
                                              " s (the default for a load of %.1f on %ld "
                                              "CPUs; --timeout to change it); the guest was "
                                              "killed",
                                              timeout, load, cpus);
                if (n < 0)
                        why = NULL;
                report_event(ev, i, NULL, why ? why : "timeout: no ready marker");
        } else
                report_event(ev, i, "the guest stopped before it was ready", NULL);
        if (pid_is_instance(pid, i))
                vm_kill(pid);
        (void)vm_pid_wait_gone(pid, 5000);
        instance_cleanup_runtime(i);
        (void)unlink(i->state);
        return EXIT_FAILURE_;
}

static int vm_start(int argc, char **argv)
{
        _cleanup_(args_done) struct args a = {};
        _cleanup_(vm_image_done) struct vm_image img = {};
        _cleanup_(instance_done) struct instance i = {};
        _cleanup_free_ char *dir = NULL, *host = NULL, *what = NULL;
        _cleanup_close_ int lock_fd = -1;
        struct vm_boot b = {};
        enum vm_accel accel;
        const char *name;
        uint16_t ssh_port = 0;
        pid_t pid = 0;
        int r;

        PARSE(help_start, ARG_INSTANCE, ARG_MEM, ARG_CPUS, ARG_FORWARD, ARG_SNAPSHOT, ARG_TIMEOUT,
              ARG_SEED, ARG_DRIVE);
        if (want_name(&a, "vm start", 0, &name) < 0)
                return EXIT_USAGE;
        if (drives_open(&a) < 0 || boot_load_image(a.c.vm_dir, name, false, &img) < 0)
                return EXIT_FAILURE_;
        if (instance_dir(a.c.vm_dir, name, a.c.instance, &dir) < 0 || instance_paths(dir, &i) < 0 ||
            asprintf(&host, "strata-vm-%s-%s", name, a.c.instance) < 0 ||
            asprintf(&what, "%s instance '%s'", name, a.c.instance) < 0)
                return log_oom(), EXIT_SOFTWARE;
        r = mkdir_p_at(AT_FDCWD, dir, 0755);
        if (r < 0) {
                log_error_errno(r, "cannot create '%s': %m", dir);
                return EXIT_FAILURE_;
        }
        r = instance_lock(&i, "strata vm start", name, a.c.instance, &lock_fd);
        if (r != 0)
                return r;
        catch_signals();
        {
                _cleanup_free_ char *error = NULL;
                r = vm_instance_create_disks(&img, dir, false, &error);
                if (r < 0) {
                        log_error("cannot create the instance's disks: %s", error);
                        return EXIT_FAILURE_;
                }
        }
        if ((a.snapshot && snapshot_apply(&i, "-a", a.snapshot) < 0) ||
            start_ports(&a, &b, &ssh_port) < 0 || boot_accel(a.c.vm_dir, &img, what, &accel) < 0 ||
            write_ssh_config(&i, &img, a.c.vm_dir, host, ssh_port) < 0)
                return EXIT_FAILURE_;

        instance_cleanup_runtime(&i);
        (void)unlink(i.state);
        (void)write_file_atomic_at(AT_FDCWD, i.console, "", 0, 0644);
        (void)write_file_atomic_at(AT_FDCWD, i.log, "", 0, 0644);
        boot_init(&b, &img, &i, &a, accel, ssh_port);
        b.pidfile = i.pidfile;
        b.daemonize = true;
        r = start_spawn(&b, &i, name, lock_fd, &pid);
        if (r < 0)
                return r == -ENOMEM ? EXIT_SOFTWARE : EXIT_FAILURE_;
        lock_fd = safe_close(lock_fd);
        if (start_record(&a, &i, pid, ssh_port, accel) < 0)
                return EXIT_FAILURE_;
        return start_wait(&a, name, &i, pid, ssh_port);
}

/* Stops a running instance: ACPI power-down, then QMP quit and SIGKILL
 * after grace seconds. Returns 0 when it is down. */
static int instance_stop(const struct instance *i, unsigned grace, bool *ret_forced)
{
        struct inst_state s = {};
        int r;

        *ret_forced = false;
        if (!instance_running(i)) {
                instance_cleanup_runtime(i);
                return 0;
        }
        r = state_load(i, &s);
        json_decref(s.forwards);
        if (r < 0 || !pid_is_instance(s.pid, i)) {
                /* A `vm start` killed before it wrote state.json: QEMU's
                 * own pid file names it. */
                _cleanup_free_ char *text = NULL;
                if (read_file_at(AT_FDCWD, i->pidfile, 64, &text, NULL) == 0)
                        s.pid = (pid_t)strtol(text, NULL, 10);
                if (!pid_is_instance(s.pid, i))
                        return log_error_errno(r < 0 ? r : -ESRCH,
                                               "the instance in '%s' runs but neither its "
                                               "state.json nor qemu.pid names its qemu; not "
                                               "stopping it",
                                               i->dir);
        }
        if (grace > 0) {
                r = vm_qmp_execute(i->qmp, "system_powerdown", 5000);
                if (r < 0)
                        log_warning_errno(r, "ACPI power-down through '%s' failed: %m", i->qmp);
                else if (vm_pid_wait_gone(s.pid, (int64_t)grace * 1000))
                        goto gone;
        }
        *ret_forced = true;
        (void)vm_qmp_execute(i->qmp, "quit", 2000);
        if (!vm_pid_wait_gone(s.pid, 3000)) {
                if (pid_is_instance(s.pid, i))
                        (void)kill(s.pid, SIGKILL);
                if (!vm_pid_wait_gone(s.pid, 5000))
                        return log_error_errno(ETIMEDOUT, "qemu (pid %d) does not go away",
                                               (int)s.pid);
        }
gone:
        instance_cleanup_runtime(i);
        return 0;
}

static int open_instance(struct args *a, const char *what, size_t n_more, const char **ret_name,
                         struct instance *ret)
{
        _cleanup_free_ char *dir = NULL;

        if (want_name(a, what, n_more, ret_name) < 0)
                return -EINVAL;
        if (instance_dir(a->c.vm_dir, *ret_name, a->c.instance, &dir) < 0 ||
            instance_paths(dir, ret) < 0)
                return log_oom();
        return 0;
}

static void help_stop(void)
{
        printf("Usage: strata vm stop NAME [--instance I] [--grace S]\n"
               "\n"
               "Powers the instance down (ACPI through its QMP socket) and kills it when it\n"
               "is still there after S seconds (default 30; 0 kills at once). Its disks\n"
               "stay. Stopping a stopped instance is not an error.\n");
}

static int vm_stop(int argc, char **argv)
{
        struct args a = {.grace = STOP_GRACE_DEFAULT};
        _cleanup_(instance_done) struct instance i = {};
        const char *name;
        bool forced;

        PARSE(help_stop, ARG_INSTANCE, ARG_GRACE);
        if (open_instance(&a, "vm stop", 0, &name, &i) < 0)
                return EXIT_USAGE;
        if (access(i.dir, F_OK) < 0) {
                log_error("no instance '%s' of '%s' in '%s'", a.c.instance, name, a.c.vm_dir);
                return EXIT_FAILURE_;
        }
        if (!instance_running(&i)) {
                printf("%s instance '%s' is not running\n", name, a.c.instance);
                return EXIT_OK;
        }
        if (instance_stop(&i, a.grace, &forced) < 0)
                return EXIT_FAILURE_;
        printf("%s instance '%s' stopped%s\n", name, a.c.instance,
               forced ? " (killed after the grace period)" : "");
        return EXIT_OK;
}

static json_t *instance_status(const char *vm_dir, const char *name, const char *inst)
{
        _cleanup_(instance_done) struct instance i = {};
        _cleanup_free_ char *dir = NULL;
        struct inst_state s = {};
        bool running;
        json_t *j;

        if (instance_dir(vm_dir, name, inst, &dir) < 0 || instance_paths(dir, &i) < 0)
                return NULL;
        running = instance_running(&i);
        if (running)
                (void)state_load(&i, &s);
        j = json_pack("{s:s, s:s, s:s, s:s}", "image", name, "instance", inst, "state",
                      running ? "running" : "stopped", "dir", dir);
        if (j && running) {
                json_object_set_new(j, "pid", json_integer(s.pid));
                json_object_set_new(j, "accel", json_string(s.accel));
                json_object_set_new(j, "ssh_port", json_integer(s.ssh_port));
                json_object_set_new(j, "forwards", s.forwards ? s.forwards : json_array());
                json_object_set_new(j, "uptime", json_integer(time(NULL) - s.started));
        } else
                json_decref(s.forwards);
        return j;
}

static void help_status(void)
{
        printf("Usage: strata vm status [NAME] [--instance I] [--json]\n"
               "\n"
               "The instances (of NAME, or all): state (running or stopped), and for a\n"
               "running one its qemu pid, acceleration, ssh port, forwards and uptime in\n"
               "seconds. --json prints an array of objects with those keys.\n");
}

static int vm_status(int argc, char **argv)
{
        struct args a = {};
        _cleanup_free_ char *top = NULL;
        json_t *all;
        int status = EXIT_OK;

        PARSE(help_status, ARG_INSTANCE, ARG_JSON);
        if (a.n_pos > 1 || (a.n_pos == 1 && !vm_name_valid(a.pos[0]))) {
                log_error("vm status: expected at most one valid NAME; see --help");
                return EXIT_USAGE;
        }
        if (asprintf(&top, "%s/instances", a.c.vm_dir) < 0)
                return log_oom(), EXIT_SOFTWARE;
        all = json_array();
        {
                struct dirent **names = NULL;
                int n = scandir(top, &names, NULL, alphasort);
                for (int k = 0; k < n; k++) {
                        const char *nm = names[k]->d_name;
                        if (vm_name_valid(nm) && (a.n_pos == 0 || streq(nm, a.pos[0]))) {
                                _cleanup_free_ char *sub = NULL;
                                struct dirent **insts = NULL;
                                int m;
                                if (asprintf(&sub, "%s/%s", top, nm) < 0)
                                        m = -1;
                                else
                                        m = scandir(sub, &insts, NULL, alphasort);
                                for (int q = 0; q < m; q++) {
                                        if (vm_name_valid(insts[q]->d_name)) {
                                                json_t *o = instance_status(a.c.vm_dir, nm,
                                                                            insts[q]->d_name);
                                                if (o)
                                                        json_array_append_new(all, o);
                                        }
                                        free(insts[q]);
                                }
                                free(insts);
                        }
                        free(names[k]);
                }
                free(names);
        }
        if (a.c.json) {
                char *s = json_dumps(all, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                if (s)
                        printf("%s\n", s);
                free(s);
        } else {
                size_t k;
                json_t *o;
                if (json_array_size(all) == 0)
                        printf("no instances in '%s'\n", a.c.vm_dir);
                json_array_foreach(all, k, o)
                {
                        const char *state = json_string_value(json_object_get(o, "state"));
                        printf("%s/%s: %s", json_string_value(json_object_get(o, "image")),
                               json_string_value(json_object_get(o, "instance")), state);
                        if (streq(state, "running"))
                                printf(" (pid %" JSON_INTEGER_FORMAT
                                       ", %s, ssh port %" JSON_INTEGER_FORMAT
                                       ", up %" JSON_INTEGER_FORMAT "s)",
                                       json_integer_value(json_object_get(o, "pid")),
                                       json_string_value(json_object_get(o, "accel")),
                                       json_integer_value(json_object_get(o, "ssh_port")),
                                       json_integer_value(json_object_get(o, "uptime")));
                        printf("\n");
                }
        }
        json_decref(all);
        return status;
}

static void help_ssh(void)
{
        printf("Usage: strata vm ssh NAME [--instance I] [-- CMD...]\n"
               "       strata vm ssh-config NAME [--instance I]\n"
               "\n"
               "ssh as root into a running instance: the lab's key, host key checking\n"
               "against the key recorded at image build, the instance's forwarded port.\n"
               "CMD's words are quoted for the guest's shell. Exit status: ssh's (CMD's).\n"
               "ssh-config prints the path of an ssh_config file whose Host is\n"
               "strata-vm-NAME-I, for scp -F FILE or rsync -e 'ssh -F FILE'.\n");
}

static int running_instance(struct args *a, const char *what, size_t n_more, const char **ret_name,
                            struct instance *ret, char **ret_host)
{
        if (open_instance(a, what, n_more, ret_name, ret) < 0)
                return EXIT_USAGE;
        if (!instance_running(ret) || access(ret->ssh_config, R_OK) < 0) {
                log_error("instance '%s' of '%s' is not running (strata vm start %s)",
                          a->c.instance, *ret_name, *ret_name);
                return EXIT_FAILURE_;
        }
        if (asprintf(ret_host, "strata-vm-%s-%s", *ret_name, a->c.instance) < 0)
                return log_oom(), EXIT_SOFTWARE;
        return 0;
}

static int vm_ssh(int argc, char **argv)
{
        struct args a = {};
        _cleanup_(instance_done) struct instance i = {};
        _cleanup_free_ char *host = NULL, *quoted = NULL;
        const char *name;
        int r;

        PARSE(help_ssh, ARG_INSTANCE);
        r = running_instance(&a, "vm ssh", 0, &name, &i, &host);
        if (r != 0)
                return r;
        if (streq(argv[0], "ssh-config")) {
                printf("%s\n", i.ssh_config);
                return EXIT_OK;
        }
        if (a.cmd && a.cmd[0] && vm_shell_quote(a.cmd, &quoted) < 0)
                return log_oom(), EXIT_SOFTWARE;
        fflush(stdout);
        if (quoted)
                execlp("ssh", "ssh", "-F", i.ssh_config, host, quoted, (char *)NULL);
        else
                execlp("ssh", "ssh", "-F", i.ssh_config, host, (char *)NULL);
        log_error_errno(errno, "cannot execute ssh: %m (install openssh-client)");
        return EXIT_FAILURE_;
}

static void help_sync(void)
{
        printf("Usage: strata vm sync NAME DIR [--instance I] [--dest PATH]\n"
               "\n"
               "rsync -a --delete DIR's contents to PATH in a running instance (default\n"
               "" VM_GUEST_SYNC_DIR "), over ssh; .git and build dirs (build*/, builddir/ at the\n"
               "top) are left out.\n");
}

static int vm_sync(int argc, char **argv)
{
        struct args a = {};
        _cleanup_(instance_done) struct instance i = {};
        _cleanup_free_ char *host = NULL, *mk = NULL, *q = NULL;
        const char *name, *dest;
        int r;

        PARSE(help_sync, ARG_INSTANCE, ARG_DEST);
        r = running_instance(&a, "vm sync", 1, &name, &i, &host);
        if (r != 0)
                return r;
        dest = a.dest ? a.dest : VM_GUEST_SYNC_DIR;
        if (dest[0] != '/') {
                log_error("--dest '%s' must be an absolute path", dest);
                return EXIT_USAGE;
        }
        if (access(a.pos[1], R_OK | X_OK) < 0) {
                log_error_errno(errno, "cannot read '%s': %m", a.pos[1]);
                return EXIT_FAILURE_;
        }
        {
                char *words[] = {(char *)"mkdir", (char *)"-p", (char *)dest, NULL};
                if (vm_shell_quote(words, &q) < 0)
                        return log_oom(), EXIT_SOFTWARE;
        }
        if (ssh_run(&i, host, q) < 0 || rsync_to(&i, host, a.pos[1], dest) < 0)
                return EXIT_FAILURE_;
        printf("synced '%s' to %s:%s\n", a.pos[1], name, dest);
        (void)mk;
        return EXIT_OK;
}

static int snapshot_apply(const struct instance *i, const char *op, const char *snap)
{
        const char *disks[] = {i->root, i->data};

        for (size_t k = 0; k < ELEMENTSOF(disks); k++) {
                _cleanup_free_ char *error = NULL;
                const char *argv[] = {"qemu-img", "snapshot", op, snap, disks[k], NULL};
                int r = vm_run_tool(argv, NULL, &error);
                if (r < 0)
                        return log_error_errno(r, "%s", error);
        }
        return 0;
}

/* Snapshot names of a disk, from qemu-img snapshot -l's table. */
static int snapshot_names(const char *disk, char ***ret)
{
        /* -U: a running instance's QEMU holds the image's write lock. */
        const char *argv[] = {"qemu-img", "snapshot", "-l", "-U", disk, NULL};
        struct exec_request req = {.argv = argv};
        struct exec_result res = {};
        _cleanup_strv_ char **l = NULL;
        char *save = NULL;
        int r;

        r = executor_run(executor_real(), &req, &res);
        if (r < 0)
                return r;
        if (res.status != 0) {
                exec_result_done(&res);
                return -EIO;
        }
        for (char *line = strtok_r(res.out, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                char id[64], tag[256];
                if (sscanf(line, "%63s %255s", id, tag) == 2 && id[0] >= '0' && id[0] <= '9' &&
                    (r = strv_extend(&l, tag)) < 0)
                        break;
        }
        exec_result_done(&res);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

static void help_snapshot(void)
{
        printf("Usage: strata vm snapshot NAME S [--instance I]\n"
               "       strata vm snapshot --list NAME [--instance I] [--json]\n"
               "       strata vm restore NAME S [--instance I]\n"
               "\n"
               "Named snapshots of a stopped instance's two disks (qemu-img snapshot, in\n"
               "the qcow2 files themselves). restore returns both disks to S: what was\n"
               "written after S is gone. Exit status: 75 when the instance runs (stop it\n"
               "first), 1 when S exists (snapshot) or does not (restore).\n");
}

static int vm_snapshot(int argc, char **argv)
{
        struct args a = {};
        _cleanup_(instance_done) struct instance i = {};
        _cleanup_strv_ char **names = NULL;
        const char *name;
        bool restore = streq(argv[0], "restore");
        int r;

        PARSE(help_snapshot, ARG_INSTANCE, ARG_LIST, ARG_JSON);
        if (a.list && restore) {
                log_error("restore does not take --list");
                return EXIT_USAGE;
        }
        if (open_instance(&a, restore ? "vm restore" : "vm snapshot", a.list ? 0 : 1, &name, &i) <
            0)
                return EXIT_USAGE;
        if (!a.list && !vm_name_valid(a.pos[1])) {
                log_error("invalid snapshot name '%s'", a.pos[1]);
                return EXIT_USAGE;
        }
        if (access(i.root, R_OK) < 0) {
                log_error("no instance '%s' of '%s' in '%s' (strata vm start %s)", a.c.instance,
                          name, a.c.vm_dir, name);
                return EXIT_FAILURE_;
        }
        r = snapshot_names(i.root, &names);
        if (r < 0) {
                log_error_errno(r, "cannot list the snapshots of '%s': %m", i.root);
                return EXIT_FAILURE_;
        }
        if (a.list) {
                if (a.c.json) {
                        printf("[");
                        for (size_t k = 0; names && names[k]; k++)
                                printf("%s\"%s\"", k ? ", " : "", names[k]);
                        printf("]\n");
                } else
                        for (size_t k = 0; names && names[k]; k++)
                                printf("%s\n", names[k]);
                return EXIT_OK;
        }
        {
                _cleanup_close_ int fd = -1;
                r = instance_lock(&i, "strata vm snapshot", name, a.c.instance, &fd);
                if (r != 0)
                        return r;
                if (!restore && strv_contains(names, a.pos[1])) {
                        log_error("instance '%s' of '%s' already has a snapshot '%s'", a.c.instance,
                                  name, a.pos[1]);
                        return EXIT_FAILURE_;
                }
                if (restore && !strv_contains(names, a.pos[1])) {
                        log_error("instance '%s' of '%s' has no snapshot '%s' (strata vm "
                                  "snapshot --list %s)",
                                  a.c.instance, name, a.pos[1], name);
                        return EXIT_FAILURE_;
                }
                if (snapshot_apply(&i, restore ? "-a" : "-c", a.pos[1]) < 0)
                        return EXIT_FAILURE_;
        }
        printf("%s instance '%s': %s '%s'\n", name, a.c.instance, restore ? "restored" : "snapshot",
               a.pos[1]);
        return EXIT_OK;
}

static void help_destroy(void)
{
        printf("Usage: strata vm destroy NAME [--instance I] [--image] [--yes]\n"
               "\n"
               "Removes the instance (killing it when it runs) with its disks and\n"
               "snapshots; with --image also the base image NAME, when it has no other\n"
               "instance. Asks on a terminal unless --yes; refuses without a terminal.\n");
}

static int vm_destroy(int argc, char **argv)
{
        struct args a = {};
        _cleanup_(instance_done) struct instance i = {};
        _cleanup_free_ char *parent = NULL, *image = NULL;
        const char *name;
        bool forced;
        int r;

        PARSE(help_destroy, ARG_INSTANCE, ARG_IMAGE, ARG_YES);
        if (open_instance(&a, "vm destroy", 0, &name, &i) < 0)
                return EXIT_USAGE;
        if (!a.yes) {
                char answer[16] = "";
                if (!isatty(STDIN_FILENO)) {
                        log_error("vm destroy: refusing without --yes (no terminal to ask)");
                        return EXIT_USAGE;
                }
                fprintf(stderr, "destroy instance '%s' of '%s'%s? [y/N] ", a.c.instance, name,
                        a.image ? " and the image" : "");
                if (!fgets(answer, sizeof(answer), stdin) || (answer[0] != 'y' && answer[0] != 'Y'))
                        return EXIT_FAILURE_;
        }
        if (access(i.dir, F_OK) == 0) {
                if (instance_stop(&i, 0, &forced) < 0)
                        return EXIT_FAILURE_;
                r = rm_rf_at(AT_FDCWD, i.dir, RM_ROOT | RM_MISSING_OK);
                if (r < 0) {
                        log_error_errno(r, "cannot remove '%s': %m", i.dir);
                        return EXIT_FAILURE_;
                }
                printf("%s instance '%s' destroyed\n", name, a.c.instance);
        } else if (!a.image) {
                log_error("no instance '%s' of '%s' in '%s'", a.c.instance, name, a.c.vm_dir);
                return EXIT_FAILURE_;
        }
        if (asprintf(&parent, "%s/instances/%s", a.c.vm_dir, name) < 0 ||
            asprintf(&image, "%s/images/%s", a.c.vm_dir, name) < 0)
                return log_oom(), EXIT_SOFTWARE;
        (void)rmdir(parent);
        if (a.image) {
                if (access(parent, F_OK) == 0) {
                        log_error("image '%s' has other instances in '%s'; destroy them first",
                                  name, parent);
                        return EXIT_BUSY;
                }
                r = rm_rf_at(AT_FDCWD, image, RM_ROOT | RM_MISSING_OK);
                if (r < 0) {
                        log_error_errno(r, "cannot remove '%s': %m", image);
                        return EXIT_FAILURE_;
                }
                printf("image '%s' destroyed\n", name);
        }
        return EXIT_OK;
}

static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
} vm_commands[] = {
    {"image", vm_image},      {"run", vm_run},         {"start", vm_start},
    {"stop", vm_stop},        {"status", vm_status},   {"ssh", vm_ssh},
    {"ssh-config", vm_ssh},   {"sync", vm_sync},       {"snapshot", vm_snapshot},
    {"restore", vm_snapshot}, {"destroy", vm_destroy}, {"accel", vm_accel},
};

int cmd_vm(int argc, char **argv)
{
        /* "strata vm --vm-dir DIR COMMAND ...": the same as the command's own
         * --vm-dir (through the environment its commands read). */
        while (argc >= 2 && startswith(argv[1], "--vm-dir")) {
                const char *v = startswith(argv[1], "--vm-dir=");
                int used = 1;

                if (!v && streq(argv[1], "--vm-dir") && argc >= 3) {
                        v = argv[2];
                        used = 2;
                }
                if (!v || !*v) {
                        log_error("--vm-dir needs a directory");
                        return EXIT_USAGE;
                }
                if (setenv("STRATA_VM_DIR", v, 1) < 0)
                        return log_oom(), EXIT_SOFTWARE;
                argv[used] = argv[0];
                argc -= used;
                argv += used;
        }
        if (argc < 2) {
                help_vm();
                return EXIT_USAGE;
        }
        if (streq(argv[1], "--help") || streq(argv[1], "-h") || streq(argv[1], "help")) {
                help_vm();
                return EXIT_OK;
        }
        for (size_t k = 0; k < ELEMENTSOF(vm_commands); k++)
                if (streq(vm_commands[k].name, argv[1]))
                        return vm_commands[k].fn(argc - 1, argv + 1);
        log_error("unknown 'vm' command '%s'; run 'strata vm --help'", argv[1]);
        return EXIT_USAGE;
}
