/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The string decoders rpcgen's code calls in place of xdr_string() (see
 * meson.build): the same, plus the checks RFC 1813 leaves to the server. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "xdrstring.h"

static bool_t decode(XDR *x, char **sp, u_int maxsize, bool name)
{
        u_int pos, size;

        if (x->x_op != XDR_DECODE)
                return xdr_string(x, sp, maxsize);
        /* Peek at the length, then decode as usual. */
        pos = xdr_getpos(x);
        if (!xdr_u_int(x, &size) || !xdr_setpos(x, pos))
                return FALSE;
        if (!xdr_string(x, sp, maxsize))
                return FALSE;
        /* An embedded NUL would silently shorten the string ("keep\0evil"
         * is not "keep"), and a '/' in a file name is no file name: both
         * are arguments that do not decode, as with kernel nfsd. */
        if (strlen(*sp) != size || (name && strchr(*sp, '/'))) {
                free(*sp);
                *sp = NULL;
                return FALSE;
        }
        return TRUE;
}

bool_t xdrstring_checked(XDR *x, char **sp, u_int maxsize)
{
        return decode(x, sp, maxsize, false);
}

bool_t xdrstring_name(XDR *x, char **sp, u_int maxsize)
{
        return decode(x, sp, maxsize, true);
}
