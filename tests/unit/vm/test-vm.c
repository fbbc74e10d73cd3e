/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"
#include "macro.h"
#include "tests.h"
#include "vm.h"
#include "vmimage.h"
#include "vminitrd.h"

static void test_name_valid(void **state)
{
        char long_name[VM_NAME_MAX + 2];

        assert_true(vm_name_valid("test"));
        assert_true(vm_name_valid("nfs-lab_1.2"));
        assert_false(vm_name_valid(NULL));
        assert_false(vm_name_valid(""));
        assert_false(vm_name_valid("a/b"));
        assert_false(vm_name_valid(".."));
        assert_false(vm_name_valid(".hidden"));
        assert_false(vm_name_valid("-x"));
        assert_false(vm_name_valid("a b"));
        memset(long_name, 'n', sizeof(long_name) - 1);
        long_name[VM_NAME_MAX] = 0;
        assert_true(vm_name_valid(long_name));
        long_name[VM_NAME_MAX] = 'n';
        long_name[VM_NAME_MAX + 1] = 0;
        assert_false(vm_name_valid(long_name));
}

static void test_dir_pick(void **state)
{
        assert_string_equal(vm_dir_pick("/x"), "/x");
        setenv("STRATA_VM_DIR", "/from/env", 1);
        assert_string_equal(vm_dir_pick(NULL), "/from/env");
        setenv("STRATA_VM_DIR", "", 1);
        assert_string_equal(vm_dir_pick(NULL), VM_DIR_DEFAULT);
        unsetenv("STRATA_VM_DIR");
        assert_string_equal(vm_dir_pick(NULL), VM_DIR_DEFAULT);
}

static void test_shell_quote(void **state)
{
        char *argv[] = {(char *)"sh", (char *)"-c", (char *)"echo 'it' $x", NULL};
        _cleanup_free_ char *s = NULL;

        assert_int_equal(vm_shell_quote(argv, &s), 0);
        assert_string_equal(s, "'sh' '-c' 'echo '\\''it'\\'' $x'");
}

static void test_result_parse(void **state)
{
        int s = -1;

        assert_int_equal(vm_result_parse("0\n", 2, &s), 0);
        assert_int_equal(s, 0);
        assert_int_equal(vm_result_parse("137\n", 4, &s), 0);
        assert_int_equal(s, 137);
        assert_int_equal(vm_result_parse("77\nrest", 7, &s), 0);
        assert_int_equal(s, 77);
        assert_int_equal(vm_result_parse("", 0, &s), -ENODATA);
        assert_int_equal(vm_result_parse(NULL, 0, &s), -ENODATA);
        assert_int_equal(vm_result_parse("12", 2, &s), -ENODATA);
        assert_int_equal(vm_result_parse("256\n", 4, &s), -EBADMSG);
        assert_int_equal(vm_result_parse("x\n", 2, &s), -EBADMSG);
        assert_int_equal(vm_result_parse("\n", 1, &s), -EBADMSG);
        assert_int_equal(vm_result_parse("1234\n", 5, &s), -EBADMSG);
}

static void test_forward_parse(void **state)
{
        uint16_t h = 0, g = 0;

        assert_int_equal(vm_forward_parse("2222:22", &h, &g), 0);
        assert_int_equal(h, 2222);
        assert_int_equal(g, 22);
        assert_int_equal(vm_forward_parse("2049:2049", &h, &g), 0);
        assert_int_equal(vm_forward_parse("0:22", &h, &g), -EINVAL);
        assert_int_equal(vm_forward_parse("65536:22", &h, &g), -EINVAL);
        assert_int_equal(vm_forward_parse("22", &h, &g), -EINVAL);
        assert_int_equal(vm_forward_parse(":22", &h, &g), -EINVAL);
        assert_int_equal(vm_forward_parse("a:22", &h, &g), -EINVAL);
        assert_int_equal(vm_forward_parse("1:2:3", &h, &g), -EINVAL);
}

