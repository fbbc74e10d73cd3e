/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * libarchive, opened with dlopen() when a layer is first written or read as
 * a tar rather than when a strata program starts. Linked normally, it and
 * what it pulls in (libxml2, ICU, libstdc++, six compression libraries) are
 * mapped and relocated by every strata command: several milliseconds of each
 * `strata lab run` and `strata worker run`, which never touch a tar.
 *
 * Include this after <archive.h> and <archive_entry.h>: each call of a
 * listed function goes through the table filled by archive_lazy_load(),
 * which a module must call (and check) before its first libarchive call.
 */
#include <archive.h>
#include <archive_entry.h>

/* Every libarchive function strata calls (one missing here is a link error:
 * the library is not linked). */
/* clang-format off */
#define ARCHIVE_LAZY_FUNCS(X)                    \
        X(archive_entry_free)                    \
        X(archive_entry_gid)                     \
        X(archive_entry_hardlink)                \
        X(archive_entry_mode)                    \
        X(archive_entry_mtime)                   \
        X(archive_entry_mtime_nsec)              \
        X(archive_entry_new)                     \
        X(archive_entry_pathname)                \
        X(archive_entry_rdev)                    \
        X(archive_entry_set_gid)                 \
        X(archive_entry_set_hardlink)            \
        X(archive_entry_set_mode)                \
        X(archive_entry_set_mtime)               \
        X(archive_entry_set_pathname)            \
        X(archive_entry_set_rdev)                \
        X(archive_entry_set_size)                \
        X(archive_entry_set_symlink)             \
        X(archive_entry_set_uid)                 \
        X(archive_entry_size)                    \
        X(archive_entry_symlink)                 \
        X(archive_entry_uid)                     \
        X(archive_entry_xattr_add_entry)         \
        X(archive_entry_xattr_next)              \
        X(archive_entry_xattr_reset)             \
        X(archive_error_string)                  \
        X(archive_free)                          \
        X(archive_read_data_block)               \
        X(archive_read_new)                      \
        X(archive_read_next_header)              \
        X(archive_read_open)                     \
        X(archive_read_support_filter_gzip)      \
        X(archive_read_support_filter_none)      \
        X(archive_read_support_format_tar)       \
        X(archive_set_error)                     \
        X(archive_write_add_filter_none)         \
        X(archive_write_close)                   \
        X(archive_write_data)                    \
        X(archive_write_header)                  \
        X(archive_write_new)                     \
        X(archive_write_open)                    \
        X(archive_write_set_bytes_in_last_block) \
        X(archive_write_set_bytes_per_block)     \
        X(archive_write_set_format_option)       \
        X(archive_write_set_format_pax)
/* clang-format on */

struct archive_lazy {
#define ARCHIVE_LAZY_FIELD(fn) __typeof__(&fn) fn;
        ARCHIVE_LAZY_FUNCS(ARCHIVE_LAZY_FIELD)
#undef ARCHIVE_LAZY_FIELD
};

extern struct archive_lazy archive_lazy;

/* Opens libarchive once: 0, or -ELIBACC with *ret_error naming the library,
 * the Debian package and the loader's message. */
int archive_lazy_load(char **ret_error);

