/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "log.h"
#include "strata.h"

/* -v, -q and --log-level, the same in every front-end. */

bool log_option(int opt, int log_level_opt, const char *arg, int *ret_status)
{
        int level;

        *ret_status = -1;
        if (opt == 'v')
                log_set_max_level(log_get_max_level() < LOG_INFO ? LOG_INFO : LOG_DEBUG);
        else if (opt == 'q')
                log_set_max_level(LOG_ERR);
        else if (opt == log_level_opt) {
                level = log_level_from_string(arg);
                if (level < 0) {
                        log_error("invalid log level '%s'", arg);
                        *ret_status = EXIT_USAGE;
                } else
                        log_set_max_level(level);
        } else
                return false;
        return true;
}
