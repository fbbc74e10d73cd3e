#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The kernel's own cost of writing through an overlay, per mount option
# (one run, a table printed; not a test). The migration sandbox writes the
# script's files through an overlay over the base; this measures the floor
# that puts under bench/migrate.sh's ratio on this kernel:
#   (a) the plain script on the host: FILES small files in a new dir, then
#       `sync -f` of that file system;
#   (o) the same script in a bare overlay over / (a private mount
#       namespace, chroot), upper and work dirs on the same file system,
#       then `sync -f` of the upper: once with the kernel's defaults and
#       once per option (xino, index, redirect_dir, metacopy, uuid,
#       nfs_export, volatile, userxattr).
# Each is run RUNS times (default 5), alternating, and the median CPU time
# (user + system of the whole process tree) and wall time are printed, with
# the CPU ratio (o)/(a). On a tmpfs (/dev/shm) and on an ext4 file system
# (a loop-mounted image in the temp dir). FSYNC=1 makes the script fsync
# every file it writes (as dpkg does), where volatile matters.
# Usage: bench/overlay-options.sh   (root; the host is left unchanged)
set -eu
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
FILES=${FILES:-10000}
RUNS=${RUNS:-5}
FSYNC=${FSYNC:-0}
OPTIONS=${OPTIONS:-"xino=off xino=auto xino=on index=off redirect_dir=off metacopy=off uuid=off uuid=null nfs_export=off volatile userxattr"}
T=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench.XXXXXX")
SHM=""
EXT4=""
cleanup() {
    [ -n "$SHM" ] && rm -rf "$SHM"
    [ -n "$EXT4" ] && umount "$EXT4" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
now_ms() { date +%s%N | cut -b1-13; }

if [ "$FSYNC" = 1 ]; then
    # busybox-free: sync(1) of coreutils fsyncs the files it is given
    SCRIPT='mkdir -p "$1"; i=0; while [ $i -lt '"$FILES"' ]; do echo "file $i" > "$1/f$i"; sync "$1/f$i"; i=$((i + 1)); done'
else
    SCRIPT='mkdir -p "$1"; i=0; while [ $i -lt '"$FILES"' ]; do echo "file $i" > "$1/f$i"; i=$((i + 1)); done'
fi

# run_one NAME CMD...: appends "CPU_MS WALL_MS" of CMD to $T/NAME.
run_one() {
    name=$1
    shift
    s=$(now_ms)
    /usr/bin/time -o "$T/time.out" -f "%U %S" "$@" >/dev/null 2>"$T/err" ||
        { echo "bench: $name failed: $(tail -n 2 "$T/err")" >&2; return 1; }
    e=$(now_ms)
    awk -v w=$((e - s)) '{ printf "%d %d\n", ($1 + $2) * 1000, w }' "$T/time.out" >>"$T/$name"
}

plain() {
    mkdir -p "$1/plain"
    run_one plain sh -c "$SCRIPT"'; sync -f "$1"' sh "$1/plain/out"
    rm -rf "$1/plain"
}

# overlay DIR NAME OPTION: the script through a bare overlay (OPTION "" for
# the defaults).
overlay() {
    W=$1/ov
    mkdir -p "$W/upper" "$W/work" "$W/root"
    run_one "$2" unshare -m sh -c 'mount --make-rprivate / &&
        mount -t overlay overlay -o "lowerdir=/,upperdir=$1/upper,workdir=$1/work${3:+,$3}" "$1/root" &&
        chroot "$1/root" /bin/sh -c "$2" sh /opt/strata-bench && sync -f "$1/upper"' \
        sh "$W" "$SCRIPT" "$3"
    rm -rf "$W"
}

table() {
    D=$1
    fs=$(stat -f -c %T "$D")
    rm -f "$T"/plain "$T"/opt-*
    # which options this kernel takes (one mount each; refused ones are
    # listed and left out)
    ok=""
    for o in $OPTIONS; do
        mkdir -p "$D/probe/u" "$D/probe/w" "$D/probe/r"
        if unshare -m sh -c 'mount -t overlay overlay -o "lowerdir=/,upperdir=$1/u,workdir=$1/w,$2" "$1/r"' \
            sh "$D/probe" "$o" 2>/dev/null; then
            ok="$ok $o"
        else
            echo "  $fs: the kernel refuses '$o'" >&2
        fi
        rm -rf "$D/probe"
    done
    i=0
    while [ $i -lt "$RUNS" ]; do
        plain "$D"
        overlay "$D" opt-defaults ""
        for o in $ok; do overlay "$D" "opt-$o" "$o"; done
        i=$((i + 1))
    done
    pc=$(cut -d' ' -f1 "$T/plain" | median)
    pw=$(cut -d' ' -f2 "$T/plain" | median)
    echo "$FILES files$([ "$FSYNC" = 1 ] && echo ', each fsynced') on $fs (median of $RUNS, CPU = user + system):"
    printf '  %-22s %8s %8s %10s\n' "" "CPU ms" "wall ms" "CPU ratio"
    printf '  %-22s %8s %8s %10s\n' "(a) plain script" "$pc" "$pw" "1.00"
    for name in defaults $ok; do
        c=$(cut -d' ' -f1 "$T/opt-$name" | median)
        w=$(cut -d' ' -f2 "$T/opt-$name" | median)
        printf '  %-22s %8s %8s %10s\n' "(o) $name" "$c" "$w" \
            "$(awk -v c="$c" -v p="$pc" 'BEGIN { printf "%.2f", (p > 0) ? c / p : 0 }')"
    done
}

echo "load: $(uptime)"
echo "kernel: $(uname -r); overlay module defaults: $(for p in /sys/module/overlay/parameters/*; do printf '%s=%s ' "${p##*/}" "$(cat "$p")"; done)"
SHM=$(mktemp -d /dev/shm/strata-bench.XXXXXX)
table "$SHM"
rm -rf "$SHM"
SHM=""
if command -v mkfs.ext4 >/dev/null 2>&1 && truncate -s 2G "$T/ext4.img" &&
    mkfs.ext4 -q "$T/ext4.img" && mkdir -p "$T/ext4" && mount -o loop "$T/ext4.img" "$T/ext4"; then
    EXT4=$T/ext4
    table "$EXT4"
    umount "$EXT4"
    EXT4=""
else
    echo "bench: no loop-mounted ext4 here" >&2
fi
echo "load: $(uptime)"
