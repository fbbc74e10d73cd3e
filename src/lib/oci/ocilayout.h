/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * An OCI image layout directory (the format skopeo's "oci:DIR" transport
 * reads and writes):
 *
 *   DIR/oci-layout          {"imageLayoutVersion": "1.0.0"}
 *   DIR/index.json          the manifests, each tagged with
 *                           org.opencontainers.image.ref.name
 *   DIR/blobs/sha256/<hex>  every blob (layers, config, manifest) by digest
 *
 * Every blob read back is checked against its digest.
 */

#include <stdbool.h>

#include <jansson.h>

#include "ociimage.h"
#include "ocitar.h"

enum {
        OCI_LAYOUT_CREATE = 1 << 0, /* make the layout (blobs/sha256, oci-layout) when missing */
        /* a temp layout that is thrown away once copied (to a registry):
         * nothing written to it is synced, which buys nothing there */
        OCI_LAYOUT_SCRATCH = 1 << 1,
};

/* Opens the layout DIR (dirfd, dir); with OCI_LAYOUT_CREATE, makes it
 * when missing. Returns the fd. */
int oci_layout_open_at(int dirfd, const char *dir, unsigned flags, char **ret_error);

/* Writes the tree (dirfd, tree) as a layer tar blob (oci_tar_write_at),
 * named by its digest once whole. Not synced: oci_layout_write_image
 * syncs the blobs of the image it writes. */
int oci_layout_add_tree(int layout_fd, int dirfd, const char *tree, struct oci_blob_info *ret,
                        char **ret_error);

/* Writes j (compact, keys sorted) as a blob; synced unless
 * OCI_LAYOUT_SCRATCH is in flags. */
int oci_layout_add_json(int layout_fd, const json_t *j, unsigned flags, struct oci_blob_info *ret);

/* Writes img's config and manifest and makes index.json list the
 * manifest as tag (replacing a manifest of that tag); *ret_manifest (may
 * be NULL) gets the manifest's digest and size. Unless flags has
 * OCI_LAYOUT_SCRATCH, every layer blob of img, the config and the
 * manifest are synced before index.json names them, and index.json
 * after. */
int oci_layout_write_image(int layout_fd, const struct oci_image *img, const char *tag,
                           unsigned flags, struct oci_blob_info *ret_manifest, char **ret_error);

/* Reads the image tagged tag (NULL: the only one) and checks the digests
 * of its manifest and config. */
int oci_layout_read_image(int layout_fd, const char *tag, struct oci_image *ret, char **ret_error);

/* Checks every layer blob of img against its digest and size (-EBADMSG
 * naming the digest when one differs, -ENOENT when one is missing). */
int oci_layout_verify_layers(int layout_fd, const struct oci_image *img, char **ret_error);

/* Unpacks layer i of img into (dirfd, tree) (oci_tar_extract_at, its
 * digest checked while reading). */
int oci_layout_extract_layer(int layout_fd, const struct oci_image *img, size_t i, int dirfd,
                             const char *tree, char **ret_error);

/* Reads the image tagged tag of any origin (a base image: no "strata" in
 * its config) as base layers only: every layer of its manifest becomes a
 * base layer of *ret, with the diff ids of its config; its Env is kept. */
int oci_layout_read_base_image(int layout_fd, const char *tag, struct oci_image *ret,
                               char **ret_error);
