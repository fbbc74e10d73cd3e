/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A data dir's layer stack into an OCI image (ociimage.h) whose blobs go
 * into an OCI layout (ocilayout.h).
 */

#include <stddef.h>

#include "layerstore.h"
#include "ociimage.h"

/* Called before each layer is packed (i of n, its id). */
typedef void (*oci_progress_t)(size_t i, size_t n, const char *id, void *userdata);

/* Adds the tree (dirfd, tree) as a base layer of img (below the strata
 * layers: add them first), its blob written to the layout. */
int oci_image_add_tree(struct oci_image *img, int layout_fd, int dirfd, const char *tree,
                       char **ret_error);

/* Adds the active layers [from, from + n) of the data dir (data_fd,
 * data_dir; md its metadata) to img: each layer's fs/ packed as a blob,
 * its layer.json and changes.list carried; img's parent becomes the layer
 * below from, its state paths md's, its base the data dir's base.json. */
int oci_image_add_stack(struct oci_image *img, int layout_fd, int data_fd, const char *data_dir,
                        const struct layer_metadata *md, size_t from, size_t n,
                        oci_progress_t progress, void *userdata, char **ret_error);

#include "exec.h"

#define OCI_INIT_PATH "usr/local/sbin/overlayfs-init"

/* Makes the tree of an image's init layer in the empty directory (dirfd,
 * dir): the program init (overlayfs-init) as OCI_INIT_PATH, the shared
 * libraries `ldd init` lists that the base lacks (base_fd >= 0: looked up
 * there; -1: every one but the C library's) in their resolved
 * directories, named as the program asks for them, and data/ (the data
 * dir's mount point). */
int oci_init_tree_make(struct executor *ex, const char *init, int base_fd, int dirfd,
                       const char *dir, char **ret_error);
