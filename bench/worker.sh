#!/bin/sh
# Benchmark: workers, in one run:
#   1. setup + `true` + teardown of the default worker (26 operations, 26
#      mounts: its /dev nodes are made, bwrap binds them) against bwrap given
#      the same list (--ro-bind / --tmpfs /
#      --proc / --dev, the same namespaces); the ratio is printed
#      (goal: at most 1.0x bwrap and under 20 ms). bwrap 0.8 has no overlay,
#      so /etc is a read-only bind there (a private overlay in the worker).
#      bwrap returns as soon as its command exits (its pid 1 reports the
#      status through an eventfd, then exits and drops its namespaces after
#      bwrap is gone); strata returns once its worker is gone, teardown
#      included. hyperfine's CPU times would leave bwrap's pid 1 out too
#      (it counts the processes a command waited for): the CPU time, and a
#      wall time that counts both teardowns, come from a cgroup v2 of each
#      side's own, CPU_RUNS (50) runs one at a time, each side until its
#      cgroup is empty (bench/lib/times.sh bench_cgroup_cpu).
#   2. the leak count after CYCLES (1,000) setup/run/teardown cycles: mounts
#      added to the mount table and processes left (goal: 0 and 0).
#   3. the wall time of 8 workers at once (`strata worker pool --workers 8`)
#      against 8 bwraps at once.
#
#   bench/worker.sh [BUILD_DIR]     (default: $BUILD, else build)
# Uses hyperfine when installed (medians of many runs), else a shell loop
# (bench/lib/times.sh).
set -eu
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib/times.sh
. bench/lib/times.sh
BUILD=${1:-${BUILD:-build}}
STRATA=$(pwd)/$BUILD/src/cli/strata
RUNS=${RUNS:-200}
CYCLES=${CYCLES:-1000}
CPU_RUNS=${CPU_RUNS:-50}

[ -x "$STRATA" ] || { echo "worker: build first: '$STRATA' is missing" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "worker: needs root (namespaces and mounts)" >&2; exit 1; }
command -v bwrap >/dev/null 2>&1 || { echo "worker: bwrap is missing (Debian package bubblewrap)" >&2; exit 1; }

# In a mount and pid namespace of our own (with its own /proc): the mount
# table and the process list then hold only what the benchmark makes.
if [ -z "${WORKER_BENCH_OWN_NS:-}" ]; then
    WORKER_BENCH_OWN_NS=1 exec unshare -m -p -f --mount-proc --propagation private "$0" "$@"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
R=$tmp/root
mkdir -p "$R/packages" "$R/distfiles" "$R/options" "$R/xports"

S="$STRATA worker run --root $R -- /bin/true"
opt() { [ -e "$1" ] && echo "--ro-bind $1 $1"; }
B="bwrap --unshare-pid --unshare-ipc --unshare-uts --unshare-net --hostname strata-worker-0
 --ro-bind /bin /bin --ro-bind /sbin /sbin --ro-bind /lib /lib $(opt /lib64)
 --ro-bind /usr/bin /usr/bin --ro-bind /usr/sbin /usr/sbin --ro-bind /usr/lib /usr/lib
 $(opt /usr/libexec) $(opt /usr/include) --ro-bind /usr/share /usr/share
 --tmpfs /run --ro-bind /etc /etc --tmpfs /tmp --tmpfs /var/tmp --tmpfs /usr/local
 --size 536870912 --tmpfs /construction --proc /proc --dev /dev --ro-bind /sys /sys
 --bind $R/packages /packages --bind $R/distfiles /distfiles --bind $R/options /options
 --ro-bind $R/xports /xports /bin/true"
B=$(echo "$B" | tr '\n' ' ')

echo "== 1. setup + true + teardown: strata worker run vs bwrap (same mounts)"
medians=$tmp/medians
bench_times "$medians" 10 "$RUNS" strata "$S" bwrap "$B"
# The same two, counted whole: each in a cgroup of its own, bwrap's pid 1
# and its teardown included.
echo "strata.cg $(bench_cgroup_cpu "$CPU_RUNS" "$S")" >>"$medians"
echo "bwrap.cg $(bench_cgroup_cpu "$CPU_RUNS" "$B")" >>"$medians"

echo "== 2. $CYCLES cycles: leaks"
# Every process but this script's subshells and helpers; helpers are left
# out by their command name (comm, 15 characters): one caught between fork
# and exec, or exited and not yet reaped, shows no arguments.
SELF_COMM=$(basename "$0" | cut -c1-15)
procs() {
    ps -e -o pid=,comm=,args= | awk -v self="$SELF_COMM" \
        '$2 != "ps" && $2 != "grep" && $2 != "sort" && $2 != "awk" && $2 != self { $2 = ""; print }' |
        grep -v -F -e "$0" | sort
}
cat /proc/self/mountinfo >"$tmp/mounts.before"
procs >"$tmp/procs.before"
fails=0
i=0
while [ $i -lt "$CYCLES" ]; do
    $S || fails=$((fails + 1))
    i=$((i + 1))
done
mounts_left=$(grep -vxF -f "$tmp/mounts.before" /proc/self/mountinfo | grep -c . || true)
i=0
while [ "$(procs | grep -vxF -f "$tmp/procs.before" | grep -c .)" -gt 0 ] && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
procs | grep -vxF -f "$tmp/procs.before" >"$tmp/procs.left" || true
procs_left=$(grep -c . "$tmp/procs.left" || true)
[ "$procs_left" -eq 0 ] || sed "s/^/left: /" "$tmp/procs.left" >&2
slots_left=$(ls "$R/slots" 2>/dev/null | grep -c . || true)

echo "== 3. 8 at once"
t8() {
    a=$(date +%s%N)
    eval "$1"
    b=$(date +%s%N)
    echo $(((b - a) / 1000000))
}
s8=$(t8 "$STRATA worker pool --root $R --workers 8 -- /bin/true >/dev/null")
b8=$(t8 "for k in 1 2 3 4 5 6 7 8; do $B & done; wait")

python3 - "$medians" "$CYCLES" "$fails" "$mounts_left" "$procs_left" "$slots_left" "$s8" "$b8" <<'PY'
import sys
m, cg = {}, {}
for line in open(sys.argv[1]):
    k, *v = line.split()
    if k.endswith(".cg"):
        cg[k[:-3]] = v
    else:
        m[k] = float(v[0])
cycles, fails, ml, pl, sl, s8, b8 = sys.argv[2:9]
s, b = m["strata"], m["bwrap"]
print()
print(f"median: strata worker run {s:.2f} ms, bwrap (same mounts) {b:.2f} ms")
print(f"strata / bwrap = {s / b:.2f}x (goal <= 1.0x, and under 20 ms)")
if "n/a" not in cg["strata"] + cg["bwrap"]:
    (sc, sw), (bc, bw) = [map(float, cg[k]) for k in ("strata", "bwrap")]
    print(f"whole, in a cgroup each (every process, until it is empty): CPU strata {sc:.2f} ms, "
          f"bwrap {bc:.2f} ms = {sc / bc:.2f}x; wall strata {sw:.2f} ms, bwrap {bw:.2f} ms = "
          f"{sw / bw:.2f}x")
print(f"{cycles} cycles: {fails} failed, {ml} mounts left, {pl} processes left, {sl} slots left (goal: 0)")
print(f"8 at once: strata worker pool {s8} ms wall, 8 bwraps {b8} ms wall")
PY
