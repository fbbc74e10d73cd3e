# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=sh
# Sourced by bench/nfsd.sh and bench/nfs-lab.sh: strata-nfsd and
# nfs-ganesha (FSAL VFS) side by side on the host's loopback, NFSv3/TCP, in
# the temp dir T, and the table of medians and ratios both print. Ratios are
# ganesha time / strata time: above 1.0 means strata-nfsd is faster.
#
#   nfs_bench_init NAME      checks root and strata-nfsd ($NFSD), installs
#                            nfs-ganesha, nfs-ganesha-vfs and rpcbind through
#                            apt if missing, makes T, sets the cleanup trap
#   strata_start ARGS...     strata-nfsd on 127.0.0.1:0 with ARGS (an export
#                            dir or --exports FILE); sets SPORT
#   ganesha_start            ganesha exporting $NFS_DIR/ganesha/export
#                            (rpcbind started if none runs); sets GPORT, GMNT
#   nfs_servers_stop         stops both (rpcbind stays until the cleanup)
# NFS_DIR (default $T) holds each server's dirs (strata/, ganesha/).
#   nfs_bench_table TITLE WLABEL RLABEL MIB NFILES SW GW SR GR SS GS
#                            the medians (ns) as rates, with the ratios
# A caller's own cleanup goes in NFS_BENCH_CLEANUP (run first).

die() { echo "bench: $*" >&2; exit 1; }

NFSD_PID=""
GANESHA_PID=""
RPCBIND_PID=""
NFS_BENCH_CLEANUP=:

nfs_servers_stop() {
    [ -n "$NFSD_PID" ] && kill "$NFSD_PID" 2>/dev/null && wait "$NFSD_PID" 2>/dev/null
    NFSD_PID=""
    if [ -n "$GANESHA_PID" ]; then
        kill "$GANESHA_PID" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$GANESHA_PID" 2>/dev/null || break; sleep 0.1; done
    fi
    GANESHA_PID=""
}

nfs_bench_cleanup() {
    eval "$NFS_BENCH_CLEANUP"
    nfs_servers_stop
    [ -n "$RPCBIND_PID" ] && kill "$RPCBIND_PID" 2>/dev/null
    [ -n "${T:-}" ] && rm -rf "$T"
}

nfs_bench_init() { # NAME
    [ -x "$NFSD" ] || die "'$NFSD' is missing; run 'make build' first"
    [ "$(id -u)" -eq 0 ] || die "needs root (open_by_handle_at, ganesha)"
    missing=""
    for p in nfs-ganesha nfs-ganesha-vfs rpcbind; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "bench: installing$missing for the comparison (apt-get)"
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing \
            >/dev/null || die "cannot install$missing"
    fi
    T=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench-$1.XXXXXX") || die "cannot make a temp dir"
    chmod 0755 "$T"
    trap nfs_bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

strata_start() { # ARGS...
    d=${NFS_DIR:-$T}/strata
    mkdir -p "$d/export" "$d/state"
    chmod 0777 "$d/export"
    "$NFSD" --listen 127.0.0.1:0 --state-dir "$d/state" "$@" >"$d/out" 2>"$d/err" &
    NFSD_PID=$!
    for _ in $(seq 1 100); do grep -q '^listening' "$d/out" && break; sleep 0.05; done
    SPORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$d/out")
    [ -n "$SPORT" ] || die "strata-nfsd did not start: $(cat "$d/err")"
}

ganesha_start() {
    if ! rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then
        rpcbind -w -f &
        RPCBIND_PID=$!
        sleep 0.5
    fi
    g=${NFS_DIR:-$T}/ganesha
    GPORT=$(free_port)
    GMNT=$(free_port)
    mkdir -p "$g/export"
    chmod 0777 "$g/export"
    cat >"$g/ganesha.conf" <<EOC
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
    Path = $g/export;
    Pseudo = $g/export;
    Access_Type = RW;
    Squash = No_Root_Squash;
    Protocols = 3;
    Transports = TCP;
    SecType = sys;
    FSAL { Name = VFS; }
}
EOC
    ganesha.nfsd -F -f "$g/ganesha.conf" -L "$g/log" -p "$g/pid" \
        -N NIV_WARN &
    GANESHA_PID=$!
    for _ in $(seq 1 100); do
        nfs-ls "nfs://127.0.0.1$g/export?version=3&nfsport=$GPORT&mountport=$GMNT" \
            >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "nfs-ganesha did not start: $(tail -5 "$g/log")"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

nfs_bench_table() { # TITLE WLABEL RLABEL MIB NFILES SW GW SR GR SS GS
    awk -v t="$1" -v wl="$2" -v rl="$3" -v mib="$4" -v n="$5" -v sw="$6" -v gw="$7" \
        -v sr="$8" -v gr="$9" -v ss="${10}" -v gs="${11}" 'BEGIN {
        printf "%-40s %14s %14s %8s\n", t, "strata-nfsd", "nfs-ganesha", "ratio"
        printf "%-40s %10.1f MiB/s %10.1f MiB/s %7.2fx\n", wl,
            mib / (sw / 1e9), mib / (gw / 1e9), gw / sw
        printf "%-40s %10.1f MiB/s %10.1f MiB/s %7.2fx\n", rl,
            mib / (sr / 1e9), mib / (gr / 1e9), gr / sr
        printf "%-40s %12.0f/s %12.0f/s %7.2fx\n", "create+stat of " n " files",
            n / (ss / 1e9), n / (gs / 1e9), gs / ss
    }'
}
