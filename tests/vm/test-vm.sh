#!/bin/bash
# The VM lab for real: QEMU guests of one cached base image (shared by the
# whole suite, kept in $STRATA_BUILD_ROOT/vm-lab so later runs reuse it).
# Instances and throwaway runs live in a temp vm dir whose images/ points
# at the cache; everything is removed at the end, and no qemu of this run
# may be left. Needs root (debootstrap, the image's files owned by root)
# and qemu; skips (77) without them.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
need_root
need_program qemu-system-x86_64 qemu-system-x86
need_program qemu-img qemu-utils
need_program debootstrap debootstrap
need_program ssh openssh-client
need_program rsync rsync
need_program genisoimage genisoimage
ls /boot/vmlinuz-* >/dev/null 2>&1 || t_skip_all "no kernel in /boot (Debian package linux-image-amd64)"

CACHE=${STRATA_VM_CACHE:-$STRATA_BUILD_ROOT/vm-lab}
IMG=strata-test
# One image for the vm suite and the NFS lab's test (nfslab-vm): the lab's
# client packages (nfs-common, tcpdump, cloud-init...), from its list.
PACKAGES=$(grep -v '^#' "$STRATA_SOURCE_ROOT/tests/nfslab/vm-packages" | tr -d ' \n')
t_tmpdir
VMDIR=$T_TMP/vm
mkdir -p "$CACHE" "$VMDIR"

# Kills what this run started (qemu processes whose command line names
# the temp dir), then removes the temp dir.
vm_cleanup() {
    vm_kill_started "$T_TMP"
    t_cleanup
}
trap 'vm_cleanup' EXIT
trap 'vm_cleanup; exit 130' INT TERM

vm() { "$STRATA" vm --vm-dir "$VMDIR" "$@"; }
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

# Exit codes through the result port: one fresh guest each.
for pair in "1:false" "3:sh -c 'exit 3'" "77:sh -c 'exit 77'" "137:sh -c 'kill -KILL \$\$'"; do
    want=${pair%%:*}
    cmd=${pair#*:}
    t_begin "vm run -- $cmd exits $want"
    start=$(date +%s.%N)
    eval "vm run \"\$IMG\" -- $cmd" >"$T_TMP/out" 2>"$T_TMP/err"
    rc=$?
    echo "# boot to exit: $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }") s"
    if [ $rc -eq "$want" ]; then t_ok; else t_fail "rc=$rc: $(tail -5 "$T_TMP/err")"; fi
done

# A NoCloud seed (an ISO labelled cidata) and a scratch drive ride along
# on the same boot: /dev/vdc and /dev/vdd after the two disks.
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

t_begin "vm run exits 0, the command's stdout and stderr come back apart"
# shellcheck disable=SC2016
vm run "$IMG" --seed "$T_TMP/seed.iso" --drive "$T_TMP/scratch.img" -- sh -c '
echo to-stdout; echo to-stderr >&2; uname -r
echo "seed: $(blkid -s LABEL -o value /dev/vdc) $(blkid -s TYPE -o value /dev/vdc)"
dd if=/dev/zero of=/dev/vdc bs=512 count=1 2>/dev/null && echo "seed: writable"
echo from-the-guest | dd of=/dev/vdd conv=notrunc 2>/dev/null; sync' >"$T_TMP/out" 2>"$T_TMP/err"
rc=$?
if [ $rc -eq 0 ] && grep -qx to-stdout "$T_TMP/out" && grep -qx to-stderr "$T_TMP/err" &&
    ! grep -q to-stderr "$T_TMP/out" && grep -qx "$(basename /boot/vmlinuz-* | sed 's/vmlinuz-//' | sort -V | tail -1)" "$T_TMP/out"; then
    t_ok
else
    t_fail "rc=$rc out=$(cat "$T_TMP/out") err=$(tail -3 "$T_TMP/err")"
fi

t_begin "the guest sees the --seed read-only with its label, the --drive writable"
if grep -qx "seed: cidata iso9660" "$T_TMP/out" && ! grep -q "seed: writable" "$T_TMP/out" &&
    [ "$(head -c 14 "$T_TMP/scratch.img")" = from-the-guest ]; then
    t_ok
else
    t_fail "out=$(cat "$T_TMP/out") scratch=$(head -c 20 "$T_TMP/scratch.img" | od -c | head -2)"
fi

t_begin "a guest panic gives 255 with the console's last lines"
vm run "$IMG" -- sh -c 'echo c >/proc/sysrq-trigger' >/dev/null 2>"$T_TMP/err"
rc=$?
if [ $rc -eq 255 ] && grep -q "Kernel panic" "$T_TMP/err"; then t_ok; else t_fail "rc=$rc: $(tail -5 "$T_TMP/err")"; fi

t_begin "--timeout gives 124, the console shown, no qemu and no instance left"
vm run "$IMG" --timeout 4 -- sleep 600 >/dev/null 2>"$T_TMP/err"
rc=$?
if [ $rc -eq 124 ] && grep -q "timeout" "$T_TMP/err" && [ "$(qemus)" -eq 0 ] &&
    [ -z "$(ls "$VMDIR/runs")" ]; then
    t_ok
