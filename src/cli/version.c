/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "strata-version.h"
#include "log.h"
#include "macro.h"
#include "strata.h"

int cmd_version(int argc, char **argv)
{
        if (argc > 1 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
                help_version();
                return EXIT_OK;
        }
        printf("strata %s\n", STRATA_VERSION);
        return EXIT_OK;
}

void help_version(void)
{
        printf("Usage: strata version\n\nPrints the version of strata.\n");
}
