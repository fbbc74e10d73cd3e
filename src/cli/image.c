/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* strata image build: an OCI image of a base and a data dir's layers whose
 * entrypoint is overlayfs-init, for podman run. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "exec.h"
#include "fs.h"
#include "layerstore.h"
#include "log.h"
#include "macro.h"
#include "ociimage.h"
#include "ocilayout.h"
#include "ociregistry.h"
#include "ocistack.h"
#include "strata.h"
#include "strv.h"

static const char *arg_data = "/data";
static const char *arg_base = NULL;
static const char *arg_base_image = NULL;
static const char *arg_init = NULL;
static bool arg_json = false;

void help_oci_image(void)
{
        printf("Usage: strata image build [OPTIONS] REF\n"
               "\n"
               "Builds an OCI image whose layers are the base, an init layer (overlayfs-init\n"
               "and the libraries it needs that the base lacks) and the data dir's active\n"
               "layers, with overlayfs-init as its ENTRYPOINT: `podman run` of it boots the\n"
               "migrated machine (s6-svscan /etc/s6). REF is HOST/REPO[:TAG] (pushed to a\n"
               "registry through skopeo) or oci:DIR[:TAG] (an OCI layout).\n"
               "\n"
               "Options:\n"
               "  --data DIR          the data dir whose layers go in (default /data)\n"
               "  --base DIR          the base as a directory (default /, the host's own)\n"
               "  --base-image REF    the base as an image (HOST/REPO[:TAG] or oci:DIR[:TAG])\n"
               "  --init FILE         the overlayfs-init to put in (default: the installed one)\n"
               "  --json              print {ref, manifest, layers} as JSON\n"
               "  -h, --help          show this help\n"
               "\n"
               "Exit status: 0 success, 1 failure, 2 usage error, 70 internal error.\n");
}

static int fail(int r, const char *error, const char *what)
{
        return command_fail(arg_json, r, error, what, r == -ENOMEM ? EXIT_SOFTWARE : EXIT_FAILURE_);
}

/* The overlayfs-init beside this strata (a build tree), else the installed one. */
static int find_init(char **ret)
{
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        static const char *const installed[] = {"/usr/sbin/overlayfs-init",
                                                "/usr/local/sbin/overlayfs-init"};
        char *p;

        if (arg_init)
                return (*ret = strdup(arg_init)) ? 0 : -ENOMEM;
        if (n > 0) {
                self[n] = 0;
                p = strrchr(self, '/');
                *p = 0;
                if (asprintf(ret, "%s/../init/overlayfs-init", self) < 0)
                        return -ENOMEM;
                if (access(*ret, X_OK) >= 0)
                        return 0;
                free(*ret);
                if (asprintf(ret, "%s/overlayfs-init", self) < 0)
                        return -ENOMEM;
                if (access(*ret, X_OK) >= 0)
                        return 0;
                free(*ret);
        }
        for (size_t i = 0; i < ELEMENTSOF(installed); i++)
                if (access(installed[i], X_OK) >= 0)
                        return (*ret = strdup(installed[i])) ? 0 : -ENOMEM;
        return -ENOENT;
}

/* The skopeo name of a ref the user gave (oci:DIR:TAG stays as it is). */
static int skopeo_name(const char *ref, char **ret)
{
        _cleanup_free_ char *dir = NULL, *tag = NULL;
        int r;

        r = oci_ref_parse(ref, &dir, &tag, ret);
        if (r == 1 && asprintf(ret, "oci:%s:%s", dir, tag) < 0)
                return -ENOMEM;
        return r < 0 ? r : 0;
}

/* The base layers: the image --base-image fetched into the layout, or
 * the tree --base packed. */
static int add_base(struct oci_image *img, int lfd, const char *tmp, int *ret_base_fd,
                    char **ret_error)
{
        _cleanup_free_ char *src = NULL, *dst = NULL, *error = NULL;
        int r;

        *ret_base_fd = -1;
        if (!arg_base_image) {
                log_notice("packing the base '%s'", arg_base);
                *ret_base_fd = open(arg_base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (*ret_base_fd < 0)
                        return set_error_message(ret_error, -errno, "cannot open the base '%s': %s",
                                                 arg_base, strerror(errno));
                return oci_image_add_tree(img, lfd, AT_FDCWD, arg_base, ret_error);
        }
        r = skopeo_name(arg_base_image, &src);
        if (r < 0)
                return set_error_message(ret_error, -EINVAL, "invalid --base-image '%s'",
                                         arg_base_image);
        if (asprintf(&dst, "oci:%s/layout:base", tmp) < 0)
                return -ENOMEM;
        log_notice("fetching the base image %s", src);
        r = oci_registry_copy(executor_real(), src, dst, true, &error);
        if (r >= 0)
                r = oci_layout_read_base_image(lfd, "base", img, &error);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot use the base image '%s': %s",
                                         arg_base_image, error ? error : strerror(-r));
        return 0;
}

static bool env_has_path(char *const *env)
{
        STRV_FOREACH (e, env)
                if (startswith(*e, "PATH="))
                        return true;
        return false;
}

