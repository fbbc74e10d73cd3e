#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# system-migrate end to end with --base / and a temp data dir: change
# capture, failure rollback, the lock, rollback/squash/gc, services, state,
# auto-squash, scaffolding and bad input. The host is never changed: every
# write lands in a layer or a state dir under the temp dir.
. "$(dirname "$0")/lib.sh"
need_root
need_program python3
SM=${SYSTEM_MIGRATE:?SYSTEM_MIGRATE is not set}
[ -e /etc/motd ] && [ -e /etc/issue.net ] ||
    t_skip_all "the base needs /etc/motd and /etc/issue.net (a Debian root)"
t_tmpdir
D=$T_TMP/data
M=$T_TMP/migrations
mkdir -p "$M"

sm() { "$SM" --data "$D" --dir "$M" --base / "$@"; }

# mig ID SCRIPT [STATE]: writes a migration.
mig() {
    mkdir -p "$M/$1"
    printf '%s\n' "$2" >"$M/$1/install_script.sh"
    if [ $# -ge 3 ]; then printf '%s\n' "$3" >"$M/$1/state"; fi
}

# lowers DATA: the lowerdir option of the assembled root (active layers
# newest first, then the base).
lowers() {
    python3 - "$1" <<'EOF'
import json, sys
d = sys.argv[1]
try:
    m = json.load(open(d + "/system/migrations/metadata.json"))
except FileNotFoundError:
    m = {"layers": []}
l = [d + "/system/layers/" + e["dir"] + "/fs" for e in reversed(m["layers"])]
print(":".join(l + ["/"]))
EOF
}

# in_root CMD: runs CMD (sh) with $R the read-only root assembled from the
# base and the active layers, in a private mount namespace. When the layers
# lie on the base's file system (the kernel refuses overlapping layers),
# the base is mounted on its own first, the way system-migrate does.
in_root() {
    mkdir -p "$T_TMP/root" "$T_TMP/iso/empty" "$T_TMP/iso/base"
    l=$(lowers "$D")
    iso=true
    if [ "$(stat -c %d /)" = "$(stat -c %d "$D")" ]; then
        iso="mount -t tmpfs -o ro tmpfs '$T_TMP/iso/empty' &&
            mount -t overlay overlay -o ro,lowerdir=/:'$T_TMP/iso/empty' '$T_TMP/iso/base'"
        l=$(echo "$l" | sed "s|:/\$|:$T_TMP/iso/base|")
    fi
    unshare -m sh -c "{ $iso && mount -t overlay overlay -o ro,lowerdir=$l '$T_TMP/root'; } ||
        { echo 'in_root: cannot assemble the root' >&2; exit 1; }
        R='$T_TMP/root'; $1"
}

# manifest PATH...: what the assembled root shows under the paths.
manifest() {
    in_root "for p in $*; do [ -e \"\$R\$p\" ] || [ -L \"\$R\$p\" ] || { echo \"\$p absent\"; continue; };
        find \"\$R\$p\" -printf '%P %y %m %u:%g %l %s\n' | sort; done;
        for p in $*; do find \"\$R\$p\" -type f 2>/dev/null | sort | xargs -r md5sum | sed \"s|\$R||\"; done"
}

layers_count() {
    python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['layers']))" \
        "$D/system/migrations/metadata.json" 2>/dev/null || echo 0
}

tree() { (cd "$1" 2>/dev/null && find . -printf '%p %y %m %s\n' | sort && find . -type f | sort | xargs -r md5sum); }

# ---------------------------------------------------------------------------
t_begin "add, modify, delete: the change list says exactly that"
mig 20260101-001_basics '
set -e
mkdir -p /opt/strata-t/conf
echo hello > /opt/strata-t/conf/app.conf
ln -s conf/app.conf /opt/strata-t/link
echo "appended by strata" >> /etc/motd
rm /etc/issue.net
echo "running $STRATA_MIGRATION"'
out=$(sm up 2>&1)
rc=$?
diff=$(sm diff 20260101-001_basics)
want="M /etc
M /etc/motd
D /etc/issue.net
M /opt
A /opt/strata-t
A /opt/strata-t/conf
A /opt/strata-t/conf/app.conf
A /opt/strata-t/link"
if [ $rc -ne 0 ]; then
    t_fail "up exited $rc: $out"
elif [ "$(echo "$diff" | sort)" != "$(echo "$want" | sort)" ]; then
    t_fail "diff: $diff"
elif [ "$diff" != "$(echo "$diff" | LC_ALL=C sort -k2)" ]; then
    t_fail "changes.list is not sorted by path: $diff"
elif ! echo "$out" | grep -q "running 20260101-001_basics"; then
    t_fail "the script's output was not streamed (STRATA_MIGRATION): $out"
