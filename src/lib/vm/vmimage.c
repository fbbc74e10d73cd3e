/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "exec.h"
#include "fs.h"
#include "json.h"
#include "lock.h"
#include "log.h"
#include "macro.h"
#include "sha256.h"
#include "strv.h"
#include "vm.h"
#include "vmimage.h"
#include "vminitrd.h"
#include "vmrun.h"

/* The modules the image carries in /usr/lib/strata/modules, Debian's
 * initrd having none of them once it is gone (relative to
 * /lib/modules/VERSION/kernel; compressed variants are taken too): the
 * first five vm-init loads; cdrom and isofs read a NoCloud seed (the
 * cloud-init service loads them); the NFS client's, in load order, are
 * loaded by whoever mounts NFS (the NFS lab's provisioning). */
static const char *const guest_modules[] = {
    "fs/overlayfs/overlay",
    "drivers/char/virtio_console",
    "drivers/firmware/qemu_fw_cfg",
    "drivers/acpi/button",
    "drivers/input/evdev",
    "drivers/cdrom/cdrom",
    "fs/isofs/isofs",
    "fs/netfs/netfs",
    "fs/fscache/fscache",
    "net/sunrpc/sunrpc",
    "fs/nfs_common/grace",
    "fs/lockd/lockd",
    "fs/nfs_common/nfs_acl",
    "fs/nfs/nfs",
    "fs/nfs/nfsv3",
};

/* The kernel's module tree the image carries in /lib/modules/VERSION
 * (relative to it; directories whole), so that modprobe and the kernel's
 * own module autoloading work in the guest as on a host: what a container
 * host needs (bridges, veth, netfilter for podman's networks and published
 * ports, tun), and the libraries they use. depmod indexes it at build. */
static const char *const tree_modules[] = {
    "kernel/net/802",
    "kernel/net/llc",
    "kernel/net/bridge",
    "kernel/net/netfilter",
    "kernel/net/ipv4/netfilter",
    "kernel/net/ipv6/netfilter",
    "kernel/net/sched",
    "kernel/lib",
    "kernel/drivers/net/veth.ko",
    "kernel/drivers/net/tun.ko",
    "kernel/drivers/net/dummy.ko",
    "kernel/drivers/net/macvlan.ko",
    "modules.builtin",
    "modules.builtin.modinfo",
    "modules.order",
};

static bool endswith(const char *s, const char *suffix)
{
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && streq(s + a - b, suffix);
}

static void free_str(char **p)
{
        free(*p);
        *p = NULL;
}

int vm_run_tool(const char *const *argv, const char *log, char **ret_error)
{
        struct exec_request req = {.argv = argv};
        struct exec_result res = {};
        _cleanup_free_ char *line = exec_argv_to_string(argv);
        int r;

        r = executor_run(executor_real(), &req, &res);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot run '%s': %m",
                                         line ? line : argv[0]);
        if (log) {
                _cleanup_close_ int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dprintf(fd, "$ %s\n", line ? line : argv[0]);
                        (void)!write(fd, res.out, res.out_len);
                        (void)!write(fd, res.err, res.err_len);
                }
        }
        if (res.status != 0) {
                const char *text = res.err_len ? res.err : res.out;
                size_t len = res.err_len ? res.err_len : res.out_len;
                const char *tail = vm_text_tail(text, len, 3);
                _cleanup_free_ char *t = strndup(tail, strcspn(tail, "\0"));

                if (t && *t && t[strlen(t) - 1] == '\n')
                        t[strlen(t) - 1] = 0;
                r = set_error_message(ret_error, EIO, "'%s' failed (status %d)%s%s",
                                      line ? line : argv[0], res.status, t && *t ? ": " : "",
                                      t ? t : "");
                exec_result_done(&res);
                return r;
        }
        exec_result_done(&res);
        return 0;
}

int vm_client_key(const char *vm_dir, char **ret, char **ret_error)
{
        _cleanup_free_ char *key = NULL, *pub = NULL;
        int r;

        if (asprintf(&key, "%s/id_ed25519", vm_dir) < 0 ||
            asprintf(&pub, "%s/id_ed25519.pub", vm_dir) < 0)
                return -ENOMEM;
        if (access(key, R_OK) < 0 || access(pub, R_OK) < 0) {
                const char *argv[] = {"ssh-keygen",    "-q", "-t", "ed25519", "-N", "", "-C",
                                      "strata-vm-lab", "-f", key,  NULL};
                r = mkdir_p_at(AT_FDCWD, vm_dir, 0755);
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot create '%s': %m", vm_dir);
                (void)unlink(key);
                (void)unlink(pub);
                r = vm_run_tool(argv, NULL, ret_error);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(key);
        return 0;
}

/* The apt sources of this machine: the first deb822 file that names an
 * archive, else sources.list. */
static int host_archive(char **ret_mirror, char **ret_suite)
{
        _cleanup_free_ char *list = NULL;
        glob_t g = {};
        int r = -ENOENT;

        if (glob("/etc/apt/sources.list.d/*.sources", 0, NULL, &g) == 0) {
                for (size_t i = 0; i < g.gl_pathc && r < 0; i++) {
                        _cleanup_free_ char *text = NULL;
                        if (read_file_at(AT_FDCWD, g.gl_pathv[i], 1 << 20, &text, NULL) < 0)
                                continue;
                        r = vm_apt_source_parse(text, NULL, ret_mirror, ret_suite);
                }
        }
        globfree(&g);
        if (r == 0)
                return 0;
        (void)read_file_at(AT_FDCWD, "/etc/apt/sources.list", 1 << 20, &list, NULL);
        return vm_apt_source_parse(NULL, list, ret_mirror, ret_suite);
}

/* Hashes a tree: every path (sorted) with its mode and content. */
static int hash_tree(struct sha256_ctx *h, const char *root, const char *rel)
{
        _cleanup_free_ char *path = NULL;
        struct dirent **names = NULL;
        int n, r = 0;

        if (asprintf(&path, "%s%s%s", root, *rel ? "/" : "", rel) < 0)
                return -ENOMEM;
        n = scandir(path, &names, NULL, alphasort);
        if (n < 0)
                return -errno;
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *sub = NULL, *full = NULL, *data = NULL;
                struct stat st;
                size_t len = 0;

                if (r < 0 || streq(names[i]->d_name, ".") || streq(names[i]->d_name, ".."))
                        goto next;
                if (asprintf(&sub, "%s%s%s", rel, *rel ? "/" : "", names[i]->d_name) < 0 ||
                    asprintf(&full, "%s/%s", root, sub) < 0) {
                        r = -ENOMEM;
                        goto next;
                }
                if (lstat(full, &st) < 0) {
                        r = -errno;
                        goto next;
                }
                sha256_update(h, sub, strlen(sub) + 1);
                sha256_update(h, &st.st_mode, sizeof(st.st_mode));
                if (S_ISDIR(st.st_mode))
                        r = hash_tree(h, root, sub);
                else if (S_ISREG(st.st_mode)) {
                        r = read_file_at(AT_FDCWD, full, 16 << 20, &data, &len);
                        if (r >= 0)
                                sha256_update(h, data, len);
                }
        next:
                free(names[i]);
        }
        free(names);
        return r;
}

