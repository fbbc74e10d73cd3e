/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "cleanup.h"
#include "log.h"
#include "mountinfo.h"
#include "strata.h"

void help_mounts(void)
{
        printf("Usage: strata mounts [--json] [--table FILE] [PATH]\n"
               "\n"
               "Lists the mounts at or below PATH (default /) in the order they must be\n"
               "unmounted: every mount comes before the mounts it sits on.\n"
               "\n"
               "  --json         print a JSON array of {id,parent,target,source,fstype,options}\n"
               "  --table FILE   read FILE (mountinfo format) instead of /proc/self/mountinfo\n");
}

int cmd_mounts(int argc, char **argv)
{
        enum { ARG_TABLE = 0x100 };
        static const struct option options[] = {
            {"help", no_argument, NULL, 'h'},
            {"json", no_argument, NULL, 'j'},
            {"table", required_argument, NULL, ARG_TABLE},
            {},
        };
        struct mount_list l = {};
        const char *table = NULL, *under = "/";
        bool json = false;
        int opt, r;

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        help_mounts();
                        return EXIT_OK;
                case 'j':
                        json = true;
                        break;
                case ARG_TABLE:
                        table = optarg;
                        break;
                case '?':
                        return EXIT_USAGE;
                default:
                        return EXIT_SOFTWARE;
                }
        }
        if (argc - optind > 1) {
                log_error("mounts takes at most one PATH");
                return EXIT_USAGE;
        }
        if (optind < argc)
                under = argv[optind];

        r = mountinfo_read(table, under, &l);
        if (r == -EBADMSG) {
                unsigned line = 0;

                (void)mountinfo_check_file(table, &line);
                log_error("'%s' is not a mount table: line %u is not in the mountinfo format of "
                          "proc(5)",
                          table, line);
                return EXIT_FAILURE_;
        }
        if (r < 0) {
                log_error_errno(r, "cannot read the mount table '%s': %m",
                                table ? table : "/proc/self/mountinfo");
                return EXIT_FAILURE_;
        }

        if (json) {
                json_t *a = json_array();
                _cleanup_free_ char *s = NULL;

                for (size_t i = 0; a && i < l.n; i++) {
                        const struct mount_entry *e = &l.entries[i];
                        json_array_append_new(a, json_pack("{s:i,s:i,s:s,s:s,s:s,s:s}", "id", e->id,
                                                           "parent", e->parent_id, "target",
                                                           e->target, "source", e->source, "fstype",
                                                           e->fstype, "options", e->options));
                }
                s = a ? json_dumps(a, JSON_INDENT(2)) : NULL;
                json_decref(a);
                if (!s) {
                        mount_list_done(&l);
                        log_oom();
                        return EXIT_SOFTWARE;
                }
                puts(s);
        } else {
                printf("%-6s %-10s %-12s %s\n", "ID", "FSTYPE", "SOURCE", "TARGET");
                for (size_t i = 0; i < l.n; i++)
                        printf("%-6d %-10s %-12s %s\n", l.entries[i].id, l.entries[i].fstype,
                               l.entries[i].source, l.entries[i].target);
        }
        mount_list_done(&l);
        return EXIT_OK;
}