static void test_size_parse(void **state)
{
        uint64_t v = 0;

        assert_int_equal(vm_size_parse("4G", &v), 0);
        assert_true(v == 4ULL << 30);
        assert_int_equal(vm_size_parse("512M", &v), 0);
        assert_true(v == 512ULL << 20);
        assert_int_equal(vm_size_parse("1048576k", &v), 0);
        assert_true(v == 1ULL << 30);
        assert_int_equal(vm_size_parse("1M", &v), -ERANGE);
        assert_int_equal(vm_size_parse("", &v), -EINVAL);
        assert_int_equal(vm_size_parse("G", &v), -EINVAL);
        assert_int_equal(vm_size_parse("4T", &v), -EINVAL);
        assert_int_equal(vm_size_parse("-4G", &v), -EINVAL);
}

static void test_packages_parse(void **state)
{
        _cleanup_strv_ char **l = NULL, **bad = NULL;

        assert_int_equal(vm_packages_parse("tcpdump, nfs-common python3 tcpdump", &l), 0);
        assert_string_equal(l[0], "nfs-common");
        assert_string_equal(l[1], "python3");
        assert_string_equal(l[2], "tcpdump");
        assert_null(l[3]);
        assert_int_equal(vm_packages_parse("ok,Bad", &bad), -EINVAL);
        assert_int_equal(vm_packages_parse("x;rm -rf /", &bad), -EINVAL);
        strv_free(l);
        l = NULL;
        assert_int_equal(vm_packages_parse("", &l), 0);
        assert_null(l[0]);
}

static void test_apt_source_parse(void **state)
{
        _cleanup_free_ char *m = NULL, *s = NULL, *m2 = NULL, *s2 = NULL;

        assert_int_equal(
            vm_apt_source_parse("Types: deb\n# comment\nURIs: http://deb.example/debian\n"
                                "Suites: bookworm bookworm-updates\n",
                                NULL, &m, &s),
            0);
        assert_string_equal(m, "http://deb.example/debian");
        assert_string_equal(s, "bookworm");
        assert_int_equal(vm_apt_source_parse(NULL,
                                             "# x\ndeb [arch=amd64] http://skip/ x main\n"
                                             "deb http://mirror/debian trixie main\n",
                                             &m2, &s2),
                         0);
        assert_string_equal(m2, "http://mirror/debian");
        assert_string_equal(s2, "trixie");
        assert_int_equal(vm_apt_source_parse("Types: deb\n", "# nothing\n", &m, &s), -ENOENT);
        assert_int_equal(vm_apt_source_parse(NULL, NULL, &m, &s), -ENOENT);
}

static void test_kernel_find(void **state)
{
        char *dir = test_tmpdir();
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *k = NULL, *i = NULL, *v = NULL;

        assert_int_equal(vm_kernel_find(dir, &k, &i, &v), -ENOENT);
        test_write(fd, "vmlinuz-6.1.0-9-amd64", "k");
        test_write(fd, "vmlinuz-6.1.0-10-amd64", "k");
        test_write(fd, "initrd.img-6.1.0-10-amd64", "i");
        test_write(fd, "config-6.1.0-11-amd64", "c");
        assert_int_equal(vm_kernel_find(dir, &k, &i, &v), 0);
        assert_string_equal(v, "6.1.0-10-amd64");
        assert_non_null(strstr(k, "/vmlinuz-6.1.0-10-amd64"));
        assert_non_null(strstr(i, "/initrd.img-6.1.0-10-amd64"));
        test_tmpdir_remove(dir);
}

static void test_image_load_initrd(void **state)
{
        char *dir = test_tmpdir();
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *want = NULL, *error = NULL;
        struct vm_image img = {};

        /* The lab's initrd, recorded relative to the image dir, is the one
         * of the vm dir it is loaded from (a copied vm dir boots its own). */
        assert_int_equal(mkdir_p_at(fd, "images/x", 0755), 0);
        test_write(fd, "images/x/base.qcow2", "b");
        test_write(fd, "images/x/data.qcow2", "d");
        test_write(fd, "images/x/known_hosts", "k");
        test_write(fd, "images/x/initrd.cpio", "i");
        test_write(fd, "vmlinuz", "k");
        {
                _cleanup_free_ char *json = NULL;
                assert_true(asprintf(&json,
                                     "{\"kernel\": \"%s/vmlinuz\", \"initrd\": \"initrd.cpio\", "
                                     "\"append\": \"quiet\", \"host_alias\": \"strata-vm-x\"}",
                                     dir) > 0);
                test_write(fd, "images/x/image.json", json);
        }
        assert_int_equal(vm_image_load(dir, "x", &img, &error), 0);
        assert_true(asprintf(&want, "%s/images/x/initrd.cpio", dir) > 0);
        assert_string_equal(img.initrd, want);
        vm_image_done(&img);
        /* a relative initrd that is not there: the image is incomplete */
        assert_int_equal(unlinkat(fd, "images/x/initrd.cpio", 0), 0);
        assert_int_equal(vm_image_load(dir, "x", &img, &error), -EBADMSG);
        assert_non_null(strstr(error, "initrd.cpio"));
        test_tmpdir_remove(dir);
}

