#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The NFS lab end to end, through make as a user runs it: strata-nfsd in a
# podman container, a strata vm client, the POSIX runner over the kernel's
# NFSv3 client. Every case passes; a read-only export makes the write cases
# fail and make exit non-zero; a server that is down fails fast. Two VM
# boots (TCG); the image is cached in NFSLAB_VM_DIR (default
# build/nfstest/vm of the build dir) and built on first use.
. "$(dirname "$0")/lib.sh"

need_root
need_program make make
need_program podman podman
need_program qemu-system-x86_64 qemu-system-x86
"$STRATA" vm --help >/dev/null 2>&1 || t_skip_all "'strata vm' (the VM lab) is not in this build"
[ "${NFSLAB_VM_TEST:-0}" = 1 ] ||
    t_skip_all "opt-in (NFSLAB_VM_TEST=1): an image build and two TCG boots, longer than make check's share"
SRC=${STRATA_SOURCE_ROOT:?}
BUILD=${STRATA_BUILD_ROOT:?}
VM_DIR=${NFSLAB_VM_DIR:-$BUILD/nfstest/vm}

t_tmpdir
W="$T_TMP/lab"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MK="make -s -C $SRC BUILD=$BUILD NFSTEST_DIR=$W VM_OUTPUT_DIR=$VM_DIR NFS_PORT=$PORT"

vm_cleanup() {
    $MK stop-test-env >/dev/null 2>&1
    if [ -d "$W/podman/root" ]; then
        CONTAINERS_CONF="$W/podman/containers.conf" podman --root "$W/podman/root" \
            --runroot "$W/podman/runroot" --runtime runc rmi -a -f >/dev/null 2>&1
    fi
    t_cleanup
}
trap 'vm_cleanup' EXIT
trap 'vm_cleanup; exit 130' INT TERM

ALL=$(python3 "$SRC/tests/nfslab/posix-runner.py" --list | awk '{print $1}' | paste -sd, -)
N=$(echo "$ALL" | tr ',' '\n' | wc -l)

t_begin "make nfstest TESTCASE=<all $N cases>: every case passes against strata-nfsd"
out=$($MK nfstest TESTCASE="$ALL" 2>&1)
rc=$?
if [ $rc -eq 0 ] && echo "$out" | grep -q "^$N passed, 0 failed$" && echo "$out" | grep -q "^NFS test PASSED$"; then
    t_ok
else
    t_fail "rc $rc: $(echo "$out" | grep -v '^PASS' | tail -40)"
fi

t_begin "the client VM printed its ready marker on the serial console"
if echo "$out" | grep -q "client VM is ready (NFSTEST_VM_READY)"; then t_ok; else t_fail "$(echo "$out" | head -20)"; fi

t_begin "make nfstest EXPORT_MODE=ro: the write cases fail, make exits non-zero"
out=$($MK nfstest EXPORT_MODE=ro TESTCASE=write,truncate 2>&1)
rc=$?
if [ $rc -ne 0 ] && echo "$out" | grep -q "^0 passed, 2 failed$" && echo "$out" | grep -q "^NFS test FAILED$"; then
    t_ok
else
    t_fail "rc $rc: $(echo "$out" | tail -20)"
fi

t_begin "the server down: strata lab nfs test fails fast with a message"
CONTAINERS_CONF="$W/podman/containers.conf" podman --root "$W/podman/root" \
    --runroot "$W/podman/runroot" --runtime runc stop -t 1 strata-nfslab >/dev/null 2>&1
start=$(date +%s)
out=$("$STRATA" lab nfs test --work-dir "$W" --testcase open 2>&1)
rc=$?
took=$(($(date +%s) - start))
if [ $rc -eq 1 ] && [ $took -le 30 ] && echo "$out" | grep -q "is down" &&
    echo "$out" | grep -q "^NFS test FAILED$"; then t_ok; else t_fail "rc $rc after ${took}s: $out"; fi

t_begin "make stop-test-env: no container, no qemu, no instance left"
$MK stop-test-env >/dev/null 2>&1
ps=$(CONTAINERS_CONF="$W/podman/containers.conf" podman --root "$W/podman/root" \
    --runroot "$W/podman/runroot" --runtime runc ps -a -q 2>&1)
inst=$(ls -A "$VM_DIR/instances/vm" 2>/dev/null)
qemu=$(pgrep -f "qemu-system.*$VM_DIR/instances/" || true)
if [ -z "$ps" ] && [ -z "$inst" ] && [ -z "$qemu" ] && [ ! -e "$W/env" ]; then
    t_ok
else
    t_fail "containers '$ps', instances '$inst', qemu '$qemu'"
fi

t_done
