#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The NFS lab end to end, through make as a user runs it: strata-nfsd in a
# podman container, a strata vm client provisioned by cloud-init from the
# lab's NoCloud seed, the POSIX runner over the guest kernel's NFSv3
# client. Every case passes; the server down fails fast; a read-only
# export makes the write cases fail and make exit non-zero. Two guest
# boots (TCG here), of the vm suite's image cached in STRATA_VM_CACHE
# ($STRATA_BUILD_ROOT/vm-lab, built on first use with the lab's packages);
# the lab's vm dir is a temp dir whose images/ points at the cache.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"

vm_test_setup make make podman podman ssh openssh-client
"$STRATA" vm --help >/dev/null 2>&1 || t_skip_all "'strata vm' (the VM lab) is not in this build"
SRC=${STRATA_SOURCE_ROOT:?}
BUILD=${STRATA_BUILD_ROOT:?}

t_tmpdir
W="$T_TMP/lab"
VM_DIR="$T_TMP/vm"
# The cache's client key is the image's authorized key: made here when
# this test runs before the cache has one.
mkdir -p "$CACHE"
if [ ! -f "$CACHE/id_ed25519" ]; then
    ssh-keygen -q -t ed25519 -N '' -C strata-vm -f "$CACHE/id_ed25519" || t_skip_all "no ssh-keygen"
fi
vm_dir_over_cache "$CACHE" "$VM_DIR" || t_skip_all "cannot make a vm dir over '$CACHE'"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MK="make -s -C $SRC BUILD=$BUILD NFSTEST_DIR=$W VM_OUTPUT_DIR=$VM_DIR VM_IMAGE_NAME=$IMG.qcow2 NFS_PORT=$PORT"
pm() {
    CONTAINERS_CONF="$W/podman/containers.conf" podman --root "$W/podman/root" \
        --runroot "$W/podman/runroot" --runtime runc "$@"
}

# Kills what this run started and make stop-test-env did not stop (qemu
# processes whose command line names the temp dir), then removes it; on
# exit, on a signal, and by the reaper when this shell is killed (vm_guard).
vm_cleanup() {
    $MK stop-test-env >/dev/null 2>&1
    [ -d "$W/podman/root" ] && pm rmi -a -f >/dev/null 2>&1
    vm_kill_started "$T_TMP"
    t_cleanup
}
vm_guard "$T_TMP" vm_cleanup

# logged NAME CMD...: runs CMD, its output streamed as TAP comments and
# kept in $T_TMP/NAME; sets rc.
logged() {
    name=$1
    shift
    { "$@"; echo $? >"$T_TMP/$name.rc"; } 2>&1 | tee "$T_TMP/$name" | sed -u 's/^/# /'
    rc=$(cat "$T_TMP/$name.rc")
}

ALL=$(python3 "$SRC/tests/nfslab/posix-runner.py" --list | awk '{print $1}' | paste -sd, -)
N=$(echo "$ALL" | tr ',' '\n' | wc -l)
begin=$(date +%s)

t_begin "make nfstest TESTCASE=<all $N cases>: every case passes against strata-nfsd"
logged all $MK nfstest TESTCASE="$ALL"
if [ "$rc" -eq 0 ] && grep -q "^$N passed, 0 failed$" "$T_TMP/all" &&
    grep -q "^NFS test PASSED$" "$T_TMP/all"; then
    t_ok
else
    t_fail "rc $rc: $(grep -v '^PASS' "$T_TMP/all" | tail -40)"
fi

t_begin "cloud-init consumed the seed drive once: the guest printed NFSTEST_VM_READY on its console"
console="$VM_DIR/instances/$IMG/nfstest/console.log"
# Each of the guest's services ran once (none exits to be restarted).
finals=$(tr -d '\r' <"$console" | grep -c "running 'modules:final'")
readies=$(tr -d '\r' <"$console" | grep -cx "strata-vm: ready")
if grep -q "client VM is ready (NFSTEST_VM_READY)" "$T_TMP/all" &&
    tr -d '\r' <"$console" | grep -qx NFSTEST_VM_READY &&
    tr -d '\r' <"$console" | grep -qx "strata-vm: cloud-init: done" &&
    [ "$finals" -eq 1 ] && [ "$readies" -eq 1 ]; then
    t_ok
else
    t_fail "final stages $finals, ready markers $readies: $(tail -20 "$console" 2>/dev/null)"
fi

t_begin "the server down: strata lab nfs test fails fast with a message"
pm stop -t 1 strata-nfslab >/dev/null 2>&1
start=$(date +%s)
out=$("$STRATA" lab nfs test --work-dir "$W" --testcase open 2>&1)
rc=$?
took=$(($(date +%s) - start))
if [ $rc -eq 1 ] && [ $took -le 30 ] && echo "$out" | grep -q "is down" &&
    echo "$out" | grep -q "^NFS test FAILED$"; then t_ok; else t_fail "rc $rc after ${took}s: $out"; fi

t_begin "make nfstest EXPORT_MODE=ro: the write cases fail, make exits non-zero"
logged ro $MK nfstest EXPORT_MODE=ro TESTCASE=write,truncate
if [ "$rc" -ne 0 ] && grep -q "^0 passed, 2 failed$" "$T_TMP/ro" &&
    grep -q "^NFS test FAILED$" "$T_TMP/ro"; then
    t_ok
else
    t_fail "rc $rc: $(tail -20 "$T_TMP/ro")"
fi

t_begin "make stop-test-env: no container, no qemu, no instance left"
$MK stop-test-env >/dev/null 2>&1
ps=$(pm ps -a -q 2>&1)
inst=$(ls -A "$VM_DIR/instances/$IMG" 2>/dev/null)
qemu=$(pgrep -f "qemu-system.*$T_TMP/" || true)
if [ -z "$ps" ] && [ -z "$inst" ] && [ -z "$qemu" ] && [ ! -e "$W/env" ]; then
    t_ok
else
    t_fail "containers '$ps', instances '$inst', qemu '$qemu'"
fi
echo "# nfslab-vm: $(($(date +%s) - begin)) s for two guest boots and the runs"

t_done
