#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# strata-nfsd against nfs-ganesha (FSAL VFS) from the kernel NFS client of
# one VM (strata vm, one boot for both servers), NFSv3/TCP, both servers on
# the host's loopback, reached as 10.0.2.2 through QEMU's user networking:
#   - dd of 64 MiB (bs=1M, conv=fsync) to a new file
#   - dd of it back to /dev/null after dropping the guest's page cache
#   - create + stat of 2,000 empty files (python3 in the guest)
# Each figure is the median of RUNS runs (default 5); the servers take
# turns run by run, which goes first alternating. Ratios are ganesha time /
# strata time: above 1.0 means strata-nfsd is faster.
# The VM image (VM_NAME, default nfstest, in VM_DIR, default
# build/nfstest/vm) is built on first use with nfs-common, tcpdump, python3
# and cloud-init. Installs nfs-ganesha, nfs-ganesha-vfs and rpcbind through
# apt if missing, and starts rpcbind if it is not running (ganesha
# registers with it).
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
RUNS=${RUNS:-5}
STRATA="$BUILD/src/cli/strata"
NFSD="$BUILD/src/nfsd/strata-nfsd"
VM_DIR=${VM_DIR:-build/nfstest/vm}
VM_NAME=${VM_NAME:-nfstest}
VM_PACKAGES=${VM_PACKAGES:-nfs-common,tcpdump,python3,cloud-init}
MIB=64
NFILES=2000

die() { echo "bench: $*" >&2; exit 1; }

[ -x "$NFSD" ] || die "'$NFSD' is missing; run 'make build' first"
[ "$(id -u)" -eq 0 ] || die "needs root (open_by_handle_at, ganesha, the VM)"
"$STRATA" vm --help >/dev/null 2>&1 || die "'$STRATA vm' is missing: the VM lab is needed"

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

