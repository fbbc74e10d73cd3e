#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# system-migrate must never lose data on a mistake: a lost or older
# metadata.json, a running machine, state changes, bad state paths, squash
# and file properties. Each test reproduces one way a real /data was lost
# or damaged, with --base / and temp data dirs (the host is never changed).
. "$(dirname "$0")/lib.sh"
need_root
need_program python3
SM=${SYSTEM_MIGRATE:?SYSTEM_MIGRATE is not set}
t_tmpdir
M=$T_TMP/migrations
mkdir -p "$M"

# sm DATA ARGS...: system-migrate on a data dir.
sm() {
    d=$1
    shift
    "$SM" --data "$d" --dir "$M" --base / "$@"
}

# mig ID SCRIPT [STATE]: writes a migration.
mig() {
    mkdir -p "$M/$1"
    printf '%s\n' "$2" >"$M/$1/install_script.sh"
    if [ $# -ge 3 ]; then printf '%s\n' "$3" >"$M/$1/state"; fi
}

# layer_dirs DATA: the layer dirs (and records) a data dir holds, one line.
layer_dirs() {
    echo "$(ls -A "$1/system/layers" | tr '\n' ' ')| $(ls -A "$1/system/migrations" | grep -v metadata.json | tr '\n' ' ')"
}

applied() {
    python3 -c "import json,sys; print(' '.join(x for e in json.load(open(sys.argv[1]))['layers'] for x in e['migrations']))" \
        "$1/system/migrations/metadata.json" 2>/dev/null
}

mig 20260301-001_one 'mkdir -p /opt/strata-s && echo one > /opt/strata-s/one'
mig 20260301-002_two 'echo two > /opt/strata-s/two'
mig 20260301-003_three 'echo three > /opt/strata-s/three'

# ---------------------------------------------------------------------------
# Data loss: metadata.json
D=$T_TMP/lost
sm "$D" up >/dev/null 2>&1
before=$(layer_dirs "$D")
rm "$D/system/migrations/metadata.json"
for cmd in verify gc "rollback --last" "squash --from 20260301-001_one --to 20260301-002_two" up; do
    t_begin "a missing metadata.json: '$cmd' refuses with exit 1 and deletes nothing"
    # shellcheck disable=SC2086
    out=$(sm "$D" $cmd 2>&1)
    rc=$?
    if [ $rc -ne 1 ]; then
        t_fail "exit $rc: $out"
    elif [ "$(layer_dirs "$D")" != "$before" ]; then
        t_fail "the data dir changed: $before -> $(layer_dirs "$D")"
    elif ! echo "$out" | grep -q "metadata.json' is missing" ||
        ! echo "$out" | grep -q "verify --rebuild"; then
        t_fail "the message does not say what was found: $out"
    else
        t_ok
    fi
done

t_begin "verify --rebuild --dry-run shows the layers and writes nothing"
out=$(sm "$D" verify --rebuild --dry-run 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ ! -e "$D/system/migrations/metadata.json" ] &&
    echo "$out" | grep -q "would write layer 3: '20260301-003_three' (dir '20260301-003_three', parent '20260301-002_two'"; then
    t_ok
else
    t_fail "exit $rc: $out"
fi

t_begin "verify --rebuild rebuilds metadata.json from layer.json; verify and up are happy"
out=$(sm "$D" verify --rebuild 2>&1)
rc=$?
v=$(sm "$D" verify 2>&1)
vrc=$?
if [ $rc -eq 0 ] && [ $vrc -eq 0 ] &&
    [ "$(applied "$D")" = "20260301-001_one 20260301-002_two 20260301-003_three" ] &&
    [ "$(sm "$D" up 2>&1)" = "nothing to apply" ] && [ "$(layer_dirs "$D")" = "$before" ]; then
    t_ok
else
    t_fail "rebuild $rc: $out / verify $vrc: $v / $(applied "$D")"
fi

t_begin "an older metadata.json: newer layers are kept and reported, never deleted"
D=$T_TMP/older
sm "$D" up --to 20260301-001_one >/dev/null 2>&1
cp "$D/system/migrations/metadata.json" "$T_TMP/metadata.old"
sm "$D" up >/dev/null 2>&1
before=$(layer_dirs "$D")
cp "$T_TMP/metadata.old" "$D/system/migrations/metadata.json"
out=$(sm "$D" verify 2>&1)
rc=$?
out2=$(sm "$D" up 2>&1)
rc2=$?
if [ $rc -ne 1 ] || [ $rc2 -ne 1 ] || [ "$(layer_dirs "$D")" != "$before" ]; then
    t_fail "verify $rc, up $rc2: $out / $out2 / $(layer_dirs "$D")"
elif ! echo "$out" | grep -q "is older than the layers" ||
    ! echo "$out" | grep -q "20260301-003_three"; then
    t_fail "the message does not name the newer layers: $out"
else
    t_ok
fi

t_begin "an older metadata.json: verify --rebuild restores every layer"
sm "$D" verify --rebuild >/dev/null 2>&1
if [ "$(applied "$D")" = "20260301-001_one 20260301-002_two 20260301-003_three" ] &&
    sm "$D" verify >/dev/null 2>&1; then
    t_ok
else
    t_fail "$(applied "$D")"
fi

t_begin "repair still removes what an interrupted run leaves (temp names, uncommitted dirs)"
D=$T_TMP/leftover
sm "$D" up --to 20260301-002_two >/dev/null 2>&1
mkdir -p "$D/system/layers/.tmp-20260301-003_three/fs"
STRATA_TEST_KILL_AT=renamed sm "$D" up >/dev/null 2>&1
out=$(sm "$D" verify 2>&1)
rc=$?
if [ "${STRATA_TEST_HOOKS:-0}" != 1 ]; then
    t_skip "system-migrate has no crash-test hooks (configure with -Dtest_hooks=true, as make check does)"
elif [ $rc -eq 0 ] && [ "$(layer_dirs "$D")" = "20260301-001_one 20260301-002_two | 20260301-001_one 20260301-002_two " ] &&
    echo "$out" | grep -q "removed the leftover"; then
    t_ok
else
    t_fail "verify $rc: $out / $(layer_dirs "$D")"
fi

# ---------------------------------------------------------------------------
# Data loss: a migration's changes to state that exists
M0=$M
M=$T_TMP/state-migrations
S=/var/lib/strata-st
mig 20260302-001_seed "mkdir -p $S/sub && echo old > $S/mod && echo del > $S/del && echo keep > $S/keep && echo in > $S/sub/file" "$S"
mig 20260302-002_change "set -e; echo new > $S/mod; rm $S/del; rm -rf $S/sub; echo added > $S/new" "$S"
mig 20260302-003_fails "echo broken > $S/mod; rm $S/keep; exit 3" "$S"
st() { (cd "$1/state$S" 2>/dev/null && for f in $(find . | sort); do
    if [ -f "$f" ]; then echo "$f=$(cat "$f")"; else echo "$f"; fi; done | tr '\n' ' '); }
for kill in "" committed; do
    D=$T_TMP/state$kill
    sm "$D" up --to 20260302-001_seed >/dev/null 2>&1
    t_begin "changes to existing state are applied on success${kill:+ (SIGKILL at $kill, then verify)}"
    if [ -n "$kill" ]; then
        STRATA_TEST_KILL_AT=$kill sm "$D" up --to 20260302-002_change >/dev/null 2>&1
        out=$(sm "$D" verify 2>&1)
    else
        out=$(sm "$D" up --to 20260302-002_change 2>&1)
    fi
    rc=$?
    want=". ./keep=keep ./mod=new ./new=added "
    if [ $rc -ne 0 ] || [ "$(st "$D")" != "$want" ]; then
        t_fail "exit $rc: $out / state: $(st "$D")"
    elif [ -z "$kill" ] && ! echo "$out" | grep -q "state: A 1, M 1, D 2, R 0"; then
        t_fail "the summary does not count the state changes: $out"
    else
        t_ok
    fi
done
t_begin "changes.list lists the state changes with their own marker"
diff=$(sm "$D" diff 20260302-002_change 2>&1)
if echo "$diff" | grep -qx "SM $S/mod" && echo "$diff" | grep -qx "SD $S/del" &&
    echo "$diff" | grep -qx "SD $S/sub" && echo "$diff" | grep -qx "SA $S/new"; then
    t_ok
else
    t_fail "$diff"
fi

t_begin "a failed migration leaves the state as it was"
before=$(st "$D")
out=$(sm "$D" up --to 20260302-003_fails 2>&1)
rc=$?
if [ $rc -eq 1 ] && [ "$(st "$D")" = "$before" ]; then
    t_ok
else
    t_fail "exit $rc: $out / state: $(st "$D")"
fi
rm -rf "$M/20260302-003_fails"

t_begin "rollback --state puts the pre-images back"
out=$(sm "$D" rollback --last --state 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ "$(st "$D")" = ". ./del=del ./keep=keep ./mod=old ./new=added ./sub ./sub/file=in " ]; then
    t_ok
else
    t_fail "exit $rc: $out / state: $(st "$D")"
fi

t_begin "rollback --state keeps what changed since, says so, and loses nothing"
sm "$D" up >/dev/null 2>&1
echo edited >"$D/state$S/mod"
out=$(sm "$D" rollback --last --state 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ "$(cat "$D/state$S/mod")" = edited ] &&
    echo "$out" | grep -q "kept '$D/state$S/mod' as it is (it changed since)" &&
    [ "$(cat "$D/system/state-kept/20260302-002_change$S/mod")" = old ] &&
    [ "$(cat "$D/state$S/del")" = del ]; then
    t_ok
else
    t_fail "exit $rc: $out / state: $(st "$D")"
fi
M=$M0

# ---------------------------------------------------------------------------
# Data loss: state paths that break the machine
M0=$M
M=$T_TMP/bad-state
for bad in /etc /proc/x /sys /dev /run/app /var/run/app /tmp /data /usr/local/app /bin /lib \
    /lib64/x /sbin /boot /var/lib/dpkg /var; do
    t_begin "the state path '$bad' is refused, naming the file, the line and the reason"
    rm -rf "$M"
    mig 20260303-001_bad 'echo SHOULD-NOT-RUN' "# comment
/var/lib/strata-ok
$bad"
    D=$T_TMP/bad
    out=$(sm "$D" up 2>&1)
    rc=$?
    if [ $rc -eq 2 ] && echo "$out" | grep -q "$M/20260303-001_bad/state' line 3: '$bad' cannot be state" &&
        ! echo "$out" | grep -q SHOULD-NOT-RUN && [ -z "$(applied "$D")" ]; then
        t_ok
    else
        t_fail "exit $rc: $out"
    fi
done

t_begin "a state path through a symlink is resolved in the machine's root, and refused into /etc"
rm -rf "$M"
mig 20260303-001_links 'ln -s ../etc /opt/strata-s-etc; mkdir -p /srv/strata-real; ln -s /srv/strata-real /opt/strata-s-ok'
mig 20260303-002_via_link 'echo SHOULD-NOT-RUN' "/opt/strata-s-etc/app"
D=$T_TMP/links
sm "$D" up --to 20260303-001_links >/dev/null 2>&1
out=$(sm "$D" up 2>&1)
rc=$?
if [ $rc -eq 2 ] && echo "$out" | grep -q "line 1: '/opt/strata-s-etc/app' resolves to '/etc/app' in the machine's root" &&
    ! echo "$out" | grep -q SHOULD-NOT-RUN; then
    t_ok
else
    t_fail "exit $rc: $out"
fi

t_begin "an allowed symlinked state path is bound at its target; rollback removes it from metadata"
rm -rf "$M/20260303-002_via_link"
mig 20260303-002_via_ok 'echo data > /opt/strata-s-ok/file' "/opt/strata-s-ok"
out=$(sm "$D" up 2>&1)
rc=$?
sp() { python3 -c "import json,sys; print(' '.join(json.load(open(sys.argv[1])).get('state_paths') or []))" "$D/system/migrations/metadata.json"; }
before=$(sp)
sm "$D" rollback --last >/dev/null 2>&1
after=$(sp)
if [ $rc -eq 0 ] && [ "$(cat "$D/state/srv/strata-real/file" 2>&1)" = data ] &&
    echo "$before" | grep -qw /srv/strata-real && ! echo "$after" | grep -qw /srv/strata-real &&
    echo "$after" | grep -qw /var/log; then
    t_ok
else
    t_fail "exit $rc: $out / before: $before / after: $after / $(find "$D/state")"
fi
M=$M0

# ---------------------------------------------------------------------------
# Data loss: a state path declared over content the layers below hold
M0=$M
M=$T_TMP/seed-migrations
P=/opt/strata-seed
mig 20260306-001_install "set -e; mkdir -p $P/db; echo cluster > $P/db/file; chown -R 1234:2345 $P/db
chmod 0700 $P/db; setfattr -n user.strata -v kept $P/db/file"
mig 20260306-002_declare "set -e; cat $P/db/file; echo more >> $P/db/file" "$P"
D=$T_TMP/seed
t_begin "a newly declared state path is seeded from the layers below (owners, modes, xattrs), and says so"
out=$(sm "$D" up 2>&1)
rc=$?
f=$D/state$P/db/file
if [ $rc -eq 0 ] && echo "$out" | grep -q "^cluster" &&
    [ "$(cat "$f" 2>&1)" = "cluster
more" ] && [ "$(stat -c '%u:%g %a' "$D/state$P/db")" = "1234:2345 700" ] &&
    [ "$(getfattr --only-values -n user.strata "$f" 2>/dev/null)" = kept ] &&
    echo "$out" | grep -q "declares '$P' as state, which the layers below hold: seeding '$D/state$P'"; then
    t_ok
else
    t_fail "exit $rc: $out / $(ls -laR "$D/state$P" 2>&1)"
fi
t_begin "seeding happens once: a later migration sees the state, not the layer's copy"
mig 20260306-003_later "cat $P/db/file" "$P"
out=$(sm "$D" up 2>&1)
if echo "$out" | grep -q "^more" && ! echo "$out" | grep -q seeding; then
    t_ok
else
    t_fail "$out"
fi
M=$M0

# ---------------------------------------------------------------------------
# Data loss: squash keeps every file property
M0=$M
M=$T_TMP/squash-migrations
Q=/opt/strata-q
mig 20260305-001_files "set -e; mkdir -p $Q; cp /bin/true $Q/cap; setcap cap_net_raw+ep $Q/cap
chown 1234:1234 $Q/cap; setcap cap_net_bind_service+ep $Q/cap
truncate -s 1G $Q/sparse; echo data | dd of=$Q/sparse bs=1 seek=65536 conv=notrunc 2>/dev/null
echo tmp > $Q/tmpfile"
mig 20260305-002_more "set -e; rm $Q/tmpfile; echo eph > $Q/ephemeral; echo x > $Q/x"
mig 20260305-003_last "set -e; rm $Q/ephemeral; echo y >> $Q/x"
D=$T_TMP/squash
sm "$D" up >/dev/null 2>&1
# view: what the assembled layers show under $Q (capabilities, owners,
# allocated size, content), in a private mount namespace.
view() {
    l=$(python3 -c "import json,sys; print(':'.join(sys.argv[1] + '/system/layers/' + e['dir'] + '/fs' for e in reversed(json.load(open(sys.argv[1] + '/system/migrations/metadata.json'))['layers'])))" "$D")
    mkdir -p "$T_TMP/view" "$T_TMP/empty"
    unshare -m sh -c "mount -t overlay overlay -o ro,lowerdir=$l:$T_TMP/empty '$T_TMP/view' &&
        cd '$T_TMP/view$Q' && for f in \$(ls -A | sort); do
            echo \"\$f \$(stat -c '%u:%g %a %s' \$f) \$(du -k \$f | cut -f1)k \$(getcap \$f | cut -d' ' -f2) \$(md5sum < \$f | cut -c1-8)\"; done"
}
before=$(view)
t_begin "squash keeps capabilities (owner set before xattrs), holes and content"
out=$(sm "$D" squash --from 20260305-001_files --to 20260305-003_last 2>&1)
rc=$?
after=$(view)
if [ $rc -ne 0 ]; then
    t_fail "squash exited $rc: $out"
elif [ "$before" != "$after" ]; then
    t_fail "before: $before / after: $after"
elif ! echo "$after" | grep -q "^cap 1234:1234 .*cap_net_bind_service=ep"; then
    t_fail "no capability: $after"
elif [ "$(echo "$after" | awk '/^sparse/ { print $5 }')" != "$(echo "$before" | awk '/^sparse/ { print $5 }')" ] ||
    [ "$(du -k "$D/system/layers/20260305-001_files..20260305-003_last/fs$Q/sparse" | cut -f1)" -gt 1024 ]; then
    t_fail "the sparse file became dense: $after"
else
    t_ok
fi
t_begin "squash leaves no whiteout (nor D line) for paths that never existed below"
diff=$(sm "$D" diff 20260305-003_last 2>&1)
wh=$(find "$D/system/layers/20260305-001_files..20260305-003_last/fs" -type c)
if [ -z "$wh" ] && ! echo "$diff" | grep -q '^D '; then
    t_ok
else
    t_fail "whiteouts: $wh / diff: $diff"
fi
M=$M0

# ---------------------------------------------------------------------------
# Safety of the stack: up on a broken stack
t_begin "up on a stack whose active layer dir is missing refuses up front (exit 1, verify's message)"
D=$T_TMP/broken
sm "$D" up --to 20260301-002_two >/dev/null 2>&1
mv "$D/system/layers/20260301-001_one" "$T_TMP/moved-away"
out=$(sm "$D" up 2>&1)
rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "the layer dir '$D/system/layers/20260301-001_one' of the active layer" &&
    echo "$out" | grep -q "the layer stack of '$D' is broken" && ! echo "$out" | grep -q "applying" &&
    [ "$(applied "$D")" = "20260301-001_one 20260301-002_two" ]; then
    t_ok
else
    t_fail "exit $rc: $out"
fi
mv "$T_TMP/moved-away" "$D/system/layers/20260301-001_one"
t_begin "up on unreadable metadata refuses with exit 1 and changes nothing"
cp "$D/system/migrations/metadata.json" "$T_TMP/md.good"
echo '{"layers": [' >"$D/system/migrations/metadata.json"
before=$(layer_dirs "$D")
out=$(sm "$D" up 2>&1)
rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "cannot load the metadata of '$D'" && [ "$(layer_dirs "$D")" = "$before" ]; then
    t_ok
else
    t_fail "exit $rc: $out"
fi
cp "$T_TMP/md.good" "$D/system/migrations/metadata.json"

# ---------------------------------------------------------------------------
# Safety of the stack: layers are tied to their base
t_begin "the first up records the base; up over another base is refused with a message"
D=$T_TMP/based
sm "$D" up --to 20260301-001_one >/dev/null 2>&1
OB=$T_TMP/other-base
mkdir -p "$OB/etc"
printf 'ID=strataos\nVERSION_ID=9\nPRETTY_NAME="Strata OS 9"\n' >"$OB/etc/os-release"
out=$("$SM" --data "$D" --dir "$M" --base "$OB" up 2>&1)
rc=$?
if [ $rc -eq 1 ] && [ -f "$D/system/base.json" ] &&
    echo "$out" | grep -q "the layers were built over the base '.*' (.*), but this base is 'strataos-9-.*' (Strata OS 9)" &&
    [ "$(applied "$D")" = "20260301-001_one" ]; then
    t_ok
else
    t_fail "exit $rc: $out / $(cat "$D/system/base.json" 2>&1)"
fi
t_begin "--force goes past the base check (and says so); the same base is accepted"
out=$("$SM" --data "$D" --dir "$M" --base "$OB" up --force 2>&1)
out2=$(sm "$D" up --to 20260301-002_two 2>&1)
rc2=$?
if echo "$out" | grep -q -- "--force: applying anyway" && [ $rc2 -eq 0 ]; then
    t_ok
else
    t_fail "$out / $rc2: $out2"
fi
t_begin "--base-id names the base; another id is refused"
D=$T_TMP/based-id
sm "$D" up --base-id golden-1 --to 20260301-001_one >/dev/null 2>&1
out=$(sm "$D" up --base-id golden-2 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q '"id": "golden-1"' "$D/system/base.json" &&
    echo "$out" | grep -q "built over the base 'golden-1'.*this base is 'golden-2'"; then
    t_ok
else
    t_fail "exit $rc: $out / $(cat "$D/system/base.json" 2>&1)"
fi

# ---------------------------------------------------------------------------
# Safety of the stack: verify --content
t_begin "verify --content: an untouched stack is ok; a tampered, re-moded or added file is named"
D=$T_TMP/content
sm "$D" up >/dev/null 2>&1
out0=$(sm "$D" verify --content 2>&1)
rc0=$?
L2=$D/system/layers/20260301-002_two/fs
echo tampered >"$L2/opt/strata-s/two"
chmod 0600 "$D/system/layers/20260301-003_three/fs/opt/strata-s/three"
echo extra >"$D/system/layers/20260301-001_one/fs/opt/strata-s/extra"
out=$(sm "$D" verify --content 2>&1)
rc=$?
if [ $rc0 -ne 0 ]; then
    t_fail "untouched: exit $rc0: $out0"
elif [ $rc -eq 1 ] && echo "$out" | grep -q "20260301-002_two': '/opt/strata-s/two' changed content (sha256 differs)" &&
    echo "$out" | grep -q "20260301-003_three': '/opt/strata-s/three' changed mode" &&
    echo "$out" | grep -q "20260301-001_one': '/opt/strata-s/extra' was added since its commit"; then
    t_ok
else
    t_fail "exit $rc: $out"
fi

# ---------------------------------------------------------------------------
# Safety of the sandbox
M0=$M
M=$T_TMP/sandbox-migrations
mig 20260308-001_probe 'ro() { awk -v m="$1" '"'"'$2 == m { split($4, o, ","); print o[1] }'"'"' /proc/self/mounts | tail -n 1; }
echo "sys=$(ro /sys)"; echo "procsys=$(ro /proc/sys)"; echo "cgroup=$(ro /sys/fs/cgroup)"
bnd=$(awk '"'"'/^CapBnd/ { print $2 }'"'"' /proc/self/status)
for c in 16 17 22 25; do echo "cap$c=$(( (0x$bnd >> c) & 1 ))"; done
if sysctl -w kernel.hostname=strata-probe >/dev/null 2>&1; then echo sysctl=changed; else echo sysctl=refused; fi'
D=$T_TMP/sandbox
t_begin "the sandbox: /sys, /proc/sys and the host's cgroups read-only; no module, clock, reboot or raw I/O capability"
out=$(sm "$D" up 2>&1)
rc=$?
for want in sys=ro procsys=ro cap16=0 cap17=0 cap22=0 cap25=0 sysctl=refused; do
    echo "$out" | grep -qx "$want" || { rc="$rc, no $want"; }
done
if [ -d /sys/fs/cgroup ] && ! echo "$out" | grep -qx "cgroup=ro"; then rc="$rc, cgroup not ro"; fi
if [ "$rc" = 0 ]; then t_ok; else t_fail "$rc: $out"; fi
M=$M0

# ---------------------------------------------------------------------------
# Safety of the sandbox: one script, hashed, recorded and run
M0=$M
M=$T_TMP/link-migrations
D=$T_TMP/links2
mkdir -p "$M/20260309-001_linked" "$T_TMP/elsewhere/20260309-002_dirlink"
echo 'echo SHOULD-NOT-RUN' >"$T_TMP/elsewhere/script.sh"
ln -s "$T_TMP/elsewhere/script.sh" "$M/20260309-001_linked/install_script.sh"
t_begin "a symlinked install_script.sh is rejected with a message; nothing runs"
out=$(sm "$D" up 2>&1)
rc=$?
if [ $rc -eq 2 ] && echo "$out" | grep -q "'$M/20260309-001_linked/install_script.sh' is a symlink" &&
    ! echo "$out" | grep -q SHOULD-NOT-RUN; then
    t_ok
else
    t_fail "exit $rc: $out"
fi
rm -rf "$M/20260309-001_linked"
echo 'echo SHOULD-NOT-RUN' >"$T_TMP/elsewhere/20260309-002_dirlink/install_script.sh"
ln -s "$T_TMP/elsewhere/20260309-002_dirlink" "$M/20260309-002_dirlink"
t_begin "a migration dir that is a symlink is rejected with a message"
out=$(sm "$D" up 2>&1)
rc=$?
if [ $rc -eq 2 ] && echo "$out" | grep -q "migration '$M/20260309-002_dirlink' is a symlink" &&
    ! echo "$out" | grep -q SHOULD-NOT-RUN; then
    t_ok
else
    t_fail "exit $rc: $out"
fi
rm -f "$M/20260309-002_dirlink"
mig 20260309-003_edited 'echo first'
t_begin "status shows an applied migration whose script changed since (and --json says so)"
sm "$D" up >/dev/null 2>&1
j0=$(sm "$D" status --json)
echo 'echo second' >"$M/20260309-003_edited/install_script.sh"
out=$(sm "$D" status 2>&1)
j=$(sm "$D" status --json)
if echo "$j0" | grep -q '"script_changed": false' && echo "$j" | grep -q '"script_changed": true' &&
    echo "$out" | grep -q "20260309-003_edited.*(install_script.sh changed since it was applied)"; then
    t_ok
else
    t_fail "$out / $j"
fi
M=$M0

# ---------------------------------------------------------------------------
# Safety of the stack: order
M0=$M
M=$T_TMP/order-migrations
D=$T_TMP/order
mig 20260310-002_b 'echo b'
sm "$D" up >/dev/null 2>&1
mig 20260310-001_a 'echo SHOULD-NOT-RUN-YET'
mig 20260310-003_c 'echo c'
t_begin "a pending migration older than the newest applied is refused, named, unless --out-of-order"
out=$(sm "$D" up 2>&1)
rc=$?
a1=$(applied "$D")
out2=$(sm "$D" up --out-of-order 2>&1)
rc2=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "older than the newest applied one ('20260310-002_b'): 20260310-001_a" &&
    ! echo "$out" | grep -q SHOULD-NOT-RUN && [ "$a1" = 20260310-002_b ] &&
    [ $rc2 -eq 0 ] && [ "$(applied "$D")" = "20260310-002_b 20260310-001_a 20260310-003_c" ]; then
    t_ok
else
    t_fail "exit $rc: $out / $rc2: $out2 / $(applied "$D")"
fi
M=$M0

if [ -n "${STRATA:-}" ] && [ -x "$STRATA" ]; then
    t_begin "booting the layers over another base is refused too (lab run), unless --force"
    out=$("$STRATA" lab run --data "$T_TMP/based" --base "$OB" -- true 2>&1)
    rc=$?
    out2=$("$STRATA" lab run --data "$T_TMP/based" --base "$OB" --force -- true 2>&1)
    if [ $rc -eq 125 ] && echo "$out" | grep -q "cannot boot '$T_TMP/based': the layers were built over the base" &&
        echo "$out2" | grep -q -- "--force: booting anyway" &&
        "$STRATA" lab run --data "$T_TMP/based" -- true; then
        t_ok
    else
        t_fail "exit $rc: $out / $out2"
    fi
fi

# ---------------------------------------------------------------------------
# Data loss: a running machine's lower dirs
if [ -n "${STRATA:-}" ] && [ -x "$STRATA" ]; then
    D=$T_TMP/live
    sm "$D" up >/dev/null 2>&1
    mkdir -p "$T_TMP/share"
    "$STRATA" lab run --data "$D" --bind "$T_TMP/share:/share" -- sh -c \
        'cat /opt/strata-s/one > /share/ready; while [ -e /share/ready ]; do sleep 0.05; done
         cat /opt/strata-s/one /opt/strata-s/three > /share/after' >/dev/null 2>&1 &
    lab=$!
    i=0
    while [ ! -s "$T_TMP/share/ready" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    before=$(layer_dirs "$D")
    md_before=$(cat "$D/system/migrations/metadata.json")
    for cmd in "squash --from 20260301-001_one --to 20260301-003_three" "rollback --last" gc; do
        t_begin "'$cmd' while a machine of the data dir runs: exit 75, no layer dir moved"
        # shellcheck disable=SC2086
        out=$(sm "$D" $cmd 2>&1)
        rc=$?
        if [ $rc -eq 75 ] && [ "$(layer_dirs "$D")" = "$before" ] &&
            [ "$(cat "$D/system/migrations/metadata.json")" = "$md_before" ] &&
            echo "$out" | grep -q "the machine of '$D' is running (pid $lab, strata lab run)"; then
            t_ok
        else
            t_fail "exit $rc: $out / $(layer_dirs "$D")"
        fi
    done
    rm -f "$T_TMP/share/ready"
    wait $lab
    lrc=$?
    t_begin "the machine kept its files; once it stopped, squash runs"
    out=$(sm "$D" squash --from 20260301-001_one --to 20260301-003_three 2>&1)
    rc=$?
    if [ $lrc -eq 0 ] && [ "$(cat "$T_TMP/share/after")" = "one
three" ] && [ $rc -eq 0 ]; then
        t_ok
    else
        t_fail "machine $lrc ($(cat "$T_TMP/share/after" 2>&1)), squash $rc: $out"
    fi
fi

t_done
