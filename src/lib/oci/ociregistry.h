/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Moving images between an OCI layout and a registry, through skopeo
 * (containers-transports(5)): credentials and TLS come from the standard
 * places (containers-auth.json(5): $REGISTRY_AUTH_FILE, else
 * $XDG_RUNTIME_DIR/containers/auth.json; containers-registries.conf(5):
 * $CONTAINERS_REGISTRIES_CONF, else /etc/containers/registries.conf).
 */

#include <stdbool.h>

#include "exec.h"

/* A ref as the user names it:
 *   "oci:DIR[:TAG]"   a local OCI layout (no registry; the default tag "latest")
 *   "docker://HOST/REPO[:TAG]", or "HOST/REPO[:TAG]"   an image in a registry
 * For a local one returns 1 with *ret_dir and *ret_tag; for a registry
 * one returns 0 with *ret_transport, the skopeo name ("docker://...").
 * -EINVAL for an empty ref, one with whitespace, "oci:" without a dir or
 * another transport. */
int oci_ref_parse(const char *ref, char **ret_dir, char **ret_tag, char **ret_transport);

/* Runs `skopeo copy --preserve-digests [--quiet] SRC DST` through ex:
 * layers and manifests are copied byte for byte (never recompressed), and
 * skopeo checks every blob against its digest. $CONTAINERS_REGISTRIES_CONF
 * is passed as --registries-conf (skopeo does not read the variable). A failure is -EIO with
 * skopeo's last message in *ret_error; -ENOENT when skopeo is missing. */
int oci_registry_copy(struct executor *ex, const char *src, const char *dst, bool quiet,
                      char **ret_error);
