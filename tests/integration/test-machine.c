/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A strata machine booted twice from the same data dir with `strata lab
 * test`: a service created and enabled inside (create_service,
 * enable_service) writes into a state path, and the data is there on the
 * second boot; a system change made at runtime stays in the scratch upper
 * and never reaches a layer. The same program runs the inside steps, as
 * the machine's test command.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "machine.h"
#include "macro.h"

#define STATE_PATH "/var/lib/it-state"

static unsigned n_test, n_failed;

static void tap(bool ok, const char *what)
{
        n_test++;
        if (!ok)
                n_failed++;
        printf("%sok %u - %s\n", ok ? "" : "not ", n_test, what);
        fflush(stdout);
}

static bool file_has(const char *path, const char *needle)
{
        _cleanup_free_ char *s = NULL;

        return read_file_at(AT_FDCWD, path, 1 << 20, &s, NULL) >= 0 && strstr(s, needle);
}

/* Boot 1, inside the machine: the layer is there; a service writes state. */
static int inside_boot1(void)
{
        struct timespec step = {0, 20 * 1000 * 1000};
        int r;

        if (!file_has("/opt/it/layer-file", "from-the-layer"))
                return 10;
        r = create_service("/etc/s6", "writer",
                           "echo written-by-the-service >>" STATE_PATH "/log\nexec sleep 100000\n");
        if (r < 0)
                return 11;
        r = enable_service("/etc/s6", "writer", 30);
        if (r < 0) {
                fprintf(stderr, "enable_service: %s\n", strerror(-r));
                return 12;
        }
        for (int i = 0; i < 1500 && !file_has(STATE_PATH "/log", "written-by-the-service"); i++)
                nanosleep(&step, NULL);
        if (!file_has(STATE_PATH "/log", "written-by-the-service"))
                return 13;
        /* A system change at runtime: it goes to the scratch upper. */
        if (write_file_atomic_at(AT_FDCWD, "/etc/it-runtime-change", "x", 1, 0644) < 0)
                return 14;
        return 0;
}

/* Boot 2: the state written in boot 1 is back; the service is not (it was
 * created on the throwaway /etc/s6 of the test machine). */
static int inside_boot2(void)
{
        if (!file_has(STATE_PATH "/log", "written-by-the-service"))
                return 20;
        if (access("/etc/s6/writer", F_OK) == 0)
                return 21;
        if (!file_has("/opt/it/layer-file", "from-the-layer"))
                return 22;
        return 0;
}

/* Every line of after is in before. Mounts that vanished are not a leak:
 * tests running in parallel detach theirs from every namespace, ours too. */
static bool no_mount_added(const char *before, const char *after)
{
        _cleanup_free_ char *all = NULL;

        /* Whole lines: "\n<line>\n" in "\n<before>". */
        if (asprintf(&all, "\n%s", before) < 0)
                return false;
        for (const char *l = after; *l;) {
                const char *e = strchrnul(l, '\n');
                _cleanup_free_ char *line = NULL;

                if (asprintf(&line, "\n%.*s\n", (int)(e - l), l) < 0)
                        return false;
                if (e > l && !strstr(all, line)) {
                        printf("# mount added:%s", line);
                        return false;
                }
                l = *e ? e + 1 : e;
        }
        return true;
}

static int boot(const char *strata, const char *data, const char *self, const char *step)
{
        _cleanup_free_ char *bind = NULL;
        const char *build = getenv("STRATA_BUILD_ROOT");

        if (asprintf(&bind, "%s:%s", build ? build : "/", build ? build : "/mnt/host") < 0)
                return -ENOMEM;
        char *argv[] = {(char *)strata,
                        (char *)"lab",
                        (char *)"test",
                        (char *)"--data",
                        (char *)data,
                        (char *)"--bind",
                        bind,
                        (char *)"--timeout",
                        (char *)"120",
                        (char *)"--",
                        (char *)self,
                        (char *)step,
                        NULL};
        return machine_run(argv);
}

int main(int argc, char **argv)
{
        static const char *const layer[] = {"/opt/it/layer-file", "from-the-layer\n", NULL};
        _cleanup_free_ char *data = NULL, *self = NULL, *f = NULL, *mounts_before = NULL,
                            *mounts_after = NULL;
        const char *strata = getenv("STRATA");
        int r;

        if (argc == 2 && streq(argv[1], "--inside-boot1"))
                return inside_boot1();
        if (argc == 2 && streq(argv[1], "--inside-boot2"))
                return inside_boot2();

        if (geteuid() != 0) {
                printf("1..0 # SKIP needs root (mounts and namespaces)\n");
                return 77;
        }
        if (access("/usr/bin/s6-svscan", X_OK) < 0) {
                printf("1..0 # SKIP 's6-svscan' is not installed (Debian package s6)\n");
                return 77;
        }
        if (!strata) {
                fprintf(stderr, "STRATA must name the strata binary\n");
                return 1;
        }
        /* Our own private mount namespace: the mount table compared at the
         * end cannot see mounts of tests running in parallel. */
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
                printf("1..0 # SKIP cannot make a private mount namespace: %s\n", strerror(errno));
                return 77;
        }
        self = realpath("/proc/self/exe", NULL);
        if (!self ||
            read_file_at(AT_FDCWD, "/proc/self/mountinfo", 1 << 22, &mounts_before, NULL) < 0)
                return 1;

        r = machine_data_new(&data);
        tap(r >= 0, "a data dir for the machine");
        if (r < 0)
                return 1;
        r = machine_add_layer(data, "20260101-001_it", layer);
        if (r >= 0)
                r = machine_add_state_path(data, STATE_PATH);
        tap(r >= 0, "a layer and a state path recorded through the layer store");

        r = boot(strata, data, self, "--inside-boot1");
        tap(r == 0, "boot 1: an enabled service writes into the state path");
        if (r != 0)
                printf("# boot 1 exited %d\n", r);

        if (asprintf(&f, "%s/state" STATE_PATH "/log", data) < 0)
                return 1;
        tap(file_has(f, "written-by-the-service"), "the state lands in <data>/state on the host");

        r = boot(strata, data, self, "--inside-boot2");
        tap(r == 0, "boot 2 of the same data dir sees the state of boot 1");
        if (r != 0)
                printf("# boot 2 exited %d\n", r);

        free(f);
        if (asprintf(&f, "%s/system/upper/etc/it-runtime-change", data) < 0)
                return 1;
        {
                _cleanup_free_ char *g = NULL, *h = NULL;
                bool in_upper = access(f, F_OK) == 0, in_layer, runner_leaked;

                if (asprintf(&g, "%s/system/layers/20260101-001_it/fs/etc/it-runtime-change",
                             data) < 0 ||
                    asprintf(&h, "%s/system/upper/etc/s6/test-runner", data) < 0)
                        return 1;
                in_layer = access(g, F_OK) == 0;
                runner_leaked = access(h, F_OK) == 0;
                tap(in_upper && !in_layer,
                    "a runtime system change stays in the scratch upper, not in a layer");
                tap(!runner_leaked, "the test-runner service is not written into the machine");
        }

        if (read_file_at(AT_FDCWD, "/proc/self/mountinfo", 1 << 22, &mounts_after, NULL) < 0)
                return 1;
        tap(no_mount_added(mounts_before, mounts_after), "no mount was added to the host's table");

        r = machine_data_remove(data);
        tap(r >= 0, "the data dir is removed");
        printf("1..%u\n", n_test);
        return n_failed ? 1 : 0;
}
