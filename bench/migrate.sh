#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# system-migrate benchmarks (one run, figures printed; not a test):
#   1. the fixed cost of a no-op migration (namespaces, overlay, capture,
#      commit): the median over 20 `up` runs, whole process and the
#      engine's own duration_ms;
#   2. scripts writing 10,000 and 100,000 small files in one dir and
#      1,000 dirs of 100 files, each run (a) plainly on the host, (b) as a
#      migration, and (d) plainly in a bare overlayfs mount over / (the
#      kernel's own cost of writing through an overlay: the floor of (b));
#      and "1000s": 1,000 files each fsynced by sync(1), as dpkg syncs
#      what it unpacks (the sandbox's upper is volatile: synced once, at
#      the end); at 10,000 files also (c) as `podman run` + `podman commit` (runc, a
#      temp --root/--runroot, lowered ulimits, an image imported from a
#      busybox-static rootfs); the ratios b/a, d/a and c/b per size. On a
#      tmpfs (/dev/shm) and on an ext4 file system (a loop-mounted image
#      in the temp dir; the temp dir's own file system without losetup).
#   The engine's phase timings (lock and checks, sandbox setup, script,
#   sandbox teardown, capture, state split, layer written, synced,
#   committed, finished) are in its debug log: system-migrate
#   --log-level=debug up.
# Usage: bench/migrate.sh [BUILD_DIR]   (root; the host is left unchanged)
#   and "10000u": 10,000 files written into /usr/lib, a dir the base has
#   (the migration's and the bare overlay's; the plain script's dir is new),
#   as a package install writes into /usr: each of them is a path the
#   capture looks up in the layers below.
# SIZES (default "10000 100000 1000x100 1000s 10000u") picks the sizes,
# FSES (default "ext4 tmpfs") the file systems; NOOP=0 skips the no-op
# runs (1.) and PODMAN_BENCH=0 the podman case (c).
set -eu
BUILD=${1:-${BUILD:-build}}
SM=$(cd "$BUILD" && pwd)/src/cli/system-migrate
[ -x "$SM" ] || { echo "bench: build first ($SM missing)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench.XXXXXX")
podman_reset() {
    if [ -n "$PODMAN" ]; then
        # shellcheck disable=SC2086
        podman $PODMAN rm -af >/dev/null 2>&1 || true
        # shellcheck disable=SC2086
        podman $PODMAN system reset -f >/dev/null 2>&1 || true
        PODMAN=""
    fi
}
cleanup() {
    podman_reset
    [ -n "${SHM:-}" ] && rm -rf "$SHM"
    [ -n "${EXT4:-}" ] && umount "$EXT4" 2>/dev/null
    grep -o " $T[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$T"
}
PODMAN=""
SHM=""
EXT4=""
trap cleanup EXIT INT TERM

