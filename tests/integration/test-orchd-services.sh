#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Native services through strata orchd's API, supervised by a real
# s6-svscan on a scan dir in the temp dir: install (failsafe), stop with
# the grace period as timeout-kill, start, the health monitor restarting a
# crashed service, crash recovery after SIGKILL of the daemon, bad service
# dirs, uninstall. podman is a private store (lib-podman.sh) for the
# container half of the engine, which stays empty here.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-podman.sh"

need_root
not_in_image "it runs podman, and podman does not run nested in the container"
need_program podman podman
need_program curl curl
need_program python3 python3
need_program s6-svscan s6
[ -f /sys/fs/cgroup/cgroup.controllers ] || need_program runc runc

t_tmpdir
podman_private "$T_TMP/podman"
STATE="$T_TMP/state"
SOCK="$T_TMP/orchd.sock"
LOG="$T_TMP/orchd.log"
SCAN="$T_TMP/scan"
PIDS=""

cleanup() {
    for p in $PIDS; do kill -KILL "$p" 2>/dev/null; done
    [ -d "$SCAN" ] && s6-svscanctl -t "$SCAN" 2>/dev/null
    sleep 0.2
    podman_private_clean
    t_cleanup
}
trap 'cleanup' EXIT
trap 'cleanup; exit 130' INT TERM

wait_for() { # wait_for TENTHS CMD...
    n=$1
    shift
    i=0
    while [ $i -lt "$n" ]; do
        "$@" >/dev/null 2>&1 && return 0
        i=$((i + 1))
        sleep 0.1
    done
    return 1
}

start_orchd() {
    "$STRATA" orchd --state-dir "$STATE" --socket "$SOCK" --listen none --interval 1 \
        --scan-dir "$SCAN" 2>>"$LOG" &
    ORCHD_PID=$!
    PIDS="$PIDS $ORCHD_PID"
    wait_for 100 test -s "$STATE/orchd.address"
}

call() { # call BODY: the HTTP status; the body in $T_TMP/resp
    curl -s -o "$T_TMP/resp" -w '%{http_code}' --unix-socket "$SOCK" -X POST \
        --data-binary "$1" http://orchd/rpc/v1
}
jpath() {
    python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$T_TMP/resp" "$1" 2>&1
}
req() { printf '{"jsonrpc":"2.0","method":"%s"%s,"id":1}' "$1" "${2:+,\"params\":$2}"; }
svstat() { s6-svstat -o "$2" "$SCAN/$1" 2>/dev/null; }

# The service sources: one that stops on SIGTERM, one that ignores it, one
# that exits at once, one without an executable run.
mkdir -p "$T_TMP/src/good" "$T_TMP/src/stubborn" "$T_TMP/src/bad" "$T_TMP/src/norun" "$SCAN"
cat >"$T_TMP/src/good/run" <<'SVEOF'
#!/bin/sh
trap 'exit 0' TERM
while :; do sleep 0.1; done
SVEOF
cat >"$T_TMP/src/stubborn/run" <<'SVEOF'
#!/bin/sh
trap '' TERM
while :; do sleep 0.1; done
SVEOF
printf '#!/bin/sh\necho "fatal: no config" >&2\nexit 3\n' >"$T_TMP/src/bad/run"
printf '#!/bin/sh\nexec sleep 1000\n' >"$T_TMP/src/norun/run"
chmod 755 "$T_TMP/src/good/run" "$T_TMP/src/stubborn/run" "$T_TMP/src/bad/run"
chmod 644 "$T_TMP/src/norun/run"
mkdir -p "$STATE"
echo '{"install": {"watch_seconds": 1}}' >"$STATE/config.json"

s6-svscan "$SCAN" >"$T_TMP/s6.log" 2>&1 &
SCAN_PID=$!
PIDS="$PIDS $SCAN_PID"

t_begin "orchd starts with native services in a live s6 scan dir"
if start_orchd && wait_for 50 grep -q "s6 services in $SCAN" "$LOG"; then t_ok; else t_fail "$(cat "$LOG")"; fi

