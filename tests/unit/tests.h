/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared support for the cmocka unit tests. Include after cmocka.h's
 * prerequisites (stdarg.h, stddef.h, setjmp.h, stdint.h). */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdbool.h>
#include <cmocka.h>

/* Starts capturing log messages (every level) into a buffer. */
void test_log_capture_start(void);
/* Stops capturing and returns what was logged, one message a line; the
 * buffer stays valid until the next capture. */
const char *test_log_capture_stop(void);

/* Runs the group with TAP output. A group whose setup decides the machine
 * lacks something calls test_skip_all(reason) and the binary exits 77. */
#define TEST_MAIN(...)                                             \
        int main(void)                                             \
        {                                                          \
                const struct CMUnitTest tests_[] = {__VA_ARGS__};  \
                cmocka_set_message_output(CM_OUTPUT_TAP);          \
                return cmocka_run_group_tests(tests_, NULL, NULL); \
        }

/* Prints a TAP "skip everything" plan with the reason and exits 77. */
void test_skip_all(const char *reason) __attribute__((noreturn));

/* A fresh directory under $TMPDIR; abort()s on failure. Free with
 * test_tmpdir_remove, which removes the tree (never crossing mounts). */
char *test_tmpdir(void);
void test_tmpdir_remove(char *path);

/* Writes a small file (creating parents) relative to dirfd; asserts. */
void test_write(int dirfd, const char *path, const char *content);
