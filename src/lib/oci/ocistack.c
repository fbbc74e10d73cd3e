/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "baseid.h"
#include "cleanup.h"
#include "fs.h"
#include "json.h"
#include "log.h"
#include "ocilayout.h"
#include "ocimap.h"
#include "ocistack.h"
#include "strv.h"

#define LAYERS_DIR  "system/layers"
#define CHANGES_MAX (512 * 1024 * 1024)

int oci_image_add_tree(struct oci_image *img, int layout_fd, int dirfd, const char *tree,
                       char **ret_error)
{
        struct oci_blob_info b;
        struct oci_layer l = {};
        int r;

        if (img->n_layers != img->n_base_layers)
                return -EINVAL;
        r = oci_layout_add_tree(layout_fd, dirfd, tree, &b, ret_error);
        if (r < 0)
                return r;
        l.digest = b.digest;
        l.size = b.size;
        r = oci_image_add_layer(img, &l);
        if (r < 0)
                return r;
        img->n_base_layers++;
        return 0;
}

static int add_one(struct oci_image *img, int layout_fd, int data_fd, const char *data_dir,
                   const struct layer_entry *e, char **ret_error)
{
        _cleanup_free_ char *lj = NULL, *cl = NULL, *fs = NULL, *changes = NULL;
        struct oci_blob_info b;
        struct oci_layer l = {};
        json_error_t je;
        json_t *j = NULL;
        int r;

        if (asprintf(&lj, LAYERS_DIR "/%s/layer.json", e->dir) < 0 ||
            asprintf(&cl, LAYERS_DIR "/%s/changes.list", e->dir) < 0 ||
            asprintf(&fs, LAYERS_DIR "/%s/fs", e->dir) < 0)
                return -ENOMEM;
        r = json_load_at(data_fd, lj, &j, &je);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot read '%s/%s'%s%s", data_dir, lj,
                                         r == -EBADMSG ? ": " : "",
                                         r == -EBADMSG ? json_error_string(&je) : "");
        r = read_file_at(data_fd, cl, CHANGES_MAX, &changes, NULL);
        if (r < 0 && r != -ENOENT) {
                json_decref(j);
                return set_error_message(ret_error, r, "cannot read '%s/%s'", data_dir, cl);
        }
        r = oci_layout_add_tree(layout_fd, data_fd, fs, &b, ret_error);
        if (r >= 0) {
                l.id = e->id;
                l.migrations = e->migrations;
                l.digest = b.digest;
                l.size = b.size;
                l.layer_json = j;
                l.changes = changes;
                r = oci_image_add_layer(img, &l);
        }
        json_decref(j);
        return r;
}

int oci_image_add_stack(struct oci_image *img, int layout_fd, int data_fd, const char *data_dir,
                        const struct layer_metadata *md, size_t from, size_t n,
                        oci_progress_t progress, void *userdata, char **ret_error)
{
        _cleanup_free_ char *base = NULL;
        json_error_t je;
        int r;

        if (from + n > md->n_layers || n == 0)
                return -EINVAL;
        free(img->parent);
        img->parent = NULL;
        if (from > 0 && !(img->parent = strdup(md->layers[from - 1].id)))
                return -ENOMEM;
        strv_free(img->state_paths);
        img->state_paths = NULL;
        if (md->state_paths && strv_copy(md->state_paths, &img->state_paths) < 0)
                return -ENOMEM;
        r = read_file_at(data_fd, BASE_ID_FILE, 1024 * 1024, &base, NULL);
        if (r >= 0) {
                json_decref(img->base);
                r = json_load_buffer(BASE_ID_FILE, base, strlen(base), &img->base, &je);
                if (r < 0)
                        return set_error_message(ret_error, r, "'%s/%s' is not JSON: %s", data_dir,
                                                 BASE_ID_FILE, json_error_string(&je));
        } else if (r != -ENOENT)
                return set_error_message(ret_error, r, "cannot read '%s/%s'", data_dir,
                                         BASE_ID_FILE);
        for (size_t i = from; i < from + n; i++) {
                if (progress)
                        progress(i - from, n, md->layers[i].id, userdata);
                r = add_one(img, layout_fd, data_fd, data_dir, &md->layers[i], ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int copy_file_at(const char *src, int dirfd, const char *dst, mode_t mode)
{
        _cleanup_close_ int in = -1, out = -1;
        char buf[65536];
        ssize_t n;

        in = open(src, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return -errno;
        out = openat(dirfd, dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (out < 0)
                return -errno;
        while ((n = read(in, buf, sizeof(buf))) != 0) {
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                for (ssize_t done = 0, w; done < n; done += w) {
                        w = write(out, buf + done, (size_t)(n - done));
                        if (w < 0)
                                return -errno;
                }
        }
        return fchmod(out, mode) < 0 ? -errno : 0;
}

/* Copies the library lib (as ldd names it, its content followed) into
 * the tree at its resolved directory, unless the base has it there. */
static int add_library(const char *lib, int base_fd, int tfd, char **ret_error)
{
        _cleanup_free_ char *dir = NULL, *real = NULL, *dst = NULL;
        const char *name = strrchr(lib, '/') + 1;
        struct stat st;
        int r;

        /* the directory resolved (/lib is usr/lib on a merged /usr), the
         * name as the program asks for it */
        dir = strndup(lib, (size_t)(name - lib));
        if (!dir)
                return -ENOMEM;
        real = realpath(dir, NULL);
        if (!real)
                return set_error_message(ret_error, -errno, "cannot resolve the library '%s'", lib);
        if (asprintf(&dst, "%s/%s", real + 1, name) < 0)
                return -ENOMEM;
        if ((base_fd >= 0 && fstatat(base_fd, dst, &st, 0) >= 0) ||
            (base_fd < 0 && oci_lib_is_libc(lib)) || fstatat(tfd, dst, &st, 0) >= 0)
                return 0;
        r = mkdir_p_at(tfd, real + 1, 0755);
        if (r >= 0)
                r = copy_file_at(lib, tfd, dst, 0644);
        if (r < 0)
                return set_error_message(ret_error, r,
                                         "cannot copy the library '%s' into the init "
                                         "layer",
                                         lib);
        return 0;
}

int oci_init_tree_make(struct executor *ex, const char *init, int base_fd, int dirfd,
                       const char *dir, char **ret_error)
{
        const char *argv[] = {"ldd", init, NULL};
        struct exec_request req = {.argv = argv};
        struct exec_result res = {};
        _cleanup_strv_ char **libs = NULL;
        _cleanup_close_ int tfd = -1;
        int r;

        tfd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (tfd < 0)
                return set_error_message(ret_error, -errno, "cannot open '%s'", dir);
        r = mkdir_p_at(tfd, "usr/local/sbin", 0755);
        if (r >= 0)
                r = mkdir_p_at(tfd, "data", 0755);
        if (r >= 0)
                r = copy_file_at(init, tfd, OCI_INIT_PATH, 0755);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot copy '%s' into the init layer",
                                         init);
        r = executor_run(ex, &req, &res);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot run ldd");
        if (res.status == 0)
                r = oci_ldd_parse(res.out, &libs);
        else
                r = set_error_message(ret_error, -ENOEXEC, "ldd '%s' failed: %s", init, res.err);
        exec_result_done(&res);
        if (r < 0)
                return r;
        STRV_FOREACH (l, libs) {
                r = add_library(*l, base_fd, tfd, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}
