/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "macro.h"
#include "ocimap.h"
#include "strv.h"

int oci_entry_classify(const char *name, enum oci_entry_kind *ret, const char **ret_target)
{
        const char *t;

        if (!startswith(name, OCI_WH_PREFIX)) {
                *ret = OCI_ENTRY_PLAIN;
                return 0;
        }
        if (streq(name, OCI_WH_OPAQUE)) {
                *ret = OCI_ENTRY_OPAQUE;
                return 0;
        }
        t = name + strlen(OCI_WH_PREFIX);
        if (!*t || streq(t, ".") || streq(t, "..") || strchr(t, '/'))
                return -EINVAL;
        *ret = OCI_ENTRY_WHITEOUT;
        if (ret_target)
                *ret_target = t;
        return 0;
}

bool oci_xattr_exported(const char *name)
{
        return !startswith(name, "trusted.overlay.") && !startswith(name, "user.overlay.");
}

bool oci_name_reserved(const char *name)
{
        return startswith(name, OCI_WH_PREFIX);
}

int oci_entry_path_normalize(const char *path, char **ret)
{
        const char *p = path;
        char *s, *o;

        s = malloc(strlen(path) + 1);
        if (!s)
                return -ENOMEM;
        o = s;
        while (*p) {
                const char *end;
                size_t len;

                while (*p == '/')
                        p++;
                if (!*p)
                        break;
                end = strchrnul(p, '/');
                len = (size_t)(end - p);
                if (len == 2 && p[0] == '.' && p[1] == '.') {
                        free(s);
                        return -EINVAL;
                }
                if (!(len == 1 && p[0] == '.')) {
                        if (o != s)
                                *o++ = '/';
                        memcpy(o, p, len);
                        o += len;
                }
                p = end;
        }
        *o = 0;
        *ret = s;
        return 0;
}

bool oci_digest_valid(const char *s)
{
        if (!s || !startswith(s, "sha256:") || strlen(s) != 7 + 64)
                return false;
        for (const char *p = s + 7; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

int oci_stack_plan(char *const *local, size_t n_local, char *const *image, size_t n_image,
                   const char *parent, const char **ret_local, const char **ret_image)
{
        size_t off = 0, i;

        if (parent) {
                for (off = 0; off < n_local; off++)
                        if (streq(local[off], parent))
                                break;
                if (off == n_local) {
                        *ret_local = NULL;
                        *ret_image = parent;
                        return -ESRCH;
                }
                off++;
        }
        for (i = 0; off + i < n_local && i < n_image; i++)
                if (!streq(local[off + i], image[i])) {
                        *ret_local = local[off + i];
                        *ret_image = image[i];
                        return -EUCLEAN;
                }
        return (int)i;
}

int oci_ldd_parse(const char *text, char ***ret)
{
        _cleanup_strv_ char **l = NULL;
        const char *p = text;

        while (p && *p) {
                const char *end = strchrnul(p, '\n'), *arrow, *path;
                _cleanup_free_ char *line = strndup(p, (size_t)(end - p));
                char *s;

                if (!line)
                        return -ENOMEM;
                p = *end ? end + 1 : end;
                arrow = strstr(line, "=> ");
                path = arrow ? arrow + 3 : line;
                path += strspn(path, " \t");
                if (path[0] != '/')
                        continue; /* the vdso, "not found" */
                s = strndup(path, strcspn(path, " \t("));
                if (!s || strv_consume(&l, s) < 0)
                        return -ENOMEM;
        }
        if (!l && !(l = calloc(1, sizeof(char *))))
                return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

bool oci_lib_is_libc(const char *path)
{
        static const char *const libc[] = {"libc.so",  "ld-linux", "libm.so", "libpthread.so",
                                           "libdl.so", "librt.so", "ld64.so"};
        const char *base = strrchr(path, '/');

        base = base ? base + 1 : path;
        for (size_t i = 0; i < ELEMENTSOF(libc); i++)
                if (startswith(base, libc[i]))
                        return true;
        return false;
}
