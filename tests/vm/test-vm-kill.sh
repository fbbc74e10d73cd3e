#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# What killing leaves behind, for real, with guests of the vm suite's cached
# image that are killed within seconds of their start (no full boot):
# - a vm test (guarded-guest.sh: test-vm.sh's setup, vm_guard, a `vm start`
#   guest) killed as meson kills a test on timeout: SIGTERM to its process
#   group, SIGKILL half a second later when it is still there;
# - the same killed with SIGKILL at once: the reaper alone cleans up;
# - `strata vm run` killed with SIGKILL: its QEMU dies with it
#   (PR_SET_PDEATHSIG) and the next `vm run` removes the instance left.
# Each time: no qemu process, no instance file, socket or lock is left.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/lib.sh"
vm_test_setup python3 python3 setsid util-linux flock util-linux pgrep procps
t_tmpdir
drv_cleanup() {
    [ -n "${holder:-}" ] && kill "$holder" 2>/dev/null
    vm_kill_started "$T_TMP"
    t_cleanup
}
vm_guard "$T_TMP" drv_cleanup

# alive PID: the process exists and is not a zombie (a killed QEMU whose
# parent died is reparented, and reaped whenever its new parent gets to it).
alive() {
    [ -r "/proc/$1/stat" ] && ! sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'
}
# gone_within S PID: PID is gone (or a zombie) within S seconds.
gone_within() {
    gw=0
    while alive "$2"; do
        [ $gw -ge $(($1 * 10)) ] && return 1
        sleep 0.1
        gw=$((gw + 1))
    done
}
# left_in DIR: what is left of a case in DIR: processes whose command
# line names it, files below it.
left_in() {
    for p in $(pgrep -f -- "$1/"); do
        alive "$p" && echo "process $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-120)"
    done
    find "$1" -mindepth 1 2>/dev/null | head -20
}

if ! out=$("$STRATA" vm image build --vm-dir "$CACHE" --packages "$PACKAGES" "$IMG" 2>&1); then
    echo "Bail out! the image '$IMG' cannot be built: $(echo "$out" | tail -3)"
    exit 1
fi

# kill_guarded DIR HOW: runs guarded-guest.sh in a session of its own with
# TMPDIR=DIR, as meson does; once its guest's QEMU runs (its pid file) and
# has run for a second, kills the session's process group: HOW "meson"
# is meson's timeout (SIGTERM, then SIGKILL after 0.5 s), "kill" SIGKILL at
# once. Prints "QEMU_PID QEMU_SID CHILD_PID CHILD_STATUS".
kill_guarded() {
    python3 - "$1" "$2" "$STRATA_SOURCE_ROOT/tests/vm/guarded-guest.sh" "$IMG" <<'EOF'
import glob, os, signal, subprocess, sys, time
d, how, child, img = sys.argv[1:5]
env = dict(os.environ, TMPDIR=d, STRATA_VM_CACHE=os.environ["CACHE"])
log = open(os.path.join(os.path.dirname(d), os.path.basename(d) + ".log"), "w")
p = subprocess.Popen([child, img], env=env, start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=log, stderr=log)
qpid, end = 0, time.time() + 300
while not qpid and time.time() < end and p.poll() is None:
    for f in glob.glob(d + "/*/vm/instances/*/guarded/qemu.pid"):
        try:
            qpid = int(open(f).read().strip() or 0)
        except (OSError, ValueError):
            pass
    time.sleep(0.1)
if not qpid:
    print("0 0 %d none" % p.pid)
    sys.exit(0)
time.sleep(1)
try:
    sid = os.getsid(qpid)
except OSError:
    sid = 0
if how == "meson":
    os.killpg(p.pid, signal.SIGTERM)
    try:
        p.wait(timeout=0.5)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
else:
    os.killpg(p.pid, signal.SIGKILL)
p.wait()
print("%d %d %d %d" % (qpid, sid, p.pid, p.returncode))
EOF
}

