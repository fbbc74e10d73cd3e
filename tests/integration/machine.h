/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Support for C integration tests that boot strata machines: data dirs set
 * up through the layer store API, s6 services created and enabled the way
 * a machine's own would be, and commands run with their exit status.
 */

#include <stdbool.h>

/* Creates an empty data dir for a test and returns its path (caller frees
 * and removes it with machine_data_remove). It lives under /dev/shm when
 * that is a directory: on another filesystem than "/", its layers can stack
 * over the host's root as the base (the kernel refuses a layer inside
 * another one on the same filesystem). */
int machine_data_new(char **ret_dir);

/* Removes the data dir (never crossing into a mount). */
int machine_data_remove(const char *dir);

/* Adds an active layer named id on top of the data dir's stack: its fs/
 * gets files, NULL-terminated pairs of absolute path and content, and the
 * layer is recorded with layer_metadata_save. */
int machine_add_layer(const char *data, const char *id, const char *const *files);

/* Records path as a state path (bound from <data>/state/<path> at boot)
 * and creates its directory under state/. */
int machine_add_state_path(const char *data, const char *path);

/* Writes the s6 service dir <scandir>/<name>/ with the shell script run
 * (its body; "#!/bin/sh" is added) and a "down" file: created, not started. */
int create_service(const char *scandir, const char *name, const char *run);

/* Enables a service made by create_service: removes "down", has s6-svscan
 * rescan the scandir, and waits (up to timeout_sec) until s6-svstat says it
 * is up. Returns 0, -ETIMEDOUT, or -errno. */
int enable_service(const char *scandir, const char *name, unsigned timeout_sec);

/* Runs argv (PATH searched) and returns its exit status, 128+N when it was
 * killed by signal N, or -errno when it could not be run. */
int machine_run(char *const *argv);
