/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "config.h"
#include "strata-version.h"
#include "log.h"
#include "macro.h"
#include "strata.h"

static const struct command commands[] = {
    {"help", cmd_help, "show help for strata or for one command", help_help},
    {"version", cmd_version, "print the version", help_version},
    {"doctor", cmd_doctor, "check what this machine offers strata", help_doctor},
    {"lab", cmd_lab, "run a throwaway machine: lab run / lab test", help_lab},
    {"mounts", cmd_mounts, "list the mounts under a path, in unmount order", help_mounts},
    {"image", cmd_image, "an OCI image of a base and the layers, booted by overlayfs-init",
     help_oci_image},
    {"layer", cmd_layer, "layers as OCI image layers: export, import, push, pull", help_layer},
    {"migrate", cmd_migrate, "migrations as overlayfs layers (same as system-migrate)",
     help_migrate},
    {"pkg", cmd_pkg, "install and run packages as containers (orchestrator policy)", help_pkg},
    {"vm", cmd_vm, "QEMU guests: base images, instances, run, ssh, snapshots", help_vm},
    {"worker", cmd_worker, "isolated build roots from mount plans, many at once", help_worker},
    {"orchd", cmd_orchd, "the orchestrator as a service: JSON-RPC API and health monitor",
     help_orchd},
};

const struct command *command_find(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, name))
                        return &commands[i];
        return NULL;
}

void strata_usage(FILE *f)
{
        fprintf(f, "Usage: strata [OPTIONS] COMMAND [ARGS...]\n"
                   "\n"
                   "Layered, reproducible Linux machines: migrations as overlayfs layers,\n"
                   "a layered init, a service orchestrator and a lab to test it all.\n"
                   "\n"
                   "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
        fprintf(f, "\n"
                   "Options:\n"
                   "  -h, --help            show this help\n"
                   "  -V, --version         print the version\n"
                   "  -v, --verbose         more output (repeat for debug)\n"
                   "  -q, --quiet           errors only\n"
                   "      --log-level=LVL   error, warning, notice, info or debug\n"
                   "\n"
                   "Run 'strata help COMMAND' or 'strata COMMAND --help' for a command's options.\n"
                   "Exit status: 0 success, 1 failure, 2 usage error, 70 internal error,\n"
                   "75 resource busy (try again).\n");
}

int main(int argc, char **argv)
{
        enum { ARG_LOG_LEVEL = 0x100 };
        static const struct option options[] = {
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},
            {"verbose", no_argument, NULL, 'v'},
            {"quiet", no_argument, NULL, 'q'},
            {"log-level", required_argument, NULL, ARG_LOG_LEVEL},
            {},
        };
        _cleanup_free_ char *name = NULL;
        const struct command *c;
        bool version = false;
        int opt, status;

        log_set_program_name("strata");

        /* '+': stop at the first non-option, the command name. */
        while ((opt = getopt_long(argc, argv, "+hVvq", options, NULL)) >= 0) {
                if (log_option(opt, ARG_LOG_LEVEL, optarg, &status)) {
                        if (status >= 0)
                                return status;
                        continue;
                }
                switch (opt) {
                case 'h':
                        strata_usage(stdout);
                        return EXIT_OK;
                case 'V':
                        version = true;
                        break;
                case '?':
                        return EXIT_USAGE;
                default:
                        return EXIT_SOFTWARE;
                }
        }

        if (version) {
                if (optind < argc) {
                        log_error("--version takes no arguments; unexpected '%s'", argv[optind]);
                        return EXIT_USAGE;
                }
                printf("strata %s\n", STRATA_VERSION);
                return EXIT_OK;
        }
        if (optind >= argc) {
                strata_usage(stderr);
                return EXIT_USAGE;
        }

        c = command_find(argv[optind]);
        if (!c) {
                log_error("unknown command '%s'; run 'strata --help' for the list", argv[optind]);
                return EXIT_USAGE;
        }

        /* Each command parses its own options from its name on; getopt's
         * messages start with argv[0], so that names the command. */
        if (asprintf(&name, "strata %s", c->name) < 0)
                return log_oom(), EXIT_SOFTWARE;
        argc -= optind;
        argv += optind;
        argv[0] = name;
        optind = 0;
        return c->handler(argc, argv);
}

int timeout_parse(const char *value, uint64_t *ret_usec)
{
        char *end;
        double t;

        errno = 0;
        t = strtod(value, &end);
        if (errno || end == value || *end || !(t > 0) || t > 1e9) {
                log_error("invalid --timeout '%s': a positive number of seconds", value);
                return -EINVAL;
        }
        *ret_usec = (uint64_t)(t * 1e6);
        return 0;
}

/* Splits the writable copy s of spec in place: s becomes SRC, *ret_dst
 * points at DST. */
static int bind_spec_split(char *s, const char *spec, char **ret_dst, bool *ret_read_only)
{
        char *dst, *mode;

        dst = strchr(s, ':');
        if (!dst) {
                log_error("invalid --bind '%s': expected SRC:DST[:ro]", spec);
                return -EINVAL;
        }
        *dst++ = '\0';
        mode = strchr(dst, ':');
        if (mode) {
                *mode++ = '\0';
                if (!streq(mode, "ro") && !streq(mode, "rw")) {
                        log_error("invalid --bind '%s': the mode is 'ro' or 'rw'", spec);
                        return -EINVAL;
                }
        }
        if (dst[0] != '/') {
                log_error("invalid --bind '%s': DST must be an absolute path", spec);
                return -EINVAL;
        }
        *ret_dst = dst;
        *ret_read_only = mode && streq(mode, "ro");
        return 0;
}

int bind_spec_parse(const char *spec, char **ret_src, char **ret_dst, bool *ret_read_only)
{
        _cleanup_free_ char *s = strdup(spec), *src = NULL, *dest = NULL;
        char *dst;
        bool read_only;
        int r;

        if (!s)
                return log_oom();
        r = bind_spec_split(s, spec, &dst, &read_only);
        if (r < 0)
                return r;
        src = realpath(s, NULL);
        if (!src)
                return log_error_errno(errno, "invalid --bind '%s': cannot resolve '%s': %m", spec,
                                       s);
        dest = strdup(dst);
        if (!dest)
                return log_oom();
        *ret_src = TAKE_PTR(src);
        *ret_dst = TAKE_PTR(dest);
        *ret_read_only = read_only;
        return 0;
}

int command_fail(bool json, int r, const char *error, const char *what, int status)
{
        if (json) {
                json_t *j = json_pack("{s:s}", "error", error ? error : strerror(-r));
                _cleanup_free_ char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

                json_decref(j);
                if (s)
                        puts(s);
        }
        if (error)
                log_error("%s", error);
        else
                log_error_errno(r, "%s: %m", what);
        return status;
}
