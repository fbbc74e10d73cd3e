/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * strata lab nfs start-env|test|stop-env: the NFS lab's environment (the
 * strata-nfsd server in a podman container or a lab machine, the client in
 * a VM). Every setting is a required option: the defaults live in one place,
 * the top of the Makefile. This front-end checks them, makes the paths
 * absolute and execs the lab's script (tests/nfslab/nfs-lab.sh, installed
 * under the data dir), so its output streams and its exit status is ours.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "config.h"
#include "log.h"
#include "macro.h"
#include "strata.h"

enum nfs_action {
        NFS_START = 1 << 0,
        NFS_TEST = 1 << 1,
        NFS_STOP = 1 << 2,
};

enum nfs_check {
        CHECK_ANY,
        CHECK_PORT,
        CHECK_NAME,     /* an image name or tag */
        CHECK_CASES,    /* a comma-separated list of case names */
        CHECK_FILENAME, /* a file name without a slash */
        CHECK_PATH,     /* made absolute */
        CHECK_EXISTING, /* must exist; made absolute */
};

struct nfs_option {
        const char *name;
        unsigned required; /* the actions that need it */
        enum nfs_check check;
        const char *const *values; /* NULL-terminated choices, or NULL */
        const char *help;
};

static const char *const server_values[] = {"container", "lab", NULL};
static const char *const mode_values[] = {"rw", "ro", NULL};
static const char *const client_values[] = {"vm", "none", NULL};

#define ENV (NFS_START | NFS_TEST)
static const struct nfs_option nfs_options[] = {
    {"work-dir", ENV | NFS_STOP, CHECK_PATH, NULL, "the lab's state and artifacts (build/nfstest)"},
    {"nfsd", NFS_START, CHECK_EXISTING, NULL, "the strata-nfsd binary the server runs"},
    {"image", NFS_START, CHECK_NAME, NULL, "the server image's name (strata-nfsd)"},
    {"tag", NFS_START, CHECK_NAME, NULL, "the server image's tag (latest)"},
    {"port", NFS_START, CHECK_PORT, NULL, "the NFS and MOUNT port on 127.0.0.1 (4000)"},
    {"server", NFS_START, CHECK_ANY, server_values,
     "container (podman) or lab (a strata lab machine)"},
    {"export-mode", NFS_START, CHECK_ANY, mode_values, "the export is rw or ro"},
    {"client", NFS_START, CHECK_ANY, client_values, "vm (a strata vm instance) or none"},
    {"vm-dir", NFS_START, CHECK_PATH, NULL, "the VM's output dir (build/nfstest/vm)"},
    {"vm-image", NFS_START, CHECK_FILENAME, NULL, "the VM image's file name in it (vm.qcow2)"},
    {"cidata", NFS_START, CHECK_FILENAME, NULL, "the NoCloud seed's file name in it (cidata.iso)"},
    {"testcase", NFS_TEST, CHECK_CASES, NULL,
     "the runner's cases, comma-separated (open,read,write)"},
};
#define N_OPTIONS ELEMENTSOF(nfs_options)

void help_lab_nfs(void)
{
        printf("Usage: strata lab nfs start-env OPTIONS\n"
               "       strata lab nfs test OPTIONS --testcase LIST\n"
               "       strata lab nfs stop-env --work-dir DIR\n"
               "\n"
               "The NFS lab: strata-nfsd as the server (a podman container, or a strata lab\n"
               "machine), a VM's kernel NFS client running the POSIX runner's cases.\n"
               "\n"
               "  start-env  stops any environment of the work dir, starts the server and the\n"
               "             client VM (provisioned by a NoCloud seed; waits for its\n"
               "             NFSTEST_VM_READY console line)\n"
               "  test       runs the cases in the VM against the server; prints \"NFS test\n"
               "             PASSED\" or \"NFS test FAILED\" and \"N passed, N failed\"\n"
               "  stop-env   stops the server and the VM; leaves no container, qemu or instance\n"
               "\n"
               "Every option is required where the action uses it (make start-test-env, make\n"
               "nfstest and make stop-test-env pass the Makefile's defaults, shown here):\n");
        for (size_t i = 0; i < N_OPTIONS; i++)
                printf("  --%-12s %s\n", nfs_options[i].name, nfs_options[i].help);
        printf("\n"
               "Exit status: 0 success (test: every case passed), 1 failure (a case failed, the\n"
               "server or the VM could not start or is down), 2 usage error.\n");
}

static bool check_chars(const char *s, const char *extra)
{
        if (!*s)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr(extra, *p)))
                        return false;
        return true;
}

/* Checks one value; returns it (malloc'd, absolute for paths) or NULL after
 * logging why not. */