elif ! grep -q "running 20260101-001_basics" "$D/system/migrations/20260101-001_basics/log"; then
    t_fail "no log in the migration record"
else
    t_ok
fi

t_begin "the assembled root shows the new content and not the deleted file"
r=$(in_root 'cat $R/opt/strata-t/link; tail -n1 $R/etc/motd; [ -e $R/etc/issue.net ] && echo still-there; true')
if [ "$r" = "hello
appended by strata" ] && [ -e /etc/issue.net ] && ! grep -q strata /etc/motd; then
    t_ok
else
    t_fail "root shows: $r"
fi

t_begin "layer.json: id, parent, created_at, script sha256, counts, bytes"
sha=$(sha256sum "$M/20260101-001_basics/install_script.sh" | cut -d' ' -f1)
if python3 - "$D/system/layers/20260101-001_basics/layer.json" "$sha" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["id"] == "20260101-001_basics", j
assert j["parent"] is None, j
assert j["created_at"].endswith("Z"), j
assert j["script_sha256"] == sys.argv[2], j
assert j["changes"] == {"A": 4, "M": 3, "D": 1, "R": 0}, j
assert j["bytes"] > 0, j
EOF
then t_ok; else t_fail "layer.json: $(cat "$D/system/layers/20260101-001_basics/layer.json")"; fi

t_begin "status --json lists applied with changes, nothing pending"
st=$(sm status --json)
if echo "$st" | python3 -c '
import json, sys
j = json.load(sys.stdin)
a = j["applied"]
assert [x["id"] for x in a] == ["20260101-001_basics"], j
assert a[0]["changes"] == {"A": 4, "M": 3, "D": 1, "R": 0}, j
assert isinstance(a[0]["duration_ms"], int) and a[0]["applied_at"], j
assert j["pending"] == [] and j["rolled_back"] == [], j
'; then t_ok; else t_fail "$st"; fi

t_begin "applied migrations never run twice"
out=$(sm up 2>&1)
if [ $? -eq 0 ] && echo "$out" | grep -q "nothing to apply" && ! echo "$out" | grep -q running; then
    t_ok
else
    t_fail "$out"
fi

# ---------------------------------------------------------------------------
t_begin "a failing migration leaves no layer, no metadata entry, no state change; exit 1"
mig 20260101-002_state 'set -e; mkdir -p /var/lib/strata-t; echo v1 > /var/lib/strata-t/db; echo log >> /var/log/strata-t.log' '/var/lib/strata-t'
sm up >/dev/null 2>&1
mig 20260101-003_fails 'set -e
echo garbage > /opt/strata-t/garbage
echo v2 > /var/lib/strata-t/db
echo more > /var/lib/strata-t/new
echo oops >> /var/log/strata-t.log
exit 3' '/var/lib/strata-t
/srv/strata-fail-state'
meta_before=$(cat "$D/system/migrations/metadata.json")
state_before=$(tree "$D/state")
layers_before=$(ls -a "$D/system/layers")
out=$(sm up 2>&1)
rc=$?
if [ $rc -ne 1 ]; then
    t_fail "exit $rc: $out"
elif [ "$meta_before" != "$(cat "$D/system/migrations/metadata.json")" ]; then
    t_fail "metadata changed"
elif [ "$state_before" != "$(tree "$D/state")" ]; then
    t_fail "state changed: $(tree "$D/state")"
elif [ "$layers_before" != "$(ls -a "$D/system/layers")" ]; then
    t_fail "layers changed: $(ls -a "$D/system/layers")"
elif [ -e "$D/system/migrations/20260101-003_fails" ]; then
    t_fail "a record of the failed migration remains"
elif ! echo "$out" | grep -q "20260101-003_fails.*status 3"; then
    t_fail "message: $out"
else
    t_ok
fi

t_begin "earlier migrations stay applied; the failed one stays pending; state kept"
st=$(sm status --json)
if echo "$st" | python3 -c '
import json, sys
j = json.load(sys.stdin)
assert [x["id"] for x in j["applied"]] == ["20260101-001_basics", "20260101-002_state"], j
assert [x["id"] for x in j["pending"]] == ["20260101-003_fails"], j
' && [ "$(cat "$D/state/var/lib/strata-t/db")" = v1 ] &&
    [ "$(cat "$D/state/var/log/strata-t.log")" = log ]; then
    t_ok
else
    t_fail "$st / $(cat "$D/state/var/lib/strata-t/db")"
fi

t_begin "state: new state moves to the data dir, the layer keeps only the mount point"
if [ -d "$D/system/layers/20260101-002_state/fs/var/lib/strata-t" ] &&
    [ -z "$(ls -A "$D/system/layers/20260101-002_state/fs/var/lib/strata-t")" ] &&
    [ ! -e "$D/system/layers/20260101-002_state/fs/var/log/strata-t.log" ] &&
    python3 -c 'import json,sys; assert "/var/lib/strata-t" in json.load(open(sys.argv[1]))["state_paths"]' \
        "$D/system/migrations/metadata.json" &&
    ! sm diff 20260101-002_state | grep -q '^[AMDR] .*strata-t/db'; then
    t_ok
else
    t_fail "layer: $(find "$D/system/layers/20260101-002_state/fs")"
fi

t_begin "changes to existing state are applied (and listed as state changes)"
rm -rf "$M/20260101-003_fails"
mig 20260101-003_rewrite 'set -e; echo v2 > /var/lib/strata-t/db; echo new > /var/lib/strata-t/other'
if sm up >/dev/null 2>&1 && [ "$(cat "$D/state/var/lib/strata-t/db")" = v2 ] &&
    sm diff 20260101-003_rewrite | grep -qx 'SM /var/lib/strata-t/db' &&
    [ "$(cat "$D/state/var/lib/strata-t/other")" = new ]; then
    t_ok
else
    t_fail "db=$(cat "$D/state/var/lib/strata-t/db")"
fi

# ---------------------------------------------------------------------------
t_begin "services: installed in the layer under /etc/s6, marked in the state dir"
mkdir -p "$M/20260101-004_service/services/strata-t-web/log"
mig 20260101-004_service 'true'
printf '#!/bin/sh\nexec sleep 1000\n' >"$M/20260101-004_service/services/strata-t-web/run"
printf '#!/bin/sh\nexec cat\n' >"$M/20260101-004_service/services/strata-t-web/log/run"
echo 3 >"$M/20260101-004_service/services/strata-t-web/notification-fd"
chmod +x "$M/20260101-004_service/services/strata-t-web/run" "$M/20260101-004_service/services/strata-t-web/log/run"
out=$(sm up 2>&1)
L=$D/system/layers/20260101-004_service/fs
if [ -x "$L/etc/s6/strata-t-web/run" ] && [ -x "$L/etc/s6/strata-t-web/log/run" ] &&
    [ "$(cat "$L/etc/s6/strata-t-web/notification-fd")" = 3 ] &&
    [ "$(cat "$D/state/services/strata-t-web/installed-by")" = 20260101-004_service ] &&
    sm diff 20260101-004_service | grep -q '^A /etc/s6/strata-t-web/run$'; then
    t_ok
else
    t_fail "$out / $(find "$L")"
fi

t_begin "a service dir with an unknown file is an error naming the file; nothing runs"
mkdir -p "$M/20260101-005_badsvc/services/x"
mig 20260101-005_badsvc 'echo SHOULD-NOT-RUN'
printf '#!/bin/sh\n' >"$M/20260101-005_badsvc/services/x/run"
chmod +x "$M/20260101-005_badsvc/services/x/run"
touch "$M/20260101-005_badsvc/services/x/finsih"
out=$(sm up 2>&1)
rc=$?
if [ $rc -eq 2 ] && echo "$out" | grep -q "services/x/finsih" && ! echo "$out" | grep -q SHOULD-NOT-RUN; then
    t_ok
else
    t_fail "exit $rc: $out"
fi
rm -rf "$M/20260101-005_badsvc"

t_begin "a typo in a migration dir name is an error naming it"
mkdir -p "$M/2026011-006_typo"
echo true >"$M/2026011-006_typo/install_script.sh"
out=$(sm up 2>&1)
rc=$?
out2=$(sm status 2>&1)
rc2=$?
rm -rf "$M/2026011-006_typo"
if [ $rc -eq 2 ] && [ $rc2 -eq 2 ] && echo "$out" | grep -q "2026011-006_typo" &&
    echo "$out2" | grep -q "2026011-006_typo"; then
    t_ok
else
    t_fail "exit $rc/$rc2: $out"
fi

# ---------------------------------------------------------------------------
t_begin "two up at once: one applies, the other exits 75 at once"
mig 20260101-006_slow 'echo slow > /opt/strata-t/slow'
if [ "${STRATA_TEST_HOOKS:-0}" != 1 ]; then
    # without the hooks nothing holds the first one at "prepared"
    sm up >/dev/null 2>&1
    echo "ok $T_N - $T_CURRENT # SKIP built without -Dtest_hooks=true"
else
    STRATA_TEST_STOP_AT=prepared "$SM" --data "$D" --dir "$M" --base / up >"$T_TMP/first.out" 2>&1 &
    first=$!
    # wait until the first one stopped itself while holding the lock
    n=0
    while [ "$(awk '{print $3}' /proc/$first/stat 2>/dev/null)" != T ] && [ $n -lt 600 ]; do
        sleep 0.05
        n=$((n + 1))
    done
    out=$(sm up 2>&1)
    rc=$?
    kill -CONT $first
    wait $first
    rc1=$?
    if [ $rc -eq 75 ] && echo "$out" | grep -q "another migration is running (pid $first, 20260101-006_slow)" &&
        [ $rc1 -eq 0 ] && [ "$(sm status --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["pending"]))')" = 0 ]; then
        t_ok
    else
        t_fail "second: $rc $out; first: $rc1 $(cat "$T_TMP/first.out")"
    fi
fi

# ---------------------------------------------------------------------------
t_begin "rollback --to keeps layers aside; up re-applies; gc deletes them"
before=$(manifest /opt/strata-t /etc/s6)
out=$(sm rollback --to 20260101-003_rewrite 2>&1)
rc=$?
st=$(sm status --json)
kept=$(ls -a "$D/system/layers" | grep -c '^\.old-')
r=$(in_root '[ -e $R/opt/strata-t/slow ] && echo slow; [ -e $R/etc/s6/strata-t-web ] && echo web; true')
out2=$(sm up 2>&1)
after=$(manifest /opt/strata-t /etc/s6)
if [ $rc -ne 0 ] || [ -n "$r" ] || [ "$kept" != 2 ]; then
    t_fail "rollback: $rc $out, root shows '$r', kept $kept"
elif ! echo "$st" | python3 -c '
import json, sys
j = json.load(sys.stdin)
assert [x["id"] for x in j["pending"]] == ["20260101-004_service", "20260101-006_slow"], j
assert [x["id"] for x in j["rolled_back"]] == ["20260101-004_service", "20260101-006_slow"], j
'; then
    t_fail "status after rollback: $st"
elif [ "$before" != "$after" ] || ! echo "$out2" | grep -q "applied 20260101-006_slow"; then
    t_fail "re-applied root differs: $out2"
else
    gc=$(sm gc 2>&1)
    if [ "$(ls -a "$D/system/layers" | grep -c '^\.old-')" = 0 ] && echo "$gc" | grep -q "removed 2"; then
        t_ok
    else
        t_fail "gc: $gc"
    fi
fi

t_begin "rollback --last deactivates only the last layer"
sm rollback --last >/dev/null 2>&1
if [ "$(layers_count)" = 4 ] && sm up >/dev/null 2>&1 && [ "$(layers_count)" = 5 ]; then
    t_ok
else
    t_fail "layers: $(layers_count)"
fi

# ---------------------------------------------------------------------------
t_begin "squash of N layers gives an identical root (content, modes, owners, xattrs, links, deletions)"
mig 20260101-007_more 'set -e
rm -rf /opt/strata-t/conf
mkdir /opt/strata-t/conf
echo replaced > /opt/strata-t/conf/new.conf
chmod 600 /opt/strata-t/conf/new.conf
chown 12:34 /opt/strata-t/slow
setfattr -n user.strata -v one /opt/strata-t/slow 2>/dev/null || true
rm /etc/motd
mkdir /etc/motd
ln -sf /etc/hostname /opt/strata-t/link'
mig 20260101-008_evenmore 'set -e
echo again > /opt/strata-t/conf/new.conf
rm -rf /etc/motd
echo file-again > /etc/motd
rm /opt/strata-t/link
setfattr -n user.strata -v two /opt/strata-t/slow 2>/dev/null || true'
sm up >/dev/null 2>&1
paths="/opt/strata-t /etc/s6 /etc/motd /etc/issue.net /var/lib/strata-t"
before=$(manifest $paths)
xb=$(in_root 'getfattr -n user.strata --only-values $R/opt/strata-t/slow 2>/dev/null; true')
out=$(sm squash --from 20260101-002_state --to 20260101-008_evenmore 2>&1)
rc=$?
after=$(manifest $paths)
xa=$(in_root 'getfattr -n user.strata --only-values $R/opt/strata-t/slow 2>/dev/null; true')
if [ $rc -ne 0 ]; then
    t_fail "squash: $out"
elif [ "$(layers_count)" != 2 ]; then
    t_fail "layers after squash: $(layers_count)"
elif [ "$before" != "$after" ] || [ "$xb" != "$xa" ]; then
    t_fail "roots differ: $(printf '%s\n' "$before" >"$T_TMP/b"; printf '%s\n' "$after" >"$T_TMP/a"; diff "$T_TMP/b" "$T_TMP/a")"
elif ! echo "$before" | grep -q "^/etc/issue.net absent"; then
    t_fail "the deletion is not in the stack: $before"
else
    t_ok
fi

t_begin "a squashed layer: status, diff, verify, rollback and re-apply"
st=$(sm status --json)
d=$(sm diff 20260101-004_service)
v=$(sm verify 2>&1)
vrc=$?
if echo "$st" | python3 -c '
import json, sys
j = json.load(sys.stdin)
ids = [x["id"] for x in j["applied"]]
assert ids == ["20260101-001_basics", "20260101-002_state", "20260101-003_rewrite",
               "20260101-004_service", "20260101-006_slow", "20260101-007_more",
               "20260101-008_evenmore"], ids
assert j["applied"][1]["layer"] == "20260101-008_evenmore+5", j
' && echo "$d" | grep -q '^A /etc/s6/strata-t-web/run$' && [ $vrc -eq 0 ]; then
    sm rollback --to 20260101-001_basics >/dev/null 2>&1
    if [ "$(layers_count)" = 1 ] && sm up >/dev/null 2>&1 && [ "$(layers_count)" = 7 ] &&
        [ "$(manifest $paths)" = "$before" ]; then
        t_ok
    else
        t_fail "rollback/up of a squashed layer: $(layers_count)"
    fi
else
    t_fail "$st / $d / $v"
fi

# ---------------------------------------------------------------------------
t_begin "past --max-layers the oldest layers are squashed automatically"
D2=$T_TMP/data2
M2=$T_TMP/migrations2
mkdir -p "$M2"
for i in 1 2 3 4 5 6 7 8 9 10; do
    id=$(printf '20260102-%03d_l' $i)
    mkdir -p "$M2/$id"
    printf 'mkdir -p /opt/strata-many; echo %s > /opt/strata-many/f%02d; rm -f /opt/strata-many/f%02d\n' \
        $i $i $((i - 2)) >"$M2/$id/install_script.sh"
done
out=$("$SM" --data "$D2" --dir "$M2" up --max-layers 4 2>&1)
rc=$?
n=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['layers']))" "$D2/system/migrations/metadata.json")
D_SAVE=$D
D=$D2
files=$(in_root 'ls $R/opt/strata-many | tr "\n" " "')
D=$D_SAVE
if [ $rc -eq 0 ] && [ "$n" -le 4 ] && [ "$files" = "f09 f10 " ] && echo "$out" | grep -q squashed; then
    t_ok
