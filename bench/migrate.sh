#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# system-migrate benchmarks (one run, figures printed; not a test):
#   1. the fixed cost of a no-op migration (namespaces, overlay, capture,
#      commit): the median over 20 `up` runs, whole process and the
#      engine's own duration_ms;
#   2. a script writing 10,000 small files run (a) plainly on the host,
#      (b) as a migration, (c) as `podman run` + `podman commit` (runc,
#      a temp --root/--runroot, lowered ulimits, an image imported from a
#      busybox-static rootfs), with the ratios b/a and c/b.
# Usage: bench/migrate.sh [BUILD_DIR]   (root; the host is left unchanged)
set -eu
BUILD=${1:-build}
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
    grep -o " $T[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$T"
}
PODMAN=""
SHM=""
trap cleanup EXIT INT TERM

now_ms() { date +%s%N | cut -b1-13; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# 1. fixed cost of a no-op migration
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

# 2. 10,000 small files, everything (plain dir, data dir, podman storage)
# under $1; printed with the name of its file system.
files_bench() {
    W=$1
    fs=$(stat -f -c %T "$W")
    SCRIPT='mkdir -p "$1"; i=0; while [ $i -lt 10000 ]; do echo "file $i" > "$1/f$i"; i=$((i + 1)); done'
    mkdir -p "$W/plain"
    s=$(now_ms)
    sh -c "$SCRIPT" sh "$W/plain/out"
    sync -f "$W/plain"
    e=$(now_ms)
    plain=$((e - s))

    M=$W/files
    mkdir -p "$M/20260202-001_files"
    printf '%s\n' "set -- /opt/strata-bench; $SCRIPT" >"$M/20260202-001_files/install_script.sh"
    s=$(now_ms)
    "$SM" --data "$W/files-data" --dir "$M" --base / up >/dev/null 2>&1
    e=$(now_ms)
    mig=$((e - s))
    n=$("$SM" --data "$W/files-data" --dir "$M" status --json | sed -n 's/.*"A": \([0-9]*\).*/\1/p')

    pod="n/a"
    if command -v podman >/dev/null 2>&1 && command -v busybox >/dev/null 2>&1; then
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
    fi

    echo "10,000 files on $fs: (a) plain script ${plain} ms, (b) migration ${mig} ms (${n} added paths captured), (c) podman run + commit ${pod} ms"
    awk -v a="$plain" -v b="$mig" -v c="$pod" 'BEGIN {
        printf "ratios: (b)/(a) = %.2f (goal <= 1.2)", b / a
        if (c != "n/a") printf ", (c)/(b) = %.1f (goal >= 5)", c / b
        printf "\n"
    }'
}

mkdir -p "$T/disk"
files_bench "$T/disk"
podman_reset
if [ -d /dev/shm ]; then
    SHM=$(mktemp -d /dev/shm/strata-bench.XXXXXX)
    files_bench "$SHM"
    podman_reset
    rm -rf "$SHM"
fi
