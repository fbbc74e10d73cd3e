/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The live progress line of long work, for the front-ends: on a terminal,
 * one line on stderr, "PROGRAM: STAGE [N/M] DETAIL (12.3 s)", redrawn in
 * place five times a second (so the elapsed time moves while a step
 * runs) and wiped when the work ends or anything else is printed. Log
 * messages printed meanwhile go above it.
 *
 * It is drawn only when stderr is a terminal (and TERM is not "dumb"), the
 * output is not --json, and the log level shows notices (not -q). Off, the
 * calls only log: progress_step() logs "STAGE DETAIL" at notice level, as a
 * plain log line, so a pipe or a log file gets one line per step.
 *
 * One progress line per process; not for the library (which never prints).
 */

#include <stdbool.h>

/* Decides whether to draw (see above): call once, after the options are
 * parsed. prog names the program at the start of the line. */
void progress_init(const char *prog, bool json);
bool progress_drawn(void);
/* Where output meant for fd should go while the line may be up: fd itself
 * when the line is not drawn, else a pipe whose bytes are copied to fd
 * above the line (for the output of child processes). Valid until
 * progress_end(). */
int progress_output(int fd);
/* A step of the work: the stage ("applying"), its count (0 of 0: none)
 * and a detail (NULL: none). The elapsed time runs from the first step. */
void progress_step(const char *stage, unsigned n, unsigned total, const char *detail);
/* Wipes the line until the next step (before printing to stdout). */
void progress_hide(void);
/* The work is done: the line is wiped and the redraws stop. */
void progress_end(void);