static int file_id(const char *path, char **ret)
{
        struct stat st;

        if (stat(path, &st) < 0)
                return -errno;
        if (asprintf(ret, "%s %" PRIu64 " %" PRId64, path, (uint64_t)st.st_size,
                     (int64_t)st.st_mtime) < 0)
                return -ENOMEM;
        return 0;
}

struct build {
        const struct vm_image_config *c;
        vm_progress_fn progress;
        void *ud;
        int64_t start;
        char *dir, *rootfs, *log;
        char *mirror, *suite, *kernel, *initrd, *kversion;
        char *rootfs_key; /* what the debootstrap root depends on */
        char *key;        /* what the whole image depends on */
        char **packages;  /* all of the root's, sorted */
        char **base;      /* the lab's own (debootstrap --include) */
        char **extra;     /* the rest, sorted (apt-get in the new root) */
        char *busybox;    /* set: the lab's initrd (b->initrd) is made with it */
};

static void build_done(struct build *b)
{
        free(b->dir);
        free(b->rootfs);
        free(b->log);
        free(b->mirror);
        free(b->suite);
        free(b->kernel);
        free(b->initrd);
        free(b->kversion);
        free(b->rootfs_key);
        free(b->key);
        free(b->busybox);
        strv_free(b->packages);
        strv_free(b->base);
        strv_free(b->extra);
}

static void stage(struct build *b, const char *name, const char *detail)
{
        if (b->progress)
                b->progress(name, (double)(vm_now_usec() - b->start) / 1e6, detail, b->ud);
}

/* Seconds between two "still running" lines of a long step
 * ($STRATA_VM_PROGRESS_SEC, 1..3600; default 10). */
static int64_t progress_every_usec(void)
{
        const char *e = getenv("STRATA_VM_PROGRESS_SEC");
        char *end;
        long v = e ? strtol(e, &end, 10) : 0;

        if (!e || end == e || *end || v < 1 || v > 3600)
                v = 10;
        return (int64_t)v * 1000000;
}

/* Says which step runs, how long it has, and the log's last line
 * (debootstrap's "I: Retrieving ...", "I: Unpacking ..."). */
static void stage_running(struct build *b, const char *name, int64_t since)
{
        _cleanup_free_ char *text = NULL, *detail = NULL;
        size_t len = 0;
        const char *last = "";

        if (vm_read_tail(b->log, 4096, &text, &len) == 0 && len > 0) {
                while (len > 0 && text[len - 1] == '\n')
                        text[--len] = '\0';
                last = vm_text_tail(text, len, 1);
        }
        if (asprintf(&detail, "running for %.0f s%s%.*s", (double)(vm_now_usec() - since) / 1e6,
                     *last ? ": " : "", 160, last) < 0)
                return;
        stage(b, name, detail);
}

/* Runs a long step's tool with its output going to the build log as it
 * comes, saying every few seconds that it still runs. 0 when it exits 0;
 * else -EIO and "ARGV failed (status N): LAST LINES" in *ret_error. */
static int build_tool(struct build *b, const char *name, const char *const *argv, char **ret_error)
{
        _cleanup_free_ char *line = exec_argv_to_string(argv);
        int64_t every = progress_every_usec(), since = vm_now_usec(), next = since + every;
        pid_t pid;
        int ws = 0, r;

        {
                _cleanup_close_ int fd =
                    open(b->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0)
                        dprintf(fd, "$ %s\n", line ? line : argv[0]);
        }
        r = vm_spawn((char *const *)argv, b->log, -1, true, &pid);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot run '%s': %m",
                                         line ? line : argv[0]);
        for (;;) {
                pid_t w = waitpid(pid, &ws, WNOHANG);
                if (w == pid)
                        break;
                if (w < 0 && errno != EINTR) {
                        r = -errno;
                        vm_kill(pid);
                        return set_error_message(ret_error, r, "cannot wait for '%s': %m", argv[0]);
                }
                if (vm_now_usec() >= next) {
                        stage_running(b, name, since);
                        next += every;
                }
                (void)usleep(100 * 1000);
        }
        if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
                _cleanup_free_ char *text = NULL;
                size_t len = 0;
                const char *tail = "";

                if (vm_read_tail(b->log, 4096, &text, &len) == 0 && len > 0) {
                        while (len > 0 && text[len - 1] == '\n')
                                text[--len] = '\0';
                        tail = vm_text_tail(text, len, 3);
                }
                return set_error_message(ret_error, EIO, "'%s' failed (status %d)%s%s (log: %s)",
                                         line ? line : argv[0],
                                         WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws),
                                         *tail ? ": " : "", tail, b->log);
        }
        return 0;
}

