#!/bin/sh
# strata lab run / lab test and overlayfs-init: exit statuses, isolation, and
# a host left exactly as it was (mount table and processes) after every run,
# including timeouts and commands that leave daemons behind.
. "$(dirname "$0")/lib.sh"
: "${STRATA:?STRATA must name the strata binary}"
: "${OVERLAYFS_INIT:?OVERLAYFS_INIT must name the overlayfs-init binary}"
need_root
need_program s6-svscan s6
need_program unshare util-linux
need_program busybox busybox-static

# The mount table is compared before and after each run, in a mount
# namespace of our own (private): mounts made by tests running in parallel
# cannot show up in it, while anything strata leaked would. (Their removals
# can: removing a mount point detaches its copies in every namespace; so a
# mount that vanished is not a leak, a mount that appeared is.)
if [ -z "${LAB_TEST_OWN_NS:-}" ]; then
    LAB_TEST_OWN_NS=1 exec unshare -m --propagation private "$0" "$@"
fi
t_tmpdir

# A marker no other process on the host has in its command line.
M="9$$"
mounts_before=$T_TMP/mounts.before
cat /proc/self/mountinfo >"$mounts_before"

# same_host: no mount was added to the table of the start and no process
# with the marker is left.
same_host() {
    added=$(grep -vxF -f "$mounts_before" /proc/self/mountinfo)
    if [ -n "$added" ]; then
        echo "# mounts added:"
        echo "$added" | sed 's/^/# /'
        return 1
    fi
    if pgrep -f "sleep $M" >/dev/null; then
        echo "# processes left: $(pgrep -af "sleep $M")"
        return 1
    fi
    return 0
}

for c in 0 1 3 77 255; do
    t_begin "lab run: the machine's status is CMD's ($c)"
    "$STRATA" lab run -- sh -c "exit $c"; rc=$?
    [ $rc -eq $c ] && same_host && t_ok || t_fail "rc=$rc"
done

t_begin "lab run: a CMD killed by SIGKILL gives 137, by SIGTERM 143"
"$STRATA" lab run -- sh -c 'kill -KILL $$'; a=$?
"$STRATA" lab run -- sh -c 'kill -TERM $$'; b=$?
[ $a -eq 137 ] && [ $b -eq 143 ] && same_host && t_ok || t_fail "rc=$a, $b"

for c in 0 1 3 77 255; do
    t_begin "lab test: s6 test-runner gives CMD's status ($c)"
    out=$("$STRATA" lab test -- sh -c "echo in-runner; exit $c" 2>&1); rc=$?
    [ $rc -eq $c ] && echo "$out" | grep -q in-runner && same_host && t_ok ||
        t_fail "rc=$rc: $out"
done

t_begin "lab test: a CMD killed by a signal gives 128+N (KILL, TERM)"
"$STRATA" lab test -- sh -c 'kill -KILL $$'; a=$?
"$STRATA" lab test -- sh -c 'kill -TERM $$'; b=$?
[ $a -eq 137 ] && [ $b -eq 143 ] && same_host && t_ok || t_fail "rc=$a, $b"

t_begin "lab test: CMD runs under s6-svscan as the test-runner service"
out=$("$STRATA" lab test -- sh -c 'cat /proc/1/comm /proc/$PPID/comm; s6-svstat /etc/s6/test-runner' 2>&1)
rc=$?
echo "$out" | grep -q '^s6-supervise$' && echo "$out" | grep -q '^up ' && [ $rc -eq 0 ] &&
    t_ok || t_fail "rc=$rc: $out"

t_begin "lab test --services: the runner's files come from the given dir"
cp -a "$STRATA_SOURCE_ROOT/tests/image/s6" "$T_TMP/services"
printf '#!/bin/sh\nexit 42\n' >"$T_TMP/services/.s6-svscan/finish"
"$STRATA" lab test --services "$T_TMP/services" -- true; a=$?
err=$("$STRATA" lab test --services "$T_TMP/nope" -- true 2>&1); b=$?
[ $a -eq 42 ] && [ $b -eq 125 ] && echo "$err" | grep -q "'$T_TMP/nope/test-runner/run'" &&
    same_host && t_ok || t_fail "rc=$a $b: $err"

t_begin "lab run/test --chdir: CMD runs in the given dir; arguments keep their quotes"
a=$("$STRATA" lab run --chdir /etc -- pwd)
# (only the marked lines: the machine's console also carries what the
# services of the machine the suite runs in print, which a test running
# beside this one may have added to its /etc/s6)
b=$("$STRATA" lab test --chdir /usr -- sh -c 'echo "<$(pwd)>"; echo "<$1>"' sh "it's a 'test'" 2>&1 |
    grep '^<')
