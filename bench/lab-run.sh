#!/bin/sh
# Benchmark: start-to-exit time of a throwaway machine running `true`, side
# by side in one run:
#   strata lab run --ephemeral -- true
#   bwrap --ro-bind / / --proc /proc --dev /dev --unshare-pid true
#   podman --runtime runc run --rm --network none IMAGE /bin/true
# (IMAGE imported from a busybox-static rootfs into a temporary podman store.)
# Goals: strata <= 1.0x bwrap, and at least 20x faster than podman.
#
#   bench/lab-run.sh [BUILD_DIR]     (default: $BUILD, else build)
# Uses hyperfine when installed (medians of many runs), else a shell loop.
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-${BUILD:-build}}
STRATA=$(pwd)/$BUILD/src/cli/strata
RUNS=${RUNS:-200}
PODMAN_RUNS=${PODMAN_RUNS:-20}

[ -x "$STRATA" ] || { echo "lab-run: build first: '$STRATA' is missing" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "lab-run: needs root (namespaces and mounts)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench.XXXXXX")
podman_ok=0
cleanup() {
    if [ $podman_ok = 1 ]; then
        podman $P rmi -f strata-bench >/dev/null 2>&1 || true
        podman $P system reset -f >/dev/null 2>&1 || true
    fi
    grep -o " $tmp[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

S="$STRATA lab run --ephemeral -- true"
B="bwrap --ro-bind / / --proc /proc --dev /dev --unshare-pid true"
cmds="S B"

# podman with a private store and the settings this kind of host needs
# (runc for hybrid cgroups, lowered ulimits without CAP_SYS_RESOURCE).
P="--root $tmp/root --runroot $tmp/runroot --runtime runc"
if command -v podman >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 &&
    [ -x /bin/busybox ]; then
    mkdir -p "$tmp/rootfs/bin"
    cp /bin/busybox "$tmp/rootfs/bin/busybox"
    for a in sh true; do ln -s busybox "$tmp/rootfs/bin/$a"; done
    cat >"$tmp/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
events_logger = "file"
CONF
    export CONTAINERS_CONF="$tmp/containers.conf"
    if tar -C "$tmp/rootfs" -c . | podman $P import - strata-bench >/dev/null 2>&1 &&
        podman $P run --rm --network none strata-bench /bin/true >/dev/null 2>&1; then
        podman_ok=1
        D="podman $P run --rm --network none strata-bench /bin/true"
    else
        echo "lab-run: podman cannot run here; comparing with bwrap only" >&2
    fi
else
    echo "lab-run: podman, runc or busybox-static missing; comparing with bwrap only" >&2
fi

medians=$tmp/medians
if command -v hyperfine >/dev/null 2>&1; then
    hyperfine -N -w 10 -r "$RUNS" --export-json "$tmp/fast.json" \
        -n "strata lab run" "$S" -n "bwrap" "$B"
    if [ $podman_ok = 1 ]; then
        hyperfine -N -w 2 -r "$PODMAN_RUNS" --export-json "$tmp/podman.json" -n "podman run" "$D"
    fi
    python3 - "$tmp"/*.json >"$medians" <<'PY'
import json, sys
for f in sys.argv[1:]:
    for r in json.load(open(f))["results"]:
        print(r["command"].split()[0], r["median"] * 1000)
PY
else
    # ms per run, median of RUNS runs, one run at a time.
    median() {
        i=0
        while [ $i -lt "$2" ]; do
            a=$(date +%s%N)
            sh -c "$1" >/dev/null 2>&1
            b=$(date +%s%N)
            echo $(((b - a) / 1000))
            i=$((i + 1))
        done | sort -n | awk '{ v[NR] = $1 } END { printf "%.3f\n", v[int((NR + 1) / 2)] / 1000 }'
    }
    echo "strata $(median "$S" "$RUNS")" >>"$medians"
    echo "bwrap $(median "$B" "$RUNS")" >>"$medians"
    [ $podman_ok = 1 ] && echo "podman $(median "$D" "$PODMAN_RUNS")" >>"$medians"
fi

python3 - "$medians" <<'PY'
import sys
m = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    m[k] = float(v)
s, b = m["strata"], m["bwrap"]
print()
print(f"median: strata lab run {s:.2f} ms, bwrap {b:.2f} ms" +
      (f", podman run {m['podman']:.1f} ms" if "podman" in m else ""))
print(f"strata / bwrap = {s / b:.2f}x (goal <= 1.0x)")
if "podman" in m:
    print(f"podman / strata = {m['podman'] / s:.1f}x faster (goal >= 20x)")
PY