else
    t_fail "exit $rc, $n layers, files '$files': $out"
fi

# ---------------------------------------------------------------------------
t_begin "new LABEL scaffolds the next id for today with an executable script"
p1=$("$SM" --dir "$T_TMP/new" new add_thing)
p2=$("$SM" --dir "$T_TMP/new" new other)
today=$(date +%Y%m%d)
if [ "$p1" = "$T_TMP/new/${today}-001_add_thing/install_script.sh" ] &&
    [ "$p2" = "$T_TMP/new/${today}-002_other/install_script.sh" ] && [ -x "$p1" ] &&
    "$SM" --dir "$T_TMP/new" new Bad-Label 2>/dev/null; then
    t_fail "a bad label was accepted"
elif [ "$p1" = "$T_TMP/new/${today}-001_add_thing/install_script.sh" ] && [ -x "$p1" ] &&
    [ "$p2" = "$T_TMP/new/${today}-002_other/install_script.sh" ]; then
    t_ok
else
    t_fail "$p1 / $p2"
fi

t_begin "usage errors exit 2; unknown ids are named"
"$SM" --data "$D" bogus >/dev/null 2>&1
a=$?
"$SM" --data "$D" rollback >/dev/null 2>&1
b=$?
out=$(sm diff 20990101-001_nope 2>&1)
c=$?
"$SM" --data "$D" up --to 20990101-001_nope --dir "$M" >/dev/null 2>&1
e=$?
if [ $a -eq 2 ] && [ $b -eq 2 ] && [ $c -eq 2 ] && [ $e -eq 2 ] && echo "$out" | grep -q 20990101-001_nope; then
    t_ok
