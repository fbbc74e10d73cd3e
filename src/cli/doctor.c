/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "macro.h"
#include "strata.h"

/* What strata needs from a machine, checked for real where it is cheap:
 * the overlay probe mounts one in a private mount namespace and leaves the
 * host's mount table untouched. */

enum check_status { CHECK_OK, CHECK_MISSING, CHECK_FAILED };

struct check_result {
        const char *name;
        enum check_status status;
        char detail[768];
        bool required;
};

static const char *status_name(enum check_status s)
{
        switch (s) {
        case CHECK_OK:
                return "ok";
        case CHECK_MISSING:
                return "missing";
        case CHECK_FAILED:
                return "failed";
        default:
                return "unknown";
        }
}

static bool find_in_path(const char *prog, char *ret, size_t size)
{
        const char *path = getenv("PATH");
        _cleanup_free_ char *copy = strdup(path && *path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
        char *save = NULL;

        if (!copy)
                return false;
        for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                snprintf(ret, size, "%s/%s", d, prog);
                if (access(ret, X_OK) == 0)
                        return true;
        }
        return false;
}

static void check_program(struct check_result *c, const char *prog, const char *purpose)
{
        char p[512];

        if (find_in_path(prog, p, sizeof(p))) {
                c->status = CHECK_OK;
                snprintf(c->detail, sizeof(c->detail), "%s", p);
        } else {
                c->status = CHECK_MISSING;
                snprintf(c->detail, sizeof(c->detail), "'%s' not in PATH (%s)", prog, purpose);
        }
}

static bool filesystem_known(const char *fs)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/filesystems", "re");
        char line[128];

        if (!f)
                return false;
        while (fgets(line, sizeof(line), f)) {
                char *name = strrchr(line, '\t');
                name = name ? name + 1 : line;
                name[strcspn(name, "\n")] = '\0';
                if (streq(name, fs))
                        return true;
        }
        return false;
}

/* In a child with its own mount namespace: tmpfs on dir, then an overlay of
 * lower+upper on merged, and check a file from each layer shows through. */
static int overlay_probe_child(const char *dir)
{
        char opts[1024], path[512];
        int fd;

        if (unshare(CLONE_NEWNS) < 0)
                return 10;
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return 11;
        if (mount("tmpfs", dir, "tmpfs", 0, "size=1m,mode=0700") < 0)
                return 12;
        static const char *const sub[] = {"lower", "upper", "work", "merged"};
        for (size_t i = 0; i < ELEMENTSOF(sub); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, sub[i]);
                if (mkdir(path, 0755) < 0)
                        return 13;
        }
        snprintf(path, sizeof(path), "%s/lower/from-lower", dir);
        fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0)
                return 14;
        close(fd);
        snprintf(opts, sizeof(opts), "lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work", dir,
                 dir, dir);
        snprintf(path, sizeof(path), "%s/merged", dir);
        if (mount("overlay", path, "overlay", 0, opts) < 0)
                return 20 + (errno & 0x3f);
        snprintf(path, sizeof(path), "%s/merged/from-lower", dir);
        if (access(path, F_OK) < 0)
                return 15;
        return 0;
}

static void check_overlay(struct check_result *c)
{
        char dir[] = "/tmp/strata-doctor-XXXXXX";
        pid_t pid;
        int status;

        if (!filesystem_known("overlay")) {
                c->status = CHECK_MISSING;
                snprintf(c->detail, sizeof(c->detail),
                         "overlay is not in /proc/filesystems (modprobe overlay)");
                return;
        }
        if (geteuid() != 0) {
                c->status = CHECK_FAILED;
                snprintf(c->detail, sizeof(c->detail), "known to the kernel; mounting needs root");
                return;
        }
        if (!mkdtemp(dir)) {
                c->status = CHECK_FAILED;
                snprintf(c->detail, sizeof(c->detail), "cannot create a temp dir: %s",
                         strerror(errno));
                return;
        }
        pid = fork();
        if (pid == 0)
                _exit(overlay_probe_child(dir));
        if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
                c->status = CHECK_FAILED;
                if (pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) >= 20)
                        snprintf(c->detail, sizeof(c->detail), "cannot mount overlay: %s",
                                 strerror(WEXITSTATUS(status) - 20));
                else
                        snprintf(c->detail, sizeof(c->detail),
                                 "overlay probe in a private mount namespace failed (step %d)",
                                 pid > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        } else {
                c->status = CHECK_OK;
                snprintf(c->detail, sizeof(c->detail),
                         "mounted lower+upper in a private mount namespace");
        }
        rmdir(dir);
}

