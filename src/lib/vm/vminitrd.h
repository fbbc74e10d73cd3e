/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The lab's own initrd: an uncompressed cpio with a static busybox, the
 * few kernel modules a lab guest needs (virtio, ext4, the ports, the
 * network, the entropy source, overlayfs, the power button) and an /init
 * that loads them, mounts /dev/vda read-only and switches to the image's
 * init. It stands in
 * for the distribution's initrd (tens of MB that TCG has to unpack, a
 * udev that probes everything) on every boot.
 */

#include <stdbool.h>

/* The modules a lab guest loads, by name. */
extern const char *const vm_initrd_modules[];

/* From the text of a kernel's modules.dep, the paths (relative to its
 * module dir) of the modules named in wanted and of all they depend on,
 * each once, every module after its dependencies. -ENOENT (with the name
 * in *ret_missing, owned by the caller) when one is not listed. */
int vm_modules_order(const char *modules_dep, const char *const *wanted, char ***ret,
                     char **ret_missing);

/* Whether path is a statically linked ELF executable (no PT_INTERP). */
bool vm_elf_is_static(const char *path);

/* Writes the initrd to path (atomically): /init from init_script,
 * /bin/busybox from busybox, the wanted modules of the kernel whose
 * module dir is moddir (/lib/modules/VERSION), in the initrd's
 * /lib/modules/VERSION with a modules.dep of their own (busybox's
 * modprobe reads it), and /lib/modules/order, their names one a line,
 * every module after its dependencies. 0, or -errno with *ret_error
 * naming what failed. */
int vm_initrd_write(const char *path, const char *busybox, const char *init_script,
                    const char *moddir, char **ret_error);