else
    t_fail "$a $b $c $e: $out"
fi

t_begin "up --dry-run lists what would run and changes nothing"
mkdir -p "$M/20260109-001_dry"
echo 'echo SHOULD-NOT-RUN' >"$M/20260109-001_dry/install_script.sh"
meta=$(cat "$D/system/migrations/metadata.json")
out=$(sm up --dry-run 2>&1)
js=$(sm up --dry-run --json 2>/dev/null)
if echo "$out" | grep -q "would apply 20260109-001_dry" && ! echo "$out" | grep -q SHOULD-NOT-RUN &&
    [ "$meta" = "$(cat "$D/system/migrations/metadata.json")" ] &&
    echo "$js" | python3 -c 'import json,sys; assert json.load(sys.stdin)["would_apply"] == [{"id": "20260109-001_dry"}]'; then
    t_ok
else
    t_fail "$out / $js"
fi
rm -rf "$M/20260109-001_dry"

t_begin "--timeout kills a migration: it fails and is rolled back"
D3=$T_TMP/data3
M3=$T_TMP/migrations3
mkdir -p "$M3/20260103-001_hangs"
echo 'echo waiting; touch /opt/strata-timeout; sleep 1000' >"$M3/20260103-001_hangs/install_script.sh"
out=$("$SM" --data "$D3" --dir "$M3" up --timeout 1 2>&1)
rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "20260103-001_hangs.*timed out" &&
    [ -z "$(ls -A "$D3/system/layers")" ] && [ ! -e "$D3/system/migrations/metadata.json" ]; then
    t_ok