/* Without --initrd, the lab's own initrd (vminitrd.h) when a static
 * busybox, the guest files' initrd-init and the kernel's modules.dep are
 * there; else the kernel's own initrd. */
static int pick_initrd(struct build *b)
{
        static const char *const busyboxes[] = {"/usr/bin/busybox", "/bin/busybox"};
        _cleanup_free_ char *init = NULL, *dep = NULL, *path = NULL;

        if (b->c->initrd || !b->kversion || !*b->kversion)
                return 0;
        if (asprintf(&init, "%s/usr/lib/strata/initrd-init", b->c->guest_dir) < 0 ||
            asprintf(&dep, "/lib/modules/%s/modules.dep", b->kversion) < 0 ||
            asprintf(&path, "%s/initrd.cpio", b->dir) < 0)
                return -ENOMEM;
        if (access(init, R_OK) < 0 || access(dep, R_OK) < 0)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(busyboxes); i++)
                if (vm_elf_is_static(busyboxes[i])) {
                        b->busybox = strdup(busyboxes[i]);
                        if (!b->busybox)
                                return -ENOMEM;
                        free(b->initrd);
                        b->initrd = TAKE_PTR(path);
                        return 0;
                }
        return 0;
}

static int make_initrd(struct build *b, char **ret_error)
{
        _cleanup_free_ char *init = NULL, *moddir = NULL;

        if (!b->busybox)
                return 0;
        if (asprintf(&init, "%s/usr/lib/strata/initrd-init", b->c->guest_dir) < 0 ||
            asprintf(&moddir, "/lib/modules/%s", b->kversion) < 0)
                return -ENOMEM;
        stage(b, "initrd", b->initrd);
        return vm_initrd_write(b->initrd, b->busybox, init, moddir, ret_error);
}

static int build_inputs(struct build *b, char **ret_error)
{
        const struct vm_image_config *c = b->c;
        _cleanup_free_ char *kid = NULL, *iid = NULL, *pk = NULL, *pkgs = NULL, *pub = NULL,
                            *key_path = NULL;
        char hex[SHA256_HEX_SIZE], init_hex[SHA256_HEX_SIZE];
        uint8_t digest[SHA256_DIGEST_SIZE];
        struct sha256_ctx h;
        int r;

        if (c->kernel) {
                const char *base = strrchr(c->kernel, '/');
                base = base ? base + 1 : c->kernel;
                b->kernel = strdup(c->kernel);
                b->kversion = strdup(startswith(base, "vmlinuz-") ? base + 8 : "");
                if (c->initrd)
                        b->initrd = strdup(c->initrd);
                if (!b->kernel || !b->kversion || (c->initrd && !b->initrd))
                        return -ENOMEM;
        } else {
                r = vm_kernel_find("/boot", &b->kernel, &b->initrd, &b->kversion);
                if (r == -ENOENT)
                        return set_error_message(ret_error, r,
                                                 "no kernel in '/boot' (vmlinuz-*): install the "
                                                 "Debian package linux-image-amd64 or pass "
                                                 "--kernel");
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot read '/boot': %m");
                if (c->initrd) {
                        free(b->initrd);
                        b->initrd = strdup(c->initrd);
                        if (!b->initrd)
                                return -ENOMEM;
                }
        }
        r = pick_initrd(b);
        if (r < 0)
                return r;
        r = file_id(b->kernel, &kid);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot read the kernel '%s': %m",
                                         b->kernel);
        if (b->busybox) {
                /* Made from busybox, the kernel's modules (the kernel's id
                 * covers them) and the guest files' initrd-init. */
                r = file_id(b->busybox, &iid);
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot read '%s': %m", b->busybox);
        } else if (b->initrd) {
                r = file_id(b->initrd, &iid);
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot read the initrd '%s': %m",
                                                 b->initrd);
        }
        if (!c->own_init) {
                r = sha256_file_hex_at(AT_FDCWD, c->init_binary, init_hex);
                if (r < 0)
                        return set_error_message(
                            ret_error, r, "cannot read overlayfs-init at '%s': %m", c->init_binary);
        } else
                strcpy(init_hex, "-");

        if (!c->rootfs) {
                r = host_archive(&b->mirror, &b->suite);
                if (r < 0)
                        return set_error_message(ret_error, r,
                                                 "no Debian archive in this machine's apt "
                                                 "sources (/etc/apt/sources.list.d/*.sources, "
                                                 "/etc/apt/sources.list)");
                if (c->suite) {
                        free(b->suite);
                        b->suite = strdup(c->suite);
                        if (!b->suite)
                                return -ENOMEM;
                }
        }

        r = vm_packages_parse(VM_IMAGE_PACKAGES, &b->packages);
        if (r >= 0)
                r = vm_packages_parse(VM_IMAGE_PACKAGES, &b->base);
        if (r < 0)
                return r;
        for (char *const *p = c->packages; p && *p; p++)
                if (!strv_contains(b->packages, *p) && ((r = strv_extend(&b->packages, *p)) < 0 ||
                                                        (r = strv_extend(&b->extra, *p)) < 0))
                        return r;
        strv_sort(b->packages);
        strv_sort(b->extra);
        {
                size_t len = 0;
                FILE *f = open_memstream(&pkgs, &len);
                if (!f)
                        return -ENOMEM;
                for (size_t i = 0; b->packages[i]; i++)
                        fprintf(f, "%s%s", i ? "," : "", b->packages[i]);
                if (fclose(f) != 0)
                        return -ENOMEM;
        }
        if (c->rootfs)
                r = asprintf(&b->rootfs_key, "rootfs=%s\n", c->rootfs);
        else
                r = asprintf(&b->rootfs_key,
                             "debootstrap=minbase\nsuite=%s\nmirror=%s\npackages=%s\n%s", b->suite,
                             b->mirror, pkgs, b->extra ? "apt=install\n" : "");
        if (r < 0)
                return -ENOMEM;

        r = vm_client_key(c->vm_dir, &key_path, ret_error);
        if (r < 0)
                return r;
        if (asprintf(&pk, "%s.pub", key_path) < 0)
                return -ENOMEM;
        r = read_file_at(AT_FDCWD, pk, 65536, &pub, NULL);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot read '%s': %m", pk);

        sha256_init(&h);
        sha256_update(&h, b->rootfs_key, strlen(b->rootfs_key));
        sha256_update(&h, kid, strlen(kid) + 1);
        if (iid)
                sha256_update(&h, iid, strlen(iid) + 1);
        sha256_update(&h, init_hex, strlen(init_hex) + 1);
        sha256_update(&h, pub, strlen(pub) + 1);
        sha256_update(&h, &c->own_init, sizeof(c->own_init));
        sha256_update(&h, &c->size, sizeof(c->size));
        for (size_t i = 0; i < ELEMENTSOF(guest_modules); i++)
                sha256_update(&h, guest_modules[i], strlen(guest_modules[i]) + 1);
        for (size_t i = 0; i < ELEMENTSOF(tree_modules); i++)
                sha256_update(&h, tree_modules[i], strlen(tree_modules[i]) + 1);
        {
                /* The command line goes into image.json at build. */
                _cleanup_free_ char *append = NULL;
                r = vm_kernel_append(c->own_init, &append);
                if (r < 0)
                        return r;
                sha256_update(&h, append, strlen(append) + 1);
        }
        for (size_t i = 0; b->busybox && vm_initrd_modules[i]; i++)
                sha256_update(&h, vm_initrd_modules[i], strlen(vm_initrd_modules[i]) + 1);
        r = hash_tree(&h, c->guest_dir, "");
        if (r < 0)
                return set_error_message(ret_error, r, "cannot read the guest files in '%s': %m",
                                         c->guest_dir);
        sha256_final(&h, digest);
        for (size_t i = 0; i < SHA256_DIGEST_SIZE; i++)
                snprintf(hex + 2 * i, 3, "%02x", digest[i]);
        b->key = strdup(hex);
        return b->key ? 0 : -ENOMEM;
}

