/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libmicrohttpd, loaded when `strata orchd` first calls it rather than when
 * strata starts. Linked normally, it and what it needs (gnutls, nettle,
 * gmp, p11-kit, idn2, unistring, tasn1, ffi: ten libraries) are mapped,
 * relocated and initialised by every strata command: about 1.2 ms and 170
 * page faults of each `strata lab run`, most of the command's own cost.
 *
 * The functions orchd.c calls are defined here with the prototypes of
 * <microhttpd.h> and forward to the library opened with dlopen(); nothing
 * else of it is used. A library that cannot be opened makes
 * MHD_start_daemon() fail (errno ELIBACC, the loader's message logged):
 * the others are only called on a running daemon.
 */
#include <dlfcn.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>

#include "log.h"

/* The soname of libmicrohttpd (Debian package libmicrohttpd12). */
#define MHD_SONAME "libmicrohttpd.so.12"

static void *mhd_sym(const char *name)
{
        static void *handle;

        if (!handle) {
                handle = dlopen(MHD_SONAME, RTLD_NOW | RTLD_LOCAL);
                if (!handle) {
                        log_error("cannot load %s: %s", MHD_SONAME, dlerror());
                        return NULL;
                }
        }
        return dlsym(handle, name);
}

/* The library's own function of that name (a pointer of its type), or NULL. */
#define MHD_REAL(fn) ((__typeof__(&fn))mhd_sym(#fn))

struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc,
                                    void *apc_cls, MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
        __typeof__(&MHD_start_daemon_va) real = MHD_REAL(MHD_start_daemon_va);
        struct MHD_Daemon *d;
        va_list ap;

        if (!real) {
                errno = ELIBACC;
                return NULL;
        }
        va_start(ap, dh_cls);
        d = real(flags, port, apc, apc_cls, dh, dh_cls, ap);
        va_end(ap);
        return d;
}

void MHD_stop_daemon(struct MHD_Daemon *daemon)
{
        MHD_REAL(MHD_stop_daemon)(daemon);
}

const char *MHD_lookup_connection_value(struct MHD_Connection *connection, enum MHD_ValueKind kind,
                                        const char *key)
{
        return MHD_REAL(MHD_lookup_connection_value)(connection, kind, key);
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *connection, unsigned int status_code,
                                   struct MHD_Response *response)
{
        return MHD_REAL(MHD_queue_response)(connection, status_code, response);
}

struct MHD_Response *MHD_create_response_from_buffer(size_t size, void *buffer,
                                                     enum MHD_ResponseMemoryMode mode)
{
        return MHD_REAL(MHD_create_response_from_buffer)(size, buffer, mode);
}

void MHD_destroy_response(struct MHD_Response *response)
{
        MHD_REAL(MHD_destroy_response)(response);
}

enum MHD_Result MHD_add_response_header(struct MHD_Response *response, const char *header,
                                        const char *content)
{
        return MHD_REAL(MHD_add_response_header)(response, header, content);
}