static void test_text_tail(void **state)
{
        const char *t = "a\nb\nc\nd\n";

        assert_string_equal(vm_text_tail(t, strlen(t), 2), "c\nd\n");
        assert_string_equal(vm_text_tail(t, strlen(t), 10), t);
        assert_string_equal(vm_text_tail("x", 1, 1), "x");
        assert_string_equal(vm_text_tail("", 0, 3), "");
}

static bool has(char **l, const char *s)
{
        for (; *l; l++)
                if (streq(*l, s))
                        return true;
        return false;
}

static void test_qemu_argv(void **state)
{
        _cleanup_strv_ char **l = NULL;
        struct vm_boot b = {
            .kernel = "/boot/vmlinuz-x",
            .initrd = "/boot/initrd.img-x",
            .append = "root=/dev/vda",
            .root_disk = "/v/a,b/root.qcow2",
            .data_disk = "/v/data.qcow2",
            .console = "/v/console.log",
            .result = "/v/result",
            .command = "/v/command",
            .ssh_port = 40022,
            .fwd_host = {2049},
            .fwd_guest = {2049},
            .n_forwards = 1,
            .qmp = "/v/qmp.sock",
            .drives = {{.path = "/v/seed.iso", .seed = true},
                       {.path = "/v/scratch.qcow2", .format = "qcow2"}},
            .n_drives = 2,
        };
        size_t at_data = 0, at_seed = 0, at_scratch = 0;

        assert_int_equal(vm_qemu_argv(&b, &l), 0);
        for (size_t k = 0; l[k]; k++) {
                if (strstr(l[k], "file=/v/data.qcow2,"))
                        at_data = k;
                if (streq(l[k], "file=/v/seed.iso,if=virtio,format=raw,readonly=on"))
                        at_seed = k;
                if (streq(l[k], "file=/v/scratch.qcow2,if=virtio,format=qcow2"))
                        at_scratch = k;
        }
        /* vda, vdb, then the drives in their order: vdc, vdd. */
        assert_true(at_data > 0 && at_seed > at_data && at_scratch > at_seed);
        assert_string_equal(l[0], "qemu-system-x86_64");
        assert_true(has(l, "q35,accel=tcg"));
        assert_true(has(l, "-cpu") && has(l, "max")); /* every feature TCG emulates */
        assert_true(
            has(l, "file=/v/a,,b/root.qcow2,if=virtio,format=qcow2,cache=unsafe,discard=unmap"));
        assert_true(has(l, "file:/v/console.log"));
        assert_true(has(l, "virtserialport,bus=vser0.0,chardev=result,name=" VM_PORT_RESULT));
        assert_true(has(l, "name=" VM_FWCFG_COMMAND ",file=/v/command"));
        assert_true(has(
            l, "user,id=net0,hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=tcp:127.0.0.1:2049-:2049"));
        assert_true(has(l, "unix:/v/qmp.sock,server=on,wait=off"));
        assert_true(has(l, "-no-reboot"));
        assert_false(has(l, "-daemonize"));
        strv_free(l);
        l = NULL;
        b.accel = VM_ACCEL_KVM;
        b.ssh_port = 0;
        b.daemonize = true;
        assert_int_equal(vm_qemu_argv(&b, &l), 0);
        assert_true(has(l, "q35,accel=kvm"));
        assert_true(has(l, "host"));
        assert_true(has(l, "-daemonize"));
        assert_false(has(l, "-netdev"));
        b.kernel = NULL;
        assert_int_equal(vm_qemu_argv(&b, &l), -EINVAL);
}

