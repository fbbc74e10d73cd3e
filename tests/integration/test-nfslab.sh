#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The NFS lab's host side: the POSIX runner's cases on local directories
# (ext4 under TMPDIR, a tmpfs) and its failure paths; `strata lab nfs`
# starting strata-nfsd as a podman container and in a strata lab machine
# (reached with libnfs's nfs-ls/nfs-cp), rw and ro, stopping without
# leftovers, failing fast when the server is down; the NoCloud seed ISO and
# the console marker wait.
. "$(dirname "$0")/lib.sh"

need_root
need_program python3 python3
SRC=${STRATA_SOURCE_ROOT:?}
RUNNER="$SRC/tests/nfslab/posix-runner.py"
LABSH="$SRC/tests/nfslab/nfs-lab.sh"
NFSD=${STRATA_NFSD:?}

t_tmpdir
chmod 0755 "$T_TMP"
W="$T_TMP/lab"

lab_cleanup() {
    if [ -d "$W" ]; then
        "$STRATA" lab nfs stop-env --work-dir "$W" >/dev/null 2>&1
        if [ -d "$W/podman/root" ]; then
            CONTAINERS_CONF="$W/podman/containers.conf" podman --root "$W/podman/root" \
                --runroot "$W/podman/runroot" --runtime runc rmi -a -f >/dev/null 2>&1
        fi
    fi
    t_cleanup
}
trap 'lab_cleanup' EXIT
trap 'lab_cleanup; exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

NCASES=$(python3 "$RUNNER" --list | wc -l)

t_begin "runner --list names the cases (open ... statvfs)"
out=$(python3 "$RUNNER" --list)
rc=$?
missing=""
for c in open read write pread lseek truncate fsync stat chmod chown utime access mkdir rmdir \
    unlink rename link symlink readdir mknod statvfs; do
    echo "$out" | grep -q "^$c " || missing="$missing $c"
done
if [ $rc -eq 0 ] && [ -z "$missing" ]; then t_ok; else t_fail "rc $rc, missing:$missing"; fi

t_begin "every case passes on a dir of TMPDIR ($(stat -f -c %T "$T_TMP"))"
mkdir "$T_TMP/local"
out=$(python3 "$RUNNER" --dir "$T_TMP/local" 2>&1)
rc=$?
if [ $rc -eq 0 ] && echo "$out" | grep -q "^$NCASES passed, 0 failed$"; then t_ok; else t_fail "rc $rc: $out"; fi

t_begin "every case passes on a tmpfs"
mkdir "$T_TMP/tmpfs"
if mount -t tmpfs -o size=64m tmpfs "$T_TMP/tmpfs"; then
    out=$(python3 "$RUNNER" --dir "$T_TMP/tmpfs" all 2>&1)
    rc=$?
    umount "$T_TMP/tmpfs"
    if [ $rc -eq 0 ] && echo "$out" | grep -q "^$NCASES passed, 0 failed$"; then t_ok; else t_fail "rc $rc: $out"; fi
else
    t_fail "cannot mount a tmpfs"
fi

t_begin "the runner leaves nothing in the directory it ran in"
left=$(ls -A "$T_TMP/local")
[ -z "$left" ] && t_ok || t_fail "left: $left"

t_begin "an assertion failing mid-case fails that case only, exit 1 (tmpfs out of inodes)"
mkdir "$T_TMP/small"
mount -t tmpfs -o size=16m,nr_inodes=300 tmpfs "$T_TMP/small"
out=$(python3 "$RUNNER" --dir "$T_TMP/small" open,readdir 2>&1)
rc=$?
umount "$T_TMP/small"
if [ $rc -eq 1 ] && echo "$out" | grep -q "^PASS open" && echo "$out" | grep -q "^FAIL readdir" &&
    echo "$out" | grep -q "^1 passed, 1 failed$"; then t_ok; else t_fail "rc $rc: $out"; fi

t_begin "the write cases fail on a read-only directory, exit 1"
mkdir "$T_TMP/ro"
mount --bind "$T_TMP/local" "$T_TMP/ro" && mount -o remount,bind,ro "$T_TMP/ro"
out=$(python3 "$RUNNER" --dir "$T_TMP/ro" write,open 2>&1)
rc=$?
umount "$T_TMP/ro"
if [ $rc -eq 1 ] && echo "$out" | grep -q "^0 passed, 2 failed$"; then t_ok; else t_fail "rc $rc: $out"; fi

t_begin "usage errors exit 2: unknown case, no target, both targets, bad port"
r1=0 r2=0 r3=0 r4=0
python3 "$RUNNER" --dir "$T_TMP/local" open,nosuch >/dev/null 2>&1 || r1=$?
python3 "$RUNNER" open >/dev/null 2>&1 || r2=$?
python3 "$RUNNER" --dir "$T_TMP/local" --server 127.0.0.1 >/dev/null 2>&1 || r3=$?
python3 "$RUNNER" --server 127.0.0.1 --port 0 --export / --mountpoint "$T_TMP/m" >/dev/null 2>&1 || r4=$?
python3 "$RUNNER" --help >/dev/null 2>&1
r5=$?
if [ "$r1$r2$r3$r4$r5" = 22220 ]; then t_ok; else t_fail "exit codes $r1 $r2 $r3 $r4 (want 2) --help $r5"; fi