now_ms() { date +%s%N | cut -b1-13; }
# timed CMD...: runs CMD; T_WALL its wall time, T_CPU the CPU time (user +
# system, in ms) of it and every process it waited for: on a loaded
# machine the CPU ratio says more than the wall ratio. CMD fails: exit.
TIME=$(command -v /usr/bin/time || true)
timed() {
    s=$(now_ms)
    if [ -n "$TIME" ]; then
        "$TIME" -o "$T/time.out" -f "%U %S" "$@" || { echo "bench: '$*' failed" >&2; exit 1; }
        T_CPU=$(awk '{ printf "%d", ($1 + $2) * 1000 }' "$T/time.out")
    else
        "$@" || { echo "bench: '$*' failed" >&2; exit 1; }
        T_CPU="n/a"
    fi
    e=$(now_ms)
    T_WALL=$((e - s))
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# 1. fixed cost of a no-op migration
noop_bench() {
    M=$T/noop
    mkdir -p "$M"
    for i in $(seq 1 20); do
        id=$(printf '20260201-%03d_noop' "$i")
        mkdir -p "$M/$id"
        echo true >"$M/$id/install_script.sh"
    done
    : >"$T/noop.times"
    for i in $(seq 1 20); do
        id=$(printf '20260201-%03d_noop' "$i")
        s=$(now_ms)
        "$SM" --data "$T/noop-data" --dir "$M" --base / up --to "$id" >/dev/null 2>&1
        e=$(now_ms)
        echo $((e - s)) >>"$T/noop.times"
    done
    whole=$(median <"$T/noop.times")
    engine=$("$SM" --data "$T/noop-data" --dir "$M" status --json |
        sed -n 's/.*"duration_ms": \([0-9]*\).*/\1/p' | median)
    echo "no-op migration: median ${whole} ms per 'system-migrate up' process, ${engine} ms inside the engine (20 runs, 1..20 layers below)"
}

# 2. small files; everything (plain dir, data dir, podman storage) under
# $1, printed with the name of its file system.
# script_for SIZE: a script writing SIZE ("N" or "DIRSxFILES") files
# under "$1".
script_for() {
    case $1 in
    *s)
        # each file fsynced (sync(1) of one file), as dpkg does
        printf '%s' 'mkdir -p "$1"; i=0; while [ $i -lt '"${1%s}"' ]; do echo "file $i" > "$1/f$i"; sync "$1/f$i"; i=$((i + 1)); done'
        ;;
    *x*)
        printf '%s' 'd=0; while [ $d -lt '"${1%x*}"' ]; do mkdir -p "$1/d$d"; i=0;' \
            ' while [ $i -lt '"${1#*x}"' ]; do echo "file $i" > "$1/d$d/f$i"; i=$((i + 1)); done;' \
            ' d=$((d + 1)); done'
        ;;
    *u) printf '%s' 'mkdir -p "$1"; i=0; while [ $i -lt '"${1%u}"' ]; do echo "file $i" > "$1/strata-bench-f$i"; i=$((i + 1)); done' ;;
    *) printf '%s' 'mkdir -p "$1"; i=0; while [ $i -lt '"$1"' ]; do echo "file $i" > "$1/f$i"; i=$((i + 1)); done' ;;
    esac
}

podman_bench() {
    W=$1 SCRIPT=$2
    pod="n/a"
    command -v podman >/dev/null 2>&1 && command -v busybox >/dev/null 2>&1 || return 0
    mkdir -p "$W/rootfs/bin" "$W/storage" "$W/run"
    cp "$(command -v busybox)" "$W/rootfs/bin/busybox"
    for a in sh mkdir echo true; do ln -s busybox "$W/rootfs/bin/$a"; done
    printf '%s\n' '[containers]' \
        'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]' \
        '[engine]' 'runtime = "runc"' 'cgroup_manager = "cgroupfs"' \
        'events_logger = "file"' >"$W/containers.conf"
    export CONTAINERS_CONF="$W/containers.conf"
    PODMAN="--root $W/storage --runroot $W/run --runtime runc --cgroup-manager cgroupfs --events-backend file"
    # shellcheck disable=SC2086
    if tar -C "$W/rootfs" -cf "$W/rootfs.tar" . &&
        podman $PODMAN import "$W/rootfs.tar" strata-bench-base >/dev/null 2>&1; then
        s=$(now_ms)
        # shellcheck disable=SC2086
        if podman $PODMAN run --name strata-bench --network none strata-bench-base \
            /bin/sh -c "$SCRIPT" sh /opt/strata-bench >/dev/null 2>"$W/podman.err" &&
            podman $PODMAN commit strata-bench strata-bench-out >/dev/null 2>>"$W/podman.err"; then
            e=$(now_ms)
            pod=$((e - s))
        else
            echo "podman run/commit failed: $(tail -n 3 "$W/podman.err")" >&2
        fi
    else
        echo "podman import failed" >&2
    fi
    podman_reset
    rm -rf "$W/rootfs" "$W/rootfs.tar" "$W/storage" "$W/run"
}

