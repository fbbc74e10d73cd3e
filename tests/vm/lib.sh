# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=sh
# Shared by the vm suite's tests (and bench/nfs-lab.sh): what they need
# and where the one cached image is, a vm dir of a test's own over it, and
# killing what a test started.

# vm_test_setup [PROGRAM PACKAGE]...: skips (77) unless this is root with
# QEMU, qemu-img, debootstrap (the image build), each PROGRAM (from Debian's
# PACKAGE) and a kernel in /boot for the guests. Sets CACHE (the suite's
# vm dir of cached images: STRATA_VM_CACHE, else $STRATA_BUILD_ROOT/vm-lab),
# IMG (the one image of the suite and of the NFS lab's test) and PACKAGES
# (that image's packages: the NFS lab's client packages, nfs-common,
# tcpdump, cloud-init..., from its list, comma-separated).
vm_test_setup() {
    need_root
    need_program qemu-system-x86_64 qemu-system-x86
    need_program qemu-img qemu-utils
    need_program debootstrap debootstrap
    while [ $# -ge 2 ]; do
        need_program "$1" "$2"
        shift 2
    done
    ls /boot/vmlinuz-* >/dev/null 2>&1 || t_skip_all "no kernel in /boot (Debian package linux-image-amd64)"
    CACHE=${STRATA_VM_CACHE:-${STRATA_BUILD_ROOT:?}/vm-lab}
    IMG=strata-test
    PACKAGES=$(grep -v '^#' "${STRATA_SOURCE_ROOT:?}/tests/nfslab/vm-packages" | tr -d ' \n')
}

# vm_dir_over_cache CACHE DIR: DIR becomes a vm dir whose instances and
# runs are its own, over CACHE's images, with CACHE's client key (the
# images' authorized key, part of their inputs) and KVM probe answer.
vm_dir_over_cache() {
    mkdir -p "$1/images" "$2" || return 1
    ln -sfn "$1/images" "$2/images" || return 1
    for f in id_ed25519 id_ed25519.pub kvm-probe; do
        if [ -e "$1/$f" ]; then cp -r "$1/$f" "$2/" || return 1; fi
    done
}

# vm_kill_started DIR: SIGKILL to the processes (QEMU) whose command line
# names DIR, this shell excepted.
vm_kill_started() {
    for p in $(pgrep -f -- "$1/" 2>/dev/null); do
        [ "$p" != $$ ] && kill -KILL "$p" 2>/dev/null
    done
}

# vm_guard DIR CLEANUP: CLEANUP (the caller's function: kill what the test
# started, then remove DIR) runs on exit, and on SIGINT and SIGTERM with
# the exit status 130 and 143. meson stops a test on timeout with SIGTERM
# to its process group and SIGKILL half a second later, while the shell may
# still wait for a foreground command (a trap runs only after it ends); the
# daemonized QEMU of `vm start` is in a session of its own and outlives
# both. So a reaper outside the group, holding no fd of meson's, kills the
# processes whose command line names DIR once this shell is gone, unmounts
# what is left below DIR and removes it. tests/vm/test-vm-kill.sh kills a
# guarded shell both ways.
vm_guard() {
    # shellcheck disable=SC2064
    trap "$2" EXIT
    # shellcheck disable=SC2064
    trap "$2; exit 130" INT
    # shellcheck disable=SC2064
    trap "$2; exit 143" TERM
    # shellcheck disable=SC2016
    setsid sh -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done
for p in $(pgrep -f -- "$2/"); do kill -KILL "$p"; done
grep -o " $2/[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
rm -rf "$2"' vm-reaper $$ "$1" </dev/null >/dev/null 2>&1 &
}