else
    t_fail "exit $rc: $out"
fi

t_begin "a machine-wide state-paths file replaces the defaults; services are marked without state"
D4=$T_TMP/data4
M4=$T_TMP/migrations4
mkdir -p "$D4/system" "$M4/20260110-001_svc/services/lonely"
printf '# no state paths on this machine\n' >"$D4/system/state-paths"
echo 'echo x >> /var/log/strata-not-state.log' >"$M4/20260110-001_svc/install_script.sh"
printf '#!/bin/sh\nexec true\n' >"$M4/20260110-001_svc/services/lonely/run"
chmod +x "$M4/20260110-001_svc/services/lonely/run"
"$SM" --data "$D4" --dir "$M4" up >/dev/null 2>&1
rc=$?
if [ $rc -eq 0 ] && [ -f "$D4/state/services/lonely/installed-by" ] &&
    [ -f "$D4/system/layers/20260110-001_svc/fs/var/log/strata-not-state.log" ] &&
    [ ! -e "$D4/state/var/log" ]; then
    t_ok
else
    t_fail "exit $rc: $(find "$D4/state" "$D4/system/layers" | head -20)"
fi

t_begin "an internal error exits 70 and names the path"
touch "$T_TMP/not-a-dir"
out=$("$SM" --data "$T_TMP/not-a-dir/data" --dir "$M" status 2>&1)
rc=$?
if [ $rc -eq 70 ] && echo "$out" | grep -q "$T_TMP/not-a-dir/data"; then
    t_ok
