/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * strata lab run|test: a throwaway machine in namespaces, built by the same
 * mount plan as overlayfs-init (machine_root_plan) and run by sandbox_run.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
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
#include "strata.h"

/* Exit status when the machine cannot be set up (as container runtimes do). */
#define EXIT_LAB_SETUP 125

struct lab_args {
        const char *data;
        bool ephemeral;
        const char *base;
        struct machine_bind *binds;
        size_t n_binds;
        bool net_none;
        const char *hostname;
        uint64_t timeout_usec;
        enum machine_dev dev;
        enum machine_cgroup cgroup;
        const char *services; /* lab test: dir with the s6 test-runner files */
        bool dry_run;
        bool json;
        const char *chdir; /* in the machine; NULL: "/" */
        bool force;        /* boot over a base other than the layers' */
        char **argv;
};

static void lab_args_done(struct lab_args *a)
{
        for (size_t i = 0; i < a->n_binds; i++) {
                free((char *)a->binds[i].src);
                free((char *)a->binds[i].dest);
        }
        free(a->binds);
}

static const char lab_options_help[] =
    "  --data DIR            boot the machine of data dir DIR (its layers, state and\n"
    "                        scratch upper persist)\n"
    "  --ephemeral           /data/system and /data/state on tmpfs: nothing persists\n"
    "                        (the default without --data)\n"
    "  --base DIR            the lowest layer (default /, the host's root)\n"
    "  --bind SRC:DST[:ro]   bind host path SRC on DST in the machine (repeatable)\n"
    "  --net host|none       share the host's network (default) or only a loopback\n"
    "  --hostname NAME       the machine's hostname (default strata-lab)\n"
    "  --dev minimal|host    a minimal /dev (default) or the host's\n"
    "  --cgroup none|host    /sys/fs/cgroup empty (default) or the host's cgroup\n"
    "                        trees (what podman, runc or systemd in it need)\n"
    "  --timeout SECONDS     kill the machine after SECONDS, exit 124\n"
    "  --chdir DIR           run CMD in DIR of the machine (default /)\n"
    "  --dry-run             print the mount plan and exit (with --json: as JSON)\n"
    "  --force               boot the data dir's layers over a base other than the\n"
    "                        one they were built over (system/base.json)\n";

void help_lab(void)
{
        printf("Usage: strata lab run [OPTIONS] -- CMD...\n"
               "       strata lab test [OPTIONS] -- CMD...\n"
               "       strata lab nfs start-env|test|stop-env OPTIONS (the NFS lab)\n"
               "\n"
               "A throwaway strata machine in new mount, pid, uts and ipc namespaces (and net\n"
               "with --net none), its root assembled like overlayfs-init does it: the data\n"
               "dir's layers over the base, /dev /proc /sys /run, /data and the state paths\n"
               "(and the host's cgroup trees with --cgroup host); /tmp is a fresh tmpfs.\n"
               "\n"
               "  run    runs CMD as the machine's command\n"
               "  test   boots 's6-svscan /etc/s6' with a test-runner service that runs CMD\n"
               "         once and stops the machine with CMD's status\n"
               "\n"
               "Options:\n"
               "%s"
               "  --services DIR        (test) the s6 test-runner files (default: the\n"
               "                        installed ones, or tests/image/s6 of the source)\n"
               "\n"
               "Exit status: CMD's own, 128+N when it was killed by signal N, 124 on timeout,\n"
               "125 when the machine cannot be set up, 126/127 when CMD cannot be run,\n"
               "75 when the data dir's machine is already running, 2 for a usage error.\n"
               "Afterwards the host has the same mounts as before and no process of the\n"
               "machine is left.\n",
               lab_options_help);
}

