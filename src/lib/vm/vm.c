/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cleanup.h"
#include "macro.h"
#include "strv.h"
#include "vm.h"

static inline void *mfree(void *p)
{
        free(p);
        return NULL;
}

bool vm_name_valid(const char *name)
{
        size_t n;

        if (!name)
                return false;
        n = strlen(name);
        if (n == 0 || n > VM_NAME_MAX || name[0] == '.' || name[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
                        return false;
        return true;
}

const char *vm_dir_pick(const char *dir_opt)
{
        const char *e;

        if (dir_opt)
                return dir_opt;
        e = getenv("STRATA_VM_DIR");
        if (e && *e)
                return e;
        return VM_DIR_DEFAULT;
}

int vm_shell_quote(char *const *argv, char **ret)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        FILE *f;

        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; argv && argv[i]; i++) {
                if (i > 0)
                        fputc(' ', f);
                fputc('\'', f);
                for (const char *p = argv[i]; *p; p++) {
                        if (*p == '\'')
                                fputs("'\\''", f);
                        else
                                fputc(*p, f);
                }
                fputc('\'', f);
        }
        if (fclose(f) != 0 || !buf)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

int64_t vm_ready_timeout(int64_t base, double load, long cpus, int64_t max)
{
        double per_cpu = cpus > 0 && load > 0 ? load / (double)cpus : 0;
        double t = per_cpu > 1 ? (double)base * per_cpu : (double)base;

        return t > (double)max ? max : (int64_t)t;
}

int vm_result_parse(const char *data, size_t len, int *ret_status)
{
        const char *nl;
        unsigned long v = 0;
        size_t digits;

        if (!data || len == 0)
                return -ENODATA;
        nl = memchr(data, '\n', len);
        if (!nl)
                return -ENODATA;
        digits = (size_t)(nl - data);
        if (digits == 0 || digits > 3)
                return -EBADMSG;
        for (size_t i = 0; i < digits; i++) {
                if (!isdigit((unsigned char)data[i]))
                        return -EBADMSG;
                v = v * 10 + (unsigned long)(data[i] - '0');
        }
        if (v > 255)
                return -EBADMSG;
        *ret_status = (int)v;
        return 0;
}

static int parse_port(const char *s, size_t n, uint16_t *ret)
{
        unsigned long v = 0;

        if (n == 0 || n > 5)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (!isdigit((unsigned char)s[i]))
                        return -EINVAL;
                v = v * 10 + (unsigned long)(s[i] - '0');
        }
        if (v == 0 || v > 65535)
                return -EINVAL;
        *ret = (uint16_t)v;
        return 0;
}

int vm_forward_parse(const char *s, uint16_t *ret_host, uint16_t *ret_guest)
{
        const char *colon;
        uint16_t h, g;

        if (!s)
                return -EINVAL;
        colon = strchr(s, ':');
        if (!colon || parse_port(s, (size_t)(colon - s), &h) < 0 ||
            parse_port(colon + 1, strlen(colon + 1), &g) < 0)
                return -EINVAL;
        *ret_host = h;
        *ret_guest = g;
        return 0;
}

int vm_size_parse(const char *s, uint64_t *ret)
{
        uint64_t v = 0, mult = 1;
        size_t n, digits;

        if (!s || !*s)
                return -EINVAL;
        n = strlen(s);
        digits = n;
        switch (s[n - 1]) {
        case 'K':
        case 'k':
                mult = 1024;
                digits--;
                break;
        case 'M':
        case 'm':
                mult = 1024 * 1024;
                digits--;
                break;
        case 'G':
        case 'g':
                mult = 1024 * 1024 * 1024;
                digits--;
                break;
        default:
                break;
        }
        if (digits == 0 || digits > 12)
                return -EINVAL;
        for (size_t i = 0; i < digits; i++) {
                if (!isdigit((unsigned char)s[i]))
                        return -EINVAL;
                v = v * 10 + (uint64_t)(s[i] - '0');
        }
        if (v > UINT64_MAX / mult)
                return -ERANGE;
        v *= mult;
        if (v < (uint64_t)64 * 1024 * 1024 || v > (uint64_t)1024 * 1024 * 1024 * 1024)
                return -ERANGE;
        *ret = v;
        return 0;
}

static bool package_name_valid(const char *p)
{
        if (!p[0] || !(islower((unsigned char)p[0]) || isdigit((unsigned char)p[0])))
                return false;
        for (const char *c = p; *c; c++)
                if (!islower((unsigned char)*c) && !isdigit((unsigned char)*c) &&
                    !strchr("+.-", *c))
                        return false;
        return strlen(p) <= 128;
}