static void check_namespaces(struct check_result *c)
{
        static const char *const ns[] = {"mnt", "pid", "uts", "ipc", "net", "user"};
        char path[64];
        size_t n = 0;

        c->status = CHECK_OK;
        c->detail[0] = '\0';
        for (size_t i = 0; i < ELEMENTSOF(ns); i++) {
                snprintf(path, sizeof(path), "/proc/self/ns/%s", ns[i]);
                if (access(path, F_OK) < 0) {
                        c->status = CHECK_MISSING;
                        n += snprintf(c->detail + n, sizeof(c->detail) - n, "no %s ", ns[i]);
                }
        }
        if (c->status == CHECK_OK)
                snprintf(c->detail, sizeof(c->detail), "mnt pid uts ipc net user");
}

static void check_cgroups(struct check_result *c)
{
        struct stat st;

        c->status = CHECK_OK;
        if (stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0)
                snprintf(c->detail, sizeof(c->detail), "v2 (unified)");
        else if (stat("/sys/fs/cgroup/unified", &st) == 0)
                snprintf(c->detail, sizeof(c->detail), "hybrid (v1 with a v2 unified mount)");
        else if (stat("/sys/fs/cgroup", &st) == 0)
                snprintf(c->detail, sizeof(c->detail), "v1");
        else {
                c->status = CHECK_MISSING;
                snprintf(c->detail, sizeof(c->detail), "/sys/fs/cgroup is absent");
        }
}

void help_doctor(void)
{
        printf("Usage: strata doctor [--json]\n"
               "\n"
               "Checks what this machine offers strata: root, overlayfs (mounted for real in\n"
               "a private mount namespace), namespaces, cgroups, and the programs the\n"
               "systems use (s6, podman, runc, bwrap, qemu). Changes nothing on the host.\n"
               "\n"
               "Exit status: 0 when every required check passes, 1 otherwise.\n");
}

int cmd_doctor(int argc, char **argv)
{
        static const struct option options[] = {
            {"help", no_argument, NULL, 'h'},
            {"json", no_argument, NULL, 'j'},
            {},
        };
        struct check_result checks[] = {
            {.name = "root", .required = true},
            {.name = "kernel", .required = true},
            {.name = "overlayfs", .required = true},
            {.name = "namespaces", .required = true},
            {.name = "cgroups"},
            {.name = "s6-svscan"},
            {.name = "podman"},
            {.name = "runc"},
            {.name = "bwrap"},
            {.name = "qemu"},
        };
        struct utsname u;
        bool json = false, ok = true;
        int opt;

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        help_doctor();
                        return EXIT_OK;
                case 'j':
                        json = true;
                        break;
                case '?':
                        return EXIT_USAGE;
                default:
                        return EXIT_SOFTWARE;
                }
        }
        if (optind < argc) {
                log_error("doctor takes no arguments");
                return EXIT_USAGE;
        }

        checks[0].status = geteuid() == 0 ? CHECK_OK : CHECK_FAILED;
        snprintf(checks[0].detail, sizeof(checks[0].detail), "euid %u", (unsigned)geteuid());
        checks[1].status = uname(&u) == 0 ? CHECK_OK : CHECK_FAILED;
        snprintf(checks[1].detail, sizeof(checks[1].detail), "%s %s", u.sysname, u.release);
        check_overlay(&checks[2]);
        check_namespaces(&checks[3]);
        check_cgroups(&checks[4]);
        check_program(&checks[5], "s6-svscan", "supervision, strata lab test");
        check_program(&checks[6], "podman", "containers, strata pkg");
        check_program(&checks[7], "runc", "podman runtime on hybrid cgroups");
        check_program(&checks[8], "bwrap", "benchmark reference");
        check_program(&checks[9], "qemu-system-x86_64", "VM lab");

        for (size_t i = 0; i < ELEMENTSOF(checks); i++)
                if (checks[i].required && checks[i].status != CHECK_OK)
                        ok = false;

        if (json) {
                json_t *o = json_object(), *a = json_array();
                _cleanup_free_ char *s = NULL;

                for (size_t i = 0; o && a && i < ELEMENTSOF(checks); i++)
                        json_array_append_new(
                            a, json_pack("{s:s,s:s,s:b,s:s}", "name", checks[i].name, "status",
                                         status_name(checks[i].status), "required",
                                         checks[i].required, "detail", checks[i].detail));
                if (o && a) {
                        json_object_set_new(o, "ok", json_boolean(ok));
                        json_object_set_new(o, "checks", a);
                        a = NULL;
                        s = json_dumps(o, JSON_INDENT(2));
                }
                json_decref(a);
                json_decref(o);
                if (!s) {
                        log_oom();
                        return EXIT_SOFTWARE;
                }
                puts(s);
        } else {
                for (size_t i = 0; i < ELEMENTSOF(checks); i++)
                        printf("%-11s %-8s %s%s\n", checks[i].name, status_name(checks[i].status),
                               checks[i].detail,
                               checks[i].required || checks[i].status == CHECK_OK ? ""
                                                                                  : " (optional)");
        }
        return ok ? EXIT_OK : EXIT_FAILURE_;
}
