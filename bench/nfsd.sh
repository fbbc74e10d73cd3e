#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# strata-nfsd against nfs-ganesha (FSAL VFS), same machine, same client
# (libnfs: nfs-cp and a small create+stat program), same run, NFSv3/TCP on
# loopback ports:
#   - 64 MiB sequential write (nfs-cp local -> server)
#   - 64 MiB sequential read  (nfs-cp server -> local)
#   - create + stat of 2,000 empty files
# once per export file system in FS (default "tmpfs ext4"): tmpfs (a
# tmpfs mounted for the run: no inode allocation or journal noise) and
# ext4 (a directory under TMPDIR, whatever file system that is; its type
# is printed). Each figure is the median of RUNS runs (default 7); the two
# servers take turns, run by run. Ratios are ganesha time / strata time:
# above 1.0 means strata-nfsd is faster.
# Installs nfs-ganesha, nfs-ganesha-vfs and rpcbind through apt if missing
# (ganesha registers with rpcbind), and starts rpcbind if it is not running.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
RUNS=${RUNS:-7}
FS=${FS:-tmpfs ext4}
NFSD="$BUILD/src/nfsd/strata-nfsd"
MIB=64
NFILES=2000

die() { echo "bench: $*" >&2; exit 1; }

[ -x "$NFSD" ] || die "'$NFSD' is missing; run 'make build' first"
command -v nfs-cp >/dev/null || die "nfs-cp is missing (Debian package libnfs-utils)"
[ "$(id -u)" -eq 0 ] || die "needs root (open_by_handle_at, ganesha, a tmpfs mount)"
for fs in $FS; do
    case "$fs" in
    tmpfs | ext4) ;;
    *) die "unknown file system '$fs' in FS (tmpfs, ext4)" ;;
    esac
done

