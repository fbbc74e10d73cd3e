#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The orchd dev loop against a real ssh target: scripts/dev-target starts
# an ssh server (dropbear) in a strata lab machine on a free loopback port,
# with client and host keys made in the temp dir; the host key is checked
# (a wrong one is refused); scripts/dev-container-test.sh --once --target
# syncs, builds strata, restarts orchd and runs the smoke tests over ssh;
# afterwards no daemon, server or machine process is left and the host's
# /root is untouched. (The vm target, a started strata vm instance, is
# tested through a booted guest in the vm suite, tests/vm/test-vm.sh.)
. "$(dirname "$0")/lib.sh"

need_root
not_in_image "it runs podman, and podman does not run nested in the container"
need_program dropbear dropbear-bin
need_program ssh openssh-client
need_program rsync rsync
need_program podman podman
need_program curl curl
need_program python3 python3
need_program meson meson
need_program ninja ninja-build
[ -f /sys/fs/cgroup/cgroup.controllers ] || need_program runc runc

SRC=${STRATA_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
t_tmpdir
TD="$T_TMP/t"
STATE_BEFORE=$(ls -la /root/.ssh 2>&1 | md5sum)

cleanup() {
    STRATA="$STRATA" "$SRC/scripts/dev-target" stop "$TD" 2>/dev/null
    t_cleanup
}
trap 'cleanup' EXIT
trap 'cleanup; exit 130' INT TERM

left() { # the processes whose command line names the target dir
    pgrep -f "$TD" | grep -vx "$$" || true
}

t_begin "dev-target starts an ssh server in a lab machine: ssh reaches the machine"
cfg=$(STRATA="$STRATA" "$SRC/scripts/dev-target" start "$TD" 2>&1)
rc=$?
got=$(ssh -F "$TD/ssh_config" strata-dev 'hostname; id -u' </dev/null 2>&1 | tr '\n' ' ')
if [ $rc -eq 0 ] && [ "$cfg" = "$TD/ssh_config" ] && [ "$got" = "strata-dev 0 " ]; then
    t_ok
else
    t_fail "rc $rc: $cfg; ssh: $got; $(tail -5 "$TD/lab.log" 2>/dev/null)"
fi

t_begin "the host key is checked: known_hosts with another key is refused"
dropbearkey -t ed25519 -f "$T_TMP/other_key" >/dev/null 2>&1
port=$(sed -n 's/^ *Port //p' "$TD/ssh_config")
printf '[127.0.0.1]:%s %s\n' "$port" \
    "$(dropbearkey -y -f "$T_TMP/other_key" | grep '^ssh-ed25519 ' | cut -d' ' -f1,2)" \
    >"$T_TMP/wrong_known_hosts"
out=$(ssh -F "$TD/ssh_config" -o UserKnownHostsFile="$T_TMP/wrong_known_hosts" -o LogLevel=ERROR \
    strata-dev true </dev/null 2>&1)
rc=$?
if [ $rc -eq 255 ] && echo "$out" | grep -qi "host key"; then t_ok; else t_fail "rc $rc: $out"; fi

t_begin "a second start on the same dir is refused; bad arguments exit 2"
STRATA="$STRATA" "$SRC/scripts/dev-target" start "$TD" >/dev/null 2>"$T_TMP/err"
rc1=$?
"$SRC/scripts/dev-target" start relative/dir >/dev/null 2>&1
rc2=$?
"$SRC/scripts/dev-container-test.sh" --target >/dev/null 2>&1
rc3=$?
"$SRC/scripts/dev-container-test.sh" --bogus >/dev/null 2>&1
rc4=$?
"$SRC/scripts/dev-container-test.sh" --target x --ssh-config "$T_TMP/missing" >/dev/null 2>&1
rc5=$?
"$SRC/scripts/dev-container-test.sh" --local bogus >/dev/null 2>&1
rc6=$?
"$SRC/scripts/dev-container-test.sh" --local vm --target x >/dev/null 2>&1
rc7=$?
if [ "$rc1 $rc2 $rc3 $rc4 $rc5 $rc6 $rc7" = "1 2 2 2 2 2 2" ] && grep -q "runs already" "$T_TMP/err"; then
    t_ok
else
    t_fail "exit statuses $rc1 $rc2 $rc3 $rc4 $rc5 $rc6 $rc7 (want 1 2 2 2 2 2 2): $(cat "$T_TMP/err")"
fi

t_begin "--local vm with no running instance is an error naming it (exit 1), nothing started"
out=$(STRATA="$STRATA" "$SRC/scripts/dev-container-test.sh" --once --local vm --vm-dir "$T_TMP/novm" \
    --vm-name strata-test --vm-instance dev 2>&1)
rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "no running instance 'dev' of 'strata-test' in '$T_TMP/novm'" &&
    ! echo "$out" | grep -q "^== sync"; then
    t_ok
else
    t_fail "rc $rc: $out"
fi

t_begin "dev-container-test.sh --once --target: sync, build, orchd, every smoke test passing over ssh"
"$SRC/scripts/dev-container-test.sh" --once --target strata-dev --ssh-config "$TD/ssh_config" \
    --dir "$TD/tr" >"$T_TMP/loop.out" 2>&1
rc=$?
summary=$(grep '"summary"' "$T_TMP/loop.out")
if [ $rc -eq 0 ] && grep -q '^== sync: .* -> strata-dev:' "$T_TMP/loop.out" &&
    grep -q "orchd answers on $TD/tr/.dev/orchd.sock" "$T_TMP/loop.out" &&
    echo "$summary" | grep -q '"passed": [1-9][0-9]*, "failed": 0, "skipped": 0,' &&
    [ -x "$TD/tr/build/src/cli/strata" ]; then
    t_ok
else
    t_fail "exit $rc: $(tail -30 "$T_TMP/loop.out")"
fi

t_begin "the round's end stopped its orchd and removed what it made on the target"
if [ ! -e "$TD/tr/.dev" ] && ! pgrep -f "$TD/tr/.dev/state" >/dev/null; then t_ok; else
    t_fail "left: $(ls -A "$TD/tr/.dev" 2>&1); $(pgrep -af "$TD/tr/.dev/state")"
fi

t_begin "dev-target stop: the machine and its server are gone, the port is closed"
"$SRC/scripts/dev-target" stop "$TD"
rc=$?
ssh -F "$TD/ssh_config" -o ConnectTimeout=2 strata-dev true </dev/null >/dev/null 2>&1
ssh_rc=$?
if [ $rc -eq 0 ] && [ $ssh_rc -eq 255 ] && [ -z "$(left)" ] && [ ! -e "$TD/lab.pid" ]; then t_ok; else
    t_fail "stop $rc, ssh $ssh_rc, left: $(left | xargs -r ps -o pid=,args= -p)"
fi

t_begin "the host's /root/.ssh is as it was (the key went into the machine's overlay)"
if [ "$(ls -la /root/.ssh 2>&1 | md5sum)" = "$STATE_BEFORE" ]; then t_ok; else
    t_fail "$(ls -la /root/.ssh)"
fi

t_done