static int parse_bind(const char *spec, struct lab_args *a)
{
        _cleanup_free_ char *src = NULL, *dst = NULL;
        struct machine_bind *b;
        bool read_only;
        int r;

        r = bind_spec_parse(spec, &src, &dst, &read_only);
        if (r < 0)
                return r;
        b = reallocarray(a->binds, a->n_binds + 1, sizeof(*b));
        if (!b)
                return log_oom();
        a->binds = b;
        b[a->n_binds++] = (struct machine_bind){
            .src = TAKE_PTR(src),
            .dest = TAKE_PTR(dst),
            .read_only = read_only,
        };
        return 0;
}

static bool hostname_is_valid(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > HOST_NAME_MAX || s[0] == '-' || s[0] == '.' || s[n - 1] == '.' ||
            strstr(s, ".."))
                return false;
        return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

enum {
        ARG_DATA = 0x100,
        ARG_EPHEMERAL,
        ARG_BASE,
        ARG_BIND,
        ARG_NET,
        ARG_HOSTNAME,
        ARG_TIMEOUT,
        ARG_DEV,
        ARG_CGROUP,
        ARG_SERVICES,
        ARG_DRY_RUN,
        ARG_JSON,
        ARG_CHDIR,
        ARG_FORCE,
};

/* The value of --OPTION among two words: 0 for the first, 1 the second. */
static int parse_choice(const char *option, const char *value, const char *first,
                        const char *second)
{
        if (streq(value, first))
                return 0;
        if (streq(value, second))
                return 1;
        log_error("invalid --%s '%s': '%s' or '%s'", option, value, first, second);
        return -EINVAL;
}

static int parse_hostname(const char *value, struct lab_args *a)
{
        if (streq(value, "--")) {
                log_error("--hostname needs a NAME before '--'");
                return -EINVAL;
        }
        if (!hostname_is_valid(value)) {
                log_error("invalid --hostname '%s': 1 to 64 letters, digits, '-' and '_', in "
                          "labels separated by single dots, not starting with '-' or '.'",
                          value);
                return -EINVAL;
        }
        a->hostname = value;
        return 0;
}

/* One option of lab_parse and its value. Returns 0, 1 after --help, or
 * -EINVAL (logged). */
static int lab_parse_option(int opt, const char *arg, struct lab_args *a, bool test)
{
        int k;

        switch (opt) {
        case 'h':
                help_lab();
                return 1;
        case ARG_DATA:
                a->data = arg;
                return 0;
        case ARG_EPHEMERAL:
                a->ephemeral = true;
                return 0;
        case ARG_BASE:
                a->base = arg;
                return 0;
        case ARG_BIND:
                return parse_bind(arg, a) < 0 ? -EINVAL : 0;
        case ARG_NET:
                k = parse_choice("net", arg, "host", "none");
                a->net_none = k == 1;
                return k < 0 ? k : 0;
        case ARG_HOSTNAME:
                return parse_hostname(arg, a);
        case ARG_TIMEOUT:
                return timeout_parse(arg, &a->timeout_usec);
        case ARG_DEV:
                k = parse_choice("dev", arg, "minimal", "host");
                a->dev = k == 1 ? MACHINE_DEV_HOST : MACHINE_DEV_MINIMAL;
                return k < 0 ? k : 0;
        case ARG_CGROUP:
                k = parse_choice("cgroup", arg, "none", "host");
                a->cgroup = k == 1 ? MACHINE_CGROUP_HOST : MACHINE_CGROUP_NONE;
                return k < 0 ? k : 0;
        case ARG_SERVICES:
                if (!test) {
                        log_error("--services is an option of 'strata lab test'");
                        return -EINVAL;
                }
                a->services = arg;
                return 0;
        case ARG_DRY_RUN:
                a->dry_run = true;
                return 0;
        case ARG_JSON:
                a->json = true;
                return 0;
        case ARG_CHDIR:
                if (arg[0] != '/') {
                        log_error("invalid --chdir '%s': an absolute path in the machine", arg);
                        return -EINVAL;
                }
                a->chdir = arg;
                return 0;
        case ARG_FORCE:
                a->force = true;
                return 0;
        default:
                return -EINVAL;
        }
}