missing=""
for p in nfs-ganesha nfs-ganesha-vfs rpcbind; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "bench: installing$missing for the comparison (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing \
        >/dev/null || die "cannot install$missing"
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench-nfsd.XXXXXX")
NFSD_PID=""
GANESHA_PID=""
RPCBIND_PID=""
stop_servers() {
    [ -n "$NFSD_PID" ] && kill "$NFSD_PID" 2>/dev/null && wait "$NFSD_PID" 2>/dev/null
    NFSD_PID=""
    if [ -n "$GANESHA_PID" ]; then
        kill "$GANESHA_PID" 2>/dev/null
        for i in $(seq 1 100); do kill -0 "$GANESHA_PID" 2>/dev/null || break; sleep 0.1; done
    fi
    GANESHA_PID=""
}
cleanup() {
    stop_servers
    [ -n "$RPCBIND_PID" ] && kill "$RPCBIND_PID" 2>/dev/null
    mountpoint -q "$T/tmpfs" 2>/dev/null && umount "$T/tmpfs"
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cc -O2 -o "$T/nfs-smallfiles" bench/nfs-smallfiles.c -lnfs || die "cannot build nfs-smallfiles"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

if ! rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then
    rpcbind -w -f &
    RPCBIND_PID=$!
    sleep 0.5
fi

# start_servers DIR: strata-nfsd exporting DIR/strata/export, ganesha
# DIR/ganesha/export; sets the URLs.
start_servers() {
    D=$1
    mkdir -p "$D/strata/export" "$D/strata/state" "$D/ganesha/export"
    "$NFSD" --listen 127.0.0.1:0 --state-dir "$D/strata/state" "$D/strata/export" \
        > "$D/strata/out" 2> "$D/strata/err" &
    NFSD_PID=$!
    for i in $(seq 1 100); do grep -q '^listening' "$D/strata/out" && break; sleep 0.05; done
    SPORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$D/strata/out")
    [ -n "$SPORT" ] || die "strata-nfsd did not start: $(cat "$D/strata/err")"

    GPORT=$(free_port)
    GMNT=$(free_port)
    cat > "$D/ganesha/ganesha.conf" <<EOF2
NFS_CORE_PARAM {
    NFS_Port = $GPORT;
    MNT_Port = $GMNT;
    Protocols = 3;
    Bind_addr = 127.0.0.1;
    Enable_NLM = false;
    Enable_RQUOTA = false;
}
NFSV4 { Graceless = true; }
EXPORT {
    Export_Id = 77;
    Path = $D/ganesha/export;
    Pseudo = $D/ganesha/export;
    Access_Type = RW;
    Squash = No_Root_Squash;
    Protocols = 3;
    Transports = TCP;
    SecType = sys;
    FSAL { Name = VFS; }
}
EOF2
    ganesha.nfsd -F -f "$D/ganesha/ganesha.conf" -L "$D/ganesha/log" -p "$D/ganesha/pid" \
        -N NIV_WARN &
    GANESHA_PID=$!
    ok=false
    for i in $(seq 1 100); do
        if nfs-ls "nfs://127.0.0.1$D/ganesha/export?version=3&nfsport=$GPORT&mountport=$GMNT" \
            >/dev/null 2>&1; then
            ok=true
            break
        fi
        sleep 0.1
    done
    $ok || die "nfs-ganesha did not start: $(tail -5 "$D/ganesha/log")"

    SURL_DIR="nfs://127.0.0.1/?version=3&nfsport=$SPORT&mountport=$SPORT"
    SURL_FILE="nfs://127.0.0.1//big-%d.bin?version=3&nfsport=$SPORT&mountport=$SPORT"
    GURL_DIR="nfs://127.0.0.1$D/ganesha/export?version=3&nfsport=$GPORT&mountport=$GMNT"
    GURL_FILE="nfs://127.0.0.1$D/ganesha/export/big-%d.bin?version=3&nfsport=$GPORT&mountport=$GMNT"
}

head -c $((MIB * 1024 * 1024)) /dev/urandom > "$T/src.bin"

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# time_cmd CMD...: prints the nanoseconds CMD took (fails the bench if CMD fails).
# Dirty data left by the previous step is written out first, so it does not
# land on whichever server runs next.
time_cmd() {
    sync
    s=$(now)
    "$@" >/dev/null 2>"$T/cmd.err" || die "'$*' failed: $(cat "$T/cmd.err")"
    e=$(now)
    echo $((e - s))
}

# A new name each run: servers may cache directories, so nothing is
# removed behind their back. The two servers take turns, run by run, and
# which goes first alternates, so neither gets a warmer or emptier disk.
write_once() { # URL_FILE_PATTERN RUN
    time_cmd nfs-cp "$T/src.bin" "$(printf "$1" "$2")"
}
read_once() { # URL_FILE_PATTERN RUN
    rm -f "$T/back.bin"
    time_cmd nfs-cp "$(printf "$1" "$2")" "$T/back.bin"
    cmp -s "$T/src.bin" "$T/back.bin" || die "data read from '$1' differs"
}
small_once() { # URL_DIR RUN
    sync
    secs=$("$T/nfs-smallfiles" "$1" "$NFILES" "small-$2") || die "nfs-smallfiles failed on '$1'"
    echo "$secs" | awk '{ printf "%.0f\n", $1 * 1e9 }'
}

# Odd runs start with strata-nfsd, even runs with ganesha.
pair() { # FUNCTION STRATA_URL GANESHA_URL RESULT_PREFIX RUN
    if [ $(($5 % 2)) -eq 1 ]; then
        "$1" "$2" "$5" >> "$4.s"
        "$1" "$3" "$5" >> "$4.g"
    else
        "$1" "$3" "$5" >> "$4.g"
        "$1" "$2" "$5" >> "$4.s"
    fi
}

# run_fs NAME DIR: the three benchmarks on exports below DIR; figures in
# $T/res-NAME-{w,r,s}.{s,g}.
run_fs() {
    name=$1
    R="$T/res-$name"
    start_servers "$2"
    echo "# $name: exports on $(findmnt -n -o FSTYPE -T "$2"), load $(cut -d' ' -f1-3 /proc/loadavg)"
    for i in $(seq 1 "$RUNS"); do pair write_once "$SURL_FILE" "$GURL_FILE" "$R-w" "$i"; done
    cmp -s "$T/src.bin" "$2/strata/export/big-1.bin" || die "strata-nfsd: written data differs"
    cmp -s "$T/src.bin" "$2/ganesha/export/big-1.bin" || die "ganesha: written data differs"
    for i in $(seq 1 "$RUNS"); do pair read_once "$SURL_FILE" "$GURL_FILE" "$R-r" "$i"; done
    for i in $(seq 1 "$RUNS"); do pair small_once "$SURL_DIR" "$GURL_DIR" "$R-s" "$i"; done
    for f in w.s w.g r.s r.g s.s s.g; do
        printf '# %s %s runs (ms):' "$name" "$f"
        awk '{ printf " %.1f", $1 / 1e6 } END { print "" }' "$R-$f"
    done
    stop_servers
    # What this variant wrote is not needed any more (tmpfs holds it in RAM).
    rm -rf "$2/strata" "$2/ganesha"
}

for fs in $FS; do
    case "$fs" in
    tmpfs)
        mkdir -p "$T/tmpfs"
        mount -t tmpfs -o size=$((MIB * (2 * RUNS + 4)))m,mode=0755 strata-bench "$T/tmpfs" ||
            die "cannot mount a tmpfs on '$T/tmpfs'"
        run_fs tmpfs "$T/tmpfs"
        umount "$T/tmpfs"
        ;;
    ext4)
        mkdir -p "$T/ext4"
        run_fs ext4 "$T/ext4"
        ;;
    esac
done
echo

printf '%-34s %-6s %14s %14s %8s\n' "benchmark" "fs" "strata-nfsd" "nfs-ganesha" "ratio"
for kind in w r s; do
    for fs in $FS; do
        R="$T/res-$fs-$kind"
        awk -v s="$(median < "$R.s")" -v g="$(median < "$R.g")" -v kind="$kind" -v fs="$fs" \
            -v mib="$MIB" -v n="$NFILES" 'BEGIN {
            if (kind == "w")
                printf "%-34s %-6s %10.1f MiB/s %10.1f MiB/s %7.2fx\n",
                    mib " MiB sequential write (nfs-cp)", fs, mib / (s / 1e9), mib / (g / 1e9), g / s
            else if (kind == "r")
                printf "%-34s %-6s %10.1f MiB/s %10.1f MiB/s %7.2fx\n",
                    mib " MiB sequential read (nfs-cp)", fs, mib / (s / 1e9), mib / (g / 1e9), g / s
            else
                printf "%-34s %-6s %12.0f/s %12.0f/s %7.2fx\n", "create+stat of " n " files", fs,
                    n / (s / 1e9), n / (g / 1e9), g / s
        }'
    done
done
