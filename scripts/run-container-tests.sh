#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Smoke tests of strata orchd over its JSON-RPC API only, against real
# podman (and, with --start, a real local registry).
#
#   scripts/run-container-tests.sh --start          start a private orchd, podman store
#                                                   and registry in a temp dir
#   scripts/run-container-tests.sh [--socket PATH]  test a running orchd
#       [--log FILE]                                (its log, for the error-line test)
#       [--registry-port PORT]                      (a port its podman trusts)
#
# Options: --interval S (the started orchd's health period, 2), --timeout S
# (the cap, 300), --strata PATH (the binary; $STRATA or build/src/cli/strata).
# Without --start, podman is reached as the daemon reaches it: set
# CONTAINERS_CONF and STRATA_PODMAN_ROOT/RUNROOT/RUNTIME as for the daemon.
# The daemon-crash test then SIGKILLs the running orchd (server.info's pid,
# a process of this machine) and starts it again as it ran (its command
# line, environment, directory and output files, from /proc), in a session
# of its own, left running. The pull-retry test needs --registry-port: a
# loopback port the daemon's podman trusts as an insecure registry
# (registries.conf), where the test runs its registry; without it, it is
# skipped.
#
# Output: one JSON object per test ({"test", "result": pass|fail|skip,
# "seconds", "detail"}), then {"summary": {...}}. Exit 0 only when every test
# that ran passed; 1 otherwise; 2 usage; 77 when podman is missing.
# Whatever the tests made (containers, images, registry, daemon, temp dir)
# is removed at the end, also after a failure, an interrupt or the cap.
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
START=0
SOCK=/run/strata/orchd.sock
DAEMON_LOG=""
INTERVAL=2
CAP=300
REG_PORT=""
STRATA=${STRATA:-$SRC/build/src/cli/strata}

usage() { sed -n '3,30s/^# \{0,1\}//p' "$0"; }
while [ $# -gt 0 ]; do
    case "$1" in
    --start) START=1 ;;
    --socket) SOCK=$2; shift ;;
    --log) DAEMON_LOG=$2; shift ;;
    --registry-port) REG_PORT=$2; shift ;;
    --interval) INTERVAL=$2; shift ;;
    --timeout) CAP=$2; shift ;;
    --strata) STRATA=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run-container-tests: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$INTERVAL$CAP" in *[!0-9.]*) echo "run-container-tests: --interval and --timeout take seconds" >&2; exit 2 ;; esac
case "$REG_PORT" in *[!0-9]*) echo "run-container-tests: --registry-port takes a port number" >&2; exit 2 ;; esac
[ $START -eq 0 ] || [ -z "$REG_PORT" ] ||
    { echo "run-container-tests: --registry-port is for a running orchd: not with --start" >&2; exit 2; }

for p in podman curl python3; do
    command -v "$p" >/dev/null 2>&1 || { echo "run-container-tests: '$p' is not installed" >&2; exit 77; }
