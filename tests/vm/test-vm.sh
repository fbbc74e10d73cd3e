#!/bin/bash
# The VM lab for real: QEMU guests of one cached base image (shared by the
# whole suite, kept in $STRATA_BUILD_ROOT/vm-lab so later runs reuse it).
# Instances and throwaway runs live in a temp vm dir whose images/ points
# at the cache; everything is removed at the end, and no qemu of this run
# may be left. Needs root (debootstrap, the image's files owned by root)
# and qemu; skips (77) without them.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
vm_test_setup ssh openssh-client rsync rsync genisoimage genisoimage \
    busybox busybox-static make make cc gcc
t_tmpdir
VMDIR=$T_TMP/vm
mkdir -p "$CACHE" "$VMDIR"

# Kills what this run started (qemu processes whose command line names
# the temp dir), then removes the temp dir; on exit, on a signal, and by
# the reaper when this shell is killed (vm_guard).
vm_cleanup() {
    vm_kill_started "$T_TMP"
    t_cleanup
}
vm_guard "$T_TMP" vm_cleanup

vm() { "$STRATA" vm --vm-dir "$VMDIR" "$@"; }
# The Makefile's targets on this run's vm dir, image and build.
mk() { make -s -C "$STRATA_SOURCE_ROOT" BUILD="$STRATA_BUILD_ROOT" VM_DIR="$VMDIR" VM_NAME="$IMG" "$@"; }
qemus() { pgrep -f -- "$T_TMP/" | grep -vx $$ | wc -l; }

t_begin "image build makes a qcow2 base with the recorded host key"
start=$(date +%s)
if out=$("$STRATA" vm image build --vm-dir "$CACHE" --packages "$PACKAGES" "$IMG" 2>&1); then
    echo "# image build: $(( $(date +%s) - start )) s: $(echo "$out" | tail -1)"
    if [ -s "$CACHE/images/$IMG/base.qcow2" ] && grep -q "^strata-vm-$IMG ssh-ed25519 " "$CACHE/images/$IMG/known_hosts"; then
        t_ok
    else
        t_fail "no base.qcow2 or known_hosts: $(ls -la "$CACHE/images/$IMG")"
    fi
else
    t_fail "$(echo "$out" | tail -5)"
    t_done
    exit 1
fi
vm_dir_over_cache "$CACHE" "$VMDIR"

t_begin "a second image build is cached"
out=$("$STRATA" vm image build --vm-dir "$CACHE" --packages "$PACKAGES" "$IMG" 2>&1)
case "$out" in *"(cached)"*) t_ok ;; *) t_fail "$out" ;; esac

t_begin "bad names are usage errors (exit 2)"
bad=""
for n in "a/b" "" "../x" "-x" "$(printf 'n%.0s' $(seq 70))"; do
    vm run "$n" -- true >/dev/null 2>&1
    rc=$?
    [ $rc -eq 2 ] || bad="$bad '$n'->$rc"
done
vm image build "a/b" >/dev/null 2>&1; rc=$?; [ $rc -eq 2 ] || bad="$bad build->$rc"
vm start "x y" >/dev/null 2>&1; rc=$?; [ $rc -eq 2 ] || bad="$bad start->$rc"
vm run "$IMG" >/dev/null 2>&1; rc=$?; [ $rc -eq 2 ] || bad="$bad no-cmd->$rc"
if [ -z "$bad" ]; then t_ok; else t_fail "$bad"; fi

t_begin "a missing base image is a clear error (exit 1), nothing left behind"
out=$(vm run nosuch -- true 2>&1); rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "no image 'nosuch'" && [ -z "$(ls "$VMDIR/runs" 2>/dev/null)" ]; then
    t_ok
else
    t_fail "rc=$rc: $out"
fi

