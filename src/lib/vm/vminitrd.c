/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "strv.h"
#include "vminitrd.h"

const char *const vm_initrd_modules[] = {
    "virtio_pci", "virtio_rng",     "virtio_blk",  "crc32c_generic", "ext4",  "virtio_net",
    "overlay",    "virtio_console", "qemu_fw_cfg", "button",         "evdev", NULL,
};

/* The module's name of a modules.dep path: "kernel/fs/ext4/ext4.ko" is ext4. */
static bool path_is_module(const char *path, size_t len, const char *name)
{
        const char *base = path, *dot;
        size_t n;

        for (size_t i = 0; i < len; i++)
                if (path[i] == '/')
                        base = path + i + 1;
        dot = memchr(base, '.', len - (size_t)(base - path));
        n = dot ? (size_t)(dot - base) : len - (size_t)(base - path);
        if (n != strlen(name))
                return false;
        for (size_t i = 0; i < n; i++) {
                char a = base[i] == '-' ? '_' : base[i], b = name[i] == '-' ? '_' : name[i];
                if (a != b)
                        return false;
        }
        return true;
}

/* The line of modules.dep whose module is name (by name) or path (exact). */
static const char *dep_line(const char *text, const char *name, const char *path)
{
        for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                const char *colon = strchr(l, ':'), *nl = strchr(l, '\n');
                if (!colon || (nl && colon > nl))
                        continue;
                if (path
                        ? (size_t)(colon - l) == strlen(path) && strncmp(l, path, strlen(path)) == 0
                        : path_is_module(l, (size_t)(colon - l), name))
                        return l;
        }
        return NULL;
}

/* Adds the module of line l after its dependencies; depth bounds a cycle. */
static int add_module(const char *text, const char *l, char ***order, unsigned depth)
{
        const char *colon = strchr(l, ':'), *end = strchr(l, '\n');
        _cleanup_free_ char *self = strndup(l, (size_t)(colon - l));
        _cleanup_free_ char *deps =
            strndup(colon + 1, end ? (size_t)(end - colon - 1) : strlen(colon + 1));
        char *save = NULL;
        int r;

        if (!self || !deps)
                return -ENOMEM;
        if (strv_contains(*order, self))
                return 0;
        if (depth > 64)
                return -ELOOP;
        for (char *d = strtok_r(deps, " \t", &save); d; d = strtok_r(NULL, " \t", &save)) {
                const char *dl = dep_line(text, NULL, d);
                if (!dl)
                        return -ENOENT;
                r = add_module(text, dl, order, depth + 1);
                if (r < 0)
                        return r;
        }
        return strv_extend(order, self);
}