done
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 ||
    { echo "run-container-tests: needs a static /bin/busybox (busybox-static)" >&2; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/strata-smoke.XXXXXX")
. "$SRC/tests/integration/lib-podman.sh"
TAG="$$"
IMAGE="localhost/strata-smoke-busybox:$TAG"
WEB=smoke-web-$TAG
PULLED=smoke-pulled-$TAG
ORCHD_PID=""
REG_PID=""
WATCHDOG=""
PASSED=0 FAILED=0 SKIPPED=0
T0=$(date +%s%N)

if [ $START -eq 1 ]; then
    [ "$(id -u)" -eq 0 ] || { echo "run-container-tests: --start needs root" >&2; rm -rf "$T"; exit 77; }
    podman_private "$T/podman"
    STATE="$T/state"
    SOCK="$T/orchd.sock"
    DAEMON_LOG="$T/orchd.log"
else
    PM_DIR=${STRATA_PODMAN_ROOT:+$(dirname "$STRATA_PODMAN_ROOT")}
    PM_RUNTIME=${STRATA_PODMAN_RUNTIME:-}
    pm() {
        podman ${STRATA_PODMAN_ROOT:+--root "$STRATA_PODMAN_ROOT"} \
            ${STRATA_PODMAN_RUNROOT:+--runroot "$STRATA_PODMAN_RUNROOT"} \
            ${PM_RUNTIME:+--runtime "$PM_RUNTIME"} "$@"
    }
fi

cleanup() {
    trap '' INT TERM
    [ -n "$WATCHDOG" ] && kill "$WATCHDOG" 2>/dev/null
    if [ -S "$SOCK" ]; then
        for id in "$WEB" "$PULLED"; do
            rpc package.uninstall "{\"id\":\"$id\"}" >/dev/null 2>&1
        done
    fi
    if [ -n "$ORCHD_PID" ]; then
        kill -TERM "$ORCHD_PID" 2>/dev/null
        wait "$ORCHD_PID" 2>/dev/null
    fi
    [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
    pm rm -f -t 0 "$WEB" "$PULLED" >/dev/null 2>&1
    pm rmi -f "$IMAGE" "127.0.0.1:${REG_PORT:-0}/strata-smoke/busybox:$TAG" >/dev/null 2>&1
    [ $START -eq 1 ] && podman_private_clean
    rm -rf "$T"
}
summary() {
    secs=$(python3 -c "print(round(($(date +%s%N) - $T0) / 1e9, 2))")
    printf '{"summary": {"passed": %d, "failed": %d, "skipped": %d, "seconds": %s%s}}\n' \
        "$PASSED" "$FAILED" "$SKIPPED" "$secs" "${1:+, \"error\": \"$1\"}"
}
trap 'cleanup' EXIT
# (fd 3: the script's stdout, where the summary goes also when the cap
# strikes while a test's output goes to its detail file; closed for every
# process started in the background, which would hold a caller's pipe)
exec 3>&1
trap 'FAILED=$((FAILED + 1)); summary "interrupted or over the ${CAP} s cap" >&3; exit 1' INT TERM
( sleep "$CAP" && kill -TERM $$ ) >/dev/null 2>&1 </dev/null 3>&- &
WATCHDOG=$!

# rpc METHOD [PARAMS]: the response body on stdout (empty if none).
rpc() {
    curl -s -m 60 --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
        --data-binary "{\"jsonrpc\":\"2.0\",\"method\":\"$1\"${2:+,\"params\":$2},\"id\":1}" \
        http://orchd/rpc/v1
}
# jq_ EXPR: a Python expression over the JSON on stdin (`r`).
jq_() {
    python3 -c 'import json, sys
r = json.load(sys.stdin)
v = eval(sys.argv[1])
print(v if not isinstance(v, (dict, list)) else json.dumps(v))' "$1" 2>/dev/null
}
json_str() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# state ID: the package's state in container.list ("absent" if not listed)
state() {
    rpc container.list | jq_ "([c['state'] for c in r['result'] if c['name'] == '$1'] or ['absent'])[0]"
}
wait_state() { # wait_state ID STATE TENTHS
    i=0
    while [ $i -lt "$3" ]; do
        [ "$(state "$1")" = "$2" ] && return 0
        i=$((i + 1))
        sleep 0.1
    done
    return 1
}

# run NAME FUNCTION: one test, one JSON line. The function prints a detail
# and returns 0 (pass), 1 (fail) or 77 (skip). It runs in this shell (what
# it starts and the variables it sets stay), its output into a file.
run() {
    t_start=$(date +%s%N)
    $2 >"$T/detail" 2>&1 </dev/null
    rc=$?
    detail=$(cat "$T/detail")
    secs=$(python3 -c "print(round(($(date +%s%N) - $t_start) / 1e9, 2))")
    case $rc in
    0) result=pass; PASSED=$((PASSED + 1)) ;;
    77) result=skip; SKIPPED=$((SKIPPED + 1)) ;;
    *) result=fail; FAILED=$((FAILED + 1)) ;;
    esac
    printf '{"test": "%s", "result": "%s", "seconds": %s, "detail": %s}\n' "$1" "$result" "$secs" \
        "$(json_str "$(printf '%s' "$detail" | tail -c 2000)")"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_orchd() {
    "$STRATA" orchd --state-dir "$STATE" --socket "$SOCK" --listen 127.0.0.1:0 \
        --interval "$INTERVAL" >/dev/null 2>>"$DAEMON_LOG" </dev/null 3>&- &
    ORCHD_PID=$!
    i=0
    while [ $i -lt 100 ]; do
        [ -s "$STATE/orchd.address" ] && rpc server.info | grep -q '"result"' && return 0
        i=$((i + 1))
        sleep 0.1
    done
    echo "orchd did not come up: $(tail -5 "$DAEMON_LOG")"
    return 1
}

