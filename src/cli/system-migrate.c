/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* system-migrate: the same commands as `strata migrate`, as its own program. */
#include "log.h"
#include "strata.h"

int main(int argc, char **argv)
{
        log_set_program_name("system-migrate");
        return migrate_main(argc, argv, "system-migrate");
}