t_begin "a damaged image.json is a clear error"
mkdir -p "$VMDIR/x/images/broken"
echo '{"kernel": ' >"$VMDIR/x/images/broken/image.json"
out=$("$STRATA" vm run --vm-dir "$VMDIR/x" broken -- true 2>&1); rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "damaged image 'broken'"; then t_ok; else t_fail "rc=$rc: $out"; fi

t_begin "a long build step says every few seconds that it runs (stage, seconds, its last line)"
# A debootstrap that takes 3 s and fails: the periodic lines, then the
# failure naming the tool and its last words. Nothing of it is cached.
mkdir -p "$T_TMP/fakebin" "$T_TMP/prog"
printf '#!/bin/sh\necho "I: Retrieving InRelease"\nsleep 1.5\necho "I: Validating Packages"\nsleep 1.5\necho "E: no archive here" >&2\nexit 1\n' >"$T_TMP/fakebin/debootstrap"
chmod +x "$T_TMP/fakebin/debootstrap"
out=$(PATH="$T_TMP/fakebin:$PATH" STRATA_VM_PROGRESS_SEC=1 "$STRATA" vm image build --vm-dir "$T_TMP/prog" slow 2>&1); rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -Eq '\[ *[0-9.]+s\] debootstrap: running for [0-9]+ s: I: (Retrieving|Validating)' &&
    [ "$(echo "$out" | grep -c 'debootstrap: running for')" -ge 2 ] &&
    echo "$out" | grep -q "'debootstrap .*' failed (status 1): " && echo "$out" | grep -q "E: no archive here" &&
    [ ! -e "$T_TMP/prog/images/slow/rootfs" ]; then
    t_ok
else
    t_fail "rc=$rc: $out"
fi

# The image's own init (--init image): a busybox root whose /sbin/init
# says who it is and powers off. Its own vm dir: the cache stays the suite's.
OWN=$T_TMP/own
mkdir -p "$OWN" "$T_TMP/ownroot/bin" "$T_TMP/ownroot/sbin"
for d in dev proc sys run tmp; do mkdir -p "$T_TMP/ownroot/$d"; done
cp "$(command -v busybox)" "$T_TMP/ownroot/bin/busybox"
printf '#!/bin/busybox sh\n/bin/busybox mount -t proc proc /proc\necho "own init: pid $$, $0" >/dev/console\n/bin/busybox poweroff -f\n' >"$T_TMP/ownroot/sbin/init"
chmod +x "$T_TMP/ownroot/sbin/init"
cp "$CACHE/id_ed25519" "$CACHE/id_ed25519.pub" "$OWN/"
[ -d "$CACHE/kvm-probe" ] && cp -r "$CACHE/kvm-probe" "$OWN/"
own_built=0
"$STRATA" vm image build --vm-dir "$OWN" own --rootfs "$T_TMP/ownroot" --init image --size 64M \
    >"$T_TMP/own-build" 2>&1 && own_built=1

# Exit codes through the result port, one fresh guest each, all at once
# (with the own-init guest): the suite boots as few rounds as it can.
set -- "1:false" "3:sh -c 'exit 3'" "77:sh -c 'exit 77'" "137:sh -c 'kill -KILL \$\$'"
k=0
for pair; do
    k=$((k + 1))
    eval "vm run \"\$IMG\" -- ${pair#*:}" >"$T_TMP/rc$k.out" 2>"$T_TMP/rc$k.err" &
    eval "pid$k=\$!"
done
[ $own_built = 1 ] && "$STRATA" vm run --vm-dir "$OWN" own -- true >/dev/null 2>"$T_TMP/own.err" &
ownpid=$!
start=$(date +%s)
k=0
for pair; do
    k=$((k + 1))
    eval "wait \$pid$k"
    rc=$?
    t_begin "vm run -- ${pair#*:} exits ${pair%%:*}"
    if [ $rc -eq "${pair%%:*}" ]; then t_ok; else t_fail "rc=$rc: $(tail -5 "$T_TMP/rc$k.err")"; fi
done
wait $ownpid
ownrc=$?
echo "# four guests and the own-init one at once: $(( $(date +%s) - start )) s"