setup() {
    write_pull_helpers
    write_respawn_helper
    HTTP_PORT=$(free_port)
    MARKER="strata-smoke-$TAG-$(date +%s)"
    busybox_image "$IMAGE" "$T/rootfs" index.html "$MARKER" || { echo "podman import failed"; return 1; }
    if [ $START -eq 1 ]; then
        REG_PORT=$(free_port)
        printf '[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$REG_PORT" >"$T/registries.conf"
        export CONTAINERS_REGISTRIES_CONF="$T/registries.conf"
        mkdir -p "$STATE"
        # short pull delays and watch, so the run stays well under the cap
        echo '{"pull": {"attempts": 3, "delays_seconds": [3, 4]}, "install": {"watch_seconds": 2}}' \
            >"$STATE/config.json"
        start_orchd || return 1
    fi
    rpc server.info | grep -q '"result"' || { echo "no orchd answers on '$SOCK'"; return 1; }
    echo "orchd on $SOCK; image $IMAGE; httpd on 127.0.0.1:$HTTP_PORT"
}

t_list() {
    out=$(rpc container.list)
    [ "$(echo "$out" | jq_ 'type(r["result"]).__name__')" = list ] || { echo "$out"; return 1; }
    echo "$(echo "$out" | jq_ 'len(r["result"])') package(s)"
}

t_install() {
    out=$(rpc package.install "{\"id\":\"$WEB\",\"dockerImage\":\"$IMAGE\",\"tier\":\"infra\",\"grace\":3,\"network\":\"host\",\"command\":[\"/bin/httpd\",\"-f\",\"-p\",\"127.0.0.1:$HTTP_PORT\",\"-h\",\"/www\"]}")
    [ "$(echo "$out" | jq_ 'r["result"]["state"]')" = running ] || { echo "$out"; return 1; }
    wait_state "$WEB" running 50 || { echo "not running: $(state "$WEB")"; return 1; }
    echo "installed $WEB, running"
}

http_get() {
    i=0
    while [ $i -lt 50 ]; do
        body=$(curl -s -m 5 "http://127.0.0.1:$HTTP_PORT/index.html") && [ -n "$body" ] && {
            printf '%s' "$body"
            return 0
        }
        i=$((i + 1))
        sleep 0.1
    done
    return 1
}

t_http() {
    body=$(http_get)
    [ "$body" = "$MARKER" ] || { echo "GET gave '$body'"; return 1; }
    echo "GET http://127.0.0.1:$HTTP_PORT/index.html: $body"
}

t_stop() {
    t_s=$(now_ms)
    out=$(rpc package.stop "{\"id\":\"$WEB\"}")
    ms=$(($(now_ms) - t_s))
    [ "$(echo "$out" | jq_ '"result" in r')" = True ] || { echo "$out"; return 1; }
    st=$(pm inspect --format '{{.State.Status}} {{.Config.StopTimeout}}' "$WEB" 2>&1)
    [ "$st" = "exited 3" ] || { echo "podman says '$st'"; return 1; }
    [ "$(state "$WEB")" != running ] || { echo "still listed running"; return 1; }
    ! curl -s -m 2 "http://127.0.0.1:$HTTP_PORT/index.html" >/dev/null || { echo "still answers HTTP"; return 1; }
    # httpd as PID 1 ignores SIGTERM: podman waits the grace period, then kills
    [ $ms -ge 3000 ] || { echo "stopped in $ms ms, before the 3 s grace period"; return 1; }
    echo "stopped in $ms ms (grace 3 s, then SIGKILL); podman: $st (state, stop timeout)"
}

t_start() {
    out=$(rpc package.start "{\"id\":\"$WEB\"}")
    [ "$(echo "$out" | jq_ 'r["result"]["state"]')" = running ] || { echo "$out"; return 1; }
    [ "$(http_get)" = "$MARKER" ] || { echo "no HTTP after start"; return 1; }
    echo "running and answering again"
}

t_health() {
    out=$(rpc container.health)
    a=$(echo "$out" | jq_ "[(a['action'], a['reason']) for a in r['result']['actions'] if a['name'] == '$WEB']")
    [ "$a" = '[["skip", "running"]]' ] || { echo "$out"; return 1; }
    echo "health: $a"
}

