#!/bin/sh
# The strata front-end: help, version, usage errors, doctor and mounts.
. "$(dirname "$0")/lib.sh"
: "${STRATA:?STRATA must name the strata binary}"
: "${SYSTEM_MIGRATE:?SYSTEM_MIGRATE must name the system-migrate binary}"

t_begin "strata --help lists the commands and exits 0"
out=$("$STRATA" --help) && echo "$out" | grep -q '^  doctor ' && echo "$out" | grep -q '^  mounts ' &&
    t_ok || t_fail "$out"

t_begin "strata --version and strata version agree"
a=$("$STRATA" --version) && b=$("$STRATA" version) && [ "$a" = "$b" ] &&
    [ "$a" = "strata $("$STRATA_SOURCE_ROOT/scripts/version")" ] && t_ok || t_fail "'$a' vs '$b'"

t_begin "every command has --help and strata help CMD"
ok=1
for c in $("$STRATA" --help | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p'); do
    "$STRATA" "$c" --help >/dev/null 2>&1 || { ok=0; echo "# $c --help failed"; }
    "$STRATA" help "$c" | grep -q "Usage: strata $c" || { ok=0; echo "# help $c failed"; }
done
[ $ok = 1 ] && t_ok || t_fail

t_begin "an unknown command is a usage error (2) that names it"
err=$("$STRATA" frobnicate 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q "unknown command 'frobnicate'" && t_ok || t_fail "rc=$rc: $err"

t_begin "no command is a usage error"
"$STRATA" >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && t_ok || t_fail "rc=$rc"

t_begin "an unknown option is a usage error"
"$STRATA" mounts --bogus >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && t_ok || t_fail "rc=$rc"

t_begin "option errors name the program and the command"
ok=1
# COMMAND=PREFIX: migrate and pkg take their options before or after the
# subcommand, so the prefix is the command's.
for spec in "lab run=lab run" "lab test=lab test" "migrate=migrate" "migrate up=migrate" \
    "pkg=pkg" "pkg list=pkg" "mounts=mounts" "doctor=doctor" "version=version"; do
    cmd=${spec%%=*} prefix=${spec#*=}
    # shellcheck disable=SC2086
    err=$("$STRATA" $cmd --bogus 2>&1); rc=$?
    [ $rc -eq 2 ] && echo "$err" | grep -q "^strata $prefix: unrecognized option '--bogus'" ||
        { ok=0; echo "# $cmd: rc=$rc: $err"; }
done
err=$("$SYSTEM_MIGRATE" up --bogus 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q "^system-migrate: unrecognized option '--bogus'" ||
    { ok=0; echo "# system-migrate: rc=$rc: $err"; }
[ $ok = 1 ] && t_ok || t_fail

t_begin "version takes no arguments: extra ones are usage errors"
ok=1
for args in "version --bogus" "version extra" "-V extra" "--version extra"; do
    # shellcheck disable=SC2086
    "$STRATA" $args >/dev/null 2>&1; rc=$?
    [ $rc -eq 2 ] || { ok=0; echo "# strata $args: rc=$rc"; }
done
[ $ok = 1 ] && t_ok || t_fail

t_begin "system-migrate -V and --version print the version"
a=$("$SYSTEM_MIGRATE" -V) && b=$("$SYSTEM_MIGRATE" --version) && [ "$a" = "$b" ] &&
    [ "$a" = "system-migrate $("$STRATA_SOURCE_ROOT/scripts/version")" ] && t_ok || t_fail "'$a' vs '$b'"

t_begin "an invalid log level is rejected with its name"
err=$("$STRATA" --log-level=loud version 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q "invalid log level 'loud'" && t_ok || t_fail "rc=$rc: $err"

t_begin "doctor --json is valid JSON with the required checks"
out=$("$STRATA" doctor --json); rc=$?
echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
names = {c["name"] for c in d["checks"]}
assert {"root", "kernel", "overlayfs", "namespaces"} <= names, names
assert isinstance(d["ok"], bool)
assert (d["ok"] and '"$rc"' == 0) or (not d["ok"] and '"$rc"' == 1)
' && t_ok || t_fail "rc=$rc: $out"

if [ "$(id -u)" -eq 0 ]; then
    # Other tests mount and unmount in parallel, so look only at what the
    # probe itself would leave: a mount on or a new dir named after it.
    t_begin "doctor mounts an overlay for real and leaves no mount behind"
    probe_dirs() { find /tmp -maxdepth 1 -name 'strata-doctor-*' | sort; }
    before=$(probe_dirs)
    out=$("$STRATA" doctor --json)
    left=$(grep -c ' /tmp/strata-doctor-' /proc/self/mountinfo)
    after=$(probe_dirs)
    echo "$out" | python3 -c '
import json, sys
d = {c["name"]: c for c in json.load(sys.stdin)["checks"]}
assert d["overlayfs"]["status"] == "ok", d["overlayfs"]
' && [ "$left" -eq 0 ] && [ "$before" = "$after" ] && t_ok ||
        t_fail "probe mounts left: $left; probe dirs before: [$before] after: [$after]; $out"
fi

t_tmpdir
t_begin "mounts --table reads a file, in unmount order, filtered by path"
cat >"$T_TMP/mi" <<'MI'
20 1 8:1 / / rw - ext4 /dev/sda1 rw
30 20 0:40 / /srv rw - tmpfs tmpfs rw
31 30 0:41 / /srv/a rw - tmpfs tmpfs rw
40 20 0:43 / /srvx rw - tmpfs tmpfs rw
MI
out=$("$STRATA" mounts --json --table "$T_TMP/mi" /srv)
echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert [m["target"] for m in d] == ["/srv/a", "/srv"], d
' && t_ok || t_fail "$out"

t_begin "mounts names the file it cannot read"
err=$("$STRATA" mounts --table "$T_TMP/missing" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$err" | grep -q "$T_TMP/missing" && t_ok || t_fail "rc=$rc: $err"

t_begin "mounts --table on a file that is not a mount table is an error naming it"
printf 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\n' >"$T_TMP/passwd"
out=$("$STRATA" mounts --table "$T_TMP/passwd" 2>"$T_TMP/err"); rc=$?
err=$(cat "$T_TMP/err")
[ $rc -eq 1 ] && [ -z "$out" ] && echo "$err" | grep -q "'$T_TMP/passwd' is not a mount table" &&
    t_ok || t_fail "rc=$rc: $out $err"

# Loading the migrations dir (system-migrate status reads it and nothing else;
# the data dir need not exist).
MD=$T_TMP/migrations
sm_status() { "$SYSTEM_MIGRATE" --data "$T_TMP/nodata" --dir "$MD" status 2>&1; }
# mig ID: a migration whose script does nothing.
mig() { mkdir -p "$MD/$1" && echo true >"$MD/$1/install_script.sh"; }

t_begin "dot-entries in the migrations dir (.git, .vscode) are ignored"
rm -rf "$MD"; mig 20260101-001_a; mkdir -p "$MD/.git/objects" "$MD/.vscode"
out=$(sm_status); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q '^  20260101-001_a$' && t_ok || t_fail "rc=$rc: $out"

t_begin "a missing install_script.sh and a dangling link to one are told apart"
rm -rf "$MD"; mkdir -p "$MD/20260101-001_a"
out=$(sm_status); rc=$?
ok=1
{ [ $rc -eq 2 ] && echo "$out" | grep -q "20260101-001_a' lacks install_script.sh" &&
    ! echo "$out" | grep -q "Invalid argument"; } || { ok=0; echo "# missing: rc=$rc: $out"; }
ln -s gone.sh "$MD/20260101-001_a/install_script.sh"
out=$(sm_status); rc=$?
{ [ $rc -eq 2 ] && echo "$out" | grep -q "install_script.sh' is a dangling symlink to 'gone.sh'"; } ||
    { ok=0; echo "# dangling: rc=$rc: $out"; }
[ $ok = 1 ] && t_ok || t_fail

t_begin "a service or services/ that is not a directory says so, not 'Invalid argument'"
rm -rf "$MD"; mig 20260101-001_a; mkdir -p "$MD/20260101-001_a/services"
touch "$MD/20260101-001_a/services/web"
out=$(sm_status); rc=$?
ok=1
{ [ $rc -eq 2 ] && echo "$out" | grep -q "services/web' is not a directory" &&
    ! echo "$out" | grep -q "Invalid argument"; } || { ok=0; echo "# web: rc=$rc: $out"; }
rm -rf "$MD/20260101-001_a/services"; touch "$MD/20260101-001_a/services"
out=$(sm_status); rc=$?
{ [ $rc -eq 2 ] && echo "$out" | grep -q "20260101-001_a/services' is not a directory" &&
    ! echo "$out" | grep -q "Invalid argument"; } || { ok=0; echo "# services: rc=$rc: $out"; }
[ $ok = 1 ] && t_ok || t_fail

t_begin "an impossible date in an id is rejected, naming the dir"
ok=1
for id in 20261399-001_a 20260230-001_a 20250229-001_a 20260100-001_a; do
    rm -rf "$MD"; mig "$id"
    out=$(sm_status); rc=$?
    { [ $rc -eq 2 ] && echo "$out" | grep -q "$id" && echo "$out" | grep -q "not a date"; } ||
        { ok=0; echo "# $id: rc=$rc: $out"; }
done
rm -rf "$MD"; mig 20240229-001_leap
out=$(sm_status); rc=$?
[ $rc -eq 0 ] || { ok=0; echo "# leap day: rc=$rc: $out"; }
[ $ok = 1 ] && t_ok || t_fail

t_begin "two migrations with one sequence number are rejected, naming both"
rm -rf "$MD"; mig 20260101-001_alpha; mig 20260101-001_beta; mig 20260101-002_gamma
out=$(sm_status); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "20260101-001_alpha" && echo "$out" | grep -q "20260101-001_beta" &&
    t_ok || t_fail "rc=$rc: $out"

t_begin "s6-rc style service dirs are rejected: plain s6 needs an executable run"
ok=1
for kind in oneshot bundle up; do
    rm -rf "$MD"; mig 20260101-001_a; sd=$MD/20260101-001_a/services/web; mkdir -p "$sd"
    case $kind in
    up) printf '#!/bin/sh\n' >"$sd/run"; chmod +x "$sd/run"; echo 'echo hi' >"$sd/up" ;;
    oneshot) echo oneshot >"$sd/type"; echo 'echo hi' >"$sd/up" ;;
    bundle) echo bundle >"$sd/type"; echo other >"$sd/contents" ;;
    esac
    out=$(sm_status); rc=$?
    { [ $rc -eq 2 ] && echo "$out" | grep -q "services/web" &&
        echo "$out" | grep -q "plain s6" && echo "$out" | grep -q "executable 'run'"; } ||
        { ok=0; echo "# $kind: rc=$rc: $out"; }
done
[ $ok = 1 ] && t_ok || t_fail

t_begin "labels are limited so every derived name fits: a longer one is refused by new"
rm -rf "$MD"; mkdir -p "$MD"
long=$(printf 'a%.0s' $(seq 1 121))
out=$(cd "$T_TMP" && "$SYSTEM_MIGRATE" --data "$T_TMP/nodata" --dir "$MD" new "$long" 2>&1); rc=$?
[ $rc -eq 2 ] && [ -z "$(ls "$MD")" ] && echo "$out" | grep -q "at most 120" && t_ok ||
    t_fail "rc=$rc: $out"

if [ "$(id -u)" -eq 0 ]; then
    t_begin "a label of the longest length applies"
    rm -rf "$MD" "$T_TMP/data"; mkdir -p "$MD"
    max=$(printf 'b%.0s' $(seq 1 120))
    out= st=
    smd() { "$SYSTEM_MIGRATE" --data "$T_TMP/data" --dir "$MD" --base / "$@"; }
    script=$(smd new "$max") && echo 'echo long >/etc/strata-long-label' >"$script" &&
        out=$(smd up 2>&1) && st=$(smd status --json) &&
        echo "$st" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert len(d["applied"]) == 1 and d["applied"][0]["id"].endswith("_" + "b" * 120), d
' && t_ok || t_fail "$out $st"
fi

t_begin "verify on a corrupt metadata.json exits 1 naming the file, that it is not JSON, and where"
BD=$T_TMP/bad-meta
rm -rf "$MD"; mkdir -p "$MD" "$BD/system/migrations"
printf '{"version": 1, "layers": [\n' >"$BD/system/migrations/metadata.json"
err=$("$SYSTEM_MIGRATE" --data "$BD" --dir "$MD" verify 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$err" | grep -q "metadata.json' line 2 column [0-9]*: not valid JSON" &&
    ! echo "$err" | grep -q "Bad message" && t_ok || t_fail "rc=$rc: $err"

t_begin "verify and gc on a --data dir that does not exist fail and create nothing"
ok=1
for cmd in verify gc "verify --json" "gc --json"; do
    # shellcheck disable=SC2086
    out=$("$SYSTEM_MIGRATE" --data "$T_TMP/absent/data" --dir "$MD" $cmd 2>&1); rc=$?
    { [ $rc -ne 0 ] && [ ! -e "$T_TMP/absent" ] && echo "$out" | grep -q "$T_TMP/absent/data" &&
        echo "$out" | grep -q "does not exist"; } || { ok=0; echo "# $cmd: rc=$rc: $out"; }
done
[ $ok = 1 ] && t_ok || t_fail

t_begin "status with a --dir that does not exist fails naming it"
out=$("$SYSTEM_MIGRATE" --data "$T_TMP/nodata" --dir "$T_TMP/no-migrations" status 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "$T_TMP/no-migrations" &&
    echo "$out" | grep -q "No such file or directory" && t_ok || t_fail "rc=$rc: $out"

t_begin "every --json command prints one object with an error member when it fails"
rm -rf "$MD"; mkdir -p "$MD"
ok=1
for cmd in "diff nope" "rollback --to nope" "squash --from a --to b" "status" "new Bad-Label" \
    "up --to nope" "rollback" "verify extra"; do
    dir=$MD
    [ "$cmd" = status ] && dir=$T_TMP/none
    # shellcheck disable=SC2086
    out=$("$SYSTEM_MIGRATE" --data "$T_TMP/jdata" --dir "$dir" --json $cmd 2>/dev/null); rc=$?
    echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert isinstance(d, dict) and isinstance(d.get("error"), str) and d["error"] not in ("", "failed"), d
' 2>/dev/null && [ $rc -ne 0 ] || { ok=0; echo "# $cmd: rc=$rc: '$out'"; }
done
[ $ok = 1 ] && t_ok || t_fail

if [ "$(id -u)" -eq 0 ]; then
    JD=$T_TMP/qdata
    rm -rf "$MD" "$JD"; mkdir -p "$MD"
    for i in 1 2 3; do
        mkdir -p "$MD/20260101-00${i}_q$i"
        echo "echo $i >/etc/strata-cli-q$i" >"$MD/20260101-00${i}_q$i/install_script.sh"
    done
    smq() { "$SYSTEM_MIGRATE" --data "$JD" --dir "$MD" --base / "$@"; }

    t_begin "-q and --log-level=error silence the 'applying' progress; the default shows it"
    e1=$(smq -q up --to 20260101-001_q1 2>&1 >/dev/null)
    e2=$(smq --log-level=error up --to 20260101-002_q2 2>&1 >/dev/null)
    e3=$(smq up 2>&1 >/dev/null)
    [ -z "$e1" ] && [ -z "$e2" ] && echo "$e3" | grep -q "applying 20260101-003_q3" && t_ok ||
        t_fail "-q: '$e1'; --log-level=error: '$e2'; default: '$e3'"

    t_begin "a busy up --json names the holder in its error"
    exec 9>"$JD/system/lock/migrate.lock"
    flock 9
    printf '{"pid":%d,"purpose":"cli-test-holder","since":1}' $$ >&9
    out=$(smq --json up 2>/dev/null); rc=$?
    exec 9>&-
    [ $rc -eq 75 ] && echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert "cli-test-holder" in d["error"] and str('$$') in d["error"], d
' && t_ok || t_fail "rc=$rc: $out"

    t_begin "after squash, status and diff say which layer a migration was squashed into"
    smq squash --from 20260101-001_q1 --to 20260101-002_q2 >/dev/null 2>&1
    layer=$(smq status --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["applied"][0]["layer"])')
    st=$(smq status); sj=$(smq status --json); dj=$(smq diff --json 20260101-001_q1)
    de=$(smq diff 20260101-002_q2 2>&1 >/dev/null)
    echo "$st" | grep "20260101-001_q1" | grep -q "squashed into $layer" &&
        echo "$st" | grep "20260101-002_q2" | grep -q "squashed into $layer" &&
        ! echo "$st" | grep "20260101-003_q3" | grep -q "squashed" &&
        echo "$sj" | python3 -c '
import json, sys
a = json.load(sys.stdin)["applied"]
assert a[0]["squashed_into"] == a[1]["squashed_into"] == a[0]["layer"], a
assert "squashed_into" not in a[2], a
' && echo "$dj" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["squashed_into"] == sys.argv[1], d
' "$layer" && echo "$de" | grep -q "squashed into $layer" && t_ok ||
        t_fail "layer '$layer'; status: $st; diff --json: $dj; diff stderr: $de"
fi

if [ "$(id -u)" -eq 0 ]; then
    t_begin "the crash hooks exist only in test builds (-Dtest_hooks=true)"
    HD=$T_TMP/hook-data
    rm -rf "$MD"; mkdir -p "$MD/20260101-001_hook"
    echo true >"$MD/20260101-001_hook/install_script.sh"
    STRATA_TEST_KILL_AT=locked "$SYSTEM_MIGRATE" --data "$HD" --dir "$MD" --base / up \
        >/dev/null 2>&1
    rc=$?
    in_binary=$(grep -c STRATA_TEST_KILL_AT "$SYSTEM_MIGRATE")
    if [ "${STRATA_TEST_HOOKS:-0}" = 1 ]; then
        [ $rc -eq 137 ] && [ "$in_binary" -gt 0 ] && t_ok ||
            t_fail "test build: rc=$rc, string in binary: $in_binary"
    else
        [ $rc -eq 0 ] && [ "$in_binary" -eq 0 ] && t_ok ||
            t_fail "shipped build: rc=$rc, string in binary: $in_binary"
    fi
fi

t_done