t_begin "--init image boots the image's own /sbin/init as PID 1 (no result channel: 255)"
if [ $own_built = 1 ] && [ $ownrc -eq 255 ] && grep -q "own init: pid 1, /sbin/init" "$T_TMP/own.err" &&
    ! grep -q "init=" "$OWN/images/own/image.json"; then
    t_ok
else
    t_fail "built=$own_built rc=$ownrc: $(tail -5 "$T_TMP/own-build") $(tail -8 "$T_TMP/own.err" 2>/dev/null)"
fi

# A NoCloud seed (an ISO labelled cidata) and a scratch drive ride along
# on one boot: /dev/vdc and /dev/vdd after the two disks.
mkdir -p "$T_TMP/seed"
printf 'instance-id: strata-test\nlocal-hostname: seeded\n' >"$T_TMP/seed/meta-data"
printf '#cloud-config\n' >"$T_TMP/seed/user-data"
genisoimage -quiet -o "$T_TMP/seed.iso" -V cidata -J -r "$T_TMP/seed/user-data" "$T_TMP/seed/meta-data"
truncate -s 1M "$T_TMP/scratch.img"

t_begin "a --seed that is not labelled cidata is refused before any boot (exit 1)"
out=$(vm run "$IMG" --seed "$T_TMP/scratch.img" -- true 2>&1); rc=$?
out2=$(vm run "$IMG" --seed "$T_TMP/nosuch.iso" -- true 2>&1); rc2=$?
out3=$(vm run "$IMG" --drive ",ro" -- true 2>&1); rc3=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "scratch.img' is not a NoCloud seed" &&
    [ $rc2 -eq 1 ] && echo "$out2" | grep -q "nosuch.iso" && [ $rc3 -eq 2 ] &&
    [ -z "$(ls "$VMDIR/runs" 2>/dev/null)" ]; then
    t_ok
else
    t_fail "rc=$rc $out / rc2=$rc2 $out2 / rc3=$rc3 $out3"
fi

# The second round, at once: exit 0 with the drives, a panic, a timeout,
# --sync of a binary built here.
mkdir -p "$T_TMP/src/.git" "$T_TMP/src/build"
echo secret >"$T_TMP/src/.git/HEAD"
echo junk >"$T_TMP/src/build/junk"
printf '#include <stdio.h>\nint main(void) { puts("built on the host"); return 42; }\n' >"$T_TMP/src/hello.c"
cc -o "$T_TMP/src/hello" "$T_TMP/src/hello.c" || echo "# cc failed"
# shellcheck disable=SC2016
vm run "$IMG" --seed "$T_TMP/seed.iso" --drive "$T_TMP/scratch.img" -- sh -c '
echo to-stdout; echo to-stderr >&2; uname -r
echo "seed: $(blkid -s LABEL -o value /dev/vdc) $(blkid -s TYPE -o value /dev/vdc)"
dd if=/dev/zero of=/dev/vdc bs=512 count=1 2>/dev/null && echo "seed: writable"
echo from-the-guest | dd of=/dev/vdd conv=notrunc 2>/dev/null; sync
python3 -c "import os; os.openpty()" && echo "pty: ok"
python3 -c "from multiprocessing import shared_memory as m; m.SharedMemory(create=True, size=4096).unlink()" &&
    echo "shm: ok"
ip link add strata-br0 type bridge && grep -q "^bridge " /proc/modules && echo "bridge: ok"
grep -qw sse4_2 /proc/cpuinfo && grep -qw popcnt /proc/cpuinfo && echo "cpu: ok"' >"$T_TMP/out" 2>"$T_TMP/err" &
p0=$!
vm run "$IMG" -- sh -c 'echo c >/proc/sysrq-trigger' >/dev/null 2>"$T_TMP/panic.err" &
pp=$!
vm run "$IMG" --timeout 4 -- sleep 600 >/dev/null 2>"$T_TMP/timeout.err" &
pt=$!
vm run "$IMG" --sync "$T_TMP/src" -- sh -c './hello; s=$?; ls -a; exit $s' >"$T_TMP/sync.out" 2>"$T_TMP/sync.err" &
psy=$!
start=$(date +%s)
wait $p0; rc0=$?
wait $pp; rcp=$?
wait $pt; rct=$?
wait $psy; rcs=$?
echo "# four guests at once: $(( $(date +%s) - start )) s"

