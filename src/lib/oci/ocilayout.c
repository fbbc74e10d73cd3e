/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "json.h"
#include "log.h"
#include "macro.h"
#include "ocilayout.h"
#include "ocimap.h"
#include "strv.h"

#define BLOBS       "blobs/sha256"
#define JSON_MAX    (64 * 1024 * 1024)
#define LAYOUT_TEXT "{\"imageLayoutVersion\":\"1.0.0\"}"

/* Writes data as path in the layout: through write_file_atomic_at (synced)
 * or, in a scratch layout, plainly (no sync, no temp name: a scratch
 * layout half written is thrown away as a whole). */
static int layout_write_file(int layout_fd, const char *path, const void *data, size_t len,
                             unsigned flags)
{
        _cleanup_close_ int fd = -1;

        if (!(flags & OCI_LAYOUT_SCRATCH))
                return write_file_atomic_at(layout_fd, path, data, len, 0644);
        fd = openat(layout_fd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        for (size_t done = 0; done < len;) {
                ssize_t n = write(fd, (const char *)data + done, len - done);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t)n;
        }
        return 0;
}

int oci_layout_open_at(int dirfd, const char *dir, unsigned flags, char **ret_error)
{
        bool create = flags & OCI_LAYOUT_CREATE;
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        if (create) {
                r = mkdir_p_at(dirfd, dir, 0755);
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot create the OCI layout '%s'",
                                                 dir);
        }
        fd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return set_error_message(ret_error, -errno, "cannot open the OCI layout '%s'", dir);
        if (create) {
                r = mkdir_p_at(fd, BLOBS, 0755);
                if (r >= 0 && fstatat(fd, "oci-layout", &st, 0) < 0)
                        r = layout_write_file(fd, "oci-layout", LAYOUT_TEXT, strlen(LAYOUT_TEXT),
                                              flags);
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot set up the OCI layout '%s'",
                                                 dir);
        } else if (fstatat(fd, "oci-layout", &st, 0) < 0)
                return set_error_message(ret_error, -errno == -ENOENT ? -ENOENT : -errno,
                                         "'%s' is not an OCI image layout (no oci-layout file)",
                                         dir);
        return TAKE_FD(fd);
}

static int blob_path(const char *digest, char **ret)
{
        if (!oci_digest_valid(digest))
                return -EINVAL;
        return asprintf(ret, BLOBS "/%s", digest + 7) < 0 ? -ENOMEM : 0;
}

/* Names the temp blob tmp by its digest (a blob already there is kept). */
static int blob_commit(int layout_fd, const char *tmp, const char *digest)
{
        _cleanup_free_ char *path = NULL;
        int r;

        r = blob_path(digest, &path);
        if (r < 0)
                return r;
        if (renameat(layout_fd, tmp, layout_fd, path) < 0) {
                r = -errno;
                (void)unlinkat(layout_fd, tmp, 0);
                return r;
        }
        return 0;
}