t_tracker() {
    dir=$(rpc server.info | jq_ 'r["result"]["state_dir"]')
    f="$dir/restart-tracker.json"
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
assert d["version"] == 1 and sys.argv[2] in d["containers"], d' "$f" "$WEB" 2>&1 || return 1
    echo "'$f' parses and tracks $WEB"
}

t_reconcile() {
    before=$(pm inspect --format '{{.State.StartedAt}}' "$WEB")
    # no `podman wait`: the monitor may restart it before wait sees the
    # exit, and wait would then block on the next one
    pm kill "$WEB" >/dev/null 2>&1 || { echo "podman kill failed"; return 1; }
    t_kill=$(now_ms)
    limit=$(python3 -c "print(int(2 * $INTERVAL * 10) + 10)") # two intervals, +1 s for the pass
    i=0
    while [ $i -lt "$limit" ]; do
        after=$(pm inspect --format '{{.State.Status}} {{.State.StartedAt}}' "$WEB" 2>/dev/null)
        if [ "${after%% *}" = running ] && [ "${after#* }" != "$before" ]; then
            echo "restarted by the health monitor $(($(now_ms) - t_kill)) ms after the kill (interval ${INTERVAL} s)"
            return 0
        fi
        i=$((i + 1))
        sleep 0.1
    done
    echo "not restarted within two intervals: $after"
    return 1
}

t_daemon_crash() {
    if [ $START -eq 1 ]; then
        kill -KILL "$ORCHD_PID"
        wait "$ORCHD_PID" 2>/dev/null
        ORCHD_PID=""
    else
        # the running daemon: taken down and started again as it ran
        pid=$(rpc server.info | jq_ 'r["result"]["pid"]')
        python3 "$T/respawn.py" capture "${pid:-0}" "$T/respawn.json" || return 77
        kill -KILL "$pid"
        i=0
        while [ -e "/proc/$pid" ] && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ] &&
            [ $i -lt 100 ]; do
            i=$((i + 1))
            sleep 0.1
        done
    fi
    # what ran before the crash, down while no daemon watches
    pm stop -t 0 "$WEB" >/dev/null 2>&1
    if [ $START -eq 1 ]; then
        start_orchd || return 1
    else
        python3 "$T/respawn.py" start "$T/respawn.json" >/dev/null || return 1
        i=0
        until rpc server.info | grep -q '"result"'; do
            i=$((i + 1))
            [ $i -lt 100 ] || { echo "the restarted orchd does not answer on '$SOCK'"; return 1; }
            sleep 0.1
        done
    fi
    wait_state "$WEB" running 50 || { echo "not recovered: $(state "$WEB")"; return 1; }
    [ -z "$DAEMON_LOG" ] || grep -q "recovery: started '$WEB'" "$DAEMON_LOG" ||
        { echo "no recovery in the log"; return 1; }
    [ "$(http_get)" = "$MARKER" ] || { echo "no HTTP after recovery"; return 1; }
    echo "SIGKILLed orchd; the new one recovered $WEB"
}

# The helper of t_daemon_crash without --start (setup writes it):
# "capture PID FILE" notes the daemon's command line, environment,
# directory and the files of its stdin, stdout and stderr (or skips, 77,
# when PID is no orchd of this machine); "start FILE" starts it so again,
# in a session of its own, and prints its pid.
write_respawn_helper() {
    cat >"$T/respawn.py" <<'EOF'
import json, os, stat, subprocess, sys

if sys.argv[1] == "capture":
    pid, out = sys.argv[2], sys.argv[3]
    try:
        argv = open("/proc/%s/cmdline" % pid, "rb").read().split(b"\0")[:-1]
        env = open("/proc/%s/environ" % pid, "rb").read().split(b"\0")[:-1]
        cwd = os.readlink("/proc/%s/cwd" % pid)
        fds = [os.readlink("/proc/%s/fd/%d" % (pid, n)) for n in range(3)]
    except OSError as e:
        print("the daemon (pid %s) is not a process of this machine: %s" % (pid, e))
        sys.exit(77)
    argv = [a.decode() for a in argv]
    if "orchd" not in argv:
        print("pid %s is not an orchd: %s" % (pid, " ".join(argv)))
        sys.exit(77)
    env = dict(e.decode().split("=", 1) for e in env if b"=" in e)
    json.dump({"argv": argv, "env": env, "cwd": cwd, "fds": fds}, open(out, "w"))
    sys.exit(0)

d = json.load(open(sys.argv[2]))
files = []
for n, path in enumerate(d["fds"]):
    try:
        ok = path.startswith("/") and (stat.S_ISREG(os.stat(path).st_mode) or path == "/dev/null")
    except OSError:
        ok = False
    files.append(open(path if ok else "/dev/null", "rb" if n == 0 else "ab"))
p = subprocess.Popen(d["argv"], env=d["env"], cwd=d["cwd"], stdin=files[0], stdout=files[1],
                     stderr=files[2], start_new_session=True)
print(p.pid)
EOF
}