static bool cached(struct build *b)
{
        _cleanup_free_ char *p = NULL;
        json_t *j = NULL;
        const char *key = NULL;
        bool hit = false;

        if (asprintf(&p, "%s/image.json", b->dir) < 0)
                return false;
        if (json_load_at(AT_FDCWD, p, &j, NULL) < 0)
                return false;
        if (json_get_string(j, "inputs", &key) == 0 && streq(key, b->key)) {
                _cleanup_free_ char *base = NULL, *data = NULL;
                hit = asprintf(&base, "%s/base.qcow2", b->dir) >= 0 &&
                      asprintf(&data, "%s/data.qcow2", b->dir) >= 0 && access(base, R_OK) == 0 &&
                      access(data, R_OK) == 0 && (!b->busybox || access(b->initrd, R_OK) == 0);
        }
        json_decref(j);
        return hit;
}

/* The packages beyond the lab's own go into the new root with apt-get,
 * which resolves what debootstrap's --include does not (virtual packages,
 * alternatives, the configure order of a large set). No service starts
 * (policy-rc.d says no); /proc is mounted for the packages' scripts in a
 * mount namespace of the step's own, so nothing stays mounted; the host's
 * resolv.conf is lent for the download only. Recommends stay out, as
 * with --include. */
static const char apt_script[] =
    "set -eu\n"
    "root=$1; shift\n"
    "mount -t proc proc \"$root/proc\"\n"
    "printf '#!/bin/sh\\nexit 101\\n' >\"$root/usr/sbin/policy-rc.d\"\n"
    "chmod 0755 \"$root/usr/sbin/policy-rc.d\"\n"
    "lent=\n"
    "if [ ! -s \"$root/etc/resolv.conf\" ] && [ -e /etc/resolv.conf ]; then\n"
    "    rm -f \"$root/etc/resolv.conf\"; cp -L /etc/resolv.conf \"$root/etc/resolv.conf\"; "
    "lent=1\n"
    "fi\n"
    "export DEBIAN_FRONTEND=noninteractive\n"
    "chroot \"$root\" apt-get update -q\n"
    "chroot \"$root\" apt-get install -y -q --no-install-recommends \"$@\"\n"
    "chroot \"$root\" apt-get clean\n"
    "rm -rf \"$root\"/var/lib/apt/lists/* \"$root/usr/sbin/policy-rc.d\"\n"
    "if [ -n \"$lent\" ]; then rm -f \"$root/etc/resolv.conf\"; fi\n";

static int install_extra(struct build *b, const char *root, char **ret_error)
{
        _cleanup_free_ const char **argv = NULL;
        _cleanup_free_ char *detail = NULL;
        size_t n = 0, k = 0;
        int r;

        if (!b->extra)
                return 0;
        while (b->extra[n])
                n++;
        argv = calloc(n + 10, sizeof(char *));
        if (!argv)
                return -ENOMEM;
        argv[k++] = "unshare";
        argv[k++] = "--mount";
        argv[k++] = "--propagation";
        argv[k++] = "private";
        argv[k++] = "sh";
        argv[k++] = "-c";
        argv[k++] = apt_script;
        argv[k++] = "sh";
        argv[k++] = root;
        for (size_t i = 0; i < n; i++)
                argv[k++] = b->extra[i];
        if (asprintf(&detail, "apt-get install of %zu packages", n) < 0)
                return -ENOMEM;
        stage(b, "packages", detail);
        r = build_tool(b, "packages", argv, ret_error);
        if (r < 0)
                return r;
        stage(b, "packages", "done");
        return 0;
}