static void test_drive_parse(void **state)
{
        char a[] = "/x/seed.iso", b[] = "/x/d,ro", c[] = "/x/a,b,rw", d[] = ",ro", e[] = "/x/a,ro,";
        struct vm_drive v;

        assert_int_equal(vm_drive_parse(a, &v), 0);
        assert_string_equal(v.path, "/x/seed.iso");
        assert_false(v.readonly);
        assert_int_equal(vm_drive_parse(b, &v), 0);
        assert_string_equal(v.path, "/x/d");
        assert_true(v.readonly);
        assert_int_equal(vm_drive_parse(c, &v), 0);
        assert_string_equal(v.path, "/x/a,b");
        assert_false(v.readonly);
        assert_int_equal(vm_drive_parse(d, &v), -EINVAL);
        /* Only a last ",ro"/",rw" is an option; anything else is the name. */
        assert_int_equal(vm_drive_parse(e, &v), 0);
        assert_string_equal(v.path, "/x/a,ro,");
        assert_int_equal(vm_drive_parse(NULL, &v), -EINVAL);
}

static void test_drive_probe(void **state)
{
        static unsigned char head[65536];
        char label[VM_LABEL_MAX + 1];
        const char *format;

        memset(head, 0, sizeof(head));
        vm_drive_probe(head, sizeof(head), &format, label);
        assert_string_equal(format, "raw");
        assert_string_equal(label, "");

        memcpy(head, "QFI\xfb", 4);
        vm_drive_probe(head, sizeof(head), &format, label);
        assert_string_equal(format, "qcow2");

        /* ISO 9660: a primary volume descriptor with a space-padded id. */
        memset(head, 0, sizeof(head));
        head[0x8000] = 1;
        memcpy(head + 0x8001, "CD001", 5);
        memset(head + 0x8028, ' ', 32);
        memcpy(head + 0x8028, "cidata", 6);
        vm_drive_probe(head, sizeof(head), &format, label);
        assert_string_equal(format, "raw");
        assert_string_equal(label, "cidata");
        assert_true(vm_label_is_seed(label));
        /* Too short to hold the descriptor: no label. */
        vm_drive_probe(head, 0x8000, &format, label);
        assert_string_equal(label, "");

        /* FAT16 and FAT32 labels, "NO NAME" is none. */
        memset(head, 0, sizeof(head));
        head[510] = 0x55;
        head[511] = 0xaa;
        head[0x26] = 0x29;
        memcpy(head + 0x2b, "CIDATA     ", 11);
        memcpy(head + 0x36, "FAT16   ", 8);
        vm_drive_probe(head, sizeof(head), &format, label);
        assert_string_equal(label, "CIDATA");
        assert_true(vm_label_is_seed(label));
        memcpy(head + 0x2b, "NO NAME    ", 11);
        vm_drive_probe(head, sizeof(head), &format, label);
        assert_string_equal(label, "");
        memset(head, 0, 512);
        head[510] = 0x55;
        head[511] = 0xaa;
        head[0x42] = 0x29;
        memcpy(head + 0x47, "SEED       ", 11);
        memcpy(head + 0x52, "FAT32   ", 8);
        vm_drive_probe(head, sizeof(head), &format, label);
        assert_string_equal(label, "SEED");
        assert_false(vm_label_is_seed(label));

        /* ext4: magic 0xEF53 at 1024+56, name at 1024+120. */
        memset(head, 0, sizeof(head));
        head[1024 + 56] = 0x53;
        head[1024 + 57] = 0xef;
        memcpy(head + 1024 + 120, "data", 4);
        vm_drive_probe(head, sizeof(head), &format, label);
        assert_string_equal(label, "data");
        assert_false(vm_label_is_seed(NULL));
}