int vm_packages_parse(const char *s, char ***ret)
{
        _cleanup_strv_ char **l = NULL, **out = NULL;
        _cleanup_free_ char *copy = NULL;
        char *save = NULL, *tok;
        int r;

        copy = strdup(s ? s : "");
        if (!copy)
                return -ENOMEM;
        for (tok = strtok_r(copy, ", \t\n", &save); tok; tok = strtok_r(NULL, ", \t\n", &save)) {
                if (!package_name_valid(tok))
                        return -EINVAL;
                if (strv_contains(l, tok))
                        continue;
                r = strv_extend(&l, tok);
                if (r < 0)
                        return r;
        }
        if (!l) {
                l = calloc(1, sizeof(char *));
                if (!l)
                        return -ENOMEM;
        }
        strv_sort(l);
        *ret = TAKE_PTR(l);
        return 0;
}

/* The first word after "KEY:" at the start of a line, for deb822. */
static char *deb822_first(const char *text, const char *key)
{
        size_t kl = strlen(key);

        for (const char *line = text; line && *line;) {
                const char *end = strchrnul(line, '\n');

                if ((size_t)(end - line) > kl && strncmp(line, key, kl) == 0 && line[kl] == ':') {
                        const char *v = line + kl + 1;
                        size_t n;

                        while (v < end && (*v == ' ' || *v == '\t'))
                                v++;
                        n = strcspn(v, " \t\n");
                        if (n > 0)
                                return strndup(v, n);
                }
                line = *end ? end + 1 : NULL;
        }
        return NULL;
}

int vm_apt_source_parse(const char *deb822, const char *sources_list, char **ret_mirror,
                        char **ret_suite)
{
        _cleanup_free_ char *mirror = NULL, *suite = NULL;

        if (deb822) {
                mirror = deb822_first(deb822, "URIs");
                suite = deb822_first(deb822, "Suites");
                if (!mirror || !suite) {
                        mirror = mfree(mirror);
                        suite = mfree(suite);
                }
        }
        for (const char *line = sources_list; !mirror && line && *line;) {
                const char *end = strchrnul(line, '\n');
                _cleanup_free_ char *l = strndup(line, (size_t)(end - line));
                char *save = NULL, *w0, *w1, *w2;

                if (!l)
                        return -ENOMEM;
                w0 = strtok_r(l, " \t", &save);
                w1 = w0 ? strtok_r(NULL, " \t", &save) : NULL;
                w2 = w1 ? strtok_r(NULL, " \t", &save) : NULL;
                /* "deb [options] URI SUITE": lines with options are skipped. */
                if (w0 && w1 && w2 && streq(w0, "deb") && w1[0] != '[') {
                        mirror = strdup(w1);
                        suite = strdup(w2);
                        if (!mirror || !suite)
                                return -ENOMEM;
                }
                line = *end ? end + 1 : NULL;
        }
        if (!mirror || !suite)
                return -ENOENT;
        *ret_mirror = TAKE_PTR(mirror);
        *ret_suite = TAKE_PTR(suite);
        return 0;
}

int vm_kernel_find(const char *dir, char **ret_kernel, char **ret_initrd, char **ret_version)
{
        _cleanup_closedir_ DIR *d = NULL;
        _cleanup_free_ char *best = NULL, *kernel = NULL, *initrd = NULL;
        struct dirent *de;

        d = opendir(dir);
        if (!d)
                return negative_errno();
        while ((de = readdir(d))) {
                const char *v;

                if (strncmp(de->d_name, "vmlinuz-", 8) != 0)
                        continue;
                v = de->d_name + 8;
                if (!*v || (best && strverscmp(v, best) <= 0))
                        continue;
                free(best);
                best = strdup(v);
                if (!best)
                        return -ENOMEM;
        }
        if (!best)
                return -ENOENT;
        if (asprintf(&kernel, "%s/vmlinuz-%s", dir, best) < 0 ||
            asprintf(&initrd, "%s/initrd.img-%s", dir, best) < 0)
                return -ENOMEM;
        if (access(initrd, R_OK) < 0)
                initrd = mfree(initrd);
        *ret_kernel = TAKE_PTR(kernel);
        *ret_initrd = TAKE_PTR(initrd);
        *ret_version = TAKE_PTR(best);
        return 0;
}

const char *vm_text_tail(const char *data, size_t len, unsigned n)
{
        size_t i = len;

        if (!data)
                return "";
        /* A final newline does not start an empty last line. */
        if (i > 0 && data[i - 1] == '\n')
                i--;
        while (i > 0) {
                if (data[i - 1] == '\n' && --n == 0)
                        break;
                i--;
        }
        return data + i;
}

