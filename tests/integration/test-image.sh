#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The test image (Dockerfile.test, scripts/test-image) with real podman in a
# store of its own under the temp dir: it builds from a clean cache and
# again from the warm one (every step cached); `make image-test` with a
# part of the integration suite passes in it (then a second container on
# the same /data/state volume: state persists, the system layer does not);
# and the container's exit status is its suite's for a passing
# suite (0), a failing one (1), one that skips (77) and a test-runner killed
# by SIGKILL (128+9), through overlayfs-init, s6-svscan and the runner's
# finish scripts. The Debian base root is the shared $BUILD/debian-base.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-podman.sh"

need_root
not_in_image "it runs podman, and podman does not run nested in the container"
need_program podman podman
need_program make make
[ -f /sys/fs/cgroup/cgroup.controllers ] || need_program runc runc
SRC=${STRATA_SOURCE_ROOT:?}
BUILD=${STRATA_BUILD_ROOT:?}
for b in src/cli/strata src/cli/system-migrate src/init/overlayfs-init src/nfsd/strata-nfsd; do
    [ -x "$BUILD/$b" ] || t_skip_all "'$BUILD/$b' is not built"
done
out=$("$SRC/scripts/debian-base" "$BUILD/debian-base" 2>&1)
rc=$?
[ $rc -eq 77 ] && t_skip_all "no Debian base: $out"
[ $rc -eq 0 ] || { echo "# $out"; echo "not ok 1 - the Debian base root"; echo "1..1"; exit 1; }

t_tmpdir
# podman's overlay driver: within make check's time (with vfs, the default
# of make image-test, every layer and container is a full copy of the
# image's tree: a cold build here took minutes more). The store
# scripts/test-image uses is $STRATA_IMAGE_STORE/overlay.
export STRATA_IMAGE_STORE="$T_TMP/store" STRATA_IMAGE_DRIVER=overlay BUILD
podman_private "$STRATA_IMAGE_STORE/overlay"
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' \
    "$STRATA_IMAGE_STORE/overlay/root" "$STRATA_IMAGE_STORE/overlay/runroot" \
    >"$STRATA_IMAGE_STORE/overlay/storage.conf"
export CONTAINERS_STORAGE_CONF="$STRATA_IMAGE_STORE/overlay/storage.conf"
image_cleanup() {
    podman_private_clean
    t_cleanup
}
trap 'image_cleanup' EXIT
trap 'image_cleanup; exit 130' INT TERM

now_ms() { echo $(($(date +%s%N) / 1000000)); }

t_begin "bad input: an unknown command is a usage error (2) that names it"
rc=0
out=$("$SRC/scripts/test-image" bogus 2>&1) || rc=$?
[ "$rc" -eq 2 ] && echo "$out" | grep -q "unknown command 'bogus'" && t_ok || t_fail "exit $rc: $out"

t_begin "run before any build: exit 1, the message says to run make test-image"
rc=0
out=$("$SRC/scripts/test-image" run 2>&1) || rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -q "make test-image" && t_ok || t_fail "exit $rc: $out"

t_begin "make test-image's build: from a clean cache"
t0=$(now_ms)
if out=$("$SRC/scripts/test-image" build 2>&1) && pm image exists localhost/strata-test:latest &&
    pm image exists localhost/strata-base:bookworm; then
    cold=$(($(now_ms) - t0))
    t_ok
    echo "# cold build: $cold ms"
else
    cold=""
    t_fail "$(echo "$out" | tail -15)"
fi

t_begin "a second build reuses every cached layer (no apt-get run)"
t0=$(now_ms)
if out=$("$SRC/scripts/test-image" build 2>&1); then
    warm=$(($(now_ms) - t0))
    steps=$(echo "$out" | grep -c '^STEP ')
    cached=$(echo "$out" | grep -c 'Using cache')
    # Every step but FROM comes from the cache; nothing was installed.
    if [ "$cached" -eq $((steps - 1)) ] && ! echo "$out" | grep -q 'Setting up' &&
        echo "$out" | grep -q 'base localhost/strata-base:bookworm is up to date'; then
        t_ok
        [ -n "$cold" ] && echo "# warm build: $warm ms ($((cold / (warm > 0 ? warm : 1)))x faster than cold)"
    else
        t_fail "$cached of $steps steps cached: $(echo "$out" | tail -15)"
    fi
else
    t_fail "$(echo "$out" | tail -15)"
fi

