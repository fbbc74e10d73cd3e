#!/bin/sh
# strata worker: the default plan's mounts (types, flags, limits), isolation
# between workers running at once, 8 workers compiling at once, teardown
# that leaves nothing (daemons, busy mounts, SIGKILL of strata + clean), and
# 200 setup/run/teardown cycles with the mount table and the process list
# the same before and after.
. "$(dirname "$0")/lib.sh"
: "${STRATA:?STRATA must name the strata binary}"
need_root
need_program unshare util-linux
need_program nsenter util-linux
need_program fallocate util-linux
need_program cc gcc

# Our own mount namespace (private) and pid namespace with its own /proc:
# the mount table and the process list then hold only what this test and
# the workers it starts make, while other tests run beside it.
if [ -z "${WORKER_TEST_OWN_NS:-}" ]; then
    WORKER_TEST_OWN_NS=1 exec unshare -m -p -f --mount-proc --propagation private "$0" "$@"
fi
t_tmpdir
R=$T_TMP/root
export STRATA_WORKER_ROOT=$R
# A marker no other process has in its command line (sleep takes it).
M="9$$"

# this script's command name, as ps shows it (15 characters)
SELF_COMM=$(basename "$0" | cut -c1-15)
procs() {
    # pid and command of every process but this script's own subshells
    # and helpers; helpers by their command name (comm): one caught between
    # fork and exec, or exited and not yet reaped, shows no arguments
    ps -e -o pid=,comm=,args= | awk -v self="$SELF_COMM" \
        '$2 != "ps" && $2 != "grep" && $2 != "sort" && $2 != "awk" && $2 != self { $2 = ""; print }' |
        grep -v -F -e "$0" | sort
}
cat /proc/self/mountinfo >"$T_TMP/mounts.before"
procs >"$T_TMP/procs.before"