static int lab_parse(int argc, char **argv, struct lab_args *a, bool test)
{
        static const struct option options[] = {
            {"help", no_argument, NULL, 'h'},
            {"data", required_argument, NULL, ARG_DATA},
            {"ephemeral", no_argument, NULL, ARG_EPHEMERAL},
            {"base", required_argument, NULL, ARG_BASE},
            {"bind", required_argument, NULL, ARG_BIND},
            {"net", required_argument, NULL, ARG_NET},
            {"hostname", required_argument, NULL, ARG_HOSTNAME},
            {"timeout", required_argument, NULL, ARG_TIMEOUT},
            {"dev", required_argument, NULL, ARG_DEV},
            {"cgroup", required_argument, NULL, ARG_CGROUP},
            {"services", required_argument, NULL, ARG_SERVICES},
            {"dry-run", no_argument, NULL, ARG_DRY_RUN},
            {"json", no_argument, NULL, ARG_JSON},
            {"chdir", required_argument, NULL, ARG_CHDIR},
            {"force", no_argument, NULL, ARG_FORCE},
            {},
        };
        int opt, r;

        a->hostname = "strata-lab";
        a->dev = MACHINE_DEV_MINIMAL;
        a->cgroup = MACHINE_CGROUP_NONE;

        /* '+': CMD's own options are not ours. */
        while ((opt = getopt_long(argc, argv, "+h", options, NULL)) >= 0) {
                r = lab_parse_option(opt, optarg, a, test);
                if (r != 0)
                        return r;
        }
        if (a->data && a->ephemeral) {
                log_error("--data and --ephemeral exclude each other");
                return -EINVAL;
        }
        if (!a->data)
                a->ephemeral = true;
        if (optind >= argc && !a->dry_run) {
                log_error("no command given: strata lab %s [OPTIONS] -- CMD...",
                          test ? "test" : "run");
                return -EINVAL;
        }
        a->argv = argv + optind;
        return 0;
}

static void shell_quote(FILE *f, const char *s)
{
        fputc('\'', f);
        for (; *s; s++) {
                if (*s == '\'')
                        fputs("'\\''", f);
                else
                        fputc(*s, f);
        }
        fputc('\'', f);
}

