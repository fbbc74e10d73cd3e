# SPDX-License-Identifier: LGPL-2.1-or-later
# A private podman for tests and scripts: its own containers.conf, --root,
# --runroot and tmp dir under one directory, never the host's store. What
# the machine needs is detected: the runc runtime when cgroups are not pure
# v2, lowered default ulimits when raising RLIMIT_NOFILE is not allowed,
# the vfs storage driver when DIR is on an overlayfs (a strata machine's
# root, such as a vm guest's /var/tmp), which overlay cannot stack on.
#
#   . lib-podman.sh
#   podman_private DIR     sets it up under DIR and exports CONTAINERS_CONF
#                          (and CONTAINERS_STORAGE_CONF for vfs) and
#                          STRATA_PODMAN_ROOT/RUNROOT/RUNTIME (what strata
#                          pkg and strata orchd read)
#   pm ARGS...             podman on that store
#   podman_private_clean   removes every container and image in it
#   busybox_image IMAGE DIR [FILE CONTENT]
#                          imports a busybox-static root as IMAGE (rootfs
#                          built in DIR), with /www/FILE holding CONTENT

PM_DIR=""
PM_RUNTIME=""

podman_private() {
    PM_DIR=$1
    mkdir -p "$PM_DIR/podman-tmp"
    PM_RUNTIME=""
    [ -f /sys/fs/cgroup/cgroup.controllers ] || PM_RUNTIME=runc
    pm_ulimits=""
    pm_hard=$(ulimit -Hn)
    if [ "$pm_hard" != unlimited ] && ! (ulimit -Hn $((pm_hard + 1))) 2>/dev/null; then
        pm_n=$((pm_hard < 1024 ? pm_hard : 1024))
        pm_ulimits="default_ulimits = [\"nofile=$pm_n:$pm_n\", \"nproc=1024:1024\"]"
    fi
    cat >"$PM_DIR/containers.conf" <<PMEOF
[containers]
$pm_ulimits

[engine]
tmp_dir = "$PM_DIR/podman-tmp"
events_logger = "none"
PMEOF
    export CONTAINERS_CONF="$PM_DIR/containers.conf"
    if [ "$(stat -f -c %T "$PM_DIR")" = overlayfs ]; then
        printf '[storage]\ndriver = "vfs"\ngraphroot = "%s"\nrunroot = "%s"\n' \
            "$PM_DIR/root" "$PM_DIR/runroot" >"$PM_DIR/storage.conf"
        export CONTAINERS_STORAGE_CONF="$PM_DIR/storage.conf"
    fi
    export STRATA_PODMAN_ROOT="$PM_DIR/root" STRATA_PODMAN_RUNROOT="$PM_DIR/runroot"
    export STRATA_PODMAN_RUNTIME="$PM_RUNTIME"
}

pm() {
    podman --root "$PM_DIR/root" --runroot "$PM_DIR/runroot" ${PM_RUNTIME:+--runtime "$PM_RUNTIME"} "$@"
}

podman_private_clean() {
    if [ -n "$PM_DIR" ] && [ -d "$PM_DIR/root" ]; then
        pm rm -a -f -t 0 >/dev/null 2>&1
        pm rmi -a -f >/dev/null 2>&1
    fi
}

busybox_image() {
    bb_dir=$2
    mkdir -p "$bb_dir/bin" "$bb_dir/www"
    cp /bin/busybox "$bb_dir/bin/busybox"
    for a in sh httpd sleep echo cat kill; do ln -sf busybox "$bb_dir/bin/$a"; done
    [ $# -ge 4 ] && printf '%s\n' "$4" >"$bb_dir/www/$3"
    tar -C "$bb_dir" -cf - . | pm import - "$1" >/dev/null
}
