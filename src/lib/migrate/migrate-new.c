/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* new and install: scaffolding a migration (and applying it). */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "migrate-internal.h"
#include "migrate.h"
#include "migration.h"
#include "strv.h"

int migrate_new(const struct migrate_options *o, const char *label, const char *script,
                char **ret_path, char **ret_error)
{
        static const char template[] =
            "#!/bin/sh\n"
            "# Runs once, with /bin/sh, as root in a sandbox whose root is the machine's\n"
            "# current layers plus a fresh layer that captures every change. A non-zero\n"
            "# exit throws the layer (and any state written) away.\n"
            "# $STRATA_MIGRATION holds this migration's id.\n"
            "set -eu\n"
            "\n";
        _cleanup_strv_ char **names = NULL;
        _cleanup_free_ char *id = NULL, *path = NULL, *spath = NULL;
        _cleanup_closedir_ DIR *d = NULL;
        const char *dir = o->migrations_dir ? o->migrations_dir : "migrations";
        struct clock_source *c = o->clock ? o->clock : clock_real();
        struct dirent *de;
        char date[16];
        time_t t = (time_t)(clock_now(c) / USEC_PER_SEC);
        struct tm tm;
        int r;

        if (!migration_label_valid(label))
                return set_error_message(
                    ret_error, -EINVAL, "invalid label '%s': use lowercase letters, digits and '_'",
                    label);
        r = mkdir_p_at(AT_FDCWD, dir, 0755);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot create the migrations dir '%s'",
                                         dir);
        d = opendir(dir);
        if (!d)
                return set_error_message(ret_error, -errno, "cannot read the migrations dir '%s'",
                                         dir);
        while ((errno = 0, de = readdir(d)))
                if (migration_id_valid(de->d_name) && strv_extend(&names, de->d_name) < 0)
                        return -ENOMEM;

        localtime_r(&t, &tm);
        strftime(date, sizeof(date), "%Y%m%d", &tm);
        r = migration_next_id(names, date, label, &id);
        if (r == -ERANGE)
                return set_error_message(ret_error, r, "no id left for %s in '%s' (999 a day)",
                                         date, dir);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot make an id for '%s'", label);
        if (asprintf(&path, "%s/%s", dir, id) < 0 ||
            asprintf(&spath, "%s/%s", path, MIGRATION_SCRIPT) < 0)
                return -ENOMEM;
        if (mkdirat(AT_FDCWD, path, 0755) < 0)
                return set_error_message(ret_error, -errno, "cannot create '%s'", path);
        if (script) {
                _cleanup_free_ char *full = NULL;

                if (asprintf(&full, "%s%s", template, script) < 0)
                        return -ENOMEM;
                r = write_file_atomic_at(AT_FDCWD, spath, full, strlen(full), 0755);
        } else
                r = write_file_atomic_at(AT_FDCWD, spath, template, strlen(template), 0755);
        if (r < 0) {
                (void)rm_rf_at(AT_FDCWD, path, RM_ROOT | RM_MISSING_OK);
                return set_error_message(ret_error, r, "cannot write '%s'", spath);
        }
        *ret_path = TAKE_PTR(path);
        return 0;
}

static bool package_name_valid(const char *p)
{
        if (!*p || p[0] == '-')
                return false;
        for (; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || strchr("+-.:_=~", *p)))
                        return false;
        return true;
}

int migrate_install_script(const char *base, char *const *packages, char **ret)
{
        _cleanup_close_ int fd = migrate_open_dir_at(AT_FDCWD, base ? base : "/");
        _cleanup_free_ char *list = NULL, *s = NULL;
        struct stat st;
        size_t len = 0;

        if (fd < 0)
                return fd;
        STRV_FOREACH (p, packages) {
                if (!package_name_valid(*p))
                        return -EINVAL;
                len += strlen(*p) + 1;
        }
        list = calloc(len + 1, 1);
        if (!list)
                return -ENOMEM;
        STRV_FOREACH (p, packages) {
                if (*list)
                        strcat(list, " ");
                strcat(list, *p);
        }
        if (fstatat(fd, "usr/bin/apt-get", &st, 0) >= 0) {
                if (asprintf(&s,
                             "# Reads the package lists only when the base has none.\n"
                             "if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then\n"
                             "    apt-get update\n"
                             "fi\n"
                             "apt-get install -y --no-install-recommends %s\n"
                             "apt-get clean\n",
                             list) < 0)
                        return -ENOMEM;
        } else if (fstatat(fd, "sbin/apk", &st, 0) >= 0) {
                if (asprintf(&s, "apk add --no-cache %s\n", list) < 0)
                        return -ENOMEM;
        } else if (fstatat(fd, "usr/bin/dnf", &st, 0) >= 0) {
                if (asprintf(&s, "dnf install -y %s\ndnf clean all\n", list) < 0)
                        return -ENOMEM;
        } else
                return -EOPNOTSUPP;
        *ret = TAKE_PTR(s);
        return 0;
}

int migrate_install(struct migrate *m, char *const *packages, char **ret_error)
{
        _cleanup_free_ char *label = NULL, *script = NULL, *path = NULL;
        const char *id;
        size_t len = strlen("install");
        int r;

        if (strv_length(packages) == 0)
                return set_error_message(ret_error, -EINVAL, "no package given");
        STRV_FOREACH (p, packages)
                len += strlen(*p) + 1;
        label = calloc(len + 1, 1);
        if (!label)
                return -ENOMEM;
        strcpy(label, "install");
        STRV_FOREACH (p, packages) {
                char *q;

                if (!package_name_valid(*p))
                        return set_error_message(ret_error, -EINVAL, "invalid package name '%s'",
                                                 *p);
                q = label + strlen(label);
                *q++ = '_';
                for (const char *c = *p; *c; c++)
                        *q++ = (*c >= 'A' && *c <= 'Z') ? (char)(*c - 'A' + 'a')
                               : (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ? *c
                                                                                      : '_';
                *q = 0;
                if (strlen(label) > MIGRATION_LABEL_MAX) {
                        label[MIGRATION_LABEL_MAX] = 0;
                        break;
                }
        }
        r = migrate_install_script(m->base, packages, &script);
        if (r == -EOPNOTSUPP)
                return set_error_message(ret_error, r,
                                         "the base '%s' has no package manager strata knows "
                                         "(apt-get, apk, dnf)",
                                         m->base);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write the install script");
        r = migrate_new(&m->o, label, script, &path, ret_error);
        if (r < 0)
                return r;
        id = strrchr(path, '/');
        id = id ? id + 1 : path;
        /* A failed install leaves nothing: its migration would run (and
         * fail) again at every up. Its output went to output_fd already. */
        m->no_failed_log = true;
        r = migrate_up(m, id, false, ret_error);
        m->no_failed_log = false;
        if (r < 0) {
                int k = rm_rf_at(AT_FDCWD, path, RM_ROOT | RM_MISSING_OK);

                if (k < 0)
                        log_debug_errno(k, "cannot remove the failed install '%s': %m", path);
        }
        return r;
}
