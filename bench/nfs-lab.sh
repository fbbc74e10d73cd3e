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
# The VM is an instance of the vm suite's image (VM_NAME, default
# strata-test, cached in VM_CACHE, default BUILD/vm-lab; built on first use
# with the NFS lab's packages, tests/nfslab/vm-packages), provisioned as
# the NFS lab's client is: cloud-init from the lab's NoCloud seed loads the
# NFS client's modules and prints NFSTEST_VM_READY on the console. The
# servers' setup is bench/lib/nfs-servers.sh, shared with bench/nfsd.sh.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
RUNS=${RUNS:-5}
STRATA="$BUILD/src/cli/strata"
NFSD="$BUILD/src/nfsd/strata-nfsd"
VM_CACHE=${VM_CACHE:-$BUILD/vm-lab}
VM_NAME=${VM_NAME:-strata-test}
LABSH=tests/nfslab/nfs-lab.sh
VM_PACKAGES=$(grep -v '^#' tests/nfslab/vm-packages | tr -d ' \n')
MIB=64
NFILES=2000

# shellcheck source=bench/lib/nfs-servers.sh
. bench/lib/nfs-servers.sh
"$STRATA" vm --help >/dev/null 2>&1 || die "'$STRATA vm' is missing: the VM lab is needed"
nfs_bench_init nfslab

# The vm dir: the cache's images, key and KVM probe; instances of its own.
# shellcheck source=tests/vm/lib.sh
. tests/vm/lib.sh
VM_CACHE=$(mkdir -p "$VM_CACHE" && cd "$VM_CACHE" && pwd) || die "cannot make '$VM_CACHE'"
VM_DIR="$T/vm"
vm_dir_over_cache "$VM_CACHE" "$VM_DIR" || die "cannot make a vm dir over '$VM_CACHE'"
INSTANCE=bench
VM_UP=false
bench_vm_stop() {
    $VM_UP || return 0
    "$STRATA" vm stop "$VM_NAME" --vm-dir "$VM_DIR" --instance "$INSTANCE" --grace 10 >/dev/null 2>&1
    "$STRATA" vm destroy "$VM_NAME" --vm-dir "$VM_DIR" --instance "$INSTANCE" --yes >/dev/null 2>&1
}
NFS_BENCH_CLEANUP=bench_vm_stop

# strata-nfsd: QEMU's user networking connects from the host's loopback.
# insecure: QEMU makes the guest's connection again from an ordinary port
# (ganesha's PrivilegedPort is off by default: the same for both).
echo "$T/strata/export 127.0.0.1(rw,no_root_squash,insecure)" >"$T/exports"
strata_start --exports "$T/exports"
ganesha_start

# One VM for both servers.
echo "bench: the VM image $VM_NAME ($VM_PACKAGES) in $VM_CACHE"
"$STRATA" vm image build --vm-dir "$VM_DIR" --packages "$VM_PACKAGES" "$VM_NAME" ||
    die "cannot build the VM image"
sh "$LABSH" seed-iso --vm-dir "$VM_DIR" --cidata cidata.iso >/dev/null || die "cannot make the seed"
VM_UP=true
"$STRATA" vm start --vm-dir "$VM_DIR" --instance "$INSTANCE" --mem 1024 \
    --seed "$VM_DIR/cidata.iso" "$VM_NAME" || die "cannot start the VM"
inst="$VM_DIR/instances/$VM_NAME/$INSTANCE"
sh "$LABSH" wait-marker "$inst/console.log" NFSTEST_VM_READY 300 "$(cat "$inst/qemu.pid")" ||
    die "the VM was not provisioned"
"$STRATA" vm ssh-config --vm-dir "$VM_DIR" --instance "$INSTANCE" "$VM_NAME" >"$T/ssh_config_path" ||
    die "no ssh config for the VM"
SSH_CONFIG=$(cat "$T/ssh_config_path")
HOST=$(awk '$1 == "Host" { print $2; exit }' "$SSH_CONFIG")

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
scp -q -F "$SSH_CONFIG" "$T/guest.sh" "$HOST:/root/nfs-bench.sh" || die "cannot copy the guest script"

one() { # NAME RUN
    if [ "$1" = strata ]; then
        args="strata $T/strata/export $SPORT $SPORT"
    else
        args="ganesha $T/ganesha/export $GPORT $GMNT"
    fi
    ssh -F "$SSH_CONFIG" "$HOST" "sh /root/nfs-bench.sh $args $2 $MIB $NFILES" >>"$T/results" ||
        die "the guest run $2 on $1 failed"
}
for i in $(seq 1 "$RUNS"); do
    if [ $((i % 2)) -eq 1 ]; then one strata "$i"; one ganesha "$i"; else one ganesha "$i"; one strata "$i"; fi
done
cmp -s "$T/strata/export/big-1" "$T/ganesha/export/big-1" || die "the written files differ"
[ "$(find "$T/strata/export/small-1" -type f | wc -l)" -eq "$NFILES" ] || die "strata-nfsd lost files"

get() { awk -v n="$1" -v k="$2" '$1 == n && $2 == k { print $3 }' "$T/results" | median; }
for n in strata ganesha; do
    for k in w r s; do
        printf '# %s %s runs (ms):' "$n" "$k"
        awk -v n="$n" -v k="$k" '$1 == n && $2 == k { printf " %.1f", $3 / 1e6 } END { print "" }' "$T/results"
    done
done
echo
nfs_bench_table "benchmark (VM kernel client)" "dd $MIB MiB write, conv=fsync" \
    "dd $MIB MiB read after drop_caches" "$MIB" "$NFILES" "$(get strata w)" "$(get ganesha w)" \
    "$(get strata r)" "$(get ganesha r)" "$(get strata s)" "$(get ganesha s)"
