/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Logging. Levels are syslog's (LOG_ERR .. LOG_DEBUG). Messages go to stderr
 * as "PROGRAM: message" (a sink can be installed for tests).
 *
 * The *_errno variants set errno to the error before formatting, so "%m"
 * renders it, and return -abs(error), so the caller that decides can write
 *
 *     return log_error_errno(r, "cannot open '%s': %m", path);
 *
 * The library itself logs only at debug level; front-ends log the errors.
 */

#include <stdarg.h>
#include <syslog.h>

#include "macro.h"

typedef void (*log_sink_t)(int level, const char *message, void *userdata);

void log_set_max_level(int level);
int log_get_max_level(void);
/* Parses "error", "warning", "notice", "info", "debug" or a digit 0..7.
 * Returns the level or -EINVAL. */
int log_level_from_string(const char *s);
/* Name shown before each message on stderr; not copied, must outlive logging. */
void log_set_program_name(const char *name);
/* Installs a sink that receives every message at or below the max level
 * instead of stderr; NULL restores stderr. */
void log_set_sink(log_sink_t sink, void *userdata);

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) _printf_(6, 7);
int log_internalv(int level, int error, const char *file, int line, const char *func,
                  const char *format, va_list ap) _printf_(6, 0);

#define log_full_errno(level, error, ...)                                               \
        ({                                                                              \
                int _l_ = (level), _e_ = (error);                                       \
                (log_get_max_level() >= _l_)                                            \
                    ? log_internal(_l_, _e_, __FILE__, __LINE__, __func__, __VA_ARGS__) \
                    : -(_e_ < 0 ? -_e_ : _e_);                                          \
        })

#define log_full(level, ...) (void)log_full_errno(level, 0, __VA_ARGS__)

#define log_debug(...)   log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(error, ...)   log_full_errno(LOG_DEBUG, error, __VA_ARGS__)
#define log_info_errno(error, ...)    log_full_errno(LOG_INFO, error, __VA_ARGS__)
#define log_notice_errno(error, ...)  log_full_errno(LOG_NOTICE, error, __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, error, __VA_ARGS__)
#define log_error_errno(error, ...)   log_full_errno(LOG_ERR, error, __VA_ARGS__)

/* For library functions that hand their caller a message instead of logging
 * it: formats the message into *ret_error (freeing what was there; with a
 * NULL ret_error the message is only logged), logs it at debug level, and
 * returns -abs(r). "%m" renders r. */
int set_error_message(char **ret_error, int r, const char *format, ...) _printf_(3, 4);

/* Logs an out-of-memory error and returns -ENOMEM. */
#define log_oom() log_error_errno(ENOMEM, "out of memory")