/* The Debian root: kept in images/NAME/rootfs with the key it was made
 * from, so a build that changes only the lab's files skips debootstrap. */
static int make_rootfs(struct build *b, char **ret_error)
{
        const struct vm_image_config *c = b->c;
        _cleanup_free_ char *keyfile = NULL, *have = NULL, *tmp = NULL, *include = NULL;
        int r;

        if (asprintf(&keyfile, "%s/rootfs.inputs", b->dir) < 0 ||
            asprintf(&tmp, "%s/rootfs.tmp", b->dir) < 0)
                return -ENOMEM;
        if (read_file_at(AT_FDCWD, keyfile, 65536, &have, NULL) == 0 &&
            streq(have, b->rootfs_key) && access(b->rootfs, F_OK) == 0) {
                stage(b, "rootfs", "cached");
                return 0;
        }
        (void)unlink(keyfile);
        r = rm_rf_at(AT_FDCWD, b->rootfs, RM_ROOT | RM_MISSING_OK);
        if (r >= 0)
                r = rm_rf_at(AT_FDCWD, tmp, RM_ROOT | RM_MISSING_OK);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot remove the old root '%s': %m",
                                         b->rootfs);
        if (c->rootfs) {
                stage(b, "rootfs", c->rootfs);
                r = copy_tree_at(AT_FDCWD, c->rootfs, AT_FDCWD, tmp, COPY_ALL);
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot copy the root '%s': %m",
                                                 c->rootfs);
        } else {
                _cleanup_free_ char *detail = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&include, &len);

                if (!f)
                        return -ENOMEM;
                fputs("--include=", f);
                for (size_t i = 0; b->base[i]; i++)
                        fprintf(f, "%s%s", i ? "," : "", b->base[i]);
                if (fclose(f) != 0)
                        return -ENOMEM;
                const char *argv[] = {"debootstrap", "--variant=minbase", include, b->suite,
                                      tmp,           b->mirror,           NULL};
                if (asprintf(&detail, "debootstrap %s from %s", b->suite, b->mirror) < 0)
                        return -ENOMEM;
                stage(b, "debootstrap", detail);
                r = build_tool(b, "debootstrap", argv, ret_error);
                if (r < 0) {
                        (void)rm_rf_at(AT_FDCWD, tmp, RM_ROOT | RM_MISSING_OK);
                        return r;
                }
                {
                        _cleanup_free_ char *p = NULL, *line = NULL;
                        if (asprintf(&p, "%s/etc/apt/sources.list", tmp) < 0 ||
                            asprintf(&line, "deb %s %s main\n", b->mirror, b->suite) < 0)
                                return -ENOMEM;
                        (void)write_file_atomic_at(AT_FDCWD, p, line, strlen(line), 0644);
                }
                stage(b, "debootstrap", "done");
                r = install_extra(b, tmp, ret_error);
                if (r < 0) {
                        (void)rm_rf_at(AT_FDCWD, tmp, RM_ROOT | RM_MISSING_OK);
                        return r;
                }
        }
        if (rename(tmp, b->rootfs) < 0)
                return set_error_message(ret_error, errno, "cannot rename '%s': %m", tmp);
        r = write_file_atomic_at(AT_FDCWD, keyfile, b->rootfs_key, strlen(b->rootfs_key), 0644);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write '%s': %m", keyfile);
        return 0;
}

static int write_in_root(struct build *b, const char *rel, const char *data, mode_t mode,
                         char **ret_error)
{
        _cleanup_free_ char *p = NULL;
        int r;

        if (asprintf(&p, "%s/%s", b->rootfs, rel) < 0)
                return -ENOMEM;
        r = mkdir_parents_at(AT_FDCWD, p, 0755);
        if (r >= 0)
                r = write_file_atomic_at(AT_FDCWD, p, data, strlen(data), mode);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write '%s': %m", p);
        return 0;
}

/* The image's /lib/modules/VERSION: tree_modules, the guest_modules,
 * then depmod's indexes over them. A path the kernel lacks is left out
 * (kernels differ in what they build as modules). */
static int copy_module_tree(struct build *b, char **ret_error)
{
        _cleanup_free_ char *src = NULL, *dst = NULL;
        int r;

        if (asprintf(&src, "/lib/modules/%s", b->kversion) < 0 ||
            asprintf(&dst, "%s/lib/modules/%s", b->rootfs, b->kversion) < 0)
                return -ENOMEM;
        (void)rm_rf_at(AT_FDCWD, dst, RM_ROOT | RM_MISSING_OK);
        for (size_t i = 0; i < ELEMENTSOF(tree_modules) + ELEMENTSOF(guest_modules); i++) {
                _cleanup_free_ char *from = NULL, *to = NULL, *pattern = NULL;
                glob_t g = {};
                const char *rel;

                if (i < ELEMENTSOF(tree_modules)) {
                        rel = tree_modules[i];
                        if (asprintf(&from, "%s/%s", src, rel) < 0)
                                return -ENOMEM;
                } else {
                        if (asprintf(&pattern, "%s/kernel/%s.ko*", src,
                                     guest_modules[i - ELEMENTSOF(tree_modules)]) < 0)
                                return -ENOMEM;
                        if (glob(pattern, 0, NULL, &g) != 0 || g.gl_pathc == 0) {
                                globfree(&g);
                                continue;
                        }
                        from = strdup(g.gl_pathv[0]);
                        globfree(&g);
                        if (!from)
                                return -ENOMEM;
                        rel = from + strlen(src) + 1;
                }
                if (access(from, F_OK) < 0)
                        continue;
                if (asprintf(&to, "%s/%s", dst, rel) < 0)
                        return -ENOMEM;
                *strrchr(to, '/') = 0;
                r = mkdir_p_at(AT_FDCWD, to, 0755);
                if (r < 0)
                        return set_error_message(ret_error, r, "cannot create '%s': %m", to);
                const char *argv[] = {"cp", "-a", from, to, NULL};
                r = vm_run_tool(argv, b->log, ret_error);
                if (r < 0)
                        return r;
        }
        const char *argv[] = {"depmod", "-b", b->rootfs, b->kversion, NULL};
        return vm_run_tool(argv, b->log, ret_error);
}