const char *vm_accel_to_string(enum vm_accel a)
{
        return a == VM_ACCEL_KVM ? "kvm" : "tcg";
}

static int push(char ***l, const char *fmt, ...) _printf_(2, 3);
static int push(char ***l, const char *fmt, ...)
{
        va_list ap;
        char *s;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return strv_consume(l, s);
}

/* QEMU's option syntax doubles a ',' inside a value. */
static char *qemu_escape(const char *s)
{
        size_t n = 0;
        char *out, *o;

        for (const char *p = s; *p; p++)
                n += *p == ',' ? 2 : 1;
        out = malloc(n + 1);
        if (!out)
                return NULL;
        o = out;
        for (const char *p = s; *p; p++) {
                *o++ = *p;
                if (*p == ',')
                        *o++ = ',';
        }
        *o = 0;
        return out;
}

#define PUSH(...)                               \
        do {                                    \
                int r_ = push(&l, __VA_ARGS__); \
                if (r_ < 0)                     \
                        return r_;              \
        } while (0)

#define ESC(var, s)                                \
        _cleanup_free_ char *var = qemu_escape(s); \
        if (!var)                                  \
        return -ENOMEM

static int add_port(char ***lp, const char *id, const char *path, const char *name)
{
        char **l = *lp;
        ESC(p, path);

        PUSH("-chardev");
        PUSH("file,id=%s,path=%s", id, p);
        PUSH("-device");
        PUSH("virtserialport,bus=vser0.0,chardev=%s,name=%s", id, name);
        *lp = l;
        return 0;
}

int vm_qemu_argv(const struct vm_boot *b, char ***ret)
{
        _cleanup_strv_ char **l = NULL;
        int r;

        if (!b->kernel || !b->append || !b->root_disk || !b->console)
                return -EINVAL;

        PUSH("%s", b->qemu ? b->qemu : "qemu-system-x86_64");
        PUSH("-nodefaults");
        PUSH("-no-user-config");
        PUSH("-display");
        PUSH("none");
        PUSH("-no-reboot");
        PUSH("-machine");
        PUSH("q35,accel=%s", vm_accel_to_string(b->accel));
        /* The host's CPU under KVM; under TCG every feature QEMU emulates
         * (its default model lacks SSE4.2, POPCNT and AVX, which code built
         * for today's CPUs takes for granted: clang's libFuzzer does). */
        PUSH("-cpu");
        PUSH("%s", b->accel == VM_ACCEL_KVM ? "host" : "max");
        PUSH("-m");
        PUSH("%u", b->mem_mb ? b->mem_mb : 1024);
        PUSH("-smp");
        PUSH("%u", b->cpus ? b->cpus : 1);
        PUSH("-kernel");
        PUSH("%s", b->kernel);
        if (b->initrd) {
                PUSH("-initrd");
                PUSH("%s", b->initrd);
        }
        PUSH("-append");
        PUSH("%s", b->append);
        {
                const char *disks[] = {b->root_disk, b->data_disk};
                for (size_t i = 0; i < ELEMENTSOF(disks) && disks[i]; i++) {
                        ESC(disk, disks[i]);
                        PUSH("-drive");
                        PUSH("file=%s,if=virtio,format=qcow2,cache=unsafe,discard=unmap", disk);
                }
        }
        for (size_t i = 0; i < b->n_drives && i < VM_DRIVES_MAX; i++) {
                const struct vm_drive *d = &b->drives[i];
                ESC(file, d->path);
                PUSH("-drive");
                PUSH("file=%s,if=virtio,format=%s%s", file, d->format ? d->format : "raw",
                     d->readonly || d->seed ? ",readonly=on" : "");
        }
        {
                ESC(con, b->console);
                PUSH("-serial");
                PUSH("file:%s", con);
        }
        /* Entropy from the host: without it the guest's getrandom() waits
         * for the kernel's own (seconds under TCG). */
        PUSH("-device");
        PUSH("virtio-rng-pci");
        PUSH("-device");
        PUSH("virtio-serial-pci,id=vser0");
        {
                const struct {
                        const char *id, *path, *name;
                } ports[] = {
                    {"result", b->result, VM_PORT_RESULT},
                    {"stdout", b->out, VM_PORT_STDOUT},
                    {"stderr", b->err, VM_PORT_STDERR},
                };
                for (size_t i = 0; i < ELEMENTSOF(ports); i++)
                        if (ports[i].path &&
                            (r = add_port(&l, ports[i].id, ports[i].path, ports[i].name)) < 0)
                                return r;
        }
        if (b->command) {
                ESC(cmd, b->command);
                PUSH("-fw_cfg");
                PUSH("name=%s,file=%s", VM_FWCFG_COMMAND, cmd);
        }
        if (b->wait_sync) {
                PUSH("-fw_cfg");
                PUSH("name=%s,string=1", VM_FWCFG_WAIT_SYNC);
        }
        if (b->ssh_port) {
                _cleanup_free_ char *net = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&net, &len);

                if (!f)
                        return -ENOMEM;
                fprintf(f, "user,id=net0,hostfwd=tcp:127.0.0.1:%u-:22", b->ssh_port);
                for (size_t i = 0; i < b->n_forwards && i < VM_FORWARDS_MAX; i++)
                        fprintf(f, ",hostfwd=tcp:127.0.0.1:%u-:%u", b->fwd_host[i],
                                b->fwd_guest[i]);
                if (fclose(f) != 0)
                        return -ENOMEM;
                PUSH("-netdev");
                PUSH("%s", net);
                PUSH("-device");
                PUSH("virtio-net-pci,netdev=net0");
        }
        if (b->qmp) {
                ESC(q, b->qmp);
                PUSH("-qmp");
                PUSH("unix:%s,server=on,wait=off", q);
        }
        if (b->pidfile) {
                PUSH("-pidfile");
                PUSH("%s", b->pidfile);
        }
        if (b->daemonize)
                PUSH("-daemonize");
        *ret = TAKE_PTR(l);
        return 0;
}

