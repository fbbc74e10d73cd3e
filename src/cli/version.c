/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "strata-version.h"
#include "log.h"
#include "macro.h"
#include "strata.h"

int cmd_version(int argc, char **argv)
{
        static const struct option options[] = {
            {"help", no_argument, NULL, 'h'},
            {},
        };
        int opt;

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        help_version();
                        return EXIT_OK;
                case '?':
                        return EXIT_USAGE;
                default:
                        return EXIT_SOFTWARE;
                }
        }
        if (optind < argc) {
                log_error("version takes no arguments; unexpected '%s'", argv[optind]);
                return EXIT_USAGE;
        }
        printf("strata %s\n", STRATA_VERSION);
        return EXIT_OK;
}

void help_version(void)
{
        printf("Usage: strata version\n\nPrints the version of strata.\n");
}
