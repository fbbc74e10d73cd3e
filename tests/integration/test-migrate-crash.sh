#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Crash safety of system-migrate: SIGKILL at every step of `up` (through the
# STRATA_TEST_KILL_AT hook, and once from outside while the script runs),
# then `verify` reports and repairs, metadata lists only whole layers, and a
# new `up` completes. Also SIGKILL in the middle of squash and rollback.
. "$(dirname "$0")/lib.sh"
need_root
need_program python3
SM=${SYSTEM_MIGRATE:?SYSTEM_MIGRATE is not set}
[ "${STRATA_TEST_HOOKS:-0}" = 1 ] ||
    t_skip_all "system-migrate is built without the crash hooks (meson -Dtest_hooks=true; make check turns it on)"
t_tmpdir
M=$T_TMP/migrations

mkdir -p "$M/20260103-001_first" "$M/20260103-002_second/services/crashsvc"
echo 'mkdir -p /opt/strata-crash && echo one > /opt/strata-crash/one' >"$M/20260103-001_first/install_script.sh"
cat >"$M/20260103-002_second/install_script.sh" <<'S'
set -e
echo two > /opt/strata-crash/two
mkdir -p /var/lib/strata-crash
echo state > /var/lib/strata-crash/data
S
echo /var/lib/strata-crash >"$M/20260103-002_second/state"
printf '#!/bin/sh\nexec sleep 1000\n' >"$M/20260103-002_second/services/crashsvc/run"
chmod +x "$M/20260103-002_second/services/crashsvc/run"

# whole DATA: every layer in metadata has fs/, layer.json and changes.list,
# and no other layer dir than the active ones and kept-aside .old-* exists.
whole() {
    python3 - "$1" <<'EOF2'
import json, os, sys
d = sys.argv[1]
m = json.load(open(d + "/system/migrations/metadata.json")) \
    if os.path.exists(d + "/system/migrations/metadata.json") else {"layers": []}
dirs = set()
for e in m["layers"]:
    p = d + "/system/layers/" + e["dir"]
    for f in ("fs", "layer.json", "changes.list"):
        if not os.path.exists(p + "/" + f):
            sys.exit("layer %s lacks %s" % (e["dir"], f))
    dirs.add(e["dir"])
for n in os.listdir(d + "/system/layers"):
    if n not in dirs and not n.startswith(".old-"):
        sys.exit("leftover layer dir %s" % n)
for n in os.listdir(d + "/system/migrations"):
    if n != "metadata.json" and not any(n in e["migrations"] for e in m["layers"]):
        sys.exit("record of a migration that is not applied: %s" % n)
print(" ".join(x for e in m["layers"] for x in e["migrations"]))
EOF2
}

for step in locked prepared ran captured written synced recorded renamed committed finished; do
    t_begin "SIGKILL at '$step', then verify repairs and up completes"
    D=$T_TMP/data-$step
    "$SM" --data "$D" --dir "$M" up --to 20260103-001_first >/dev/null 2>&1
    STRATA_TEST_KILL_AT=$step "$SM" --data "$D" --dir "$M" up >"$T_TMP/out" 2>&1
    rc=$?
    v=$("$SM" --data "$D" --dir "$M" verify 2>&1)
    vrc=$?
    w=$(whole "$D" 2>&1)
    wrc=$?
    case $step in
    committed | finished) want_after_kill="20260103-001_first 20260103-002_second" ;;
    *) want_after_kill="20260103-001_first" ;;
    esac
    "$SM" --data "$D" --dir "$M" up >"$T_TMP/up" 2>&1
    urc=$?
    w2=$(whole "$D" 2>&1)
    if [ $rc -ne 137 ]; then
        t_fail "not killed: exit $rc $(cat "$T_TMP/out")"
    elif [ $vrc -ne 0 ] || [ $wrc -ne 0 ] || [ "$w" != "$want_after_kill" ]; then
        t_fail "after verify ($vrc: $v): $w"
    elif [ $urc -ne 0 ] || [ "$w2" != "20260103-001_first 20260103-002_second" ]; then
        t_fail "up after the kill: $urc $(cat "$T_TMP/up") / $w2"
    elif [ "$(cat "$D/state/var/lib/strata-crash/data" 2>/dev/null)" != state ] ||
        [ "$(cat "$D/state/services/crashsvc/installed-by" 2>/dev/null)" != 20260103-002_second ]; then
        t_fail "state or service marker missing: $(find "$D/state")"
    elif [ -e "$D/system/layers/20260103-002_second/state-pending" ]; then
        t_fail "state still pending in the layer"
    else
        t_ok
    fi
    case $step in
    locked) ;;
    *)
        t_begin "verify after SIGKILL at '$step' said what it repaired"
        case $step in
        committed) echo "$v" | grep -q "finished moving the state" && t_ok || t_fail "$v" ;;
        finished) t_ok ;;
        *) echo "$v" | grep -q "removed the leftover" && t_ok || t_fail "$v" ;;
        esac
        ;;
    esac
