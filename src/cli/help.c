/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "macro.h"
#include "strata.h"

int cmd_help(int argc, char **argv)
{
        const struct command *c;

        if (argc < 2) {
                strata_usage(stdout);
                return EXIT_OK;
        }
        if (streq(argv[1], "--help") || streq(argv[1], "-h")) {
                help_help();
                return EXIT_OK;
        }
        c = command_find(argv[1]);
        if (!c) {
                log_error("unknown command '%s'; run 'strata --help' for the list", argv[1]);
                return EXIT_USAGE;
        }
        c->help();
        return EXIT_OK;
}

void help_help(void)
{
        printf("Usage: strata help [COMMAND]\n\n"
               "Shows the list of commands, or the options of COMMAND.\n");
}