/* The lab's part of the root, applied again on every build. */
static int configure_root(struct build *b, char **ret_error)
{
        const struct vm_image_config *c = b->c;
        _cleanup_free_ char *p = NULL, *hostkey = NULL, *hostpub = NULL, *pub = NULL,
                            *key_path = NULL, *pk = NULL, *known = NULL, *known_path = NULL,
                            *moddir = NULL, *acpi = NULL;
        glob_t g = {};
        int r;

        stage(b, "configure", "guest files, modules, keys");
        r = copy_tree_at(AT_FDCWD, c->guest_dir, AT_FDCWD, b->rootfs, COPY_MERGE);
        if (r < 0)
                return set_error_message(ret_error, r,
                                         "cannot copy the guest files '%s' into '%s': %m",
                                         c->guest_dir, b->rootfs);
        if (!c->own_init) {
                const char *argv[] = {"install", "-m", "0755", c->init_binary, NULL, NULL};
                if (asprintf(&p, "%s/sbin/overlayfs-init", b->rootfs) < 0)
                        return -ENOMEM;
                argv[4] = p;
                r = vm_run_tool(argv, b->log, ret_error);
                if (r < 0)
                        return r;
        }
        if (asprintf(&moddir, "%s/usr/lib/strata/modules", b->rootfs) < 0)
                return -ENOMEM;
        (void)rm_rf_at(AT_FDCWD, moddir, RM_ROOT | RM_MISSING_OK);
        r = mkdir_p_at(AT_FDCWD, moddir, 0755);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot create '%s': %m", moddir);
        for (size_t i = 0; i < ELEMENTSOF(guest_modules); i++) {
                _cleanup_free_ char *pattern = NULL;
                if (asprintf(&pattern, "/lib/modules/%s/kernel/%s.ko*", b->kversion,
                             guest_modules[i]) < 0)
                        return -ENOMEM;
                if (glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0) {
                        const char *argv[] = {"cp", g.gl_pathv[0], moddir, NULL};
                        r = vm_run_tool(argv, b->log, ret_error);
                        if (r < 0) {
                                globfree(&g);
                                return r;
                        }
                }
                globfree(&g);
        }
        r = copy_module_tree(b, ret_error);
        if (r < 0)
                return r;
        /* Directories the guest mounts on or writes to. */
        {
                static const char *const dirs[] = {"data", "root/.ssh", "work", "run/sshd"};
                for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                        free_str(&p);
                        if (asprintf(&p, "%s/%s", b->rootfs, dirs[i]) < 0)
                                return -ENOMEM;
                        r = mkdir_p_at(AT_FDCWD, p, i == 1 ? 0700 : 0755);
                        if (r < 0)
                                return set_error_message(ret_error, r, "cannot create '%s': %m", p);
                }
        }
        /* Only the lab's power-button rule. */
        if (asprintf(&acpi, "%s/etc/acpi/events/*", b->rootfs) < 0)
                return -ENOMEM;
        if (glob(acpi, 0, NULL, &g) == 0)
                for (size_t i = 0; i < g.gl_pathc; i++)
                        if (!endswith(g.gl_pathv[i], "/strata-power"))
                                (void)unlink(g.gl_pathv[i]);
        globfree(&g);

        /* A host key of this build's own; the others debootstrap made go. */
        free_str(&p);
        if (asprintf(&p, "%s/etc/ssh/ssh_host_*", b->rootfs) < 0)
                return -ENOMEM;
        if (glob(p, 0, NULL, &g) == 0)
                for (size_t i = 0; i < g.gl_pathc; i++)
                        (void)unlink(g.gl_pathv[i]);
        globfree(&g);
        if (asprintf(&hostkey, "%s/etc/ssh/ssh_host_ed25519_key", b->rootfs) < 0 ||
            asprintf(&hostpub, "%s.pub", hostkey) < 0)
                return -ENOMEM;
        {
                const char *argv[] = {"ssh-keygen", "-q",        "-t", "ed25519", "-N", "",
                                      "-C",         "strata-vm", "-f", hostkey,   NULL};
                r = vm_run_tool(argv, b->log, ret_error);
                if (r < 0)
                        return r;
        }
        r = read_file_at(AT_FDCWD, hostpub, 65536, &pub, NULL);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot read '%s': %m", hostpub);
        {
                /* "ssh-ed25519 AAAA... comment": the known_hosts line keeps
                 * the first two words under the image's alias. */
                char *sp = strchr(pub, ' ');
                char *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
                if (sp2)
                        *sp2 = 0;
                pub[strcspn(pub, "\n")] = 0;
        }
        if (asprintf(&known, "strata-vm-%s %s\n", c->name, pub) < 0 ||
            asprintf(&known_path, "%s/known_hosts", b->dir) < 0)
                return -ENOMEM;
        r = write_file_atomic_at(AT_FDCWD, known_path, known, strlen(known), 0644);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write '%s': %m", known_path);

        r = vm_client_key(c->vm_dir, &key_path, ret_error);
        if (r < 0)
                return r;
        free_str(&pub);
        if (asprintf(&pk, "%s.pub", key_path) < 0)
                return -ENOMEM;
        r = read_file_at(AT_FDCWD, pk, 65536, &pub, NULL);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot read '%s': %m", pk);
        r = write_in_root(b, "root/.ssh/authorized_keys", pub, 0600, ret_error);
        if (r < 0)
                return r;
        r = write_in_root(b, "etc/hostname", "strata-vm\n", 0644, ret_error);
        if (r < 0)
                return r;
        return write_in_root(b, "etc/fstab", "# the lab's guest mounts its disks in vm-init\n",
                             0644, ret_error);
}

