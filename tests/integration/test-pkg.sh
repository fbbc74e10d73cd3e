#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# `strata pkg` against real podman: an image imported from a busybox rootfs,
# a package that keeps running (busybox httpd on a loopback port, host
# network) through install, stop, start, restart, a crash the health monitor
# repairs, and uninstall; a package that exits at once is rolled back.
#
# podman's state stays in the temp dir: its own containers.conf, --root and
# --runroot (and tmp dir) under it. What the machine needs is detected: the
# runc runtime when cgroups are not pure v2, lowered default ulimits when
# raising RLIMIT_NOFILE is not allowed.
. "$(dirname "$0")/lib.sh"

need_root
not_in_image "it runs podman, and podman does not run nested in the container"
need_program podman podman
need_program python3 python3
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || t_skip_all "'$BUSYBOX' is missing (Debian package busybox-static)"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
    t_skip_all "'$BUSYBOX' is dynamically linked (install busybox-static)"
fi

t_tmpdir
IMAGE=localhost/strata-it-busybox:1
STATE="$T_TMP/state"

# The runtime: crun refuses hybrid/v1 cgroups, runc copes.
RUNTIME=""
if [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
    need_program runc runc
    RUNTIME=runc
fi

# Default ulimits podman would set above our hard limit need
# CAP_SYS_RESOURCE: lower them when raising the limit fails.
ULIMITS=""
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && ! (ulimit -Hn $((hard + 1))) 2>/dev/null; then
    n=$((hard < 1024 ? hard : 1024))
    ULIMITS="default_ulimits = [\"nofile=$n:$n\", \"nproc=1024:1024\"]"
fi

mkdir -p "$T_TMP/podman-tmp"
cat >"$T_TMP/containers.conf" <<EOF
[containers]
$ULIMITS

[engine]
tmp_dir = "$T_TMP/podman-tmp"
events_logger = "none"
EOF
export CONTAINERS_CONF="$T_TMP/containers.conf"
export STRATA_PODMAN_ROOT="$T_TMP/root" STRATA_PODMAN_RUNROOT="$T_TMP/runroot"
export STRATA_PODMAN_RUNTIME="$RUNTIME" STRATA_ORCH_STATE_DIR="$STATE"
[ -n "$RUNTIME" ] || unset STRATA_PODMAN_RUNTIME

pm() {
    podman --root "$T_TMP/root" --runroot "$T_TMP/runroot" ${RUNTIME:+--runtime "$RUNTIME"} "$@"
}

# Removes every container and image this test made, even after a failure,
# before lib.sh unmounts and removes the temp dir.
pod_cleanup() {
    if [ -d "$T_TMP/root" ]; then
        pm rm -a -f -t 0 >/dev/null 2>&1
        pm rmi -a -f >/dev/null 2>&1
    fi
    t_cleanup
}
trap 'pod_cleanup' EXIT
trap 'pod_cleanup; exit 130' INT TERM

# A free loopback port.
port_free() {
    python3 -c 'import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}
PORT=$((20000 + $$ % 20000))
while ! port_free "$PORT"; do PORT=$((PORT + 1)); done
URL="http://127.0.0.1:$PORT/index.html"
MARKER="strata-it-$$-$(date +%s)"

# http_get_once: one real HTTP GET of the page (python3's client; busybox
# wget -T crashes in the static build).
http_get_once() {
    python3 -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$URL" 2>/dev/null
}

# http_get: the page, polling a little while httpd binds its socket.
http_get() {
    i=0
    while [ $i -lt 50 ]; do
        if out=$(http_get_once); then
            printf '%s\n' "$out"
            return 0
        fi
        i=$((i + 1))
        sleep 0.1
    done
    return 1
}

json_field() { # json_field NAME FIELD: a field of a package in `pkg list --json`
    "$STRATA" pkg list --json | python3 -c '
import json, sys
for c in json.load(sys.stdin):
    if c["name"] == sys.argv[1]:
        print(c[sys.argv[2]])' "$1" "$2"
}

# The cases that need no image (usage errors, --help): at the end, and
# on their own when the image cannot be made.
usage_cases() {
    t_begin "usage errors exit 2 with a message"
    ok=1
    for args in "install x" "install x --image i --tier frontend" "install x --image i --grace -5" \
        "install x --image i --grace 1.5" "install x --image i --pull sometimes" "frobnicate" \
        "start" "list extra" "stop a b"; do
        # shellcheck disable=SC2086
        out=$("$STRATA" pkg $args 2>&1)
        rc=$?
        if [ $rc -ne 2 ] || [ -z "$out" ]; then
            ok=0
            t_fail "'strata pkg $args': rc $rc, '$out'"
            break
        fi
    done
    [ $ok -eq 1 ] && t_ok

    t_begin "pkg --help documents the defaults"
    if "$STRATA" pkg --help | grep -q "lnd 330 s" && "$STRATA" help pkg | grep -q "5 s then 15 s"; then
        t_ok
    else
        t_fail "$("$STRATA" pkg --help 2>&1 | head -3)"
    fi
}

t_begin "import a busybox image with podman import"
mkdir -p "$T_TMP/rootfs/bin" "$T_TMP/rootfs/www"
cp "$BUSYBOX" "$T_TMP/rootfs/bin/busybox"
for a in sh httpd sleep echo cat; do ln -s busybox "$T_TMP/rootfs/bin/$a"; done
echo "$MARKER" >"$T_TMP/rootfs/www/index.html"
if out=$(tar -C "$T_TMP/rootfs" -cf - . | pm import - "$IMAGE" 2>&1); then
    t_ok
else
    t_fail "podman import failed: $(echo "$out" | tail -3)"
    usage_cases
    t_done
    exit 1
fi

t_begin "install a package that keeps running (httpd, host network, infra, grace 2 s); it says so"
if out=$("$STRATA" pkg install web --image "$IMAGE" --tier infra --grace 2 --network host \
    --watch 1 -- /bin/httpd -f -p "127.0.0.1:$PORT" -h /www 2>/dev/null) &&
    echo "$out" | grep -q "^installed 'web' from '$IMAGE'"; then
    t_ok
else
    t_fail "rc $?, stdout: '$out'"
fi

t_begin "it answers HTTP on the loopback port"
if body=$(http_get) && [ "$body" = "$MARKER" ]; then t_ok; else t_fail "got '${body:-nothing}'"; fi

t_begin "list --json shows it running in tier infra with grace 2"
if [ "$(json_field web state)" = running ] && [ "$(json_field web tier)" = infra ] &&
    [ "$(json_field web grace_seconds)" = 2 ]; then
    t_ok
else
    t_fail "$("$STRATA" pkg list 2>&1)"
fi

t_begin "the grace period reached podman (StopTimeout and label)"
st=$(pm inspect --format '{{.Config.StopTimeout}} {{index .Config.Labels "io.strata.grace"}}' web)
if [ "$st" = "2 2" ]; then t_ok; else t_fail "inspect says '$st'"; fi

t_begin "stop: exited, no HTTP, and the health monitor leaves it alone"
"$STRATA" pkg stop web
status=$(pm inspect --format '{{.State.Status}}' web)
health=$("$STRATA" pkg health --json --apply)
if [ "$status" = exited ] && ! http_get_once >/dev/null &&
    echo "$health" | grep -q '"reason": "stopped by the user"' &&
    [ "$(pm inspect --format '{{.State.Status}}' web)" = exited ]; then
    t_ok
else
    t_fail "status '$status', health: $health"
fi

t_begin "list shows that the user stopped it"
if "$STRATA" pkg list | grep '^web ' | grep -q 'user-stopped' &&
    [ "$(json_field web user_stopped)" = True ]; then
    t_ok
else
    t_fail "$("$STRATA" pkg list 2>&1)"
fi

t_begin "start: running and answering again"
"$STRATA" pkg start web
if [ "$(json_field web state)" = running ] && [ "$(http_get)" = "$MARKER" ]; then t_ok; else
    t_fail "$("$STRATA" pkg list 2>&1)"
fi

t_begin "restart: a new start time, running, answering"
before=$(pm inspect --format '{{.State.StartedAt}}' web)
"$STRATA" pkg restart web
after=$(pm inspect --format '{{.State.StartedAt}}' web)
if [ "$before" != "$after" ] && [ "$(json_field web state)" = running ] &&
    [ "$(http_get)" = "$MARKER" ]; then
    t_ok
else
    t_fail "StartedAt '$before' -> '$after'"
fi

t_begin "health --apply restarts a package that crashed"
pm kill web >/dev/null
pm wait web >/dev/null # until podman has seen it exit
crashed=$(pm inspect --format '{{.State.Status}}' web)
health=$("$STRATA" pkg health --json --apply)
if [ "$crashed" = exited ] && echo "$health" | grep -q '"action": "restart"' &&
    [ "$(json_field web state)" = running ] && [ "$(http_get)" = "$MARKER" ]; then
    t_ok
else
    t_fail "after kill: '$crashed'; health: $health"
fi

t_begin "recover after a manager crash starts what was running"
pm stop -t 0 web >/dev/null
sh -c 'echo "$$ 1" >"$1"' sh "$STATE/manager.pid" # a manager that is gone
out=$("$STRATA" pkg recover --json 2>&1)
if echo "$out" | grep -q '"crashed": true' && echo "$out" | grep -q '"action": "start"' &&
    [ "$(json_field web state)" = running ] && [ "$(http_get)" = "$MARKER" ] &&
    [ ! -e "$STATE/manager.pid" ]; then
    t_ok
else
    t_fail "recover: $out"
fi

t_begin "a corrupt restart tracker is set aside, reported and replaced"
printf '{"version": 1, "containers": {"web": {"atte' >"$STATE/restart-tracker.json"
out=$("$STRATA" pkg list 2>&1)
aside=$(ls "$STATE"/restart-tracker.json.corrupt-* 2>/dev/null | head -1)
if echo "$out" | grep -q "'restart-tracker.json' was corrupt: moved it to" && [ -n "$aside" ] &&
    grep -q '"atte$' "$aside" &&
    python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$STATE/restart-tracker.json"; then
    t_ok
else
    t_fail "output: $out; aside: '$aside'"
fi

t_begin "uninstall removes the container and its state"
"$STRATA" pkg uninstall web
if ! pm container exists web && [ "$("$STRATA" pkg list --json)" = "[]" ] &&
    ! grep -q '"web"' "$STATE/restart-tracker.json"; then
    t_ok
else
    t_fail "$(pm ps -a 2>&1)"
fi

t_begin "failsafe install: a package that exits at once is rolled back"
out=$("$STRATA" pkg install bad --image "$IMAGE" --network none --watch 2 -- \
    /bin/sh -c 'echo starting; echo "fatal: no config" >&2; exit 3' 2>&1)
rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "exit code 3" && echo "$out" | grep -q "fatal: no config" &&
    ! pm container exists bad && [ -z "$(pm ps -a -q)" ]; then
    t_ok
else
    t_fail "rc $rc, output: $out; containers: $(pm ps -a -q)"
fi

t_begin "a pull that keeps failing is retried and reported"
echo '{"pull": {"attempts": 2, "delays_seconds": [0]}}' >"$T_TMP/fast-pull.json"
out=$("$STRATA" pkg install nope --config "$T_TMP/fast-pull.json" \
    --image localhost/strata-it-missing:1 --pull always 2>&1)
rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "cannot pull 'localhost/strata-it-missing:1' (2 attempts)" &&
    ! pm container exists nope; then
    t_ok
else
    t_fail "rc $rc, output: $out"
fi

t_begin "--pull never with an image that is not there says so"
out=$("$STRATA" pkg install nope --image localhost/strata-it-missing:1 --pull never 2>&1)
rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "'localhost/strata-it-missing:1' is not in the image store" &&
    echo "$out" | grep -q "pull never" && ! echo "$out" | grep -q "after pull" &&
    ! pm container exists nope; then
    t_ok
else
    t_fail "rc $rc, output: $out"
fi

t_begin "a package id that is not a container name is a usage error"
ok=1
for id in "-x" "a/b" "a b" ".a" "_a" "$(printf 'x%.0s' $(seq 1 65))"; do
    out=$("$STRATA" pkg install --image "$IMAGE" -- "$id" 2>&1); rc=$?
    out2=$("$STRATA" pkg stop -- "$id" 2>&1); rc2=$?
    if [ $rc -ne 2 ] || [ $rc2 -ne 2 ] || ! echo "$out" | grep -q "invalid package id"; then
        ok=0
        echo "# '$id': rc $rc/$rc2: $out / $out2"
    fi
done
[ $ok -eq 1 ] && t_ok || t_fail

t_begin "a config with an unknown tier is rejected naming the key"
echo '{"tiers": {"apps": {"web": "frontend"}}}' >"$T_TMP/bad.json"
out=$("$STRATA" pkg list --config "$T_TMP/bad.json" 2>&1)
rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "tiers.apps.web: unknown tier 'frontend'"; then t_ok; else
    t_fail "rc $rc, output: $out"
fi

usage_cases

t_done
