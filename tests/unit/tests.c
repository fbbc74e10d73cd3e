/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>

#include "fs.h"
#include "log.h"
#include "tests.h"

static char *capture;
static size_t capture_len;

static void capture_sink(int level, const char *message, void *userdata)
{
        size_t l = strlen(message);
        char *n = realloc(capture, capture_len + l + 2);

        if (!n)
                abort();
        capture = n;
        memcpy(capture + capture_len, message, l);
        capture_len += l;
        capture[capture_len++] = '\n';
        capture[capture_len] = '\0';
}

void test_log_capture_start(void)
{
        free(capture);
        capture = strdup("");
        capture_len = 0;
        log_set_max_level(LOG_DEBUG);
        log_set_sink(capture_sink, NULL);
}

const char *test_log_capture_stop(void)
{
        log_set_sink(NULL, NULL);
        log_set_max_level(LOG_NOTICE);
        return capture ? capture : "";
}

void test_skip_all(const char *reason)
{
        printf("1..0 # SKIP %s\n", reason);
        fflush(stdout);
        exit(77);
}

char *test_tmpdir(void)
{
        char *p;

        if (mkdtemp_malloc("strata-test", &p) < 0)
                abort();
        return p;
}

void test_tmpdir_remove(char *path)
{
        if (!path)
                return;
        if (rm_rf_at(AT_FDCWD, path, RM_ROOT | RM_MISSING_OK) < 0)
                fprintf(stderr, "# cannot remove '%s'\n", path);
        free(path);
}

void test_write(int dirfd, const char *path, const char *content)
{
        assert_int_equal(mkdir_parents_at(dirfd, path, 0755), 0);
        assert_int_equal(write_file_atomic_at(dirfd, path, content, strlen(content), 0644), 0);
}
