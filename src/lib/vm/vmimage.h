/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Base images of the VM lab (vm-dir/images/NAME/) and the instances made
 * over them.
 *
 * A build debootstraps a Debian root (or copies --rootfs), adds the lab's
 * guest files (vm-init, the s6 tree, sshd's config), the kernel modules the
 * initrd lacks, overlayfs-init, a fresh ssh host key and the lab's client
 * key, then makes base.qcow2 (mkfs.ext4 -d, qemu-img convert) and an empty
 * ext4 data.qcow2. image.json records what it was built from; a build whose
 * inputs are those of image.json is skipped (cached).
 */

#include <stdbool.h>
#include <stdint.h>

/* Packages every image gets, whatever --packages adds. */
#define VM_IMAGE_PACKAGES     "openssh-server,rsync,python3,s6,iproute2,kmod,acpid,libjansson4"
#define VM_IMAGE_SIZE_DEFAULT ((uint64_t)4 * 1024 * 1024 * 1024)
#define VM_DATA_SIZE_DEFAULT  ((uint64_t)8 * 1024 * 1024 * 1024)

struct vm_image_config {
        const char *vm_dir;
        const char *name;
        const char *suite;       /* NULL: the first suite of the apt sources */
        char *const *packages;   /* extra packages (may be NULL) */
        uint64_t size;           /* of the root filesystem; 0: default */
        const char *kernel;      /* NULL: the newest /boot/vmlinuz-* */
        const char *initrd;      /* NULL: the lab's (vminitrd.h), else /boot/initrd.img-* */
        const char *rootfs;      /* a root dir to copy instead of debootstrap */
        bool own_init;           /* boot the image's /sbin/init, not vm-init */
        const char *guest_dir;   /* the lab's guest tree (src/vm-guest) */
        const char *init_binary; /* the overlayfs-init to install */
        bool force;              /* rebuild even when cached */
};

/* Called at the start and the end of each stage with the seconds since
 * the build began, and every $STRATA_VM_PROGRESS_SEC (default 10) seconds
 * while a long step (debootstrap, mkfs, convert) runs, with how long it
 * has run and its output's last line as detail; detail may be NULL. */
typedef void (*vm_progress_fn)(const char *stage, double elapsed, const char *detail, void *ud);

/* Builds (or finds cached) the image. 0 and *ret_cached, or -errno with a
 * message in *ret_error naming the step and the path; -EWOULDBLOCK when
 * another build of NAME runs. */
int vm_image_build(const struct vm_image_config *c, vm_progress_fn progress, void *ud,
                   bool *ret_cached, char **ret_error);

struct vm_image {
        char *dir;  /* vm-dir/images/NAME */
        char *base; /* base.qcow2 */
        char *data; /* data.qcow2 */
        char *kernel;
        char *initrd;      /* may be NULL */
        char *append;      /* the kernel command line */
        char *known_hosts; /* the guest's host key, for ssh */
        char *host_alias;  /* the name known_hosts records it under */
        bool own_init;
};

/* Loads images/NAME/image.json. -ENOENT when NAME has no image, -EBADMSG
 * when image.json is damaged or its disks are missing; *ret_error says
 * which. */
int vm_image_load(const char *vm_dir, const char *name, struct vm_image *ret, char **ret_error);
void vm_image_done(struct vm_image *i);

/* Makes root.qcow2 and data.qcow2 in dir, copy-on-write over the image's
 * disks (qemu-img create -f qcow2 -b ... -F qcow2). Existing disks are
 * kept unless replace. */
int vm_instance_create_disks(const struct vm_image *img, const char *dir, bool replace,
                             char **ret_error);

/* The lab's ssh client key (vm-dir/id_ed25519), generated when missing.
 * *ret is its path. */
int vm_client_key(const char *vm_dir, char **ret, char **ret_error);

/* Runs argv (no shell), appending its output to log (may be NULL). 0 when
 * it exits 0; otherwise -EIO with "ARGV failed (status N): LAST LINE" in
 * *ret_error. */
int vm_run_tool(const char *const *argv, const char *log, char **ret_error);
