#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# strata orchd as a daemon, through its unix socket and its TCP port: the
# API answers, bad input gets the documented error and loses nothing, a
# second orchd on the same state dir exits 75, the bearer token, SIGHUP,
# a clean SIGTERM, and the s6 service dir under a real s6-svscan. podman
# is a private store in the temp dir (lib-podman.sh).
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
mkdir -p "$T_TMP/norun"
printf '#!/bin/sh\nexec sleep 100\n' >"$T_TMP/norun/run" # not executable
STATE="$T_TMP/state"
SOCK="$T_TMP/orchd.sock"
LOG="$T_TMP/orchd.log"
SRC=${STRATA_SOURCE_ROOT:-$(dirname "$0")/../..}
PIDS=""

cleanup() {
    for p in $PIDS; do kill -KILL "$p" 2>/dev/null; done
    [ -d "$T_TMP/scan" ] && s6-svscanctl -t "$T_TMP/scan" 2>/dev/null
    podman_private_clean
    t_cleanup
}
trap 'cleanup' EXIT
trap 'cleanup; exit 130' INT TERM

# wait_for CMD...: up to 10 s for CMD to succeed.
wait_for() {
    i=0
    while [ $i -lt 100 ]; do
        "$@" >/dev/null 2>&1 && return 0
        i=$((i + 1))
        sleep 0.1
    done
    return 1
}

start_orchd() { # start_orchd STATE SOCK LOG [OPTIONS...]: sets ORCHD_PID and ADDR
    s=$1 k=$2 l=$3
    shift 3
    "$STRATA" orchd --state-dir "$s" --socket "$k" --listen 127.0.0.1:0 --interval 1 "$@" \
        2>"$l" &
    ORCHD_PID=$!
    PIDS="$PIDS $ORCHD_PID"
    wait_for test -s "$s/orchd.address" || return 1
    ADDR=$(cat "$s/orchd.address")
}

# call sock|tcp BODY [CURL ARGS...]: the HTTP status; the body in $T_TMP/resp.
call() {
    via=$1 body=$2
    shift 2
    if [ "$via" = sock ]; then
        curl -s -o "$T_TMP/resp" -w '%{http_code}' --unix-socket "$SOCK" -X POST \
            -H 'Content-Type: application/json' --data-binary "$body" "$@" http://orchd/rpc/v1
    else
        curl -s -o "$T_TMP/resp" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
            --data-binary "$body" "$@" "http://$ADDR/rpc/v1"
    fi
}

# jpath EXPR: a Python expression over the last response `r`.
jpath() {
    python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$T_TMP/resp" "$1" 2>&1
}

req() { # req METHOD [PARAMS]
    printf '{"jsonrpc":"2.0","method":"%s"%s,"id":1}' "$1" "${2:+,\"params\":$2}"
}

t_begin "usage errors exit 2: bad --listen, bad --interval, beyond loopback without a token"
ok=1
for args in "--listen nowhere" "--listen 127.0.0.1:99999" "--interval 0" "--interval x" \
    "--listen 0.0.0.0:0" "--listen none --socket none" "extra"; do
    # shellcheck disable=SC2086
    out=$("$STRATA" orchd --state-dir "$T_TMP/usage" $args 2>&1)
    rc=$?
    if [ $rc -ne 2 ] || [ -z "$out" ]; then
        ok=0
        t_fail "'strata orchd $args': rc $rc, '$out'"
        break
    fi
done
if [ $ok -eq 1 ] && "$STRATA" orchd --state-dir "$T_TMP/usage" --listen 0.0.0.0:0 2>&1 |
    grep -q "beyond loopback without --token-file" && [ ! -e "$T_TMP/usage/manager.pid" ]; then
    t_ok
elif [ $ok -eq 1 ]; then
    t_fail "no message for a non-loopback address"
fi

t_begin "orchd starts, writes its PID file and address, the socket is mode 0600"
if start_orchd "$STATE" "$SOCK" "$LOG" && [ -s "$STATE/manager.pid" ] &&
    [ "$(stat -c %a "$SOCK")" = 600 ] && [ -S "$SOCK" ]; then
    t_ok
