#!/bin/sh
# Benchmark: start-to-exit time of a throwaway machine running `true`, side
# by side in one run:
#   strata lab run --ephemeral -- true
#   bwrap --ro-bind / / --proc /proc --dev /dev --unshare-pid true
#   podman --runtime runc run --rm --network none IMAGE /bin/true
# (IMAGE imported from a busybox-static rootfs into a temporary podman store.)
# strata and bwrap run twice, each time in one hyperfine run side by side:
#   quiet   as the machine is;
#   loaded  with a CPU hog on each core (a busy shell loop per core, started
#           before and killed after the run by this script, and by its trap).
# Goals: strata <= 1.0x bwrap in both, and at least 20x faster than podman.
# The load average (uptime) is printed beside each figure: the machine may be
# shared, so the ratios of one run are what to compare.
#
#   bench/lab-run.sh [BUILD_DIR]     (default: $BUILD, else build)
#   RUNS=200 LOADED_RUNS=100 PODMAN_RUNS=20 bench/lab-run.sh
# Uses hyperfine when installed (medians of many runs), else a shell loop.
set -eu
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib/times.sh
. bench/lib/times.sh
BUILD=${1:-${BUILD:-build}}
STRATA=$(pwd)/$BUILD/src/cli/strata
RUNS=${RUNS:-200}
LOADED_RUNS=${LOADED_RUNS:-100}
PODMAN_RUNS=${PODMAN_RUNS:-20}

[ -x "$STRATA" ] || { echo "lab-run: build first: '$STRATA' is missing" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "lab-run: needs root (namespaces and mounts)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench.XXXXXX")
podman_ok=0
hogs=""
stop_hogs() {
    for h in $hogs; do kill "$h" 2>/dev/null || true; done
    for h in $hogs; do wait "$h" 2>/dev/null || true; done
    hogs=""
}
cleanup() {
    stop_hogs
    if [ $podman_ok = 1 ]; then
        podman $P rmi -f strata-bench >/dev/null 2>&1 || true
        podman $P system reset -f >/dev/null 2>&1 || true
    fi
    grep -o " $tmp[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap "exit 130" INT TERM

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

# A busy loop on each core, killed by stop_hogs (and the trap).
start_hogs() {
    n=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
    while [ "$n" -gt 0 ]; do
        sh -c 'while :; do :; done' &
        hogs="$hogs $!"
        n=$((n - 1))
    done
}
load() { cut -d' ' -f1 /proc/loadavg; }

medians=$tmp/medians
# One side-by-side run of strata and bwrap: "LABEL.strata MS", "LABEL.bwrap MS"
# (with hyperfine also their CPU times, "LABEL.strata.cpu MS"...) and
# "LABEL.load LOAD" (the 1-minute load average at the end of the run) in
# $medians.
pair() {
    bench_times "$medians" 10 "$2" "$1.strata" "$S" "$1.bwrap" "$B"
    echo "load.$1 $(load)" >>"$medians"
}

echo "== quiet (load $(load))"
pair quiet "$RUNS"
echo "== loaded: a CPU hog on each core"
start_hogs
sleep 2
pair loaded "$LOADED_RUNS"
stop_hogs
if [ $podman_ok = 1 ]; then
    echo "== podman (load $(load))"
    bench_times "$medians" 2 "$PODMAN_RUNS" podman "$D"
fi

python3 - "$medians" <<'PY'
import sys
m = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    m[k] = float(v)
print()
for run in ("quiet", "loaded"):
    s, b = m[run + ".strata"], m[run + ".bwrap"]
    print(f"{run:6} (load {m['load.' + run]:.2f}): strata lab run {s:.2f} ms, bwrap {b:.2f} ms, "
          f"strata / bwrap = {s / b:.2f}x (goal <= 1.0x)")
if "podman" in m:
    s = m["quiet.strata"]
    print(f"podman run {m['podman']:.1f} ms: {m['podman'] / s:.1f}x strata's quiet median (goal >= 20x)")
PY