static int make_disk(struct build *b, const char *label, const char *src, uint64_t size,
                     const char *qcow2, char **ret_error)
{
        _cleanup_free_ char *raw = NULL, *tmp = NULL, *sz = NULL;
        int r;

        if (asprintf(&raw, "%s.raw", qcow2) < 0 || asprintf(&tmp, "%s.tmp", qcow2) < 0 ||
            asprintf(&sz, "%" PRIu64 "k", size / 1024) < 0)
                return -ENOMEM;
        (void)unlink(raw);
        (void)unlink(tmp);
        {
                const char *with_dir[] = {"mkfs.ext4", "-q", "-F", "-L", label,
                                          "-d",        src,  raw,  sz,   NULL};
                const char *empty[] = {"mkfs.ext4", "-q", "-F", "-L", label, raw, sz, NULL};
                stage(b, "mkfs", label);
                r = build_tool(b, "mkfs", src ? with_dir : empty, ret_error);
        }
        if (r >= 0) {
                const char *argv[] = {"qemu-img", "convert", "-O", "qcow2", raw, tmp, NULL};
                stage(b, "convert", label);
                r = build_tool(b, "convert", argv, ret_error);
        }
        (void)unlink(raw);
        if (r >= 0 && rename(tmp, qcow2) < 0)
                r = set_error_message(ret_error, errno, "cannot rename '%s': %m", tmp);
        if (r < 0)
                (void)unlink(tmp);
        return r;
}

static int write_image_json(struct build *b, char **ret_error)
{
        _cleanup_free_ char *append = NULL, *p = NULL;
        const char *initrd = b->initrd;
        json_t *j, *pk;
        int r;

        r = vm_kernel_append(b->c->own_init, &append);
        if (r < 0)
                return r;
        /* The lab's initrd is in the image dir: recorded relative to it, so
         * a vm dir that is copied or moved boots its own. */
        if (b->busybox && b->initrd) {
                const char *rel = startswith(b->initrd, b->dir);
                if (rel && rel[0] == '/')
                        initrd = rel + 1;
        }
        pk = json_array();
        for (size_t i = 0; pk && b->packages[i]; i++)
                json_array_append_new(pk, json_string(b->packages[i]));
        j = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s, s:b, s:s?, s:s?, s:o, s:I, s:I, s:f}",
                      "name", b->c->name, "inputs", b->key, "kernel", b->kernel, "initrd", initrd,
                      "append", append, "host_alias", "", "own_init", b->c->own_init, "suite",
                      b->suite, "rootfs", b->c->rootfs, "packages", pk, "size",
                      (json_int_t)(b->c->size ? b->c->size : VM_IMAGE_SIZE_DEFAULT), "built",
                      (json_int_t)time(NULL), "build_seconds",
                      (double)(vm_now_usec() - b->start) / 1e6);
        if (!j)
                return -ENOMEM;
        {
                _cleanup_free_ char *alias = NULL;
                if (asprintf(&alias, "strata-vm-%s", b->c->name) < 0) {
                        json_decref(j);
                        return -ENOMEM;
                }
                json_object_set_new(j, "host_alias", json_string(alias));
        }
        if (asprintf(&p, "%s/image.json", b->dir) < 0) {
                json_decref(j);
                return -ENOMEM;
        }
        r = json_save_at(AT_FDCWD, p, j, 0644);
        json_decref(j);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot write '%s': %m", p);
        return 0;
}

int vm_image_build(const struct vm_image_config *c, vm_progress_fn progress, void *ud,
                   bool *ret_cached, char **ret_error)
{
        _cleanup_(build_done) struct build b = {.c = c, .progress = progress, .ud = ud};
        _cleanup_free_ char *lock = NULL, *json = NULL, *base = NULL, *data = NULL;
        _cleanup_close_ int lock_fd = -1;
        struct lock_holder h = {};
        int r;

        b.start = vm_now_usec();
        if (!vm_name_valid(c->name))
                return set_error_message(ret_error, EINVAL, "invalid image name '%s'", c->name);
        if (asprintf(&b.dir, "%s/images/%s", c->vm_dir, c->name) < 0 ||
            asprintf(&b.rootfs, "%s/rootfs", b.dir) < 0 ||
            asprintf(&b.log, "%s/build.log", b.dir) < 0 || asprintf(&lock, "%s/lock", b.dir) < 0 ||
            asprintf(&json, "%s/image.json", b.dir) < 0 ||
            asprintf(&base, "%s/base.qcow2", b.dir) < 0 ||
            asprintf(&data, "%s/data.qcow2", b.dir) < 0)
                return -ENOMEM;
        r = mkdir_p_at(AT_FDCWD, b.dir, 0755);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot create '%s': %m", b.dir);
        r = lock_acquire_at(AT_FDCWD, lock, "strata vm image build", LOCK_NONBLOCK, &lock_fd, &h);
        if (r == -EWOULDBLOCK)
                return set_error_message(ret_error, r, "image '%s' is being built (pid %d, '%s')",
                                         c->name, (int)h.pid, lock);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot lock '%s': %m", lock);

        stage(&b, "inputs", NULL);
        r = build_inputs(&b, ret_error);
        if (r < 0)
                return r;
        if (!c->force && cached(&b)) {
                stage(&b, "cached", b.dir);
                *ret_cached = true;
                return 0;
        }
        /* A build that stops halfway leaves no image.json: never a stale
         * "cached" answer. */
        (void)unlink(json);
        (void)unlink(b.log);
        r = make_rootfs(&b, ret_error);
        if (r < 0)
                return r;
        r = configure_root(&b, ret_error);
        if (r < 0)
                return r;
        r = make_initrd(&b, ret_error);
        if (r < 0)
                return r;
        r = make_disk(&b, "strata-root", b.rootfs, c->size ? c->size : VM_IMAGE_SIZE_DEFAULT, base,
                      ret_error);
        if (r < 0)
                return r;
        r = make_disk(&b, "strata-data", NULL, VM_DATA_SIZE_DEFAULT, data, ret_error);
        if (r < 0)
                return r;
        r = write_image_json(&b, ret_error);
        if (r < 0)
                return r;
        stage(&b, "done", base);
        *ret_cached = false;
        return 0;
}

