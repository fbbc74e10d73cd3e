/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>

#include "archive-lazy.h"
#include "log.h"

/* The soname of libarchive (Debian package libarchive13). */
#define ARCHIVE_SONAME "libarchive.so.13"

struct archive_lazy archive_lazy;

int archive_lazy_load(char **ret_error)
{
        static void *handle;
        struct archive_lazy api;
        void *h;

        if (handle)
                return 0;
        h = dlopen(ARCHIVE_SONAME, RTLD_NOW | RTLD_LOCAL);
        if (!h)
                return set_error_message(ret_error, -ELIBACC,
                                         "cannot load %s (Debian package libarchive13): %s",
                                         ARCHIVE_SONAME, dlerror());
#define ARCHIVE_LAZY_SYM(fn)                                                           \
        api.fn = (__typeof__(api.fn))dlsym(h, #fn);                                    \
        if (!api.fn) {                                                                 \
                dlclose(h);                                                            \
                return set_error_message(ret_error, -ELIBACC, "%s has no function %s", \
                                         ARCHIVE_SONAME, #fn);                         \
        }
        ARCHIVE_LAZY_FUNCS(ARCHIVE_LAZY_SYM)
#undef ARCHIVE_LAZY_SYM
        archive_lazy = api;
        handle = h;
        return 0;
}
