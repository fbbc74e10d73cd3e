#!/bin/sh
# Benchmark: boot-to-exit of a throwaway guest, side by side in one run:
#   strata vm run NAME -- true       (a fresh CoW instance of the cached image)
#   the floor: qemu-system-x86_64 booting the same kernel with a busybox
#   initramfs whose init powers off at once (same machine type, memory,
#   acceleration, -no-reboot)
# Runs alternate; prints each median (wall clock, and user CPU time, QEMU's
# included, steadier on a loaded machine) and the ratios; the goal is at
# most 1.3x the floor.
#
#   bench/vm.sh [BUILD_DIR]     (default: $BUILD, else build)
# RUNS (default 3) runs each; the image is the vm suite's cached one
# (BUILD/vm-lab, image strata-test), built first when missing.
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-${BUILD:-build}}
STRATA=$(pwd)/$BUILD/src/cli/strata
RUNS=${RUNS:-3}
VM_DIR=${STRATA_VM_DIR:-$(pwd)/$BUILD/vm-lab}
NAME=${VM_BENCH_IMAGE:-strata-test}

[ -x "$STRATA" ] || { echo "vm: build first: '$STRATA' is missing" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "vm: needs root (the image build)" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "vm: install qemu-system-x86" >&2; exit 1; }
command -v busybox >/dev/null || { echo "vm: install busybox-static" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench-vm.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# The suite's image: its packages too (the NFS lab client's), or the build
# would not be the cached one.
PACKAGES=${VM_BENCH_PACKAGES:-$(grep -v '^#' tests/nfslab/vm-packages | tr -d ' \n')}
"$STRATA" vm image build --vm-dir "$VM_DIR" --packages "$PACKAGES" "$NAME" >/dev/null
kernel=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["kernel"])' "$VM_DIR/images/$NAME/image.json")
accel=$("$STRATA" vm accel --vm-dir "$VM_DIR" --kernel "$kernel" | cut -d' ' -f1)

# The floor's initramfs: static busybox, an init that powers off.
mkdir -p "$tmp/initramfs/bin" "$tmp/initramfs/proc"
cp "$(command -v busybox)" "$tmp/initramfs/bin/busybox"
printf '#!/bin/busybox sh\n/bin/busybox poweroff -f\n' >"$tmp/initramfs/init"
chmod +x "$tmp/initramfs/init"
(cd "$tmp/initramfs" && find . | cpio -o -H newc --quiet | gzip -1 >"$tmp/floor.cpio.gz")
# the CPU model strata vm gives its guests
cpu="-cpu max"
[ "$accel" = kvm ] && cpu="-cpu host"

floor() {
    # shellcheck disable=SC2086
    qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot \
        -machine "q35,accel=$accel" $cpu -m 1024 -smp 1 -kernel "$kernel" \
        -initrd "$tmp/floor.cpio.gz" -append "console=ttyS0 panic=-1 quiet loglevel=3" \
        -serial "file:$tmp/floor.console"
}
strata_run() {
    "$STRATA" vm run --vm-dir "$VM_DIR" "$NAME" -- true
}

# The user CPU seconds of this shell's finished children (QEMU's own
# included: strata waits for it) between two `times` outputs (their second
# line): the children's user CPU time of the command that ran in between.
cpu_delta() {
    awk 'FNR == 2 { split($1, a, "m"); v[++n] = a[1] * 60 + a[2] } END { print v[2] - v[1] }' "$1" "$2"
}

# once FN: runs the shell function once, appending its wall clock time to
# $tmp/FN.walls and its user CPU time to $tmp/FN.cpus.
once() {
    times >"$tmp/cpu0"
    s=$(date +%s.%N)
    "$1" || { echo "vm: '$1' failed" >&2; exit 1; }
    e=$(date +%s.%N)
    times >"$tmp/cpu1"
    awk "BEGIN { print $e - $s }" >>"$tmp/$1.walls"
    cpu_delta "$tmp/cpu0" "$tmp/cpu1" >>"$tmp/$1.cpus"
}
# median FILE: the median of its numbers.
median() {
    sort -n "$1" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

# Alternating, so both sides see the same load as it drifts.
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for f in floor.walls floor.cpus strata_run.walls strata_run.cpus; do : >"$tmp/$f"; done
i=0
while [ $i -lt "$RUNS" ]; do
    once floor
    once strata_run
    i=$((i + 1))
done
f=$(median "$tmp/floor.walls")
s=$(median "$tmp/strata_run.walls")
fc=$(median "$tmp/floor.cpus")
sc=$(median "$tmp/strata_run.cpus")
echo "vm: accel $accel, kernel $kernel, $RUNS runs each (medians), load $load0 -> $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'vm: floor (qemu + busybox initramfs, power off)  %6.2f s  (user CPU %6.2f s)\n' "$f" "$fc"
printf 'vm: strata vm run %s -- true       %6.2f s  (user CPU %6.2f s)\n' "$NAME" "$s" "$sc"
awk "BEGIN { printf \"vm: ratio strata/floor %.2fx (goal <= 1.3x); user CPU %.2fx\\n\", $s / $f, ($fc > 0 ? $sc / $fc : 0) }"