# same_host: no mount added, no process added, no slot left.
same_host() {
    added=$(grep -vxF -f "$T_TMP/mounts.before" /proc/self/mountinfo)
    if [ -n "$added" ]; then
        echo "# mounts added:"
        echo "$added" | sed 's/^/# /'
        return 1
    fi
    i=0
    while [ "$(procs | grep -vxF -f "$T_TMP/procs.before" | grep -c .)" -gt 0 ] && [ $i -lt 40 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    left=$(procs | grep -vxF -f "$T_TMP/procs.before")
    if [ -n "$left" ]; then
        echo "# processes added:"
        echo "$left" | sed 's/^/# /'
        return 1
    fi
    if [ -n "$(ls "$R/slots" 2>/dev/null)" ]; then
        echo "# slots left: $(ls "$R/slots")"
        return 1
    fi
    return 0
}

wait_for() {
    i=0
    while [ ! -e "$1" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
    [ -e "$1" ]
}

mkdir -p "$R/xports"

t_begin "plan --default: a plan file that worker plan accepts"
"$STRATA" worker plan --default >"$T_TMP/default.json"
n=$("$STRATA" worker plan "$T_TMP/default.json" --slot 2 | grep -c '"type"')
[ "$n" -ge 24 ] && "$STRATA" worker plan "$T_TMP/default.json" | grep -q "\"$R/packages\"" &&
    t_ok || t_fail "$n operations"

# Every mount of the default plan, from inside: "path fstype rw|ro".
cat >"$R/xports/mounts.sh" <<'EOF'
#!/bin/sh
awk '{ for (i = 7; $i != "-"; i++); split($6, o, ","); print $5, $(i + 1), o[1] }' /proc/self/mountinfo
EOF
t_begin "run: every mount of the default plan with its type and flags"
out=$("$STRATA" worker run -- sh /xports/mounts.sh 2>&1); rc=$?
expected="/ tmpfs rw
/bin * ro
/sbin * ro
/lib * ro
/lib64 * ro
/usr/bin * ro
/usr/sbin * ro
/usr/lib * ro
/usr/libexec * ro
/usr/include * ro
/usr/share * ro
/run tmpfs rw
/etc overlay rw
/tmp tmpfs rw
/var/tmp tmpfs rw
/usr/local tmpfs rw
/construction tmpfs rw
/proc proc rw
/dev tmpfs rw
/dev/pts devpts rw
/dev/shm tmpfs rw
/sys sysfs ro
/packages * rw
/distfiles * rw
/options * rw
/xports * ro"
bad=""
for p in /usr/libexec /usr/include /lib64; do
    [ -e "$p" ] || expected=$(echo "$expected" | grep -v "^$p ")
done
echo "$expected" | while read -r path type flags; do
    echo "$out" | awk -v p="$path" -v t="$type" -v f="$flags" \
        '$1 == p && (t == "*" || $2 == t) && $3 == f { found = 1 } END { exit !found }' ||
        echo "missing: $path $type $flags"
done >"$T_TMP/missing"
n_exp=$(echo "$expected" | wc -l)
n_got=$(echo "$out" | wc -l)
[ $rc -eq 0 ] && [ ! -s "$T_TMP/missing" ] && [ "$n_got" -eq "$n_exp" ] && same_host &&
    t_ok || t_fail "rc=$rc, $n_got mounts of $n_exp: $(cat "$T_TMP/missing") $out"

t_begin "run: /dev has null zero full random urandom tty as the host has them (type, numbers, mode, owner)"
devs='for d in null zero full random urandom tty; do stat -c "%n %F %t:%T %a %u:%g" /dev/$d; done'
out=$("$STRATA" worker run -- sh -c "$devs" 2>&1); rc=$?
[ $rc -eq 0 ] && [ "$out" = "$(sh -c "$devs")" ] && same_host && t_ok || t_fail "rc=$rc: $out"

t_begin "run: read-only binds refuse writes with EROFS"
out=$("$STRATA" worker run -- sh -c '
    for d in /bin /sbin /lib /usr/bin /usr/sbin /usr/lib /usr/share /xports; do
        touch $d/strata-worker-test 2>&1 | grep -q "Read-only file system" || echo "writable: $d"
    done
    [ -d /usr/include ] && { touch /usr/include/x 2>&1 | grep -q "Read-only" || echo "writable: /usr/include"; }
    touch /sys/x 2>&1 | grep -q "Read-only" || echo "writable: /sys"
    echo done' 2>&1)
[ "$out" = done ] && same_host && t_ok || t_fail "$out"

t_begin "run: /construction refuses past its size; the scratch dirs are writable"
out=$("$STRATA" worker run -- sh -c '
    fallocate -l 600M /construction/big 2>&1 | grep -q "No space left" || echo "no limit"
    fallocate -l 100M /construction/ok || echo "cannot use /construction"
    for d in /tmp /var/tmp /run /usr/local /packages /distfiles /options; do
        echo x >$d/w || echo "not writable: $d"
    done
    echo done' 2>&1)
rm -f "$R/packages/w" "$R/distfiles/w" "$R/options/w"
[ "$out" = done ] && same_host && t_ok || t_fail "$out"

t_begin "run: /proc shows only the worker's processes; no host /home, /root; no network"
sleep "${M}0" &
host_sleep=$!
out=$("$STRATA" worker run -- sh -c '
    # init, sh, and the subshell, ls and wc of the count
    n=$(ls -d /proc/[0-9]* | wc -l)
    [ "$n" -le 5 ] || echo "$n processes"
    p="sleep '"${M}"'"; p="${p}0"
    grep -qs "$p" /proc/[0-9]*/cmdline && echo "host process visible"
    tr "\0" " " </proc/1/cmdline | grep -q "strata worker run" || echo "pid 1 is not the worker init"
    [ -e /home ] && echo "/home visible"
    [ -e /root ] && echo "/root visible"
    [ "$(grep -c : /proc/net/dev)" -eq 1 ] || echo "network: $(cat /proc/net/dev)"
    echo secret >/etc/strata-worker-'"$M"'
    echo done' 2>&1)
kill "$host_sleep"; wait "$host_sleep" 2>/dev/null
[ "$out" = done ] && [ ! -e "/etc/strata-worker-$M" ] && same_host && t_ok || t_fail "$out"

t_begin "run: CMD's status, 128+N for a signal, 124 on timeout, 127 when it cannot run"
"$STRATA" worker run -- sh -c 'exit 3'; a=$?
"$STRATA" worker run -- sh -c 'kill -TERM $$'; b=$?
"$STRATA" worker run --timeout 0.5 -- sh -c "sleep ${M}1 & sleep ${M}1"; c=$?
"$STRATA" worker run -- /nonexistent-$M 2>/dev/null; d=$?
[ $a -eq 3 ] && [ $b -eq 143 ] && [ $c -eq 124 ] && [ $d -eq 127 ] && same_host &&
    t_ok || t_fail "rc=$a $b $c $d"

t_begin "run: the plan's build user runs CMD, with its own hostname per slot"
sed 's/"network": "none",/"network": "none", "user": {"uid": 65534, "gid": 65534},/' \
    "$T_TMP/default.json" >"$T_TMP/user.json"
out=$("$STRATA" worker run --plan "$T_TMP/user.json" --slot 5 -- sh -c \
    'id -u; id -g; hostname; echo x >/construction/f && echo written; touch /packages/x 2>/dev/null || echo no-packages' 2>&1)
[ "$out" = "65534
65534
strata-worker-5
written
no-packages" ] && same_host && t_ok || t_fail "$out"

t_begin "run: --bind replaces the plan's /xports; a busy slot is 75"
mkdir -p "$T_TMP/src"
echo hello >"$T_TMP/src/file"
out=$("$STRATA" worker run --bind "$T_TMP/src:/xports:ro" -- sh -c 'cat /xports/file; touch /xports/x 2>/dev/null || echo ro')
"$STRATA" worker run --slot 1 -- sh -c "touch /packages/busy-ready; sleep ${M}2" &
pid=$!
wait_for "$R/packages/busy-ready"
"$STRATA" worker run --slot 1 -- true 2>"$T_TMP/err"; rc=$?
kill -TERM $pid; wait $pid
rm -f "$R/packages/busy-ready"
[ "$out" = "hello
ro" ] && [ $rc -eq 75 ] && grep -q "slot 1" "$T_TMP/err" && same_host && t_ok ||
    t_fail "rc=$rc: $out $(cat "$T_TMP/err")"

t_begin "isolation: workers at once cannot see each other's /tmp, /construction, processes, nor signal them"
rm -f "$R/packages/a.ready" "$R/packages/b.done" "$R/packages/a.result"
"$STRATA" worker run --slot 1 -- sh -c "
    echo s >/tmp/a-secret; echo s >/construction/a-secret
    sleep ${M}3 & s=\$!
    touch /packages/a.ready
    while [ ! -e /packages/b.done ]; do sleep 0.05; done
    kill -0 \$s && [ -e /tmp/a-secret ] && echo alive >/packages/a.result
    kill \$s" &
a_pid=$!
wait_for "$R/packages/a.ready"
out=$("$STRATA" worker run --slot 2 -- sh -c "
    [ -e /tmp/a-secret ] && echo 'sees /tmp'
    [ -e /construction/a-secret ] && echo 'sees /construction'
    p='sleep ${M}'; p=\"\${p}3\"
    grep -qs \"\$p\" /proc/[0-9]*/cmdline && echo 'sees the process'
    kill -KILL -1 2>/dev/null
    echo done" 2>&1)
touch "$R/packages/b.done"
wait $a_pid; rc=$?
[ "$out" = done ] && [ $rc -eq 0 ] && [ "$(cat "$R/packages/a.result" 2>/dev/null)" = alive ] &&
    same_host && t_ok || t_fail "rc=$rc: $out"
rm -f "$R/packages/a.ready" "$R/packages/b.done" "$R/packages/a.result"

t_begin "pool: 8 workers at once compile a C program from /xports into /packages and run it"
cat >"$R/xports/square.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv)
{
        long n = argc > 1 ? atol(argv[1]) : 0;
        printf("%ld\n", n * n);
        return 0;
}
EOF
: >"$T_TMP/jobs"
for i in 1 2 3 4 5 6 7 8; do
    echo "cc -O2 -o /packages/square-$i /xports/square.c && /packages/square-$i $((i + 10)) >/packages/out-$i" >>"$T_TMP/jobs"
done
out=$("$STRATA" worker pool --workers 8 --jobs "$T_TMP/jobs" 2>&1); rc=$?
bad=""
for i in 1 2 3 4 5 6 7 8; do
    [ "$(cat "$R/packages/out-$i" 2>/dev/null)" = "$(((i + 10) * (i + 10)))" ] || bad="$bad $i"
done
rm -f "$R"/packages/square-* "$R"/packages/out-*
[ $rc -eq 0 ] && [ -z "$bad" ] && echo "$out" | grep -q "pool: 8 of 8 jobs passed" &&
    [ "$(echo "$out" | grep -c ': ok, ')" -eq 8 ] && same_host && t_ok ||
    t_fail "rc=$rc, wrong:$bad: $out"

t_begin "pool: one failing job makes the pool fail, with its status"
printf 'true\nexit 7\n' >"$T_TMP/jobs2"
out=$("$STRATA" worker pool --workers 2 --jobs "$T_TMP/jobs2" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "FAILED (status 7)" &&
    echo "$out" | grep -q "pool: 1 of 2 jobs passed, 1 failed" && same_host && t_ok ||
    t_fail "rc=$rc: $out"

t_begin "teardown: a daemon holding a file open in /construction leaves nothing"
err=$("$STRATA" -v worker run -- sh -c "setsid sleep ${M}4 >/construction/held 2>&1 </dev/null & exit 0" 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$err" | grep -q " 0 detached" && same_host && t_ok || t_fail "rc=$rc: $err"

t_begin "teardown: a mount kept busy from outside is retried, then detached, and said so"
# A root that is the host's own (not unmounted), so that only /tmp
# is held by the process below (its programs come from the root).
cat >"$T_TMP/busy.json" <<EOF
{"mounts": [{"type": "bind", "src": "/", "dest": "/", "flags": ["ro"]},
            {"type": "tmpfs", "dest": "/tmp"},
            {"type": "proc", "dest": "/proc"},
            {"type": "bind", "src": "$R/packages", "dest": "/mnt"}]}
EOF
mkdir -p "$R/packages"
rm -f "$R/packages/entered"
"$STRATA" worker run --slot 3 --plan "$T_TMP/busy.json" -- \
    sh -c 'while [ ! -e /mnt/entered ]; do sleep 0.05; done' 2>"$T_TMP/err" &
pid=$!
i=0
while ! init=$("$STRATA" worker list --json | awk -F': ' '/"init"/ { gsub(",", "", $2); if ($2 > 0) print $2 }' | grep .) &&
    [ $i -lt 200 ]; do
    sleep 0.05
    i=$((i + 1))
done
# A process of ours in the worker's mount namespace, its cwd in /tmp.
nsenter -t "$init" -m sh -c "cd /tmp && touch /mnt/entered && exec sleep ${M}5" &
holder=$!
wait $pid; rc=$?
kill $holder; wait $holder 2>/dev/null
rm -f "$R/packages/entered"
[ $rc -eq 0 ] && grep -q "1 mount(s) stayed busy after 10 tries and were detached (MNT_DETACH), first '/tmp'" "$T_TMP/err" && same_host &&
    t_ok || t_fail "rc=$rc: $(cat "$T_TMP/err")"

t_begin "plan: a missing bind source fails naming the operation and the path; nothing stays"
cat >"$T_TMP/missing.json" <<EOF
{"mounts": [{"type": "tmpfs", "dest": "/"},
            {"type": "proc", "dest": "/proc", "flags": ["create-dest"]},
            {"type": "bind", "src": "$T_TMP/nope-$M", "dest": "/src", "flags": ["create-dest"]}]}
EOF
err=$("$STRATA" worker run --plan "$T_TMP/missing.json" -- true 2>&1); rc=$?
[ $rc -eq 125 ] && echo "$err" | grep -q "bind '$T_TMP/nope-$M' on '/src' (step 3 of 3)" &&
    echo "$err" | grep -q "No such file" && same_host && t_ok || t_fail "rc=$rc: $err"

t_begin "plan: a malformed plan is refused naming the file, the operation and the field"
cat >"$T_TMP/bad.json" <<'EOF'
{"mounts": [{"type": "tmpfs", "dest": "/"},
            {"type": "bind", "source": "/usr", "dest": "/usr"}]}
EOF
err=$("$STRATA" worker run --plan "$T_TMP/bad.json" -- true 2>&1); rc=$?
err2=$("$STRATA" worker pool --workers 2 --plan "$T_TMP/bad.json" -- true 2>&1); rc2=$?
[ $rc -eq 125 ] && [ $rc2 -eq 125 ] &&
    echo "$err" | grep -q "'$T_TMP/bad.json': operation 2, field \"source\": unknown field" &&
    echo "$err2" | grep -q "operation 2, field \"source\"" && same_host && t_ok ||
    t_fail "rc=$rc $rc2: $err / $err2"

t_begin "list shows a running slot by its marker; SIGKILL of strata, then clean, leaves nothing"
rm -f "$R/packages/k.ready"
"$STRATA" worker run --slot 4 -- sh -c "sleep ${M}6 & touch /packages/k.ready; wait" &
pid=$!
wait_for "$R/packages/k.ready"
list=$("$STRATA" worker list --json)
kill -KILL $pid
wait $pid; rc=$?
stale=$("$STRATA" worker list)
clean=$("$STRATA" worker clean 2>&1)
after=$("$STRATA" worker list --json)
rm -f "$R/packages/k.ready"
echo "$list" | grep -q '"state": "in-use"' && echo "$list" | grep -q '"slot": 4' &&
    echo "$list" | grep -Eq '"mounts": (2[4-9]|3[0-9])' && [ $rc -eq 137 ] &&
    echo "$stale" | grep -q "^4 *stale" && echo "$clean" | grep -q "slot 4: cleaned" &&
    [ "$after" = "[]" ] && same_host && t_ok ||
    t_fail "rc=$rc: $list / $stale / $clean / $after"

t_begin "clean --all: a slot in use is killed and cleaned; without --all it is left alone"
rm -f "$R/packages/c.ready"
"$STRATA" worker run --slot 6 -- sh -c "touch /packages/c.ready; sleep ${M}7" &
pid=$!
wait_for "$R/packages/c.ready"
a=$("$STRATA" worker clean 2>&1)
b=$("$STRATA" worker clean --all 2>&1)
wait $pid; rc=$?
rm -f "$R/packages/c.ready"
echo "$a" | grep -q "slot 6: in use" && echo "$b" | grep -q "slot 6: cleaned, its worker killed" &&
    [ $rc -eq 137 ] && same_host && t_ok || t_fail "rc=$rc: $a / $b"

t_begin "200 setup/run/teardown cycles: zero mounts and zero processes left"
fails=0
i=0
while [ $i -lt 200 ]; do
    "$STRATA" worker run -- true || fails=$((fails + 1))
    i=$((i + 1))
done
[ $fails -eq 0 ] && same_host && t_ok || t_fail "$fails runs failed"

t_begin "usage errors are 2"
"$STRATA" worker run 2>/dev/null; a=$?
"$STRATA" worker pool -- true 2>/dev/null; b=$?
"$STRATA" worker list --all 2>/dev/null; c=$?
"$STRATA" worker bogus 2>/dev/null; d=$?
"$STRATA" worker run --bind nope -- true 2>/dev/null; e=$?
[ $a -eq 2 ] && [ $b -eq 2 ] && [ $c -eq 2 ] && [ $d -eq 2 ] && [ $e -eq 2 ] && t_ok ||
    t_fail "$a $b $c $d $e"

t_done