files_bench() {
    W=$1 SIZE=$2
    # the mount's own type: stat -f names ext4 "ext2/ext3"
    fs=$(findmnt -n -o FSTYPE -T "$W" 2>/dev/null | head -n 1)
    [ -n "$fs" ] || fs=$(stat -f -c %T "$W")
    SCRIPT=$(script_for "$SIZE")
    # where the migration (and the bare overlay) write
    case $SIZE in *u) DEST=/usr/lib ;; *) DEST=/opt/strata-bench ;; esac
    mkdir -p "$W/plain"
    timed sh -c "$SCRIPT"'; sync -f "$1"' sh "$W/plain/out"
    plain=$T_WALL plain_cpu=$T_CPU
    rm -rf "$W/plain"

    M=$W/files
    mkdir -p "$M/20260202-001_files"
    printf '%s\n' "set -- $DEST; $SCRIPT" >"$M/20260202-001_files/install_script.sh"
    timed "$SM" --data "$W/files-data" --dir "$M" --base / up >/dev/null 2>&1
    mig=$T_WALL mig_cpu=$T_CPU
    n=$("$SM" --data "$W/files-data" --dir "$M" status --json | sed -n 's/.*"A": \([0-9]*\).*/\1/p')
    rm -rf "$M" "$W/files-data"

    # (d): the script in a bare overlay over / in a private mount
    # namespace, upper on the same file system, synced like (a).
    mkdir -p "$W/ov/upper" "$W/ov/work" "$W/ov/root"
    if (timed unshare -m sh -c 'mount --make-rprivate / &&
        mount -t overlay overlay -o "lowerdir=/,upperdir=$1/upper,workdir=$1/work" "$1/root" &&
        chroot "$1/root" /bin/sh -c "$2" sh "$3" && sync -f "$1/upper"' \
        sh "$W/ov" "$SCRIPT" "$DEST" && echo "$T_WALL $T_CPU" >"$T/ov.out") 2>/dev/null; then
        read -r ov ov_cpu <"$T/ov.out"
    else
        ov="n/a" ov_cpu="n/a"
    fi
    rm -rf "$W/ov"

    pod="n/a"
    [ "$SIZE" = 10000 ] && [ "${PODMAN_BENCH:-1}" != 0 ] && podman_bench "$W" "$SCRIPT"

    echo "$SIZE files on $fs: (a) plain script ${plain} ms, (b) migration ${mig} ms (${n} added paths captured), (d) bare overlay ${ov} ms, (c) podman run + commit ${pod} ms"
    echo "  CPU (user + system): (a) ${plain_cpu} ms, (b) ${mig_cpu} ms, (d) ${ov_cpu} ms"
    awk -v a="$plain" -v b="$mig" -v c="$pod" -v d="$ov" \
        -v ac="$plain_cpu" -v bc="$mig_cpu" -v dc="$ov_cpu" 'BEGIN {
        printf "  ratios: (b)/(a) = %.2f (goal <= 1.2)", b / a
        if (d != "n/a") printf ", (d)/(a) = %.2f (the overlay floor)", d / a
        if (c != "n/a") printf ", (c)/(b) = %.1f (goal >= 5)", c / b
        printf "\n"
        if (ac != "n/a" && ac > 0) {
            printf "  CPU ratios: (b)/(a) = %.2f", bc / ac
            if (dc != "n/a") printf ", (d)/(a) = %.2f (the overlay floor)", dc / ac
            printf "\n"
        }
    }'
}

echo "load: $(uptime)"
[ "${NOOP:-1}" != 0 ] && noop_bench
SIZES=${SIZES:-10000 100000 1000x100 1000s 10000u}
FSES=${FSES:-ext4 tmpfs}
want_fs() { case " $FSES " in *" $1 "*) return 0 ;; esac; return 1; }
ext4_bench() {
    if command -v mkfs.ext4 >/dev/null 2>&1 && truncate -s 6G "$T/ext4.img" &&
        mkfs.ext4 -q -N 1200000 "$T/ext4.img" && mkdir -p "$T/ext4" &&
        mount -o loop "$T/ext4.img" "$T/ext4"; then
        EXT4=$T/ext4
        DISK=$EXT4
    else
        echo "bench: no loop-mounted ext4 here; using $T's own file system" >&2
        DISK=$T/disk
        mkdir -p "$DISK"
    fi
    for size in $SIZES; do files_bench "$DISK" "$size"; done
    if [ -n "$EXT4" ]; then
        umount "$EXT4"
        EXT4=""
    fi
}
want_fs ext4 && ext4_bench
if want_fs tmpfs && [ -d /dev/shm ]; then
    SHM=$(mktemp -d /dev/shm/strata-bench.XXXXXX)
    for size in $SIZES; do files_bench "$SHM" "$size"; done
    rm -rf "$SHM"
fi
echo "load: $(uptime)"