/* "exec 'a' 'b\''c'": CMD as a shell script for the test-runner service. */
static int shell_command(char **argv, const char *dir, char **ret)
{
        size_t cap = 0;
        char *s = NULL;
        FILE *f = open_memstream(&s, &cap);

        if (!f)
                return -ENOMEM;
        fputs("#!/bin/sh\n# written by strata lab test: the command to run once\n", f);
        if (dir) {
                fputs("cd ", f);
                shell_quote(f, dir);
                fputs(" || exit 127\n", f);
        }
        fputs("exec", f);
        for (char **a = argv; *a; a++) {
                fputc(' ', f);
                shell_quote(f, *a);
        }
        fputc('\n', f);
        if (fclose(f) != 0) {
                free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

static const char *services_dir(const struct lab_args *a)
{
        const char *e;

        if (a->services)
                return a->services;
        e = getenv("STRATA_S6_DIR");
        if (e && *e)
                return e;
        if (access(STRATA_DATADIR "/s6/test-runner/run", R_OK) == 0)
                return STRATA_DATADIR "/s6";
        return STRATA_SOURCE_ROOT "/tests/image/s6";
}

/* The test-runner service on a throwaway overlay of the machine's /etc/s6:
 * its own services still run and nothing is written into its layers or its
 * scratch upper. The lower dirs are the etc/s6 dirs of the root's own
 * layers (not the root's /etc/s6, which would stack one overlay too deep
 * when the lab itself runs in a machine). */
static int add_test_runner(struct mount_plan *p, const struct lab_args *a,
                           const struct layer_metadata *m, const char *data_dir)
{
        static const char *const files[] = {"test-runner/run", "test-runner/finish",
                                            ".s6-svscan/finish"};
        _cleanup_strv_ char **layers = NULL, **lowers = NULL;
        _cleanup_free_ char *cmd = NULL;
        const char *dir = services_dir(a);
        size_t n = 0;
        int r;

        r = layer_metadata_lowerdirs(m, data_dir, a->base ? a->base : "/", &layers);
        if (r < 0)
                return log_error_errno(r, "cannot list the layers of '%s': %m", data_dir);
        while (layers[n])
                n++;
        lowers = calloc(n + 2, sizeof(char *));
        if (!lowers)
                return log_oom();
        if (asprintf(&lowers[0], "%s/system/upper/etc/s6", data_dir) < 0)
                return log_oom();
        for (size_t i = 0; i < n; i++)
                if (asprintf(&lowers[i + 1], "%s/etc/s6", streq(layers[i], "/") ? "" : layers[i]) <
                    0)
                        return log_oom();

        r = mount_plan_add_mkdir(p, "/run/strata-lab/s6/upper", 0755, 0);
        if (r >= 0)
                r = mount_plan_add_mkdir(p, "/run/strata-lab/s6/work", 0755, 0);
        if (r >= 0)
                r = mount_plan_add_overlay(
                    p, "/etc/s6", lowers, "/run/strata-lab/s6/upper", "/run/strata-lab/s6/work",
                    MOUNT_PLAN_UPPER_IN_ROOT | MOUNT_PLAN_LOWER_OPTIONAL | MOUNT_PLAN_CREATE_DEST);
        if (r < 0)
                return log_error_errno(r, "cannot build the test-runner plan: %m");

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *src = NULL, *dest = NULL, *data = NULL;
                size_t len;

                if (asprintf(&src, "%s/%s", dir, files[i]) < 0 ||
                    asprintf(&dest, "/etc/s6/%s", files[i]) < 0)
                        return log_oom();
                r = read_file_at(AT_FDCWD, src, 1 << 20, &data, &len);
                if (r < 0)
                        return log_error_errno(r, "cannot read the test-runner file '%s': %m", src);
                r = mount_plan_add_write_file(p, dest, data, len, 0755, 0);
                if (r < 0)
                        return log_oom();
        }

        r = shell_command(a->argv, a->chdir, &cmd);
        if (r >= 0)
                r = mount_plan_add_write_file(p, "/run/test-runner/command", cmd, strlen(cmd), 0755,
                                              0);
        if (r < 0)
                return log_oom();
        return 0;
}

/* The empty dir the ephemeral machine's tmpfs mounts sit on (inside its
 * namespace only), removed at the end. On a memory filesystem when there is
 * one: making and removing it on a disk costs more than the machine. */
#define EPHEMERAL_PREFIX "strata-lab-"

/* Removes the dirs of ephemeral machines whose strata was killed before it
 * could: the name carries the pid namespace and the pid of their strata,
 * and only those of our own pid namespace are judged (a pid means nothing
 * in another one, e.g. in a machine sharing /dev/shm). They are empty: the
 * mounts on them lived in the dead machine's namespace. */
static void sweep_stale(const char *parent, unsigned long pidns)
{
        _cleanup_closedir_ DIR *d = opendir(parent);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                const char *p = startswith(de->d_name, EPHEMERAL_PREFIX);
                unsigned long ns;
                char *end;
                long pid;

                if (!p)
                        continue;
                errno = 0;
                ns = strtoul(p, &end, 10);
                if (errno || end == p || *end != '-' || ns != pidns)
                        continue;
                p = end + 1;
                pid = strtol(p, &end, 10);
                if (errno || end == p || *end != '-' || pid <= 0 || pid > INT_MAX)
                        continue;
                if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
                        continue;
                (void)rm_rf_at(dirfd(d), de->d_name, RM_ROOT | RM_MISSING_OK);
        }
}

