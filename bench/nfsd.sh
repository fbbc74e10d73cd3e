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
# above 1.0 means strata-nfsd is faster. The server CPU each step cost (the
# run time of the server's threads, from /proc/PID/task/*/schedstat) is
# printed beside, as a median too: steadier than wall time on a busy
# machine, where the client and other load set the pace. NFSD_ARGS adds
# options to strata-nfsd's command line (NFSD_ARGS="--poll-us 0").
# Installs nfs-ganesha, nfs-ganesha-vfs and rpcbind through apt if missing
# (ganesha registers with rpcbind), and starts rpcbind if it is not running
# (bench/lib/nfs-servers.sh, shared with bench/nfs-lab.sh).
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
RUNS=${RUNS:-7}
FS=${FS:-tmpfs ext4}
NFSD="$BUILD/src/nfsd/strata-nfsd"
MIB=64
NFILES=2000

# shellcheck source=bench/lib/nfs-servers.sh
. bench/lib/nfs-servers.sh
command -v nfs-cp >/dev/null || die "nfs-cp is missing (Debian package libnfs-utils)"
for fs in $FS; do
    case "$fs" in
    tmpfs | ext4) ;;
    *) die "unknown file system '$fs' in FS (tmpfs, ext4)" ;;
    esac
done
nfs_bench_init nfsd
# the tmpfs variant's mount goes too (lazily: a server may still hold it)
NFS_BENCH_CLEANUP='mountpoint -q "$T/tmpfs" 2>/dev/null && umount -l "$T/tmpfs"'

cc -O2 -o "$T/nfs-smallfiles" bench/nfs-smallfiles.c -lnfs || die "cannot build nfs-smallfiles"

# start_servers DIR: strata-nfsd exporting DIR/strata/export (local peers
# held to their socket's owner), ganesha DIR/ganesha/export, both as
# bench/lib/nfs-servers.sh starts them; sets the URLs.
start_servers() {
    D=$1
    NFS_DIR=$D
    strata_start ${NFSD_ARGS:-} "$D/strata/export"
    ganesha_start
    SURL_DIR="nfs://127.0.0.1/?version=3&nfsport=$SPORT&mountport=$SPORT"
    SURL_FILE="nfs://127.0.0.1//big-%d.bin?version=3&nfsport=$SPORT&mountport=$SPORT"
    GURL_DIR="nfs://127.0.0.1$D/ganesha/export?version=3&nfsport=$GPORT&mountport=$GMNT"
    GURL_FILE="nfs://127.0.0.1$D/ganesha/export/big-%d.bin?version=3&nfsport=$GPORT&mountport=$GMNT"
}
stop_servers() { nfs_servers_stop; }

head -c $((MIB * 1024 * 1024)) /dev/urandom > "$T/src.bin"

now() { date +%s%N; }

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

# server_cpu PID: ns the threads of PID have run.
server_cpu() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }

# one_side FUNCTION URL RUN RESULT_FILE PID: the step's time into
# RESULT_FILE, the server's CPU for it into RESULT_FILE.cpu.
one_side() {
    c0=$(server_cpu "$5")
    "$1" "$2" "$3" >> "$4"
    echo $(($(server_cpu "$5") - c0)) >> "$4.cpu"
}

# Odd runs start with strata-nfsd, even runs with ganesha.
pair() { # FUNCTION STRATA_URL GANESHA_URL RESULT_PREFIX RUN
    if [ $(($5 % 2)) -eq 1 ]; then
        one_side "$1" "$2" "$5" "$4.s" "$NFSD_PID"
        one_side "$1" "$3" "$5" "$4.g" "$GANESHA_PID"
    else
        one_side "$1" "$3" "$5" "$4.g" "$GANESHA_PID"
        one_side "$1" "$2" "$5" "$4.s" "$NFSD_PID"
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
echo
printf '%-34s %-6s %14s %14s %8s\n' "server CPU per step (median)" "fs" "strata-nfsd" "nfs-ganesha" "ratio"
for kind in w r s; do
    for fs in $FS; do
        R="$T/res-$fs-$kind"
        awk -v s="$(median < "$R.s.cpu")" -v g="$(median < "$R.g.cpu")" -v kind="$kind" -v fs="$fs" \
            -v mib="$MIB" -v n="$NFILES" 'BEGIN {
            label = kind == "w" ? mib " MiB write" : kind == "r" ? mib " MiB read" : "create+stat of " n " files"
            # the ratio apart: in a printf argument list ">" would redirect
            ratio = 0
            if (s > 0)
                ratio = g / s
            printf "%-34s %-6s %11.1f ms %11.1f ms %7.2fx\n", label, fs, s / 1e6, g / 1e6, ratio
        }'
    done
done