export CACHE
mkdir -p "$T_TMP/meson" "$T_TMP/kill"
kill_guarded "$T_TMP/meson" meson >"$T_TMP/meson.res" 2>&1 &
pm=$!
kill_guarded "$T_TMP/kill" kill >"$T_TMP/kill.res" 2>&1 &
pk=$!

# `strata vm run` killed with SIGKILL while its guest boots.
R=$T_TMP/runkill/vm
vm_dir_over_cache "$CACHE" "$R"
"$STRATA" vm run --vm-dir "$R" "$IMG" -- sleep 600 >/dev/null 2>"$T_TMP/runkill.err" &
spid=$!
qpid=""
i=0
while [ -z "$qpid" ] && [ $i -lt 3000 ] && kill -0 $spid 2>/dev/null; do
    qpid=$(pgrep -P $spid qemu-system | head -1)
    sleep 0.1
    i=$((i + 1))
done
sleep 1
stale=$(ls "$R/runs" 2>/dev/null)
kill -KILL $spid
wait $spid
src=$?

wait $pm
wait $pk
for how in meson kill; do
    read -r q sid cpid crc <"$T_TMP/$how.res"
    case $how in
    meson) t_begin "a vm test killed as meson does on timeout (SIGTERM, SIGKILL 0.5 s later) while its guest boots leaves no qemu, instance file, socket or lock" ;;
    kill) t_begin "a vm test killed with SIGKILL at once while its guest boots: its reaper leaves no qemu, instance file, socket or lock" ;;
    esac
    echo "# $how: qemu $q (session $sid), test shell $cpid ended with $crc"
    if [ "${q:-0}" -eq 0 ]; then
        t_fail "no guest ran: $(tail -5 "$T_TMP/$how.res" "$T_TMP/$how.log" 2>/dev/null; find "$T_TMP/$how" -name start.out -exec tail -5 {} + 2>/dev/null)"
    elif [ "$sid" -eq "$cpid" ]; then
        t_fail "the guest's qemu $q was in the killed session $sid: nothing to reap"
    elif ! gone_within 15 "$q"; then
        t_fail "qemu $q still runs 15 s after the kill: $(left_in "$T_TMP/$how")"
    else
        # the reaper polls each second, then unmounts and removes
        i=0
        while [ -n "$(left_in "$T_TMP/$how")" ] && [ $i -lt 100 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        left=$(left_in "$T_TMP/$how")
        if [ -z "$left" ]; then t_ok; else t_fail "left: $left"; fi
    fi
done

t_begin "strata vm run killed with SIGKILL: its qemu dies with it (PR_SET_PDEATHSIG)"
if [ -z "$qpid" ]; then
    t_fail "no qemu started: $(tail -5 "$T_TMP/runkill.err")"
elif [ $src -ne 137 ]; then
    t_fail "vm run ended with $src before the kill: $(tail -5 "$T_TMP/runkill.err")"
elif ! gone_within 10 "$qpid"; then
    t_fail "qemu $qpid still runs 10 s after strata was killed"
else
    t_ok
fi

t_begin "the next vm run removes the instance the killed one left, not a kept or a live one"
# A dir --keep kept, and one whose lock is held (a run that lives).
mkdir -p "$R/runs/$IMG-kept00" "$R/runs/$IMG-live00"
: >"$R/runs/$IMG-kept00/kept"
: >"$R/runs/$IMG-kept00/lock"
flock "$R/runs/$IMG-live00/lock" sleep 60 &
holder=$!
i=0
while flock -n "$R/runs/$IMG-live00/lock" true 2>/dev/null && [ $i -lt 50 ]; do
    sleep 0.1
    i=$((i + 1))
done
before=$(ls "$R/runs" | tr '\n' ' ')
out=$("$STRATA" vm run --vm-dir "$R" nosuch -- true 2>&1)
rc=$?
after=$(ls "$R/runs" | tr '\n' ' ')
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
holder=""
if [ -n "$stale" ] && echo " $before " | grep -q " $stale " && [ $rc -eq 1 ] &&
    [ "$after" = "$IMG-kept00 $IMG-live00 " ]; then
    t_ok
else
    t_fail "stale='$stale' before='$before' after='$after' rc=$rc: $out"
fi

t_done