# The registry is down for the first two attempts (a listener on its port
# that drops every connection and notes when), then the real registry
# comes up and the third attempt pulls. podman itself retries a failed
# pull a few times, 1 s apart: each of our attempts is one burst of
# connections, and the gaps between the bursts are the policy's delays,
# plus what an attempt takes to reach the registry (a new podman process:
# up to the time the first one took from the request, on a slow machine
# such as a TCG guest seconds).
wait_registry() {
    i=0
    until curl -s -m 1 "http://127.0.0.1:$REG_PORT/v2/" >/dev/null; do
        i=$((i + 1))
        [ $i -lt 50 ] || { echo "the registry did not start: $(tail -3 "$1")"; return 1; }
        sleep 0.1
    done
}

t_pull_retry() {
    [ -n "$REG_PORT" ] ||
        { echo "needs --start or --registry-port (the daemon must trust the test's registry)"; return 77; }
    command -v docker-registry >/dev/null 2>&1 || { echo "docker-registry is not installed"; return 77; }
    cat >"$T/registry.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: json
storage:
  filesystem:
    rootdirectory: $T/registry
http:
  addr: 127.0.0.1:$REG_PORT
EOF
    ref="127.0.0.1:$REG_PORT/strata-smoke/busybox:$TAG"
    # seed it with the image, then take it down
    docker-registry serve "$T/registry.yml" >"$T/registry-seed.log" 2>&1 </dev/null 3>&- &
    REG_PID=$!
    wait_registry "$T/registry-seed.log" || return 1
    pm push -q --tls-verify=false "$IMAGE" "$ref" >/dev/null 2>&1 || { echo "push failed"; return 1; }
    kill "$REG_PID"
    wait "$REG_PID" 2>/dev/null
    REG_PID=""
    pm rmi -f "$ref" >/dev/null 2>&1

    info=$(rpc server.info)
    attempts=$(echo "$info" | jq_ 'r["result"]["policy"]["pull"]["attempts"]')
    d1=$(echo "$info" | jq_ 'r["result"]["policy"]["pull"]["delays_seconds"][0]')
    d2=$(echo "$info" | jq_ '(r["result"]["policy"]["pull"]["delays_seconds"] * 2)[1]')
    [ "${attempts:-0}" -ge 3 ] || { echo "the policy allows $attempts attempts; need 3"; return 77; }
    python3 -c "import sys; sys.exit(0 if min($d1, $d2) >= 2 else 1)" ||
        { echo "delays $d1, $d2 s: too close to podman's own 1 s retries to tell apart"; return 77; }

    # down: two bursts of dropped connections, then out of the way
    python3 "$T/down.py" "$REG_PORT" "$T/down.json" 3>&- &
    down_pid=$!
    sleep 0.3

    t_req=$(date +%s.%N)
    rpc package.install "{\"id\":\"$PULLED\",\"dockerImage\":\"$ref\",\"pull\":\"always\",\"grace\":1,\"network\":\"none\",\"command\":[\"/bin/sleep\",\"1000\"]}" \
        >"$T/pull-install.json" 3>&- &
    install_pid=$!
    sleep 0.5
    # meanwhile the API answers at once
    t_q=$(now_ms)
    rpc server.info | grep -q '"installing":\["'"$PULLED"'"\]' || { echo "server.info does not show the install"; return 1; }
    q_ms=$(($(now_ms) - t_q))
    wait "$down_pid"
    docker-registry serve "$T/registry.yml" >"$T/registry.log" 2>&1 </dev/null 3>&- &
    REG_PID=$!
    wait "$install_pid"
    out=$(cat "$T/pull-install.json")
    [ "$(echo "$out" | jq_ 'r["result"]["state"]')" = running ] || { echo "install: $out"; return 1; }
    verdict=$(python3 "$T/verdict.py" "$T/down.json" "$T/registry.log" "$d1" "$d2" "$t_req")
    # (blocked behind the install it would have waited for both delays:
    # the bound leaves a slow machine its seconds per call)
    q_max=$(python3 -c "print(int(($d1 + $d2 - 1) * 1000))")
    [ $q_ms -lt "$q_max" ] || { echo "server.info took $q_ms ms during the install (over $q_max)"; return 1; }
    echo "${verdict#*: }; server.info answered in ${q_ms} ms meanwhile"
    [ "${verdict%%:*}" = OK ]
}

