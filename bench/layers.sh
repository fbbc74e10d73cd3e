#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Cost in the number of layers (one run, a table printed; not a test): on
# data dirs with 1, 10, 100 and 400 active layers, the median of RUNS runs
# (default 7) of
#   - a no-op `system-migrate up` (nothing pending),
#   - `system-migrate status`,
#   - a boot: `strata lab run --data DIR -- true`,
#   - `system-migrate verify`,
# then the per-layer cost of each (the slope from 1 to 400 layers) against
# the goal: under 50 ms at 400 layers, growing at most linearly.
# Usage: bench/layers.sh [BUILD_DIR]   (root; the host is left unchanged)
set -eu
BUILD=${1:-${BUILD:-build}}
B=$(cd "$BUILD" && pwd)
SM=$B/src/cli/system-migrate
STRATA=$B/src/cli/strata
RUNS=${RUNS:-7}
SIZES=${SIZES:-1 10 100 400}
[ -x "$SM" ] && [ -x "$STRATA" ] || { echo "bench: build first" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench.XXXXXX")
cleanup() {
    grep -o " $T[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

now_us() { date +%s%N | cut -b1-16; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
HYPERFINE=$(command -v hyperfine || true)
# time_ms CMD...: the median wall time of RUNS runs of CMD, in ms (1
# decimal); the mean CPU time per run (user + system, what a loaded
# machine changes least; hyperfine measures it) goes to $T/cpu.last ("n/a"
# without hyperfine). The arguments hold no spaces (temp paths).
time_ms() {
    if [ -n "$HYPERFINE" ]; then
        "$HYPERFINE" -N --runs "$RUNS" --export-json "$T/h.json" "$*" >/dev/null 2>&1 ||
            { echo "bench: '$*' failed" >&2; exit 1; }
        sed -n 's/.*"\(median\|user\|system\)": \([0-9.e-]*\).*/\1 \2/p' "$T/h.json" |
            awk '$1 == "median" { m = $2 } $1 == "user" { u = $2 } $1 == "system" { s = $2 }
                END { printf "%.1f\n", (u + s) * 1000 > "/dev/stderr"; printf "%.1f", m * 1000 }' \
                2>"$T/cpu.last"
        return
    fi
    : >"$T/times"
    i=0
    while [ $i -lt "$RUNS" ]; do
        s=$(now_us)
        "$@" >/dev/null 2>&1 || { echo "bench: '$*' failed" >&2; exit 1; }
        e=$(now_us)
        echo $((e - s)) >>"$T/times"
        i=$((i + 1))
    done
    echo n/a >"$T/cpu.last"
    median <"$T/times" | awk '{ printf "%.1f", $1 / 1000 }'
}

# One migrations dir of the largest size; each data dir applies a prefix.
max=0
for n in $SIZES; do [ "$n" -gt "$max" ] && max=$n; done
M=$T/migrations
i=1
while [ $i -le "$max" ]; do
    id=$(printf '20260301-%03d_layer' "$i")
    [ $i -gt 999 ] && id=$(printf '2026%04d-001_layer' $((300 + i / 999)))
    mkdir -p "$M/$id"
    echo "echo $i >/etc/strata-bench-$i" >"$M/$id/install_script.sh"
    i=$((i + 1))
done

echo "load: $(uptime)"
printf '%-8s %12s %12s %12s %12s\n' layers "up (no-op)" status "lab boot" verify
for n in $SIZES; do
    D=$T/data-$n
    to=$(ls "$M" | sed -n "${n}p")
    echo "bench: applying $n migrations ..." >&2
    "$SM" --data "$D" --dir "$M" --max-layers 499 up --to "$to" >/dev/null 2>&1 ||
        { echo "bench: applying $n migrations failed" >&2; exit 1; }
    up=$(time_ms "$SM" --data "$D" --dir "$M" up --to "$to")
    upc=$(cat "$T/cpu.last")
    st=$(time_ms "$SM" --data "$D" --dir "$M" status)
    stc=$(cat "$T/cpu.last")
    boot=$(time_ms "$STRATA" lab run --data "$D" -- true)
    bootc=$(cat "$T/cpu.last")
    ver=$(time_ms "$SM" --data "$D" --dir "$M" verify)
    verc=$(cat "$T/cpu.last")
    printf '%-8s %9s ms %9s ms %9s ms %9s ms\n' "$n" "$up" "$st" "$boot" "$ver"
    echo "$n $up $st $boot $ver" >>"$T/table"
    echo "$n $upc $stc $bootc $verc" >>"$T/cpu-table"
done
echo "CPU time (user + system, ms; mean of $RUNS runs):"
awk '{ printf "%-8s %9s ms %9s ms %9s ms %9s ms\n", $1, $2, $3, $4, $5 }' "$T/cpu-table"
awk '
    NR == 1 { n0 = $1; for (i = 2; i <= 5; i++) a[i] = $i }
    { n1 = $1; for (i = 2; i <= 5; i++) b[i] = $i }
    END {
        split("up (no-op),status,lab boot,verify", name, ",")
        for (i = 2; i <= 5; i++)
            printf "%-11s CPU %.3f ms per layer\n", name[i - 1],
                (n1 > n0) ? (b[i] - a[i]) / (n1 - n0) : 0
    }' "$T/cpu-table"
echo "load: $(uptime)"
# The per-layer cost: the slope between the smallest and the largest size.
awk -v goal=50 '
    NR == 1 { n0 = $1; for (i = 2; i <= 5; i++) a[i] = $i }
    { n1 = $1; for (i = 2; i <= 5; i++) b[i] = $i }
    END {
        split("up (no-op),status,lab boot,verify", name, ",")
        for (i = 2; i <= 5; i++) {
            slope = (n1 > n0) ? (b[i] - a[i]) / (n1 - n0) : 0
            printf "%-11s %.3f ms per layer; %.1f ms at %d layers (goal < %d ms: %s)\n",
                name[i - 1], slope, b[i], n1, goal, b[i] < goal ? "met" : "not met"
        }
    }' "$T/table"
