#!/bin/sh
# Benchmark: boot-to-exit of a throwaway guest, side by side in one run:
#   strata vm run NAME -- true       (a fresh CoW instance of the cached image)
#   the floor: qemu-system-x86_64 booting the same kernel with a busybox
#   initramfs whose init powers off at once (same machine type, memory,
#   acceleration, -no-reboot)
# Prints each median and the ratio; the goal is at most 1.3x the floor.
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

"$STRATA" vm image build --vm-dir "$VM_DIR" "$NAME" >/dev/null
kernel=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["kernel"])' "$VM_DIR/images/$NAME/image.json")
accel=$("$STRATA" vm accel --vm-dir "$VM_DIR" --kernel "$kernel" | cut -d' ' -f1)

# The floor's initramfs: static busybox, an init that powers off.
mkdir -p "$tmp/initramfs/bin" "$tmp/initramfs/proc"
cp "$(command -v busybox)" "$tmp/initramfs/bin/busybox"
printf '#!/bin/busybox sh\n/bin/busybox poweroff -f\n' >"$tmp/initramfs/init"
chmod +x "$tmp/initramfs/init"
(cd "$tmp/initramfs" && find . | cpio -o -H newc --quiet | gzip -1 >"$tmp/floor.cpio.gz")
cpu=""
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

# Median of RUNS wall-clock times (seconds) of a shell function.
median() {
    i=0
    : >"$tmp/times"
    while [ $i -lt "$RUNS" ]; do
        s=$(date +%s.%N)
        "$1" || { echo "vm: '$1' failed" >&2; exit 1; }
        e=$(date +%s.%N)
        awk "BEGIN { print $e - $s }" >>"$tmp/times"
        i=$((i + 1))
    done
    sort -n "$tmp/times" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

f=$(median floor)
s=$(median strata_run)
echo "vm: accel $accel, kernel $kernel, $RUNS runs each (medians)"
printf 'vm: floor (qemu + busybox initramfs, power off)  %6.2f s\n' "$f"
printf 'vm: strata vm run %s -- true       %6.2f s\n' "$NAME" "$s"
awk "BEGIN { printf \"vm: ratio strata/floor %.2fx (goal <= 1.3x)\n\", $s / $f }"