else
    t_fail "exit $rc: $out"
fi

t_begin "every command has --help; strata migrate is the same front-end"
ok=1
for c in new status up install diff rollback squash verify gc; do
    "$SM" "$c" --help | grep -q "Usage: system-migrate $c" || ok=0
done
"$STRATA" migrate status --help | grep -q "Usage: strata migrate status" || ok=0
a=$("$SM" --data "$D" --dir "$M" status --json)
b=$("$STRATA" migrate --data "$D" --dir "$M" status --json)
[ "$a" = "$b" ] || ok=0
if [ $ok = 1 ]; then t_ok; else t_fail "help or strata migrate differ"; fi

t_begin "status on a data dir that does not exist lists what is pending and creates nothing"
ND=$T_TMP/never-created/data
out=$("$SM" --data "$ND" --dir "$M" --base / status --json 2>&1); rc=$?
if [ $rc -eq 0 ] && [ ! -e "$T_TMP/never-created" ] &&
    echo "$out" | python3 -c 'import json, sys; d = json.load(sys.stdin); assert d["applied"] == [] and len(d["pending"]) > 0, d'; then
    t_ok
else
    t_fail "rc=$rc: $out"
fi

t_begin "a malformed metadata.json is an error that names the data dir, the file and the line"
BD=$T_TMP/bad-meta
mkdir -p "$BD/system/migrations"
printf '{"version": 1, "layers": [\n' >"$BD/system/migrations/metadata.json"
err=$("$SM" --data "$BD" --dir "$M" --base / status 2>&1); rc=$?
if [ $rc -ne 0 ] && echo "$err" | grep -q "cannot load the metadata of '$BD'.*metadata.json' line 2"; then
    t_ok
else
    t_fail "rc=$rc: $err"
fi

# ---------------------------------------------------------------------------
# The command line's error paths and recovery (a data dir of their own).
D3=$T_TMP/cli-data
M3=$T_TMP/cli-migrations
mkdir -p "$M3"
sm3() { "$SM" --data "$D3" --dir "$M3" --base / "$@"; }
mig3() {
    mkdir -p "$M3/$1"
    printf '%s\n' "$2" >"$M3/$1/install_script.sh"
}