t_begin "install a service: running under s6, tier and grace as asked, timeout-kill set"
st=$(call "$(req package.install "{\"id\":\"good\",\"service\":\"$T_TMP/src/good\",\"tier\":\"database\",\"grace\":2}")")
got=$(jpath 'r["result"]["kind"], r["result"]["state"], r["result"]["tier"], r["result"]["grace_seconds"]')
if [ "$st" = 200 ] && [ "$got" = "('service', 'running', 'database', 2)" ] &&
    [ "$(svstat good up)" = true ] && [ "$(cat "$SCAN/good/timeout-kill")" = 2000 ] &&
    [ -e "$SCAN/good/down" ]; then
    t_ok
else
    t_fail "status $st: $got; $(cat "$T_TMP/resp")"
fi

t_begin "container.list shows it beside the (no) containers"
call "$(req container.list)" >/dev/null
got=$(jpath '[(c["name"], c["kind"], c["state"]) for c in r["result"]]')
if [ "$got" = "[('good', 'service', 'running')]" ]; then t_ok; else t_fail "$got"; fi

t_begin "stop: down through s6, and the health monitor leaves it down"
call "$(req package.stop '{"id":"good"}')" >/dev/null
a=$(jpath 'r["result"]["state"]')
sleep 2.5
if [ "$a" = exited ] && [ "$(svstat good up)" = false ] &&
    grep -q '"good"' "$STATE/user-stopped.json"; then
    t_ok
else
    t_fail "state '$a', s6 up '$(svstat good up)'"
fi

t_begin "start: up again"
call "$(req package.start '{"id":"good"}')" >/dev/null
if [ "$(jpath 'r["result"]["state"]')" = running ] && [ "$(svstat good up)" = true ]; then t_ok; else
    t_fail "$(cat "$T_TMP/resp")"
fi

t_begin "killed behind the daemon's back: the health monitor restarts it within two intervals (+1 s)"
old=$(svstat good pid)
kill -KILL "$old"
wait_for 30 sh -c "[ \"\$(s6-svstat -o up '$SCAN/good')\" = true ] && [ \"\$(s6-svstat -o pid '$SCAN/good')\" != '$old' ]"
rc=$?
# the log line comes once the pass is done (the start is seen sooner)
wait_for 20 grep -q "health: restarted 'good'" "$LOG"
if [ $rc -eq 0 ] && grep -q "health: restarted 'good'" "$LOG"; then t_ok; else
    t_fail "s6 up '$(svstat good up)' pid $(svstat good pid) (was $old); $(cat "$LOG"); $(cat "$T_TMP/s6.log")"
fi

t_begin "the stop grace period reaches s6: a service ignoring SIGTERM is killed after it"
call "$(req package.install "{\"id\":\"stubborn\",\"service\":\"$T_TMP/src/stubborn\",\"grace\":1}")" >/dev/null
t0=$(date +%s%N)
call "$(req package.stop '{"id":"stubborn"}')" >/dev/null
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
if [ "$(svstat stubborn up)" = false ] && [ "$(svstat stubborn signal)" = SIGKILL ] &&
    [ $ms -ge 900 ]; then
    t_ok
else
    t_fail "up $(svstat stubborn up), signal $(svstat stubborn signal), stop took $ms ms"
fi

# call_bg NAME BODY: the call in the background, its body in $T_TMP/NAME
call_bg() {
    curl -s -o "$T_TMP/$1" --unix-socket "$SOCK" -X POST --data-binary "$2" \
        http://orchd/rpc/v1 &
    BG=$!
}
stopping() { call "$(req server.info)" >/dev/null && [ "$(jpath 'r["result"]["stopping"]')" = "['$1']" ]; }

# The grace period of a stop or restart is spent without the engine's
# lock: while one waits out its grace, other calls are answered (and a
# second call for the same package, made after them, is told it is busy:
# so the first was still under way when they were answered).
for op in stop restart; do
    t_begin "$op waits out its grace (5 s) without holding the daemon: other calls answered meanwhile"
    if [ $op = stop ]; then
        call "$(req package.install "{\"id\":\"slow\",\"service\":\"$T_TMP/src/stubborn\",\"grace\":5}")" >/dev/null
    else
        call "$(req package.start '{"id":"slow"}')" >/dev/null
    fi
    call_bg "$op.out" "$(req package.$op '{"id":"slow"}')"
    if ! wait_for 100 stopping slow; then
        t_fail "server.info never showed 'slow' stopping: $(cat "$T_TMP/resp")"
        wait "$BG"
        continue
    fi
    list_st=$(call "$(req container.list)")
    names=$(jpath 'sorted(c["name"] for c in r["result"])')
    busy_st=$(call "$(req package.stop '{"id":"slow"}')")
    busy=$(jpath 'r["error"]["code"], "being stopped" in r["error"]["message"]')
    wait "$BG"
    cp "$T_TMP/$op.out" "$T_TMP/resp"
    got=$(jpath 'r["result"]["state"]')
    if [ $op = stop ]; then
        [ "$got" = exited ] && [ "$(svstat slow signal)" = SIGKILL ] && [ "$(svstat slow up)" = false ]
    else
        [ "$got" = running ] && [ "$(svstat slow up)" = true ]
    fi
    end=$?
    if [ "$list_st" = 200 ] && [ "$names" = "['good', 'slow', 'stubborn']" ] && [ "$busy_st" = 200 ] &&
        [ "$busy" = "(-32001, True)" ] && [ $end -eq 0 ]; then
        t_ok
    else
        t_fail "list $list_st $names; second stop $busy_st $busy; $op: $got; $(cat "$T_TMP/resp")"
    fi
done
call "$(req package.uninstall '{"id":"slow"}')" >/dev/null

t_begin "SIGKILL of orchd; a restarted one recovers the service that ran"
kill -KILL "$ORCHD_PID"
wait "$ORCHD_PID" 2>/dev/null
s6-svc -d "$SCAN/good"
s6-svwait -D -t 5000 "$SCAN/good"
start_orchd
wait_for 30 sh -c "[ \"\$(s6-svstat -o up '$SCAN/good')\" = true ]"
# the log line comes once the start is done (the service is seen up sooner)
wait_for 20 grep -q "recovery: started 'good'" "$LOG"
if [ "$(svstat good up)" = true ] && grep -q "recovery: started 'good'" "$LOG"; then
    t_ok
else
    t_fail "good: $(s6-svstat "$SCAN/good"); $(grep recovery "$LOG"); $(tail -5 "$T_TMP/s6.log")"
fi

t_begin "bad service dirs are refused, naming the field; nothing lands in the scan dir"
ok=1
for p in "{\"id\":\"x\",\"service\":\"$T_TMP/src/norun\"}|service|executable" \
    "{\"id\":\"x\",\"service\":\"$T_TMP/src/missing\"}|service|not a directory" \
    "{\"id\":\"x\",\"service\":\"src/good\"}|service|absolute" \
    "{\"id\":\"x\",\"service\":\"$T_TMP/src/good\",\"dockerImage\":\"i\"}|dockerImage|images" \
    "{\"id\":\"x/y\",\"service\":\"$T_TMP/src/good\"}|id|letters"; do
    params=${p%%|*} rest=${p#*|}
    field=${rest%%|*} words=${rest#*|}
    call "$(req package.install "$params")" >/dev/null
    got=$(jpath 'r["error"]["code"], r["error"]["data"]["field"]')
    if [ "$got" != "(-32602, '$field')" ] || ! jpath 'r["error"]["message"]' | grep -q "$words"; then
        ok=0
        t_fail "$params: $(cat "$T_TMP/resp")"
        break
    fi
done
if [ $ok -eq 1 ] && [ ! -e "$SCAN/x" ]; then t_ok; elif [ $ok -eq 1 ]; then t_fail "'$SCAN/x' exists"; fi

t_begin "failsafe: a service that exits at once is removed again, with its exit code"
call "$(req package.install "{\"id\":\"bad\",\"service\":\"$T_TMP/src/bad\"}")" >/dev/null
msg=$(jpath 'r["error"]["code"], r["error"]["message"]')
if echo "$msg" | grep -q -- "-32000" && echo "$msg" | grep -q "exit code 3" && [ ! -e "$SCAN/bad" ] &&
    [ -z "$(ls -A "$SCAN" | grep strata- )" ]; then
    t_ok
else
    t_fail "$msg; $(ls -A "$SCAN")"
fi

t_begin "uninstall: out of the scan dir, its supervisor gone, its state forgotten"
call "$(req package.uninstall '{"id":"good"}')" >/dev/null
a=$(jpath 'r["result"]["state"]')
call "$(req package.uninstall '{"id":"stubborn"}')" >/dev/null
call "$(req container.list)" >/dev/null
if [ "$a" = removed ] && [ "$(jpath 'r["result"]')" = "[]" ] && [ -z "$(ls "$SCAN")" ] &&
    ! grep -q '"good"' "$STATE/restart-tracker.json" &&
    [ -z "$(ps -o args= --ppid "$SCAN_PID" | grep s6-supervise)" ]; then
    t_ok
else
    t_fail "state '$a'; scan dir: $(ls -A "$SCAN"); $(cat "$T_TMP/resp")"
fi

t_begin "the daemon log has no error lines"
if ! grep -Eq ' (error|crit|alert|emerg): ' "$LOG"; then t_ok; else t_fail "$(grep ' error: ' "$LOG")"; fi

kill -TERM "$ORCHD_PID"
wait "$ORCHD_PID"
t_done