else
    t_fail "rc=$rc qemus=$(qemus) runs=$(ls "$VMDIR/runs"): $(tail -5 "$T_TMP/err")"
fi

t_begin "vm run --sync copies a dir (not .git) and runs a binary built here"
mkdir -p "$T_TMP/src/.git" "$T_TMP/src/build"
echo secret >"$T_TMP/src/.git/HEAD"
echo junk >"$T_TMP/src/build/junk"
printf '#include <stdio.h>\nint main(void) { puts("built on the host"); return 42; }\n' >"$T_TMP/src/hello.c"
if cc -o "$T_TMP/src/hello" "$T_TMP/src/hello.c"; then
    vm run "$IMG" --sync "$T_TMP/src" -- sh -c './hello; s=$?; ls -a; exit $s' >"$T_TMP/out" 2>"$T_TMP/err"
    rc=$?
    if [ $rc -eq 42 ] && grep -qx "built on the host" "$T_TMP/out" && ! grep -qx ".git" "$T_TMP/out" &&
        ! grep -qx build "$T_TMP/out" && grep -qx hello.c "$T_TMP/out"; then
        t_ok
    else
        t_fail "rc=$rc out=$(cat "$T_TMP/out") err=$(tail -5 "$T_TMP/err")"
    fi
else
    t_fail "cc failed"
fi

t_begin "two instances start at once, each with its own port"
vm start "$IMG" --instance a >"$T_TMP/a.out" 2>&1 &
pa=$!
vm start "$IMG" --instance b >"$T_TMP/b.out" 2>&1 &
pb=$!
wait $pa; ra=$?
wait $pb; rb=$?
vm status --json >"$T_TMP/status.json"
ports=$(python3 -c 'import json,sys; print(" ".join(str(i["ssh_port"]) for i in json.load(open(sys.argv[1])) if i["state"] == "running"))' "$T_TMP/status.json")
set -- $ports
if [ $ra -eq 0 ] && [ $rb -eq 0 ] && [ $# -eq 2 ] && [ "$1" != "$2" ]; then
    t_ok
else
    t_fail "a=$ra b=$rb ports=$ports: $(cat "$T_TMP/a.out" "$T_TMP/b.out" | tail -8)"
fi

t_begin "ssh checks the recorded host key and reaches the guest"
if out=$(vm ssh "$IMG" --instance a -- sh -c 'echo "$(hostname) $(id -u)"; cat /proc/1/comm' 2>&1) &&
    echo "$out" | grep -qx "strata-vm 0" && echo "$out" | grep -qx overlayfs-init &&
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

t_begin "stop powers the guest down (ACPI) and leaves no process or socket"
out=$(vm stop "$IMG" --instance a --grace 60 2>&1); rc=$?
pa=$(ls "$VMDIR/instances/$IMG/a/")
if [ $rc -eq 0 ] && ! echo "$out" | grep -q killed && ! echo "$pa" | grep -q "qmp.sock" &&
    [ "$(pgrep -f -- "$VMDIR/instances/$IMG/a/" | wc -l)" -eq 0 ]; then
    t_ok
else
    t_fail "rc=$rc $out; files: $pa"
fi

t_begin "snapshot, write, restore: the file from before is back, the one after gone"
ok=1
vm snapshot "$IMG" s1 --instance a >/dev/null || ok=0
vm snapshot --list "$IMG" --instance a | grep -qx s1 || ok=0
vm start "$IMG" --instance a >/dev/null 2>&1 || ok=0
vm ssh "$IMG" --instance a -- sh -c 'echo late >/root/after-s1' || ok=0
vm stop "$IMG" --instance a --grace 0 >/dev/null || ok=0
vm restore "$IMG" s1 --instance a >/dev/null || ok=0
vm start "$IMG" --instance a >/dev/null 2>&1 || ok=0
out=$(vm ssh "$IMG" --instance a -- sh -c 'ls /root/only-in-a /root/after-s1 2>&1')
if [ $ok -eq 1 ] && echo "$out" | grep -qx /root/only-in-a && echo "$out" | grep -q "after-s1.*No such file"; then
    t_ok
else
    t_fail "ok=$ok: $out"
fi

t_begin "destroy --yes kills and removes both instances: no process, socket or file left"
vm destroy "$IMG" --instance a </dev/null >/dev/null 2>&1; r0=$?
vm destroy "$IMG" --instance a --yes >/dev/null 2>&1; r1=$?
vm destroy "$IMG" --instance b --yes >/dev/null 2>&1; r2=$?
if [ $r0 -eq 2 ] && [ $r1 -eq 0 ] && [ $r2 -eq 0 ] && [ ! -e "$VMDIR/instances/$IMG" ] && [ "$(qemus)" -eq 0 ]; then
    t_ok
else
    t_fail "no-yes=$r0 a=$r1 b=$r2 qemus=$(qemus) left: $(ls -R "$VMDIR/instances" 2>&1 | head)"
fi

t_done
