#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# strata-nfsd against nfs-ganesha (FSAL VFS), same machine, same client
# (libnfs: nfs-cp and a small create+stat program), same run, NFSv3/TCP on
# loopback ports:
#   - 64 MiB sequential write (nfs-cp local -> server)
#   - 64 MiB sequential read  (nfs-cp server -> local)
#   - create + stat of 2,000 empty files
# Each figure is the median of RUNS runs (default 7). Ratios are
# ganesha time / strata time: above 1.0 means strata-nfsd is faster.
# Installs nfs-ganesha, nfs-ganesha-vfs and rpcbind through apt if missing
# (ganesha registers with rpcbind), and starts rpcbind if it is not running
# (bench/lib/nfs-servers.sh, shared with bench/nfs-lab.sh).
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
RUNS=${RUNS:-7}
NFSD="$BUILD/src/nfsd/strata-nfsd"
MIB=64
NFILES=2000

# shellcheck source=bench/lib/nfs-servers.sh
. bench/lib/nfs-servers.sh
command -v nfs-cp >/dev/null || die "nfs-cp is missing (Debian package libnfs-utils)"
nfs_bench_init nfsd

cc -O2 -o "$T/nfs-smallfiles" bench/nfs-smallfiles.c -lnfs || die "cannot build nfs-smallfiles"

# strata-nfsd exporting its dir (local peers held to their socket's owner),
# nfs-ganesha as configured in bench/lib/nfs-servers.sh.
strata_start "$T/strata/export"
ganesha_start

SURL_DIR="nfs://127.0.0.1/?version=3&nfsport=$SPORT&mountport=$SPORT"
SURL_FILE="nfs://127.0.0.1//big-%d.bin?version=3&nfsport=$SPORT&mountport=$SPORT"
GURL_DIR="nfs://127.0.0.1$T/ganesha/export?version=3&nfsport=$GPORT&mountport=$GMNT"
GURL_FILE="nfs://127.0.0.1$T/ganesha/export/big-%d.bin?version=3&nfsport=$GPORT&mountport=$GMNT"

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

# Odd runs start with strata-nfsd, even runs with ganesha.
pair() { # FUNCTION STRATA_URL GANESHA_URL SUFFIX RUN
    if [ $(($5 % 2)) -eq 1 ]; then
        "$1" "$2" "$5" >> "$T/s$4"
        "$1" "$3" "$5" >> "$T/g$4"
    else
        "$1" "$3" "$5" >> "$T/g$4"
        "$1" "$2" "$5" >> "$T/s$4"
    fi
}
for i in $(seq 1 "$RUNS"); do pair write_once "$SURL_FILE" "$GURL_FILE" w "$i"; done
cmp -s "$T/src.bin" "$T/strata/export/big-1.bin" || die "strata-nfsd: written data differs"
cmp -s "$T/src.bin" "$T/ganesha/export/big-1.bin" || die "ganesha: written data differs"
for i in $(seq 1 "$RUNS"); do pair read_once "$SURL_FILE" "$GURL_FILE" r "$i"; done
for i in $(seq 1 "$RUNS"); do pair small_once "$SURL_DIR" "$GURL_DIR" s "$i"; done
for f in sw gw sr gr ss gs; do
    printf '# %s runs (ms):' "$f"
    awk '{ printf " %.1f", $1 / 1e6 } END { print "" }' "$T/$f"
done
echo
sw=$(median < "$T/sw"); gw=$(median < "$T/gw")
sr=$(median < "$T/sr"); gr=$(median < "$T/gr")
ss=$(median < "$T/ss"); gs=$(median < "$T/gs")

nfs_bench_table benchmark "$MIB MiB sequential write (nfs-cp)" \
    "$MIB MiB sequential read (nfs-cp)" "$MIB" "$NFILES" "$sw" "$gw" "$sr" "$gr" "$ss" "$gs"
