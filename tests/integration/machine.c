/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "layerstore.h"
#include "machine.h"
#include "macro.h"

extern char **environ;

int machine_data_new(char **ret_dir)
{
        struct stat st;
        char *d;

        if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)) {
                d = strdup("/dev/shm/strata-it-data-XXXXXX");
                if (!d)
                        return -ENOMEM;
                if (!mkdtemp(d)) {
                        int r = -errno;
                        free(d);
                        return r;
                }
                *ret_dir = d;
                return 0;
        }
        return mkdtemp_malloc("strata-it-data", ret_dir);
}

int machine_data_remove(const char *dir)
{
        return rm_rf_at(AT_FDCWD, dir, RM_ROOT | RM_MISSING_OK);
}

static int load(const char *data, int *ret_fd, struct layer_metadata *m)
{
        _cleanup_close_ int fd = open(data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int r;

        if (fd < 0)
                return -errno;
        r = layerstore_ensure_layout(fd);
        if (r < 0)
                return r;
        r = layer_metadata_load(fd, m, NULL);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int machine_add_layer(const char *data, const char *id, const char *const *files)
{
        _cleanup_close_ int fd = -1;
        struct layer_metadata m = {};
        struct layer_entry *e;
        char *migrations[] = {(char *)id, NULL};
        int r;

        r = load(data, &fd, &m);
        if (r < 0)
                return r;
        for (size_t i = 0; files && files[i]; i += 2) {
                _cleanup_free_ char *path = NULL;

                if (asprintf(&path, "system/layers/%s/fs%s", id, files[i]) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                r = mkdir_parents_at(fd, path, 0755);
                if (r >= 0)
                        r = write_file_atomic_at(fd, path, files[i + 1], strlen(files[i + 1]),
                                                 0644);
                if (r < 0)
                        goto out;
        }
        e = reallocarray(m.layers, m.n_layers + 1, sizeof(*e));
        if (!e) {
                r = -ENOMEM;
                goto out;
        }
        m.layers = e;
        /* Borrowed strings: taken back before layer_metadata_done. */
        m.layers[m.n_layers++] = (struct layer_entry){
            .id = (char *)id,
            .dir = (char *)id,
            .migrations = migrations,
            .applied_at = (int64_t)time(NULL) * 1000000,
            .changes = {(unsigned)0},
        };
        r = layer_metadata_save(fd, &m);
        m.n_layers--;
out:
        layer_metadata_done(&m);
        return r;
}

int machine_add_state_path(const char *data, const char *path)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *dir = NULL;
        struct layer_metadata m = {};
        size_t n = 0;
        char **l;
        int r;

        r = load(data, &fd, &m);
        if (r < 0)
                return r;
        while (m.state_paths && m.state_paths[n])
                n++;
        l = reallocarray(m.state_paths, n + 2, sizeof(char *));
        if (!l) {
                layer_metadata_done(&m);
                return -ENOMEM;
        }
        m.state_paths = l;
        l[n] = strdup(path);
        l[n + 1] = NULL;
        r = l[n] ? layer_metadata_save(fd, &m) : -ENOMEM;
        layer_metadata_done(&m);
        if (r < 0)
                return r;
        if (asprintf(&dir, "state%s", path) < 0)
                return -ENOMEM;
        return mkdir_p_at(fd, dir, 0755);
}

int create_service(const char *scandir, const char *name, const char *run)
{
        _cleanup_free_ char *dir = NULL, *script = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        if (asprintf(&dir, "%s/%s", scandir, name) < 0 ||
            asprintf(&script, "#!/bin/sh\n%s", run) < 0)
                return -ENOMEM;
        r = mkdir_p_at(AT_FDCWD, dir, 0755);
        if (r < 0)
                return r;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = write_file_atomic_at(fd, "down", "", 0, 0644);
        if (r < 0)
                return r;
        return write_file_atomic_at(fd, "run", script, strlen(script), 0755);
}

int machine_run(char *const *argv)
{
        pid_t pid;
        int st, r;

        r = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
        if (r != 0)
                return -r;
        if (waitpid(pid, &st, 0) < 0)
                return -errno;
        if (WIFSIGNALED(st))
                return 128 + WTERMSIG(st);
        return WEXITSTATUS(st);
}

static int run_quiet(char *const *argv, char *out, size_t out_size)
{
        int p[2], st;
        pid_t pid;
        ssize_t n;
        size_t got = 0;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                dup2(p[1], 1);
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (null >= 0)
                        dup2(null, 2);
                execvp(argv[0], argv);
                _exit(127);
        }
        close(p[1]);
        while (got + 1 < out_size && (n = read(p[0], out + got, out_size - 1 - got)) > 0)
                got += (size_t)n;
        out[got] = '\0';
        close(p[0]);
        if (waitpid(pid, &st, 0) < 0)
                return -errno;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int enable_service(const char *scandir, const char *name, unsigned timeout_sec)
{
        _cleanup_free_ char *dir = NULL, *down = NULL;
        struct timespec step = {0, 20 * 1000 * 1000};
        char *rescan[] = {(char *)"s6-svscanctl", (char *)"-a", (char *)scandir, NULL};
        char out[64];

        if (asprintf(&dir, "%s/%s", scandir, name) < 0 || asprintf(&down, "%s/down", dir) < 0)
                return -ENOMEM;
        if (unlink(down) < 0 && errno != ENOENT)
                return -errno;
        if (run_quiet(rescan, out, sizeof(out)) != 0)
                return -EIO;
        for (unsigned i = 0; i < timeout_sec * 50; i++) {
                char *up[] = {(char *)"s6-svc", (char *)"-u", dir, NULL};
                char *stat[] = {(char *)"s6-svstat", (char *)"-o", (char *)"up", dir, NULL};

                /* s6-svc fails until s6-supervise has made supervise/. */
                if (run_quiet(up, out, sizeof(out)) == 0 &&
                    run_quiet(stat, out, sizeof(out)) == 0 && startswith(out, "true"))
                        return 0;
                nanosleep(&step, NULL);
        }
        return -ETIMEDOUT;
}