void vm_image_done(struct vm_image *i)
{
        free(i->dir);
        free(i->base);
        free(i->data);
        free(i->kernel);
        free(i->initrd);
        free(i->append);
        free(i->known_hosts);
        free(i->host_alias);
        *i = (struct vm_image){};
}

int vm_image_load(const char *vm_dir, const char *name, struct vm_image *ret, char **ret_error)
{
        _cleanup_(vm_image_done) struct vm_image i = {};
        _cleanup_free_ char *json = NULL;
        const char *kernel = NULL, *initrd = NULL, *append = NULL, *alias = NULL;
        json_error_t e;
        json_t *j = NULL;
        int r;

        if (asprintf(&i.dir, "%s/images/%s", vm_dir, name) < 0 ||
            asprintf(&json, "%s/image.json", i.dir) < 0 ||
            asprintf(&i.base, "%s/base.qcow2", i.dir) < 0 ||
            asprintf(&i.data, "%s/data.qcow2", i.dir) < 0 ||
            asprintf(&i.known_hosts, "%s/known_hosts", i.dir) < 0)
                return -ENOMEM;
        r = json_load_at(AT_FDCWD, json, &j, &e);
        if (r == -ENOENT)
                return set_error_message(ret_error, r,
                                         "no image '%s' in '%s' (build it: strata vm image build "
                                         "%s)",
                                         name, vm_dir, name);
        if (r < 0)
                return set_error_message(ret_error, -EBADMSG, "damaged image '%s': %s", name,
                                         json_error_string(&e));
        if (json_get_string(j, "kernel", &kernel) < 0 ||
            json_get_string(j, "append", &append) < 0 ||
            json_get_string(j, "host_alias", &alias) < 0) {
                json_decref(j);
                return set_error_message(ret_error, -EBADMSG,
                                         "damaged image '%s': '%s' lacks kernel, append or "
                                         "host_alias",
                                         name, json);
        }
        (void)json_get_string(j, "initrd", &initrd);
        (void)json_get_bool(j, "own_init", &i.own_init);
        i.kernel = strdup(kernel);
        i.append = strdup(append);
        i.host_alias = strdup(alias);
        if (initrd && initrd[0] != '/') {
                /* relative: in the image dir (the lab's initrd) */
                if (asprintf(&i.initrd, "%s/%s", i.dir, initrd) < 0)
                        i.initrd = NULL;
        } else
                i.initrd = initrd ? strdup(initrd) : NULL;
        json_decref(j);
        if (!i.kernel || !i.append || !i.host_alias || (initrd && !i.initrd))
                return -ENOMEM;
        {
                const char *need[] = {i.base, i.data, i.known_hosts, i.kernel, i.initrd};
                for (size_t k = 0; k < ELEMENTSOF(need); k++)
                        if (need[k] && access(need[k], R_OK) < 0)
                                return set_error_message(ret_error, -EBADMSG,
                                                         "image '%s' is incomplete: cannot read "
                                                         "'%s': %m (rebuild it: strata vm image "
                                                         "build --force %s)",
                                                         name, need[k], name);
        }
        *ret = i;
        i = (struct vm_image){};
        return 0;
}

int vm_instance_create_disks(const struct vm_image *img, const char *dir, bool replace,
                             char **ret_error)
{
        const char *const src[2] = {img->base, img->data};
        const char *const names[2] = {"root.qcow2", "data.qcow2"};
        int r;

        r = mkdir_p_at(AT_FDCWD, dir, 0755);
        if (r < 0)
                return set_error_message(ret_error, r, "cannot create '%s': %m", dir);
        for (size_t k = 0; k < 2; k++) {
                _cleanup_free_ char *p = NULL, *tmp = NULL;
                if (asprintf(&p, "%s/%s", dir, names[k]) < 0 || asprintf(&tmp, "%s.tmp", p) < 0)
                        return -ENOMEM;
                if (!replace && access(p, F_OK) == 0)
                        continue;
                const char *argv[] = {"qemu-img", "create", "-q",    "-f", "qcow2", "-b",
                                      src[k],     "-F",     "qcow2", tmp,  NULL};
                (void)unlink(tmp);
                r = vm_run_tool(argv, NULL, ret_error);
                if (r < 0) {
                        (void)unlink(tmp);
                        return r;
                }
                if (rename(tmp, p) < 0) {
                        r = set_error_message(ret_error, errno, "cannot rename '%s': %m", tmp);
                        (void)unlink(tmp);
                        return r;
                }
        }
        return 0;
}