int oci_layout_add_tree(int layout_fd, int dirfd, const char *tree, struct oci_blob_info *ret,
                        char **ret_error)
{
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        struct oci_blob_info info;
        int r;

        if (asprintf(&tmp, BLOBS "/.tmp-%d-%p", getpid(), (void *)&info) < 0)
                return -ENOMEM;
        fd = openat(layout_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return set_error_message(ret_error, -errno, "cannot create a blob in the layout");
        r = oci_tar_write_at(dirfd, tree, fd, &info, ret_error);
        if (r < 0) {
                (void)unlinkat(layout_fd, tmp, 0);
                return r;
        }
        r = blob_commit(layout_fd, tmp, info.digest);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot store the blob %s", info.digest);
        *ret = info;
        return 0;
}

int oci_layout_add_json(int layout_fd, const json_t *j, unsigned flags, struct oci_blob_info *ret)
{
        _cleanup_free_ char *text = NULL, *path = NULL;
        char hex[SHA256_HEX_SIZE];
        size_t len;
        int r;

        text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        if (!text)
                return -ENOMEM;
        len = strlen(text);
        sha256_hex(text, len, hex);
        snprintf(ret->digest, sizeof(ret->digest), "sha256:%s", hex);
        ret->size = len;
        r = blob_path(ret->digest, &path);
        if (r < 0)
                return r;
        return layout_write_file(layout_fd, path, text, len, flags);
}

/* Makes the layer blobs of img durable (and their names: the blobs dir)
 * before an index names them. */
static int sync_layers(int layout_fd, const struct oci_image *img, char **ret_error)
{
        int r;

        for (size_t i = 0; i < img->n_layers; i++) {
                _cleanup_free_ char *path = NULL;
                _cleanup_close_ int fd = -1;

                r = blob_path(img->layers[i].digest, &path);
                if (r < 0)
                        return set_error_message(ret_error, -EBADMSG, "'%s' is not a sha256 digest",
                                                 img->layers[i].digest);
                fd = openat(layout_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0 || fsync(fd) < 0)
                        return set_error_message(ret_error, -errno, "cannot sync the blob %s",
                                                 img->layers[i].digest);
        }
        r = fsync_dir_at(layout_fd, BLOBS);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot sync the layout's " BLOBS);
        return 0;
}

static int index_with(int layout_fd, const struct oci_blob_info *m, const char *tag, json_t **ret)
{
        json_t *idx = NULL, *mans, *d, *a, *keep;
        json_error_t je;
        size_t i;
        int r;

        r = json_load_at(layout_fd, "index.json", &idx, &je);
        if (r == -ENOENT) {
                idx = json_object();
                json_object_set_new(idx, "schemaVersion", json_integer(2));
                json_object_set_new(idx, "mediaType", json_string(OCI_MEDIA_INDEX));
                json_object_set_new(idx, "manifests", json_array());
        } else if (r < 0)
                return r;
        mans = json_object_get(idx, "manifests");
        if (!json_is_array(mans)) {
                json_decref(idx);
                return -EBADMSG;
        }
        keep = json_array();
        json_array_foreach(mans, i, d)
        {
                const char *t = json_string_value(
                    json_object_get(json_object_get(d, "annotations"), OCI_ANNOTATION_REF_NAME));

                if (!t || !streq(t, tag))
                        json_array_append(keep, d);
        }
        d = json_object();
        json_object_set_new(d, "mediaType", json_string(OCI_MEDIA_MANIFEST));
        json_object_set_new(d, "digest", json_string(m->digest));
        json_object_set_new(d, "size", json_integer((json_int_t)m->size));
        a = json_object();
        json_object_set_new(a, OCI_ANNOTATION_REF_NAME, json_string(tag));
        json_object_set_new(d, "annotations", a);
        json_array_append_new(keep, d);
        json_object_set_new(idx, "manifests", keep);
        *ret = idx;
        return 0;
}

int oci_layout_write_image(int layout_fd, const struct oci_image *img, const char *tag,
                           unsigned flags, struct oci_blob_info *ret_manifest, char **ret_error)
{
        _cleanup_free_ char *text = NULL;
        struct oci_blob_info c, m;
        json_t *config = NULL, *manifest = NULL, *idx = NULL;
        int r;

        if (!(flags & OCI_LAYOUT_SCRATCH)) {
                r = sync_layers(layout_fd, img, ret_error);
                if (r < 0)
                        return r;
        }
        r = oci_config_build(img, &config);
        if (r >= 0)
                r = oci_layout_add_json(layout_fd, config, flags, &c);
        if (r >= 0)
                r = oci_manifest_build(img, c.digest, c.size, &manifest);
        if (r >= 0)
                r = oci_layout_add_json(layout_fd, manifest, flags, &m);
        if (r >= 0)
                r = index_with(layout_fd, &m, tag, &idx);
        if (r >= 0 && !(flags & OCI_LAYOUT_SCRATCH))
                r = json_save_at(layout_fd, "index.json", idx, 0644);
        else if (r >= 0) {
                text = json_dumps(idx, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                r = text ? layout_write_file(layout_fd, "index.json", text, strlen(text), flags)
                         : -ENOMEM;
        }
        json_decref(config);
        json_decref(manifest);
        json_decref(idx);
        if (r < 0)
                return set_error_message(ret_error, r,
                                         "cannot write the image's config, manifest "
                                         "or index.json");
        if (ret_manifest)
                *ret_manifest = m;
        return 0;
}

/* Reads the JSON blob digest, checking its digest. */
static int read_json_blob(int layout_fd, const char *digest, json_t **ret, char **ret_error)
{
        _cleanup_free_ char *path = NULL, *text = NULL;
        char hex[SHA256_HEX_SIZE];
        json_error_t je;
        size_t len;
        int r;

        r = blob_path(digest, &path);
        if (r < 0)
                return set_error_message(ret_error, -EBADMSG, "'%s' is not a sha256 digest",
                                         digest);
        r = read_file_at(layout_fd, path, JSON_MAX, &text, &len);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot read the blob %s", digest);
        sha256_hex(text, len, hex);
        if (!streq(hex, digest + 7))
                return set_error_message(ret_error, -EBADMSG,
                                         "the blob %s has the digest sha256:%s: it is damaged",
                                         digest, hex);
        r = json_load_buffer(digest, text, len, ret, &je);
        if (r < 0)
                return set_error_message(ret_error, -EBADMSG, "the blob %s is not JSON: %s", digest,
                                         json_error_string(&je));
        return 0;
}

/* The manifest and config of the image tagged tag (NULL: the only one),
 * their digests checked. */
static int read_manifest_config(int layout_fd, const char *tag, json_t **ret_manifest,
                                json_t **ret_config, char **ret_error)
{
        json_t *idx = NULL, *mans, *d, *manifest = NULL, *config = NULL;
        const char *digest = NULL, *cd;
        json_error_t je;
        size_t i, n = 0;
        int r;

        r = json_load_at(layout_fd, "index.json", &idx, &je);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot read the layout's index.json%s%s",
                                         r == -EBADMSG ? ": " : "",
                                         r == -EBADMSG ? json_error_string(&je) : "");
        mans = json_object_get(idx, "manifests");
        json_array_foreach(mans, i, d)
        {
                const char *t = json_string_value(
                    json_object_get(json_object_get(d, "annotations"), OCI_ANNOTATION_REF_NAME));

                n++;
                if ((!tag && json_array_size(mans) == 1) || (tag && t && streq(t, tag)))
                        digest = json_string_value(json_object_get(d, "digest"));
        }
        if (!digest) {
                if (tag)
                        r = set_error_message(ret_error, -ENOENT,
                                              "the layout's index.json lists no image tagged '%s'",
                                              tag);
                else
                        r = set_error_message(ret_error, -ENOENT,
                                              "the layout's index.json lists %zu images, not one: "
                                              "name the tag",
                                              n);
                json_decref(idx);
                return r;
        }
        r = read_json_blob(layout_fd, digest, &manifest, ret_error);
        json_decref(idx);
        if (r < 0)
                return r;
        cd = json_string_value(json_object_get(json_object_get(manifest, "config"), "digest"));
        r = cd ? read_json_blob(layout_fd, cd, &config, ret_error)
               : set_error_message(ret_error, -EBADMSG, "the image's manifest has no config");
        if (r < 0) {
                json_decref(manifest);
                return r;
        }
        *ret_manifest = manifest;
        *ret_config = config;
        return 0;
}

int oci_layout_read_image(int layout_fd, const char *tag, struct oci_image *ret, char **ret_error)
{
        json_t *manifest = NULL, *config = NULL;
        int r;

        r = read_manifest_config(layout_fd, tag, &manifest, &config, ret_error);
        if (r < 0)
                return r;
        r = oci_image_parse(manifest, config, ret, ret_error);
        json_decref(manifest);
        json_decref(config);
        return r;
}

int oci_layout_read_base_image(int layout_fd, const char *tag, struct oci_image *ret,
                               char **ret_error)
{
        _cleanup_(oci_image_done) struct oci_image img = {};
        json_t *manifest = NULL, *config = NULL, *ids, *env, *d;
        size_t i;
        int r;

        r = read_manifest_config(layout_fd, tag, &manifest, &config, ret_error);
        if (r < 0)
                return r;
        ids = json_object_get(json_object_get(config, "rootfs"), "diff_ids");
        json_array_foreach(json_object_get(manifest, "layers"), i, d)
        {
                struct oci_layer l = {
                    .digest = (char *)json_string_value(json_object_get(d, "digest")),
                    .media_type = (char *)json_string_value(json_object_get(d, "mediaType")),
                    .diff_id = (char *)json_string_value(json_array_get(ids, i)),
                    .size = (uint64_t)json_integer_value(json_object_get(d, "size")),
                };

                if (!oci_digest_valid(l.digest) || !oci_digest_valid(l.diff_id) || !l.media_type) {
                        r = set_error_message(ret_error, -EBADMSG,
                                              "layer %zu of the base image has no valid digest, "
                                              "diff id or media type",
                                              i + 1);
                        break;
                }
                r = oci_image_add_layer(&img, &l);
                if (r < 0)
                        break;
                img.n_base_layers++;
        }
        env = json_object_get(json_object_get(config, "config"), "Env");
        json_array_foreach(env, i, d)
        {
                if (r >= 0 && json_is_string(d))
                        r = strv_extend(&img.env, json_string_value(d));
        }
        json_decref(manifest);
        json_decref(config);
        if (r < 0)
                return r;
        *ret = img;
        img = (struct oci_image){};
        return 0;
}

static int open_blob(int layout_fd, const char *digest, char **ret_error)
{
        _cleanup_free_ char *path = NULL;
        int fd, r;

        r = blob_path(digest, &path);
        if (r < 0)
                return set_error_message(ret_error, -EBADMSG, "'%s' is not a sha256 digest",
                                         digest);
        fd = openat(layout_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return set_error_message(ret_error, -errno, "cannot open the blob %s", digest);
        return fd;
}

int oci_layout_verify_layers(int layout_fd, const struct oci_image *img, char **ret_error)
{
        for (size_t i = 0; i < img->n_layers; i++) {
                const struct oci_layer *l = &img->layers[i];
                _cleanup_free_ char *path = NULL;
                char hex[SHA256_HEX_SIZE];
                struct stat st;
                int r;

                r = blob_path(l->digest, &path);
                if (r < 0)
                        return set_error_message(ret_error, -EBADMSG, "'%s' is not a sha256 digest",
                                                 l->digest);
                if (fstatat(layout_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return set_error_message(ret_error, -errno, "cannot find the blob %s",
                                                 l->digest);
                if ((uint64_t)st.st_size != l->size)
                        return set_error_message(
                            ret_error, -EBADMSG,
                            "the blob %s holds %lld bytes, its descriptor says "
                            "%llu",
                            l->digest, (long long)st.st_size, (unsigned long long)l->size);
                r = sha256_file_hex_at(layout_fd, path, hex);
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot read the blob %s",
                                                 l->digest);
                if (!streq(hex, l->digest + 7))
                        return set_error_message(ret_error, -EBADMSG,
                                                 "the blob %s has the digest sha256:%s: it is "
                                                 "damaged",
                                                 l->digest, hex);
        }
        return 0;
}

int oci_layout_extract_layer(int layout_fd, const struct oci_image *img, size_t i, int dirfd,
                             const char *tree, char **ret_error)
{
        _cleanup_close_ int fd = -1;

        fd = open_blob(layout_fd, img->layers[i].digest, ret_error);
        if (fd < 0)
                return fd;
        return oci_tar_extract_at(fd, dirfd, tree, img->layers[i].digest, NULL, ret_error);
}
