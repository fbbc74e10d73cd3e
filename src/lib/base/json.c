/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "fs.h"
#include "json.h"
#include "log.h"

/* Documents we read are configuration and metadata: far below this. */
#define JSON_MAX_FILE_SIZE (64u * 1024 * 1024)

static void set_error(json_error_t *e, const char *name, int line, int column, const char *text)
{
        if (!e)
                return;
        memset(e, 0, sizeof(*e));
        e->line = line;
        e->column = column;
        snprintf(e->source, sizeof(e->source), "%s", name);
        snprintf(e->text, sizeof(e->text), "%s", text);
}

int json_load_buffer(const char *name, const char *data, size_t len, json_t **ret, json_error_t *e)
{
        json_error_t je;
        json_t *j;

        j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
        if (!j) {
                set_error(e, name, je.line, je.column, je.text);
                return log_debug_errno(EBADMSG, "'%s' line %d column %d: not valid JSON: %s", name,
                                       je.line, je.column, je.text);
        }
        *ret = j;
        return 0;
}

int json_load_at(int dirfd, const char *path, json_t **ret, json_error_t *e)
{
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r;

        r = read_file_at(dirfd, path, JSON_MAX_FILE_SIZE, &data, &len);
        if (r < 0) {
                set_error(e, path, -1, -1, strerror(-r));
                return log_debug_errno(r, "cannot read '%s': %m", path);
        }
        return json_load_buffer(path, data, len, ret, e);
}

int json_save_at(int dirfd, const char *path, const json_t *j, mode_t mode)
{
        _cleanup_free_ char *s = NULL, *withnl = NULL;
        size_t l;

        s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (!s)
                return -ENOMEM;
        l = strlen(s);
        withnl = malloc(l + 2);
        if (!withnl)
                return -ENOMEM;
        memcpy(withnl, s, l);
        withnl[l] = '\n';
        withnl[l + 1] = '\0';
        return write_file_atomic_at(dirfd, path, withnl, l + 1, mode);
}

const char *json_error_string(const json_error_t *e)
{
        static __thread char buf[JSON_ERROR_SOURCE_LENGTH + JSON_ERROR_TEXT_LENGTH + 64];

        if (e->line > 0)
                snprintf(buf, sizeof(buf), "'%s' line %d column %d: not valid JSON: %s", e->source,
                         e->line, e->column, e->text);
        else
                snprintf(buf, sizeof(buf), "'%s': %s", e->source, e->text);
        return buf;
}

int json_get_string(const json_t *o, const char *key, const char **ret)
{
        json_t *v = json_object_get(o, key);

        if (!v)
                return -ENOENT;
        if (!json_is_string(v))
                return -EBADMSG;
        *ret = json_string_value(v);
        return 0;
}

int json_get_int(const json_t *o, const char *key, int64_t *ret)
{
        json_t *v = json_object_get(o, key);

        if (!v)
                return -ENOENT;
        if (!json_is_integer(v))
                return -EBADMSG;
        *ret = json_integer_value(v);
        return 0;
}

int json_get_bool(const json_t *o, const char *key, bool *ret)
{
        json_t *v = json_object_get(o, key);

        if (!v)
                return -ENOENT;
        if (!json_is_boolean(v))
                return -EBADMSG;
        *ret = json_is_true(v);
        return 0;
}