done

t_begin "SIGKILL from outside while the script runs: no leftover, up completes"
D=$T_TMP/data-outside
mkdir -p "$M/20260103-003_slow"
echo 'echo started; sleep 1000' >"$M/20260103-003_slow/install_script.sh"
"$SM" --data "$D" --dir "$M" up >"$T_TMP/slow.out" 2>&1 &
pid=$!
n=0
while ! grep -q started "$T_TMP/slow.out" && [ $n -lt 1200 ]; do
    sleep 0.05
    n=$((n + 1))
done
kill -KILL $pid
wait $pid
rc=$?
# the sandbox dies with its parent (no sleep left behind in it)
n=0
while pgrep -f "sleep 1000" >/dev/null && [ $n -lt 200 ]; do
    sleep 0.05
    n=$((n + 1))
done
echo 'echo fast > /opt/strata-crash/fast' >"$M/20260103-003_slow/install_script.sh"
v=$("$SM" --data "$D" --dir "$M" verify 2>&1)
"$SM" --data "$D" --dir "$M" up >/dev/null 2>&1
urc=$?
w=$(whole "$D")
if [ $rc -eq 137 ] && echo "$v" | grep -q "removed the leftover" && [ $urc -eq 0 ] &&
    [ "$w" = "20260103-001_first 20260103-002_second 20260103-003_slow" ] &&
    ! pgrep -f "sleep 1000" >/dev/null; then
    t_ok
else
    t_fail "kill $rc, verify: $v, up $urc, layers $w"
fi

for step in squash-renamed rollback-renamed; do
    t_begin "SIGKILL at '$step': verify restores the active layers"
    D=$T_TMP/data-$step
    "$SM" --data "$D" --dir "$M" up >/dev/null 2>&1
    before=$(whole "$D")
    case $step in
    squash-renamed) cmd="squash --from 20260103-001_first --to 20260103-003_slow" ;;
    *) cmd="rollback --to 20260103-001_first" ;;
    esac
    # shellcheck disable=SC2086
    STRATA_TEST_KILL_AT=$step "$SM" --data "$D" --dir "$M" $cmd >/dev/null 2>&1
    rc=$?
    v=$("$SM" --data "$D" --dir "$M" verify 2>&1)
    vrc=$?
    after=$(whole "$D")
    # shellcheck disable=SC2086
    "$SM" --data "$D" --dir "$M" $cmd >/dev/null 2>&1
    crc=$?
    if [ $rc -eq 137 ] && [ $vrc -eq 0 ] && [ "$before" = "$after" ] &&
        echo "$v" | grep -q "restored the layer dir" && [ $crc -eq 0 ]; then
        t_ok
    else
        t_fail "kill $rc, verify $vrc: $v; before '$before' after '$after'; again $crc"
    fi
done

t_done
