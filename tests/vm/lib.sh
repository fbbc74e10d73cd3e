# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=sh
# Shared by the vm suite's tests (and bench/nfs-lab.sh): a vm dir of a
# test's own over the one cached image, and killing what a test started.

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
