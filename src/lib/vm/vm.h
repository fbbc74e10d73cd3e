/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The VM lab's pure logic: names, the layout of a vm dir, the QEMU command
 * line of a guest, the result channel's format, and the small parsers the
 * front-end needs. No process is started here (see vmrun.h, vmimage.h).
 *
 * A vm dir holds:
 *
 *     id_ed25519, id_ed25519.pub     the lab's ssh client key
 *     kvm-probe/<kernel>             "kvm" or "tcg", the cached probe result
 *     images/NAME/                   a base image: base.qcow2, data.qcow2,
 *                                    image.json, known_hosts, rootfs/, lock
 *     instances/NAME/I/              an instance: root.qcow2, data.qcow2,
 *                                    state.json, console.log, qmp.sock, lock
 *     runs/NAME-XXXXXX/              a `vm run` instance while it runs
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VM_NAME_MAX        64
#define VM_DIR_DEFAULT     "/var/lib/strata/vm"
#define VM_READY_MARKER    "strata-vm: ready"
#define VM_PORT_RESULT     "org.strata.result"
#define VM_PORT_STDOUT     "org.strata.stdout"
#define VM_PORT_STDERR     "org.strata.stderr"
#define VM_FWCFG_COMMAND   "opt/strata/command"
#define VM_FWCFG_WAIT_SYNC "opt/strata/wait-sync"
#define VM_GUEST_INIT      "/usr/lib/strata/vm-init"
#define VM_GUEST_SYNC_DIR  "/work"
#define VM_FORWARDS_MAX    16
#define VM_DRIVES_MAX      8
#define VM_LABEL_MAX       32

/* Exit statuses of `strata vm run` beyond the command's own. */
#define VM_STATUS_NO_RESULT 255 /* panic, power-off or crash without a result */
#define VM_STATUS_TIMEOUT   124

/* A name of an image or instance: 1..64 of [A-Za-z0-9._-], not starting
 * with '.' or '-' (so never "..", a path or an option). */
bool vm_name_valid(const char *name);

/* The vm dir: dir_opt when set, else $STRATA_VM_DIR when set and not
 * empty, else VM_DIR_DEFAULT. Not copied. */
const char *vm_dir_pick(const char *dir_opt);

/* Renders argv as a POSIX shell command line, each word single-quoted
 * ("'a' 'b c' 'it'\''s'"). *ret is owned by the caller. 0 or -ENOMEM. */
int vm_shell_quote(char *const *argv, char **ret);

/* Parses what the guest wrote on the result port: a decimal status
 * 0..255 and a newline. -ENODATA when there is no complete line (the
 * guest died first), -EBADMSG when it is not a status. */
int vm_result_parse(const char *data, size_t len, int *ret_status);

/* The seconds `vm start` waits for the ready marker by default: base on
 * a machine with a CPU to spare; above that, base times the load per CPU
 * (load, the 1-minute load average, over cpus), as a TCG guest boots only
 * as fast as it gets CPU time; at most max. */
int64_t vm_ready_timeout(int64_t base, double load, long cpus, int64_t max);

/* Parses "HOST:GUEST" TCP ports (1..65535 each). -EINVAL otherwise. */
int vm_forward_parse(const char *s, uint16_t *ret_host, uint16_t *ret_guest);

/* Parses a size "4G", "512M", "2048K" or plain bytes into bytes; at least
 * 64M. -EINVAL otherwise, -ERANGE when too small or too large. */
int vm_size_parse(const char *s, uint64_t *ret);

/* Splits a comma- or space-separated package list into a sorted,
 * deduplicated NULL-terminated array; each name must look like a Debian
 * package name ([a-z0-9][a-z0-9+.-]*), else -EINVAL. */
int vm_packages_parse(const char *s, char ***ret);

/* The Debian archive of this machine from the text of its apt sources:
 * the first "URIs:"/"Suites:" pair of deb822 text, else the first plain
 * "deb URI SUITE" line of sources.list text (either may be NULL).
 * -ENOENT when neither names one. */
int vm_apt_source_parse(const char *deb822, const char *sources_list, char **ret_mirror,
                        char **ret_suite);

/* The newest kernel in dir (vmlinuz-VERSION, by version order) and its
 * initrd (initrd.img-VERSION, NULL when missing). -ENOENT without one. */
int vm_kernel_find(const char *dir, char **ret_kernel, char **ret_initrd, char **ret_version);

/* The last n lines of a text (the serial console), for messages. Returns
 * a pointer into data. */
const char *vm_text_tail(const char *data, size_t len, unsigned n);

/* A drive beyond the lab's two disks (--seed, --drive): /dev/vdc, vdd...
 * in the guest, in the order given. */
struct vm_drive {
        const char *path;   /* absolute when QEMU gets it */
        const char *format; /* "raw" or "qcow2"; NULL: raw */
        bool readonly;
        bool seed; /* a NoCloud seed: read-only, labelled cidata */
};

/* Parses "FILE[,ro]" into ret (readonly when it ends in ",ro"; ",rw" is
 * the default spelled out). spec is cut in place: ret->path points into
 * it. -EINVAL for an empty FILE. */
int vm_drive_parse(char *spec, struct vm_drive *ret);

/* What a drive's first bytes say: the format ("qcow2" when it starts with
 * QEMU's magic, else "raw") and the label of an ISO 9660 (volume id), FAT
 * or ext2/3/4 file system on it ("" when none is found). head holds the
 * first len bytes; 64 KiB covers every label looked for. */
void vm_drive_probe(const unsigned char *head, size_t len, const char **ret_format,
                    char ret_label[VM_LABEL_MAX + 1]);

/* Whether label names a NoCloud seed (cidata, in any case). */
bool vm_label_is_seed(const char *label);

enum vm_accel {
        VM_ACCEL_TCG,
        VM_ACCEL_KVM,
};

const char *vm_accel_to_string(enum vm_accel a);

/* Everything one QEMU process of the lab is started with. Paths are
 * absolute; NULL leaves a device out. */
struct vm_boot {
        const char *qemu;   /* NULL: qemu-system-x86_64 */
        const char *kernel; /* -kernel */
        const char *initrd; /* -initrd; NULL: none */
        const char *append; /* -append */
        const char *root_disk;
        const char *data_disk;
        unsigned mem_mb; /* 0: 1024 */
        unsigned cpus;   /* 0: 1 */
        enum vm_accel accel;
        const char *console;   /* -serial file:PATH */
        const char *result;    /* the result port's file */
        const char *out, *err; /* the stdout and stderr ports' files */
        const char *command;   /* fw_cfg VM_FWCFG_COMMAND from this file */
        bool wait_sync;        /* fw_cfg VM_FWCFG_WAIT_SYNC */
        uint16_t ssh_port;     /* 0: no network */
        uint16_t fwd_host[VM_FORWARDS_MAX], fwd_guest[VM_FORWARDS_MAX];
        size_t n_forwards;
        struct vm_drive drives[VM_DRIVES_MAX]; /* after the two disks */
        size_t n_drives;
        const char *qmp;     /* QMP unix socket path */
        const char *pidfile; /* with daemonize */
        bool daemonize;
};

/* The QEMU argv for b (NULL-terminated, owned by the caller). */
int vm_qemu_argv(const struct vm_boot *b, char ***ret);

/* The kernel command line of a lab guest: the image's root read-only on
 * the first virtio disk, the serial console, no reboot after a panic, and
 * init= vm-init unless own_init (the image's /sbin/init). */
int vm_kernel_append(bool own_init, char **ret);