t_begin "the runner fails fast, naming the address, when no server listens"
port=$(free_port)
start=$(date +%s)
out=$(python3 "$RUNNER" --server 127.0.0.1 --port "$port" --export /export --mountpoint "$T_TMP/m" \
    --wait 1 open,read 2>&1)
rc=$?
took=$(($(date +%s) - start))
if [ $rc -eq 1 ] && [ $took -le 5 ] && echo "$out" | grep -q "127.0.0.1:$port is not reachable" &&
    echo "$out" | grep -q "^0 passed, 2 failed$"; then t_ok; else t_fail "rc $rc after ${took}s: $out"; fi

t_begin "the seed ISO: volume cidata with user-data (ssh key, marker) and meta-data"
out=$(sh "$LABSH" seed-iso --vm-dir "$T_TMP/seed" --cidata cidata.iso 2>&1)
rc=$?
iso="$T_TMP/seed/cidata.iso"
if [ $rc -ne 0 ]; then
    t_fail "rc $rc: $out"
elif command -v isoinfo >/dev/null; then
    label=$(isoinfo -d -i "$iso" | sed -n 's/^Volume id: //p')
    files=$(isoinfo -R -f -i "$iso" | sort | tr '\n' ' ')
    ud=$(isoinfo -R -x /user-data -i "$iso")
    key=$(cut -d' ' -f2 "$T_TMP/seed/id_ed25519.pub")
    if [ "$label" = cidata ] && [ "$files" = "/meta-data /user-data " ] &&
        printf "%s\n" "$ud" | head -1 | grep -q "^#cloud-config$" && printf "%s\n" "$ud" | grep -q "$key" &&
        printf "%s\n" "$ud" | grep -q "NFSTEST_%s.*VM_READY" && ! printf "%s\n" "$ud" | grep -q NFSTEST_VM_READY; then
        t_ok
    else
        t_fail "label '$label', files '$files', user-data: $ud"
    fi
else
    t_fail "isoinfo is missing (Debian package genisoimage)"
fi

t_begin "wait-marker: sees the marker written later, times out showing the last lines, stops when the VM dies"
con="$T_TMP/console.log"
: >"$con"
(sleep 1; echo "booting"; echo "NFSTEST_VM_READY") >>"$con" &
sh "$LABSH" wait-marker "$con" NFSTEST_VM_READY 10 >/dev/null 2>&1
r1=$?
printf 'line one\nNFSTEST_VM_READYX is not it\n' >"$T_TMP/c2"
out2=$(sh "$LABSH" wait-marker "$T_TMP/c2" NFSTEST_VM_READY 1 2>&1)
r2=$?
dying=$(sh -c 'sleep 1 >/dev/null 2>&1 & echo $!')
start=$(date +%s)
out3=$(sh "$LABSH" wait-marker "$T_TMP/c2" NFSTEST_VM_READY 20 "$dying" 2>&1)
r3=$?
took=$(($(date +%s) - start))
wait
if [ $r1 -eq 0 ] && [ $r2 -eq 1 ] && echo "$out2" | grep -q "after 1s" &&
    echo "$out2" | grep -q "| line one" && [ $r3 -eq 1 ] && [ $took -le 5 ] &&
    echo "$out3" | grep -q "exited before"; then t_ok; else t_fail "$r1 $r2 $r3 (${took}s): $out2 $out3"; fi

t_begin "wait-marker: a provisioning failure on the console ends the wait at once"
bad=""
for line in "NFSTEST_VM_FAILED: missing tcpdump" "strata-vm: cloud-init: failed (see /var/log/cloud-init.log)"; do
    printf 'booting\r\n%s\r\n' "$line" >"$T_TMP/c3"
    start=$(date +%s)
    out=$(sh "$LABSH" wait-marker "$T_TMP/c3" NFSTEST_VM_READY 30 2>&1)
    r=$?
    took=$(($(date +%s) - start))
    { [ $r -eq 1 ] && [ $took -le 5 ] && echo "$out" | grep -q "provisioning failed" &&
        echo "$out" | grep -qF "| $line"; } || bad="$bad [$line: rc $r, ${took}s: $out]"
done
if [ -z "$bad" ]; then t_ok; else t_fail "$bad"; fi

t_begin "strata lab nfs: a missing or invalid option is a usage error (2)"
r1=0 r2=0 r3=0 r4=0
"$STRATA" lab nfs start-env --work-dir "$W" >/dev/null 2>&1 || r1=$?
"$STRATA" lab nfs stop-env >/dev/null 2>&1 || r2=$?
"$STRATA" lab nfs test --work-dir "$W" --testcase 'open;x' >/dev/null 2>&1 || r3=$?
"$STRATA" lab nfs start-env --work-dir "$W" --nfsd "$NFSD" --image strata-nfsd --tag latest \
    --port 70000 --server container --export-mode rw --client none --vm-dir "$W/vm" \
    --vm-image vm.qcow2 --cidata cidata.iso >/dev/null 2>&1 || r4=$?
