/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The strata front-end: a table of commands, one file each.
 *
 * A handler gets argc/argv starting at the command's own name (argv[0]), parses
 * its options with getopt_long, and returns the process exit status. Usage
 * errors return EXIT_USAGE; system errors are logged by the handler.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum {
        EXIT_OK = 0,
        EXIT_FAILURE_ = 1,
        EXIT_USAGE = 2,
        EXIT_TEMPFAIL = 75, /* sysexits EX_TEMPFAIL: busy, try again */
        EXIT_SOFTWARE = 70, /* sysexits EX_SOFTWARE: internal error */
};

struct command {
        const char *name;
        int (*handler)(int argc, char **argv);
        const char *summary;
        void (*help)(void);
};

const struct command *command_find(const char *name);

/* Prints the usage of strata with the table of commands. */
void strata_usage(FILE *f);

/* Parses the --bind SPEC "SRC:DST[:ro|rw]" of strata lab and strata
 * worker: *ret_src gets SRC's real path, *ret_dst DST (absolute), both the
 * caller's to free. Logs and returns -EINVAL naming spec when it is
 * malformed, SRC's -errno when it cannot be resolved, -ENOMEM. */
int bind_spec_parse(const char *spec, char **ret_src, char **ret_dst, bool *ret_read_only);

/* Parses --timeout SECONDS (a positive number, fractions allowed) into
 * *ret_usec. Logs and returns -EINVAL naming the value when it is not. */
int timeout_parse(const char *value, uint64_t *ret_usec);

/* Applies -v (info, twice debug), -q (errors only) or --log-level=LVL
 * (log_level_opt is the caller's getopt value for it). Returns false when
 * opt is none of them; else true with *ret_status -1 to go on, or
 * EXIT_USAGE for an unknown level (logged). */
bool log_option(int opt, int log_level_opt, const char *arg, int *ret_status);

/* Logs a failure once (error, or what with r's errno text), prints
 * {"error": ...} on stdout when json, and returns status. */
int command_fail(bool json, int r, const char *error, const char *what, int status);

int cmd_help(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_mounts(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_lab(int argc, char **argv);
/* strata lab nfs: argv[0] is "nfs". */
int cmd_lab_nfs(int argc, char **argv);
int cmd_pkg(int argc, char **argv);
int cmd_vm(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_orchd(int argc, char **argv);
int cmd_layer(int argc, char **argv);
int cmd_image(int argc, char **argv);

void help_help(void);
void help_version(void);
void help_doctor(void);
void help_mounts(void);
void help_migrate(void);
void help_lab(void);
void help_lab_nfs(void);

/* The whole system-migrate front-end (also `strata migrate`); prog names it
 * in messages. */
int migrate_main(int argc, char **argv, const char *prog);
void help_pkg(void);
void help_vm(void);
void help_worker(void);
void help_orchd(void);
void help_layer(void);
void help_oci_image(void);