#define archive_entry_free(...)            archive_lazy.archive_entry_free(__VA_ARGS__)
#define archive_entry_gid(...)             archive_lazy.archive_entry_gid(__VA_ARGS__)
#define archive_entry_hardlink(...)        archive_lazy.archive_entry_hardlink(__VA_ARGS__)
#define archive_entry_mode(...)            archive_lazy.archive_entry_mode(__VA_ARGS__)
#define archive_entry_mtime(...)           archive_lazy.archive_entry_mtime(__VA_ARGS__)
#define archive_entry_mtime_nsec(...)      archive_lazy.archive_entry_mtime_nsec(__VA_ARGS__)
#define archive_entry_new(...)             archive_lazy.archive_entry_new(__VA_ARGS__)
#define archive_entry_pathname(...)        archive_lazy.archive_entry_pathname(__VA_ARGS__)
#define archive_entry_rdev(...)            archive_lazy.archive_entry_rdev(__VA_ARGS__)
#define archive_entry_set_gid(...)         archive_lazy.archive_entry_set_gid(__VA_ARGS__)
#define archive_entry_set_hardlink(...)    archive_lazy.archive_entry_set_hardlink(__VA_ARGS__)
#define archive_entry_set_mode(...)        archive_lazy.archive_entry_set_mode(__VA_ARGS__)
#define archive_entry_set_mtime(...)       archive_lazy.archive_entry_set_mtime(__VA_ARGS__)
#define archive_entry_set_pathname(...)    archive_lazy.archive_entry_set_pathname(__VA_ARGS__)
#define archive_entry_set_rdev(...)        archive_lazy.archive_entry_set_rdev(__VA_ARGS__)
#define archive_entry_set_size(...)        archive_lazy.archive_entry_set_size(__VA_ARGS__)
#define archive_entry_set_symlink(...)     archive_lazy.archive_entry_set_symlink(__VA_ARGS__)
#define archive_entry_set_uid(...)         archive_lazy.archive_entry_set_uid(__VA_ARGS__)
#define archive_entry_size(...)            archive_lazy.archive_entry_size(__VA_ARGS__)
#define archive_entry_symlink(...)         archive_lazy.archive_entry_symlink(__VA_ARGS__)
#define archive_entry_uid(...)             archive_lazy.archive_entry_uid(__VA_ARGS__)
#define archive_entry_xattr_add_entry(...) archive_lazy.archive_entry_xattr_add_entry(__VA_ARGS__)
#define archive_entry_xattr_next(...)      archive_lazy.archive_entry_xattr_next(__VA_ARGS__)
#define archive_entry_xattr_reset(...)     archive_lazy.archive_entry_xattr_reset(__VA_ARGS__)
#define archive_error_string(...)          archive_lazy.archive_error_string(__VA_ARGS__)
#define archive_free(...)                  archive_lazy.archive_free(__VA_ARGS__)
#define archive_read_data_block(...)       archive_lazy.archive_read_data_block(__VA_ARGS__)
#define archive_read_new(...)              archive_lazy.archive_read_new(__VA_ARGS__)
#define archive_read_next_header(...)      archive_lazy.archive_read_next_header(__VA_ARGS__)
#define archive_read_open(...)             archive_lazy.archive_read_open(__VA_ARGS__)
#define archive_read_support_filter_gzip(...) \
        archive_lazy.archive_read_support_filter_gzip(__VA_ARGS__)
#define archive_read_support_filter_none(...) \
        archive_lazy.archive_read_support_filter_none(__VA_ARGS__)
#define archive_read_support_format_tar(...) \
        archive_lazy.archive_read_support_format_tar(__VA_ARGS__)
#define archive_set_error(...)             archive_lazy.archive_set_error(__VA_ARGS__)
#define archive_write_add_filter_none(...) archive_lazy.archive_write_add_filter_none(__VA_ARGS__)
#define archive_write_close(...)           archive_lazy.archive_write_close(__VA_ARGS__)
#define archive_write_data(...)            archive_lazy.archive_write_data(__VA_ARGS__)
#define archive_write_header(...)          archive_lazy.archive_write_header(__VA_ARGS__)
#define archive_write_new(...)             archive_lazy.archive_write_new(__VA_ARGS__)
#define archive_write_open(...)            archive_lazy.archive_write_open(__VA_ARGS__)
#define archive_write_set_bytes_in_last_block(...) \
        archive_lazy.archive_write_set_bytes_in_last_block(__VA_ARGS__)
#define archive_write_set_bytes_per_block(...) \
        archive_lazy.archive_write_set_bytes_per_block(__VA_ARGS__)
#define archive_write_set_format_option(...) \
        archive_lazy.archive_write_set_format_option(__VA_ARGS__)
#define archive_write_set_format_pax(...) archive_lazy.archive_write_set_format_pax(__VA_ARGS__)
