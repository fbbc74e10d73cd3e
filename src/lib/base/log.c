/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int max_level = LOG_NOTICE;
static const char *program_name = "strata";
static log_sink_t sink;
static void *sink_userdata;

void log_set_max_level(int level)
{
        if (level < LOG_EMERG)
                level = LOG_EMERG;
        if (level > LOG_DEBUG)
                level = LOG_DEBUG;
        max_level = level;
}

int log_get_max_level(void)
{
        return max_level;
}

int log_level_from_string(const char *s)
{
        static const char *const names[] = {
            [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",     [LOG_CRIT] = "crit",
            [LOG_ERR] = "error",   [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
            [LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
        };

        if (!s)
                return -EINVAL;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(s, names[i]))
                        return (int)i;
        if (streq(s, "err"))
                return LOG_ERR;
        return -EINVAL;
}

void log_set_program_name(const char *name)
{
        program_name = name ? name : "strata";
}

void log_set_sink(log_sink_t s, void *userdata)
{
        sink = s;
        sink_userdata = userdata;
}

int log_internalv(int level, int error, const char *file, int line, const char *func,
                  const char *format, va_list ap)
{
        char buf[4096];
        int saved = errno;

        if (error < 0)
                error = -error;

        if (level > max_level) {
                errno = saved;
                return -error;
        }

        /* "%m" renders errno: make it the error being reported. */
        errno = error;
        vsnprintf(buf, sizeof(buf), format, ap);

        if (sink)
                sink(level, buf, sink_userdata);
        else if (max_level >= LOG_DEBUG && level >= LOG_DEBUG)
                fprintf(stderr, "%s: %s (%s:%d %s)\n", program_name, buf, file, line, func);
        else
                fprintf(stderr, "%s: %s\n", program_name, buf);

        errno = saved;
        return -error;
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...)
{
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_internalv(level, error, file, line, func, format, ap);
        va_end(ap);
        return r;
}

int set_error_message(char **ret_error, int r, const char *format, ...)
{
        va_list ap;
        char *s = NULL;
        int saved = errno;

        if (r < 0)
                r = -r;
        errno = r;
        va_start(ap, format);
        if (vasprintf(&s, format, ap) < 0)
                s = NULL;
        va_end(ap);
        if (s)
                log_debug("%s", s);
        if (ret_error) {
                free(*ret_error);
                *ret_error = s;
        } else
                free(s);
        errno = saved;
        return -r;
}