int vm_modules_order(const char *modules_dep, const char *const *wanted, char ***ret,
                     char **ret_missing)
{
        _cleanup_strv_ char **order = NULL;
        int r;

        for (size_t i = 0; wanted[i]; i++) {
                const char *l = dep_line(modules_dep, wanted[i], NULL);
                if (!l) {
                        if (ret_missing)
                                *ret_missing = strdup(wanted[i]);
                        return -ENOENT;
                }
                r = add_module(modules_dep, l, &order, 0);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(order);
        return 0;
}

bool vm_elf_is_static(const char *path)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        Elf64_Ehdr eh;

        if (fd < 0 || pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
            memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64)
                return false;
        for (unsigned i = 0; i < eh.e_phnum; i++) {
                Elf64_Phdr ph;
                if (pread(fd, &ph, sizeof(ph),
                          (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) !=
                    (ssize_t)sizeof(ph))
                        return false;
                if (ph.p_type == PT_INTERP)
                        return false;
        }
        return true;
}

/* One newc entry; data may be NULL for directories and devices. */
static int cpio_entry(FILE *f, unsigned ino, const char *name, unsigned mode, unsigned rmajor,
                      unsigned rminor, const void *data, size_t len)
{
        size_t nlen = strlen(name) + 1;
        static const char zeros[4];

        fprintf(f, "070701%08X%08X%08X%08X%08X%08X%08zX%08X%08X%08X%08X%08zX%08X", ino, mode, 0, 0,
                1, 0, len, 0, 0, rmajor, rminor, nlen, 0);
        fwrite(name, 1, nlen, f);
        fwrite(zeros, 1, (4 - (110 + nlen) % 4) % 4, f);
        if (len)
                fwrite(data, 1, len, f);
        fwrite(zeros, 1, (4 - len % 4) % 4, f);
        return ferror(f) ? -EIO : 0;
}

static int cpio_file(FILE *f, unsigned ino, const char *name, unsigned mode, const char *src,
                     char **ret_error)
{
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r;

        r = read_file_at(AT_FDCWD, src, 64 << 20, &data, &len);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot read '%s': %m", src);
        return cpio_entry(f, ino, name, S_IFREG | mode, 0, 0, data, len);
}

/* The base name of a module path: "kernel/fs/ext4/ext4.ko" is "ext4.ko". */
static const char *module_file(const char *path, size_t len, size_t *ret_len)
{
        const char *base = path;

        for (size_t i = 0; i < len; i++)
                if (path[i] == '/')
                        base = path + i + 1;
        *ret_len = len - (size_t)(base - path);
        return base;
}

/* The initrd's modules.dep line of the module at path (its line in the
 * kernel's modules.dep, every path cut to its base name): the initrd keeps
 * its modules in one directory. */
static void initrd_dep_line(FILE *o, const char *text, const char *path)
{
        const char *l = dep_line(text, NULL, path), *colon, *end, *p;
        size_t n;

        p = module_file(path, strlen(path), &n);
        fprintf(o, "%.*s:", (int)n, p);
        if (l) {
                colon = strchr(l, ':');
                end = strchr(l, '\n');
                if (!end)
                        end = l + strlen(l);
                for (p = colon + 1; p < end;) {
                        size_t w;
                        while (p < end && (*p == ' ' || *p == '\t'))
                                p++;
                        w = strcspn(p, " \t\n");
                        if (p + w > end)
                                w = (size_t)(end - p);
                        if (w) {
                                const char *b = module_file(p, w, &n);
                                fprintf(o, " %.*s", (int)n, b);
                        }
                        p += w;
                }
        }
        fputc('\n', o);
}

int vm_initrd_write(const char *path, const char *busybox, const char *init_script,
                    const char *moddir, char **ret_error)
{
        static const char *const dirs[] = {".",   "bin",  "dev", "proc",        "sys",
                                           "run", "root", "lib", "lib/modules", NULL};
        _cleanup_free_ char *dep = NULL, *dep_path = NULL, *tmp = NULL, *missing = NULL;
        _cleanup_free_ char *order_text = NULL, *dep_text = NULL, *kdir = NULL;
        _cleanup_strv_ char **order = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        const char *version;
        unsigned ino = 1;
        size_t olen = 0, dlen = 0;
        int r;

        /* moddir is /lib/modules/VERSION: busybox's modprobe looks in the
         * initrd's /lib/modules/VERSION (uname -r) too. */
        version = strrchr(moddir, '/');
        version = version && version[1] ? version + 1 : moddir;
        if (asprintf(&dep_path, "%s/modules.dep", moddir) < 0 ||
            asprintf(&tmp, "%s.tmp", path) < 0 || asprintf(&kdir, "lib/modules/%s", version) < 0)
                return -ENOMEM;
        r = read_file_at(AT_FDCWD, dep_path, 16 << 20, &dep, NULL);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot read '%s': %m", dep_path);
        r = vm_modules_order(dep, vm_initrd_modules, &order, &missing);
        if (r < 0)
                return set_error_message(ret_error, r, "no module '%s' in '%s': %m",
                                         missing ? missing : "?", dep_path);
        f = fopen(tmp, "we");
        if (!f)
                return set_error_message(ret_error, errno, "cannot create '%s': %m", tmp);
        for (size_t i = 0; dirs[i] && r >= 0; i++)
                r = cpio_entry(f, ino++, dirs[i], S_IFDIR | 0755, 0, 0, NULL, 0);
        if (r >= 0)
                r = cpio_entry(f, ino++, kdir, S_IFDIR | 0755, 0, 0, NULL, 0);
        if (r >= 0)
                r = cpio_entry(f, ino++, "dev/console", S_IFCHR | 0600, 5, 1, NULL, 0);
        if (r >= 0)
                r = cpio_file(f, ino++, "init", 0755, init_script, ret_error);
        if (r >= 0)
                r = cpio_file(f, ino++, "bin/busybox", 0755, busybox, ret_error);
        {
                FILE *o = open_memstream(&order_text, &olen);
                FILE *d = open_memstream(&dep_text, &dlen);
                if (!o || !d) {
                        if (o)
                                fclose(o);
                        if (d)
                                fclose(d);
                        return -ENOMEM;
                }
                for (size_t i = 0; order[i] && r >= 0; i++) {
                        _cleanup_free_ char *src = NULL, *dst = NULL;
                        size_t n;
                        const char *base = module_file(order[i], strlen(order[i]), &n);
                        const char *dot = memchr(base, '.', n);

                        if (asprintf(&src, "%s/%s", moddir, order[i]) < 0 ||
                            asprintf(&dst, "%s/%s", kdir, base) < 0)
                                r = -ENOMEM;
                        else
                                r = cpio_file(f, ino++, dst, 0644, src, ret_error);
                        fprintf(o, "%.*s\n", (int)(dot ? (size_t)(dot - base) : n), base);
                        initrd_dep_line(d, dep, order[i]);
                }
                if (fclose(o) != 0)
                        r = r < 0 ? r : -ENOMEM;
                if (fclose(d) != 0)
                        r = r < 0 ? r : -ENOMEM;
        }
        if (r >= 0)
                r = cpio_entry(f, ino++, "lib/modules/order", S_IFREG | 0644, 0, 0, order_text,
                               olen);
        if (r >= 0) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/modules.dep", kdir) < 0)
                        r = -ENOMEM;
                else
                        r = cpio_entry(f, ino++, p, S_IFREG | 0644, 0, 0, dep_text, dlen);
        }
        if (r >= 0)
                r = cpio_entry(f, 0, "TRAILER!!!", 0, 0, 0, NULL, 0);
        if (r >= 0 && fflush(f) != 0)
                r = -errno;
        if (r < 0) {
                (void)unlink(tmp);
                if (ret_error && !*ret_error)
                        return set_error_message(ret_error, r, "cannot write '%s': %m", tmp);
                return r;
        }
        r = fclose(TAKE_PTR(f));
        if (r != 0 || rename(tmp, path) < 0) {
                r = -errno;
                (void)unlink(tmp);
                return set_error_message(ret_error, r, "cannot rename '%s': %m", tmp);
        }
        return 0;
}
