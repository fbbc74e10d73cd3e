# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=sh
# Sourced by bench/lab-run.sh and bench/worker.sh: commands timed side by
# side in one run, with hyperfine when installed (warm-up runs, then the
# runs interleaved per command), else a shell loop.
#
#   bench_median CMD RUNS    ms per run of `sh -c CMD`, the median of RUNS
#                            runs one at a time (no hyperfine)
#   bench_times OUT WARMUP RUNS NAME CMD [NAME CMD]...
#                            appends "NAME MS" to the file OUT for each CMD:
#                            its median wall time; with hyperfine also
#                            "NAME.cpu MS": its mean CPU time (user + system
#                            of the command and of every process it waited
#                            for), steadier than wall time on a shared machine
#   bench_cgroup_cpu RUNS CMD
#                            "CPU WALL": ms of CPU per run of CMD, counted
#                            by a cgroup v2 of its own (every process of
#                            CMD, those reparented away from it too), and ms
#                            of wall time per run until the cgroup is empty;
#                            "n/a n/a" where no cgroup v2 can be made
# CMDs are split at spaces (hyperfine -N: no shell in between).

bench_median() {
    _bm_i=0
    while [ $_bm_i -lt "$2" ]; do
        _bm_a=$(date +%s%N)
        sh -c "$1" >/dev/null 2>&1
        _bm_b=$(date +%s%N)
        echo $(((_bm_b - _bm_a) / 1000))
        _bm_i=$((_bm_i + 1))
    done | sort -n | awk '{ v[NR] = $1 } END { printf "%.3f\n", v[int((NR + 1) / 2)] / 1000 }'
}

bench_times() {
    _bt_out=$1 _bt_warmup=$2 _bt_runs=$3
    shift 3
    if ! command -v hyperfine >/dev/null 2>&1; then
        while [ $# -ge 2 ]; do
            echo "$1 $(bench_median "$2" "$_bt_runs")" >>"$_bt_out"
            shift 2
        done
        return 0
    fi
    # NAME CMD... becomes -n NAME CMD... (rotated through "$@").
    _bt_n=$#
    while [ "$_bt_n" -ge 2 ]; do
        _bt_name=$1 _bt_cmd=$2
        shift 2
        set -- "$@" -n "$_bt_name" "$_bt_cmd"
        _bt_n=$((_bt_n - 2))
    done
    _bt_json=$(mktemp "${TMPDIR:-/tmp}/strata-bench-times.XXXXXX")
    hyperfine -N -w "$_bt_warmup" -r "$_bt_runs" --export-json "$_bt_json" "$@" || {
        rm -f "$_bt_json"
        return 1
    }
    python3 - "$_bt_json" >>"$_bt_out" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(r["command"], r["median"] * 1000)
    print(r["command"] + ".cpu", (r["user"] + r["system"]) * 1000)
PY
    rm -f "$_bt_json"
}

bench_cgroup_cpu() {
    _bc_v2=$(sed -n 's/^[^ ]* [^ ]* [^ ]* [^ ]* \([^ ]*\) .* - cgroup2 .*/\1/p' /proc/self/mountinfo |
        head -n 1)
    _bc_cg=${_bc_v2:-/nonexistent}/strata-bench.$$
    if [ -z "$_bc_v2" ] || ! mkdir "$_bc_cg" 2>/dev/null; then
        echo "n/a n/a"
        return 0
    fi
    _bc_a=$(date +%s%N)
    # shellcheck disable=SC2016
    sh -c 'echo $$ >"$1/cgroup.procs" && i=0 &&
        while [ $i -lt "$0" ]; do $2 >/dev/null 2>&1; i=$((i + 1)); done' "$1" "$_bc_cg" "$2"
    while grep -q "populated 1" "$_bc_cg/cgroup.events"; do sleep 0.01; done
    _bc_b=$(date +%s%N)
    awk -v n="$1" -v d=$((_bc_b - _bc_a)) '/^usage_usec/ { printf "%.2f %.2f\n", $2 / n / 1000, d / n / 1e6 }' \
        "$_bc_cg/cpu.stat"
    rmdir "$_bc_cg"
}