t_begin "vm run exits 0, the command's stdout and stderr come back apart"
if [ $rc0 -eq 0 ] && grep -qx to-stdout "$T_TMP/out" && grep -qx to-stderr "$T_TMP/err" &&
    ! grep -q to-stderr "$T_TMP/out" && grep -qx "$(basename /boot/vmlinuz-* | sed 's/vmlinuz-//' | sort -V | tail -1)" "$T_TMP/out"; then
    t_ok
else
    t_fail "rc=$rc0 out=$(cat "$T_TMP/out") err=$(tail -3 "$T_TMP/err")"
fi

t_begin "the guest sees the --seed read-only with its label, the --drive writable"
if grep -qx "seed: cidata iso9660" "$T_TMP/out" && ! grep -q "seed: writable" "$T_TMP/out" &&
    [ "$(head -c 14 "$T_TMP/scratch.img")" = from-the-guest ]; then
    t_ok
else
    t_fail "out=$(cat "$T_TMP/out") scratch=$(head -c 20 "$T_TMP/scratch.img" | od -c | head -2)"
fi

t_begin "the guest has pseudo-terminals (/dev/pts) and POSIX shared memory (/dev/shm)"
if grep -qx "pty: ok" "$T_TMP/out" && grep -qx "shm: ok" "$T_TMP/out"; then
    t_ok
else
    t_fail "out=$(cat "$T_TMP/out") err=$(tail -5 "$T_TMP/err")"
fi

t_begin "the guest's modprobe and module autoloading work (a bridge loads its module); its CPU has SSE4.2 and POPCNT"
if grep -qx "bridge: ok" "$T_TMP/out" && grep -qx "cpu: ok" "$T_TMP/out"; then
    t_ok
else
    t_fail "out=$(cat "$T_TMP/out") err=$(tail -5 "$T_TMP/err")"
fi

t_begin "a guest panic gives 255 with the console's last lines"
if [ $rcp -eq 255 ] && grep -q "Kernel panic" "$T_TMP/panic.err"; then t_ok; else t_fail "rc=$rcp: $(tail -5 "$T_TMP/panic.err")"; fi

t_begin "--timeout gives 124, the console shown; after the round no qemu and no instance left"
if [ $rct -eq 124 ] && grep -q "timeout" "$T_TMP/timeout.err" && [ "$(qemus)" -eq 0 ] &&
    [ -z "$(ls "$VMDIR/runs")" ]; then
    t_ok
else
    t_fail "rc=$rct qemus=$(qemus) runs=$(ls "$VMDIR/runs"): $(tail -5 "$T_TMP/timeout.err")"
fi

t_begin "vm run --sync copies a dir (not .git) and runs a binary built here"
if [ $rcs -eq 42 ] && grep -qx "built on the host" "$T_TMP/sync.out" && ! grep -qx ".git" "$T_TMP/sync.out" &&
    ! grep -qx build "$T_TMP/sync.out" && grep -qx hello.c "$T_TMP/sync.out"; then
    t_ok
else
    t_fail "rc=$rcs out=$(cat "$T_TMP/sync.out") err=$(tail -5 "$T_TMP/sync.err")"
fi

# Instance a through the Makefile's targets, b through strata vm; the
# integration suite's short subset runs in a third guest meanwhile.
t_begin "make vm-setup finds the image cached"
out=$(mk vm-setup 2>&1); rc=$?
if [ $rc -eq 0 ] && echo "$out" | grep -q "(cached)"; then t_ok; else t_fail "rc=$rc: $(echo "$out" | tail -5)"; fi