"$STRATA" lab run --chdir /nonexistent-$M -- true 2>/dev/null; c=$?
[ "$a" = /etc ] && [ "$b" = "</usr>
<it's a 'test'>" ] && [ $c -eq 125 ] && t_ok || t_fail "$a / $b / $c"

t_begin "lab run: orphans that exit are reaped by the machine's PID 1 (no zombies)"
out=$("$STRATA" lab run -- sh -c '
    for i in 1 2 3 4 5; do (sleep 0.05 &); done
    # wait until the orphans have exited
    n=0; while ls /proc/[0-9]*/cmdline >/dev/null 2>&1 && grep -qs "^sleep" /proc/[0-9]*/cmdline && [ $n -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
    sleep 0.1
    grep -ls "^State:.*Z" /proc/[0-9]*/status | wc -l; ls -d /proc/[0-9]* | wc -l')
# no zombie; left: PID 1, sh, and the ls/wc of the last line at most
[ "$(echo "$out" | head -1)" = 0 ] && [ "$(echo "$out" | tail -1)" -le 4 ] && t_ok || t_fail "$out"

t_begin "lab run: CMD is pid 2 under the machine's own init, with its hostname"
out=$("$STRATA" lab run --hostname lab-it-$$ -- sh -c 'echo $$; hostname')
[ "$out" = "2
lab-it-$$" ] && [ "$(hostname)" != "lab-it-$$" ] && t_ok || t_fail "$out"

t_begin "lab run --hostname X: the machine's /etc/hostname says X, the host's is unchanged"
host_before=$(cat /etc/hostname 2>/dev/null)
out=$("$STRATA" lab run --hostname lab-etc-$$ -- cat /etc/hostname 2>&1)
[ "$out" = "lab-etc-$$" ] && [ "$(cat /etc/hostname 2>/dev/null)" = "$host_before" ] &&
    t_ok || t_fail "$out"

t_begin "lab run --hostname -- CMD: '--' is not a hostname (usage error)"
err=$("$STRATA" lab run --hostname -- true 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q "hostname" && t_ok || t_fail "rc=$rc: $err"

t_begin "lab run --hostname rejects what sethostname would take but a hostname is not"
ok=1
for h in "-x" "a b" "a/b" ".a" "a..b"; do
    "$STRATA" lab run --hostname "$h" -- true >/dev/null 2>&1; rc=$?
    [ $rc -eq 2 ] || { ok=0; echo "# '$h': rc=$rc"; }
done
[ $ok = 1 ] && t_ok || t_fail

t_begin "lab run --ephemeral: system and state on tmpfs, nothing reaches the host"
out=$("$STRATA" lab run --ephemeral -- sh -c "touch /etc/strata-it-$M && stat -f -c %T /data/system /data/state && ls /data/system")
[ ! -e /etc/strata-it-$M ] && echo "$out" | grep -c '^tmpfs$' | grep -qx 2 &&
    echo "$out" | grep -qx upper && same_host && t_ok || t_fail "$out"

t_begin "lab run --timeout: 124, everything in the machine killed, mounts gone"
"$STRATA" lab run --timeout 0.5 -- sh -c "sleep $M & sleep $M"; rc=$?
[ $rc -eq 124 ] && same_host && t_ok || t_fail "rc=$rc"

t_begin "lab run: a daemon CMD leaves behind is killed with the machine"
"$STRATA" lab run -- sh -c "setsid sleep $M >/dev/null 2>&1 </dev/null & exit 0"; rc=$?
[ $rc -eq 0 ] && same_host && t_ok || t_fail "rc=$rc"

t_begin "lab run: SIGTERM to strata reaches CMD (its trap sets the status)"
mkdir -p "$T_TMP/share"
"$STRATA" lab run --bind "$T_TMP/share:/share" -- sh -c \
    'trap "exit 42" TERM; touch /share/ready; while :; do sleep 0.05; done' &
pid=$!
i=0
while [ ! -e "$T_TMP/share/ready" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
kill -TERM $pid
wait $pid; rc=$?
[ $rc -eq 42 ] && same_host && t_ok || t_fail "rc=$rc"

t_begin "lab run: SIGKILL of strata itself takes the whole machine down"
rm -f "$T_TMP/share/ready"
"$STRATA" lab run --bind "$T_TMP/share:/share" -- sh -c \
    "sleep $M & touch /share/ready; wait" &
pid=$!
i=0
while [ ! -e "$T_TMP/share/ready" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
kill -KILL $pid
wait $pid; rc=$?
# The kernel tears the namespace down after its init got SIGKILL too.
i=0
while pgrep -f "sleep $M" >/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
[ $rc -eq 137 ] && same_host && t_ok || t_fail "rc=$rc"

t_begin "lab run: the next ephemeral machine removes the dir the killed one left"
left=$(ls -d /dev/shm/strata-lab-*-$pid-* /tmp/strata-lab-*-$pid-* 2>/dev/null)
"$STRATA" lab run -- true
[ -n "$left" ] && [ ! -e "$left" ] && t_ok || t_fail "left: '$left'"

t_begin "lab run --data: a second machine of the same data dir exits 75, naming the first"
D3=$T_TMP/busy
mkdir -p "$D3"
rm -f "$T_TMP/share/ready"
"$STRATA" lab run --data "$D3" --bind "$T_TMP/share:/share" -- sh -c \
    'touch /share/ready; while [ -e /share/ready ]; do sleep 0.05; done' &
pid=$!
i=0
while [ ! -e "$T_TMP/share/ready" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
err=$("$STRATA" lab run --data "$D3" -- true 2>&1); a=$?
err2=$("$OVERLAYFS_INIT" --data "$D3" -- true 2>&1); b=$?
rm -f "$T_TMP/share/ready"
wait $pid; c=$?
"$STRATA" lab run --data "$D3" -- true; d=$?
[ $a -eq 75 ] && [ $b -eq 75 ] && [ $c -eq 0 ] && [ $d -eq 0 ] &&
    echo "$err" | grep -q "the machine of '$D3' is running (pid $pid, strata lab run)" &&
    echo "$err2" | grep -q "is running" && same_host && t_ok ||
    t_fail "rc=$a $b $c $d: $err / $err2"

t_begin "lab run --bind: rw binds write through, :ro binds refuse writes"
mkdir -p "$T_TMP/rw" "$T_TMP/ro"
"$STRATA" lab run --bind "$T_TMP/rw:/mnt/rw" --bind "$T_TMP/ro:/mnt/ro:ro" -- sh -c \
    'echo hi >/mnt/rw/f && ! touch /mnt/ro/f 2>/dev/null'; rc=$?
[ $rc -eq 0 ] && [ "$(cat "$T_TMP/rw/f")" = hi ] && [ ! -e "$T_TMP/ro/f" ] && t_ok || t_fail "rc=$rc"

t_begin "lab run --net none: only a loopback, and it is up"
out=$("$STRATA" lab run --net none -- sh -c 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags')
[ "$(echo "$out" | head -1)" = lo ] && [ "$(echo "$out" | wc -l)" -eq 3 ] &&
    [ $(($(echo "$out" | tail -1) & 1)) -eq 1 ] && t_ok || t_fail "$out"

t_begin "lab run: /sys/fs/cgroup has no mount unless --cgroup host, then the host's trees"
cg='$5 ~ "^/sys/fs/cgroup(/|$)" { n++ } END { print n + 0 }'
host_cg=$(awk "$cg" /proc/self/mountinfo)
none=$("$STRATA" lab run -- awk "$cg" /proc/self/mountinfo)
with=$("$STRATA" lab run --cgroup host -- awk "$cg" /proc/self/mountinfo)
[ "$none" = 0 ] && [ "$with" = "$host_cg" ] && same_host && t_ok ||
    t_fail "without: $none, with --cgroup host: $with, the host: $host_cg"

t_begin "lab run: a missing command exits 127 and names it"
err=$("$STRATA" lab run -- no-such-command-$M 2>&1); rc=$?
[ $rc -eq 127 ] && echo "$err" | grep -q "cannot execute 'no-such-command-$M'" && same_host &&
    t_ok || t_fail "rc=$rc: $err"

t_begin "lab run: a missing base exits 125, names the step and the path"
err=$("$STRATA" lab run --base /nonexistent-$M -- true 2>&1); rc=$?
[ $rc -eq 125 ] && echo "$err" | grep -q "cannot mount overlay on '/'.*'/nonexistent-$M'" &&
    same_host && t_ok || t_fail "rc=$rc: $err"

t_begin "lab run: usage errors exit 2"
ok=1
for args in "--data /x --ephemeral -- true" "--" "--bind nocolon -- true" \
    "--timeout -1 -- true" "--net bogus -- true" "--bind /tmp:rel -- true" \
    "--cgroup bogus -- true"; do
    # shellcheck disable=SC2086
    "$STRATA" lab run $args >/dev/null 2>&1
    rc=$?
    [ $rc -eq 2 ] || { ok=0; echo "# '$args' -> $rc"; }
done
[ $ok = 1 ] && t_ok || t_fail

t_begin "lab run --dry-run --json: the machine plan as data"
"$STRATA" lab run --dry-run --json -- true | python3 -c '
import json, sys
ops = json.load(sys.stdin)
types = [o["type"] for o in ops]
root = [o for o in ops if o["type"] == "overlay" and o["dest"] == "/"]
assert len(root) == 1 and root[0]["lowerdirs"] == ["/"], root
for d in ("/dev", "/proc", "/sys", "/run", "/data"):
    assert any(o["dest"] == d for o in ops), d
' && same_host && t_ok || t_fail

t_begin "lab run: /tmp is a fresh tmpfs where an overlay can have its upper dir"
out=$("$STRATA" lab run -- sh -c 'stat -f -c %T /tmp; ls -A /tmp | wc -l; mkdir /tmp/l /tmp/u /tmp/w /tmp/m && mount -t overlay overlay -o lowerdir=/tmp/l,upperdir=/tmp/u,workdir=/tmp/w /tmp/m && echo mounted')
[ "$out" = "tmpfs
0
mounted" ] && same_host && t_ok || t_fail "$out"

t_begin "lab run --data: more layers than an overlay stacks is a clear error"
mkdir -p "$T_TMP/many/system/migrations"
python3 -c '
import json, sys
layers = [{"id": "20260101-%03d_l" % i, "dir": "20260101-%03d_l" % i, "migrations": ["20260101-%03d_l" % i],
           "applied_at": 0, "duration_ms": 0, "changes": {"A": 0, "M": 0, "D": 0, "R": 0}} for i in range(600)]
json.dump({"version": 1, "layers": layers, "state_paths": [], "rolled_back": []}, open(sys.argv[1], "w"))
' "$T_TMP/many/system/migrations/metadata.json"
err=$("$STRATA" lab run --data "$T_TMP/many" -- true 2>&1); rc=$?
[ $rc -eq 125 ] && echo "$err" | grep -q "600 layers, an overlay stacks at most 499; squash them" &&
    same_host && t_ok || t_fail "rc=$rc: $err"

# overlayfs-init, as a plain process (it makes its own namespaces).
D=$T_TMP/data
mkdir -p "$D"

t_begin "overlayfs-init: --system-tmpfs machine runs CMD with /data bound"
out=$("$OVERLAYFS_INIT" --data "$D" --system-tmpfs -- sh -c 'echo $$; stat -f -c %T /data/system; ls /data')
rc=$?
[ $rc -eq 0 ] && [ "$(echo "$out" | head -1)" = 2 ] && echo "$out" | grep -qx tmpfs &&
    echo "$out" | grep -qx state && same_host && t_ok || t_fail "rc=$rc: $out"

t_begin "overlayfs-init: CMD's status is the machine's (3, signal 9)"
"$OVERLAYFS_INIT" --data "$D" --system-tmpfs -- sh -c 'exit 3'; a=$?
"$OVERLAYFS_INIT" --data "$D" --system-tmpfs -- sh -c 'kill -9 $$'; b=$?
[ $a -eq 3 ] && [ $b -eq 137 ] && same_host && t_ok || t_fail "rc=$a, $b"

t_begin "overlayfs-init: a missing data dir fails in step 2, naming it"
err=$("$OVERLAYFS_INIT" --data "$T_TMP/nope" -- true 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$err" | grep -q "step 2: .*'$T_TMP/nope'" && t_ok || t_fail "rc=$rc: $err"

t_begin "overlayfs-init: malformed metadata fails in step 3, naming the file; nothing left"
mkdir -p "$T_TMP/bad/system/migrations"
echo '{"version": 1, "layers": [' >"$T_TMP/bad/system/migrations/metadata.json"
err=$("$OVERLAYFS_INIT" --data "$T_TMP/bad" -- true 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$err" | grep -q "step 3: .*metadata.json" && same_host && t_ok ||
    t_fail "rc=$rc: $err"

t_begin "overlayfs-init: a missing CMD exits 127 and names it"
err=$("$OVERLAYFS_INIT" --data "$D" --system-tmpfs -- no-such-command-$M 2>&1); rc=$?
[ $rc -eq 127 ] && echo "$err" | grep -q "no-such-command-$M" && same_host && t_ok ||
    t_fail "rc=$rc: $err"

t_begin "overlayfs-init: the default CMD boots s6 from a layer (test-runner image files)"
# Layers over the host's root must be on another filesystem than "/".
D2=$(mktemp -d /dev/shm/strata-it-s6.XXXXXX)
L=$D2/system/layers/20260101-001_s6/fs
mkdir -p "$L/etc" "$L/etc/test-runner" "$D2/system/migrations"
cp -a "$STRATA_SOURCE_ROOT/tests/image/s6" "$L/etc/s6"
printf '#!/bin/sh\nexit 7\n' >"$L/etc/test-runner/command"
chmod +x "$L/etc/test-runner/command"
cat >"$D2/system/migrations/metadata.json" <<EOF
{"version": 1, "layers": [{"id": "20260101-001_s6", "dir": "20260101-001_s6",
  "migrations": ["20260101-001_s6"], "applied_at": 0, "duration_ms": 0,
  "changes": {"A": 0, "M": 0, "D": 0, "R": 0}}], "state_paths": [], "rolled_back": []}
EOF
plan=$("$OVERLAYFS_INIT" --data "$D2" --dry-run)
"$OVERLAYFS_INIT" --data "$D2"; rc=$?
rm -rf "$D2"
echo "$plan" | grep -q "overlay     /  lower=$L:/ upper=$D2/system/upper" ||
    { rc=99; echo "# plan: $plan"; }
[ $rc -eq 7 ] && same_host && t_ok || t_fail "rc=$rc"

t_begin "overlayfs-init and lab run: a data dir inside its base boots (the base is mounted on its own)"
# The data dir inside the base, on the same filesystem: the kernel refuses a
# layer that lies inside another layer, so the base is mounted alone first.
OV=$T_TMP/ovlbase/data
L=$OV/system/layers/20260101-001_x/fs
mkdir -p "$L/etc" "$OV/system/migrations"
echo from-layer >"$L/etc/layered"
echo from-base >"$T_TMP/ovlbase/in-base"
cp "$(command -v busybox)" "$T_TMP/ovlbase/busybox"
sed 's/20260101-001_s6/20260101-001_x/g' >"$OV/system/migrations/metadata.json" <<EOF
{"version": 1, "layers": [{"id": "20260101-001_s6", "dir": "20260101-001_s6",
  "migrations": ["20260101-001_s6"], "applied_at": 0, "duration_ms": 0,
  "changes": {"A": 0, "M": 0, "D": 0, "R": 0}}], "state_paths": [], "rolled_back": []}
EOF
scratch_before=$(ls -d "${TMPDIR:-/tmp}"/strata-init-* 2>/dev/null | wc -l)
out1=$("$OVERLAYFS_INIT" --data "$OV" --base "$T_TMP/ovlbase" -- /busybox cat /etc/layered /in-base 2>&1); rc1=$?
out2=$("$STRATA" lab run --data "$OV" --base "$T_TMP/ovlbase" -- /busybox cat /etc/layered /in-base 2>&1); rc2=$?
scratch_after=$(ls -d "${TMPDIR:-/tmp}"/strata-init-* 2>/dev/null | wc -l)
want=$(printf 'from-layer\nfrom-base')
[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ "$out1" = "$want" ] && [ "$out2" = "$want" ] &&
    [ "$scratch_before" = "$scratch_after" ] && same_host &&
    t_ok || t_fail "init rc=$rc1 '$out1'; lab rc=$rc2 '$out2'; scratch $scratch_before -> $scratch_after"

if command -v unshare >/dev/null 2>&1; then
    t_begin "overlayfs-init as PID 1: builds the root in place, reaps, kills the rest"
    out=$(unshare -m -p -f --propagation private "$OVERLAYFS_INIT" --data "$D" --system-tmpfs \
        --state-tmpfs -- sh -c "echo \$\$; setsid sleep $M >/dev/null 2>&1 </dev/null & stat -f -c %T /data/state; exit 5")
    rc=$?
    [ $rc -eq 5 ] && [ "$(echo "$out" | head -1)" = 2 ] && echo "$out" | grep -qx tmpfs &&
        same_host && t_ok || t_fail "rc=$rc: $out"
fi

t_done
