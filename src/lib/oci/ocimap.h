/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The mapping between a strata layer and an OCI image layer, as pure
 * decisions (no IO), so it is tested without files:
 *
 *   strata layer fs/ (an overlay upper dir)      OCI layer tar
 *   whiteout (char 0/0, or trusted.overlay.whiteout)  empty file ".wh.NAME"
 *   opaque dir (trusted.overlay.opaque = "y")    the dir + ".wh..wh..opq" in it
 *   trusted.overlay.* xattrs                     dropped (overlay internals)
 *   any other xattr                              a SCHILY.xattr pax record
 *
 * Entries are written depth first, the names of a directory in strcmp
 * order (a directory before what it holds, the opaque marker first in its
 * directory), with the uid and gid as numbers and no user or group names,
 * so that one layer always gives the same bytes and the same digest.
 */

#include <stdbool.h>
#include <stddef.h>

#define OCI_WH_PREFIX ".wh."
#define OCI_WH_OPAQUE ".wh..wh..opq"

#define OCI_MEDIA_LAYER     "application/vnd.oci.image.layer.v1.tar"
#define OCI_MEDIA_LAYER_GZ  "application/vnd.oci.image.layer.v1.tar+gzip"
#define OCI_MEDIA_MANIFEST  "application/vnd.oci.image.manifest.v1+json"
#define OCI_MEDIA_CONFIG    "application/vnd.oci.image.config.v1+json"
#define OCI_MEDIA_INDEX     "application/vnd.oci.image.index.v1+json"
#define OCI_DOCKER_LAYER    "application/vnd.docker.image.rootfs.diff.tar"
#define OCI_DOCKER_LAYER_GZ "application/vnd.docker.image.rootfs.diff.tar.gzip"

/* Annotations of each layer descriptor in the manifest. */
#define OCI_ANNOTATION_LAYER_ID   "org.strata.layer.id"
#define OCI_ANNOTATION_MIGRATIONS "org.strata.layer.migrations" /* comma-separated ids */
#define OCI_ANNOTATION_PARENT     "org.strata.layer.parent"
#define OCI_ANNOTATION_REF_NAME   "org.opencontainers.image.ref.name"

enum oci_entry_kind {
        OCI_ENTRY_PLAIN,    /* an entry to create as it is */
        OCI_ENTRY_WHITEOUT, /* ".wh.NAME": NAME is deleted (*ret_target = NAME) */
        OCI_ENTRY_OPAQUE,   /* ".wh..wh..opq": the directory it is in is opaque */
};

/* What the base name name of a tar entry stands for; for a whiteout
 * *ret_target points into name (after the prefix). A ".wh." name with
 * nothing after it, or naming "." or "..", is -EINVAL. */
int oci_entry_classify(const char *name, enum oci_entry_kind *ret, const char **ret_target);

/* Whether the xattr name of a layer file goes into the tar (every xattr
 * but the overlay's own trusted.overlay.* and user.overlay.*). */
bool oci_xattr_exported(const char *name);

/* Whether the name of a file in a layer would read as a marker in the tar
 * (".wh.*"), which the format cannot carry: export refuses such a layer. */
bool oci_name_reserved(const char *name);

/* Normalizes the path of a tar entry into *ret (a new string): a leading
 * "./" or "/" and trailing '/' removed, "//" folded. "" (the root itself)
 * is returned as "". A ".." component is -EINVAL. */
int oci_entry_path_normalize(const char *path, char **ret);

/* The digest string "sha256:<64 lowercase hex>": whether s is one. */
bool oci_digest_valid(const char *s);

/*
 * Which layers of an image a data dir lacks. local: the ids of the data
 * dir's active layers, oldest first (n_local); image: the image's layer
 * ids, oldest first (n_image), whose first layer sits on parent (NULL:
 * on the base). The image must continue the local stack: the local layers
 * from parent on must be the image's first ones. Returns the index of the
 * first image layer to add (n_image when there is nothing to add), or
 * -ESRCH when the local stack lacks parent (*ret_image names it), or
 * -EUCLEAN when the stacks differ: *ret_local and *ret_image name the
 * first two ids that differ. A local stack that holds more layers than the
 * image (an older image) has nothing to add.
 */
int oci_stack_plan(char *const *local, size_t n_local, char *const *image, size_t n_image,
                   const char *parent, const char **ret_local, const char **ret_image);

/* The libraries ldd(1) lists in text (its output for one program), as
 * absolute paths, in order: "NAME => /PATH (ADDR)" and "/PATH (ADDR)"
 * lines; the vdso and "not found" are left out. NULL-terminated. */
int oci_ldd_parse(const char *text, char ***ret);

/* Whether the library path belongs to the C library itself (libc, the
 * dynamic loader, libm, libpthread, libdl, librt), which an image's base
 * provides and a layer must never replace. */
bool oci_lib_is_libc(const char *path);