static int ephemeral_dir(char **ret)
{
        const char *tmpdir = getenv("TMPDIR");
        struct stat st;
        const char *parent = "/dev/shm";
        unsigned long pidns = 0;
        char *d;

        if (stat("/proc/self/ns/pid", &st) == 0)
                pidns = (unsigned long)st.st_ino;
        if (stat(parent, &st) < 0 || !S_ISDIR(st.st_mode) || access(parent, W_OK) < 0)
                parent = tmpdir && tmpdir[0] == '/' ? tmpdir : "/tmp";
        if (pidns)
                sweep_stale(parent, pidns);
        if (asprintf(&d, "%s/" EPHEMERAL_PREFIX "%lu-%d-XXXXXX", parent, pidns, (int)getpid()) < 0)
                return -ENOMEM;
        if (!mkdtemp(d)) {
                int r = -errno;
                free(d);
                return r;
        }
        *ret = d;
        return 0;
}

/* What one machine of the lab holds while it runs: its (temporary) data
 * dir, the lock of a real one, its layers and its plan. */
struct lab_machine {
        char *tmp;     /* ephemeral data dir or scratch dir, removed at the end */
        char *data;    /* the data dir, absolute */
        char *isolate; /* scratch for a base holding the data dir, or NULL */
        int lock_fd;
        struct layer_metadata m;
        struct mount_plan *plan;
};

static void lab_machine_done(struct lab_machine *lm)
{
        if (lm->tmp) {
                int r = rm_rf_at(AT_FDCWD, lm->tmp, RM_ROOT | RM_MISSING_OK);
                if (r < 0)
                        log_warning_errno(r, "cannot remove the temporary data dir '%s': %m",
                                          lm->tmp);
        }
        free(lm->tmp);
        free(lm->data);
        free(lm->isolate);
        safe_close(lm->lock_fd);
        layer_metadata_done(&lm->m);
        mount_plan_free(lm->plan);
}

/* --ephemeral: an empty dir the tmpfs mounts of the namespace sit on. */
static int lab_open_ephemeral(struct lab_machine *lm)
{
        int r = ephemeral_dir(&lm->tmp);

        if (r < 0)
                return log_error_errno(r, "cannot create a temporary data dir: %m");
        lm->data = strdup(lm->tmp);
        return lm->data ? 0 : log_oom();
}

/* Layers are tied to the base they were built over. Returns 0 (booting
 * anyway with --force), or the exit status. */