t_begin "bad input: IMAGE_TESTS naming no integration test is a usage error (2) that names it"
rc=0
out=$(make -s -C "$SRC" image-test BUILD="$BUILD" IMAGE_TESTS="cli no-such-test" 2>&1) || rc=$?
# make says "Error 2" for the script's 2
if [ "$rc" -ne 0 ] && echo "$out" | grep -q "no integration test of the image: no-such-test" &&
    echo "$out" | grep -q "Error 2" && [ -z "$(pm ps -a -q)" ]; then
    t_ok
else
    t_fail "exit $rc: $out"
fi

# make image-test runs the whole integration suite (vfs driver); here,
# within make check's time, a part of it through the same path, the tests
# that need no strata machine over the container's root (with the overlay
# driver that would be a third overlay): s6 services under the machine's
# s6-svscan, the NFS server's procedures on the /data/system tmpfs, and one
# that cannot work in a container (pkg runs podman), which must skip
# saying so. (What is not in the image's suite is left out.)
IMAGE_SUBSET=""
for n in ${STRATA_IMAGE_SUBSET:-services nfsd-procs pkg}; do
    grep -qx -- "$n" "$STRATA_IMAGE_STORE/context/app/tests/integration/ORDER" 2>/dev/null &&
        IMAGE_SUBSET="${IMAGE_SUBSET:+$IMAGE_SUBSET }$n"
done
t_begin "make image-test IMAGE_TESTS=\"$IMAGE_SUBSET\" passes in the container"
t0=$(now_ms)
rc=0
out=$(make -s -C "$SRC" image-test BUILD="$BUILD" IMAGE_TESTS="$IMAGE_SUBSET" 2>&1) || rc=$?
echo "# make image-test IMAGE_TESTS=\"$IMAGE_SUBSET\": $(($(now_ms) - t0)) ms"
bad=""
for n in $IMAGE_SUBSET; do
    case $n in
    pkg) echo "$out" | grep -q "^# image: test $n: skipped" || bad="$bad $n(not skipped)" ;;
    *) echo "$out" | grep -q "^# image: test $n: ok" || bad="$bad $n" ;;
    esac
done
if [ "$rc" -eq 0 ] && [ -z "$bad" ]; then
    t_ok
else
    t_fail "exit $rc, not ok:$bad; $(echo "$out" | grep -v '^ok' | tail -30)"
fi
echo "$out" | grep '^# image: test .*: ' | sed 's/^/# /'

t_begin "in the container the tests use the /data layout (their temp dirs on SYSTEM_DIR's tmpfs)"
echo "$out" | grep -q "^ok .* SYSTEM_DIR (/data/system) is a tmpfs" &&
    echo "$out" | grep -q "^# image: .* used in /data/system" && t_ok || t_fail "$(echo "$out" | head -20)"

t_begin "a test that cannot work in a podman container skips saying why (pkg: nested podman)"
echo "$out" | grep -q "^1..0 # SKIP inside the test image (a podman container): it runs podman" && t_ok ||
    t_fail "$(echo "$out" | grep -A3 'test pkg')"

t_begin "the second run on the same state volume: state kept, system changes gone"
if echo "$out" | grep -q '^ok .* run 2: what run 1.s service wrote is in STATE_DIR' &&
    echo "$out" | grep -q '^ok .* run 2: run 1.s system changes vanished with its container'; then
    t_ok
else
    t_fail "$(echo "$out" | grep -v '^ok' | tail -20)"
fi

# case NAME BODY: a one-test suite in the state volume; the container runs
# it instead of the image's (STRATA_IMAGE_TESTS_DIR).
mkdir -p "$T_TMP/state"
suite_case() {
    mkdir -p "$T_TMP/state/cases/$1"
    printf '#!/bin/sh\n. /app/tests/lib.sh\n%s\n' "$2" >"$T_TMP/state/cases/$1/t.sh"
}
suite_case pass 't_begin "passes"; t_ok; t_done'
suite_case fail 't_begin "fails"; t_fail "on purpose"; t_done'
suite_case skip 't_skip_all "on purpose"'
suite_case signal 'kill -KILL "$(s6-svstat -o pid "$SCANDIR/test-runner")"; sleep 30; exit 3'

for c in pass:0 fail:1 skip:77 signal:137; do
    name=${c%%:*}
    want=${c#*:}
    t_begin "the container's exit status follows its suite: $name -> $want"
    rc=0
    out=$("$SRC/scripts/test-image" run-once -v "$T_TMP/state:/data/state" \
        -e STRATA_IMAGE_TESTS_DIR="/data/state/cases/$name" 2>&1) || rc=$?
    [ "$rc" -eq "$want" ] && t_ok || t_fail "exit $rc, not $want: $(echo "$out" | tail -10)"
done

t_begin "no container is left in the store"
left=$(pm ps -a -q)
[ -z "$left" ] && t_ok || t_fail "containers: $left"

t_done