if [ "$r1$r2$r3$r4" = 2222 ] && [ ! -e "$W" ]; then t_ok; else t_fail "exit codes $r1 $r2 $r3 $r4"; fi

lab_env() { # lab_env SERVER MODE PORT
    "$STRATA" lab nfs start-env --work-dir "$W" --nfsd "$NFSD" --image strata-nfsd-it \
        --tag "$$" --port "$3" --server "$1" --export-mode "$2" --client none \
        --vm-dir "$W/vm" --vm-image vm.qcow2 --cidata cidata.iso
}
url() { echo "nfs://127.0.0.1/export${2:-}?version=3&nfsport=$1&mountport=$1"; }

if command -v podman >/dev/null && command -v runc >/dev/null && command -v nfs-ls >/dev/null; then
    PORT=$(free_port)
    t_begin "start-env --server container: strata-nfsd in podman, published on 127.0.0.1"
    if out=$(lab_env container rw "$PORT" 2>&1); then
        echo "from the host" >"$W/export/hello"
        ls=$(nfs-ls "$(url "$PORT")" 2>&1)
        if echo "$ls" | grep -q "hello" && nfs-cp "$SRC/README.md" "$(url "$PORT" /copied)" >/dev/null 2>&1 &&
            cmp -s "$SRC/README.md" "$W/export/copied"; then
            t_ok
        else
            t_fail "nfs-ls: $ls"
        fi
    else
        t_fail "$out"
    fi

    t_begin "the server down: test fails fast with a message and NFS test FAILED"
    CONTAINERS_CONF="$W/podman/containers.conf" podman --root "$W/podman/root" \
        --runroot "$W/podman/runroot" --runtime runc stop -t 1 strata-nfslab >/dev/null 2>&1
    start=$(date +%s)
    out=$("$STRATA" lab nfs test --work-dir "$W" --testcase open 2>&1)
    rc=$?
    took=$(($(date +%s) - start))
    if [ $rc -eq 1 ] && [ $took -le 5 ] && echo "$out" | grep -q "127.0.0.1:$PORT is down" &&
        echo "$out" | grep -q "^NFS test FAILED$"; then t_ok; else t_fail "rc $rc after ${took}s: $out"; fi

    t_begin "start-env again with --export-mode ro: reads work, writes get ROFS"
    if out=$(lab_env container ro "$PORT" 2>&1); then
        ls=$(nfs-ls "$(url "$PORT")" 2>&1)
        cp=$(nfs-cp "$SRC/README.md" "$(url "$PORT" /denied)" 2>&1)
        if echo "$ls" | grep -q copied && echo "$cp" | grep -q ROFS && [ ! -e "$W/export/denied" ]; then
            t_ok
        else
            t_fail "ls: $ls; cp: $cp"
        fi
    else
        t_fail "$out"
    fi

    t_begin "stop-env leaves no container and a closed port; a second stop-env is fine"
    "$STRATA" lab nfs stop-env --work-dir "$W" >/dev/null 2>&1
    rc=$?
    ps=$(CONTAINERS_CONF="$W/podman/containers.conf" podman --root "$W/podman/root" \
        --runroot "$W/podman/runroot" --runtime runc ps -a -q 2>&1)
    "$STRATA" lab nfs stop-env --work-dir "$W" >/dev/null 2>&1
    rc2=$?
    if [ $rc -eq 0 ] && [ $rc2 -eq 0 ] && [ -z "$ps" ] && ! nfs-ls "$(url "$PORT")" >/dev/null 2>&1; then
        t_ok
    else
        t_fail "rc $rc $rc2, containers: $ps"
    fi
else
    t_begin "strata lab nfs with a podman server # SKIP podman, runc or nfs-ls (libnfs-utils) missing"
    t_ok
fi

if command -v nfs-ls >/dev/null; then
    PORT=$(free_port)
    t_begin "start-env --server lab: strata-nfsd in a strata lab machine; stop-env ends it"
    if out=$(lab_env lab rw "$PORT" 2>&1); then
        . "$W/env"
        echo lab >"$W/export/in-lab"
        ls=$(nfs-ls "$(url "$PORT")" 2>&1)
        "$STRATA" lab nfs stop-env --work-dir "$W" >/dev/null 2>&1
        sleep 0.2
        if echo "$ls" | grep -q in-lab && ! kill -0 "$LAB_PID" 2>/dev/null &&
            ! nfs-ls "$(url "$PORT")" >/dev/null 2>&1; then
            t_ok
        else
            t_fail "ls: $ls"
        fi
    else
        t_fail "$out"
    fi
fi

t_done