# the suite's own image and packages: found cached, never rebuilt under the
# guests booting from it meanwhile
mk vm-test-integration VM_IT_NAME="$IMG" VM_IT_PACKAGES="$PACKAGES" VM_TESTS=cli VM_IT_MEM=1024 \
    VM_IT_TIMEOUT=1200 >"$T_TMP/it.out" 2>&1 &
pit=$!
# One make at a time in the build dir: the next once this one boots.
i=0
while kill -0 $pit 2>/dev/null && ! grep -q "booting a guest" "$T_TMP/it.out" && [ $i -lt 600 ]; do
    sleep 0.5
    i=$((i + 1))
done
t_begin "two instances start at once (make vm-start, vm start), each with its own port"
mk vm-start VM_INSTANCE=a >"$T_TMP/a.out" 2>&1 &
pa=$!
vm start "$IMG" --instance b >"$T_TMP/b.out" 2>&1 &
pb=$!
wait $pa; ra=$?
wait $pb; rb=$?
# (make's own lines first: the JSON array from its "[" on.)
mk vm-status 2>/dev/null | sed -n '/^\[$/,$p' >"$T_TMP/status.json"
ports=$(python3 -c 'import json,sys; print(" ".join(str(i["ssh_port"]) for i in json.load(open(sys.argv[1])) if i["state"] == "running"))' "$T_TMP/status.json")
set -- $ports
if [ $ra -eq 0 ] && [ $rb -eq 0 ] && [ $# -eq 2 ] && [ "$1" != "$2" ]; then
    t_ok
else
    t_fail "a=$ra b=$rb ports=$ports: $(cat "$T_TMP/a.out" "$T_TMP/b.out" | tail -8)"
fi

t_begin "make vm-ssh checks the recorded host key and reaches the guest"
if out=$(mk vm-ssh VM_INSTANCE=a CMD='hostname; id -u; cat /proc/1/comm' 2>&1) &&
    [ "$(echo "$out" | tail -3 | tr '\n' ' ')" = "strata-vm 0 overlayfs-init " ] &&
    grep -q "StrictHostKeyChecking yes" "$(vm ssh-config "$IMG" --instance a)"; then
    t_ok
else
    t_fail "$out"
fi

t_begin "the two instances share no file"
vm ssh "$IMG" --instance a -- sh -c 'echo a >/root/only-in-a' &&
    out=$(vm ssh "$IMG" --instance b -- sh -c 'ls /root/only-in-a 2>&1; echo b-done')
if vm ssh "$IMG" --instance a -- test -e /root/only-in-a && echo "$out" | grep -q "No such file" &&
    echo "$out" | grep -q b-done; then
    t_ok
else
    t_fail "$out"
fi

t_begin "starting a running instance is busy (75); a snapshot of it too"
vm start "$IMG" --instance a >/dev/null 2>&1; r1=$?
vm snapshot "$IMG" s1 --instance a >/dev/null 2>&1; r2=$?
if [ $r1 -eq 75 ] && [ $r2 -eq 75 ]; then t_ok; else t_fail "start=$r1 snapshot=$r2"; fi

t_begin "vm sync puts a dir into a running instance"
if vm sync "$IMG" "$T_TMP/src" --instance b --dest /srv/src >/dev/null 2>"$T_TMP/err" &&
    out=$(vm ssh "$IMG" --instance b -- /srv/src/hello); [ "$out" = "built on the host" ]; then
    t_ok
else
    t_fail "$out $(tail -3 "$T_TMP/err")"
fi

# The orchd dev loop with instance b running: `make dev-loop` takes it as
# its local target (no boot of its own). The image has no toolchain, so
# strata is built here and copied with the libraries the guest lacks; the
# smoke tests run in the guest against its podman (the image's packages
# have it), every one of them: none fails, none is skipped.
t_begin "make dev-loop targets the running instance: strata copied, the smoke tests all pass in the guest"
D=/var/tmp/strata-dev
start=$(date +%s)
# (the smoke tests take five to seven minutes in a TCG guest: their cap
# raised from five to fifteen)
mk dev-loop VM_INSTANCE=b DEV_ARGS="--once --timeout 900" >"$T_TMP/dev.out" 2>&1
mk_rc=$?
echo "# dev loop round in the guest: $(( $(date +%s) - start )) s"
grep '^{"' "$T_TMP/dev.out" | sed 's/"detail": .*/.../; s/^/# /'
# (make says 2 for any failing recipe: the loop's own status is its last line)
rc=$(sed -n 's/^round done (exit \([0-9]*\))$/\1/p' "$T_TMP/dev.out")
summary=$(grep '^{"summary"' "$T_TMP/dev.out")
guest=$(vm ssh "$IMG" --instance b -- sh -c "test -f $D/Makefile && test ! -e $D/.git && test ! -e $D/.dev &&
    ls $D/build/.libs && for p in /proc/[0-9]*; do tr '\\0' ' ' <\$p/cmdline; echo; done 2>/dev/null |
    grep -c '[s]trata orchd --state-dir'" 2>&1)
if [ "$rc" = 0 ] && [ $mk_rc -eq 0 ] &&
    echo "$summary" | grep -q '"passed": [1-9][0-9]*, "failed": 0, "skipped": 0,' &&
    ! grep -q '"result": "skip"' "$T_TMP/dev.out" &&
    grep -q "^== the local target: the strata vm instance $IMG/b of $VMDIR" "$T_TMP/dev.out" &&
    grep -qx "ssh -F $VMDIR/instances/$IMG/b/ssh_config strata-vm-$IMG-b" "$T_TMP/dev.out" &&
    grep -qx "== sync: $STRATA_SOURCE_ROOT -> strata-vm-$IMG-b:$D" "$T_TMP/dev.out" &&
    grep -q "^== build strata here" "$T_TMP/dev.out" &&
    grep -q "^copy build/src/cli/strata to strata-vm-$IMG-b, with what it lacks: .*libmicrohttpd.so.12" "$T_TMP/dev.out" &&
    grep -q "^copy build/src/cli/strata to strata-vm-$IMG-b, with what it lacks: .*libarchive.so.13" "$T_TMP/dev.out" &&
    grep -qx "orchd answers on $D/.dev/orchd.sock" "$T_TMP/dev.out" &&
    sed -n '/^== packages/,$p' "$T_TMP/dev.out" | grep -q '"result"' &&
    echo "$guest" | grep -qx libmicrohttpd.so.12 && echo "$guest" | grep -qx libarchive.so.13 &&
    [ "$(echo "$guest" | tail -1)" = 0 ]; then
    t_ok
else
    t_fail "exit $rc, make $mk_rc: $summary $(grep '"result": "\(fail\|skip\)"' "$T_TMP/dev.out" | head -5) $(tail -25 "$T_TMP/dev.out"); guest: $guest"
fi

t_begin "the loop's ssh to the instance holds the guest to its recorded host key: another is refused"
ssh-keygen -q -t ed25519 -N '' -C other -f "$T_TMP/other_key"
printf 'strata-vm-%s %s\n' "$IMG" "$(cut -d' ' -f1,2 "$T_TMP/other_key.pub")" >"$T_TMP/wrong_known_hosts"
out=$(ssh -F "$VMDIR/instances/$IMG/b/ssh_config" -o UserKnownHostsFile="$T_TMP/wrong_known_hosts" \
    "strata-vm-$IMG-b" true </dev/null 2>&1)
rc=$?
if [ $rc -eq 255 ] && echo "$out" | grep -qi "host key"; then t_ok; else t_fail "rc $rc: $out"; fi

t_begin "make vm-sync puts the source tree (no .git) into the instance"
mk vm-sync VM_INSTANCE=a VM_SYNC_DEST=/work/tree >"$T_TMP/mksync" 2>&1
rc=$?
out=$(vm ssh "$IMG" --instance a -- sh -c 'ls /work/tree/Makefile /work/tree/src/cli/vm.c; ls -a /work/tree' 2>&1)
rc2=$?
if [ $rc -eq 0 ] && [ $rc2 -eq 0 ] && echo "$out" | grep -qx /work/tree/Makefile && ! echo "$out" | grep -qx ".git"; then
    t_ok
else
    t_fail "make rc=$rc: $(tail -5 "$T_TMP/mksync"); ssh rc=$rc2: $(echo "$out" | head -5)"
fi

t_begin "make vm-stop powers the guest down (ACPI) and leaves no process or socket"
out=$(mk vm-stop VM_INSTANCE=a VM_GRACE=60 2>&1); rc=$?
pa=$(ls "$VMDIR/instances/$IMG/a/")
if [ $rc -eq 0 ] && ! echo "$out" | grep -q killed && ! echo "$pa" | grep -q "qmp.sock" &&
    [ "$(pgrep -f -- "$VMDIR/instances/$IMG/a/" | wc -l)" -eq 0 ]; then
    t_ok
else
    t_fail "rc=$rc $out; files: $pa"
fi

t_begin "make vm-snapshot, write, make vm-restore: the file from before is back, the one after gone"
ok=1
mk vm-snapshot VM_INSTANCE=a VM_SNAPSHOT=s1 >/dev/null || ok=0
vm snapshot --list "$IMG" --instance a | grep -qx s1 || ok=0
mk vm-start VM_INSTANCE=a >/dev/null 2>&1 || ok=0
vm ssh "$IMG" --instance a -- sh -c 'echo late >/root/after-s1' || ok=0
mk vm-stop VM_INSTANCE=a VM_GRACE=0 >/dev/null || ok=0
mk vm-restore VM_INSTANCE=a VM_SNAPSHOT=s1 >/dev/null || ok=0
mk vm-start VM_INSTANCE=a >/dev/null 2>&1 || ok=0
out=$(vm ssh "$IMG" --instance a -- sh -c 'ls /root/only-in-a /root/after-s1 2>&1')
if [ $ok -eq 1 ] && echo "$out" | grep -qx /root/only-in-a && echo "$out" | grep -q "after-s1.*No such file"; then
    t_ok
else
    t_fail "ok=$ok: $out"
fi

t_begin "make vm-test-integration runs the integration suite (VM_TESTS=cli) on the guest's kernel"
wait $pit
rc=$?
grep -E "^(not )?ok|^vm-test-integration" "$T_TMP/it.out" | sed 's/^/# /'
if [ $rc -eq 0 ] && grep -q "^ok 1 - cli (" "$T_TMP/it.out" &&
    grep -q "vm-test-integration: 1 passed, 0 failed, 0 skipped (kernel $(basename /boot/vmlinuz-* | sed 's/vmlinuz-//' | sort -V | tail -1))" "$T_TMP/it.out"; then
    t_ok
else
    t_fail "rc=$rc: $(tail -15 "$T_TMP/it.out")"
fi

t_begin "make vm-destroy and vm destroy --yes kill and remove both instances: no process, socket or file left"
vm destroy "$IMG" --instance a </dev/null >/dev/null 2>&1; r0=$?
mk vm-destroy VM_INSTANCE=a >/dev/null 2>&1; r1=$?
vm destroy "$IMG" --instance b --yes >/dev/null 2>&1; r2=$?
if [ $r0 -eq 2 ] && [ $r1 -eq 0 ] && [ $r2 -eq 0 ] && [ ! -e "$VMDIR/instances/$IMG" ] && [ "$(qemus)" -eq 0 ]; then
    t_ok
else
    t_fail "no-yes=$r0 a=$r1 b=$r2 qemus=$(qemus) left: $(ls -R "$VMDIR/instances" 2>&1 | head)"
fi

t_done