else
    t_fail "$(cat "$LOG")"
fi

for via in sock tcp; do
    t_begin "$via: server.info and container.list answer"
    st=$(call $via "$(req server.info)")
    info=$(jpath 'r["result"]["name"], r["result"]["pid"]')
    st2=$(call $via "$(req container.list)")
    if [ "$st" = 200 ] && [ "$info" = "('strata orchd', $ORCHD_PID)" ] && [ "$st2" = 200 ] &&
        [ "$(jpath 'r["result"]')" = "[]" ]; then
        t_ok
    else
        t_fail "status $st/$st2, info '$info', $(cat "$T_TMP/resp")"
    fi

    t_begin "$via: malformed JSON is -32700"
    st=$(call $via '{"jsonrpc": "2.0", "method": "server.info", "id": ')
    if [ "$st" = 200 ] && [ "$(jpath 'r["error"]["code"], r["id"]')" = "(-32700, None)" ]; then
        t_ok
    else t_fail "status $st: $(cat "$T_TMP/resp")"; fi

    t_begin "$via: not a request is -32600, an unknown method -32601"
    st=$(call $via '{"jsonrpc": "1.0", "method": "server.info", "id": 4}')
    a=$(jpath 'r["error"]["code"], r["id"]')
    st2=$(call $via "$(req package.frobnicate)")
    b=$(jpath 'r["error"]["code"], "frobnicate" in r["error"]["message"]')
    if [ "$a" = "(-32600, 4)" ] && [ "$b" = "(-32601, True)" ]; then t_ok; else
        t_fail "'$a' '$b'"
    fi

    t_begin "$via: wrong types and a service dir without an executable run are -32602 naming the field"
    ok=1
    for p in '{"id":"web","dockerImage":12}:dockerImage' '{"id":"web","dockerImage":"i","grace":"30"}:grace' \
        '{"id":"web","dockerImage":"i","tier":"frontend"}:tier' '{"id":"web","dockerImage":"i","command":"sh"}:command' \
        '{"id":5}:id' '{"id":"web","service":42}:service' \
        "{\"id\":\"web\",\"service\":\"$T_TMP/norun\"}:service"; do
        params=${p%:*} field=${p##*:}
        call $via "$(req package.install "$params")" >/dev/null
        got=$(jpath 'r["error"]["code"], r["error"]["data"]["field"]')
        if [ "$got" != "(-32602, '$field')" ]; then
            ok=0
            t_fail "$params: $got"
            break
        fi
    done
    [ $ok -eq 1 ] && t_ok

    t_begin "$via: ids with a slash or shell characters are refused"
    ok=1
    for id in 'a/b' '../x' 'x;reboot' '$(id)' 'a b' 'x`y`' '-x' 'x|y' "x'y"; do
        body=$(python3 -c 'import json, sys; print(json.dumps({"jsonrpc": "2.0", "method": "package.stop", "params": {"id": sys.argv[1]}, "id": 1}))' "$id")
        call $via "$body" >/dev/null
        got=$(jpath 'r["error"]["code"], r["error"]["data"]["field"]')
        if [ "$got" != "(-32602, 'id')" ]; then
            ok=0
            t_fail "id '$id': $got"
            break
        fi
    done
    [ $ok -eq 1 ] && t_ok

    t_begin "$via: a body over 1 MiB is refused with 413, Content-Length or chunked"
    head -c 1100000 /dev/zero | tr '\0' ' ' >"$T_TMP/big"
    st=$(call $via "@$T_TMP/big")
    st2=$(call $via "@$T_TMP/big" -H 'Transfer-Encoding: chunked')
    if [ "$st" = 413 ] && [ "$st2" = 413 ] && [ "$(jpath 'r["error"]["code"]')" = -32600 ]; then
        t_ok
    else t_fail "status $st / $st2: $(head -c 300 "$T_TMP/resp")"; fi

    t_begin "$via: GET is 405, another path 404"
    if [ "$via" = sock ]; then
        a=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" http://orchd/rpc/v1)
        b=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X POST -d '{}' http://orchd/other)
    else
        a=$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/rpc/v1")
        b=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{}' "http://$ADDR/other")
    fi
    if [ "$a" = 405 ] && [ "$b" = 404 ]; then t_ok; else t_fail "GET $a, other path $b"; fi

    t_begin "$via: a batch answers each request; notifications get no answer"
    st=$(call $via '[{"jsonrpc":"2.0","method":"server.info","id":1},{"jsonrpc":"2.0","method":"container.list"},{"jsonrpc":"2.0","method":"x","id":2}]')
    got=$(jpath 'len(r), r[0]["id"], r[1]["error"]["code"]')
    st2=$(call $via '{"jsonrpc":"2.0","method":"server.info"}')
    if [ "$st" = 200 ] && [ "$got" = "(2, 1, -32601)" ] && [ "$st2" = 204 ]; then t_ok; else
        t_fail "status $st: $got; notification $st2"
    fi

    t_begin "$via: an application error carries the engine's message"
    call $via "$(req package.start '{"id":"nope"}')" >/dev/null
    got=$(jpath 'r["error"]["code"], r["error"]["data"]["errno"], "no package" in r["error"]["message"]')
    if [ "$got" = "(-32000, 'ENOENT', True)" ]; then t_ok; else t_fail "$got"; fi
done

t_begin "after all that: still serving, nothing created, no error lines in the log"
st=$(call sock "$(req server.info)")
if [ "$st" = 200 ] && kill -0 "$ORCHD_PID" && [ -z "$(pm ps -a -q)" ] &&
    ! grep -Eq ' (error|crit|alert|emerg): ' "$LOG"; then
    t_ok
else
    t_fail "status $st; $(pm ps -a 2>&1); $(grep -E ' error: ' "$LOG")"
fi

t_begin "a second orchd on the same state dir exits 75 and the first keeps serving"
out=$("$STRATA" orchd --state-dir "$STATE" --socket "$T_TMP/second.sock" --listen 127.0.0.1:0 2>&1)
rc=$?
st=$(call sock "$(req server.info)")
if [ $rc -eq 75 ] && echo "$out" | grep -q "busy" && [ "$st" = 200 ] &&
    [ "$(jpath 'r["result"]["pid"]')" = "$ORCHD_PID" ] && [ ! -e "$T_TMP/second.sock" ]; then
    t_ok
else
    t_fail "rc $rc: $out; status $st"
fi

t_begin "SIGHUP with a broken config keeps the old one; a good one is taken"
echo '{"pull": {"attempts": 0}}' >"$STATE/config.json"
kill -HUP "$ORCHD_PID"
wait_for grep -q "config not reloaded" "$LOG"
a=$?
echo '{"stop": {"default_grace_seconds": 7}}' >"$STATE/config.json"
kill -HUP "$ORCHD_PID"
wait_for grep -q "config reloaded" "$LOG"
b=$?
st=$(call tcp "$(req server.info)")
if [ $a -eq 0 ] && [ $b -eq 0 ] && [ "$st" = 200 ]; then t_ok; else
    t_fail "$(tail -5 "$LOG")"
fi
rm -f "$STATE/config.json"

t_begin "the health monitor runs every interval"
wait_for sh -c "[ \$(grep -c . '$STATE/restart-tracker.json') -ge 1 ]"
call sock "$(req server.info)" >/dev/null
p1=$(jpath 'r["result"]["health_passes"]')
sleep 2.2
call sock "$(req server.info)" >/dev/null
p2=$(jpath 'r["result"]["health_passes"]')
if [ "$p2" -gt "$p1" ] 2>/dev/null; then t_ok; else t_fail "passes $p1 -> $p2"; fi

t_begin "SIGTERM: exit 0, PID file, socket and address removed, snapshot written"
kill -TERM "$ORCHD_PID"
wait "$ORCHD_PID"
rc=$?
if [ $rc -eq 0 ] && [ ! -e "$STATE/manager.pid" ] && [ ! -e "$SOCK" ] &&
    [ ! -e "$STATE/orchd.address" ] && [ -s "$STATE/snapshot.json" ] &&
    grep -q "stopped cleanly" "$LOG"; then
    t_ok
else
    t_fail "rc $rc; $(ls "$STATE"); $(tail -3 "$LOG")"
fi

t_begin "with --token-file every request needs the bearer token"
TOKEN=strata-test-token-$$-0123456789
echo "$TOKEN" >"$T_TMP/token"
echo short >"$T_TMP/short-token"
"$STRATA" orchd --state-dir "$T_TMP/s2" --socket none --listen 127.0.0.1:0 \
    --token-file "$T_TMP/short-token" 2>"$T_TMP/short.log"
rc_short=$?
start_orchd "$T_TMP/s2" "$T_TMP/s2.sock" "$T_TMP/s2.log" --token-file "$T_TMP/token"
a=$(call tcp "$(req server.info)")
b=$(call tcp "$(req server.info)" -H "Authorization: Bearer wrong-token-0000000000")
c=$(call tcp "$(req server.info)" -H "Authorization: Bearer $TOKEN")
SOCK="$T_TMP/s2.sock" d=$(call sock "$(req server.info)")
kill -TERM "$ORCHD_PID"
wait "$ORCHD_PID"
if [ $rc_short -eq 1 ] && [ "$a" = 401 ] && [ "$b" = 401 ] && [ "$c" = 200 ] && [ "$d" = 401 ]; then
    t_ok
else
    t_fail "short token rc $rc_short; no token $a, wrong $b, right $c, socket $d"
fi

t_begin "the s6 service dir: run and finish executable, timeout-kill a number"
SV="$SRC/services/strata-orchd"
if [ -x "$SV/run" ] && [ -x "$SV/finish" ] && grep -Eq '^[0-9]+$' "$SV/timeout-kill" &&
    sh -n "$SV/run" && sh -n "$SV/finish"; then
    t_ok
else
    t_fail "$(ls -l "$SV" 2>&1)"
fi

t_begin "under a real s6-svscan: up and serving, s6-svc -d stops it cleanly"
mkdir -p "$T_TMP/scan"
cp -R "$SV" "$T_TMP/scan/strata-orchd"
mkdir -p "$T_TMP/scan/strata-orchd/env"
printf '%s' "$STRATA" >"$T_TMP/scan/strata-orchd/env/STRATA"
printf '%s' "$T_TMP/s6state" >"$T_TMP/scan/strata-orchd/env/STRATA_ORCH_STATE_DIR"
printf '%s' "$T_TMP/s6.sock" >"$T_TMP/scan/strata-orchd/env/STRATA_ORCHD_SOCKET"
printf '127.0.0.1:0' >"$T_TMP/scan/strata-orchd/env/STRATA_ORCHD_LISTEN"
s6-svscan "$T_TMP/scan" >"$T_TMP/s6.log" 2>&1 &
SCAN_PID=$!
PIDS="$PIDS $SCAN_PID"
SOCK="$T_TMP/s6.sock"
up=1
wait_for sh -c "curl -s -f --unix-socket '$SOCK' -X POST -d '$(req server.info)' http://x/rpc/v1" || up=0
svpid=$(s6-svstat -p "$T_TMP/scan/strata-orchd" 2>/dev/null)
s6-svc -d "$T_TMP/scan/strata-orchd"
s6-svwait -D -t 10000 "$T_TMP/scan/strata-orchd" 2>/dev/null
down=$(s6-svstat -o up "$T_TMP/scan/strata-orchd" 2>/dev/null)
if [ $up -eq 1 ] && [ "$down" = false ] && [ ! -e "$T_TMP/s6state/manager.pid" ] &&
    grep -q "stopped cleanly" "$T_TMP/s6.log" && ! kill -0 "$svpid" 2>/dev/null; then
    t_ok
else
    t_fail "up $up, svstat up '$down', pid $svpid; $(cat "$T_TMP/s6.log" | tail -5)"
fi
s6-svscanctl -t "$T_TMP/scan"
wait "$SCAN_PID" 2>/dev/null

t_done
