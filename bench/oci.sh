#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# strata layer push/pull against podman push/pull of the same content (one
# run, figures printed; not a test). A data dir of LAYERS layers (default
# 20) holding FILES files in all (default 10,000) is pushed to a local
# registry (docker-registry on a free loopback port, a fresh store for each
# run) and pulled into an empty data dir; the same image, loaded into a
# private podman store, is pushed with `podman push` and pulled back with
# `podman pull` after `podman rmi`. Medians of RUNS runs (default 3) and
# the ratios strata/podman are printed. With BEFORE=/path/to/strata (an
# older build of it), that strata is timed too, in the same runs, and its
# figures and its ratios to podman's are printed beside.
# Usage: bench/oci.sh [BUILD_DIR]   (root; the host is left unchanged)
set -eu
BUILD=${1:-${BUILD:-build}}
B=$(cd "$BUILD" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
SM=$B/src/cli/system-migrate
STRATA=$B/src/cli/strata
RUNS=${RUNS:-3}
LAYERS=${LAYERS:-20}
FILES=${FILES:-10000}
BEFORE=${BEFORE:-}
[ -x "$SM" ] && [ -x "$STRATA" ] || { echo "bench: build first" >&2; exit 1; }
[ -z "$BEFORE" ] || [ -x "$BEFORE" ] || { echo "bench: BEFORE='$BEFORE' is not a program" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
for p in skopeo docker-registry podman curl python3; do
    command -v $p >/dev/null 2>&1 || { echo "bench: $p is not installed" >&2; exit 1; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench.XXXXXX")
REG_PID=""
. "$SRC/tests/integration/lib-podman.sh"
stop_registry() {
    if [ -n "$REG_PID" ]; then
        kill "$REG_PID" 2>/dev/null || true
        wait "$REG_PID" 2>/dev/null || true
        REG_PID=""
    fi
}
cleanup() {
    stop_registry
    podman_private_clean
    grep -o " $T[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

now_us() { date +%s%N | cut -b1-16; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$PORT" >"$T/registries.conf"
printf '{"auths": {}}\n' >"$T/auth.json"
# A registry with an empty store, so that no run reuses another's blobs.
fresh_registry() {
    stop_registry
    rm -rf "$T/registry"
    cat >"$T/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $T/registry
http:
  addr: 127.0.0.1:$PORT
EOF
    env -u REGISTRY_AUTH_FILE docker-registry serve "$T/registry.yml" >"$T/registry.log" 2>&1 </dev/null &
    REG_PID=$!
    i=0
    until curl -s -m 1 "http://127.0.0.1:$PORT/v2/" >/dev/null; do
        i=$((i + 1))
        [ $i -lt 100 ] || { echo "bench: the registry did not start" >&2; exit 1; }
        sleep 0.1
    done
}
export CONTAINERS_REGISTRIES_CONF="$T/registries.conf" REGISTRY_AUTH_FILE="$T/auth.json"
podman_private "$T/podman"

# The data dir: LAYERS migrations, FILES/LAYERS files of 1 KiB each.
per=$((FILES / LAYERS))
i=1
while [ $i -le "$LAYERS" ]; do
    id=$(printf '20260401-%03d_files' "$i")
    mkdir -p "$T/m/$id"
    cat >"$T/m/$id/install_script.sh" <<EOF
set -e
mkdir -p /opt/bench/$i
cd /opt/bench/$i
head -c 1024 /dev/urandom > seed
n=0
while [ \$n -lt $per ]; do cp seed f\$n; echo \$n >> f\$n; n=\$((n + 1)); done
rm seed
EOF
    i=$((i + 1))
done
echo "bench: applying $LAYERS migrations ($FILES files)"
"$SM" --data "$T/a" --dir "$T/m" --base / up >/dev/null 2>&1 || { echo "bench: up failed" >&2; exit 1; }
echo "bench: $(du -sh "$T/a/system/layers" | cut -f1) of layers"

: >"$T/sp"
: >"$T/sl"
: >"$T/pp"
: >"$T/pl"
: >"$T/bp"
: >"$T/bl"
# timed FILE CMD...: appends the wall time of CMD in us to FILE.
timed() {
    f=$1
    shift
    s=$(now_us)
    "$@" >"$T/out" 2>&1 || { echo "bench: '$*' failed: $(tail -3 "$T/out")" >&2; exit 1; }
    echo $(($(now_us) - s)) >>"$f"
}
r=0
while [ $r -lt "$RUNS" ]; do
    REF=127.0.0.1:$PORT/bench/stack:run$r
    fresh_registry
    timed "$T/sp" "$STRATA" layer push "$REF" --data "$T/a"
    rm -rf "$T/b"
    timed "$T/sl" "$STRATA" layer pull "$REF" --data "$T/b"
    if [ -n "$BEFORE" ]; then
        fresh_registry
        timed "$T/bp" "$BEFORE" layer push "$REF" --data "$T/a"
        rm -rf "$T/b"
        timed "$T/bl" "$BEFORE" layer pull "$REF" --data "$T/b"
    fi
    # the same image in podman's store, pushed to an empty registry and
    # pulled back after it is removed
    pm pull -q "$REF" >"$T/id" 2>&1 || { echo "bench: podman pull failed" >&2; exit 1; }
    fresh_registry
    timed "$T/pp" pm push "$REF"
    pm rmi -f "$REF" >/dev/null 2>&1
    timed "$T/pl" pm pull -q "$REF"
    pm rmi -a -f >/dev/null 2>&1
    r=$((r + 1))
done

ms() { median <"$1" | awk '{ printf "%.0f", $1 / 1000 }'; }
sp=$(ms "$T/sp")
sl=$(ms "$T/sl")
pp=$(ms "$T/pp")
pl=$(ms "$T/pl")
printf '%-28s %10s %10s %8s\n' "$LAYERS layers, $FILES files" strata podman ratio
printf '%-28s %8s ms %8s ms %8s\n' push "$sp" "$pp" "$(awk -v a="$sp" -v b="$pp" 'BEGIN { printf "%.2f", a / b }')"
printf '%-28s %8s ms %8s ms %8s\n' pull "$sl" "$pl" "$(awk -v a="$sl" -v b="$pl" 'BEGIN { printf "%.2f", a / b }')"
printf '%-28s %8s ms %8s ms %8s\n' "push + pull" $((sp + sl)) $((pp + pl)) \
    "$(awk -v a=$((sp + sl)) -v b=$((pp + pl)) 'BEGIN { printf "%.2f", a / b }')"
if [ -n "$BEFORE" ]; then
    bp=$(ms "$T/bp")
    bl=$(ms "$T/bl")
    printf '%-28s %8s ms %8s ms %8s\n' "push (BEFORE)" "$bp" "$pp" "$(awk -v a="$bp" -v b="$pp" 'BEGIN { printf "%.2f", a / b }')"
    printf '%-28s %8s ms %8s ms %8s\n' "pull (BEFORE)" "$bl" "$pl" "$(awk -v a="$bl" -v b="$pl" 'BEGIN { printf "%.2f", a / b }')"
    echo "BEFORE: $BEFORE"
fi
