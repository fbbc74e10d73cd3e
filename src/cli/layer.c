/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* strata layer: a data dir's layers as OCI image layers (export, import,
 * push, pull). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "exec.h"
#include "fs.h"
#include "layerstore.h"
#include "log.h"
#include "macro.h"
#include "migrate.h"
#include "ociimage.h"
#include "ocilayout.h"
#include "ocimap.h"
#include "ociregistry.h"
#include "ocistack.h"
#include "ocitar.h"
#include "strata.h"
#include "strv.h"

#define DEFAULT_TAG "latest"

static const char *arg_data = "/data";
static const char *arg_base = "/";
static const char *arg_oci = NULL;
static const char *arg_tar = NULL;
static const char *arg_tag = NULL;
static const char *arg_id = NULL;
static bool arg_json = false;
static bool arg_force = false;

void help_layer(void)
{
        printf(
            "Usage: strata layer COMMAND [OPTIONS]\n"
            "\n"
            "A data dir's layers as OCI image layers (docs/layers-oci.md):\n"
            "\n"
            "  export ID --oci DIR [--tag TAG]   layer ID (or the layer holding migration ID)\n"
            "                                    as a one-layer image in the OCI layout DIR\n"
            "  export ID --tar FILE              the same layer as a layer tar alone\n"
            "  import DIR [--tag TAG]            adds the layers of the image in the OCI\n"
            "                                    layout DIR that the data dir lacks\n"
            "  import FILE --id ID               adds a layer tar as the layer of migration ID\n"
            "  push REF                          the active stack as an image: REF is\n"
            "                                    HOST/REPO[:TAG] (a registry, through skopeo)\n"
            "                                    or oci:DIR[:TAG]\n"
            "  pull REF                          adds the layers of the image REF that the data\n"
            "                                    dir lacks, every blob checked by digest\n"
            "\n"
            "Options:\n"
            "  --data DIR     the data dir (default /data)\n"
            "  --base DIR     the base, for the change list of an imported tar (default /)\n"
            "  --oci DIR      export: write an OCI image layout\n"
            "  --tar FILE     export: write the layer tar\n"
            "  --tag TAG      the image's tag in an OCI layout (default latest)\n"
            "  --id ID        import of a tar: the migration id of the layer\n"
            "  --force        import, pull: over a base other than the layers were built over\n"
            "  --json         print the result as JSON\n"
            "  -h, --help     show this help\n"
            "\n"
            "Registries: credentials from containers-auth.json(5) ($REGISTRY_AUTH_FILE),\n"
            "TLS settings from containers-registries.conf(5) ($CONTAINERS_REGISTRIES_CONF).\n"
            "Exit status: 0 success, 1 failure (a registry error, a blob whose digest\n"
            "differs, stacks that differ), 2 usage error or unknown ID, 70 internal error,\n"
            "75 another migration holds the lock of the data dir.\n");
}

static int exit_of(int r)
{
        switch (r) {
        case -EWOULDBLOCK:
                return EXIT_TEMPFAIL;
        case -ENOMEM:
                return EXIT_SOFTWARE;
        case -EINVAL:
                return EXIT_USAGE;
        default:
                return EXIT_FAILURE_;
        }
}

static int fail(int r, const char *error, const char *what)
{
        return command_fail(arg_json, r, error, what, exit_of(r));
}

static void print_json(json_t *j)
{
        _cleanup_free_ char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

        json_decref(j);
        if (s)
                puts(s);
}

static void progress(size_t i, size_t n, const char *id, void *userdata)
{
        log_notice("packing layer %zu/%zu: %s", i + 1, n, id);
}