static int lab_check_base(const struct lab_args *a, const char *data, int fd)
{
        _cleanup_free_ char *berr = NULL;
        _cleanup_close_ int bfd = open(a->base ? a->base : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int r;

        r = bfd < 0 ? -errno : base_identity_check(fd, bfd, NULL, &berr);
        if (r == -EMEDIUMTYPE && !a->force) {
                log_error("cannot boot '%s': %s", data, berr);
                return EXIT_LAB_SETUP;
        }
        if (r == -EMEDIUMTYPE)
                log_warning("%s (--force: booting anyway)", berr);
        else if (r < 0) {
                log_error_errno(r, "cannot check the base of '%s': %s%m", data, berr ? berr : "");
                return EXIT_LAB_SETUP;
        }
        return 0;
}

/* --data DIR: its layout, its lock (one machine per data dir: the scratch
 * upper is not shared), its base and its layers. Returns 0 or the exit
 * status. */
static int lab_open_data_dir(const struct lab_args *a, bool test, struct lab_machine *lm)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *merr = NULL;
        struct lock_holder holder = {};
        int r;

        lm->data = realpath(a->data, NULL);
        if (!lm->data)
                return log_error_errno(errno, "cannot open the data dir '%s': %m", a->data),
                       EXIT_LAB_SETUP;
        /* Scratch space for mounting the base on its own when the data dir
         * lies inside it (see machine_options.base_scratch). */
        r = ephemeral_dir(&lm->tmp);
        if (r < 0)
                return log_error_errno(r, "cannot create a scratch dir: %m"), EXIT_LAB_SETUP;
        if (asprintf(&lm->isolate, "%s/isolate", lm->tmp) < 0) {
                lm->isolate = NULL;
                return log_oom(), EXIT_LAB_SETUP;
        }
        fd = open(lm->data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "cannot open the data dir '%s': %m", lm->data),
                       EXIT_LAB_SETUP;
        r = layerstore_ensure_layout(fd);
        if (r < 0)
                return log_error_errno(r, "cannot create the layout of the data dir '%s': %m",
                                       lm->data),
                       EXIT_LAB_SETUP;
        r = lock_acquire_at(fd, MACHINE_LOCK, test ? "strata lab test" : "strata lab run",
                            LOCK_NONBLOCK, &lm->lock_fd, &holder);
        if (r == -EWOULDBLOCK) {
                log_error("the machine of '%s' is running (pid %d, %s); try again later", lm->data,
                          (int)holder.pid, holder.purpose);
                return EXIT_TEMPFAIL;
        }
        if (r < 0)
                return log_error_errno(r, "cannot lock '%s/%s': %m", lm->data, MACHINE_LOCK),
                       EXIT_LAB_SETUP;
        r = lab_check_base(a, lm->data, fd);
        if (r != 0)
                return r;
        r = layer_metadata_load(fd, &lm->m, &merr);
        if (r < 0) {
                if (merr)
                        log_error("cannot load the metadata of '%s': %s", lm->data, merr);
                else
                        log_error_errno(r, "cannot load the metadata of '%s': %m", lm->data);
                return EXIT_LAB_SETUP;
        }
        return 0;
}

/* The machine's /etc/hostname says its hostname: a file on its /run bound
 * over the root's, so nothing is written into its layers. */
static int lab_add_hostname(struct mount_plan *plan, const char *hostname)
{
        _cleanup_free_ char *line = NULL;
        int r;

        if (asprintf(&line, "%s\n", hostname) < 0)
                return log_oom();
        r = mount_plan_add_write_file(plan, "/run/strata-lab/hostname", line, strlen(line), 0644,
                                      0);
        if (r >= 0)
                r = mount_plan_add_bind(plan, "/run/strata-lab/hostname", "/etc/hostname",
                                        MOUNT_PLAN_SRC_IN_ROOT | MOUNT_PLAN_CREATE_DEST);
        if (r < 0)
                return log_error_errno(r, "cannot build the hostname plan: %m");
        return 0;
}

/* The root of the machine as overlayfs-init builds it, then what the lab
 * adds: the test-runner service (lab test) and the hostname. */
static int lab_build_plan(const struct lab_args *a, bool test, struct lab_machine *lm)
{
        struct machine_options o = {
            .data_dir = lm->data,
            .base = a->base,
            .base_scratch = lm->isolate,
            .system_tmpfs = a->ephemeral,
            .state_tmpfs = a->ephemeral,
            .bind_data = true,
            /* A fresh /tmp, as a throwaway machine has: also what lets
             * programs in it use /tmp for overlay upper dirs (an overlay
             * root cannot be an upper). */
            .tmp_tmpfs = true,
            .dev = a->dev,
            .cgroup = a->cgroup,
            .binds = a->binds,
            .n_binds = a->n_binds,
        };
        int r;

        r = machine_root_plan(&o, &lm->m, &lm->plan);
        if (r == -E2BIG)
                return log_error_errno(r,
                                       "cannot build the root of '%s': %zu layers, an overlay "
                                       "stacks at most %d; squash them",
                                       lm->data, lm->m.n_layers, MOUNT_PLAN_OVERLAY_MAX_LOWER - 1);
        if (r < 0)
                return log_error_errno(r, "cannot build the root plan of '%s': %m", lm->data);
        if (test) {
                r = add_test_runner(lm->plan, a, &lm->m, lm->data);
                if (r < 0)
                        return r;
        }
        return lab_add_hostname(lm->plan, a->hostname);
}

