/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "baseid.h"
#include "cleanup.h"
#include "fs.h"
#include "json.h"
#include "log.h"
#include "macro.h"
#include "sha256.h"

void base_identity_done(struct base_identity *b)
{
        if (!b)
                return;
        free(b->id);
        free(b->os_release);
        free(b->digest);
        *b = (struct base_identity){};
}

/* The value of KEY= in os-release text (quotes removed), or NULL. */
static char *os_release_value(const char *text, const char *key)
{
        size_t klen = strlen(key);

        for (const char *p = text; p && *p;) {
                size_t len = strcspn(p, "\n");

                if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
                        const char *v = p + klen + 1;
                        size_t vlen = len - klen - 1;

                        if (vlen >= 2 && (v[0] == '"' || v[0] == '\'') && v[vlen - 1] == v[0]) {
                                v++;
                                vlen -= 2;
                        }
                        return strndup(v, vlen);
                }
                p += len;
                if (*p == '\n')
                        p++;
        }
        return NULL;
}

int base_identity_compute(int base_fd, const char *id_override, struct base_identity *ret)
{
        static const char *const files[] = {
            "etc/os-release",     "usr/lib/os-release", "etc/debian_version",
            "etc/alpine-release", "etc/redhat-release",
        };
        _cleanup_free_ char *os = NULL, *osid = NULL, *ver = NULL, *pretty = NULL;
        struct base_identity b = {};
        struct sha256_ctx c;
        uint8_t d[SHA256_DIGEST_SIZE];
        char hex[SHA256_HEX_SIZE];

        sha256_init(&c);
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *text = NULL;
                size_t len = 0;

                if (read_file_at(base_fd, files[i], 1024 * 1024, &text, &len) < 0)
                        continue;
                sha256_update(&c, files[i], strlen(files[i]) + 1);
                sha256_update(&c, text, len);
                if (!os && strstr(files[i], "os-release"))
                        os = TAKE_PTR(text);
        }
        sha256_final(&c, d);
        for (size_t i = 0; i < SHA256_DIGEST_SIZE; i++)
                snprintf(hex + 2 * i, 3, "%02x", d[i]);
        if (os) {
                osid = os_release_value(os, "ID");
                ver = os_release_value(os, "VERSION_ID");
                pretty = os_release_value(os, "PRETTY_NAME");
        }
        b.digest = strdup(hex);
        b.os_release = strdup(pretty ? pretty : "unknown");
        if (id_override)
                b.id = strdup(id_override);
        else if (asprintf(&b.id, "%s-%s-%.12s", osid ? osid : "unknown", ver ? ver : "none", hex) <
                 0)
                b.id = NULL;
        if (!b.digest || !b.os_release || !b.id) {
                base_identity_done(&b);
                return -ENOMEM;
        }
        *ret = b;
        return 0;
}

int base_identity_load(int data_fd, struct base_identity *ret)
{
        struct base_identity b = {};
        const char *id, *os, *dg;
        json_error_t e;
        json_t *j;
        int r;

        r = json_load_at(data_fd, BASE_ID_FILE, &j, &e);
        if (r < 0)
                return r;
        if (json_get_string(j, "id", &id) < 0 || json_get_string(j, "digest", &dg) < 0) {
                json_decref(j);
                return -EBADMSG;
        }
        if (json_get_string(j, "os_release", &os) < 0)
                os = "unknown";
        b.id = strdup(id);
        b.os_release = strdup(os);
        b.digest = strdup(dg);
        json_decref(j);
        if (!b.id || !b.os_release || !b.digest) {
                base_identity_done(&b);
                return -ENOMEM;
        }
        *ret = b;
        return 0;
}

int base_identity_save(int data_fd, const struct base_identity *b)
{
        json_t *j = json_pack("{s:s, s:s, s:s}", "id", b->id, "os_release", b->os_release, "digest",
                              b->digest);
        int r;

        if (!j)
                return -ENOMEM;
        r = json_save_at(data_fd, BASE_ID_FILE, j, 0644);
        json_decref(j);
        return r;
}

int base_identity_check(int data_fd, int base_fd, const char *id_override, char **ret_error)
{
        _cleanup_(base_identity_done) struct base_identity rec = {}, cur = {};
        int r;

        r = base_identity_load(data_fd, &rec);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return set_error_message(ret_error, r, "cannot read '%s'", BASE_ID_FILE);
        r = base_identity_compute(base_fd, id_override, &cur);
        if (r < 0)
                return r;
        if (id_override ? streq(rec.id, cur.id) : streq(rec.digest, cur.digest))
                return 0;
        return set_error_message(ret_error, -EMEDIUMTYPE,
                                 "the layers were built over the base '%s' (%s), but this base "
                                 "is '%s' (%s): layers over another base are not what was "
                                 "tested; --force goes on anyway",
                                 rec.id, rec.os_release, cur.id, cur.os_release);
}