static int open_data(int *ret_fd, struct layer_metadata *md, char **ret_error)
{
        _cleanup_free_ char *error = NULL;
        int fd, r;

        fd = open(arg_data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return set_error_message(ret_error, errno == ENOENT ? -EINVAL : -errno,
                                         "cannot open the data dir '%s': %s", arg_data,
                                         strerror(errno));
        r = layer_metadata_load(fd, md, &error);
        if (r < 0) {
                close(fd);
                return set_error_message(ret_error, r, "cannot load the metadata of '%s': %s",
                                         arg_data, error ? error : strerror(-r));
        }
        *ret_fd = fd;
        return 0;
}

/* Index of the active layer with id, or holding migration id. */
static int find_layer(const struct layer_metadata *md, const char *id)
{
        for (size_t i = 0; i < md->n_layers; i++)
                if (streq(md->layers[i].id, id))
                        return (int)i;
        return layer_metadata_find_migration(md, id);
}

static int export_tar(int data_fd, const struct layer_entry *e, struct oci_blob_info *ret,
                      char **ret_error)
{
        _cleanup_free_ char *fs = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        if (asprintf(&fs, MIGRATE_LAYERS "/%s/fs", e->dir) < 0 ||
            asprintf(&tmp, "%s.tmp-%d", arg_tar, getpid()) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return set_error_message(ret_error, -errno, "cannot create '%s': %s", tmp,
                                         strerror(errno));
        r = oci_tar_write_at(data_fd, fs, fd, ret, ret_error);
        if (r >= 0 && (fsync(fd) < 0 || rename(tmp, arg_tar) < 0))
                r = set_error_message(ret_error, -errno, "cannot write '%s': %s", arg_tar,
                                      strerror(errno));
        if (r < 0)
                (void)unlink(tmp);
        return r;
}

/* Writes layers [from, from + n) of the data dir as an image tagged tag
 * in the layout dir (flags: OCI_LAYOUT_SCRATCH for a temp one). */
static int export_layout(int data_fd, const struct layer_metadata *md, size_t from, size_t n,
                         const char *dir, const char *tag, unsigned flags, struct oci_image *img,
                         struct oci_blob_info *ret_manifest, char **ret_error)
{
        _cleanup_close_ int lfd = -1;
        int r;

        lfd = oci_layout_open_at(AT_FDCWD, dir, OCI_LAYOUT_CREATE | flags, ret_error);
        if (lfd < 0)
                return lfd;
        r = oci_image_add_stack(img, lfd, data_fd, arg_data, md, from, n, progress, NULL,
                                ret_error);
        if (r < 0)
                return r;
        return oci_layout_write_image(lfd, img, tag, flags, ret_manifest, ret_error);
}

static json_t *layers_json(const struct oci_image *img)
{
        json_t *a = json_array();

        for (size_t i = img->n_base_layers; i < img->n_layers; i++)
                json_array_append_new(a, json_pack("{s:s,s:s,s:I}", "id", img->layers[i].id,
                                                   "digest", img->layers[i].digest, "size",
                                                   (json_int_t)img->layers[i].size));
        return a;
}

static int do_export(const char *id)
{
        _cleanup_(layer_metadata_done) struct layer_metadata md = {};
        _cleanup_(oci_image_done) struct oci_image img = {};
        _cleanup_free_ char *error = NULL;
        _cleanup_close_ int data_fd = -1;
        struct oci_blob_info b, m;
        int i, r;

        if (!!arg_oci == !!arg_tar) {
                log_error("export needs one of --oci DIR or --tar FILE");
                return EXIT_USAGE;
        }
        r = open_data(&data_fd, &md, &error);
        if (r < 0)
                return fail(r, error, "cannot open the data dir");
        i = find_layer(&md, id);
        if (i < 0) {
                log_error("'%s' names no active layer of '%s' (nor a migration in one)", id,
                          arg_data);
                return EXIT_USAGE;
        }
        if (arg_tar) {
                r = export_tar(data_fd, &md.layers[i], &b, &error);
                if (r < 0)
                        return fail(r, error, "cannot export the layer");
                if (arg_json)
                        print_json(json_pack("{s:s,s:s,s:s,s:I}", "id", md.layers[i].id, "tar",
                                             arg_tar, "digest", b.digest, "size",
                                             (json_int_t)b.size));
                else
                        printf("%s %s\n", b.digest, arg_tar);
                return EXIT_OK;
        }
        r = export_layout(data_fd, &md, (size_t)i, 1, arg_oci, arg_tag ? arg_tag : DEFAULT_TAG, 0,
                          &img, &m, &error);
        if (r < 0)
                return fail(r, error, "cannot export the layer");
        if (arg_json)
                print_json(json_pack("{s:s,s:s,s:s,s:o}", "oci", arg_oci, "tag",
                                     arg_tag ? arg_tag : DEFAULT_TAG, "manifest", m.digest,
                                     "layers", layers_json(&img)));
        else
                printf("%s %s\n", img.layers[0].digest, md.layers[i].id);
        return EXIT_OK;
}

struct fill_ctx {
        int layout_fd;
        const struct oci_image *img;
        size_t first; /* index in img of the first layer adopted */
        const char *tar;
};

static int fill_from_layout(size_t i, int dirfd, const char *tree, void *userdata, char **ret_error)
{
        struct fill_ctx *c = userdata;
        size_t k = c->first + i;

        log_notice("unpacking layer %zu: %s (%s)", i + 1, c->img->layers[k].id,
                   c->img->layers[k].digest);
        return oci_layout_extract_layer(c->layout_fd, c->img, k, dirfd, tree, ret_error);
}

static int fill_from_tar(size_t i, int dirfd, const char *tree, void *userdata, char **ret_error)
{
        struct fill_ctx *c = userdata;
        _cleanup_close_ int fd = -1;

        fd = open(c->tar, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return set_error_message(ret_error, -errno, "cannot open '%s': %s", c->tar,
                                         strerror(errno));
        return oci_tar_extract_at(fd, dirfd, tree, NULL, NULL, ret_error);
}

static int open_migrate(struct migrate **ret, char **ret_error)
{
        struct migrate_options o = {
            .data_dir = arg_data, .base = arg_base, .output_fd = -1, .force = arg_force};

        if (arg_data[0] != '/' || arg_base[0] != '/')
                return set_error_message(ret_error, -EINVAL,
                                         "--data and --base take absolute paths ('%s', '%s')",
                                         arg_data, arg_base);
        return migrate_open(&o, true, ret, ret_error);
}

/* Which image layers the data dir lacks: the index in img of the first
 * one, or a message naming the first difference. */
static int plan_pull(struct migrate *m, const struct oci_image *img, const char *from,
                     size_t *ret_first, char **ret_error)
{
        _cleanup_free_ char **local = NULL, **ids = NULL;
        const char *dl = NULL, *di = NULL;
        int k;

        if (migrate_layer_ids(m, &local) < 0 || oci_image_layer_ids(img, &ids) < 0)
                return -ENOMEM;
        k = oci_stack_plan(local, strv_length(local), ids, strv_length(ids), img->parent, &dl, &di);
        if (k == -ESRCH)
                return set_error_message(ret_error, -EUCLEAN,
                                         "the layers of '%s' sit on the layer '%s', which the data "
                                         "dir '%s' has not applied: pull an image of the whole "
                                         "stack",
                                         from, di, arg_data);
        if (k == -EUCLEAN)
                return set_error_message(ret_error, -EUCLEAN,
                                         "the data dir '%s' and the image '%s' differ: the data "
                                         "dir has applied '%s' where the image has '%s'; nothing "
                                         "was changed",
                                         arg_data, from, dl, di);
        *ret_first = img->n_base_layers + (size_t)k;
        return 0;
}

/* Adds what the data dir lacks of the image tagged tag in the layout. */
static int pull_layout(int layout_fd, const char *tag, const char *from)
{
        _cleanup_(oci_image_done) struct oci_image img = {};
        _cleanup_(migrate_freep) struct migrate *m = NULL;
        _cleanup_free_ struct migrate_adopt_layer *al = NULL;
        _cleanup_free_ char *error = NULL, *base = NULL;
        struct fill_ctx c = {.layout_fd = layout_fd, .img = &img};
        struct migrate_adopt a = {.fill = fill_from_layout, .userdata = &c, .origin = from};
        json_t *added;
        size_t first = 0;
        int r;

        r = oci_layout_read_image(layout_fd, tag, &img, &error);
        if (r >= 0)
                r = oci_layout_verify_layers(layout_fd, &img, &error);
        if (r >= 0)
                r = open_migrate(&m, &error);
        if (r >= 0)
                r = plan_pull(m, &img, from, &first, &error);
        if (r < 0)
                return fail(r == -EINVAL ? -EBADMSG : r, error, "cannot pull");
        c.first = first;
        a.n_layers = img.n_layers - first;
        al = calloc(a.n_layers + 1, sizeof(*al));
        if (!al)
                return fail(-ENOMEM, NULL, "cannot pull");
        for (size_t i = 0; i < a.n_layers; i++)
                al[i] = (struct migrate_adopt_layer){
                    .id = img.layers[first + i].id,
                    .migrations = img.layers[first + i].migrations,
                    .layer_json = img.layers[first + i].layer_json,
                    .changes = img.layers[first + i].changes ? img.layers[first + i].changes : "",
                };
        a.layers = al;
        a.parent = first > img.n_base_layers ? img.layers[first - 1].id : img.parent;
        a.state_paths = img.state_paths;
        base = img.base ? json_dumps(img.base, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        a.base_json = base;
        r = migrate_adopt(m, &a, &error);
        if (r < 0)
                return fail(r, error, "cannot pull");
        added = json_array();
        for (size_t i = 0; i < a.n_layers; i++)
                json_array_append_new(added, json_string(al[i].id));
        if (arg_json)
                print_json(json_pack("{s:s,s:o,s:I}", "data", arg_data, "added", added, "present",
                                     (json_int_t)(first - img.n_base_layers)));
        else {
                json_decref(added);
                printf("%zu layer%s added to '%s' from '%s', %zu already there\n", a.n_layers,
                       a.n_layers == 1 ? "" : "s", arg_data, from, first - img.n_base_layers);
        }
        return EXIT_OK;
}

static int import_tar(const char *file)
{
        _cleanup_(migrate_freep) struct migrate *m = NULL;
        _cleanup_free_ char *error = NULL, **ids = NULL;
        char *migrations[] = {(char *)arg_id, NULL};
        struct fill_ctx c = {.tar = file};
        struct migrate_adopt_layer l = {.id = arg_id, .migrations = migrations};
        struct migrate_adopt a = {
            .layers = &l, .n_layers = 1, .fill = fill_from_tar, .userdata = &c, .origin = file};
        size_t n;
        int r;

        if (!arg_id) {
                log_error("import of the tar '%s' needs --id ID (the layer's migration id)", file);
                return EXIT_USAGE;
        }
        r = open_migrate(&m, &error);
        if (r >= 0)
                r = migrate_layer_ids(m, &ids);
        if (r < 0)
                return fail(r, error, "cannot import");
        n = strv_length(ids);
        a.parent = n ? ids[n - 1] : NULL;
        r = migrate_adopt(m, &a, &error);
        if (r < 0)
                return fail(r, error, "cannot import");
        if (arg_json)
                print_json(json_pack("{s:s,s:[s]}", "data", arg_data, "added", arg_id));
        else
                printf("layer '%s' added to '%s' from '%s'\n", arg_id, arg_data, file);
        return EXIT_OK;
}

static int do_import(const char *path)
{
        _cleanup_free_ char *error = NULL;
        _cleanup_close_ int lfd = -1;
        struct stat st;

        if (stat(path, &st) < 0) {
                log_error_errno(errno, "cannot import '%s': %m", path);
                return EXIT_FAILURE_;
        }
        if (!S_ISDIR(st.st_mode))
                return import_tar(path);
        lfd = oci_layout_open_at(AT_FDCWD, path, 0, &error);
        if (lfd < 0)
                return fail(lfd, error, "cannot import");
        return pull_layout(lfd, arg_tag, path);
}

static int parse_ref(const char *ref, char **ret_dir, char **ret_tag, char **ret_transport)
{
        int r = oci_ref_parse(ref, ret_dir, ret_tag, ret_transport);

        if (r < 0)
                log_error("invalid image reference '%s': expected HOST/REPO[:TAG] or oci:DIR[:TAG]",
                          ref);
        return r;
}

/* A temp dir for an OCI layout, removed by rm_tmp. */
static int make_tmp(char **ret)
{
        int r = mkdtemp_malloc("strata-oci", ret);

        if (r < 0)
                log_error_errno(r, "cannot create a temp dir under $TMPDIR: %m");
        return r;
}

static void rm_tmp(char **p)
{
        if (*p) {
                (void)rm_rf_at(AT_FDCWD, *p, RM_ROOT | RM_MISSING_OK);
                free(*p);
        }
}

static int do_push(const char *ref)
{
        _cleanup_(layer_metadata_done) struct layer_metadata md = {};
        _cleanup_(oci_image_done) struct oci_image img = {};
        _cleanup_free_ char *error = NULL, *dir = NULL, *tag = NULL, *transport = NULL, *src = NULL;
        _cleanup_(rm_tmp) char *tmp = NULL;
        _cleanup_close_ int data_fd = -1;
        struct oci_blob_info m;
        int r;

        if (parse_ref(ref, &dir, &tag, &transport) < 0)
                return EXIT_USAGE;
        r = open_data(&data_fd, &md, &error);
        if (r < 0)
                return fail(r, error, "cannot open the data dir");
        if (md.n_layers == 0) {
                log_error("'%s' has no active layer to push", arg_data);
                return EXIT_FAILURE_;
        }
        if (transport && make_tmp(&tmp) < 0)
                return EXIT_FAILURE_;
        /* the temp layout of a push to a registry is read once by skopeo
         * and removed: syncing it buys nothing (the registry's copy is
         * what counts); a layout that is the destination is synced */
        r = export_layout(data_fd, &md, 0, md.n_layers, transport ? tmp : dir,
                          transport ? "push" : tag, transport ? OCI_LAYOUT_SCRATCH : 0, &img, &m,
                          &error);
        if (r < 0)
                return fail(r, error, "cannot push");
        if (transport) {
                if (asprintf(&src, "oci:%s:push", tmp) < 0)
                        return fail(-ENOMEM, NULL, "cannot push");
                log_notice("pushing %zu layer%s to %s", md.n_layers, md.n_layers == 1 ? "" : "s",
                           transport);
                r = oci_registry_copy(executor_real(), src, transport, true, &error);
                if (r < 0)
                        return fail(r, error, "cannot push");
        }
        if (arg_json)
                print_json(json_pack("{s:s,s:s,s:o}", "ref", ref, "manifest", m.digest, "layers",
                                     layers_json(&img)));
        else
                printf("pushed %zu layer%s to %s (manifest %s)\n", md.n_layers,
                       md.n_layers == 1 ? "" : "s", ref, m.digest);
        return EXIT_OK;
}

static int do_pull(const char *ref)
{
        _cleanup_free_ char *error = NULL, *dir = NULL, *tag = NULL, *transport = NULL, *dst = NULL;
        _cleanup_(rm_tmp) char *tmp = NULL;
        _cleanup_close_ int lfd = -1;
        int r;

        if (parse_ref(ref, &dir, &tag, &transport) < 0)
                return EXIT_USAGE;
        if (transport) {
                if (make_tmp(&tmp) < 0)
                        return EXIT_FAILURE_;
                if (asprintf(&dst, "oci:%s:pull", tmp) < 0)
                        return fail(-ENOMEM, NULL, "cannot pull");
                log_notice("fetching %s", transport);
                r = oci_registry_copy(executor_real(), transport, dst, true, &error);
                if (r < 0)
                        return fail(r, error, "cannot pull");
        }
        lfd = oci_layout_open_at(AT_FDCWD, transport ? tmp : dir, 0, &error);
        if (lfd < 0)
                return fail(lfd, error, "cannot pull");
        return pull_layout(lfd, transport ? "pull" : tag, ref);
}

int cmd_layer(int argc, char **argv)
{
        enum { ARG_DATA = 0x100, ARG_BASE, ARG_OCI, ARG_TAR, ARG_TAG, ARG_ID, ARG_FORCE };
        static const struct option options[] = {
            {"help", no_argument, NULL, 'h'},
            {"json", no_argument, NULL, 'j'},
            {"data", required_argument, NULL, ARG_DATA},
            {"base", required_argument, NULL, ARG_BASE},
            {"oci", required_argument, NULL, ARG_OCI},
            {"tar", required_argument, NULL, ARG_TAR},
            {"tag", required_argument, NULL, ARG_TAG},
            {"id", required_argument, NULL, ARG_ID},
            {"force", no_argument, NULL, ARG_FORCE},
            {},
        };
        const char *verb;
        int opt;

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        help_layer();
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
                case ARG_OCI:
                        arg_oci = optarg;
                        break;
                case ARG_TAR:
                        arg_tar = optarg;
                        break;
                case ARG_TAG:
                        arg_tag = optarg;
                        break;
                case ARG_ID:
                        arg_id = optarg;
                        break;
                case ARG_FORCE:
                        arg_force = true;
                        break;
                case '?':
                        return EXIT_USAGE;
                default:
                        return EXIT_SOFTWARE;
                }
        }
        if (argc - optind != 2) {
                log_error("usage: strata layer export|import|push|pull ARG [OPTIONS] (see --help)");
                return EXIT_USAGE;
        }
        verb = argv[optind];
        if (streq(verb, "export"))
                return do_export(argv[optind + 1]);
        if (streq(verb, "import"))
                return do_import(argv[optind + 1]);
        if (streq(verb, "push"))
                return do_push(argv[optind + 1]);
        if (streq(verb, "pull"))
                return do_pull(argv[optind + 1]);
        log_error("unknown layer command '%s' (export, import, push, pull)", verb);
        return EXIT_USAGE;
}