/* --dry-run: the plan, described or as JSON. Returns the exit status. */
static int lab_dry_run(const struct mount_plan *plan, bool json)
{
        _cleanup_free_ char *s = NULL;
        json_t *j = NULL;

        if (!json) {
                mount_plan_describe(plan, stdout);
                return EXIT_OK;
        }
        if (mount_plan_to_json(plan, &j) >= 0) {
                s = json_dumps(j, JSON_INDENT(2));
                json_decref(j);
        }
        if (!s)
                return log_oom(), EXIT_LAB_SETUP;
        puts(s);
        return EXIT_OK;
}

/* Runs the machine: CMD, or s6-svscan for lab test. Returns the exit
 * status: CMD's, or what a setup or exec failure maps to. */
static int lab_boot(const struct lab_args *a, bool test, const struct mount_plan *plan)
{
        static char *const svscan[] = {(char *)"s6-svscan", (char *)"/etc/s6", NULL};
        _cleanup_free_ char *error = NULL;
        struct sandbox_config sc = {
            .flags = SANDBOX_UTS | SANDBOX_IPC | (a->net_none ? SANDBOX_NET : 0),
            .plan = plan,
            .hostname = a->hostname,
            .argv = test ? svscan : a->argv,
            .cwd = test ? NULL : a->chdir,
            .timeout_usec = a->timeout_usec,
        };
        int r, status = 0;

        fflush(stdout);
        r = sandbox_run(&sc, &status, &error);
        if (r < 0) {
                log_error_errno(r, "cannot %s: %m", error ? error : "run the machine");
                return error && startswith(error, "execute ")
                           ? (r == -ENOENT ? SANDBOX_EXIT_EXEC : 126)
                           : EXIT_LAB_SETUP;
        }
        return status;
}

static int lab_main(int argc, char **argv, bool test)
{
        struct lab_machine lm = {.lock_fd = -1};
        struct lab_args a = {};
        int r, ret = EXIT_LAB_SETUP;

        r = lab_parse(argc, argv, &a, test);
        if (r != 0) {
                lab_args_done(&a);
                return r > 0 ? EXIT_OK : EXIT_USAGE;
        }
        if (a.ephemeral)
                r = lab_open_ephemeral(&lm) < 0 ? EXIT_LAB_SETUP : 0;
        else
                r = lab_open_data_dir(&a, test, &lm);
        if (r != 0)
                ret = r;
        else if (lab_build_plan(&a, test, &lm) >= 0)
                ret = a.dry_run ? lab_dry_run(lm.plan, a.json) : lab_boot(&a, test, lm.plan);
        lab_machine_done(&lm);
        lab_args_done(&a);
        return ret;
}

int cmd_lab(int argc, char **argv)
{
        if (argc < 2) {
                help_lab();
                return EXIT_USAGE;
        }
        if (streq(argv[1], "-h") || streq(argv[1], "--help") || streq(argv[1], "help")) {
                help_lab();
                return EXIT_OK;
        }
        /* getopt's messages start with argv[0]: the whole command. */
        if (streq(argv[1], "run")) {
                argv[1] = (char *)"strata lab run";
                return lab_main(argc - 1, argv + 1, false);
        }
        if (streq(argv[1], "test")) {
                argv[1] = (char *)"strata lab test";
                return lab_main(argc - 1, argv + 1, true);
        }
        if (streq(argv[1], "nfs"))
                return cmd_lab_nfs(argc - 1, argv + 1);
        log_error("unknown lab command '%s': 'run', 'test' or 'nfs'", argv[1]);
        return EXIT_USAGE;
}