static void test_modules_order(void **state)
{
        static const char dep[] =
            "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko "
            "kernel/fs/jbd2/jbd2.ko\n"
            "kernel/fs/jbd2/jbd2.ko:\n"
            "kernel/lib/crc16.ko:\n"
            "kernel/fs/mbcache.ko:\n"
            "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko "
            "kernel/drivers/virtio/virtio_ring.ko\n"
            "kernel/drivers/virtio/virtio_ring.ko:\n"
            "kernel/drivers/virtio/virtio.ko:\n"
            "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_ring.ko "
            "kernel/drivers/virtio/virtio.ko\n"
            "kernel/crypto/crc32c_generic.ko:\n";
        const char *want[] = {"virtio_pci", "virtio-blk", "ext4", "crc32c_generic", NULL};
        const char *bad[] = {"ext4", "nosuch", NULL};
        _cleanup_strv_ char **l = NULL;
        _cleanup_free_ char *missing = NULL;
        size_t n = 0;

        assert_int_equal(vm_modules_order(dep, want, &l, NULL), 0);
        for (n = 0; l[n]; n++)
                ;
        /* Each once, every module after what it needs. */
        assert_int_equal(n, 9);
        assert_string_equal(l[0], "kernel/drivers/virtio/virtio_ring.ko");
        assert_string_equal(l[1], "kernel/drivers/virtio/virtio.ko");
        assert_string_equal(l[2], "kernel/drivers/virtio/virtio_pci.ko");
        assert_string_equal(l[3], "kernel/drivers/block/virtio_blk.ko");
        assert_string_equal(l[7], "kernel/fs/ext4/ext4.ko");
        assert_string_equal(l[8], "kernel/crypto/crc32c_generic.ko");
        assert_int_equal(vm_modules_order(dep, bad, &l, &missing), -ENOENT);
        assert_string_equal(missing, "nosuch");
        assert_false(vm_elf_is_static("/nonexistent"));
}

/* The entry named name of a newc cpio (data, len): its content in
 * *ret (not terminated) and length, or false. */
static bool cpio_find(const char *data, size_t len, const char *name, const char **ret,
                      size_t *ret_len)
{
        size_t off = 0;

        while (off + 110 <= len && memcmp(data + off, "070701", 6) == 0) {
                char field[9] = {};
                size_t fsize, nsize, name_at = off + 110, data_at;

                memcpy(field, data + off + 6 + 6 * 8, 8);
                fsize = strtoul(field, NULL, 16);
                memcpy(field, data + off + 6 + 11 * 8, 8);
                nsize = strtoul(field, NULL, 16);
                data_at = (name_at + nsize + 3) & ~(size_t)3;
                if (streq(data + name_at, "TRAILER!!!"))
                        return false;
                if (streq(data + name_at, name)) {
                        *ret = data + data_at;
                        *ret_len = fsize;
                        return true;
                }
                off = (data_at + fsize + 3) & ~(size_t)3;
        }
        return false;
}

static void test_initrd_write(void **state)
{
        char *dir = test_tmpdir();
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *moddir = NULL, *out = NULL, *bb = NULL, *init = NULL, *text = NULL,
                            *error = NULL;
        static const char dep[] =
            "kernel/drivers/virtio/virtio_ring.ko:\n"
            "kernel/drivers/virtio/virtio.ko:\n"
            "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_ring.ko "
            "kernel/drivers/virtio/virtio.ko\n"
            "kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko\n"
            "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko\n"
            "kernel/crypto/crc32c_generic.ko:\n"
            "kernel/lib/crc16.ko:\n"
            "kernel/fs/jbd2/jbd2.ko:\n"
            "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/jbd2/jbd2.ko\n"
            "kernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio.ko\n"
            "kernel/fs/overlayfs/overlay.ko:\n"
            "kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio.ko\n"
            "kernel/drivers/firmware/qemu_fw_cfg.ko:\n"
            "kernel/drivers/acpi/button.ko:\n"
            "kernel/drivers/input/evdev.ko:\n"
            "kernel/drivers/unused.ko:\n";
        const char *p;
        size_t len = 0, n;

        assert_true(asprintf(&moddir, "%s/6.1.0-9-amd64", dir) > 0);
        assert_true(asprintf(&out, "%s/initrd.cpio", dir) > 0);
        assert_true(asprintf(&bb, "%s/busybox", dir) > 0);
        assert_true(asprintf(&init, "%s/init", dir) > 0);
        test_write(fd, "busybox", "BB");
        test_write(fd, "init", "#!/bin/busybox sh\n");
        test_write(fd, "6.1.0-9-amd64/modules.dep", dep);
        for (const char *l = dep; *l; l = strchr(l, '\n') + 1) {
                _cleanup_free_ char *path = NULL;
                assert_true(asprintf(&path, "6.1.0-9-amd64/%.*s", (int)strcspn(l, ":"), l) > 0);
                assert_int_equal(mkdir_parents_at(fd, path, 0755), 0);
                test_write(fd, path, "ko");
        }
        assert_int_equal(vm_initrd_write(out, bb, init, moddir, &error), 0);
        assert_int_equal(read_file_at(fd, "initrd.cpio", 1 << 20, &text, &len), 0);

        /* The modules in lib/modules/VERSION, flat, with a modules.dep of
         * base names (busybox's modprobe), and their names in order. */
        assert_true(cpio_find(text, len, "init", &p, &n));
        assert_true(cpio_find(text, len, "bin/busybox", &p, &n));
        assert_true(n == 2 && memcmp(p, "BB", 2) == 0);
        assert_true(cpio_find(text, len, "lib/modules/6.1.0-9-amd64/ext4.ko", &p, &n));
        assert_true(n == 2 && memcmp(p, "ko", 2) == 0);
        assert_true(cpio_find(text, len, "lib/modules/6.1.0-9-amd64/virtio-rng.ko", &p, &n));
        assert_false(cpio_find(text, len, "lib/modules/6.1.0-9-amd64/unused.ko", &p, &n));
        assert_true(cpio_find(text, len, "lib/modules/6.1.0-9-amd64/modules.dep", &p, &n));
        {
                _cleanup_free_ char *d = strndup(p, n);
                assert_non_null(strstr(d, "\next4.ko: crc16.ko jbd2.ko\n"));
                assert_non_null(strstr(d, "virtio_pci.ko: virtio_ring.ko virtio.ko\n"));
                assert_non_null(strstr(d, "\noverlay.ko:\n"));
                assert_null(strstr(d, "kernel/"));
        }
        assert_true(cpio_find(text, len, "lib/modules/order", &p, &n));
        {
                _cleanup_free_ char *o = strndup(p, n);
                /* every module after what it needs */
                assert_true(startswith(o, "virtio_ring\nvirtio\nvirtio_pci\nvirtio-rng\n"));
                assert_true(strstr(o, "crc16\n") < strstr(o, "ext4\n"));
                assert_true(strstr(o, "jbd2\n") < strstr(o, "ext4\n"));
                assert_non_null(strstr(o, "\nevdev\n"));
                assert_null(strstr(o, ".ko"));
        }
        test_tmpdir_remove(dir);
}