t_begin "up with a migrations dir that does not exist names it and the cause"
out=$("$SM" --data "$D3" --dir "$T_TMP/no-such-migrations" --base / up 2>&1); rc=$?
if [ $rc -ne 0 ] && echo "$out" | grep -q "cannot open the migrations dir '$T_TMP/no-such-migrations'" &&
    echo "$out" | grep -q "No such file or directory"; then
    t_ok
else
    t_fail "rc=$rc: $out"
fi

t_begin "a sandbox that cannot be set up names the step and the errno at the default level"
# a state path that is a file in the root: its overlay cannot be mounted
mig3 20260301-000_statefile 'echo x >/opt/strata-cli-statefile'
mig3 20260301-001_badstate 'true'
echo '/opt/strata-cli-statefile' >"$M3/20260301-001_badstate/state"
out=$(sm3 up 2>&1); rc=$?
rm -rf "$M3/20260301-001_badstate"
if [ $rc -ne 0 ] && echo "$out" | grep -q "step [0-9]* of [0-9]*" &&
    echo "$out" | grep -Eq "step [0-9]+ of [0-9]+[^:]*: [A-Z][a-z]+"; then
    t_ok
else
    t_fail "rc=$rc: $out"
fi

t_begin "a failed migration keeps its log as migrations/<id>/failed-<time>.log and prints its path"
mig3 20260301-002_fails 'echo strata-failed-log-marker; exit 4'
out=$(sm3 up 2>&1); rc=$?
log=$(ls "$M3/20260301-002_fails"/failed-*.log 2>/dev/null | head -1)
if [ $rc -eq 1 ] && [ -n "$log" ] && grep -q strata-failed-log-marker "$log" &&
    echo "$out" | grep -qF "$log"; then
    t_ok
else
    t_fail "rc=$rc, log '$log': $out"
fi
rm -rf "$M3/20260301-002_fails"

t_begin "a failed install removes the migration it generated"
out=$(sm3 install strata-no-such-package-xyz 2>&1); rc=$?
left=$(ls "$M3" | grep install_ || true)
if [ $rc -eq 1 ] && [ -z "$left" ] && sm3 up 2>&1 | grep -q "nothing to apply"; then
    t_ok
else
    t_fail "rc=$rc, left '$left': $out"
fi

