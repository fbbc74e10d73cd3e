/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