static char *nfs_option_value(const struct nfs_option *o, const char *v)
{
        if (o->values) {
                for (const char *const *c = o->values; *c; c++)
                        if (streq(*c, v))
                                return strdup(v);
                log_error("invalid --%s '%s': %s", o->name, v, o->help);
                return NULL;
        }
        switch (o->check) {
        case CHECK_PORT: {
                char *end;
                long n;

                errno = 0;
                n = strtol(v, &end, 10);
                if (errno || end == v || *end || n < 1 || n > 65535) {
                        log_error("invalid --port '%s': a TCP port, 1 to 65535", v);
                        return NULL;
                }
                return strdup(v);
        }
        case CHECK_NAME:
                if (!check_chars(v, "._-/") || v[0] == '/' || v[0] == '.' || v[0] == '-') {
                        log_error("invalid --%s '%s': lowercase letters, digits, '.', '_', "
                                  "'-' and '/'",
                                  o->name, v);
                        return NULL;
                }
                return strdup(v);
        case CHECK_CASES:
                if (!check_chars(v, "_-,") || v[0] == ',' || strstr(v, ",,")) {
                        log_error("invalid --testcase '%s': case names separated by commas "
                                  "(the runner's --list names them)",
                                  v);
                        return NULL;
                }
                return strdup(v);
        case CHECK_FILENAME:
                if (!*v || strchr(v, '/') || streq(v, ".") || streq(v, "..")) {
                        log_error("invalid --%s '%s': a file name, without '/'", o->name, v);
                        return NULL;
                }
                return strdup(v);
        case CHECK_EXISTING: {
                char *p = realpath(v, NULL);

                if (!p)
                        log_error_errno(errno, "invalid --%s '%s': %m", o->name, v);
                return p;
        }
        case CHECK_PATH: {
                _cleanup_free_ char *cwd = NULL;
                char *p;

                if (!*v) {
                        log_error("invalid --%s: an empty path", o->name);
                        return NULL;
                }
                if (v[0] == '/')
                        return strdup(v);
                cwd = getcwd(NULL, 0);
                if (!cwd) {
                        log_error_errno(errno, "cannot get the current directory: %m");
                        return NULL;
                }
                if (asprintf(&p, "%s/%s", cwd, v) < 0)
                        return NULL;
                return p;
        }
        case CHECK_ANY:
        default:
                return strdup(v);
        }
}

/* The installed copy of a lab file, or the source tree's. */
static const char *nfslab_file(const char *name, char *buf, size_t size)
{
        snprintf(buf, size, "%s/nfslab/%s", STRATA_DATADIR, name);
        if (access(buf, R_OK) == 0)
                return buf;
        snprintf(buf, size, "%s/tests/nfslab/%s", STRATA_SOURCE_ROOT, name);
        return buf;
}

int cmd_lab_nfs(int argc, char **argv)
{
        struct option longopts[N_OPTIONS + 2];
        char *values[N_OPTIONS] = {};
        char script[PATH_MAX], runner[PATH_MAX], self[PATH_MAX];
        const char *action;
        unsigned act;
        int c, ret = EXIT_USAGE;
        ssize_t n;

        if (argc < 2) {
                help_lab_nfs();
                return EXIT_USAGE;
        }
        action = argv[1];
        if (streq(action, "-h") || streq(action, "--help") || streq(action, "help")) {
                help_lab_nfs();
                return EXIT_OK;
        }
        if (streq(action, "start-env"))
                act = NFS_START;
        else if (streq(action, "test"))
                act = NFS_TEST;
        else if (streq(action, "stop-env"))
                act = NFS_STOP;
        else {
                log_error("unknown lab nfs command '%s': start-env, test or stop-env", action);
                return EXIT_USAGE;
        }

        for (size_t i = 0; i < N_OPTIONS; i++)
                longopts[i] = (struct option){nfs_options[i].name, required_argument, NULL, (int)i};
        longopts[N_OPTIONS] = (struct option){"help", no_argument, NULL, 'h'};
        longopts[N_OPTIONS + 1] = (struct option){};

        optind = 1;
        while ((c = getopt_long(argc - 1, argv + 1, "h", longopts, NULL)) != -1) {
                if (c == 'h') {
                        help_lab_nfs();
                        ret = EXIT_OK;
                        goto out;
                }
                if (c < 0 || (size_t)c >= N_OPTIONS)
                        goto out; /* getopt printed why */
                free(values[c]);
                values[c] = nfs_option_value(&nfs_options[c], optarg);
                if (!values[c])
                        goto out;
        }
        if (optind < argc - 1) {
                log_error("unexpected argument '%s'", argv[optind + 1]);
                goto out;
        }
        for (size_t i = 0; i < N_OPTIONS; i++)
                if ((nfs_options[i].required & act) && !values[i]) {
                        log_error("lab nfs %s needs --%s (%s)", action, nfs_options[i].name,
                                  nfs_options[i].help);
                        goto out;
                }

        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n < 0) {
                log_error_errno(errno, "cannot read /proc/self/exe: %m");
                ret = EXIT_FAILURE_;
                goto out;
        }
        self[n] = '\0';
        nfslab_file("nfs-lab.sh", script, sizeof(script));
        nfslab_file("posix-runner.py", runner, sizeof(runner));
        if (access(script, R_OK) < 0) {
                log_error_errno(errno, "cannot read the lab script '%s': %m", script);
                ret = EXIT_FAILURE_;
                goto out;
        }

        {
                /* sh SCRIPT ACTION --strata SELF --runner RUNNER (--NAME VALUE)... */
                char *args[6 + 2 * N_OPTIONS + 3];
                size_t k = 0;

                args[k++] = (char *)"sh";
                args[k++] = script;
                args[k++] = (char *)action;
                args[k++] = (char *)"--strata";
                args[k++] = self;
                args[k++] = (char *)"--runner";
                args[k++] = runner;
                for (size_t i = 0; i < N_OPTIONS; i++) {
                        _cleanup_free_ char *flag = NULL;

                        if (!values[i])
                                continue;
                        if (asprintf(&flag, "--%s", nfs_options[i].name) < 0) {
                                log_oom();
                                ret = EXIT_SOFTWARE;
                                goto out;
                        }
                        args[k++] = TAKE_PTR(flag);
                        args[k++] = values[i];
                }
                args[k] = NULL;
                fflush(stdout);
                execv("/bin/sh", args);
                log_error_errno(errno, "cannot execute /bin/sh '%s': %m", script);
                ret = EXIT_FAILURE_;
        }
out:
        for (size_t i = 0; i < N_OPTIONS; i++)
                free(values[i]);
        return ret;
}