# The helpers of t_pull_retry, as files (setup writes them).
write_pull_helpers() {
    cat >"$T/down.py" <<'EOF'
import json, socket, sys, time
port, out = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(16)
times, bursts = [], 0
s.settimeout(120)
while True:
    try:
        c, _ = s.accept()
    except socket.timeout:
        break
    t = time.time()
    c.close()
    if not times or t - times[-1] > 1.6:
        bursts += 1
    times.append(t)
    json.dump(times, open(out, "w"))
    if bursts == 2:
        s.settimeout(1.6)  # the burst ends when podman gives up
s.close()
EOF
    cat >"$T/verdict.py" <<'EOF'
import datetime, json, sys
times = json.load(open(sys.argv[1]))
d1, d2 = float(sys.argv[3]), float(sys.argv[4])
bursts = [[times[0]]]
for t in times[1:]:
    if t - bursts[-1][-1] <= 1.6:
        bursts[-1].append(t)
    else:
        bursts.append([t])
# what the first attempt took from the install request to its first
# connection: the slack a later attempt may need on top of its delay
reach = max(0.0, times[0] - float(sys.argv[5]))
first = None
for line in open(sys.argv[2]):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if d.get("http.request.uri", "").startswith("/v2/"):
        t = d["time"][:26].rstrip("Z")
        first = datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%f").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        break
if len(bursts) != 2 or first is None:
    print("FAIL: %d burst(s) while down, registry request at %s" % (len(bursts), first))
    sys.exit()
g1, g2 = bursts[1][0] - bursts[0][-1], first - bursts[1][-1]
ok = d1 - 0.3 <= g1 <= d1 + 1.5 + reach and d2 - 0.3 <= g2 <= d2 + 1.5 + reach
print("%s: attempt 1 (%d connections dropped), %.2f s, attempt 2 (%d dropped), %.2f s, "
      "attempt 3 pulled; the policy's delays are %g s and %g s (the first attempt reached "
      "the registry %.2f s after the request)"
      % ("OK" if ok else "FAIL", len(bursts[0]), g1, len(bursts[1]), g2, d1, d2, reach))
EOF
}

t_log() {
    [ -n "$DAEMON_LOG" ] && [ -r "$DAEMON_LOG" ] || { echo "no daemon log (give --log FILE)"; return 77; }
    if grep -Eq ' (error|crit|alert|emerg): |panic' "$DAEMON_LOG"; then
        grep -E ' (error|crit|alert|emerg): |panic' "$DAEMON_LOG" | head -5
        return 1
    fi
    echo "$(grep -c . "$DAEMON_LOG") log lines, none an error"
}

t_uninstall() {
    for id in "$WEB" "$PULLED"; do
        [ "$(state "$id")" = absent ] && continue
        out=$(rpc package.uninstall "{\"id\":\"$id\"}")
        [ "$(echo "$out" | jq_ 'r["result"]["state"]')" = removed ] || { echo "$id: $out"; return 1; }
    done
    ! pm container exists "$WEB" && ! pm container exists "$PULLED" || { echo "a container remains"; return 1; }
    [ "$(state "$WEB")" = absent ] || { echo "still listed"; return 1; }
    dir=$(rpc server.info | jq_ 'r["result"]["state_dir"]')
    ! grep -q "\"$WEB\"" "$dir/restart-tracker.json" || { echo "still tracked"; return 1; }
    echo "uninstalled; nothing remains"
}

run setup setup
if [ $FAILED -gt 0 ]; then
    summary "setup failed"
    exit 1
fi
run list t_list
run install t_install
run http-get t_http
run stop-grace t_stop
run start t_start
run health t_health
run tracker-file t_tracker
run reconcile-kill t_reconcile
run daemon-crash-recovery t_daemon_crash
run pull-retry-registry t_pull_retry
run uninstall t_uninstall
run daemon-log-clean t_log
summary
[ $FAILED -eq 0 ]