mkdir -p "$VM_DIR" || die "cannot make '$VM_DIR'"
VM_DIR=$(cd "$VM_DIR" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench-nfslab.XXXXXX")
chmod 0755 "$T"
INSTANCE="bench-$$"
NFSD_PID=""
GANESHA_PID=""
RPCBIND_PID=""
VM_UP=false
cleanup() {
    if $VM_UP; then
        "$STRATA" vm stop "$VM_NAME" --vm-dir "$VM_DIR" --instance "$INSTANCE" --grace 10 >/dev/null 2>&1
        "$STRATA" vm destroy "$VM_NAME" --vm-dir "$VM_DIR" --instance "$INSTANCE" --yes >/dev/null 2>&1
    fi
    [ -n "$NFSD_PID" ] && kill "$NFSD_PID" 2>/dev/null && wait "$NFSD_PID" 2>/dev/null
    if [ -n "$GANESHA_PID" ]; then
        kill "$GANESHA_PID" 2>/dev/null
        for i in $(seq 1 100); do kill -0 "$GANESHA_PID" 2>/dev/null || break; sleep 0.1; done
    fi
    [ -n "$RPCBIND_PID" ] && kill "$RPCBIND_PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# strata-nfsd: QEMU's user networking connects from the host's loopback.
mkdir -p "$T/strata/export" "$T/strata/state"
chmod 0777 "$T/strata/export"
echo "$T/strata/export 127.0.0.1(rw,no_root_squash)" >"$T/strata/exports"
"$NFSD" --listen 127.0.0.1:0 --state-dir "$T/strata/state" --exports "$T/strata/exports" \
    >"$T/strata/out" 2>"$T/strata/err" &
NFSD_PID=$!
for i in $(seq 1 100); do grep -q '^listening' "$T/strata/out" && break; sleep 0.05; done
SPORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$T/strata/out")
[ -n "$SPORT" ] || die "strata-nfsd did not start: $(cat "$T/strata/err")"

# nfs-ganesha, configured as bench/nfsd.sh does.
if ! rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then
    rpcbind -w -f &
    RPCBIND_PID=$!
    sleep 0.5
fi
GPORT=$(free_port)
GMNT=$(free_port)
mkdir -p "$T/ganesha/export"
chmod 0777 "$T/ganesha/export"
cat >"$T/ganesha/ganesha.conf" <<EOF
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
    Path = $T/ganesha/export;
    Pseudo = $T/ganesha/export;
    Access_Type = RW;
    Squash = No_Root_Squash;
    Protocols = 3;
    Transports = TCP;
    SecType = sys;
    FSAL { Name = VFS; }
}
EOF
ganesha.nfsd -F -f "$T/ganesha/ganesha.conf" -L "$T/ganesha/log" -p "$T/ganesha/pid" \
    -N NIV_WARN &
GANESHA_PID=$!
ok=false
for i in $(seq 1 100); do
    if nfs-ls "nfs://127.0.0.1$T/ganesha/export?version=3&nfsport=$GPORT&mountport=$GMNT" \
        >/dev/null 2>&1; then
        ok=true
        break
    fi
    sleep 0.1
done
$ok || die "nfs-ganesha did not start: $(tail -5 "$T/ganesha/log")"

# One VM for both servers.
echo "bench: the VM image $VM_NAME ($VM_PACKAGES) in $VM_DIR"
"$STRATA" vm image build --vm-dir "$VM_DIR" --packages "$VM_PACKAGES" "$VM_NAME" ||
    die "cannot build the VM image"
VM_UP=true
"$STRATA" vm start --vm-dir "$VM_DIR" --instance "$INSTANCE" --mem 1024 "$VM_NAME" ||
    die "cannot start the VM"
"$STRATA" vm ssh-config --vm-dir "$VM_DIR" --instance "$INSTANCE" "$VM_NAME" >"$T/ssh_config" ||
    die "no ssh config for the VM"
HOST=$(awk '$1 == "Host" { print $2; exit }' "$T/ssh_config")

cat >"$T/guest.sh" <<'EOF'
# In the guest: $1 name, $2 export, $3 nfs port, $4 mount port, $5 run, $6 MiB, $7 files.
set -u
name=$1 export=$2 port=$3 mport=$4 run=$5 mib=$6 nfiles=$7
m=/mnt/bench-$name
mkdir -p "$m"
mount -t nfs -o "vers=3,proto=tcp,port=$port,mountport=$mport,nolock" "10.0.2.2:$export" "$m" ||
    exit 1
now() { date +%s%N; }
sync
s=$(now)
dd if=/dev/zero of="$m/big-$run" bs=1M count="$mib" conv=fsync status=none || exit 1
e=$(now)
echo "$name w $((e - s))"
sync
echo 3 >/proc/sys/vm/drop_caches
s=$(now)
dd if="$m/big-$run" of=/dev/null bs=1M status=none || exit 1
e=$(now)
echo "$name r $((e - s))"
python3 - "$m/small-$run" "$nfiles" "$name" <<'PY' || exit 1
import os, sys, time
d, n, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.mkdir(d)
t = time.monotonic_ns()
for i in range(n):
    p = os.path.join(d, "f%05d" % i)
    os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    os.stat(p)
print(name, "s", time.monotonic_ns() - t)
PY
umount "$m"
EOF
scp -q -F "$T/ssh_config" "$T/guest.sh" "$HOST:/root/nfs-bench.sh" || die "cannot copy the guest script"

one() { # NAME RUN
    if [ "$1" = strata ]; then
        args="strata $T/strata/export $SPORT $SPORT"
    else
        args="ganesha $T/ganesha/export $GPORT $GMNT"
    fi
    ssh -F "$T/ssh_config" "$HOST" "sh /root/nfs-bench.sh $args $2 $MIB $NFILES" >>"$T/results" ||
        die "the guest run $2 on $1 failed"
}
for i in $(seq 1 "$RUNS"); do
    if [ $((i % 2)) -eq 1 ]; then one strata "$i"; one ganesha "$i"; else one ganesha "$i"; one strata "$i"; fi
done
cmp -s "$T/strata/export/big-1" "$T/ganesha/export/big-1" || die "the written files differ"
[ "$(find "$T/strata/export/small-1" -type f | wc -l)" -eq "$NFILES" ] || die "strata-nfsd lost files"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
get() { awk -v n="$1" -v k="$2" '$1 == n && $2 == k { print $3 }' "$T/results" | median; }
for n in strata ganesha; do
    for k in w r s; do
        printf '# %s %s runs (ms):' "$n" "$k"
        awk -v n="$n" -v k="$k" '$1 == n && $2 == k { printf " %.1f", $3 / 1e6 } END { print "" }' "$T/results"
    done
done
echo
awk -v sw="$(get strata w)" -v gw="$(get ganesha w)" -v sr="$(get strata r)" -v gr="$(get ganesha r)" \
    -v ss="$(get strata s)" -v gs="$(get ganesha s)" -v mib="$MIB" -v n="$NFILES" 'BEGIN {
    printf "%-40s %14s %14s %8s\n", "benchmark (VM kernel client)", "strata-nfsd", "nfs-ganesha", "ratio"
    printf "%-40s %10.1f MiB/s %10.1f MiB/s %7.2fx\n", "dd " mib " MiB write, conv=fsync",
        mib / (sw / 1e9), mib / (gw / 1e9), gw / sw
    printf "%-40s %10.1f MiB/s %10.1f MiB/s %7.2fx\n", "dd " mib " MiB read after drop_caches",
        mib / (sr / 1e9), mib / (gr / 1e9), gr / sr
    printf "%-40s %12.0f/s %12.0f/s %7.2fx\n", "create+stat of " n " files",
        n / (ss / 1e9), n / (gs / 1e9), gs / ss
}'
