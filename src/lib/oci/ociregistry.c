/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "macro.h"
#include "ociregistry.h"

int oci_ref_parse(const char *ref, char **ret_dir, char **ret_tag, char **ret_transport)
{
        const char *p, *colon;

        if (!ref || !*ref || strpbrk(ref, " \t\n\r"))
                return -EINVAL;
        p = startswith(ref, "oci:");
        if (p) {
                char *dir, *tag;

                colon = strrchr(p, ':');
                if (!*p || colon == p)
                        return -EINVAL;
                dir = colon ? strndup(p, (size_t)(colon - p)) : strdup(p);
                tag = strdup(colon && colon[1] ? colon + 1 : "latest");
                if (!dir || !tag) {
                        free(dir);
                        free(tag);
                        return -ENOMEM;
                }
                *ret_dir = dir;
                *ret_tag = tag;
                return 1;
        }
        p = startswith(ref, "docker://");
        if (!p) {
                /* another transport ("docker-archive:", "dir:") is not for us */
                if (strstr(ref, "://"))
                        return -EINVAL;
                p = ref;
        }
        if (!*p || *p == '/')
                return -EINVAL;
        if (asprintf(ret_transport, "docker://%s", p) < 0)
                return -ENOMEM;
        return 0;
}

/* The last non-empty line of s, in a new string. */
static char *last_line(const char *s)
{
        const char *end = s + strlen(s), *start;

        while (end > s && (end[-1] == '\n' || end[-1] == ' '))
                end--;
        start = end;
        while (start > s && start[-1] != '\n')
                start--;
        return strndup(start, (size_t)(end - start));
}

int oci_registry_copy(struct executor *ex, const char *src, const char *dst, bool quiet,
                      char **ret_error)
{
        /* skopeo reads $CONTAINERS_REGISTRIES_CONF only through its
         * option; it is passed on so that skopeo and podman agree. */
        const char *conf = getenv("CONTAINERS_REGISTRIES_CONF");
        const char *argv[10];
        struct exec_request req = {.argv = argv};
        struct exec_result res = {};
        _cleanup_free_ char *line = NULL;
        size_t n = 0;
        int r;

        argv[n++] = "skopeo";
        if (conf && *conf) {
                argv[n++] = "--registries-conf";
                argv[n++] = conf;
        }
        argv[n++] = "copy";
        argv[n++] = "--preserve-digests";
        if (quiet)
                argv[n++] = "--quiet";
        argv[n++] = src;
        argv[n++] = dst;
        argv[n] = NULL;
        r = executor_run(ex, &req, &res);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot run skopeo");
        if (res.status == 0) {
                exec_result_done(&res);
                return 0;
        }
        line = last_line(res.err[0] ? res.err : res.out);
        if (res.status == EXEC_STATUS_NOT_FOUND)
                r = set_error_message(ret_error, -ENOENT,
                                      "skopeo is not installed (Debian package skopeo)");
        else
                r = set_error_message(ret_error, -EIO,
                                      "skopeo copy '%s' to '%s' failed (status %d): %s", src, dst,
                                      res.status, line ? line : "");
        exec_result_done(&res);
        return r;
}
