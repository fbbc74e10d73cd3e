/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <rpc/rpc.h>

/* xdr_string() that, when decoding, refuses a string with an embedded NUL
 * (it would be shortened). The generated XDR routines call it in place of
 * xdr_string(); strings they decode are malloc()ed, as xdr_string's. */
bool_t xdrstring_checked(XDR *x, char **sp, u_int maxsize);

/* The same for a file name (filename3), which also may not contain '/'. */
bool_t xdrstring_name(XDR *x, char **sp, u_int maxsize);