static void test_ready_timeout(void **state)
{
        (void)state;
        /* a CPU to spare: the base */
        assert_int_equal(vm_ready_timeout(300, 0.5, 2, 3600), 300);
        assert_int_equal(vm_ready_timeout(300, 2.0, 2, 3600), 300);
        /* load 20 on 2 CPUs: ten times the base, at most max */
        assert_int_equal(vm_ready_timeout(300, 6.0, 2, 3600), 900);
        assert_int_equal(vm_ready_timeout(300, 20.0, 2, 3600), 3000);
        assert_int_equal(vm_ready_timeout(300, 40.0, 2, 3600), 3600);
        /* no load average or no CPU count: the base */
        assert_int_equal(vm_ready_timeout(300, -1, 2, 3600), 300);
        assert_int_equal(vm_ready_timeout(300, 20.0, 0, 3600), 300);
}

static void test_kernel_append(void **state)
{
        _cleanup_free_ char *a = NULL, *b = NULL;

        assert_int_equal(vm_kernel_append(false, &a), 0);
        assert_non_null(strstr(a, "init=" VM_GUEST_INIT));
        assert_non_null(strstr(a, "panic=-1"));
        assert_non_null(strstr(a, "console=ttyS0"));
        assert_int_equal(vm_kernel_append(true, &b), 0);
        assert_null(strstr(b, "init="));
}

TEST_MAIN(cmocka_unit_test(test_name_valid), cmocka_unit_test(test_dir_pick),
          cmocka_unit_test(test_shell_quote), cmocka_unit_test(test_result_parse),
          cmocka_unit_test(test_forward_parse), cmocka_unit_test(test_size_parse),
          cmocka_unit_test(test_packages_parse), cmocka_unit_test(test_apt_source_parse),
          cmocka_unit_test(test_kernel_find), cmocka_unit_test(test_image_load_initrd),
          cmocka_unit_test(test_text_tail), cmocka_unit_test(test_qemu_argv),
          cmocka_unit_test(test_kernel_append), cmocka_unit_test(test_drive_parse),
          cmocka_unit_test(test_drive_probe), cmocka_unit_test(test_modules_order),
          cmocka_unit_test(test_ready_timeout), cmocka_unit_test(test_initrd_write))