# interrupt SIG: up with a migration that sleeps, SIG once it runs; the
# exit status, the output and what is left.
interrupt() {
    mig3 20260301-003_sleeps 'sleep 30'
    python3 - "$SM" "$D3" "$M3" "$1" >"$T_TMP/int.out" 2>&1 <<'PY'
import os, signal, subprocess, sys, time
sm, d, m, sig = sys.argv[1:5]
p = subprocess.Popen([sm, "--data", d, "--dir", m, "--base", "/", "up"],
                     stderr=subprocess.PIPE, text=True,
                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
layers = os.path.join(d, "system", "layers")
for _ in range(600):
    if os.path.isdir(layers) and any(n.startswith(".tmp-") for n in os.listdir(layers)):
        break
    time.sleep(0.05)
time.sleep(0.5)
p.send_signal(getattr(signal, sig))
err = p.communicate(timeout=60)[1]
print("rc", p.returncode)
print(err)
PY
    rm -rf "$M3/20260301-003_sleeps"
}

for sig in TERM:143 INT:130; do
    t_begin "SIG${sig%%:*} during up: the temp layer is removed, it says interrupted, exit ${sig#*:}"
    interrupt "SIG${sig%%:*}"
    left=$(ls -a "$D3/system/layers" 2>/dev/null | grep '^\.tmp-' || true)
    if grep -q "^rc ${sig#*:}$" "$T_TMP/int.out" && grep -q "interrupted" "$T_TMP/int.out" &&
        [ -z "$left" ]; then
        t_ok
    else
        t_fail "left '$left': $(cat "$T_TMP/int.out")"
    fi
done

t_begin "right after a SIGKILL of up, the next command is not blocked by the dead one's lock"
mig3 20260301-004_killed 'sleep 30'
"$SM" --data "$D3" --dir "$M3" --base / up >/dev/null 2>&1 &
pid=$!
n=0
while ! ls -a "$D3/system/layers" 2>/dev/null | grep -q '^\.tmp-' && [ $n -lt 600 ]; do
    sleep 0.05
    n=$((n + 1))
done
sleep 0.3
kill -KILL $pid
wait $pid 2>/dev/null
out=$(sm3 verify 2>&1); rc=$?
rm -rf "$M3/20260301-004_killed"
if [ $rc -eq 0 ] && ! echo "$out" | grep -q "another migration is running"; then
    t_ok
else
    t_fail "rc=$rc: $out"
fi

t_begin "a busy lock whose holder is dead says the holder is gone"
mkdir -p "$D3/system/lock"
# a holder that is gone, and a process it left that keeps the lock
sh -c 'exec 9>"$1"; flock 9; printf "{\"pid\":%d,\"purpose\":\"gone-holder\",\"since\":1}" 999999 >&9; exec sleep 30' \
    sh "$D3/system/lock/migrate.lock" &
keeper=$!
sleep 0.3
start=$(date +%s%N)
out=$(sm3 up 2>&1); rc=$?
end=$(date +%s%N)
kill $keeper 2>/dev/null
wait $keeper 2>/dev/null
waited=$(((end - start) / 1000000))
if [ $rc -eq 75 ] && echo "$out" | grep -q "999999" && echo "$out" | grep -q "is gone" &&
    [ $waited -ge 1900 ]; then
    t_ok
else
    t_fail "rc=$rc after $waited ms: $out"
fi

t_begin "removing /usr/sbin/policy-rc.d on a base that ships one works"
# A Debian-like base of its own (a static busybox) that ships a policy-rc.d:
# the sandbox's own policy-rc.d goes over it, the script removes it.
PB=$T_TMP/pbase PM=$T_TMP/pmigrations
if [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; then
    mkdir -p "$PB/bin" "$PB/usr/sbin" "$PB/etc" "$PM/20260301-005_no_policy"
    cp /bin/busybox "$PB/bin/busybox"
    for a in sh rm echo test; do ln -s busybox "$PB/bin/$a"; done
    printf '#!/bin/sh\nexit 0\n' >"$PB/usr/sbin/policy-rc.d"
    chmod +x "$PB/usr/sbin/policy-rc.d"
    echo 12.0 >"$PB/etc/debian_version"
    printf '%s\n' 'rm -f /usr/sbin/policy-rc.d; test ! -e /usr/sbin/policy-rc.d && echo removed >/etc/strata-policy-removed' \
        >"$PM/20260301-005_no_policy/install_script.sh"
    out=$("$SM" --data "$T_TMP/pdata" --dir "$PM" --base "$PB" up 2>&1); rc=$?
    L=$T_TMP/pdata/system/layers/20260301-005_no_policy/fs
    if [ $rc -eq 0 ] && [ -e "$L/etc/strata-policy-removed" ] &&
        [ "$(stat -c %F "$L/usr/sbin/policy-rc.d" 2>/dev/null)" = "character special file" ]; then
        t_ok
    else
        t_fail "rc=$rc: $out"
    fi
else
    echo "ok $T_N - $T_CURRENT # SKIP no static /bin/busybox (Debian package busybox-static)"
fi

t_begin "show ID prints the record and the log of one migration"
mig3 20260301-006_shown 'echo strata-show-marker; echo x >/etc/strata-shown'
sm3 up >/dev/null 2>&1
out=$(sm3 show 20260301-006_shown 2>&1); rc=$?
js=$(sm3 show --json 20260301-006_shown)
sm3 show nope >/dev/null 2>&1; rc2=$?
if [ $rc -eq 0 ] && [ $rc2 -eq 2 ] && echo "$out" | grep -q "20260301-006_shown" &&
    echo "$out" | grep -q strata-show-marker && printf '%s\n' "$js" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["id"] == "20260301-006_shown" and d["status"] == "applied", d
assert "strata-show-marker" in d["log"] and d["layer"] and d["applied_at"], d
'; then
    t_ok
else
    t_fail "rc=$rc, unknown: $rc2: $out / $js"
fi

t_begin "rollback --all deactivates every layer: everything is pending again"
out=$(sm3 rollback --all 2>&1); rc=$?
st=$(sm3 status --json)
if [ $rc -eq 0 ] && echo "$st" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["applied"] == [] and len(d["pending"]) >= 1, d
'; then
    t_ok
else
    t_fail "rc=$rc: $out / $st"
fi

t_begin "squashed layer names do not grow with the range; long labels squash"
L=$(printf 'l%.0s' $(seq 1 120))
mig3 "20260302-001_$L" 'echo 1 >/etc/strata-sq1'
mig3 "20260302-002_$L" 'echo 2 >/etc/strata-sq2'
mig3 "20260302-003_$L" 'echo 3 >/etc/strata-sq3'
sm3 up >/dev/null 2>&1
out=$(sm3 squash --from "20260301-006_shown" --to "20260302-003_$L" 2>&1); rc=$?
name=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['layers'][-1]['dir'])" \
    "$D3/system/migrations/metadata.json" 2>/dev/null)
if [ $rc -eq 0 ] && [ ${#name} -le $((13 + 120 + 16)) ]; then
    t_ok
else
    t_fail "rc=$rc, layer '$name': $out"
fi

t_done