static int build(const char *ref, int data_fd, const struct layer_metadata *md, const char *tmp,
                 json_t **ret, char **ret_error)
{
        _cleanup_(oci_image_done) struct oci_image img = {};
        _cleanup_free_ char *layout = NULL, *tree = NULL, *init = NULL, *src = NULL, *dst = NULL;
        _cleanup_close_ int lfd = -1, base_fd = -1;
        struct oci_blob_info m;
        int r;

        if (asprintf(&layout, "%s/layout", tmp) < 0 || asprintf(&tree, "%s/init", tmp) < 0 ||
            asprintf(&src, "oci:%s:image", layout) < 0)
                return -ENOMEM;
        r = skopeo_name(ref, &dst);
        if (r < 0)
                return set_error_message(ret_error, -EINVAL, "invalid image reference '%s'", ref);
        r = find_init(&init);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot find overlayfs-init (--init FILE)");
        /* the layout is a temp one, read once by skopeo */
        lfd =
            oci_layout_open_at(AT_FDCWD, layout, OCI_LAYOUT_CREATE | OCI_LAYOUT_SCRATCH, ret_error);
        if (lfd < 0)
                return lfd;
        r = add_base(&img, lfd, tmp, &base_fd, ret_error);
        if (r < 0)
                return r;
        if (mkdir(tree, 0755) < 0)
                return set_error_message(ret_error, -errno, "cannot create '%s'", tree);
        r = oci_init_tree_make(executor_real(), init, base_fd, AT_FDCWD, tree, ret_error);
        if (r >= 0)
                r = oci_image_add_tree(&img, lfd, AT_FDCWD, tree, ret_error);
        if (r >= 0 && md->n_layers > 0)
                r = oci_image_add_stack(&img, lfd, data_fd, arg_data, md, 0, md->n_layers, NULL,
                                        NULL, ret_error);
        if (r < 0)
                return r;
        /* the base image's Env stays; PATH is added when it has none,
         * for overlayfs-init to find s6-svscan */
        if (strv_extend(&img.entrypoint, "/" OCI_INIT_PATH) < 0 ||
            (!env_has_path(img.env) &&
             strv_extend(&img.env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                   "/usr/bin:/sbin:/bin") < 0))
                return -ENOMEM;
        r = oci_layout_write_image(lfd, &img, "image", OCI_LAYOUT_SCRATCH, &m, ret_error);
        if (r < 0)
                return r;
        log_notice("copying the image (%zu layers) to %s", img.n_layers, dst);
        r = oci_registry_copy(executor_real(), src, dst, true, ret_error);
        if (r < 0)
                return r;
        *ret = json_pack("{s:s,s:s,s:I,s:I}", "ref", ref, "manifest", m.digest, "layers",
                         (json_int_t)img.n_layers, "strata_layers",
                         (json_int_t)(img.n_layers - img.n_base_layers));
        return *ret ? 0 : -ENOMEM;
}

static int do_build(const char *ref)
{
        _cleanup_(layer_metadata_done) struct layer_metadata md = {};
        _cleanup_free_ char *error = NULL, *tmp = NULL, *s = NULL;
        _cleanup_close_ int data_fd = -1;
        json_t *j = NULL;
        int r;

        if (skopeo_name(ref, &s) < 0) {
                log_error("invalid image reference '%s': expected HOST/REPO[:TAG] or oci:DIR[:TAG]",
                          ref);
                return EXIT_USAGE;
        }
        free(s);
        s = NULL;
        if (arg_base_image && skopeo_name(arg_base_image, &s) < 0) {
                log_error("invalid --base-image '%s': expected HOST/REPO[:TAG] or oci:DIR[:TAG]",
                          arg_base_image);
                return EXIT_USAGE;
        }
        free(s);
        s = NULL;
        data_fd = open(arg_data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (data_fd < 0) {
                log_error_errno(errno, "cannot open the data dir '%s': %m", arg_data);
                return EXIT_FAILURE_;
        }
        r = layer_metadata_load(data_fd, &md, &error);
        if (r < 0)
                return fail(r, error, "cannot load the metadata");
        r = mkdtemp_malloc("strata-image", &tmp);
        if (r < 0)
                return fail(r, NULL, "cannot create a temp dir");
        r = build(ref, data_fd, &md, tmp, &j, &error);
        (void)rm_rf_at(AT_FDCWD, tmp, RM_ROOT | RM_MISSING_OK);
        if (r < 0)
                return fail(r, error, "cannot build the image");
        if (arg_json) {
                s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                if (s)
                        puts(s);
        } else
                printf("built %s (manifest %s, %lld strata layers)\n", ref,
                       json_string_value(json_object_get(j, "manifest")),
                       (long long)json_integer_value(json_object_get(j, "strata_layers")));
        json_decref(j);
        return EXIT_OK;
}

int cmd_image(int argc, char **argv)
{
        enum { ARG_DATA = 0x100, ARG_BASE, ARG_BASE_IMAGE, ARG_INIT };
        static const struct option options[] = {
            {"help", no_argument, NULL, 'h'},
            {"json", no_argument, NULL, 'j'},
            {"data", required_argument, NULL, ARG_DATA},
            {"base", required_argument, NULL, ARG_BASE},
            {"base-image", required_argument, NULL, ARG_BASE_IMAGE},
            {"init", required_argument, NULL, ARG_INIT},
            {},
        };
        int opt;

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        help_oci_image();
                        return EXIT_OK;
                case 'j':
                        arg_json = true;
                        break;
                case ARG_DATA:
                        arg_data = optarg;
                        break;
                case ARG_BASE:
                        arg_base = optarg;
                        break;
                case ARG_BASE_IMAGE:
                        arg_base_image = optarg;
                        break;
                case ARG_INIT:
                        arg_init = optarg;
                        break;
                case '?':
                        return EXIT_USAGE;
                default:
                        return EXIT_SOFTWARE;
                }
        }
        if (arg_base && arg_base_image) {
                log_error("--base and --base-image exclude each other");
                return EXIT_USAGE;
        }
        if (!arg_base)
                arg_base = "/";
        if (argc - optind != 2 || !streq(argv[optind], "build")) {
                log_error("usage: strata image build [OPTIONS] REF (see --help)");
                return EXIT_USAGE;
        }
        return do_build(argv[optind + 1]);
}