int vm_kernel_append(bool own_init, char **ret)
{
        char *s;

        if (asprintf(&s,
                     "root=/dev/vda ro rootfstype=ext4 console=ttyS0 panic=-1 net.ifnames=0 "
                     "no_timer_check quiet loglevel=3%s%s",
                     own_init ? "" : " init=", own_init ? "" : VM_GUEST_INIT) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int vm_drive_parse(char *spec, struct vm_drive *ret)
{
        char *comma;
        bool ro = false;

        if (!spec)
                return -EINVAL;
        comma = strrchr(spec, ',');
        if (comma && (streq(comma + 1, "ro") || streq(comma + 1, "rw"))) {
                ro = streq(comma + 1, "ro");
                *comma = '\0';
        }
        if (!*spec)
                return -EINVAL;
        *ret = (struct vm_drive){.path = spec, .readonly = ro};
        return 0;
}

/* Copies a space- (or NUL-) padded on-disk label, without the padding. */
static void label_copy(const unsigned char *p, size_t n, char ret[VM_LABEL_MAX + 1])
{
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\0'))
                n--;
        if (n > VM_LABEL_MAX)
                n = VM_LABEL_MAX;
        for (size_t i = 0; i < n; i++)
                ret[i] = isprint(p[i]) ? (char)p[i] : '?';
        ret[n] = '\0';
}

void vm_drive_probe(const unsigned char *head, size_t len, const char **ret_format,
                    char ret_label[VM_LABEL_MAX + 1])
{
        ret_label[0] = '\0';
        *ret_format = len >= 4 && memcmp(head, "QFI\xfb", 4) == 0 ? "qcow2" : "raw";
        if (streq(*ret_format, "qcow2"))
                return;
        /* ISO 9660: the primary volume descriptor in sector 16, its volume
         * identifier at offset 40. */
        if (len >= 0x8000 + 72 && head[0x8000] == 1 && memcmp(head + 0x8001, "CD001", 5) == 0) {
                label_copy(head + 0x8000 + 40, 32, ret_label);
                return;
        }
        /* ext2/3/4: the superblock at 1024, magic at 56, volume name at 120. */
        if (len >= 1024 + 136 && head[1024 + 56] == 0x53 && head[1024 + 57] == 0xef) {
                label_copy(head + 1024 + 120, 16, ret_label);
                return;
        }
        /* FAT: the extended boot signature 0x29 before the volume label,
         * at 0x26 (FAT12/16) or 0x42 (FAT32). */
        if (len >= 512 && head[510] == 0x55 && head[511] == 0xaa) {
                size_t at = 0;
                if (memcmp(head + 0x52, "FAT32", 5) == 0 && head[0x42] == 0x29)
                        at = 0x47;
                else if (memcmp(head + 0x36, "FAT", 3) == 0 && head[0x26] == 0x29)
                        at = 0x2b;
                if (at && memcmp(head + at, "NO NAME    ", 11) != 0)
                        label_copy(head + at, 11, ret_label);
        }
}

bool vm_label_is_seed(const char *label)
{
        return label && strcasecmp(label, "cidata") == 0;
}
